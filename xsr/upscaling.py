"""Super-resolve labelled movies: :func:`upscale` (``ds.sr.upscale``).

The function resolves the model (a shipped name, a model file, a loaded model, ``"bicubic"``, or
the best shipped model for ``scale=``), finds the spatial and time dimensions, maps data variables
to the model's variables (stacked as channels, in the card's order), and calls the array layer
(:func:`xsr._chunked.upscale_array`) inside :func:`xarray.apply_ufunc` with ``dask="allowed"``,
so dask-backed input stays lazy and every chunking gives the same result. Fine coordinates,
bounds, CF attributes and a provenance line in ``history`` are added here.

torch and the engine are imported inside the functions that need them, never at module import.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsr.coords import (
    append_history,
    is_latitude,
    is_longitude,
    refine_axis,
    refine_axis_bounds,
    refine_latlon,
    resolve_periodic,
    spatial_dims,
)
from xsr.site import site_digest, site_term

__all__ = [
    "INPUT_RANGE_STDS",
    "InputRangeWarning",
    "NoLearnedModelWarning",
    "NoShippedModelError",
    "NonFiniteWarning",
    "PackedDataWarning",
    "UnitsConvertedWarning",
    "VariableNameWarning",
    "best_pretrained",
    "upscale",
]

_CH = "__xsr_channel__"
_T = "__xsr_time__"
_YF = "__xsr_y_fine__"
_XF = "__xsr_x_fine__"
_NONAME = "__xsr_unnamed__"
#: The name :func:`_resolve_model` gives the bicubic fallback of ``scale=`` alone.
_FALLBACK = "__xsr_bicubic_fallback__"


class VariableNameWarning(UserWarning):
    """A data variable is fed to a model variable of another name (mapped by ``variables=``)."""


class NonFiniteWarning(UserWarning):
    """A data variable holds +inf or -inf cells; they are masked like NaN (NaN in the output)."""


class InputRangeWarning(UserWarning):
    """A data variable lies far outside the statistics a specialised model was trained on."""


class UnitsConvertedWarning(UserWarning):
    """A data variable was converted to the units a specialised model expects."""


class PackedDataWarning(UserWarning):
    """A data variable still carries CF packing or fill attributes (it was not CF-decoded)."""


#: Distance from a specialised model's training mean, in its normalisation standard deviations,
#: beyond which an input cell counts as out of range (:class:`InputRangeWarning`).
INPUT_RANGE_STDS = 20.0

#: Attributes that mean "these are raw stored values, not yet CF-decoded" when found in ``attrs``
#: (xarray moves them to ``encoding`` when it decodes).
_CF_RAW_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value")


def _label(name: Hashable) -> str:
    """A variable's name for messages (an unnamed DataArray is called so, not by a sentinel)."""
    return "the unnamed DataArray" if name == _NONAME else repr(str(name))


def _shown(names: Sequence[Hashable]) -> list[str]:
    return ["<the unnamed DataArray>" if n == _NONAME else str(n) for n in names]


def _decode_raw(da: xr.DataArray, label: str) -> xr.DataArray:
    """CF-decode a variable left packed (``mask_and_scale=False``), lazily, with a warning."""
    keys = [k for k in _CF_RAW_ATTRS if k in da.attrs]
    if not keys:
        return da
    if np.issubdtype(da.dtype, np.floating) and set(keys) <= {"_FillValue", "missing_value"}:
        fills = [da.attrs[k] for k in keys]
        if all(np.all(np.isnan(np.asarray(f, dtype="float64"))) for f in fills):
            # NaN fill values: the NaN cells are already masked; only the attributes go
            return _without(da, keys)
    warnings.warn(
        f"Data variable {label} ({da.dtype}) still carries {keys} in its attributes: it was "
        "read without CF decoding (e.g. xr.open_dataset(..., mask_and_scale=False)), so its "
        "values are the stored raw numbers. xsr decodes it before upscaling (values * "
        "scale_factor + add_offset, fill values as NaN). To avoid this warning, open the file "
        "with xr.open_dataset(path) (mask_and_scale=True, the default) or decode it with "
        "xr.decode_cf(ds).",
        PackedDataWarning,
        stacklevel=4,
    )
    with warnings.catch_warnings():
        # xarray's note on several fill values: both are masked, as the warning above says
        warnings.filterwarnings("ignore", message=".*multiple fill values", category=Warning)
        decoded = xr.decode_cf(
            xr.Dataset({"v": da.variable}), decode_times=False, decode_timedelta=False
        )["v"]
    return xr.DataArray(decoded.variable, coords=da.coords, name=da.name)


def _without(da: xr.DataArray, keys: Sequence[str]) -> xr.DataArray:
    out = da.copy(deep=False)
    out.attrs = {k: v for k, v in da.attrs.items() if k not in keys}
    return out


def _screen_block(
    block: np.ndarray,
    label: str,
    stats: tuple[float, float] | None,
    model_name: str,
    alternative: str = "a field model",
) -> np.ndarray:
    """Mask +-inf as NaN and check the range of one block, warning about what was found.

    Runs on the whole array for numpy input and inside each dask task for dask input, so the
    counts in the warnings are per computed block there.
    """
    infinite = np.isinf(block)
    n_inf = int(infinite.sum())
    if n_inf:
        block = np.where(infinite, np.asarray(np.nan, dtype=block.dtype), block)
        warnings.warn(
            f"Data variable {label}: {n_inf} cell(s) are +inf or -inf"
            f"{_where(block.shape)}; they are masked like NaN (NaN in the output, and not fed "
            "to the model). Replace them with finite values (obj.where(np.isfinite(obj), "
            "fill)) to have them upscaled.",
            NonFiniteWarning,
            stacklevel=2,
        )
    if stats is not None:
        mean, std = stats
        # in the block's own dtype: no float64 copy of the data for a 20-sigma threshold
        centre, limit = block.dtype.type(mean), block.dtype.type(INPUT_RANGE_STDS * std)
        with np.errstate(invalid="ignore", over="ignore"):
            far = np.abs(block - centre) > limit
        n_far = int(far.sum())
        if n_far:
            worst = float(block[far][np.argmax(np.abs(block[far].astype("float64") - mean))])
            warnings.warn(
                f"Data variable {label}: {n_far} cell(s){_where(block.shape)} lie more than "
                f"{INPUT_RANGE_STDS:g} standard deviations from the training statistics of "
                f"model {model_name!r} (mean {mean:.6g}, std {std:.6g}; the farthest value is "
                f"{worst:.6g}): its output there, and within its receptive field in every "
                "variable it mixes, is not to be trusted. Check the variable's units and "
                "mapping (variables=), mask outliers (obj.where(...)), or use a model that "
                f"does not depend on the units: {alternative}, or model='bicubic'.",
                InputRangeWarning,
                stacklevel=2,
            )
    return block


def _where(shape: tuple[int, ...]) -> str:
    return f" in a block of shape {shape}"


def _screen(
    da: xr.DataArray,
    label: str,
    stats: tuple[float, float] | None,
    model_name: str,
    alternative: str = "a field model",
) -> xr.DataArray:
    """Float data with +-inf masked and the range guard applied: eager, or lazily per chunk."""
    import dask.array as dsa

    if np.issubdtype(da.dtype, np.complexfloating):
        raise ValueError(
            f"Data variable {label} holds complex values ({da.dtype}); xsr upscales real "
            "fields. Upscale the parts separately, e.g. obj.real and obj.imag (or abs and angle)."
        )
    if not (np.issubdtype(da.dtype, np.number) or da.dtype == bool):
        raise ValueError(
            f"Data variable {label} has dtype {da.dtype}, not numbers; select numeric variables "
            "with variables=, or convert it first."
        )
    empty = [d for d in da.dims if da.sizes[d] == 0]
    if empty:
        raise ValueError(
            f"Data variable {label} has no cells along {empty} (size 0); there is nothing to "
            "upscale. Check the selection that produced it (e.g. an empty time slice)."
        )
    if not np.issubdtype(da.dtype, np.floating) or da.dtype == np.float16:
        da = da.astype("float32")
    data = da.data
    if isinstance(data, dsa.Array):
        data = data.map_blocks(
            _screen_block,
            label=label,
            stats=stats,
            model_name=model_name,
            alternative=alternative,
            dtype=data.dtype,
            meta=np.empty((0,) * data.ndim, dtype=data.dtype),
        )
    else:
        data = _screen_block(np.asarray(data), label, stats, model_name, alternative)
    return da.copy(data=data)


def _range_stats(card: Mapping[str, Any], model_var: str | None) -> tuple[float, float] | None:
    """(mean, std) of a specialised model's variable, or None (identity or no statistics)."""
    if model_var is None:
        return None
    stats = (card.get("normalisation") or {}).get(model_var)
    if not stats:
        return None
    mean, std = float(stats["mean"]), float(stats["std"])
    if mean == 0.0 and std == 1.0:  # the identity: no training statistics recorded
        return None
    return mean, std


def _descending(obj: Any, dim: Hashable) -> bool:
    """Whether ``dim`` has a 1-D coordinate running from high to low values."""
    if dim not in obj.coords or obj.coords[dim].ndim != 1 or obj.sizes[dim] < 2:
        return False
    values = obj.coords[dim].values
    if not (np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.datetime64)):
        return False
    # the sign of the typical step: a rolled global longitude (..., 359.5, 0.5, ...) ascends
    steps = np.diff(values)
    if np.issubdtype(steps.dtype, np.timedelta64):
        steps = steps.astype("int64")
    return bool(np.median(steps) < 0)


def _card(model: Any) -> dict[str, Any]:
    from xsr.engine import card_dict

    return card_dict(getattr(model, "card", None))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: PSNR difference (dB) below which :func:`best_pretrained` prefers the cheaper shipped model.
PSNR_TIE_DB = 0.1


class NoShippedModelError(ValueError):
    """No shipped learned model serves the data's variables at that scale."""


class NoLearnedModelWarning(UserWarning):
    """``scale=`` alone found no shipped learned model for the data: bicubic interpolation ran."""


#: Gain (dB) that a model with a time window must lose when its neighbours are replaced by the
#: centre frame, on every variable, to be picked by :func:`best_pretrained` (when its card
#: carries the ablation).
TEMPORAL_GAIN_DB = 0.5


def _no_temporal_gain(card: Mapping[str, Any]) -> bool:
    """Whether a windowed card's own ablation shows no temporal gain (see :func:`best_pretrained`).

    The card's ``metrics["held_out"]["temporal_ablation"]`` holds the pooled PSNR per variable
    with the real neighbours (``real``) and with the centre frame repeated
    (``centre-repeated``); the gain is temporal when ``real`` beats ``centre-repeated`` by
    :data:`TEMPORAL_GAIN_DB` on every variable. Cards without an ablation are not judged.
    """
    if int(card.get("window", 1)) <= 1:
        return False
    ablation = ((card.get("metrics") or {}).get("held_out") or {}).get("temporal_ablation")
    if not ablation or "real" not in ablation or "centre-repeated" not in ablation:
        return False
    real, centre = ablation["real"], ablation["centre-repeated"]
    gains = [real[v] - centre[v] for v in real if v in centre]
    return not gains or min(gains) < TEMPORAL_GAIN_DB


def _is_natural(card: Mapping[str, Any]) -> bool:
    """Whether a card is a natural-image model (greyscale photographs, variable ``image``)."""
    return [str(v.get("name")) for v in card.get("variables") or []] == ["image"]


def _rank(pool: list[tuple[str, Any, dict[str, Any]]]) -> tuple[str, float | None]:
    """The best of ``(name, model_card, metrics)`` candidates, and its headline PSNR.

    The held-out PSNR where every candidate has one, else all on validation PSNR; within
    :data:`PSNR_TIE_DB` of the best, the cheapest, then the higher PSNR, then the name.
    """
    from xsr.models.pretrained import headline_psnr
    from xsr.models.registry import get_model

    held_out = all(_is_number(m.get("psnr")) for _, _, m in pool)
    scored = []
    for name, model_card, metrics in pool:
        psnr = headline_psnr(metrics, held_out=held_out)
        scored.append((name, model_card, -np.inf if psnr is None else psnr))
    top = max(c[2] for c in scored)
    near = [c for c in scored if c[2] >= top - PSNR_TIE_DB]
    if len(near) == 1:
        best = near[0]
    else:

        def cost(c: Any) -> float:
            # the architecture's cost: built bare (no weights), FLOPs counted by a forward
            return get_model(c[1].arch, **c[1].config).flops_per_output_pixel()

        best = min(near, key=lambda c: (cost(c), -c[2], c[0]))
    _, _, metrics = next(c for c in pool if c[0] == best[0])
    return best[0], headline_psnr(metrics, held_out=True)


def best_pretrained(
    scale: int, variables: Sequence[Hashable] = (), *, frames: int | None = None
) -> str:
    """The shipped model that :func:`upscale` uses for ``scale=`` when no model is given.

    The rule, among the shipped models (``xsr.models.pretrained.PRETRAINED``) of that
    ``scale``:

    - natural-image models (variable ``image``) are never chosen here; name them with
      ``model=`` to use them;
    - a model with a time window whose card carries temporal ablations is chosen only when it
      loses at least :data:`TEMPORAL_GAIN_DB` on every variable with the centre frame repeated
      instead of its neighbours: a gain that does not come from time is not worth the window;
    - a *specialised* model is a candidate only when its card variables are exactly the data's
      ``variables`` (it takes all of them and none is missing);
    - *field* models (card ``kind: "field"``) serve any variables;
    - with ``frames`` given, a model reading windows of more frames than that (a 3-D model on
      a single frame) is not a candidate;
    - the best field model is used, unless a candidate specialised model has a higher held-out
      PSNR on its card (``metrics["psnr"]``); without a field model, the best candidate
      specialised model.

    "Best" among models of one kind: the highest card PSNR (held-out where every such model
    has one, else validation: :func:`xsr.models.pretrained.headline_psnr`); models within
    :data:`PSNR_TIE_DB` of it count as equal and the cheapest wins (fewest
    :meth:`~xsr.models.base.SRModel.flops_per_output_pixel`: a 3-D refiner that adds 0.001 dB
    is not worth 80x the compute), then the higher PSNR, then the name.

    Parameters
    ----------
    scale : int
        The upscaling factor wanted.
    variables : sequence of hashable
        Names of the data variables to upscale.
    frames : int, optional
        Frames the data have along their time dimension (1 without one); ``None`` does not
        filter by window.

    Returns
    -------
    str
        A pretrained name for :func:`xsr.models.files.load_model`.

    Raises
    ------
    NoShippedModelError
        If no shipped model serves the variables at that scale (:func:`upscale` then falls
        back to bicubic interpolation with a :class:`NoLearnedModelWarning`); the message
        lists what exists and the alternatives.

    Examples
    --------
    >>> from xsr.models.pretrained import PRETRAINED
    >>> best_pretrained(2, ["h", "u", "v", "vorticity", "tracer"]) in PRETRAINED
    True
    """
    from xsr.models.pretrained import PRETRAINED, pretrained_card

    wanted = {str(v) for v in variables}
    fields, specialised, of_scale, windowed = [], [], [], []
    for name in sorted(PRETRAINED):
        model_card = pretrained_card(name)  # the card alone: no weights are read
        card = model_card.to_dict()
        if int(card.get("scale", 0)) != int(scale):
            continue
        of_scale.append(name)
        if frames is not None and int(card.get("window", 1)) > int(frames):
            windowed.append(name)
            continue
        metrics = card.get("metrics") or {}
        if model_card.kind == "field":
            fields.append((name, model_card, metrics))
        elif not _is_natural(card) and not _no_temporal_gain(card):
            names = {str(v["name"]) for v in card.get("variables") or []}
            if names and names == wanted:
                specialised.append((name, model_card, metrics))
    if fields:
        field_name, field_psnr = _rank(fields)
        if specialised:
            spec_name, spec_psnr = _rank(specialised)
            if spec_psnr is not None and (field_psnr is None or spec_psnr > field_psnr):
                return spec_name
        return field_name
    if specialised:
        return _rank(specialised)[0]
    raise NoShippedModelError(
        f"There is no shipped model for scale={scale} that serves the data variables "
        f"{sorted(wanted)}: no field model (one that takes any variable) is shipped at that "
        "scale, and no specialised model takes exactly these variables (shipped models of that "
        f"scale: {of_scale}"
        + (f"; {windowed} read more than the data's {frames} frame(s)" if windowed else "")
        + f"). Pass model='bicubic' with scale={scale} for interpolation, train "
        "a model on your data with xsr.train.fit (docs: how-to/choose-model.md), or name a "
        "shipped model with model= and map names with variables={'data_name': 'model_name'}."
    )


def _field_alternative(scale: int, frames: int | None = None) -> str:
    """The shipped field model of ``scale`` named for a message, or how to get one."""
    try:
        # no specialised model has this variable, so only a field model can serve it
        name = best_pretrained(scale, [_NONAME], frames=frames)
    except NoShippedModelError:
        return f"a field model (none is shipped for scale={scale}: train one with xsr.train.fit)"
    return f"the universal field model (model={name!r})"


def _resolve_model(
    model: Any, scale: int | None, names: Sequence[Hashable], frames: int | None = None
) -> tuple[Any, str]:
    import torch

    if model is None:
        if scale is None:
            raise ValueError(
                "upscale needs model= (a shipped name, a model file or a loaded model) or "
                "scale= (to pick the best shipped model for that scale)."
            )
        from xsr.models.files import load_model

        try:
            name = best_pretrained(scale, names, frames=frames)
        except NoShippedModelError:
            warnings.warn(
                f"No shipped learned model serves variables {_shown(names)} at scale={scale}, so "
                f"they are upscaled by bicubic interpolation (recorded in the output's history "
                f"as model=bicubic-x{int(scale)} fallback=no-learned-model): no field model "
                "(one that takes any variable) is shipped at that scale, and no specialised "
                "model takes exactly these variables. To do better, train or fine-tune a "
                "model on your data with xsr.train.fit and pass it as model= (see "
                "docs/how-to/choose-model.md); pass model='bicubic' to choose interpolation "
                "without this warning.",
                NoLearnedModelWarning,
                stacklevel=4,
            )
            from xsr.models import get_model

            return get_model("bicubic", scale=int(scale), channels=1), _FALLBACK
        return load_model(name), name
    if isinstance(model, torch.nn.Module):
        return model, str(_card(model).get("name") or getattr(model, "arch", type(model).__name__))
    if isinstance(model, (str, os.PathLike)):
        from xsr.models import get_model, list_models
        from xsr.models.files import load_model

        key = os.fspath(model)
        if key in list_models():
            try:
                built = get_model(key, scale=int(scale or 2), channels=1)
            except (TypeError, ValueError):
                built = None
            if built is None or any(True for _ in built.parameters()):
                raise ValueError(
                    f"model={key!r} names an untrained architecture. Pass a shipped model "
                    "(xsr.models.pretrained.list_pretrained()), a model file trained with "
                    "xsr.train.fit, or model='bicubic' with scale= for interpolation."
                )
            if scale is None:
                raise ValueError(
                    f"model={key!r} is a parameter-free interpolation; give its factor with "
                    f"scale=, e.g. upscale(obj, model={key!r}, scale=2)."
                )
            return built, f"{key}-x{int(scale)}"
        loaded = load_model(key)
        return loaded, str(_card(loaded).get("name") or os.path.basename(key))
    raise TypeError(
        "model must be a shipped model name, a model file path, a loaded xsr model or None, got "
        f"{type(model).__name__}."
    )


def _groups(
    candidates: list[Hashable],
    variables: Any,
    card_vars: list[dict[str, Any]],
    channels: int,
    model_name: str,
) -> list[list[tuple[Hashable, str | None]]]:
    """Groups of (data name, model variable name) pairs, one model call per group."""
    card_names = [str(v["name"]) for v in card_vars]
    if variables is None:
        if card_names:
            if all(n in candidates for n in card_names):
                pairs = [(n, n) for n in card_names]
            elif len(candidates) == 1 and candidates[0] == _NONAME and channels == 1:
                pairs = [(_NONAME, card_names[0])]
            else:
                if candidates == [_NONAME]:
                    raise ValueError(
                        f"Model {model_name!r} was trained on variables {card_names}; the "
                        "unnamed DataArray cannot be matched to them by name. Name it, e.g. "
                        f"da.rename({card_names[0]!r}), or pass a Dataset with these variables."
                    )
                raise ValueError(
                    f"Model {model_name!r} was trained on variables {card_names} but the data "
                    f"has {_shown(candidates)}. Map them with variables=, e.g. "
                    f"variables={{{str(candidates[0])!r}: {card_names[0]!r}}}."
                )
            return [pairs] if channels > 1 else [[p] for p in pairs]
        if channels == 1:
            return [[(n, None)] for n in candidates]
        if len(candidates) != channels:
            raise ValueError(
                f"Model {model_name!r} takes {channels} variables but the data has "
                f"{len(candidates)} on the spatial grid ({_shown(candidates)}); pass "
                f"variables= with {channels} names in the model's channel order."
            )
        return [[(n, None) for n in candidates]]
    if isinstance(variables, Mapping):
        pairs = [(k, str(v)) for k, v in variables.items()]
    else:
        if isinstance(variables, (str, bytes)) or not isinstance(variables, Sequence):
            variables = [variables]
        names = list(variables)
        if card_names and channels > 1:
            if len(names) != len(card_names):
                raise ValueError(
                    f"variables={names} gives {len(names)} names but model {model_name!r} "
                    f"takes {len(card_names)} ({card_names}), in that order."
                )
            pairs = list(zip(names, card_names))
        elif card_names:
            pairs = [(n, card_names[0]) for n in names]
        else:
            pairs = [(n, None) for n in names]
    missing = [k for k, _ in pairs if k not in candidates]
    if missing:
        raise ValueError(
            f"variables names {missing}, which are not data variables on the spatial grid; "
            f"available: {_shown(candidates)}."
        )
    if card_names:
        unknown = [v for _, v in pairs if v not in card_names]
        if unknown:
            raise ValueError(
                f"variables maps to {unknown}, which model {model_name!r} does not know; its "
                f"variables are {card_names}."
            )
    if channels == 1:
        return [[p] for p in pairs]
    if len(pairs) != channels:
        raise ValueError(
            f"Model {model_name!r} takes {channels} variables but variables= gives {len(pairs)}."
        )
    if card_names:
        order = {n: i for i, n in enumerate(card_names)}
        pairs = sorted(pairs, key=lambda p: order[str(p[1])])
    return [pairs]


def _check_units(
    arrays: Mapping[Hashable, xr.DataArray],
    pairs: list[tuple[Hashable, str | None]],
    card_vars: list[dict[str, Any]],
    model_name: str,
    alternative: str = "a field model",
) -> dict[Hashable, tuple[str, str]]:
    """Check data units against a specialised model's card with a units library.

    Returns ``{data name: (its units, the card's units)}`` for the variables to convert (same
    dimension, different units: ``cm/s`` for ``m s-1``); equal units (``K`` and ``kelvin``)
    pass, incompatible ones are refused. A variable without ``units`` passes unchecked (the
    input-range guard still watches its values).
    """
    units = {str(v["name"]): v.get("units") for v in card_vars}
    conversions: dict[Hashable, tuple[str, str]] = {}
    for data_name, model_var in pairs:
        if model_var is None:
            continue
        if data_name != _NONAME and str(data_name) != model_var:
            warnings.warn(
                f"Data variable {_label(data_name)} is fed to model {model_name!r} as its variable "
                f"{model_var!r} (names differ; mapped by variables=).",
                VariableNameWarning,
                stacklevel=4,
            )
        want = units.get(model_var)
        have = arrays[data_name].attrs.get("units")
        if not want or have is None or str(have).strip() == str(want).strip():
            continue
        factor = _unit_factor(str(have), str(want))
        if factor is None:
            raise ValueError(
                f"Data variable {_label(data_name)} has units {have!r} but model {model_name!r} "
                f"expects {model_var!r} in {want!r}, and these are not convertible (different "
                "physical dimensions, or units the units library cannot read); check the "
                f"variable and its mapping (variables=), convert the data first, or use "
                f"{alternative} or model='bicubic', which do not depend on units."
            )
        if factor != (1.0, 0.0):
            conversions[data_name] = (str(have), str(want))
    return conversions


def _unit_factor(have: str, want: str) -> tuple[float, float] | None:
    """``(a, b)`` with ``value_in_want = a * value_in_have + b``, or None if not convertible.

    Units are read with cf-xarray's registry for pint (CF and UDUNITS spellings: ``m s-1``,
    ``kelvin``, ``degC``, ``1``).
    """
    import pint
    from cf_xarray.units import units as ureg

    try:
        zero = ureg.Quantity(0.0, have).to(want).magnitude
        one = ureg.Quantity(1.0, have).to(want).magnitude
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, AssertionError):
        return None
    a, b = float(one - zero), float(zero)
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return None
    a = 1.0 if abs(a - 1.0) < 1e-12 else a
    b = 0.0 if abs(b) < 1e-12 * max(1.0, abs(a)) else b
    return a, b


def _convert_units(da: xr.DataArray, label: str, have: str, want: str) -> xr.DataArray:
    """``da`` converted from ``have`` to ``want`` units (lazily on dask), with a warning."""
    factor = _unit_factor(have, want)
    if factor is None:  # checked by _check_units before
        raise ValueError(f"units {have!r} cannot be converted to {want!r}.")
    a, b = factor
    warnings.warn(
        f"Data variable {label} is in {have!r}; the model expects {want!r}, so it is "
        f"converted ({want} = {a:.6g} * {have} + {b:.6g}) before upscaling and the output is in "
        f"{want!r} (recorded in history).",
        UnitsConvertedWarning,
        stacklevel=4,
    )
    out = da * np.asarray(a, dtype=da.dtype) + np.asarray(b, dtype=da.dtype)
    out.attrs = dict(da.attrs)
    return out


def _refined_coord(obj: Any, dim: Hashable, scale: int) -> xr.DataArray | None:
    if dim not in obj.coords:
        return None
    coord = obj.coords[dim]
    if coord.dtype == object:
        with contextlib.suppress(TypeError, ValueError):  # numbers stored as Python objects
            coord = coord.copy(data=np.asarray(coord.values, dtype="float64"))
    if coord.size == 1:
        raise ValueError(
            f"Dimension {dim!r} has a single cell, so the spacing of its fine grid is unknown. "
            f"Give at least two cells along {dim!r}, or drop its coordinate "
            f"(obj.drop_vars({dim!r})) to upscale on grid indices."
        )
    try:
        values = refine_axis(coord, scale)
    except TypeError as err:
        raise ValueError(
            f"Cannot build the fine grid of dimension {dim!r}: {err} Replace the coordinate by "
            f"numbers (cell centres), or drop it (obj.drop_vars({dim!r})) to upscale on grid "
            "indices."
        ) from err
    except ValueError as err:
        raise ValueError(
            f"Cannot build the fine grid of dimension {dim!r}: {err} Upscaling needs uniformly "
            "spaced cell centres; regrid the data first."
        ) from err
    return xr.DataArray(values, dims=(dim,), attrs=dict(coord.attrs))


def _bounds_names(obj: Any, dim: Hashable) -> list[Hashable]:
    names = []
    if dim in obj.coords:
        b = obj.coords[dim].attrs.get("bounds")
        if b is not None:
            names.append(b)
    names += [f"{dim}_bnds", f"{dim}_bounds"]
    variables = obj.variables if isinstance(obj, xr.Dataset) else obj.coords
    out = []
    for n in names:
        if n in variables and n not in out:
            v = variables[n]
            if v.ndim == 2 and v.dims[0] == dim and v.shape[1] == 2:
                out.append(n)
    return out


def upscale(
    obj: xr.Dataset | xr.DataArray,
    model: Any = None,
    *,
    scale: int | None = None,
    variables: Any = None,
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    conserve: bool = False,
    periodic: Any = None,
    device: str = "auto",
    batch_size: int | str = "auto",
    tile: Any = None,
    time_boundary: str = "reflect",
    precision: str = "float32",
) -> xr.Dataset | xr.DataArray:
    """Super-resolve a Dataset or DataArray with a model; lazy on dask-backed input.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Low-resolution movie with two spatial dimensions (and a time dimension for windowed
        models); any other dimensions (member, level, ...) are batched.
    model : str, path, xsr model or None
        A shipped model name, a model file path, a loaded model (``xsr.models.files.load_model``
        or a trained ``SRModel``), or ``"bicubic"`` (interpolation through the same machinery;
        needs ``scale=``). ``None`` picks the best shipped model for ``scale=`` (see
        :func:`best_pretrained`). The scale comes from the model.
    scale : int, optional
        Needed without a model or with ``"bicubic"``; otherwise it must equal the model's scale.
    variables : str, list or dict, optional
        Data variables to upscale. A list is taken in the model card's variable order; a dict
        ``{data_name: model_name}`` maps names that differ (with a
        :class:`VariableNameWarning`). Default: the card's variables (all spatial variables,
        one at a time, for a single-channel model without a card).
    dims : (str, str), optional
        The ``(y, x)`` dimensions; found by name or CF ``axis`` otherwise.
    time_dim : str
        Name of the time dimension (required for windowed models).
    conserve : bool
        Make ``coarsen(output) == input`` hold to float precision (block means).
    periodic : None, False, "x", "y" or ("y", "x")
        Wrap around these axes. ``None`` reads periodicity from the data
        (:func:`xsr.coords.periodic_dims`): a dimension coordinate with a ``period``
        attribute spanning it, or a global longitude (360 degrees).
    device : str
        ``"auto"`` (a GPU where one exists), ``"cpu"`` or ``"cuda"``.
    batch_size : int or "auto"
        Output frames per forward; activations, not dask chunks, set the memory.
    tile : int, (int, int), None or False
        Spatial tile in low-resolution pixels (run with halos, so the output equals untiled
        inference to float32 rounding); ``None`` picks cache-sized tiles, smaller when a frame
        would exceed the engine's memory budget; ``False`` never tiles.
    time_boundary : {"reflect", "nearest", "periodic"}
        Frames beyond the ends of the time axis for windowed models: ``"reflect"`` mirrors the
        series including the end frame.
    precision : {"float32", "bfloat16"}
        Arithmetic of the network: ``"float32"`` (default) is exact to float rounding;
        ``"bfloat16"`` can be faster where the hardware has bfloat16 units, with errors of about
        1e-3 of the data range: for previews, not results (see :func:`xsr.engine.infer`).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        Same type as ``obj`` on the fine grid: spatial coordinates are fine cell centres
        consistent with ``coarsen``, bounds are refined, CF attributes kept, ``history`` gains a
        sanitised provenance line (the model's ``card_sha256``, which covers its card and
        weights; ``weights=none`` for bicubic). A descending axis (latitude from north to south)
        is fed to the model ascending and turned back, so the output keeps the input's order.
        A 2-D latitude/longitude coordinate pair (curvilinear grids) is refined on the sphere
        (:func:`xsr.coords.refine_latlon`), attributes kept. Variables without the spatial
        dimensions pass through unchanged; variables with only one of them, and other
        coordinates on the coarse grid, are dropped with a warning. NaN and +-inf cells are NaN on the fine grid.
        A field model fine-tuned with ``fit(..., site=True)`` adds its grid's site detail
        (:mod:`xsr.site`) to the variables it learnt it for, matched by coordinate, and
        ``history`` gains ``site=<variables> site_sha256=<digest>``; data on another grid
        raise ``ValueError``.
        Integer data comes back as float32; data still packed (CF attributes
        ``scale_factor``/``add_offset``/``_FillValue``/``missing_value`` in ``attrs``) is
        CF-decoded first.

    Raises
    ------
    ValueError
        For a scale contradicting the model, unknown dims, missing time dimension or too few
        frames for a windowed model, non-uniform coordinates, or variables/units that do not
        match the model card.

    Warns
    -----
    VariableNameWarning
        When ``variables=`` feeds a data variable to a model variable of another name.
    NonFiniteWarning
        When a variable holds +inf or -inf cells (masked like NaN). On numpy input it is raised
        at the call, with the variable's count; on dask input it is raised when the result is
        computed, by each task that meets such cells, with that block's count (counting needs
        the data, and the call stays lazy).
    InputRangeWarning
        When cells of a variable lie more than :data:`INPUT_RANGE_STDS` normalisation standard
        deviations from a specialised model's training mean (wrong units, a 1e30 outlier);
        raised like :class:`NonFiniteWarning`, at the call or at compute time.
    PackedDataWarning
        When a variable still carries CF packing or fill attributes (opened with
        ``mask_and_scale=False``); it is decoded lazily before upscaling.
    xsr._chunked.HaloChunkWarning
        When chunks smaller than the halo are merged.

    Examples
    --------
    >>> import xsr.testing
    >>> ds = xsr.testing.random_movie(4, 8, 8)
    >>> hi = upscale(ds, "bicubic", scale=2)
    >>> hi["h"].shape
    (4, 16, 16)
    >>> lazy = upscale(ds.chunk({"time": 2}), "bicubic", scale=2)   # nothing computed yet
    >>> bool(abs(lazy["h"] - hi["h"]).max() < 1e-5)
    True
    """
    from xsr._chunked import upscale_array
    from xsr._version import __version__
    from xsr.engine import ModelRef, resolve_device

    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise TypeError(
            f"upscale works on an xarray Dataset or DataArray, got {type(obj).__name__}."
        )
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1
    ):
        raise ValueError(f"scale must be a positive int, got {scale!r}.")
    resolve_device(device)
    y_dim, x_dim = spatial_dims(obj, dims)
    is_da = isinstance(obj, xr.DataArray)
    if is_da:
        arrays: dict[Hashable, xr.DataArray] = {
            (obj.name if obj.name is not None else _NONAME): obj
        }
    else:
        arrays = dict(obj.data_vars.items())
    candidates = [k for k, v in arrays.items() if y_dim in v.dims and x_dim in v.dims]
    if not candidates:
        raise ValueError(
            f"No variable has both spatial dimensions {(y_dim, x_dim)}; nothing to upscale."
        )

    # frames along time_dim (1 without it): a windowed model cannot be picked for fewer
    frames = min(arrays[k].sizes.get(time_dim, 1) for k in candidates)
    net, model_name = _resolve_model(model, scale, candidates, frames)
    fallback = model_name == _FALLBACK
    if fallback:
        model_name = f"bicubic-x{int(scale or 2)}"
    ref = ModelRef.from_model(net, name=model_name)
    if ref.window > 1 and variables is None and not ref.card.variables:
        # a windowed model without a card: static fields (no time axis) are not its input
        timed = [k for k in candidates if time_dim in arrays[k].dims]
        candidates = timed or candidates
    if scale is not None and int(scale) != ref.scale:
        raise ValueError(
            f"scale={scale} contradicts model {model_name!r}, which upscales by {ref.scale}; "
            "drop scale= or pick a model of that scale."
        )
    s = ref.scale
    card = _card(ref)
    field = card.get("kind") == "field"
    card_vars = [] if field else list(card.get("variables") or [])
    # what the units guards of a specialised model suggest instead: the shipped field model
    alternative = "a field model" if field else _field_alternative(s, frames)
    groups = _groups(candidates, variables, card_vars, ref.channels, model_name)
    conversions: dict[Hashable, tuple[str, str]] = {}
    for pairs in groups:
        conversions.update(_check_units(arrays, pairs, card_vars, model_name, alternative))
    py, px = resolve_periodic(periodic, obj, (y_dim, x_dim))
    if time_boundary not in ("reflect", "nearest", "periodic"):
        raise ValueError(
            f"time_boundary must be 'reflect', 'nearest' or 'periodic', got {time_boundary!r}."
        )

    fine_y = _refined_coord(obj, y_dim, s)
    fine_x = _refined_coord(obj, x_dim, s)
    kwargs = {
        "model_ref": ref,
        # a field model normalises every frame by its own statistics (units-free)
        "normalisation": "frame" if field else None,
        "conserve": bool(conserve),
        "time_boundary": time_boundary,
        "periodic": (py, px),
        "device": device,
        "batch_size": batch_size,
        "tile": tile,
        "precision": precision,
    }

    # Descending axes (ERA5's latitudes) are fed to the model ascending, the orientation it was
    # trained on, and turned back after: a lazy reversed slice, no copy.
    flips = {d: slice(None, None, -1) for d in (y_dim, x_dim) if _descending(obj, d)}
    results: dict[Hashable, xr.DataArray] = {}
    out_attrs: dict[Hashable, dict[Hashable, Any]] = {}
    screened: dict[Hashable, xr.DataArray] = {}
    sited: list[str] = []
    for pairs in groups:
        members = []
        for name, model_var in pairs:
            label = _label(name)
            member = _decode_raw(arrays[name], label)
            out_attrs[name] = dict(member.attrs)
            if name in conversions:
                member = _convert_units(member, label, *conversions[name])
                out_attrs[name]["units"] = conversions[name][1]
            member = _screen(member, label, _range_stats(card, model_var), model_name, alternative)
            screened[name] = member
            members.append(member.isel(flips) if flips else member)
        members = list(xr.broadcast(*members)) if len(members) > 1 else members
        has_time = time_dim in members[0].dims
        if ref.window > 1:
            if not has_time:
                raise ValueError(
                    f"Model {model_name!r} reads windows of {ref.window} frames, but variable "
                    f"{_label(pairs[0][0])} has no time dimension {time_dim!r} (dims "
                    f"{members[0].dims}); pass time_dim= or use a 2-D model."
                )
            if members[0].sizes[time_dim] < ref.window:
                raise ValueError(
                    f"Model {model_name!r} reads windows of {ref.window} frames, but "
                    f"{_label(pairs[0][0])} has only {members[0].sizes[time_dim]} along "
                    f"{time_dim!r}; give at least {ref.window} frames or use a 2-D model."
                )
        tdim = time_dim if has_time else _T
        if not has_time:
            members = [m.expand_dims(_T) for m in members]
        # Variables, not DataArrays: coordinates are rebuilt later, no alignment needed.
        stacked = xr.DataArray(xr.Variable.concat([m.variable for m in members], dim=_CH))
        out = xr.apply_ufunc(
            upscale_array,
            stacked,
            input_core_dims=[[_CH, tdim, y_dim, x_dim]],
            output_core_dims=[[_CH, tdim, _YF, _XF]],
            exclude_dims={y_dim, x_dim},
            dask="allowed",
            kwargs=kwargs,
        )
        out = out.rename({_YF: y_dim, _XF: x_dim})
        for i, (name, _) in enumerate(pairs):
            piece = out.isel({_CH: i})
            if not has_time:
                piece = piece.isel({_T: 0})
            if flips:
                piece = piece.isel(flips)
            src = arrays[name]
            order = [d for d in src.dims if d in piece.dims]
            piece = piece.transpose(*order, ...)
            # a field model fine-tuned on this grid adds the grid's stationary sub-grid detail
            key = "data" if name == _NONAME else str(name)
            term = None
            if field:
                fine = {y_dim: fine_y, x_dim: fine_x}
                term = site_term(
                    getattr(net, "site", None),
                    card.get("site"),
                    key,
                    screened[name],
                    fine,
                    scale=s,
                    conserve=conserve,
                    model_name=model_name,
                )
            if term is not None:
                piece = (piece + term).astype(piece.dtype)
                sited.append(key)
            piece.attrs = out_attrs[name]
            results[name] = piece.variable

    line = (
        f"xsr {__version__} upscale: model={ref.name} {_digest_text(net, card, ref)} scale={s} "
        f"halo_time={ref.time_radius} halo_space={ref.receptive_radius} conserve={bool(conserve)} "
        f"time_boundary={time_boundary} periodic_y={py} periodic_x={px}"
    )
    if field:
        line += " kind=field"
    if sited:
        line += f" site={','.join(sited)} site_sha256={site_digest(net.site)}"
    if fallback:
        line += " fallback=no-learned-model"
    for name, (have, want) in conversions.items():
        line += f" units_converted={str(name)!r}:{have!r}->{want!r}"
    return _assemble(
        obj, results, y_dim, x_dim, fine_y, fine_x, s, line, explicit=variables is not None
    )


def _digest_text(net: Any, card: Mapping[str, Any], ref: Any) -> str:
    """The model's digests for ``history``.

    ``card_sha256`` (:func:`xsr.models.card.card_digest`) covers the whole card, and with it the
    weights' sha256 it records; a parameter-free model (bicubic) has no weights to hash.
    """
    from xsr.models.card import card_digest

    if not any(True for _ in net.parameters()):
        return "weights=none"
    text = f"weights_sha256={ref.sha256}"
    if card:
        text += f" card_sha256={card_digest(card)}"
    return text


def _refine_bounds_data(data: Any, scale: int, coord: xr.DataArray | None) -> Any:
    """refine_axis_bounds on numpy data, or lazily on dask data."""
    import dask.array as da

    if coord is not None:
        coord = coord.copy(data=np.asarray(coord.values))  # a small 1-D index, never dask
    if isinstance(data, da.Array):
        n = data.shape[0]
        return data.rechunk(-1).map_blocks(
            refine_axis_bounds, scale, coord, chunks=((scale * n,), (2,)), dtype="float64"
        )
    return refine_axis_bounds(np.asarray(data), scale, coord)


def _latlon_kernel(block: np.ndarray, scale: int) -> np.ndarray:
    return np.stack(refine_latlon(block[0], block[1], scale))


def _refine_aux_latlon(
    obj: xr.Dataset | xr.DataArray, y_dim: Hashable, x_dim: Hashable, scale: int
) -> dict[Hashable, xr.Variable]:
    """A 2-D latitude/longitude coordinate pair refined on the sphere (lazily for dask)."""
    import dask.array as dsa

    grid = {n: v for n, v in obj.coords.items() if v.ndim == 2 and set(v.dims) == {y_dim, x_dim}}
    lats = [n for n, v in grid.items() if is_latitude(v, n)]
    lons = [n for n, v in grid.items() if is_longitude(v, n)]
    if len(lats) != 1 or len(lons) != 1:
        return {}
    lat, lon = grid[lats[0]], grid[lons[0]]
    pair = [lat.variable.transpose(y_dim, x_dim).data, lon.variable.transpose(y_dim, x_dim).data]
    ny, nx = lat.sizes[y_dim], lat.sizes[x_dim]
    if any(isinstance(p, dsa.Array) for p in pair):
        both = dsa.stack([dsa.asarray(p).rechunk(-1) for p in pair]).rechunk(-1)
        fine = both.map_blocks(
            _latlon_kernel, scale, chunks=((2,), (scale * ny,), (scale * nx,)), dtype="float64"
        )
    else:
        fine = _latlon_kernel(np.stack([np.asarray(p) for p in pair]), scale)
    out = {}
    for i, (name, coord) in enumerate(((lats[0], lat), (lons[0], lon))):
        var = xr.Variable((y_dim, x_dim), fine[i], dict(coord.attrs))
        out[name] = var.transpose(*coord.dims)
    return out


def _assemble(
    obj: xr.Dataset | xr.DataArray,
    results: Mapping[Hashable, xr.Variable],
    y_dim: Hashable,
    x_dim: Hashable,
    fine_y: xr.DataArray | None,
    fine_x: xr.DataArray | None,
    scale: int,
    line: str,
    explicit: bool,
) -> xr.Dataset | xr.DataArray:
    spatial = {y_dim, x_dim}
    bounds = {}
    for dim in (y_dim, x_dim):
        for n in _bounds_names(obj, dim):
            var = obj.variables[n] if isinstance(obj, xr.Dataset) else obj.coords[n].variable
            coord = obj.coords.get(dim, None)
            data = _refine_bounds_data(var.data, scale, coord)
            bounds[n] = xr.Variable(var.dims, data, var.attrs)
    new_coords: dict[Hashable, Any] = {}
    if fine_y is not None:
        new_coords[y_dim] = fine_y.variable
    if fine_x is not None:
        new_coords[x_dim] = fine_x.variable
    refined_2d = _refine_aux_latlon(obj, y_dim, x_dim, scale)
    lost = []
    for n, v in obj.coords.items():
        if n in (y_dim, x_dim):
            continue
        if n in bounds:
            new_coords[n] = bounds[n]
        elif n in refined_2d:
            new_coords[n] = refined_2d[n]
        elif not spatial & set(v.dims):
            new_coords[n] = v.variable
        else:
            lost.append(n)
    if lost:
        warnings.warn(
            f"Coordinates {[str(n) for n in lost]} lie on the coarse grid and are not carried to "
            "the fine grid (only 1-D dimension coordinates, their bounds and a 2-D "
            "latitude/longitude pair are refined); recompute them on the fine grid, or upscale "
            "them as data variables (obj.reset_coords(...)).",
            UserWarning,
            stacklevel=3,
        )

    if isinstance(obj, xr.DataArray):
        (var,) = results.values()
        out = xr.DataArray(var, coords=new_coords, name=obj.name)
        out.attrs = append_history(obj.attrs, line)
        return out

    data_vars: dict[Hashable, Any] = {}
    dropped = []
    for n, v in obj.data_vars.items():
        if n in results:
            data_vars[n] = results[n]
        elif n in bounds:
            data_vars[n] = bounds[n]
        elif not spatial & set(v.dims):
            data_vars[n] = v.variable
        elif explicit and y_dim in v.dims and x_dim in v.dims:
            continue  # on the grid but not chosen by variables=: left out as asked
        else:
            dropped.append(n)
    if dropped:
        warnings.warn(
            f"Variables {dropped} are on the coarse grid but were not upscaled (not among the "
            "model's variables, or with only one spatial dimension); they are left out of the "
            "result. Select them with variables= or upscale them separately.",
            UserWarning,
            stacklevel=3,
        )
    out_ds = xr.Dataset(data_vars, coords=new_coords)
    out_ds.attrs = append_history(obj.attrs, line)
    return out_ds

"""Site detail: the stationary sub-grid pattern a field model fine-tuned on one grid adds.

A field model is translation-invariant and units-free: it sees one frame at a time, normalised by
that frame's mean and standard deviation, and cannot know *where* a cell lies. On a fixed grid
much of the detail that block means remove is the same in every frame (orography, coastlines, the
edge of a current), and a model fine-tuned on that grid can learn it. The *site detail* of a
variable is a time mean of the network's remaining error in frame-normalised units (recent
frames weighing more where the pattern drifts), shrunk towards zero, its time scale and
shrinkage chosen on held-out frames; :func:`xsr.train.fit` learns it with
``site=True`` (:mod:`xsr.train.site`) and :func:`xsr.upscaling.upscale` adds it to the network's
output, times each low-resolution frame's standard deviation. So the field model's properties
hold with it: ``f(a*x + b) = a*f(x) + b`` for ``a > 0``, a constant frame stays constant, NaN
cells stay NaN, and with ``conserve=True`` only its part with zero block means is added.

The maps belong to one grid. They are matched to the data by coordinate (nearest cell centre,
within a quarter of a fine cell), so a subset of that grid, either orientation of an axis, or a
selection of levels works; data on any other grid is refused with the remedy named.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsr.digest import sha256_array, sha256_json

__all__ = ["site_digest", "site_term"]


def site_digest(maps: Mapping[str, Any]) -> str:
    """sha256 of site detail maps: each map's float32 values and shape, by name.

    Parameters
    ----------
    maps : mapping of str to array-like
        The maps, e.g. ``model.site``.

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> site_digest({"t": np.zeros((2, 2))}) == site_digest({"t": np.zeros((2, 2), "float32")})
    True
    """
    return sha256_json({str(k): sha256_array(_numpy(v).astype("float32")) for k, v in maps.items()})


def _numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    return np.asarray(detach().cpu().numpy() if detach is not None else value)


def _mismatch(model_name: str, name: str, what: str) -> ValueError:
    return ValueError(
        f"Model {model_name!r} carries site detail for variable {name!r} learnt on another "
        f"grid: {what}. Site detail belongs to the grid the model was fine-tuned on; upscale "
        "data on that grid (a subset or a selection of its levels is fine), or use the network "
        "alone: set model.site = None on the loaded model, or use the universal model."
    )


def _align_axis(
    m: xr.DataArray, dim: Hashable, labels: Any, size: int, model_name: str, name: str
) -> xr.DataArray:
    """``m`` along ``dim`` at ``labels`` (nearest within a quarter step), or by position."""
    if labels is None or dim not in m.coords:
        if m.sizes[dim] != size:
            raise _mismatch(model_name, name, f"{m.sizes[dim]} cells along {dim!r}, data {size}")
        return m
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = labels[None]
        squeeze = True
    else:
        squeeze = False
    kw: dict[str, Any] = {}
    if np.issubdtype(labels.dtype, np.number) and np.issubdtype(m[dim].dtype, np.number):
        step = np.diff(np.asarray(m[dim].values, dtype="float64"))
        kw = (
            {"method": "nearest", "tolerance": 0.25 * float(np.min(np.abs(step)))}
            if step.size
            else {}
        )
    try:
        out = m.sel({dim: labels}, **kw)
    except (KeyError, ValueError) as err:
        have = np.asarray(m[dim].values)
        raise _mismatch(
            model_name,
            name,
            f"its {dim!r} runs {have[0]!r} to {have[-1]!r} ({have.size} cells) and does not "
            f"hold the data's {labels[0]!r} to {labels[-1]!r} ({err})",
        ) from err
    return out.isel({dim: 0}) if squeeze else out


def site_term(
    maps: Mapping[str, Any] | None,
    described: Mapping[str, Any] | None,
    name: str,
    data: xr.DataArray,
    fine: Mapping[Hashable, xr.DataArray | None],
    *,
    scale: int,
    conserve: bool,
    model_name: str,
) -> xr.DataArray | None:
    """The site detail to add to the upscaled ``data``, or ``None`` when it has none.

    Parameters
    ----------
    maps : mapping of str to array-like, or None
        The site detail maps by variable (a field model's ``site``).
    described : mapping or None
        Their description (the model card's ``site``: ``coords`` and ``variables``).
    name : str
        The data variable's name (site detail is per variable of the grid it was learnt on).
    data : xarray.DataArray
        The low-resolution variable as given (its non-spatial coordinates select levels).
    fine : mapping
        ``{y_dim: fine y coordinate or None, x_dim: ...}``: the output's spatial coordinates.
    scale : int
        The model's factor.
    conserve : bool
        Keep only the part with zero block means (the output's block means stay the input's).
    model_name : str
        For messages.

    Returns
    -------
    xarray.DataArray or None
        Lazy like ``data``: the site map (aligned to the output's cells, no coordinates) times
        each frame's standard deviation, in ``data``'s units; dims a subset of the output's.

    Raises
    ------
    ValueError
        When the data's grid or levels are not the ones the site detail was learnt on.

    Examples
    --------
    >>> lo = xr.DataArray(np.arange(8.0).reshape(2, 2, 2), dims=("time", "y", "x"))
    >>> maps = {"t": np.array([[1.0, -1.0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])}
    >>> described = {"coords": {"y": None, "x": None},
    ...              "variables": {"t": {"dims": ["y", "x"], "shape": [4, 4]}}}
    >>> term = site_term(maps, described, "t", lo, {"y": None, "x": None}, scale=2,
    ...                  conserve=False, model_name="demo")
    >>> term.dims, [round(float(v), 3) for v in term.isel(y=0, x=0).values]   # map x frame std
    (('time', 'y', 'x'), [1.118, 1.118])
    >>> site_term(maps, described, "other", lo, {"y": None, "x": None}, scale=2,
    ...           conserve=False, model_name="demo") is None
    True
    """
    maps, described = maps or {}, described or {}
    if name not in maps or name not in (described.get("variables") or {}):
        return None
    meta = described["variables"][name]
    coords = described.get("coords") or {}
    dims = list(meta["dims"])
    m = xr.DataArray(
        _numpy(maps[name]).astype("float32"),
        dims=dims,
        coords={d: coords[d] for d in dims if coords.get(d) is not None},
    )
    for dim, labels in fine.items():
        if dim not in m.dims:
            raise _mismatch(
                model_name, name, f"its dims are {dims}, the data's grid is {list(fine)}"
            )
        size = data.sizes[dim] * scale
        m = _align_axis(m, dim, None if labels is None else labels.values, size, model_name, name)
    for dim in [d for d in dims if d not in fine]:
        if dim in data.dims:
            labels = data[dim].values if dim in data.coords else None
            m = _align_axis(m, dim, labels, data.sizes[dim], model_name, name)
        elif dim in data.coords and data[dim].ndim == 0:
            m = _align_axis(m, dim, data[dim].values, 1, model_name, name)
        else:
            raise _mismatch(model_name, name, f"it varies along {dim!r}, which the data lacks")
    ydim, xdim = fine
    m = m.drop_vars(list(m.coords)).transpose(..., ydim, xdim)
    values = m.values
    if conserve:
        *lead, h, w = values.shape
        blocks = values.reshape(*lead, h // scale, scale, w // scale, scale).mean(axis=(-3, -1))
        values = values - np.repeat(np.repeat(blocks, scale, axis=-2), scale, axis=-1)
    std = data.astype("float64").std([ydim, xdim], skipna=True)
    term = xr.DataArray(std.variable) * xr.DataArray(values, dims=m.dims)
    return term.astype("float32")

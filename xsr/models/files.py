"""Model files: ``NAME.safetensors`` (weights, tensors only) plus ``NAME.json`` (the model card).

:func:`save_model` writes both (the card last, with the sha256 of the weights file);
:func:`load_model` checks everything before trusting anything: the card's JSON and fields, the
architecture name, the sha256 of the weights bytes, the safetensors header, and the tensor names
and shapes against the architecture rebuilt from the card, and last the card's own digest
(``card_sha256``, :func:`xsr.models.card.card_digest`: it covers every card field and the weights'
sha256, so a card edited by hand, with its normalisation scaled or its variables reordered, is
refused). Any disagreement raises :class:`ModelFileError` naming the file, the mismatch and the
fix. Nothing is unpickled. A card edited on purpose is re-stamped with :func:`stamp_card`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch

from xsr.digest import sha256_bytes, sha256_file
from xsr.models.base import SRModel
from xsr.models.card import CARD_DIGEST_FIELD, ModelCard, ModelFileError, card_digest

__all__ = [
    "ModelFileError",
    "load_model",
    "model_paths",
    "save_model",
    "stamp_card",
]

_SUFFIXES = (".safetensors", ".json")
#: Prefix of a field model's site detail tensors in the weights file (``site.<variable>``).
SITE_PREFIX = "site."
#: Card fields that are facts about the model, always taken from it by :func:`save_model`.
_DERIVED = (
    "arch",
    "config",
    "scale",
    "window",
    "time_radius",
    "receptive_radius",
    "sha256",
    "parameters",
    "xsr_version",
)


def model_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The weights and card paths of a model file, given with or without suffix.

    Parameters
    ----------
    path : str or path-like
        ``"run/model"``, ``"run/model.safetensors"`` or ``"run/model.json"``.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        ``(weights, card)``.

    Examples
    --------
    >>> [p.name for p in model_paths("runs/fsrcnn.safetensors")]
    ['fsrcnn.safetensors', 'fsrcnn.json']
    """
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in _SUFFIXES else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _default_variables(channels: int) -> list[dict[str, str]]:
    return [{"name": f"var{i}", "units": "1", "long_name": ""} for i in range(channels)]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sorted_metadata(data: bytes) -> bytes:
    """``data`` with the safetensors header's ``__metadata__`` keys in sorted order.

    safetensors writes the metadata map in a hash order that changes from call to call, so the
    same weights would get another sha256 on every save. Reordering keeps the header's length
    (the same characters), so the tensor offsets stay valid.
    """
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__")
    if not meta:
        return data
    header["__metadata__"] = dict(sorted(meta.items()))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(text) > n:  # pragma: no cover - the same keys and values cannot grow
        return data
    return data[:8] + text.ljust(n, b" ") + data[8 + n :]


def save_model(
    model: SRModel,
    path: str | os.PathLike[str],
    *,
    card: ModelCard | dict[str, Any] | None = None,
    **card_fields: Any,
) -> Path:
    """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (model card).

    The card starts from ``card`` (or ``model.card``, or an empty card), is updated with
    ``card_fields`` (e.g. ``name=``, ``variables=``, ``normalisation=``, ``degradation=``,
    ``training=``, ``metrics=``, ``description=``), and its facts about the model (arch,
    config, scale, window, radii, parameters, xsr version, sha256) are always taken from
    ``model`` and the written weights. Without ``variables`` the channels are named ``var0...``
    (units ``"1"``); without ``normalisation`` it is the identity (mean 0, std 1).

    Parameters
    ----------
    model : SRModel
        The model to save.
    path : str or path-like
        Destination, with or without a ``.safetensors`` / ``.json`` suffix.
    card : ModelCard or dict, optional
        Card fields to start from.
    **card_fields
        Card fields to set.

    Returns
    -------
    pathlib.Path
        The ``.safetensors`` path.

    Raises
    ------
    TypeError
        If ``model`` is not an :class:`SRModel`.
    ValueError
        If a derived field is passed in ``card_fields`` or the card is invalid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from xsr.models.registry import get_model
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo"
    >>> save_model(get_model("fsrcnn", scale=2), path, name="demo").name
    'demo.safetensors'
    """
    from safetensors.torch import save as st_save

    if not isinstance(model, SRModel):
        raise TypeError(f"model must be an xsr SRModel, got {type(model).__name__}.")
    derived = sorted(set(card_fields) & set(_DERIVED))
    if derived:
        raise ValueError(
            f"save_model: {derived} are derived from the model and cannot be set; "
            "build the model with the configuration you want instead."
        )
    weights_path, card_path = model_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)

    base = card if card is not None else model.card
    fields: dict[str, Any] = {}
    if isinstance(base, ModelCard):
        fields = dataclasses.asdict(base)
    elif isinstance(base, dict):
        fields = dict(base)
    elif base is not None:
        raise TypeError(f"card must be a ModelCard or a dict, got {type(base).__name__}.")
    fields.update(card_fields)
    fields.setdefault("name", weights_path.stem)
    fields.setdefault("variables", _default_variables(model.channels))
    if len(fields["variables"]) != model.channels:
        raise ValueError(
            f"save_model: the card lists {len(fields['variables'])} variables but the model has "
            f"channels={model.channels}; give one variable per channel."
        )
    fields.setdefault(
        "normalisation", {v["name"]: {"mean": 0.0, "std": 1.0} for v in fields["variables"]}
    )

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tensors.update(_site_tensors(model, fields))
    data = _sorted_metadata(st_save(tensors, metadata={"format": "pt", "arch": model.arch}))
    fields.update(
        arch=model.arch,
        config=model.config,
        scale=model.scale,
        window=model.window,
        time_radius=model.time_radius,
        receptive_radius=model.receptive_radius,
        parameters=model.parameter_count(),
        sha256=sha256_bytes(data),
        xsr_version="",  # filled with the running version
    )
    new_card = ModelCard.from_dict(fields)
    _atomic_write(weights_path, data)
    _atomic_write(card_path, new_card.to_json().encode("utf-8"))
    model.card = new_card
    return weights_path


def _site_tensors(model: SRModel, fields: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's site detail as ``site.<name>`` tensors, checked against the card's ``site``."""
    site = getattr(model, "site", None)
    if not site:
        fields["site"] = None
        return {}
    described = (fields.get("site") or {}).get("variables") or {}
    if set(described) != set(site):
        raise ValueError(
            f"save_model: the model's site detail covers {sorted(site)} but its card's 'site' "
            f"describes {sorted(described)}; fine-tune with xsr.train.fit(..., site=True), which "
            "writes both, or set model.site = None to save the network alone."
        )
    out = {}
    for name, value in site.items():
        if list(value.shape) != list(described[name]["shape"]):
            raise ValueError(
                f"save_model: site detail {name!r} has shape {list(value.shape)}, its card says "
                f"{described[name]['shape']}."
            )
        out[SITE_PREFIX + name] = value.detach().to("cpu", torch.float32).contiguous()
    return out


def _split_site(
    tensors: dict[str, torch.Tensor], card: ModelCard, weights_path: Path
) -> dict[str, torch.Tensor] | None:
    """Take the ``site.<name>`` tensors out of ``tensors``; check them against the card."""
    found = {
        k[len(SITE_PREFIX) :]: tensors.pop(k) for k in list(tensors) if k.startswith(SITE_PREFIX)
    }
    described = (card.site or {}).get("variables") or {}
    shapes = {k: list(v.shape) for k, v in found.items()}
    if shapes != {k: list(v["shape"]) for k, v in described.items()}:
        raise ModelFileError(
            f"{weights_path}: site detail tensors {shapes} do not match the card's 'site' "
            f"({ {k: v['shape'] for k, v in described.items()} }); the files do not belong together."
        )
    return found or None


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    from xsr.models import pretrained

    if isinstance(name_or_path, str) and name_or_path in pretrained.PRETRAINED:
        return model_paths(pretrained.pretrained_path(name_or_path))
    weights_path, card_path = model_paths(name_or_path)
    if not weights_path.exists() and not card_path.exists():
        known = ", ".join(sorted(pretrained.PRETRAINED)) or "none shipped yet"
        raise ModelFileError(
            f"{name_or_path!s}: no model file {weights_path} and no pretrained model of that "
            f"name (pretrained: {known}). Pass a path written by save_model."
        )
    return weights_path, card_path


def load_model(name_or_path: str | os.PathLike[str], *, device: str = "cpu") -> SRModel:
    """Load a model file (or a pretrained name), checking it fully first.

    Parameters
    ----------
    name_or_path : str or path-like
        A key of :data:`xsr.models.pretrained.PRETRAINED`, or a model file path with or
        without suffix.
    device : str, default "cpu"
        Device to put the model on.

    Returns
    -------
    SRModel
        The model in eval mode, with ``model.card`` set.

    Raises
    ------
    ModelFileError
        Missing card or weights, unreadable JSON, invalid card, unknown arch, sha256 mismatch,
        truncated or corrupt safetensors, tensor names or shapes differing from the
        architecture rebuilt from the card, a card without ``card_sha256`` or whose content
        does not hash to it (edited after it was written).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from xsr.models.registry import get_model
    >>> path = save_model(get_model("srcnn", scale=3), pathlib.Path(tempfile.mkdtemp()) / "m")
    >>> model = load_model(path)
    >>> model.card.arch, model.scale, model.training
    ('srcnn', 3, False)
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    from xsr.models.registry import MODELS, get_model

    weights_path, card_path = _resolve(name_or_path)
    if not card_path.exists():
        raise ModelFileError(
            f"{card_path}: model card missing; every model file needs its JSON card beside the "
            f"weights (write both with save_model)."
        )
    if not weights_path.exists():
        raise ModelFileError(f"{weights_path}: weights file missing (its card is {card_path}).")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{card_path}: the model card is not readable JSON ({err}).") from err
    try:
        card = ModelCard.from_dict(raw)
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{card_path}: invalid model card: {err}") from err
    if card.arch not in MODELS:
        raise ModelFileError(
            f"{card_path}: unknown architecture {card.arch!r} (known: {', '.join(sorted(MODELS))})."
        )
    data = weights_path.read_bytes()
    digest = sha256_bytes(data)
    if digest != card.sha256:
        raise ModelFileError(
            f"{weights_path}: sha256 mismatch: the file hashes to {digest} but its card "
            f"{card_path.name} records {card.sha256}; the weights were changed or do not belong "
            "to this card."
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"{weights_path}: not a readable safetensors file (truncated or corrupt): {err}"
        ) from err
    try:
        model = get_model(card.arch, **card.config)
    except (ValueError, TypeError) as err:
        raise ModelFileError(
            f"{card_path}: cannot rebuild {card.arch!r} from the card's config: {err}"
        ) from err
    site = _split_site(tensors, card, weights_path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        shapes = sorted(
            f"{k}: file {found[k]} vs architecture {expected[k]}"
            for k in set(found) & set(expected)
            if found[k] != expected[k]
        )
        raise ModelFileError(
            f"{weights_path}: tensors do not match the {card.arch!r} architecture rebuilt from "
            f"{card_path.name}: missing {missing}, unexpected {extra}, shape mismatches {shapes}."
        )
    facts = {
        "scale": model.scale,
        "window": model.window,
        "time_radius": model.time_radius,
        "receptive_radius": model.receptive_radius,
        "parameters": model.parameter_count(),
    }
    wrong = {k: (getattr(card, k), v) for k, v in facts.items() if getattr(card, k) != v}
    if wrong:
        detail = ", ".join(f"{k}: card {c} vs architecture {a}" for k, (c, a) in wrong.items())
        raise ModelFileError(f"{card_path}: card disagrees with its architecture: {detail}.")
    if len(card.variables) != model.channels:
        raise ModelFileError(
            f"{card_path}: {len(card.variables)} variables for a model with "
            f"channels={model.channels}."
        )
    state = model.state_dict()
    with torch.no_grad():
        for key, value in tensors.items():
            if value.dtype != state[key].dtype:
                raise ModelFileError(
                    f"{weights_path}: tensor {key} has dtype {value.dtype}, the architecture "
                    f"expects {state[key].dtype}."
                )
    _check_card_digest(raw, card_path)
    model.load_state_dict(tensors, strict=True)
    model.to(device)
    model.eval()
    model.card = card
    model.site = {k: v.to(device) for k, v in site.items()} if site else None
    return model


def _check_card_digest(raw: dict[str, Any], card_path: Path) -> None:
    """Refuse a card whose content does not hash to its recorded ``card_sha256``."""
    recorded = raw.get(CARD_DIGEST_FIELD)
    fix = (
        f"If the card's content is right (an edit you made on purpose), re-stamp it with "
        f"xsr.models.files.stamp_card({str(card_path)!r}); otherwise restore the original card "
        "or re-save the model with xsr.models.files.save_model."
    )
    if not recorded:
        raise ModelFileError(
            f"{card_path}: the model card carries no {CARD_DIGEST_FIELD}, so a change to it "
            f"(normalisation, variable order, ...) could not be detected. {fix}"
        )
    actual = card_digest(raw)
    if actual != recorded:
        raise ModelFileError(
            f"{card_path}: the model card was changed after it was written: its content hashes "
            f"to {actual} but it records {CARD_DIGEST_FIELD}={recorded} (an edited "
            f"normalisation, variable order or config gives wrong results silently). {fix}"
        )


def stamp_card(path: str | os.PathLike[str]) -> Path:
    """Re-stamp a model card: write its ``card_sha256`` for its current content.

    Use it after editing a card on purpose (a corrected description, a renamed variable whose
    data you have checked); :func:`load_model` refuses cards whose content no longer matches
    their stamp. The card is validated first and the weights file must match its ``sha256``.

    Parameters
    ----------
    path : str or path-like
        The model file (with or without ``.json`` / ``.safetensors`` suffix).

    Returns
    -------
    pathlib.Path
        The card path.

    Raises
    ------
    ModelFileError
        If the card is unreadable or invalid, or the weights do not match its ``sha256``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from xsr.models.registry import get_model
    >>> path = save_model(get_model("srcnn", scale=2), pathlib.Path(tempfile.mkdtemp()) / "m")
    >>> card_path = path.with_suffix(".json")
    >>> data = json.loads(card_path.read_text())
    >>> data["description"] = "checked by hand"
    >>> _ = card_path.write_text(json.dumps(data))
    >>> _ = stamp_card(path)
    >>> load_model(path).card.description
    'checked by hand'
    """
    weights_path, card_path = model_paths(path)
    try:
        card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as err:
        raise ModelFileError(f"{card_path}: cannot re-stamp this model card: {err}") from err
    if weights_path.exists() and sha256_file(weights_path) != card.sha256:
        raise ModelFileError(
            f"{weights_path}: the weights do not match the card's sha256; a card is only "
            "re-stamped beside the weights it describes."
        )
    _atomic_write(card_path, card.to_json().encode("utf-8"))
    return card_path

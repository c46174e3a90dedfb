"""The model registry: an explicit dict ``name -> builder`` (no folder scanning at import).

Pretrained names (``"fsrcnn-swe-x2"``) are *not* here: they are model files, found by
:func:`xsr.models.files.load_model` through :data:`xsr.models.pretrained.PRETRAINED`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from xsr.models.base import SRModel
from xsr.models.baseline import Bicubic
from xsr.models.chain import Chain
from xsr.models.fsrcnn import FSRCNN
from xsr.models.linear import Linear
from xsr.models.srcnn import SRCNN
from xsr.models.srnet3d import SRNet3D
from xsr.models.xsrnet import XSRNet

__all__ = ["MODELS", "get_model", "list_models"]

#: Architecture name -> keyword-only builder (the class).
MODELS: dict[str, type[SRModel]] = {
    "bicubic": Bicubic,
    "srcnn": SRCNN,
    "fsrcnn": FSRCNN,
    "srnet3d": SRNet3D,
    "xsrnet": XSRNet,
    "chain": Chain,
    "linear": Linear,
}


def list_models() -> list[str]:
    """Names of the registered architectures.

    Returns
    -------
    list of str
        Sorted architecture names.

    Examples
    --------
    >>> list_models()
    ['bicubic', 'chain', 'fsrcnn', 'linear', 'srcnn', 'srnet3d', 'xsrnet']
    """
    return sorted(MODELS)


def get_model(name: str, **config: Any) -> SRModel:
    """Build an architecture by name, with random weights.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    **config
        The architecture's keyword arguments (e.g. ``scale=2, channels=1``); a model's
        ``config`` attribute rebuilds an identical architecture.

    Returns
    -------
    SRModel
        The model, in training mode.

    Raises
    ------
    ValueError
        For an unknown name, an unknown keyword or an impossible configuration.

    Examples
    --------
    >>> model = get_model("fsrcnn", scale=2, channels=1)
    >>> rebuilt = get_model(model.arch, **model.config)
    >>> rebuilt.config == model.config
    True
    """
    if name not in MODELS:
        hint = (
            " Trained models (e.g. 'fsrcnn-swe-x2') are files: use "
            "xsr.models.files.load_model(name_or_path)."
            if isinstance(name, str) and "-" in name
            else ""
        )
        raise ValueError(
            f"Unknown model architecture {name!r}; available: {', '.join(list_models())}.{hint}"
        )
    builder = MODELS[name]
    accepted = [
        p.name
        for p in inspect.signature(builder.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown configuration {unknown}; accepted keywords: {', '.join(accepted)}."
        )
    if builder is Chain:
        config["stages"] = _build_stages(config.get("stages"))
    return builder(**config)


def _build_stages(stages: Any) -> Any:
    """A chain's stages: ``{"arch": name, **config}`` dicts built by name, models kept."""
    if isinstance(stages, str | bytes | Mapping) or not isinstance(stages, Sequence):
        return stages  # Chain names the problem
    built = []
    for i, stage in enumerate(stages):
        if isinstance(stage, SRModel):
            built.append(stage)
            continue
        if not isinstance(stage, Mapping) or "arch" not in stage:
            raise ValueError(
                f"chain: stage {i} must be a model or a dict with an 'arch' key, got {stage!r}."
            )
        config = dict(stage)
        arch = config.pop("arch")
        if arch == "chain":
            raise ValueError("chain: a stage cannot itself be a chain; list its stages.")
        built.append(get_model(arch, **config))
    return built

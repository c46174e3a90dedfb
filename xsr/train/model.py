"""The model stage of :func:`xsr.train.fit`: build or load the network, transfer, freeze.

:func:`prepare_model` seeds torch, builds the network from an architecture name (or loads a
pretrained name or model file for fine-tuning, or copies a given model), checks it against the
variables and ``scale``, copies matching layers from ``init_from``, freezes layers (for a chain's
two-stage method, every stage but the one trained) and moves it to the device.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xsr.models.linear import PhaseFilter
from xsr.train.config import FitConfig
from xsr.train.transfer import freeze as freeze_layers
from xsr.train.transfer import transfer_weights

__all__ = ["PreparedModel", "build_model", "kept_normalisation", "prepare_model"]


@dataclass
class PreparedModel:
    """A network ready to train, and what was done to it.

    Attributes
    ----------
    net : SRModel
        The network, on the training device.
    scale, window, radius, halo : int
        Its factor, frames per sample, time radius of a window (``window // 2``) and the
        low-resolution context given to every patch.
    transferred, frozen : list of str
        Tensors copied from ``init_from``; parameters kept fixed during this fit.
    """

    net: Any
    scale: int
    window: int
    radius: int
    halo: int
    transferred: list[str]
    frozen: list[str]


def build_model(
    model: Any, *, scale: int | None, channels: int, model_config: Mapping[str, Any]
) -> torch.nn.Module:
    """A new network from a name, a loaded one from a pretrained name or file, or a copy.

    Parameters
    ----------
    model : str, path or SRModel
    scale : int or None
        Required with an architecture name.
    channels : int
        Number of variables.
    model_config : mapping
        Architecture options (only with an architecture name).

    Returns
    -------
    SRModel

    Examples
    --------
    >>> build_model("fsrcnn", scale=2, channels=1, model_config={"d": 8, "s": 4, "m": 1}).arch
    'fsrcnn'
    """
    from xsr.models.base import SRModel

    def no_config() -> None:
        if model_config:
            raise TypeError(
                f"model configuration {sorted(model_config)} only applies when model is an "
                "architecture name"
            )

    if isinstance(model, SRModel):
        no_config()
        return copy.deepcopy(model)
    if isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model must be an xsr SRModel (got {type(model).__name__}); build it with "
            "xsr.models.get_model(...)"
        )
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model must be an architecture name, a pretrained name, a model file or an "
            f"SRModel, got {type(model).__name__}"
        )
    from xsr.models.registry import get_model, list_models

    if isinstance(model, str) and model in list_models():
        if scale is None:
            raise ValueError(f"scale= is required to build a new {model!r} model (e.g. scale=2)")
        return get_model(model, scale=scale, channels=channels, **dict(model_config))
    no_config()
    from xsr.models.card import ModelFileError
    from xsr.models.files import load_model, model_paths
    from xsr.models.pretrained import PRETRAINED

    weights, card = model_paths(model)
    if not (isinstance(model, str) and model in PRETRAINED) and not (
        weights.exists() or card.exists()
    ):
        raise ValueError(
            f"model={os.fspath(model)!r} is neither an architecture {list_models()}, nor a "
            f"pretrained name {sorted(PRETRAINED)}, nor an existing model file"
        )
    try:
        return load_model(model)
    except ModelFileError as err:
        raise ValueError(f"cannot fine-tune model={os.fspath(model)!r}: {err}") from err


def _freeze_other_stages(net: Any, stage: int) -> list[str]:
    """Check ``stage`` for the two-stage method and freeze every other stage of the chain."""
    stages = getattr(net, "stages", None)
    if stages is None:
        raise ValueError(f"stage={stage} needs a 'chain' model; {net.arch!r} has no stages")
    if not 0 <= stage < len(stages):
        raise ValueError(f"stage={stage} is out of range: the chain has {len(stages)} stages")
    partial = 1
    for st in stages[: stage + 1]:
        partial *= int(st.scale)
    if partial != net.scale:
        raise ValueError(
            f"stage={stage}: stages[:{stage + 1}] upscale by {partial} but the chain by "
            f"{net.scale}; the two-stage method trains a prefix that already reaches the "
            "chain's scale (put the refining scale-1 stages last)"
        )
    others = [f"stages.{i}" for i in range(len(stages)) if i != stage]
    names = [n for n, _ in net.named_parameters()]
    others = [o for o in others if any(n.startswith(o + ".") for n in names)]
    return list(freeze_layers(net, others)) if others else []


def prepare_model(
    model: Any, cfg: FitConfig, *, variables: Sequence[str], device: torch.device
) -> PreparedModel:
    """Seed torch, build the network, transfer and freeze layers, move it to ``device``.

    Parameters
    ----------
    model : str, path or SRModel
    cfg : FitConfig
    variables : sequence of str
        The variables learnt (the model's channels, in order).
    device : torch.device

    Returns
    -------
    PreparedModel

    Examples
    --------
    >>> p = prepare_model("fsrcnn", FitConfig(scale=2, model_config={"d": 8, "s": 4, "m": 1}),
    ...                   variables=["h"], device=torch.device("cpu"))
    >>> p.scale, p.window, p.halo == p.net.receptive_radius
    (2, 1, True)
    """
    torch.manual_seed(cfg.seed)
    channels = len(variables)
    net = build_model(model, scale=cfg.scale, channels=channels, model_config=cfg.model_config)
    if cfg.scale is not None and cfg.scale != net.scale:
        raise ValueError(f"scale={cfg.scale} disagrees with the model's scale {net.scale}")
    if net.channels != channels:
        raise ValueError(
            f"the model takes {net.channels} channel(s) but variables={list(variables)} has "
            f"{channels}; choose matching variables or build a new model"
        )
    halo = int(net.receptive_radius) if cfg.halo is None else cfg.halo
    transferred = [] if cfg.init_from is None else list(transfer_weights(net, cfg.init_from))
    frozen = [] if cfg.stage is None else _freeze_other_stages(net, cfg.stage)
    if cfg.freeze:
        frozen += freeze_layers(net, list(cfg.freeze))
    based = isinstance(getattr(net, "base", None), PhaseFilter)
    if based and not any(name.startswith("base.") for name in frozen):
        # a learned linear base is solved in closed form (xsr.train.base), not by the gradient
        # steps: Adam moves each of its weights by about lr per step, and its 49 weights per
        # phase act together on the whole signal, so those steps are noise on a solved filter
        frozen += freeze_layers(net, ["base"])
    window = int(net.window)
    return PreparedModel(
        net.to(device), int(net.scale), window, window // 2, halo, transferred, frozen
    )


def kept_normalisation(net: Any, variables: Sequence[str], stats: Any) -> Any:
    """``stats`` with the normalisation of ``net``'s card when it is for the same variables.

    A loaded model fine-tuned on the variables it was trained on (a field model's ``field``
    included) saw inputs normalised by its card's statistics, so fine-tuning keeps them:
    recomputing them from the new data would shift what the weights see. A new network, or a
    model trained on other variables (natural images fine-tuned on a temperature), is
    normalised by the data's own statistics.

    Parameters
    ----------
    net : SRModel
        The prepared network (its ``card``, if any, names its variables in channel order).
    variables : sequence of str
        The variables learnt, in channel order.
    stats : xsr.train.data.Statistics
        The data's statistics (their ``data_range`` is always kept).

    Returns
    -------
    xsr.train.data.Statistics

    Examples
    --------
    >>> import numpy as np
    >>> from xsr.train.data import Statistics
    >>> data = Statistics(np.array([1.0]), np.array([2.0]), np.array([8.0]))
    >>> net = build_model("fsrcnn", scale=2, channels=1, model_config={})
    >>> kept_normalisation(net, ["h"], data).mean
    array([1.])
    """
    card = getattr(net, "card", None)
    norm = getattr(card, "normalisation", None) or {}
    names = [str(v["name"]) for v in getattr(card, "variables", None) or []]
    if names != [str(v) for v in variables] or not all(n in norm for n in names):
        return stats
    mean = np.array([float(norm[n]["mean"]) for n in names])
    std = np.array([float(norm[n]["std"]) for n in names])
    return dataclasses.replace(stats, mean=mean, std=std)

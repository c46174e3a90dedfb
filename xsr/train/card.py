"""The last stage of :func:`xsr.train.fit`: the history Dataset and the model card.

:func:`finish_model` puts the best weights back and unfreezes what the fit froze;
:func:`history` builds the per-epoch :class:`xarray.Dataset` (with the bicubic baseline and the
run's facts as attributes); :func:`model_card` writes everything a user of the model needs —
variables, units, normalisation, degradation, training data provenance, options, validation
metrics — into a :class:`~xsr.models.card.ModelCard` (its ``sha256`` is filled in when the model
is written with :func:`xsr.models.files.save_model`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsr.train.config import FitConfig
from xsr.train.data import Patches, Selection, Statistics
from xsr.train.history import METRICS, history_dataset
from xsr.train.loop import LoopState
from xsr.train.model import PreparedModel

__all__ = ["finish_model", "history", "model_card"]


def _json_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as JSON values (numpy to Python, anything else to text)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            v = str(v)
        out[str(k)] = v
    return out


def _describe(source: Any) -> str:
    """A short text naming a transfer-learning source."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    card = getattr(source, "card", None)
    if card is not None and getattr(card, "name", None):
        return f"model {card.name}"
    return type(source).__name__


def finish_model(model: PreparedModel, state: LoopState) -> Any:
    """The best weights, in eval mode, with the parameters this fit froze trainable again."""
    net = model.net
    if state.best_state is not None:
        net.load_state_dict(state.best_state)
    net.eval()
    for name, param in net.named_parameters():
        if name in model.frozen:  # freezing is part of this fit, not of the returned model
            param.requires_grad_(True)
    return net


def _best_record(state: LoopState) -> dict[str, Any] | None:
    starts = [state.start_record] if state.start_record else []
    return next(
        (r for r in [*starts, *state.records] if r["epoch"] == state.best_epoch),
        state.records[-1] if state.records else None,
    )


def history(
    cfg: FitConfig,
    sel: Selection,
    patches: Patches,
    stats: Statistics,
    model: PreparedModel,
    state: LoopState,
    device: Any,
) -> xr.Dataset:
    """The per-epoch history, with the run's facts and the bicubic baseline as attributes."""
    n_train = len(patches.train) if cfg.patches_per_epoch is None else cfg.patches_per_epoch
    attrs: dict[str, Any] = {
        "arch": model.net.arch,
        "scale": model.scale,
        "window": model.window,
        "degradation": cfg.degrade,
        "seed": cfg.seed,
        "device": str(device),
        "best_epoch": int(state.best_epoch),
        "stopped_early": int(state.stopped_early),
        "data_range": stats.data_range.tolist(),
        "normalisation_mean": stats.mean.tolist(),
        "normalisation_std": stats.std.tolist(),
        "halo": model.halo,
        "periodic": json.dumps([bool(p) for p in sel.periodic]),
        "n_train_patches": len(patches.train),
        "n_val_patches": len(patches.val_idx),
        "train_batches_per_epoch": math.ceil(n_train / cfg.batch_size),
        "val_batches_per_epoch": math.ceil(len(patches.val_idx) / cfg.batch_size),
        "train_blocks": json.dumps(patches.train_blocks),
        "val_blocks": json.dumps(patches.val_blocks),
        "transferred": ", ".join(model.transferred),
        "frozen": ", ".join(model.frozen),
    }
    if state.baseline is not None:
        for m in METRICS:
            attrs[f"bicubic_val_{m}"] = list(state.baseline[m])
    units = {v: str(sel.ds[v].attrs.get("units", "")) for v in sel.variables}
    return history_dataset(state.records, list(sel.variables), units=units, attrs=attrs)


def _training(cfg: FitConfig, sel: Selection, patches: Patches, model: PreparedModel, state):
    """The card's ``training`` section: data provenance and every option of the run."""
    ds, variables = sel.ds, sel.variables
    return {
        "data_attrs": _json_attrs(ds.attrs),
        "variable_attrs": {v: _json_attrs(ds[v].attrs) for v in variables},
        "dims": {"time": str(sel.time_dim), "y": str(sel.ydim), "x": str(sel.xdim)},
        "periodic": {"y": bool(sel.periodic[0]), "x": bool(sel.periodic[1])},
        "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
        "frames": int(sel.data.sizes[sel.time_dim]),
        "train_blocks": [list(b) for b in patches.train_blocks],
        "val_blocks": [list(b) for b in patches.val_blocks],
        "epochs": len(state.records),
        "max_epochs": cfg.epochs,
        "best_epoch": int(state.best_epoch),
        "stopped_early": bool(state.stopped_early),
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "patch_size": cfg.patch_size,
        "halo": model.halo,
        "patches_per_epoch": cfg.patches_per_epoch,
        "lr": cfg.lr,
        "lr_schedule": cfg.lr_schedule,
        "patience": cfg.patience,
        "loss": cfg.loss,
        "augment": cfg.augment,
        "init_from": None if cfg.init_from is None else _describe(cfg.init_from),
        "transferred": model.transferred,
        "frozen": model.frozen,
        "layer_lr": dict(cfg.layer_lr),
        "stage": cfg.stage,
        "keep_start": cfg.keep_start,
    }


def _finite_or_none(value: Any) -> float | None:
    """``float(value)``, or None where it is NaN or infinite (a card is JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None


def model_card(
    cfg: FitConfig,
    sel: Selection,
    patches: Patches,
    stats: Statistics,
    model: PreparedModel,
    state: LoopState,
) -> Any:
    """The :class:`~xsr.models.card.ModelCard` of the trained model (``sha256`` left empty)."""
    from xsr.models.card import ModelCard

    net, variables, ds = model.net, sel.variables, sel.ds
    best, baseline = _best_record(state), state.baseline

    def scores(get) -> dict[str, dict[str, float | None]]:
        # a metric that is undefined is null (JSON has no NaN): SSIM on patches smaller than its
        # window, or a variable with no valid cell in the validation patches
        return {
            v: {m: _finite_or_none(get(m, i)) for m in METRICS} for i, v in enumerate(variables)
        }

    return ModelCard(
        sha256="",
        name=f"{net.arch}-{'-'.join(variables)}-x{model.scale}",
        arch=net.arch,
        config=net.config,
        scale=model.scale,
        window=model.window,
        time_radius=net.time_radius,
        receptive_radius=net.receptive_radius,
        variables=[
            {
                "name": v,
                "units": str(ds[v].attrs.get("units", "")),
                "long_name": str(ds[v].attrs.get("long_name", v)),
            }
            for v in variables
        ],
        normalisation={
            v: {"mean": float(m), "std": float(s)}
            for v, m, s in zip(variables, stats.mean, stats.std)
        },
        degradation={"method": cfg.degrade, "scale": model.scale},
        training=_training(cfg, sel, patches, model, state),
        metrics={
            "split": "validation",
            "data_range": {v: float(r) for v, r in zip(variables, stats.data_range)},
            "best": scores(lambda m, i: best[f"val_{m}"][i]) if best is not None else {},
            "bicubic": scores(lambda m, i: baseline[m][i]) if baseline is not None else {},
        },
        parameters=int(sum(p.numel() for p in net.parameters())),
    )

"""Training: ``fit`` on xarray movies, transfer learning and natural-image pretraining.

``fit`` checks its options into a frozen :class:`FitConfig` and runs the training stages:
``xsr.train.data`` (selection, degradation, patches, split, statistics), ``xsr.train.model``
(build, transfer, freeze), ``xsr.train.loop`` (optimiser, schedule, epochs, validation, early
stop), ``xsr.train.resume`` (checkpoints) and ``xsr.train.card`` (history and model card). The
device is chosen by :func:`xsr.engine.resolve_device`, as for inference.

The public names are loaded on first use, so ``import xsr.train`` stays light (torch, xbatcher
and scikit-image are imported only when a function is reached).

Examples
--------
>>> import xsr.train
>>> callable(xsr.train.fit)
True
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Checkpoint",
    "FitConfig",
    "TransferResult",
    "apply_symmetry",
    "available_images",
    "fit",
    "fit_linear",
    "freeze",
    "history_dataset",
    "layer_names",
    "natural_image_patches",
    "natural_images",
    "param_groups",
    "split_time",
    "transfer_weights",
    "variable_symmetry",
]

_WHERE = {
    "fit": "xsr.train.trainer",
    "fit_linear": "xsr.train.linear",
    "FitConfig": "xsr.train.config",
    "Checkpoint": "xsr.train.history",
    "history_dataset": "xsr.train.history",
    "TransferResult": "xsr.train.transfer",
    "freeze": "xsr.train.transfer",
    "layer_names": "xsr.train.transfer",
    "param_groups": "xsr.train.transfer",
    "transfer_weights": "xsr.train.transfer",
    "available_images": "xsr.train.natural",
    "natural_image_patches": "xsr.train.natural",
    "natural_images": "xsr.train.natural",
    "split_time": "xsr.train.patches",
    "apply_symmetry": "xsr.train.augment",
    "variable_symmetry": "xsr.train.augment",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xsr.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Training history as an ``xr.Dataset``, and pickle-free checkpoints.

A checkpoint is a folder:

``best.safetensors``
    model weights of the best epoch so far;
``last.safetensors`` / ``last_optimizer.safetensors``
    model weights and optimizer tensors after the last finished epoch;
``state.json``
    everything else: epoch counters, early-stopping state, scheduler state, optimizer
    hyper-parameters, the per-epoch records, the bicubic baseline and a fingerprint of the run
    so that ``resume=True`` refuses a checkpoint written by a different run.

Tensors go through :mod:`safetensors`, the rest through JSON; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = ["METRICS", "Checkpoint", "history_dataset"]

#: Metric names recorded per epoch, for the training and the validation split.
METRICS: tuple[str, ...] = ("mse", "mae", "psnr", "ssim")

_UNITS = {"psnr": "dB", "ssim": "1"}
_LONG = {
    "mse": "mean squared error",
    "mae": "mean absolute error",
    "psnr": "peak signal-to-noise ratio",
    "ssim": "structural similarity",
}


def _jsonable(value: Any) -> Any:
    """Make numpy scalars, tuples and paths JSON-friendly (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def history_dataset(
    records: Sequence[Mapping[str, Any]],
    variables: Sequence[str],
    *,
    units: Mapping[str, str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build the per-epoch history Dataset from epoch records.

    Parameters
    ----------
    records : sequence of mapping
        One per epoch: ``epoch``, ``loss``, ``val_loss``, ``lr`` (floats) and
        ``train_<metric>`` / ``val_<metric>`` (one float per variable) for
        :data:`METRICS`.
    variables : sequence of str
        The variable names (the ``variable`` dimension).
    units : mapping, optional
        Units of each variable; MSE gets ``units**2``, MAE ``units``.
    attrs : mapping, optional
        Attributes of the Dataset (baseline metrics, best epoch, data ranges...).

    Returns
    -------
    xarray.Dataset
        Dims ``epoch`` and ``variable``; metrics in physical units.

    Examples
    --------
    >>> rec = {"epoch": 1, "loss": 0.5, "val_loss": 0.4, "lr": 1e-3}
    >>> rec.update({f"{s}_{m}": [1.0] for s in ("train", "val") for m in METRICS})
    >>> history_dataset([rec], ["h"])["val_psnr"].dims
    ('epoch', 'variable')
    """
    units = dict(units or {})
    epochs = [int(r["epoch"]) for r in records]
    data: dict[str, Any] = {}
    for key, long in (
        ("loss", "training loss (normalised units)"),
        ("val_loss", "validation loss (normalised units)"),
        ("lr", "learning rate"),
    ):
        data[key] = (
            "epoch",
            np.array([r[key] for r in records], dtype="float64"),
            {"long_name": long},
        )
    for split in ("train", "val"):
        for m in METRICS:
            values = np.array([r[f"{split}_{m}"] for r in records], dtype="float64")
            values = values.reshape(len(records), len(variables))
            a = {"long_name": f"{'training' if split == 'train' else 'validation'} {_LONG[m]}"}
            if m in _UNITS:
                a["units"] = _UNITS[m]
            elif len(set(units.values())) == 1:
                u = next(iter(units.values()))
                a["units"] = f"({u})2" if m == "mse" else u
            data[f"{split}_{m}"] = (("epoch", "variable"), values, a)
    coords = {
        "epoch": ("epoch", np.array(epochs, dtype="int64"), {"long_name": "epoch (1-based)"}),
        "variable": ("variable", np.array(list(variables), dtype=object)),
    }
    if units:
        coords["units"] = (
            "variable",
            np.array([units.get(v, "") for v in variables], dtype=object),
        )
    return xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))


class Checkpoint:
    """Read and write a training checkpoint folder (safetensors + JSON).

    Parameters
    ----------
    path : str or path
        The folder (created on first save).

    Examples
    --------
    >>> import tempfile, torch
    >>> ck = Checkpoint(tempfile.mkdtemp())
    >>> ck.exists()
    False
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.Adam(net.parameters())
    >>> net(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> ck.save_best(net.state_dict())
    >>> ck.save_last(net.state_dict(), opt.state_dict(), {"epoch": 1})
    >>> weights, opt_state, state = ck.load_last()
    >>> ck.exists(), state["epoch"], sorted(opt_state["state"][0])
    (True, 1, ['exp_avg', 'exp_avg_sq', 'step'])
    >>> torch.equal(ck.load_best()["weight"], net.weight.detach())
    True
    """

    STATE = "state.json"
    BEST = "best.safetensors"
    LAST = "last.safetensors"
    OPTIM = "last_optimizer.safetensors"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(
                f"checkpoint={os.fspath(path)!r} is a file; give a folder path (it will hold "
                "best.safetensors, last.safetensors and state.json)"
            )

    def exists(self) -> bool:
        """Whether a finished epoch has been saved here."""
        return (self.path / self.STATE).is_file()

    def _replace(self, name: str, write) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, self.path / name)

    @staticmethod
    def _tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}

    def save_best(self, model_state: Mapping[str, torch.Tensor]) -> None:
        """Write the best weights.

        Parameters
        ----------
        model_state : mapping of str to torch.Tensor
            ``model.state_dict()``.
        """
        tensors = self._tensors(model_state)
        self._replace(self.BEST, lambda p: save_file(tensors, str(p)))

    def load_best(self) -> dict[str, torch.Tensor]:
        """The best weights saved so far.

        Returns
        -------
        dict of str to torch.Tensor
        """
        try:
            return load_file(str(self.path / self.BEST))
        except (OSError, SafetensorError) as err:
            raise ValueError(
                f"checkpoint {os.fspath(self.path)!r}: best weights unreadable ({err}); delete "
                "the folder or pass resume=False to start again"
            ) from err

    def save_last(
        self,
        model_state: Mapping[str, torch.Tensor],
        optimizer_state: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> None:
        """Write the last epoch's weights, optimizer and JSON state (state.json last).

        Parameters
        ----------
        model_state : mapping
            ``model.state_dict()``.
        optimizer_state : mapping
            ``optimizer.state_dict()``: its tensors go to safetensors, the rest to JSON.
        state : mapping
            JSON-serialisable run state.
        """
        tensors: dict[str, torch.Tensor] = {}
        extra: dict[str, dict[str, Any]] = {}
        for pid, entry in optimizer_state["state"].items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{pid}.{key}"] = value
                else:
                    extra.setdefault(str(pid), {})[key] = _jsonable(value)
        weights = self._tensors(model_state)
        opt_tensors = self._tensors(tensors)
        self._replace(self.LAST, lambda p: save_file(weights, str(p)))
        self._replace(self.OPTIM, lambda p: save_file(opt_tensors, str(p)))
        full = dict(state)
        full["optimizer"] = {
            "param_groups": _jsonable(optimizer_state["param_groups"]),
            "state_extra": extra,
        }
        text = json.dumps(_jsonable(full), indent=1)
        self._replace(self.STATE, lambda p: p.write_text(text))

    def load_last(self) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        """Read what :meth:`save_last` wrote.

        Returns
        -------
        (dict, dict, dict)
            Model state dict, optimizer state dict (ready for ``load_state_dict``) and the JSON
            run state.

        Raises
        ------
        ValueError
            A file is missing or unreadable (the message names it).
        """
        try:
            state = json.loads((self.path / self.STATE).read_text())
            weights = load_file(str(self.path / self.LAST))
            opt_tensors = load_file(str(self.path / self.OPTIM))
        except (OSError, ValueError, KeyError, SafetensorError) as err:
            raise ValueError(
                f"checkpoint {os.fspath(self.path)!r} is incomplete or corrupted ({err}); "
                "delete it or pass resume=False to start again"
            ) from err
        opt_state: dict[int, dict[str, Any]] = {}
        for name, tensor in opt_tensors.items():
            pid, key = name.split(".", 1)
            opt_state.setdefault(int(pid), {})[key] = tensor
        for pid, entry in state["optimizer"]["state_extra"].items():
            opt_state.setdefault(int(pid), {}).update(entry)
        groups = state["optimizer"]["param_groups"]
        for g in groups:
            for key in ("betas",):
                if key in g and isinstance(g[key], list):
                    g[key] = tuple(g[key])
        return weights, {"state": opt_state, "param_groups": groups}, state

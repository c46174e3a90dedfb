"""The checkpoint stage of :func:`xsr.train.fit`: save after every epoch, resume a run.

A run is identified by a fingerprint of the model, the data's shape and the training options
(:func:`run_fingerprint`); :func:`resume` refuses a checkpoint folder written by another run.
:class:`RunSaver` writes the best weights when they improve and the last epoch's weights,
optimizer and :class:`~xsr.train.loop.LoopState` after every epoch (through
:class:`~xsr.train.history.Checkpoint`, safetensors and JSON, nothing pickled).
"""

from __future__ import annotations

import os

import numpy as np

from xsr.digest import sha256_json
from xsr.train.config import FitConfig
from xsr.train.data import Selection, Statistics
from xsr.train.history import Checkpoint
from xsr.train.loop import LoopState, Optimiser
from xsr.train.model import PreparedModel

__all__ = ["RunSaver", "resume", "run_fingerprint"]


def run_fingerprint(cfg: FitConfig, sel: Selection, model: PreparedModel) -> str:
    """A short digest of everything that makes two runs the same run.

    Examples
    --------
    >>> import torch
    >>> from xsr.testing import random_movie
    >>> from xsr.train.data import select
    >>> from xsr.train.model import prepare_model
    >>> cfg = FitConfig(scale=2, model_config={"d": 8, "s": 4, "m": 1})
    >>> sel = select(random_movie(4, 16, 16), cfg)
    >>> m = prepare_model("fsrcnn", cfg, variables=sel.variables, device=torch.device("cpu"))
    >>> len(run_fingerprint(cfg, sel, m))
    16
    """
    net = model.net
    fields = {
        "arch": net.arch,
        "config": net.config,
        "variables": list(sel.variables),
        "scale": model.scale,
        "degrade": cfg.degrade,
        "dims": [str(sel.ydim), str(sel.xdim)],
        "periodic": list(sel.periodic),
        "time": sel.data.sizes[sel.time_dim],
        "sizes": {str(k): int(v) for k, v in sel.ds.sizes.items()},
        "halo": model.halo,
        "stage": cfg.stage,
        "frozen": model.frozen,
        **cfg.fingerprint_fields(),
    }
    return sha256_json(fields)[:16]


def resume(
    cfg: FitConfig, fingerprint: str, model: PreparedModel, optimiser: Optimiser
) -> tuple[LoopState, Statistics] | None:
    """Load the last epoch of this run from ``cfg.checkpoint``; ``None`` to start fresh.

    Raises
    ------
    ValueError
        The checkpoint was written by a different run, or is unreadable.
    """
    ck = Checkpoint(cfg.checkpoint) if cfg.checkpoint is not None else None  # checks the path
    if not cfg.resume or ck is None or not ck.exists():
        return None
    weights, opt_state, saved = ck.load_last()
    if saved.get("fingerprint") != fingerprint:
        raise ValueError(
            f"checkpoint {os.fspath(cfg.checkpoint)!r} was written by a different run (model, "
            "data or training arguments differ); pass the same arguments, another "
            "checkpoint folder, or resume=False"
        )
    model.net.load_state_dict(weights)
    optimiser.optimizer.load_state_dict(opt_state)
    if optimiser.scheduler is not None and saved.get("scheduler") is not None:
        optimiser.scheduler.load_state_dict(saved["scheduler"])
    state = LoopState(
        records=saved["records"],
        epoch=int(saved["epoch"]),
        best_loss=float(saved["best_loss"]),
        best_epoch=int(saved["best_epoch"]),
        bad_epochs=int(saved["bad_epochs"]),
        stopped_early=bool(saved.get("stopped_early", False)),
        best_state=ck.load_best(),
        baseline=saved["baseline"],
        start_record=saved.get("start_record"),
    )
    stats = Statistics(
        *(np.asarray(saved[k], dtype=np.float64) for k in ("mean", "std", "data_range"))
    )
    return state, stats


class RunSaver:
    """Writes the checkpoint after every epoch (``save(state, improved)``); no-op without one.

    Parameters
    ----------
    cfg : FitConfig
    fingerprint : str
    model : PreparedModel
    optimiser : Optimiser
    stats : Statistics
    """

    def __init__(
        self,
        cfg: FitConfig,
        fingerprint: str,
        model: PreparedModel,
        optimiser: Optimiser,
        stats: Statistics,
    ) -> None:
        self.ck = Checkpoint(cfg.checkpoint) if cfg.checkpoint is not None else None
        self.fingerprint, self.model, self.optimiser, self.stats = (
            fingerprint,
            model,
            optimiser,
            stats,
        )

    def save_best(self, state: LoopState) -> None:
        """Write the best weights (when there is a checkpoint and a best state)."""
        if self.ck is not None and state.best_state is not None:
            self.ck.save_best(state.best_state)

    def __call__(self, state: LoopState, improved: bool) -> None:
        """Write the best weights if they improved, then the last epoch's state."""
        if self.ck is None:
            return
        if improved:
            self.save_best(state)
        scheduler = self.optimiser.scheduler
        self.ck.save_last(
            self.model.net.state_dict(),
            self.optimiser.optimizer.state_dict(),
            {
                "fingerprint": self.fingerprint,
                "epoch": state.epoch,
                "best_loss": state.best_loss,
                "best_epoch": state.best_epoch,
                "bad_epochs": state.bad_epochs,
                "stopped_early": state.stopped_early,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "mean": self.stats.mean.tolist(),
                "std": self.stats.std.tolist(),
                "data_range": self.stats.data_range.tolist(),
                "baseline": state.baseline,
                "records": state.records,
                "start_record": state.start_record,
            },
        )

"""The loop stage of :func:`xsr.train.fit`: optimiser, schedule, epochs, validation, early stop.

:func:`make_optimizer` builds Adam (with per-layer rates) and the learning-rate schedule.
:class:`Predictor` turns a batch of haloed patches into the model's output (or bicubic
interpolation's) over the patch cores. :func:`run_epochs` trains epoch after epoch: seeded
patch order and augmentation, the masked loss, validation, the schedule, the best weights,
patience; after every epoch it hands the :class:`LoopState` to a ``save`` function (the
checkpoint) and to the user's callback. The loss is finite or the run stops with
:class:`FloatingPointError`; NaN targets are masked out of the loss and the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xsr.train import _torch_metrics as tm
from xsr.train.batches import BatchStream, augment
from xsr.train.config import FitConfig
from xsr.train.history import METRICS
from xsr.train.patches import PatchSet
from xsr.train.transfer import param_groups

__all__ = [
    "LoopState",
    "Meter",
    "Optimiser",
    "Predictor",
    "Validation",
    "make_optimizer",
    "masked_loss",
    "run_epochs",
    "start",
    "train_epoch",
]

#: Floor on a patch's normalised MSE in the "psnr" loss (an exact match scores 80 dB, not inf).
PSNR_LOSS_FLOOR = 1e-8


def masked_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str
) -> torch.Tensor:
    """Masked loss of a batch ``(B, C, H, W)`` in normalised units.

    ``"mse"`` and ``"mae"`` average over every valid value. ``"psnr"`` is the mean over patches
    and channels of ``10 * log10(MSE)``: minimising it maximises the mean per-patch PSNR, so a
    patch with a small error counts as much as one with a large error (as frames do in a mean
    per-frame PSNR), where MSE is dominated by the hardest patches.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 2, 2)
    >>> float(masked_loss(x + 1, x, x == 0, "mse")), float(masked_loss(x + 1, x, x != 0, "mae"))
    (1.0, 0.0)
    """
    diff = torch.where(mask, pred - target, torch.zeros_like(pred))
    if kind == "psnr":
        count = mask.sum((-2, -1))
        mse = (diff**2).sum((-2, -1)) / count.clamp_min(1)
        db = 10.0 * torch.log10(mse + PSNR_LOSS_FLOOR)
        valid = count > 0
        return db[valid].sum() / valid.sum().clamp_min(1)
    err = diff**2 if kind == "mse" else diff.abs()
    return err.sum() / mask.sum().clamp_min(1)


class Meter:
    """Running per-variable means of the metrics over samples (physical units).

    Examples
    --------
    >>> m = Meter(1)
    >>> x = torch.zeros(2, 1, 4, 4)
    >>> one = torch.ones(1, dtype=torch.float64)
    >>> m.add(x, x, x == 0, one, 0 * one, one, loss=0.5)
    >>> m.means()["mse"], m.loss / m.n
    ([0.0], 0.5)
    """

    def __init__(self, n_var: int) -> None:
        self.sums = {m: np.zeros(n_var) for m in METRICS}
        self.loss = 0.0
        self.n = 0

    def add(
        self,
        pred_n: torch.Tensor,
        hr_n: torch.Tensor,
        mask: torch.Tensor,
        std: torch.Tensor,
        mean: torch.Tensor,
        data_range: torch.Tensor,
        loss: float,
    ) -> None:
        """Add a batch of normalised predictions and targets (with its mean loss)."""
        shape = (1, -1, 1, 1)
        pred = pred_n.detach().double() * std.reshape(shape) + mean.reshape(shape)
        hr = hr_n.double() * std.reshape(shape) + mean.reshape(shape)
        values = {
            "mse": tm.mse(pred, hr, mask),
            "mae": tm.mae(pred, hr, mask),
            "psnr": tm.psnr(pred, hr, data_range, mask),
            "ssim": tm.ssim(pred, hr, data_range, mask),
        }
        for m, v in values.items():
            v = v.cpu().numpy()
            if m == "psnr":
                v = np.minimum(v, 200.0)  # exact matches: finite, for means and JSON
            self.sums[m] += v.sum(axis=0)
        self.loss += float(loss) * pred.shape[0]
        self.n += pred.shape[0]

    def means(self) -> dict[str, list[float]]:
        """Per-variable mean of every metric."""
        n = max(self.n, 1)
        return {m: (s / n).tolist() for m, s in self.sums.items()}


@dataclass
class Optimiser:
    """Adam, its learning-rate schedule (or ``None``) and the unscheduled rate of group 0."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    base_lr: float

    def current_lr(self, lr: float) -> float:
        """The scheduled rate now, as a multiple of ``lr`` (the ``lr=`` of the fit)."""
        return self.optimizer.param_groups[0]["lr"] / self.base_lr * lr

    def step_schedule(self, val_loss: float) -> None:
        """Advance the schedule after an epoch (a plateau schedule reads the validation loss)."""
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        elif self.scheduler is not None:
            self.scheduler.step()


def make_optimizer(net: torch.nn.Module, cfg: FitConfig) -> Optimiser:
    """Adam over the trainable parameters (with ``layer_lr``) and the schedule.

    Examples
    --------
    >>> opt = make_optimizer(torch.nn.Linear(2, 2), FitConfig(epochs=4))
    >>> type(opt.optimizer).__name__, type(opt.scheduler).__name__, opt.base_lr
    ('Adam', 'CosineAnnealingLR', 0.001)
    """
    groups = param_groups(net, cfg.lr, dict(cfg.layer_lr) or None)
    base_lr = groups[0]["lr"]
    optimizer = torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    elif cfg.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, (cfg.patience or 4) // 2)
        )
    else:
        scheduler = None
    return Optimiser(optimizer, scheduler, base_lr)


@dataclass(frozen=True)
class Predictor:
    """Outputs over the patch cores, from patches with ``context >= halo`` cells of context.

    The model sees exactly ``halo`` cells of context (as in training) and its output is cropped
    to the core; bicubic interpolation sees the whole ``context``. With ``stage``, the output is
    the centre frame of the chain's first ``stage + 1`` stages (the two-stage method).

    Examples
    --------
    >>> p = Predictor(net=None, scale=2, window=1, halo=0, patch_size=2)
    >>> p.bicubic(torch.zeros(1, 1, 6, 6), context=2).shape
    torch.Size([1, 1, 4, 4])
    """

    net: Any
    scale: int
    window: int
    halo: int
    patch_size: int
    stage: int | None = None

    def _core(self, out: torch.Tensor, context: int) -> torch.Tensor:
        core = slice(self.scale * context, self.scale * (context + self.patch_size))
        return out[..., core, core]

    def model(self, x: torch.Tensor, context: int | None = None) -> torch.Tensor:
        """The model's output over the cores of ``x`` (``context`` defaults to ``halo``)."""
        extra = 0 if context is None else context - self.halo
        if extra:
            x = x[..., extra : x.shape[-2] - extra, extra : x.shape[-1] - extra]
        if self.stage is None:
            return self._core(self.net(x), self.halo)
        # two-stage method: the fixed earlier stages record no graph (nothing requires grad)
        movie = self.net.run_stages(x, self.stage + 1)
        return self._core(movie[:, :, movie.shape[2] // 2], self.halo)

    def bicubic(self, x: torch.Tensor, context: int) -> torch.Tensor:
        """Bicubic interpolation of the centre frame, over the cores of ``x``."""
        centre = x if self.window == 1 else x[:, :, self.window // 2]
        up = F.interpolate(centre, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self._core(up, context)


@dataclass
class LoopState:
    """Where training stands; saved after every epoch and restored by ``resume=True``.

    Attributes
    ----------
    records : list of dict
        One per finished epoch (``epoch``, ``loss``, ``val_loss``, ``lr``, metrics).
    epoch : int
        Epochs finished.
    best_loss, best_epoch : float, int
        Best validation loss so far and its epoch (0: the starting weights).
    bad_epochs : int
        Epochs since the best one.
    stopped_early : bool
        Patience ran out.
    best_state : dict or None
        The best weights (on the CPU).
    baseline : dict or None
        Bicubic metrics on the validation patches.
    start_record : dict or None
        The starting weights' validation record (``keep_start=True``).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    best_state: dict[str, torch.Tensor] | None = None
    baseline: dict[str, list[float]] | None = None
    start_record: dict[str, Any] | None = None

    def improve(self, loss: float, epoch: int, net: torch.nn.Module) -> bool:
        """Record a new best (weights copied to the CPU) when ``loss`` beats it."""
        if not loss < self.best_loss:
            return False
        self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
        self.best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        return True


@dataclass
class Validation:
    """Scores predictions on the validation patches (``None`` set: no validation)."""

    stream: BatchStream
    pset: PatchSet | None
    idx: np.ndarray
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # std, mean, range (float64)
    loss: str
    context: int

    @property
    def active(self) -> bool:
        """Whether there are validation patches."""
        return self.pset is not None and len(self.idx) > 0

    def __call__(self, predict: Callable[..., torch.Tensor]) -> tuple[float, dict]:
        """Mean loss and per-variable metrics of ``predict(lr, context=...)``."""
        meter = Meter(len(self.stats[0]))
        with torch.no_grad():
            for lr, hr, mask in self.stream(self.pset, self.idx, "validation"):
                pred = predict(lr, context=self.context)
                meter.add(
                    pred, hr, mask, *self.stats, float(masked_loss(pred, hr, mask, self.loss))
                )
        if meter.n == 0:
            raise ValueError("every validation patch is NaN; use another val_fraction or region")
        return meter.loss / meter.n, meter.means()


def start(state: LoopState, validate: Validation, predictor: Predictor, cfg: FitConfig) -> None:
    """Before the first epoch: the bicubic baseline, and the starting weights as epoch 0."""
    if not validate.active:
        return
    state.baseline = validate(predictor.bicubic)[1]
    if cfg.keep_start:
        predictor.net.eval()
        loss, metrics = validate(predictor.model)
        state.improve(loss, 0, predictor.net)
        state.start_record = {"epoch": 0, "val_loss": loss}
        state.start_record.update({f"val_{m}": v for m, v in metrics.items()})


def train_epoch(
    epoch: int,
    train: PatchSet,
    stream: BatchStream,
    predictor: Predictor,
    optimizer: torch.optim.Optimizer,
    cfg: FitConfig,
    symmetry: tuple[Any, bool],
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[float, dict]:
    """One pass over a seeded order of the training patches; its mean loss and metrics."""
    rng = np.random.default_rng([cfg.seed, epoch])
    torch.manual_seed(cfg.seed * 1_000_003 + epoch)
    if cfg.patches_per_epoch is None:
        order = rng.permutation(len(train))
    else:
        n = cfg.patches_per_epoch
        order = rng.choice(len(train), n, replace=n > len(train))
    predictor.net.train()
    meter = Meter(len(stats[0]))
    for lr, hr, mask in stream(train, order, "training"):
        if cfg.augment:
            lr, hr, mask = augment(lr, hr, mask, rng, *symmetry)
        optimizer.zero_grad(set_to_none=True)
        pred = predictor.model(lr)
        value = masked_loss(pred, hr, mask, cfg.loss)
        value.backward()
        optimizer.step()
        meter.add(pred, hr, mask, *stats, value.item())
    if meter.n == 0:
        raise ValueError("every training patch of this epoch was NaN; nothing to learn")
    loss = meter.loss / meter.n
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged at epoch {epoch + 1} (loss {loss}); lower lr= (now {cfg.lr}) or "
            "check the data for extreme values"
        )
    return loss, meter.means()


def run_epochs(
    state: LoopState,
    *,
    cfg: FitConfig,
    train: PatchSet,
    stream: BatchStream,
    validate: Validation,
    predictor: Predictor,
    optimiser: Optimiser,
    symmetry: tuple[Any, bool],
    save: Callable[[LoopState, bool], None],
) -> None:
    """Train from ``state.epoch`` to ``cfg.epochs`` or until patience runs out.

    ``save(state, improved)`` runs after every epoch (before ``cfg.callback``).
    """
    from tqdm.auto import tqdm

    net = predictor.net
    bar = tqdm(
        range(state.epoch, cfg.epochs),
        initial=state.epoch,
        total=cfg.epochs,
        desc=f"fit {net.arch} x{predictor.scale}",
        unit="epoch",
        disable=not cfg.progress,
    )
    for epoch in bar if not state.stopped_early else []:
        loss, metrics = train_epoch(
            epoch, train, stream, predictor, optimiser.optimizer, cfg, symmetry, validate.stats
        )
        if validate.active:
            net.eval()
            val_loss, val_metrics = validate(predictor.model)
        else:
            val_loss, val_metrics = loss, {m: [math.nan] * len(metrics[m]) for m in METRICS}
        record = {
            "epoch": epoch + 1,
            "loss": loss,
            "val_loss": val_loss,
            "lr": optimiser.current_lr(cfg.lr),
        }
        optimiser.step_schedule(val_loss)
        record.update({f"train_{m}": v for m, v in metrics.items()})
        record.update({f"val_{m}": v for m, v in val_metrics.items()})
        state.records.append(record)
        state.epoch = epoch + 1
        improved = state.improve(val_loss, epoch + 1, net)
        if not improved:
            state.bad_epochs += 1
        state.stopped_early = cfg.patience is not None and state.bad_epochs >= cfg.patience
        save(state, improved)
        bar.set_postfix(loss=f"{loss:.4g}", val_psnr=f"{np.mean(val_metrics['psnr']):.2f}")
        if cfg.callback is not None:
            cfg.callback(epoch + 1, record)
        if state.stopped_early:
            break
    bar.close()

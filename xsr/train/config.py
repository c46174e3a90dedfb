"""``FitConfig``: every option of :func:`xsr.train.fit`, typed, frozen and validated in one place.

:func:`~xsr.train.fit` builds one from its keyword arguments and hands it to the training stages
(:mod:`xsr.train.data`, :mod:`xsr.train.model`, :mod:`xsr.train.loop`,
:mod:`xsr.train.resume`, :mod:`xsr.train.card`). Sequences are stored as tuples and mappings as
read-only views, so a configuration cannot change while a run uses it. Every check that needs
no data and no model happens here, with a message that names the argument and the fix; checks
that need the data (variables, sizes) or the model (scale, window) happen in their stage.

This module imports neither torch nor xarray, so ``import xsr.train`` stays light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from xsr.coords import parse_periodic

__all__ = ["LOSSES", "NAN_POLICIES", "SCHEDULES", "FitConfig", "normalise_periodic"]

#: Training losses (see :func:`xsr.train.loop.masked_loss`).
LOSSES: tuple[str, ...] = ("mse", "mae", "psnr")
#: Learning-rate schedules; ``None`` keeps the rate constant.
SCHEDULES: tuple[str | None, ...] = ("cosine", "plateau", None)
#: What to do with a patch whose target is entirely NaN for a variable.
NAN_POLICIES: tuple[str, ...] = ("raise", "skip")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _integer(
    name: str, value: Any, *, minimum: int | None = None, none: bool = False, hint: str = ""
) -> int | None:
    """``value`` as an int (``>= minimum``), or ``None`` where allowed; else a clear error."""
    if value is None and none:
        return None
    if not _is_int(value) or (minimum is not None and value < minimum):
        kind = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}[minimum]
        alternative = " or None" if none else ""
        raise ValueError(f"{name} must be {kind}{hint}{alternative}, got {value!r}")
    return int(value)


def normalise_periodic(periodic: Any) -> tuple[str, ...] | None:
    """Check a ``periodic=`` argument; return ``None`` (read it from the data) or the axes.

    The meaning is that of :func:`xsr.coords.parse_periodic`: ``None`` reads periodicity from the
    data (:func:`xsr.coords.periodic_dims`), ``False`` (or ``"none"``) wraps no axis, ``"x"``,
    ``"y"``, ``("y", "x")`` (or ``"xy"``) name the axes that wrap, and ``True`` means ``"x"``
    (a global longitude).

    Parameters
    ----------
    periodic : None, bool, str or sequence of str

    Returns
    -------
    None or tuple of str
        ``None``, or a subset of ``("y", "x")`` in that order.

    Raises
    ------
    ValueError
        Anything else, with the accepted values.

    Examples
    --------
    >>> normalise_periodic(None) is None
    True
    >>> normalise_periodic("x"), normalise_periodic(("x", "y")), normalise_periodic(False)
    (('x',), ('y', 'x'), ())
    """
    flags = parse_periodic(periodic)
    if flags is None:
        return None
    return tuple(axis for axis, wraps in zip(("y", "x"), flags) if wraps)


@dataclass(frozen=True)
class FitConfig:
    """The options of one :func:`xsr.train.fit` run (everything but the model and the data).

    Build it with keyword arguments; invalid values raise :class:`ValueError` (or
    :class:`TypeError`) naming the argument and the fix. The fields are those of
    :func:`xsr.train.fit`, where each is described in full.

    Attributes
    ----------
    variables : tuple of str or None
        Variables to learn, in channel order; ``None``: every variable on the time and
        spatial dims.
    scale : int or None
        Upscaling factor; required when the model is an architecture name.
    degrade : str
        Degradation operator that makes the low-resolution inputs (``"coarsen"`` or
        ``"bicubic"``).
    dims : (y, x) or None
        Spatial dims; ``None`` finds them from names or CF attributes.
    time_dim : hashable
        Name of the time dimension.
    periodic : tuple of str or None
        Axes that wrap (a subset of ``("y", "x")``); ``None`` reads them from the data.
    epochs, batch_size, patch_size : int
        Maximum epochs, patches per batch, low-resolution patch side.
    halo : int or None
        Low-resolution context cells around every patch; ``None``: the model's receptive
        radius.
    patches_per_epoch : int or None
        Training patches drawn per epoch; ``None``: all of them.
    val_fraction : float
        Fraction of the frames held out for validation, in ``[0, 1)``.
    val_blocks : int
        Number of contiguous validation blocks.
    lr : float
        Adam learning rate.
    lr_schedule : str or None
        ``"cosine"``, ``"plateau"`` or ``None`` (constant).
    patience : int or None
        Epochs without a better validation loss before stopping; ``None`` never stops early.
    augment : bool
        Random flips and quarter turns respecting vector pairs.
    init_from : object
        Transfer-learning source (name, path, model or state dict), or ``None``.
    freeze : tuple of str
        Layers or parameters kept fixed.
    layer_lr : mapping of str to float
        Per-layer learning rates (read-only).
    checkpoint : str, path or None
        Checkpoint folder.
    resume : bool
        Continue from ``checkpoint``.
    device : str or torch.device
        Device, resolved by :func:`xsr.engine.resolve_device` (``"auto"``: CUDA if available,
        else the CPU).
    seed : int
        Seeds weights, patch sampling and augmentation.
    progress : bool
        Show a progress bar.
    loss : str
        ``"mse"``, ``"mae"`` or ``"psnr"``.
    stage : int or None
        For a chain model, the stage trained by the two-stage method.
    nan_patches : str
        ``"raise"`` or ``"skip"``.
    callback : callable or None
        ``callback(epoch, record)`` after every epoch.
    keep_start : bool
        Score the starting weights as epoch 0.
    site : bool
        Learn a field model's site detail on the training grid after the epochs.
    model_config : mapping
        Architecture options when the model is a name (read-only).

    Examples
    --------
    >>> cfg = FitConfig(scale=2, epochs=3, variables="h", periodic="x")
    >>> cfg.variables, cfg.epochs, cfg.periodic
    (('h',), 3, ('x',))
    >>> FitConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be a positive integer, got 0
    """

    variables: tuple[str, ...] | None = None
    scale: int | None = None
    degrade: str = "coarsen"
    dims: tuple[Hashable, Hashable] | None = None
    time_dim: Hashable = "time"
    periodic: tuple[str, ...] | None = None
    epochs: int = 50
    batch_size: int = 16
    patch_size: int = 32
    halo: int | None = None
    patches_per_epoch: int | None = None
    val_fraction: float = 0.2
    val_blocks: int = 1
    lr: float = 1e-3
    lr_schedule: str | None = "cosine"
    patience: int | None = 5
    augment: bool = True
    init_from: Any = None
    freeze: tuple[str, ...] = ()
    layer_lr: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    checkpoint: str | os.PathLike | None = None
    resume: bool = False
    device: Any = "auto"
    seed: int = 0
    progress: bool = True
    loss: str = "mse"
    stage: int | None = None
    nan_patches: str = "raise"
    callback: Callable[[int, dict[str, Any]], None] | None = None
    keep_start: bool = False
    site: bool = False
    model_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        """Validate every field and store it in its canonical, immutable form."""
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict[str, Any]:
        """The canonical value of every field, or the first error found."""
        from xsr.degradation import METHODS

        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        choices = {
            "degrade": METHODS,
            "loss": LOSSES,
            "lr_schedule": SCHEDULES,
            "nan_patches": NAN_POLICIES,
        }
        for name, allowed in choices.items():
            if out[name] not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {out[name]!r}")
        for name in ("epochs", "batch_size", "patch_size", "val_blocks"):
            out[name] = _integer(name, out[name], minimum=1)
        for name in ("patches_per_epoch", "patience"):
            out[name] = _integer(name, out[name], minimum=1, none=True)
        out["scale"] = _integer("scale", out["scale"], minimum=1, none=True, hint=" (e.g. 2)")
        out["halo"] = _integer("halo", out["halo"], minimum=0, none=True)
        hint = " (a chain's stage index)"
        out["stage"] = _integer("stage", out["stage"], minimum=0, none=True, hint=hint)
        out["seed"] = _integer("seed", out["seed"])
        out["lr"] = self._positive_float("lr", out["lr"])
        if not isinstance(out["val_fraction"], (int, float, np.floating)) or not (
            0.0 <= float(out["val_fraction"]) < 1.0
        ):
            raise ValueError(
                f"val_fraction must be in [0, 1), got {out['val_fraction']!r}; 0 trains on every "
                "frame (no validation, no early stopping)"
            )
        out["val_fraction"] = float(out["val_fraction"])
        if out["resume"] and out["checkpoint"] is None:
            raise ValueError("resume=True needs checkpoint= (the folder of the interrupted run)")
        if out["callback"] is not None and not callable(out["callback"]):
            raise TypeError(f"callback must be callable(epoch, record), got {out['callback']!r}")
        for name in ("augment", "resume", "progress", "keep_start", "site"):
            out[name] = bool(out[name])
        out["variables"] = self._variables(out["variables"])
        out["dims"] = self._dims(out["dims"])
        out["periodic"] = normalise_periodic(out["periodic"])
        freeze = out["freeze"]
        out["freeze"] = (freeze,) if isinstance(freeze, str) else tuple(freeze or ())
        layer_lr = dict(out["layer_lr"] or {})
        for name, value in layer_lr.items():
            self._positive_float(f"layer_lr[{name!r}]", value)
        out["layer_lr"] = MappingProxyType(layer_lr)
        out["model_config"] = MappingProxyType(dict(out["model_config"] or {}))
        return out

    @staticmethod
    def _positive_float(name: str, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
        return number

    @staticmethod
    def _variables(variables: Any) -> tuple[str, ...] | None:
        if variables is None:
            return None
        if isinstance(variables, str):
            return (variables,)
        variables = tuple(variables)
        if not variables:
            raise ValueError("variables= is empty; name at least one data variable")
        return variables

    @staticmethod
    def _dims(dims: Any) -> tuple[Hashable, Hashable] | None:
        if dims is None:
            return None
        if isinstance(dims, str) or len(tuple(dims)) != 2:
            raise ValueError(f"dims must be a (y, x) pair of dimension names, got {dims!r}")
        return tuple(dims)  # type: ignore[return-value]

    def fingerprint_fields(self) -> dict[str, Any]:
        """The options that make two runs the same run (for ``resume=True``).

        Returns
        -------
        dict
            JSON-friendly values of the options that change what is trained.

        Examples
        --------
        >>> FitConfig(lr=0.01).fingerprint_fields()["lr"]
        0.01
        """
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "patch_size": self.patch_size,
            "patches_per_epoch": self.patches_per_epoch,
            "val": [self.val_fraction, self.val_blocks],
            "lr": self.lr,
            "schedule": self.lr_schedule,
            "patience": self.patience,
            "augment": self.augment,
            "seed": self.seed,
            "loss": self.loss,
            "layer_lr": dict(self.layer_lr),
            "keep_start": self.keep_start,
        }

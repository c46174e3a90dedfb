"""``fit``: train a super-resolution model on an xarray movie, streaming patches from dask.

The recipe is the report's: Adam, a learning-rate schedule, early stopping on the validation loss
with patience, best-checkpoint saving, transfer learning by copying matched layers and freezing
some of them, and the two-stage method for chains (train one stage with the others fixed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from xsr.coords import spatial_dims
from xsr.train import _torch_metrics as tm
from xsr.train.augment import apply_symmetry, variable_symmetry
from xsr.train.history import METRICS, Checkpoint, history_dataset
from xsr.train.patches import PatchSet, split_time, stack_samples
from xsr.train.transfer import freeze as freeze_layers
from xsr.train.transfer import param_groups, transfer_weights

__all__ = ["fit", "resolve_device"]

_LOSSES = ("mse", "mae", "psnr")
#: Floor on a patch's normalised MSE in the "psnr" loss (an exact match scores 80 dB, not inf).
_PSNR_LOSS_FLOOR = 1e-8
_SCHEDULES = ("cosine", "plateau", None)
_NAN_POLICIES = ("raise", "skip")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``; ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    ``XSR_DEVICE`` in the environment, when set, is what ``"auto"`` means instead.

    Parameters
    ----------
    device : str or torch.device, default "auto"

    Returns
    -------
    torch.device

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        override = os.environ.get("XSR_DEVICE", "").strip()
        if override and override != "auto":
            return resolve_device(override)
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:0'"
        ) from err


# --------------------------------------------------------------------------------------------
# inputs


def _as_dataset(data: Any) -> xr.Dataset:
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=data.name if data.name is not None else "data")
    if isinstance(data, xr.Dataset):
        return data
    raise TypeError(
        f"data must be an xarray Dataset or DataArray, got {type(data).__name__}; wrap arrays "
        "with xr.DataArray(values, dims=('time', 'y', 'x'))"
    )


def _pick_variables(
    ds: xr.Dataset, variables: Sequence[str] | str | None, time_dim: Hashable, dims: tuple
) -> list[str]:
    if isinstance(variables, str):
        variables = [variables]
    if variables is None:
        variables = [str(v) for v, a in ds.data_vars.items() if {time_dim, *dims} <= set(a.dims)]
        if not variables:
            raise ValueError(
                f"no data variable has dims ({time_dim!r}, {dims[0]!r}, {dims[1]!r}); pass "
                "variables= and check time_dim= / dims="
            )
        return variables
    variables = list(variables)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ValueError(
            f"variables {missing} are not in the data; it has {list(map(str, ds.data_vars))}"
        )
    if not variables:
        raise ValueError("variables= is empty; name at least one data variable")
    for v in variables:
        lacking = [d for d in (time_dim, *dims) if d not in ds[v].dims]
        if lacking:
            raise ValueError(
                f"variable {v!r} lacks dims {lacking} (it has {ds[v].dims}); pass time_dim= / "
                "dims= naming its time and spatial dimensions"
            )
        if not np.issubdtype(ds[v].dtype, np.floating) and not np.issubdtype(
            ds[v].dtype, np.integer
        ):
            raise TypeError(f"variable {v!r} has dtype {ds[v].dtype}; it must be real numeric")
    return variables


def _build_model(
    model: Any, *, scale: int | None, channels: int, model_config: Mapping[str, Any]
) -> torch.nn.Module:
    from xsr.models.base import SRModel

    if isinstance(model, SRModel):
        if model_config:
            raise TypeError(
                f"model configuration {sorted(model_config)} only applies when model is an "
                "architecture name"
            )
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
    if model_config:
        raise TypeError(
            f"model configuration {sorted(model_config)} only applies when model is an "
            "architecture name"
        )
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


# --------------------------------------------------------------------------------------------
# batches


def _to_tensors(
    batch, mean: np.ndarray, std: np.ndarray, window: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise, replace NaN by 0 (the mean), return (lr, hr, finite-mask)."""
    shape_lr = (1, -1, 1, 1, 1)
    lr = (batch.lr.astype(np.float32) - mean.reshape(shape_lr)) / std.reshape(shape_lr)
    hr = (batch.hr.astype(np.float32) - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
    mask = np.isfinite(hr)
    lr = np.nan_to_num(lr, nan=0.0, posinf=0.0, neginf=0.0)
    hr = np.where(mask, hr, 0.0).astype(np.float32)
    if window == 1:
        lr = lr[:, :, 0]
    return (
        torch.from_numpy(np.ascontiguousarray(lr)).to(device),
        torch.from_numpy(np.ascontiguousarray(hr)).to(device),
        torch.from_numpy(mask).to(device),
    )


def _nan_only(mask: torch.Tensor) -> torch.Tensor:
    """Samples where some channel has no finite target pixel."""
    return ~mask.flatten(2).any(dim=-1).all(dim=-1)


def _nan_error(batch, bad: np.ndarray, names: dict[str, Any]) -> ValueError:
    t0, i0, j0 = (int(v) for v in batch.positions[int(np.flatnonzero(bad)[0])])
    p, s, r = names["patch_size"], names["scale"], names["radius"]
    return ValueError(
        f"a {names['split']} patch is entirely NaN for some variable (target frame "
        f"{names['time_dim']}={t0 + r}, {names['y']}={s * i0}:{s * (i0 + p)}, "
        f"{names['x']}={s * j0}:{s * (j0 + p)} of the high-resolution data); pass "
        "nan_patches='skip' to drop such patches (e.g. land-masked data), or select a region "
        "or variables with data"
    )


def _augment(
    lr: torch.Tensor,
    hr: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    symmetry,
    y_ascending: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    allowed = symmetry.allowed
    draws = rng.integers(len(allowed), size=lr.shape[0])
    if lr.shape[-1] != lr.shape[-2]:
        return lr, hr, mask
    lr, hr, mask = lr.clone(), hr.clone(), mask.clone()
    for d in np.unique(draws):
        k, flip = allowed[int(d)]
        if k == 0 and not flip:
            continue
        idx = torch.from_numpy(np.flatnonzero(draws == d)).to(lr.device)
        lr[idx] = apply_symmetry(lr[idx], k, flip, symmetry, y_ascending=y_ascending)
        hr[idx] = apply_symmetry(hr[idx], k, flip, symmetry, y_ascending=y_ascending)
        mask[idx] = (
            apply_symmetry(mask[idx].to(lr.dtype), k, flip, None, y_ascending=y_ascending) > 0
        )
    return lr, hr, mask


def _loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Masked loss of a batch ``(B, C, H, W)`` in normalised units.

    ``"mse"`` and ``"mae"`` average over every valid value. ``"psnr"`` is the mean over patches
    and channels of ``10 * log10(MSE)``: minimising it maximises the mean per-patch PSNR, so a
    patch with a small error counts as much as one with a large error (as frames do in a mean
    per-frame PSNR), where MSE is dominated by the hardest patches.
    """
    diff = torch.where(mask, pred - target, torch.zeros_like(pred))
    if kind == "psnr":
        count = mask.sum((-2, -1))
        mse = (diff**2).sum((-2, -1)) / count.clamp_min(1)
        db = 10.0 * torch.log10(mse + _PSNR_LOSS_FLOOR)
        valid = count > 0
        return db[valid].sum() / valid.sum().clamp_min(1)
    err = diff**2 if kind == "mse" else diff.abs()
    return err.sum() / mask.sum().clamp_min(1)


class _Meter:
    """Running per-variable means of the metrics over samples (physical units)."""

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
        n = max(self.n, 1)
        return {m: (s / n).tolist() for m, s in self.sums.items()}


# --------------------------------------------------------------------------------------------
# card


def _json_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
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


def _fingerprint(d: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------


def fit(
    model: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    variables: Sequence[str] | str | None = None,
    scale: int | None = None,
    degrade: str = "coarsen",
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    epochs: int = 50,
    batch_size: int = 16,
    patch_size: int = 32,
    halo: int | None = None,
    patches_per_epoch: int | None = None,
    val_fraction: float = 0.2,
    val_blocks: int = 1,
    lr: float = 1e-3,
    lr_schedule: str | None = "cosine",
    patience: int | None = 5,
    augment: bool = True,
    init_from: Any = None,
    freeze: str | Sequence[str] = (),
    layer_lr: Mapping[str, float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    loss: str = "mse",
    stage: int | None = None,
    nan_patches: str = "raise",
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    keep_start: bool = False,
    **model_config: Any,
) -> tuple[torch.nn.Module, xr.Dataset]:
    """Train a super-resolution model on a movie; return it with its per-epoch history.

    Low-resolution inputs are made from ``data`` by :func:`xsr.degrade.degrade` (the operator
    used at evaluation), normalised with the per-variable mean and standard deviation of the
    training split (computed lazily), and cut with :mod:`xbatcher` into aligned
    ``(time=window, y=patch_size, x=patch_size)`` windows (plus a ``halo`` of context) whose
    target is the high-resolution centre frame. The last ``val_fraction`` of the time axis (in ``val_blocks`` contiguous blocks)
    is held out; no window crosses a split. Patches are loaded one batch at a time, so a
    dask/Zarr-backed archive is streamed, never loaded whole.

    Parameters
    ----------
    model : str, path or SRModel
        An architecture name (built with ``get_model(model, scale=scale,
        channels=len(variables), **model_config)``), a pretrained name or model file (fine-tuning)
        or an :class:`~xsr.models.base.SRModel` (a copy is trained).
    data : xarray.Dataset or xarray.DataArray
        High-resolution movie with a time and two spatial dims (extra dims become samples).
        Eager or dask-backed.
    variables : str or sequence of str, optional
        Variables to learn (the model's channels, in order); default every variable on the time
        and spatial dims.
    scale : int, optional
        Upscaling factor; required with an architecture name, checked against a given model.
    degrade : {"coarsen", "bicubic"}, default "coarsen"
        Degradation that makes the low-resolution inputs.
    dims : (str, str), optional
        Spatial ``(y, x)`` dims; found from names or CF attributes by default.
    time_dim : str, default "time"
    epochs : int, default 50
    batch_size : int, default 16
    patch_size : int, default 32
        Low-resolution patch side (the target is ``scale * patch_size``).
    halo : int, optional
        Low-resolution context cells added around every patch, whose output is cropped away
        before the loss, as the engine does at inference. Default: the model's
        ``receptive_radius``, so no target pixel sees the model's zero padding; 0 trains on
        bare patches.
    patches_per_epoch : int, optional
        Training patches drawn (seeded) per epoch; default all of them (half-overlapping grid).
        Also caps the validation set at a proportional number of patches.
    val_fraction : float, default 0.2
        Fraction of frames held out for validation; 0 trains on everything (no early stopping).
    val_blocks : int, default 1
        Number of contiguous validation blocks (1: the end of the record).
    lr : float, default 1e-3
        Adam learning rate.
    lr_schedule : {"cosine", "plateau", None}, default "cosine"
        Cosine annealing over ``epochs``, halving on a validation plateau, or constant.
    patience : int or None, default 5
        Stop after this many epochs without a better validation loss (the report used 5).
    augment : bool, default True
        Random flips and quarter turns that respect vector pairs (u, v) and pseudo-scalars.
    init_from : str, path, SRModel or state dict, optional
        Copy every tensor whose name and shape match (transfer learning).
    freeze : str or sequence of str
        Layers or parameters kept fixed.
    layer_lr : mapping of str to float, optional
        Per-layer learning rates, e.g. ``{"body.0": 1e-4}``.
    checkpoint : str or path, optional
        Folder for the best weights, the last epoch's weights and optimizer state and the run
        state (safetensors + JSON).
    resume : bool, default False
        Continue from ``checkpoint`` when it holds a finished epoch of the same run.
    device : str or torch.device, default "auto"
    seed : int, default 0
        Seeds weight initialisation, patch sampling and augmentation: same seed, same history.
    progress : bool, default True
        A tqdm bar over epochs with the loss and validation PSNR.
    loss : {"mse", "mae", "psnr"}, default "mse"
        Training loss, on normalised values, ignoring NaN targets; the validation loss (which
        picks the best epoch) is the same. ``"psnr"`` is the mean over patches of
        ``10 * log10(MSE)`` (the negative mean per-patch PSNR, up to a constant): use it when
        the error varies by orders of magnitude between patches or frames and the mean
        per-frame PSNR is what counts (it keeps a refiner from trading easy frames for hard
        ones).
    stage : int, optional
        For a ``"chain"`` model, the report's two-stage method: train only
        ``model.stages[stage]`` on the output of the earlier (fixed) stages; the loss and the
        metrics are on the output of ``stages[:stage + 1]`` (its centre frame), so the later
        stages are ignored. ``stages[:stage + 1]`` must already upscale by the chain's
        ``scale`` (e.g. a 2D x2 stage then a 3D x1 refiner). Train ``stage=0`` first, then
        ``stage=1`` from the returned model.
    nan_patches : {"raise", "skip"}, default "raise"
        What to do with a patch whose target is entirely NaN for a variable.
    callback : callable, optional
        ``callback(epoch, record)`` after every epoch (after the checkpoint is written).
    keep_start : bool, default False
        Score the starting weights on the validation patches first (as epoch 0): when no epoch
        beats them, they are what is returned (``best_epoch`` 0), and patience counts from
        them. For fine-tuning and refinement (``init_from=``, a chain's later ``stage``), so
        that training never returns a model worse on validation than the one it started from.
    **model_config
        Extra architecture options when ``model`` is a name.

    Returns
    -------
    (SRModel, xarray.Dataset)
        The model with the best validation loss, in eval mode, with a complete ``card``; and the
        history: per-epoch ``loss``, ``val_loss``, ``lr`` and ``train_``/``val_`` MSE, MAE, PSNR
        and SSIM per variable in physical units. Attributes hold the bicubic baseline on the same
        validation patches (``bicubic_val_psnr`` ...), the PSNR ``data_range`` per variable and
        ``best_epoch``.

    Raises
    ------
    ValueError
        Unknown model name, missing variables, fewer frames than the window, patches larger
        than the data, an all-NaN patch, an unusable checkpoint, or bad arguments.
    FloatingPointError
        The training loss became NaN or infinite (the learning rate is too high).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> ds = random_movie(12, 32, 32, seed=0)
    >>> model, hist = fit("fsrcnn", ds, variables=["h"], scale=2, epochs=2, patch_size=4,
    ...                   batch_size=4, patches_per_epoch=8, progress=False)
    >>> hist.sizes["epoch"], model.card.scale
    (2, 2)
    """
    args = dict(locals())
    args.update(args.pop("model_config"))
    dev = resolve_device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    # seeding inside fork_rng: a seeded fit leaves the caller's global torch RNG untouched
    with torch.random.fork_rng(devices=cuda):
        return _fit(**args)


def _fit(
    model: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    variables: Sequence[str] | str | None,
    scale: int | None,
    degrade: str,
    dims: Sequence[Hashable] | None,
    time_dim: Hashable,
    epochs: int,
    batch_size: int,
    patch_size: int,
    halo: int | None,
    patches_per_epoch: int | None,
    val_fraction: float,
    val_blocks: int,
    lr: float,
    lr_schedule: str | None,
    patience: int | None,
    augment: bool,
    init_from: Any,
    freeze: str | Sequence[str],
    layer_lr: Mapping[str, float] | None,
    checkpoint: str | os.PathLike | None,
    resume: bool,
    device: str | torch.device,
    seed: int,
    progress: bool,
    loss: str,
    stage: int | None,
    nan_patches: str,
    callback: Callable[[int, dict[str, Any]], None] | None,
    keep_start: bool,
    **model_config: Any,
) -> tuple[torch.nn.Module, xr.Dataset]:
    """The body of :func:`fit` (same arguments), run inside a forked torch RNG."""
    from xsr.degrade import METHODS
    from xsr.degrade import degrade as degrade_fn

    # ---- arguments -------------------------------------------------------------------------
    if degrade not in METHODS:
        raise ValueError(f"degrade must be one of {METHODS}, got {degrade!r}")
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    if lr_schedule not in _SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {_SCHEDULES}, got {lr_schedule!r}")
    if nan_patches not in _NAN_POLICIES:
        raise ValueError(f"nan_patches must be one of {_NAN_POLICIES}, got {nan_patches!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patch_size", patch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if patches_per_epoch is not None and (
        not isinstance(patches_per_epoch, int) or patches_per_epoch < 1
    ):
        raise ValueError(
            f"patches_per_epoch must be a positive integer or None, got {patches_per_epoch!r}"
        )
    if not float(lr) > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the folder of the interrupted run)")

    ds = _as_dataset(data)
    ydim, xdim = spatial_dims(ds, dims)
    if time_dim not in ds.dims:
        raise ValueError(
            f"time_dim={time_dim!r} is not a dimension of the data (dims: {list(ds.dims)})"
        )
    variables = _pick_variables(ds, variables, time_dim, (ydim, xdim))
    dev = resolve_device(device)

    # ---- model -----------------------------------------------------------------------------
    torch.manual_seed(int(seed))
    net = _build_model(model, scale=scale, channels=len(variables), model_config=model_config)
    if scale is not None and int(scale) != net.scale:
        raise ValueError(f"scale={scale} disagrees with the model's scale {net.scale}")
    if net.channels != len(variables):
        raise ValueError(
            f"the model takes {net.channels} channel(s) but variables={variables} has "
            f"{len(variables)}; choose matching variables or build a new model"
        )
    scale = int(net.scale)
    window = int(net.window)
    radius = window // 2
    if halo is None:
        halo = int(net.receptive_radius)
    elif isinstance(halo, bool) or not isinstance(halo, (int, np.integer)) or halo < 0:
        raise ValueError(f"halo must be a non-negative integer or None, got {halo!r}")
    halo = int(halo)
    transferred: list[str] = []
    if init_from is not None:
        transferred = list(transfer_weights(net, init_from))
    frozen: list[str] = []
    if stage is not None:
        stages = getattr(net, "stages", None)
        if stages is None:
            raise ValueError(f"stage={stage} needs a 'chain' model; {net.arch!r} has no stages")
        if not 0 <= int(stage) < len(stages):
            raise ValueError(f"stage={stage} is out of range: the chain has {len(stages)} stages")
        stage = int(stage)
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
        others = [
            o for o in others if any(n.startswith(o + ".") for n, _ in net.named_parameters())
        ]
        if others:
            frozen += freeze_layers(net, others)
    if freeze:
        frozen += freeze_layers(net, freeze)
    net = net.to(dev)
    groups = param_groups(net, float(lr), layer_lr)
    optimizer = torch.optim.Adam(groups, lr=float(lr))
    if lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(epochs))
    elif lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, (patience or 4) // 2)
        )
    else:
        scheduler = None

    # ---- data ------------------------------------------------------------------------------
    n_time = ds.sizes[time_dim]
    train_blocks, val_blocks_ = split_time(
        n_time, window=window, val_fraction=val_fraction, val_blocks=val_blocks
    )
    for dim in (ydim, xdim):
        need = scale * (patch_size + 2 * halo)
        if ds.sizes[dim] < need:
            raise ValueError(
                f"patch_size={patch_size} with halo={halo} at scale={scale} needs {need} cells "
                f"along {dim!r}, the data has {ds.sizes[dim]}; use a smaller patch_size, a "
                "smaller halo= (default: the model's receptive radius) or larger data"
            )
    sub = ds[variables]
    if any(sub[v].chunks is None and sub[v].encoding.get("source") for v in variables):
        # opened from a file without dask: chunk along time so that nothing loads it whole
        sub = sub.chunk({time_dim: min(n_time, max(window, 8))})
    lowres = degrade_fn(sub, scale=scale, method=degrade, dims=(ydim, xdim), boundary="trim")
    hires = sub.isel(
        {ydim: slice(0, scale * lowres.sizes[ydim]), xdim: slice(0, scale * lowres.sizes[xdim])}
    )
    hr_s = stack_samples(hires, variables, time_dim, (ydim, xdim))
    lr_s = stack_samples(lowres, variables, time_dim, (ydim, xdim))
    common = {
        "variables": variables,
        "scale": scale,
        "window": window,
        "patch_size": int(patch_size),
        "time_dim": time_dim,
        "dims": (ydim, xdim),
        "halo": halo,
    }
    train_set = PatchSet(hr_s, lr_s, blocks=train_blocks, stride=max(1, patch_size // 2), **common)
    val_set = PatchSet(hr_s, lr_s, blocks=val_blocks_, **common) if val_blocks_ else None
    if len(train_set) == 0:
        raise ValueError("no training patch fits the data; use a smaller patch_size")
    val_idx = np.arange(len(val_set)) if val_set is not None else np.arange(0)
    if patches_per_epoch is not None and val_set is not None:
        cap = max(int(batch_size), math.ceil(patches_per_epoch * val_fraction / (1 - val_fraction)))
        if len(val_idx) > cap:
            val_idx = np.unique(np.linspace(0, len(val_set) - 1, cap).round().astype(int))

    ck = Checkpoint(checkpoint) if checkpoint is not None else None
    fingerprint = _fingerprint(
        {
            "arch": net.arch,
            "config": net.config,
            "variables": variables,
            "scale": scale,
            "degrade": degrade,
            "dims": [str(ydim), str(xdim)],
            "time": n_time,
            "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
            "epochs": int(epochs),
            "batch_size": int(batch_size),
            "patch_size": int(patch_size),
            "halo": halo,
            "patches_per_epoch": patches_per_epoch,
            "val": [val_fraction, val_blocks],
            "lr": float(lr),
            "schedule": lr_schedule,
            "patience": patience,
            "augment": bool(augment),
            "seed": int(seed),
            "loss": loss,
            "stage": stage,
            "frozen": frozen,
            "layer_lr": dict(layer_lr or {}),
            "keep_start": bool(keep_start),
        }
    )
    resumed = None
    if resume and ck is not None and ck.exists():
        weights, opt_state, resumed = ck.load_last()
        if resumed.get("fingerprint") != fingerprint:
            raise ValueError(
                f"checkpoint {os.fspath(checkpoint)!r} was written by a different run (model, "
                "data or training arguments differ); pass the same arguments, another "
                "checkpoint folder, or resume=False"
            )
        net.load_state_dict(weights)
        optimizer.load_state_dict(opt_state)
        if scheduler is not None and resumed.get("scheduler") is not None:
            scheduler.load_state_dict(resumed["scheduler"])

    # ---- statistics (one lazy reduction) ----------------------------------------------------
    if resumed is not None:
        mean = np.asarray(resumed["mean"], dtype=np.float64)
        std = np.asarray(resumed["std"], dtype=np.float64)
        data_range = np.asarray(resumed["data_range"], dtype=np.float64)
    else:
        train_hr = xr.concat(
            [hr_s.isel({time_dim: slice(a, b)}) for a, b in train_blocks], time_dim
        )
        range_hr = (
            xr.concat([hr_s.isel({time_dim: slice(a, b)}) for a, b in val_blocks_], time_dim)
            if val_blocks_
            else train_hr
        )
        stats = dask.compute(
            *[
                (train_hr[v].mean(), train_hr[v].std(), range_hr[v].min(), range_hr[v].max())
                for v in variables
            ]
        )
        mean = np.array([float(s[0]) for s in stats])
        std = np.array([float(s[1]) for s in stats])
        data_range = np.array([float(s[3]) - float(s[2]) for s in stats])
        for v, m, sd in zip(variables, mean, std):
            if not np.isfinite(m):
                raise ValueError(
                    f"variable {v!r} is entirely NaN in the training split; it cannot be learned"
                )
            if not sd > 0:
                raise ValueError(
                    f"variable {v!r} is constant in the training split (std 0); nothing to learn"
                )
        data_range = np.where(np.isfinite(data_range) & (data_range > 0), data_range, 4 * std)
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    t_mean = torch.tensor(mean, dtype=torch.float64, device=dev)
    t_std = torch.tensor(std, dtype=torch.float64, device=dev)
    t_range = torch.tensor(data_range, dtype=torch.float64, device=dev)

    standard_names = [ds[v].attrs.get("standard_name") for v in variables]
    symmetry = variable_symmetry(variables, standard_names)
    ycoord = ds[ydim].values if ydim in ds.coords else None
    y_ascending = not (
        ycoord is not None
        and ycoord.ndim == 1
        and len(ycoord) > 1
        and np.issubdtype(ycoord.dtype, np.number)
        and ycoord[1] < ycoord[0]
    )
    nan_info = {
        "scale": scale,
        "patch_size": int(patch_size),
        "radius": radius,
        "time_dim": time_dim,
        "y": ydim,
        "x": xdim,
    }

    def batches(pset: PatchSet, order: np.ndarray, split: str):
        chunks = [order[i : i + int(batch_size)] for i in range(0, len(order), int(batch_size))]
        if not chunks:
            return
        # read the next batch (dask / disk) while the model works on this one
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsr-fit-io") as pool:
            pending = pool.submit(pset.load, chunks[0])
            for k in range(len(chunks)):
                batch = pending.result()
                if k + 1 < len(chunks):
                    pending = pool.submit(pset.load, chunks[k + 1])
                lr_t, hr_t, mask = _to_tensors(batch, mean32, std32, window, dev)
                bad = _nan_only(mask)
                if bool(bad.any()):
                    if nan_patches == "raise":
                        raise _nan_error(batch, bad.cpu().numpy(), {**nan_info, "split": split})
                    keep = ~bad
                    lr_t, hr_t, mask = lr_t[keep], hr_t[keep], mask[keep]
                    if lr_t.shape[0] == 0:
                        continue
                yield lr_t, hr_t, mask

    def evaluate(predict: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float, dict]:
        meter = _Meter(len(variables))
        with torch.no_grad():
            for lr_t, hr_t, mask in batches(val_set, val_idx, "validation"):
                pred = predict(lr_t)
                meter.add(
                    pred, hr_t, mask, t_std, t_mean, t_range, float(_loss(pred, hr_t, mask, loss))
                )
        if meter.n == 0:
            raise ValueError("every validation patch is NaN; use another val_fraction or region")
        return meter.loss / meter.n, meter.means()

    core = slice(scale * halo, scale * (halo + int(patch_size)))

    def crop(pred: torch.Tensor) -> torch.Tensor:
        return pred[..., core, core]

    def forward(x: torch.Tensor) -> torch.Tensor:
        if stage is None:
            return crop(net(x))
        # two-stage method: the fixed earlier stages record no graph (nothing requires grad)
        movie = net.run_stages(x, stage + 1)
        return crop(movie[:, :, movie.shape[2] // 2])

    def bicubic(lr_t: torch.Tensor) -> torch.Tensor:
        centre = lr_t if window == 1 else lr_t[:, :, radius]
        return crop(F.interpolate(centre, scale_factor=scale, mode="bicubic", align_corners=False))

    # ---- bicubic baseline on the validation patches ---------------------------------------
    if resumed is not None:
        baseline = resumed["baseline"]
        records = resumed["records"]
        start_epoch = int(resumed["epoch"])
        best = {"loss": float(resumed["best_loss"]), "epoch": int(resumed["best_epoch"])}
        records_start = [resumed["start_record"]] if resumed.get("start_record") else []
        bad_epochs = int(resumed["bad_epochs"])
        best_state = ck.load_best() if ck is not None else None
    else:
        baseline = evaluate(bicubic)[1] if val_set is not None and len(val_idx) else None
        records = []
        start_epoch = 0
        best = {"loss": math.inf, "epoch": 0}
        bad_epochs = 0
        best_state = None
        if keep_start and val_set is not None and len(val_idx):
            net.eval()
            start_loss, start_metrics = evaluate(forward)
            best = {"loss": start_loss, "epoch": 0}
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            start_record = {"epoch": 0, "val_loss": start_loss}
            start_record.update({f"val_{m}": v for m, v in start_metrics.items()})
            records_start = [start_record]
            if ck is not None:
                ck.save_best(best_state)
        else:
            records_start = []

    # ---- epochs ----------------------------------------------------------------------------
    from tqdm.auto import tqdm

    bar = tqdm(
        range(start_epoch, int(epochs)),
        initial=start_epoch,
        total=int(epochs),
        desc=f"fit {net.arch} x{scale}",
        unit="epoch",
        disable=not progress,
    )
    stopped_early = bool(resumed.get("stopped_early", False)) if resumed else False
    base_lr = groups[0]["lr"]
    n_train = len(train_set) if patches_per_epoch is None else int(patches_per_epoch)
    for epoch in bar if not stopped_early else []:
        rng = np.random.default_rng([int(seed), epoch])
        torch.manual_seed(int(seed) * 1_000_003 + epoch)
        if patches_per_epoch is None:
            order = rng.permutation(len(train_set))
        else:
            order = rng.choice(len(train_set), n_train, replace=n_train > len(train_set))
        net.train()
        meter = _Meter(len(variables))
        for lr_t, hr_t, mask in batches(train_set, order, "training"):
            if augment:
                lr_t, hr_t, mask = _augment(lr_t, hr_t, mask, rng, symmetry, y_ascending)
            optimizer.zero_grad(set_to_none=True)
            pred = forward(lr_t)
            value = _loss(pred, hr_t, mask, loss)
            value.backward()
            optimizer.step()
            meter.add(pred, hr_t, mask, t_std, t_mean, t_range, value.item())
        if meter.n == 0:
            raise ValueError("every training patch of this epoch was NaN; nothing to learn")
        train_loss, train_metrics = meter.loss / meter.n, meter.means()
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower lr= (now "
                f"{lr}) or check the data for extreme values"
            )
        if val_set is not None and len(val_idx):
            net.eval()
            val_loss, val_metrics = evaluate(forward)
        else:
            val_loss, val_metrics = train_loss, {m: [math.nan] * len(variables) for m in METRICS}
        current_lr = optimizer.param_groups[0]["lr"] / base_lr * float(lr)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None:
            scheduler.step()
        record = {"epoch": epoch + 1, "loss": train_loss, "val_loss": val_loss, "lr": current_lr}
        record.update({f"train_{m}": v for m, v in train_metrics.items()})
        record.update({f"val_{m}": v for m, v in val_metrics.items()})
        records.append(record)
        if val_loss < best["loss"]:
            best = {"loss": val_loss, "epoch": epoch + 1}
            bad_epochs = 0
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            if ck is not None:
                ck.save_best(best_state)
        else:
            bad_epochs += 1
        stopped_early = patience is not None and bad_epochs >= patience
        if ck is not None:
            ck.save_last(
                net.state_dict(),
                optimizer.state_dict(),
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "best_loss": best["loss"],
                    "best_epoch": best["epoch"],
                    "bad_epochs": bad_epochs,
                    "stopped_early": stopped_early,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "mean": mean.tolist(),
                    "std": std.tolist(),
                    "data_range": data_range.tolist(),
                    "baseline": baseline,
                    "records": records,
                    "start_record": records_start[0] if records_start else None,
                },
            )
        bar.set_postfix(loss=f"{train_loss:.4g}", val_psnr=f"{np.mean(val_metrics['psnr']):.2f}")
        if callback is not None:
            callback(epoch + 1, record)
        if stopped_early:
            break
    bar.close()

    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    for name, param in net.named_parameters():
        if name in frozen:  # freezing is part of this fit, not of the returned model
            param.requires_grad_(True)

    # ---- history and card --------------------------------------------------------------------
    units = {v: str(ds[v].attrs.get("units", "")) for v in variables}
    best_record = next(
        (r for r in [*records_start, *records] if r["epoch"] == best["epoch"]),
        records[-1] if records else None,
    )
    attrs: dict[str, Any] = {
        "arch": net.arch,
        "scale": scale,
        "window": window,
        "degradation": degrade,
        "seed": int(seed),
        "device": str(dev),
        "best_epoch": int(best["epoch"]),
        "stopped_early": int(stopped_early),
        "data_range": data_range.tolist(),
        "normalisation_mean": mean.tolist(),
        "normalisation_std": std.tolist(),
        "halo": halo,
        "n_train_patches": len(train_set),
        "n_val_patches": len(val_idx),
        "train_batches_per_epoch": math.ceil(n_train / int(batch_size)),
        "val_batches_per_epoch": math.ceil(len(val_idx) / int(batch_size)),
        "train_blocks": json.dumps(train_blocks),
        "val_blocks": json.dumps(val_blocks_),
        "transferred": ", ".join(transferred),
        "frozen": ", ".join(frozen),
    }
    if baseline is not None:
        for m in METRICS:
            attrs[f"bicubic_val_{m}"] = list(baseline[m])
    history = history_dataset(records, variables, units=units, attrs=attrs)

    card = {
        "name": f"{net.arch}-{'-'.join(variables)}-x{scale}",
        "arch": net.arch,
        "config": net.config,
        "scale": scale,
        "window": window,
        "time_radius": net.time_radius,
        "receptive_radius": net.receptive_radius,
        "variables": [
            {
                "name": v,
                "units": units[v],
                "long_name": str(ds[v].attrs.get("long_name", v)),
            }
            for v in variables
        ],
        "normalisation": {
            v: {"mean": float(m), "std": float(s)} for v, m, s in zip(variables, mean, std)
        },
        "degradation": {"method": degrade, "scale": scale},
        "training": {
            "data_attrs": _json_attrs(ds.attrs),
            "variable_attrs": {v: _json_attrs(ds[v].attrs) for v in variables},
            "dims": {"time": str(time_dim), "y": str(ydim), "x": str(xdim)},
            "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
            "frames": int(n_time),
            "train_blocks": [list(b) for b in train_blocks],
            "val_blocks": [list(b) for b in val_blocks_],
            "epochs": len(records),
            "max_epochs": int(epochs),
            "best_epoch": int(best["epoch"]),
            "stopped_early": bool(stopped_early),
            "seed": int(seed),
            "batch_size": int(batch_size),
            "patch_size": int(patch_size),
            "halo": halo,
            "patches_per_epoch": patches_per_epoch,
            "lr": float(lr),
            "lr_schedule": lr_schedule,
            "patience": patience,
            "loss": loss,
            "augment": bool(augment),
            "init_from": None if init_from is None else _describe(init_from),
            "transferred": transferred,
            "frozen": frozen,
            "layer_lr": dict(layer_lr or {}),
            "stage": stage,
            "keep_start": bool(keep_start),
        },
        "metrics": {
            "split": "validation",
            "data_range": {v: float(r) for v, r in zip(variables, data_range)},
            "best": {
                v: {m: float(best_record[f"val_{m}"][i]) for m in METRICS}
                for i, v in enumerate(variables)
            }
            if best_record is not None
            else {},
            "bicubic": {
                v: {m: float(baseline[m][i]) for m in METRICS} for i, v in enumerate(variables)
            }
            if baseline is not None
            else {},
        },
        "parameters": int(sum(p.numel() for p in net.parameters())),
    }
    net.card = _make_card(card, net)
    return net, history


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    card = getattr(source, "card", None)
    if card is not None and getattr(card, "name", None):
        return f"model {card.name}"
    return type(source).__name__


def _make_card(fields: dict[str, Any], net: torch.nn.Module):
    from xsr.models.card import ModelCard

    # sha256 is filled in when the model is written with xsr.models.files.save_model
    return ModelCard(sha256="", **fields)

"""The data stage of :func:`xsr.train.fit`: selection, degradation, patches, split, statistics.

Three steps, each a function:

:func:`select`
    The input as a Dataset, its dims, the variables (the model's channels), their periodicity
    (``periodic=``, or the data's own coordinates through :func:`xsr.coords.periodic_dims`),
    and infinite cells masked like NaN (with a warning naming the variable and the count).
:func:`make_patches`
    The low-resolution movie (:func:`xsr.degradation.degrade`, the operator of evaluation), the
    split of time into training and validation blocks, and the aligned patch sets. On a
    periodic axis the data are wrapped, never cut or reflected: the degradation sees the other
    side of the domain, and every patch's halo of context comes from across the seam, so patch
    cores (and the validation metrics) cover the whole domain. On a bounded axis the patches
    stay inside the data, so every target pixel has real context.
:func:`statistics`
    Per-variable mean and standard deviation of the training split and the data range of the
    validation split, in one lazy reduction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import xarray as xr

from xsr.coords import periodic_dims, spatial_dims
from xsr.train.config import FitConfig
from xsr.train.patches import PatchSet, split_time, stack_samples
from xsr.upscaling import NonFiniteWarning

__all__ = [
    "BICUBIC_RADIUS",
    "InfiniteValuesWarning",
    "Patches",
    "Selection",
    "Statistics",
    "degraded",
    "make_patches",
    "select",
    "statistics",
    "symmetry",
]

#: Low-resolution cells of real context that bicubic interpolation reads on each side. The
#: validation patches carry at least this much (when the data allow), so the bicubic baseline is
#: never scored on clamped patch edges.
BICUBIC_RADIUS = 2
#: Low-resolution cells of wrapped margin given to the antialiased bicubic degradation on a
#: periodic axis (its kernel reaches 2 coarse cells), cropped after.
_DEGRADE_MARGIN = 3


class InfiniteValuesWarning(NonFiniteWarning):
    """Training data hold +inf or -inf cells; :func:`~xsr.train.fit` masks them like NaN.

    A :class:`xsr.upscaling.NonFiniteWarning`, as ``upscale`` warns for the same cells (one filter
    silences both).
    """


@dataclass(frozen=True)
class Selection:
    """The data to learn from, and how to read it.

    Attributes
    ----------
    ds : xarray.Dataset
        The input as a Dataset (its attributes go into the model card).
    data : xarray.Dataset
        The selected variables, infinite cells replaced by NaN, chunked along time when read
        from a file without dask.
    variables : tuple of str
        The channels, in order.
    time_dim, ydim, xdim : hashable
        Dimension names.
    periodic : (bool, bool)
        Whether ``(y, x)`` wrap around.
    infinite : dict
        Per variable, the number of infinite cells (an int, or a lazy dask scalar computed with
        the statistics).
    """

    ds: xr.Dataset
    data: xr.Dataset
    variables: tuple[str, ...]
    time_dim: Hashable
    ydim: Hashable
    xdim: Hashable
    periodic: tuple[bool, bool]
    infinite: dict[str, Any]


def as_dataset(data: Any) -> xr.Dataset:
    """``data`` as a Dataset (a DataArray becomes its only variable)."""
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=data.name if data.name is not None else "data")
    if isinstance(data, xr.Dataset):
        return data
    raise TypeError(
        f"data must be an xarray Dataset or DataArray, got {type(data).__name__}; wrap arrays "
        "with xr.DataArray(values, dims=('time', 'y', 'x'))"
    )


def pick_variables(
    ds: xr.Dataset, variables: Sequence[str] | None, time_dim: Hashable, dims: tuple
) -> tuple[str, ...]:
    """The variables to learn: checked ones, or every variable on the time and spatial dims."""
    if variables is None:
        found = [str(v) for v, a in ds.data_vars.items() if {time_dim, *dims} <= set(a.dims)]
        if not found:
            raise ValueError(
                f"no data variable has dims ({time_dim!r}, {dims[0]!r}, {dims[1]!r}); pass "
                "variables= and check time_dim= / dims="
            )
        return tuple(found)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ValueError(
            f"variables {missing} are not in the data; it has {list(map(str, ds.data_vars))}"
        )
    for v in variables:
        lacking = [d for d in (time_dim, *dims) if d not in ds[v].dims]
        if lacking:
            raise ValueError(
                f"variable {v!r} lacks dims {lacking} (it has {ds[v].dims}); pass time_dim= / "
                "dims= naming its time and spatial dimensions"
            )
        dtype = ds[v].dtype
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise TypeError(f"variable {v!r} has dtype {dtype}; it must be real numeric")
    return tuple(variables)


def _mask_infinite(sub: xr.Dataset, variables: Sequence[str]) -> tuple[xr.Dataset, dict]:
    """Replace +-inf by NaN (so they are treated exactly as NaN); count them per variable."""
    counts: dict[str, Any] = {}
    for v in variables:
        arr = sub[v]
        if not np.issubdtype(arr.dtype, np.floating):
            continue
        if arr.chunks is None:  # in memory: look now, copy only when needed
            n = int(np.isinf(arr.values).sum())
            if n:
                sub[v] = arr.where(~np.isinf(arr))
                counts[v] = n
        else:  # lazy: mask lazily, count with the statistics
            counts[v] = np.isinf(arr.data).sum()
            sub[v] = arr.where(~np.isinf(arr))
    return sub, counts


def select(data: Any, cfg: FitConfig) -> Selection:
    """Check ``data`` against ``cfg`` and pick what to learn.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
    cfg : FitConfig

    Returns
    -------
    Selection

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> sel = select(random_movie(4, 8, 8), FitConfig(periodic="x"))
    >>> sel.variables, sel.ydim, sel.periodic
    (('h',), 'y', (False, True))
    """
    ds = as_dataset(data)
    ydim, xdim = spatial_dims(ds, cfg.dims)
    time_dim = cfg.time_dim
    if time_dim not in ds.dims:
        raise ValueError(
            f"time_dim={time_dim!r} is not a dimension of the data (dims: {list(ds.dims)})"
        )
    variables = pick_variables(ds, cfg.variables, time_dim, (ydim, xdim))
    if cfg.periodic is None:
        py, px = periodic_dims(ds, (ydim, xdim))
    else:
        py, px = "y" in cfg.periodic, "x" in cfg.periodic
    sub = ds[list(variables)]
    n_time = ds.sizes[time_dim]
    if any(sub[v].chunks is None and sub[v].encoding.get("source") for v in variables):
        # opened from a file without dask: chunk along time so that nothing loads it whole
        sub = sub.chunk({time_dim: min(n_time, 8)})
    sub, infinite = _mask_infinite(sub, variables)
    return Selection(ds, sub, variables, time_dim, ydim, xdim, (bool(py), bool(px)), infinite)


@dataclass(frozen=True)
class Patches:
    """Aligned patch sets and the split they come from.

    Attributes
    ----------
    train, val : PatchSet
        Training patches (half-overlapping grid) and validation patches (``val`` is ``None``
        without a validation split).
    val_idx : numpy.ndarray
        The validation patches scored every epoch (all, or an even subset with
        ``patches_per_epoch``).
    hr : xarray.Dataset
        The high-resolution targets on ``(_xsr_sample, time, y, x)``, unpadded.
    train_blocks, val_blocks : list of (int, int)
        Time blocks of each split.
    halo, val_halo : int
        Low-resolution context of training and of validation patches (``val_halo >= halo``;
        the model sees ``halo`` of it, the bicubic baseline all of it). On a periodic axis a
        patch set's data are padded by its context, wrapping around.
    """

    train: PatchSet
    val: PatchSet | None
    val_idx: np.ndarray
    hr: xr.Dataset
    train_blocks: list[tuple[int, int]]
    val_blocks: list[tuple[int, int]]
    halo: int
    val_halo: int


def _check_sizes(sel: Selection, cfg: FitConfig, scale: int, halo: int) -> None:
    for dim, wraps in zip((sel.ydim, sel.xdim), sel.periodic):
        n = sel.data.sizes[dim]
        if wraps and n % scale:
            raise ValueError(
                f"dimension {dim!r} is periodic but its size {n} is not a multiple of "
                f"scale={scale}, so its coarse grid cannot wrap; crop or regrid it to a multiple "
                f"of {scale}, or pass periodic=False to train on it as a bounded domain"
            )
        need = scale * (cfg.patch_size + (0 if wraps else 2 * halo))
        if n < need:
            halo_text = "" if wraps else f" with halo={halo}"
            raise ValueError(
                f"patch_size={cfg.patch_size}{halo_text} at scale={scale} needs {need} cells "
                f"along {dim!r}, the data has {n}; use a smaller patch_size, a smaller halo= "
                "(default: the model's receptive radius) or larger data"
            )


def degraded(sel: Selection, cfg: FitConfig, scale: int) -> xr.Dataset:
    """The low-resolution movie; on a periodic axis a bicubic kernel reads across the seam.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> cfg = FitConfig(periodic=False)
    >>> dict(degraded(select(random_movie(2, 8, 8), cfg), cfg, 2).sizes)
    {'time': 2, 'y': 4, 'x': 4}
    """
    from xsr.degradation import degrade

    dims = (sel.ydim, sel.xdim)
    wrap = {d: _DEGRADE_MARGIN * scale for d, p in zip(dims, sel.periodic) if p}
    if cfg.degrade == "coarsen" or not wrap:  # block means never cross a block edge
        return degrade(sel.data, scale=scale, method=cfg.degrade, dims=dims, boundary="trim")
    plain = sel.data.drop_vars([c for c in sel.data.coords if set(sel.data[c].dims) & set(dims)])
    low = degrade(
        plain.pad(wrap, mode="wrap"), scale=scale, method=cfg.degrade, dims=dims, boundary="trim"
    )
    return low.isel({d: slice(_DEGRADE_MARGIN, -_DEGRADE_MARGIN) for d in wrap})


def _wrapped(stacked: xr.Dataset, sel: Selection, cells: int) -> xr.Dataset:
    """``stacked`` padded by ``cells`` on each side of its periodic axes, wrapping around."""
    pads = {d: (cells, cells) for d, p in zip((sel.ydim, sel.xdim), sel.periodic) if p}
    if not pads or cells == 0:
        return stacked
    plain = stacked.drop_vars([c for c in stacked.coords if set(stacked[c].dims) & set(pads)])
    return plain.pad(pads, mode="wrap")


def make_patches(sel: Selection, cfg: FitConfig, *, scale: int, window: int, halo: int) -> Patches:
    """Degrade, split time and lay the training and validation patches.

    Parameters
    ----------
    sel : Selection
    cfg : FitConfig
    scale, window, halo : int
        The model's factor and frames per sample, and the low-resolution context per patch.

    Returns
    -------
    Patches

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> cfg = FitConfig(patch_size=4, periodic=False)
    >>> p = make_patches(select(random_movie(10, 16, 16), cfg), cfg, scale=2, window=1, halo=1)
    >>> p.train_blocks, p.val_blocks, len(p.train) > 0, p.val_halo
    ([(0, 8)], [(8, 10)], True, 2)
    """
    n_time = sel.data.sizes[sel.time_dim]
    train_blocks, val_blocks = split_time(
        n_time, window=window, val_fraction=cfg.val_fraction, val_blocks=cfg.val_blocks
    )
    _check_sizes(sel, cfg, scale, halo)
    dims = (sel.ydim, sel.xdim)
    lowres = degraded(sel, cfg, scale)
    hires = sel.data.isel({d: slice(0, scale * lowres.sizes[d]) for d in dims})
    hr_s = stack_samples(hires, sel.variables, sel.time_dim, dims)
    lr_s = stack_samples(lowres, sel.variables, sel.time_dim, dims)
    # the bicubic baseline reads BICUBIC_RADIUS cells around each core: give validation patches
    # that much real context where a bounded axis has room for it
    spare = [lowres.sizes[d] - cfg.patch_size for d, p in zip(dims, sel.periodic) if not p]
    val_halo = max(halo, min(BICUBIC_RADIUS, min(spare) // 2 if spare else BICUBIC_RADIUS))
    common = {
        "variables": sel.variables,
        "scale": scale,
        "window": window,
        "patch_size": cfg.patch_size,
        "time_dim": sel.time_dim,
        "dims": dims,
    }

    def patch_set(blocks: list, context: int, **kw: Any) -> PatchSet:
        hr, lr = _wrapped(hr_s, sel, scale * context), _wrapped(lr_s, sel, context)
        return PatchSet(hr, lr, blocks=blocks, halo=context, **common, **kw)

    train = patch_set(train_blocks, halo, stride=max(1, cfg.patch_size // 2))
    val = patch_set(val_blocks, val_halo) if val_blocks else None
    if len(train) == 0:
        raise ValueError("no training patch fits the data; use a smaller patch_size")
    val_idx = np.arange(len(val)) if val is not None else np.arange(0)
    if cfg.patches_per_epoch is not None and val is not None:
        share = cfg.val_fraction / (1 - cfg.val_fraction)
        cap = max(cfg.batch_size, math.ceil(cfg.patches_per_epoch * share))
        if len(val_idx) > cap:
            val_idx = np.unique(np.linspace(0, len(val) - 1, cap).round().astype(int))
    return Patches(train, val, val_idx, hr_s, train_blocks, val_blocks, halo, val_halo)


@dataclass(frozen=True)
class Statistics:
    """Normalisation and PSNR range per variable (float64 arrays, physical units).

    Attributes
    ----------
    mean, std : numpy.ndarray
        Of the training split, NaN (and masked infinite) cells left out.
    data_range : numpy.ndarray
        ``max - min`` of the validation split (of the training split without one), or
        ``4 * std`` where that is not positive.
    """

    mean: np.ndarray
    std: np.ndarray
    data_range: np.ndarray


def statistics(sel: Selection, patches: Patches) -> Statistics:
    """Compute :class:`Statistics` in one lazy reduction; warn about masked infinite cells.

    Parameters
    ----------
    sel : Selection
    patches : Patches

    Returns
    -------
    Statistics

    Raises
    ------
    ValueError
        A variable with no finite value, or a constant one, in the training split.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> cfg = FitConfig(patch_size=4)
    >>> sel = select(random_movie(10, 16, 16), cfg)
    >>> stats = statistics(sel, make_patches(sel, cfg, scale=2, window=1, halo=1))
    >>> bool(stats.std[0] > 0)
    True
    """
    hr_s, tdim = patches.hr, sel.time_dim
    train_hr = xr.concat([hr_s.isel({tdim: slice(a, b)}) for a, b in patches.train_blocks], tdim)
    range_hr = (
        xr.concat([hr_s.isel({tdim: slice(a, b)}) for a, b in patches.val_blocks], tdim)
        if patches.val_blocks
        else train_hr
    )
    stats, infinite = dask.compute(
        [
            (train_hr[v].mean(), train_hr[v].std(), range_hr[v].min(), range_hr[v].max())
            for v in sel.variables
        ],
        sel.infinite,
    )
    for v, n in infinite.items():
        if int(n):
            warnings.warn(
                f"variable {v!r} has {int(n)} infinite cell(s) (+inf or -inf); fit masks them "
                "like NaN (left out of the loss, the statistics and the metrics, 0 in the "
                "normalised inputs). Replace them with NaN yourself to silence this "
                "(data.where(np.isfinite(data))), or correct them if they are errors",
                InfiniteValuesWarning,
                stacklevel=4,
            )
    mean = np.array([float(s[0]) for s in stats])
    std = np.array([float(s[1]) for s in stats])
    data_range = np.array([float(s[3]) - float(s[2]) for s in stats])
    for v, m, sd in zip(sel.variables, mean, std):
        if not np.isfinite(m):
            also = " (after masking its infinite cells)" if int(infinite.get(v, 0)) else ""
            raise ValueError(
                f"variable {v!r} is entirely NaN in the training split{also}; it cannot be "
                "learned: select variables, a region or a time range with data"
            )
        if not sd > 0:
            raise ValueError(
                f"variable {v!r} is constant in the training split (std 0); nothing to learn"
            )
    data_range = np.where(np.isfinite(data_range) & (data_range > 0), data_range, 4 * std)
    return Statistics(mean, std, data_range)


def symmetry(sel: Selection) -> tuple[Any, bool]:
    """The variables' symmetry under flips and turns, and whether y ascends (for augmentation).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> sym, ascending = symmetry(select(random_movie(2, 8, 8), FitConfig()))
    >>> ascending
    True
    """
    from xsr.train.augment import variable_symmetry

    ds = sel.ds
    standard_names = [ds[v].attrs.get("standard_name") for v in sel.variables]
    ycoord = ds[sel.ydim].values if sel.ydim in ds.coords else None
    descending = (
        ycoord is not None
        and ycoord.ndim == 1
        and len(ycoord) > 1
        and np.issubdtype(ycoord.dtype, np.number)
        and ycoord[1] < ycoord[0]
    )
    return variable_symmetry(list(sel.variables), standard_names), not descending

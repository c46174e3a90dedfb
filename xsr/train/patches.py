"""Aligned low/high-resolution training patches, streamed from (dask-backed) xarray data.

The high-resolution (HR) movie is degraded lazily with the same operator as evaluation
(:func:`xsr.degradation.degrade`). :class:`xbatcher.BatchSchema` (the patch grid behind
``xbatcher.BatchGenerator``) lays ``(time=window, y=p+2*halo, x=p+2*halo)`` patches over the
low-resolution (LR) movie; each patch is sliced from the LR variables, and the HR target is the
centre frame of the window over the patch's core, at the fine location
``[scale*(i0+halo), scale*(i0+halo+p))``. The halo gives the model real context on every side
(as the engine does at inference), so the loss never sees the model's zero padding. Patches are
loaded a batch at a time (one dask compute per batch), so the archive is never read whole.

Time is split into contiguous blocks: the last ``val_fraction`` of the frames (optionally spread
over several blocks) is validation, the rest training, and no window crosses a split.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import dask
import numpy as np
import xarray as xr

__all__ = ["Batch", "PatchSet", "split_time", "stack_samples"]

SAMPLE_DIM = "_xsr_sample"


def split_time(
    n_time: int, *, window: int = 1, val_fraction: float = 0.2, val_blocks: int = 1
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split ``range(n_time)`` into contiguous training and validation blocks.

    Parameters
    ----------
    n_time : int
        Number of frames.
    window : int, default 1
        Frames per sample; every block must hold at least one window.
    val_fraction : float, default 0.2
        Fraction of the frames held out for validation (0 for none).
    val_blocks : int, default 1
        Number of validation blocks. One block is the last frames; ``k`` blocks are the ends of
        ``k`` equal parts of the record (validation spread over the record, e.g. seasons).

    Returns
    -------
    (list of (int, int), list of (int, int))
        Training and validation ``(start, stop)`` blocks. Training blocks shorter than
        ``window`` are dropped.

    Raises
    ------
    ValueError
        Too few frames for one training and one validation window, or bad fractions.

    Examples
    --------
    >>> split_time(10, window=1, val_fraction=0.2)
    ([(0, 8)], [(8, 10)])
    >>> split_time(20, window=3, val_fraction=0.3, val_blocks=2)
    ([(0, 7), (10, 17)], [(7, 10), (17, 20)])
    """
    n_time, window, val_blocks = int(n_time), int(window), int(val_blocks)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_blocks < 1:
        raise ValueError(f"val_blocks must be a positive integer, got {val_blocks}")
    if n_time < window:
        raise ValueError(
            f"the data has {n_time} frames, fewer than the model's window of {window}; "
            "give a longer record or a 2D model (window 1)"
        )
    if val_fraction == 0:
        return [(0, n_time)], []
    n_val = max(round(val_fraction * n_time), window * val_blocks)
    sizes = [n_val // val_blocks + (1 if b < n_val % val_blocks else 0) for b in range(val_blocks)]
    bounds = np.linspace(0, n_time, val_blocks + 1).round().astype(int)
    val = [(int(hi) - s, int(hi)) for hi, s in zip(bounds[1:], sizes)]
    train = []
    start = 0
    for a, b in val:
        if a < start:
            raise ValueError(
                f"{n_time} frames cannot hold {val_blocks} validation blocks of {window}+ frames "
                f"(val_fraction={val_fraction}); use fewer val_blocks or a smaller val_fraction"
            )
        if a - start >= window:
            train.append((start, a))
        start = b
    if not train:
        raise ValueError(
            f"{n_time} frames leave no training block of {window} frames after holding out "
            f"val_fraction={val_fraction} in {val_blocks} block(s); use more frames, a smaller "
            "val_fraction or fewer val_blocks"
        )
    return train, val


@dataclass
class Batch:
    """One loaded batch of aligned patches (numpy, physical units).

    Attributes
    ----------
    lr : numpy.ndarray
        ``(N, C, T, p+2*halo, p+2*halo)`` low-resolution windows (``T = window``).
    hr : numpy.ndarray
        ``(N, C, scale*p, scale*p)`` high-resolution centre frames over the patch cores.
    positions : numpy.ndarray
        ``(N, 3)`` integer LR ``(t0, i0, j0)`` of each window's first frame and of the core's
        corner (the LR input starts ``halo`` cells before it).
    """

    lr: np.ndarray
    hr: np.ndarray
    positions: np.ndarray


class PatchSet:
    """Aligned LR/HR patches over some time blocks, on the grid of :class:`xbatcher.BatchSchema`.

    Parameters
    ----------
    hr, lr : xarray.Dataset
        High- and low-resolution data with dims ``(_xsr_sample, time, y, x)`` (see
        :func:`stack_samples`); ``lr`` spatial sizes times ``scale`` must not exceed ``hr``'s.
    variables : sequence of str
        Channels, in order.
    scale, window, patch_size : int
        Upscaling factor, frames per sample and LR patch side.
    blocks : sequence of (int, int)
        Time blocks ``(start, stop)`` to cut patches from (no patch crosses a block edge).
    stride : int, optional
        Spatial step between patch corners in LR pixels (default ``patch_size``: cores do not
        overlap).
    halo : int, default 0
        LR context cells around each core (the model's receptive radius).
    time_dim : str
        Name of the time dimension.
    dims : (str, str)
        ``(y_dim, x_dim)``.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> hr = stack_samples(random_movie(6, 16, 16), ["h"], "time", ("y", "x"))
    >>> lr = hr.coarsen(y=2, x=2).mean()
    >>> ps = PatchSet(hr, lr, variables=["h"], scale=2, window=3, patch_size=4,
    ...               blocks=[(0, 6)], time_dim="time", dims=("y", "x"))
    >>> len(ps), ps.load([0]).hr.shape
    (16, (1, 1, 8, 8))
    >>> ps = PatchSet(hr, lr, variables=["h"], scale=2, window=1, patch_size=4, halo=2,
    ...               blocks=[(0, 6)], time_dim="time", dims=("y", "x"))
    >>> b = ps.load([0])
    >>> b.lr.shape, b.hr.shape, b.positions[0].tolist()
    ((1, 1, 1, 8, 8), (1, 1, 8, 8), [0, 2, 2])
    """

    def __init__(
        self,
        hr: xr.Dataset,
        lr: xr.Dataset,
        *,
        variables: Sequence[str],
        scale: int,
        window: int,
        patch_size: int,
        blocks: Sequence[tuple[int, int]],
        time_dim: Hashable = "time",
        dims: tuple[Hashable, Hashable] = ("y", "x"),
        stride: int | None = None,
        halo: int = 0,
    ) -> None:
        from xbatcher import BatchSchema

        self.variables = list(variables)
        self.scale, self.window, self.patch_size = int(scale), int(window), int(patch_size)
        self.time_dim, self.dims = time_dim, tuple(dims)
        self.radius = self.window // 2
        stride = int(stride or patch_size)
        self.halo = int(halo)
        ydim, xdim = self.dims
        p = self.patch_size + 2 * self.halo
        for dim in (ydim, xdim):
            if lr.sizes[dim] < p:
                raise ValueError(
                    f"patch_size={self.patch_size} with halo={self.halo} needs {p} "
                    f"low-resolution cells along {dim!r}, the data has {lr.sizes[dim]} "
                    f"({hr.sizes[dim]} / scale {scale}); use a smaller patch_size or halo, or "
                    "larger data"
                )
        order = (SAMPLE_DIM, time_dim, ydim, xdim)
        # xarray Variables: slicing them is cheap and stays lazy (dask, or a lazily indexed
        # backend array that reads only the slice)
        self._lr = [lr[v].transpose(*order).variable for v in self.variables]
        self._hr = [hr[v].transpose(*order).variable for v in self.variables]
        starts = []
        for a, b in blocks:
            if b - a < self.window:
                continue
            schema = BatchSchema(
                lr[self.variables].isel({time_dim: slice(a, b)}),
                input_dims={time_dim: self.window, ydim: p, xdim: p},
                input_overlap={time_dim: self.window - 1, ydim: p - stride, xdim: p - stride},
                concat_input_bins=False,
                preload_batch=False,
            )
            starts.extend(
                (a + sel[time_dim].start, sel[ydim].start, sel[xdim].start)
                for (sel,) in schema.selectors.values()
            )
        #: ``(n_patches, 3)`` LR ``(t0, i0, j0)`` of each haloed patch's first frame and corner
        self.starts = np.asarray(starts, dtype=np.int64).reshape(-1, 3)
        self.samples = lr.sizes[SAMPLE_DIM]

    def __len__(self) -> int:
        """Number of patches (each holds ``samples`` stacked extra-dimension samples)."""
        return len(self.starts)

    def load(self, indices: Sequence[int]) -> Batch:
        """Load the patches ``indices`` with one dask compute.

        Parameters
        ----------
        indices : sequence of int
            Positions in ``range(len(self))``.

        Returns
        -------
        Batch
        """
        s, p, r, h = self.scale, self.patch_size, self.radius, self.halo
        q = p + 2 * h
        lr_parts, hr_parts, positions = [], [], []
        for k in indices:
            t0, i0, j0 = (int(v) for v in self.starts[int(k)])
            lr_parts.append(
                [var[:, t0 : t0 + self.window, i0 : i0 + q, j0 : j0 + q].data for var in self._lr]
            )
            i0, j0 = i0 + h, j0 + h
            hr_parts.append(
                [
                    var[:, t0 + r, s * i0 : s * (i0 + p), s * j0 : s * (j0 + p)].data
                    for var in self._hr
                ]
            )
            positions.extend([(t0, i0, j0)] * self.samples)
        lr_parts, hr_parts = dask.compute(lr_parts, hr_parts)
        # (patch, var, sample, T, q, q) -> (patch * sample, var, T, q, q)
        lr = np.stack([np.stack(v, axis=0) for v in lr_parts]).swapaxes(1, 2)
        hr = np.stack([np.stack(v, axis=0) for v in hr_parts]).swapaxes(1, 2)
        lr = lr.reshape((-1, *lr.shape[2:]))
        hr = hr.reshape((-1, *hr.shape[2:]))
        return Batch(lr=lr, hr=hr, positions=np.asarray(positions, dtype=np.int64).reshape(-1, 3))


def stack_samples(
    ds: xr.Dataset,
    variables: Sequence[str],
    time_dim: Hashable,
    dims: tuple[Hashable, Hashable],
) -> xr.Dataset:
    """Put the variables on dims ``(_xsr_sample, time, y, x)``, stacking any extra dims.

    Extra dimensions (level, member, ...) become independent samples. Lazy on dask data.

    Parameters
    ----------
    ds : xarray.Dataset
    variables : sequence of str
    time_dim : str
    dims : (str, str)
        ``(y_dim, x_dim)``.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> stack_samples(random_movie(3, 4, 4), ["h"], "time", ("y", "x"))["h"].dims
    ('_xsr_sample', 'time', 'y', 'x')
    """
    arrays = xr.broadcast(*[ds[v] for v in variables])
    sub = xr.Dataset(dict(zip(variables, arrays)), attrs=ds.attrs)
    core = (time_dim, *dims)
    extra = [d for d in sub.dims if d not in core]
    if extra:
        sub = sub.stack({SAMPLE_DIM: extra}, create_index=False)
    else:
        sub = sub.expand_dims(SAMPLE_DIM)
    return sub.transpose(SAMPLE_DIM, *core)

"""The array layer: the engine over numpy and dask arrays, with halos.

:func:`upscale_array` takes ``(*batch, C, T, H, W)`` low-resolution data (numpy or dask) and a
:class:`xsr.engine.ModelRef`, and returns ``(*batch, C, T, scale*H, scale*W)`` of the same kind.

Halos come from the model: ``time_radius`` frames along ``T`` and twice the
``receptive_radius`` low-resolution pixels along ``H`` and ``W`` (the model's reach, plus that of
the fill of masked cells it reads). On dask input, :func:`dask.array.map_overlap` (with
``trim=False``) hands each block its halos and the block function crops them after inference; on
numpy input the whole array is padded with the same boundary rule and the same block function
runs once. So a chunked result equals the eager one for every chunking.

Boundary rules at the ends of an axis:

- time: ``"reflect"`` (default; mirror including the end frame, ``c b a | a b c``, numpy's
  ``symmetric`` and dask's ``reflect``), ``"nearest"`` (repeat the end frame) or ``"periodic"``
  (a cyclic series, e.g. a climatology);
- space: ``"reflect"`` (default) or periodic (wrap), per axis; global longitudes use periodic.

Chunks smaller than the halo are merged (with a :class:`HaloChunkWarning`); an axis shorter than
its halo is padded first and kept in one chunk.

This module imports numpy, dask.array and :mod:`xsr.engine` only (never xarray). It calls the
engine's :func:`~xsr.engine.infer` on each block (and :func:`~xsr.engine.prepare_run` where it
builds a graph); the engine's thread and runtime policy stays inside the engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from xsr.engine import ModelRef, infer, prepare_run
from xsr.engine.normalisation import frame_statistics

__all__ = ["HaloChunkWarning", "block_function", "halo_depths", "upscale_array"]

_NUMPY_MODES = {"reflect": "symmetric", "nearest": "edge", "periodic": "wrap"}
_TIME_BOUNDARIES = tuple(_NUMPY_MODES)


class HaloChunkWarning(UserWarning):
    """Chunks smaller than the model's halo were merged before inference."""


def halo_depths(model_ref: ModelRef) -> tuple[int, int, int]:
    """Halo depth ``(time, y, x)`` of a model, in low-resolution frames and pixels.

    Parameters
    ----------
    model_ref : xsr.engine.ModelRef
        The model.

    Returns
    -------
    tuple of int
        ``(time_radius, 2 * receptive_radius, 2 * receptive_radius)``: the model reads
        ``receptive_radius`` cells around each output cell, and the fill of masked cells among
        them reads ``receptive_radius`` more.

    Examples
    --------
    >>> from xsr.engine import ModelRef
    >>> from xsr.models import get_model
    >>> halo_depths(ModelRef.from_model(get_model("bicubic", scale=2, channels=1)))[0]
    0
    """
    # twice the receptive radius in space: masked (NaN) cells that the model reads are filled
    # from the valid cells within one more receptive radius (xsr.engine.extend_into_mask)
    r = 2 * int(model_ref.receptive_radius)
    return int(model_ref.time_radius), r, r


def block_function(
    block: np.ndarray,
    frame_mean: np.ndarray | None = None,
    frame_std: np.ndarray | None = None,
    *,
    model_ref: ModelRef,
    normalisation: str | None = None,
    conserve: bool = False,
    device: str = "auto",
    batch_size: int | str = "auto",
    tile: Any = None,
    precision: str = "float32",
) -> np.ndarray:
    """Upscale one block that carries its halos, and crop them.

    Parameters
    ----------
    block : numpy.ndarray
        ``(*batch, C, T + 2*tr, H + 2*r, W + 2*r)`` low-resolution data with halos
        (:func:`halo_depths`).
    frame_mean, frame_std : numpy.ndarray, optional
        ``(*batch, C, T + 2*tr, 1, 1)``: each frame's mean and standard deviation over the
        whole frame (not only this block), halo frames included; ``None`` takes them from the
        block itself.
    model_ref : xsr.engine.ModelRef
        The model (rebuilt once per process by :func:`xsr.engine.get_model_cached`).
    normalisation : None or "frame"
        ``"frame"`` normalises every frame by its statistics (a field model); ``None`` uses
        the model's card.
    conserve, device, batch_size, tile, precision
        Passed to :func:`xsr.engine.infer`.

    Returns
    -------
    numpy.ndarray
        ``(*batch, C, T, scale*H, scale*W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xsr.engine import ModelRef
    >>> from xsr.models import get_model
    >>> ref = ModelRef.from_model(get_model("bicubic", scale=2, channels=1))
    >>> r = halo_depths(ref)[1]
    >>> block_function(np.zeros((1, 2, 8 + 2 * r, 8 + 2 * r)), model_ref=ref).shape
    (1, 2, 16, 16)
    """
    tr, ry, rx = halo_depths(model_ref)
    s = int(model_ref.scale)
    lead = block.shape[:-4]
    c, t, h, w = block.shape[-4:]
    flat = block.reshape((-1, c, t, h, w))
    frame_stats = None
    if frame_mean is not None and frame_std is not None:
        frame_stats = (frame_mean.reshape((-1, c, t)), frame_std.reshape((-1, c, t)))
    out = infer(
        model_ref,
        flat,
        normalisation=normalisation,
        frame_stats=frame_stats,
        conserve=conserve,
        device=device,
        batch_size=batch_size,
        tile=tile,
        margin=(ry, rx),
        precision=precision,
    )
    return out.reshape((*lead, c, t - 2 * tr, s * (h - 2 * ry), s * (w - 2 * rx)))


def _boundaries(time_boundary: str, periodic: Sequence[bool]) -> tuple[str, str, str]:
    if time_boundary not in _TIME_BOUNDARIES:
        raise ValueError(f"time_boundary must be one of {_TIME_BOUNDARIES}, got {time_boundary!r}.")
    if len(periodic) != 2:
        raise ValueError(f"periodic must be a (y, x) pair of booleans, got {periodic!r}.")
    space = tuple("periodic" if bool(p) else "reflect" for p in periodic)
    return time_boundary, space[0], space[1]


def _pad_axis(x: np.ndarray, axis: int, depth: int, mode: str) -> np.ndarray:
    """Pad one axis of a numpy array by ``depth`` on both sides with a boundary rule."""
    if not depth:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (depth, depth)
    return np.pad(x, widths, mode=_NUMPY_MODES[mode])


def _lazy_frame_statistics(arr: da.Array) -> list[da.Array]:
    """Mean and standard deviation of every frame as dask arrays ``(..., T, 1, 1)``.

    Whole-frame reductions (two passes, float64, NaN cells left out), chunked like ``arr``
    along the leading and time axes: each output block waits only for its own frames.
    """
    x = arr.astype("float64")
    valid = ~da.isnan(x)
    n = valid.sum(axis=(-2, -1), keepdims=True)
    # an all-NaN frame has no cells: NaN statistics without a 0/0 RuntimeWarning when the
    # tasks run (np.errstate here would only cover building the graph)
    n = da.where(n > 0, n, np.nan)
    mean = da.where(valid, x, 0.0).sum(axis=(-2, -1), keepdims=True) / n
    dev = da.where(valid, x - mean, 0.0)
    std = da.sqrt((dev * dev).sum(axis=(-2, -1), keepdims=True) / n)
    return [mean, std]


def _merge_small(chunks: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """Merge neighbouring chunks until each is at least ``depth`` long."""
    out: list[int] = []
    for c in chunks:
        if out and out[-1] < depth:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < depth:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def upscale_array(
    arr: np.ndarray | da.Array,
    model_ref: ModelRef,
    *,
    normalisation: str | None = None,
    conserve: bool = False,
    time_boundary: str = "reflect",
    periodic: Sequence[bool] = (False, False),
    device: str = "auto",
    batch_size: int | str = "auto",
    tile: Any = None,
    precision: str = "float32",
) -> np.ndarray | da.Array:
    """Super-resolve ``(*batch, C, T, H, W)`` data with halos, eagerly or lazily.

    Parameters
    ----------
    arr : numpy.ndarray or dask.array.Array
        Low-resolution data, channels in the model's variable order. Integer data is cast to
        float32.
    model_ref : xsr.engine.ModelRef
        The model.
    normalisation : None or "frame"
        ``"frame"`` (field models) normalises each frame by the mean and standard deviation of
        its finite cells and de-normalises the output by them, so that
        ``f(a * x + b) == a * f(x) + b`` for ``a > 0``; ``None`` uses the model card's
        statistics. Either way NaN cells are filled with their frame's mean before the forward.
        The statistics are whole-frame reductions (lazy on dask, aligned with the batch and
        time chunks), so the result does not depend on the spatial chunking either.
    conserve : bool
        Make each output frame's block mean equal its input frame (see
        :func:`xsr.engine.infer`).
    time_boundary : {"reflect", "nearest", "periodic"}
        Rule for the frames beyond the ends of the time axis.
    periodic : (bool, bool)
        Whether the ``(y, x)`` axes wrap around (else they are reflected).
    device, batch_size, tile, precision
        Passed to :func:`xsr.engine.infer`.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        ``(*batch, C, T, scale*H, scale*W)``, of the same kind as ``arr`` (dask stays lazy, with
        the input's chunks along batch and time and ``scale`` times them in space).

    Raises
    ------
    ValueError
        For a wrong rank, channel count or option.

    Warns
    -----
    HaloChunkWarning
        When chunks smaller than the halo had to be merged.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from xsr.engine import ModelRef
    >>> from xsr.models import get_model
    >>> ref = ModelRef.from_model(get_model("bicubic", scale=2, channels=1))
    >>> x = np.random.default_rng(0).random((1, 4, 8, 8), dtype="float32")
    >>> upscale_array(x, ref).shape
    (1, 4, 16, 16)
    >>> lazy = upscale_array(da.from_array(x, chunks=(1, 2, 8, 8)), ref)
    >>> lazy.chunks[1], lazy.chunks[2]
    ((2, 2), (16,))
    >>> bool(np.allclose(lazy.compute(), upscale_array(x, ref), atol=1e-6))
    True
    """
    if not isinstance(model_ref, ModelRef):
        raise TypeError(
            f"model_ref must be an xsr.engine.ModelRef, got {type(model_ref).__name__}; wrap a "
            "model with ModelRef.from_model(model)."
        )
    if arr.ndim < 4:
        raise ValueError(
            f"arr must be (*batch, C, T, H, W), got shape {arr.shape}; add the missing channel "
            "or time axis (length 1) with expand_dims."
        )
    c = arr.shape[-4]
    if c != model_ref.channels:
        raise ValueError(
            f"arr has {c} channel(s) on axis -4 but the model takes {model_ref.channels}."
        )
    if arr.shape[-3] < 1:
        raise ValueError("arr has no time steps.")
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.float16:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"arr must be real numeric, got dtype {arr.dtype}.")
        arr = arr.astype("float32")
    if normalisation not in (None, "frame"):
        raise ValueError(f"normalisation must be None or 'frame', got {normalisation!r}.")
    prepare_run(batch_size=batch_size, tile=tile, precision=precision)
    modes = _boundaries(time_boundary, periodic)
    depths = halo_depths(model_ref)
    s = int(model_ref.scale)
    nd = arr.ndim
    axes = (nd - 3, nd - 2, nd - 1)
    fn_kwargs = {
        "model_ref": model_ref,
        "normalisation": normalisation,
        "conserve": bool(conserve),
        "device": device,
        "batch_size": batch_size,
        "tile": tile,
        "precision": precision,
    }

    if not isinstance(arr, da.Array):
        padded = np.asarray(arr)
        mean, std = (v[..., None, None] for v in frame_statistics(padded))
        for ax, d, mode in zip(axes, depths, modes):
            padded = _pad_axis(padded, ax, d, mode)
        mean = _pad_axis(mean, nd - 3, depths[0], modes[0])
        std = _pad_axis(std, nd - 3, depths[0], modes[0])
        return block_function(padded, mean, std, **fn_kwargs)

    x = arr
    stats = _lazy_frame_statistics(arr)
    new_chunks = list(x.chunks)
    new_chunks[nd - 4] = (c,)
    overlap_depth: dict[int, int] = {}
    boundary: dict[int, str] = {}
    merged = []
    for ax, d, mode in zip(axes, depths, modes):
        size = x.shape[ax]
        if d > size:
            # Halo longer than the axis: pad the whole axis now, keep it in one chunk.
            if len(x.chunks[ax]) > 1:
                merged.append(ax)
            x = x.rechunk({ax: -1})
            padded_chunks = list(x.chunks)
            padded_chunks[ax] = (size + 2 * d,)
            x = x.map_blocks(
                _pad_axis, ax, d, mode, chunks=tuple(padded_chunks), dtype=x.dtype, meta=x._meta
            )
            if ax == nd - 3:  # the frames' statistics follow the padded frames
                stats = [
                    v.rechunk({ax: -1}).map_blocks(
                        _pad_axis, ax, d, mode, chunks=(*padded_chunks[:-2], (1,), (1,)),
                        dtype=v.dtype, meta=v._meta,
                    )
                    for v in stats
                ]  # fmt: skip
            new_chunks[ax] = (size + 2 * d,)
            overlap_depth[ax], boundary[ax] = 0, "none"
            continue
        if d and min(x.chunks[ax]) < d:
            new_chunks[ax] = _merge_small(x.chunks[ax], d)
            merged.append(ax)
        overlap_depth[ax], boundary[ax] = d, mode if d else "none"
    if merged:
        names = {nd - 3: "time", nd - 2: "y", nd - 1: "x"}
        warnings.warn(
            "Chunks smaller than the model's halo (time "
            f"{depths[0]}, space {depths[1]} low-resolution cells) along "
            f"{[names[a] for a in merged]} were merged: new chunks "
            f"{ {names[a]: new_chunks[a] for a in merged} }. Choose larger chunks to avoid this.",
            HaloChunkWarning,
            stacklevel=2,
        )
    x = x.rechunk(tuple(new_chunks))
    for ax in range(nd - 3):
        overlap_depth[ax], boundary[ax] = 0, "none"
    # statistics share the data's batch and time chunks and halo frames; one cell in space
    stats = [v.rechunk((*x.chunks[:-2], (1,), (1,))) for v in stats]
    stat_depth = {ax: overlap_depth[ax] if ax == nd - 3 else 0 for ax in range(nd)}
    stat_boundary = {ax: boundary[ax] if ax == nd - 3 else "none" for ax in range(nd)}

    out_chunks = list(x.chunks)
    out_chunks[nd - 4] = (c,)
    for ax, d in zip(axes, depths):
        ch = x.chunks[ax]
        if overlap_depth[ax] == 0 and d:
            ch = (ch[0] - 2 * d,)
        out_chunks[ax] = ch if ax == nd - 3 else tuple(s * v for v in ch)
    # The reference travels as one graph key that every task depends on (sent once to each
    # worker), not as a copy of the weights inside every task.
    fn_kwargs["model_ref"] = dask.delayed(model_ref, pure=True, traverse=False)
    return da.map_overlap(
        block_function,
        x,
        *stats,
        depth=[overlap_depth, stat_depth, stat_depth],
        boundary=[boundary, stat_boundary, stat_boundary],
        trim=False,
        chunks=tuple(out_chunks),
        dtype=x.dtype,
        meta=np.empty((0,) * nd, dtype=x.dtype),
        **fn_kwargs,
    )

"""Batch and tile planning, and the validation of the engine's options.

On a CPU the engine runs cache-sized tiles in small batches: automatic tiles hold about
:data:`TILE_FINE_PIXELS` fine pixels a side (and at least :data:`HALO_TILE_FACTOR` receptive
radii, so a tile's halo adds at most about 13 % to its work) and automatic batches about
:data:`FINE_PIXELS_PER_FORWARD` fine pixels (times the window), where oneDNN keeps the working
set in cache. A GPU wants the opposite: whole frames in large batches. Both are capped by a
memory budget of activations. The measurements behind these numbers are in docs/benchmarks.md.

This module imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "FINE_PIXELS_PER_FORWARD",
    "HALO_TILE_FACTOR",
    "MEMORY_BUDGET_BYTES",
    "PRECISIONS",
    "TILE_FINE_PIXELS",
    "batch_bounds",
    "check_options",
    "margin_pair",
    "plan",
]

#: Activation memory an automatic batch (and, when one frame alone is too big, a tile) aims at.
MEMORY_BUDGET_BYTES = 1 << 30
#: Side, in fine pixels, of automatic spatial tiles on CPUs (cache-sized forwards).
TILE_FINE_PIXELS = 256
#: Automatic CPU tiles are at least this many receptive radii wide (coarse pixels), so the halo
#: of a tile adds at most about 13 % to its work.
HALO_TILE_FACTOR = 32
#: Fine pixels (times the window) that an automatic CPU batch aims at per forward.
FINE_PIXELS_PER_FORWARD = 2 * 256 * 256
#: Assumed float32 feature maps per output pixel and window frame when sizing automatic batches.
_FEATURES_PER_PIXEL = 64

#: Arithmetic of the forward passes (see :func:`xsr.engine.infer`).
PRECISIONS = ("float32", "bfloat16")


def _tile_pair(tile: Any) -> tuple[int, int] | None:
    if tile is None or tile is False:
        return None
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
        tile = (int(tile), int(tile))
    if (
        isinstance(tile, Sequence)
        and len(tile) == 2
        and all(
            isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t > 0 for t in tile
        )
    ):
        return int(tile[0]), int(tile[1])
    raise ValueError(
        f"tile must be None (automatic), a positive int or a (ty, tx) pair of low-resolution "
        f"pixels, got {tile!r}."
    )


def check_options(
    *, batch_size: Any = "auto", tile: Any = None, precision: Any = "float32"
) -> None:
    """Validate ``batch_size``, ``tile`` and ``precision`` early (before any lazy computation).

    Parameters
    ----------
    batch_size : int or "auto"
        Samples per forward.
    tile : None, False, int or (int, int)
        Tile size in low-resolution pixels.
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward passes.

    Raises
    ------
    ValueError
        Naming the argument and what it accepts.

    Examples
    --------
    >>> check_options(batch_size=4, tile=(64, 64))
    """
    _tile_pair(tile)
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}; "
            "'float32' (the default) is exact to float rounding, 'bfloat16' is faster and rougher."
        )
    if batch_size == "auto":
        return
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or 'auto', got {batch_size!r}.")


def margin_pair(margin: Any, h: int, w: int) -> tuple[int, int]:
    """``(my, mx)`` from an int or a pair, checked against ``h x w`` frames.

    Parameters
    ----------
    margin : int or (int, int)
        Input-only rows and columns at each edge.
    h, w : int
        Frame size in low-resolution cells.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        For a negative margin or one that leaves no interior.

    Examples
    --------
    >>> margin_pair(2, 8, 8)
    (2, 2)
    """
    if isinstance(margin, (int, np.integer)) and not isinstance(margin, bool):
        margin = (int(margin), int(margin))
    if (
        not isinstance(margin, Sequence)
        or len(margin) != 2
        or not all(isinstance(m, (int, np.integer)) and not isinstance(m, bool) for m in margin)
        or min(margin) < 0
    ):
        raise ValueError(f"margin must be a non-negative int or (my, mx) pair, got {margin!r}.")
    my, mx = int(margin[0]), int(margin[1])
    if 2 * my >= h or 2 * mx >= w:
        raise ValueError(
            f"margin={margin!r} leaves no interior in frames of {h}x{w} low-resolution cells."
        )
    return my, mx


def _sample_bytes(model: Any, h: int, w: int) -> int:
    """A conservative estimate of the activation bytes of one sample."""
    fine = (model.scale * h) * (model.scale * w)
    return 4 * _FEATURES_PER_PIXEL * fine * max(int(model.window), 1) + 1


def _even_split(size: int, target: int) -> int:
    """Tile length splitting ``size`` into near-equal parts of about ``target``."""
    parts = max(1, round(size / max(1, target)))
    return math.ceil(size / parts)


def plan(
    model: Any,
    n: int,
    h: int,
    w: int,
    batch_size: Any,
    tile: Any,
    *,
    cpu: bool = True,
    budget: int | None = None,
) -> tuple[int, tuple[int, int]]:
    """Batch size and ``(ty, tx)`` core tile size for ``n`` samples of ``h x w`` cells.

    See the module notes for the automatic choices.

    Parameters
    ----------
    model : SRModel or ModelRef
        Anything with ``scale``, ``window`` and ``receptive_radius``.
    n : int
        Samples (output frames).
    h, w : int
        Core size of a frame, in low-resolution cells.
    batch_size : int or "auto"
        Samples per forward.
    tile : None, False, int or (int, int)
        Core tile size (``None`` automatic, ``False`` whole frames).
    cpu : bool, default True
        Plan for a CPU (else a GPU).
    budget : int, optional
        Bytes of activations a forward may use (default :data:`MEMORY_BUDGET_BYTES`).

    Returns
    -------
    tuple
        ``(batch, (ty, tx))``.

    Examples
    --------
    >>> from xsr.models import get_model
    >>> plan(get_model("fsrcnn", scale=2), 8, 256, 256, "auto", None)
    (2, (128, 128))
    """
    check_options(batch_size=batch_size, tile=tile)
    budget = MEMORY_BUDGET_BYTES if budget is None else int(budget)
    scale, r = int(model.scale), int(model.receptive_radius)
    tiles = _tile_pair(tile)
    if tiles is not None:
        ty, tx = min(tiles[0], h), min(tiles[1], w)
    elif tile is None:
        target = max(16, TILE_FINE_PIXELS // scale, HALO_TILE_FACTOR * r) if cpu else max(h, w)
        ty, tx = _even_split(h, target), _even_split(w, target)
        while _sample_bytes(model, ty, tx) > budget and max(ty, tx) > 16:
            if ty >= tx:
                ty = math.ceil(ty / 2)
            else:
                tx = math.ceil(tx / 2)
    else:
        ty, tx = h, w
    if batch_size != "auto":
        return int(batch_size), (ty, tx)
    hh, ww = min(ty + 2 * r, h), min(tx + 2 * r, w)
    fine = scale * scale * hh * ww * max(int(model.window), 1)
    bs = budget // _sample_bytes(model, hh, ww)
    if cpu:
        bs = min(bs, FINE_PIXELS_PER_FORWARD // fine)
    return max(min(2, n), min(n, bs)), (ty, tx)


def batch_bounds(n: int, batch: int) -> list[tuple[int, int]]:
    """Batches of at most ``batch`` samples; a trailing single sample joins the previous batch.

    oneDNN runs a one-sample batch through other kernels than larger batches, which changes
    results in the last float32 bits; avoiding lone samples keeps outputs independent of the
    batching, and so of the dask chunking.

    Parameters
    ----------
    n : int
        Samples.
    batch : int
        Largest batch.

    Returns
    -------
    list of (int, int)
        ``[start, stop)`` bounds.

    Examples
    --------
    >>> batch_bounds(5, 2)
    [(0, 2), (2, 5)]
    """
    bounds = [(k, min(n, k + batch)) for k in range(0, n, batch)]
    if batch > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds

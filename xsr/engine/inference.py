"""``infer``: numpy frames in, super-resolved numpy frames out, torch in between.

The steps, in the order :func:`infer` runs them: resolve the device and the engine's prepared
copy of the model; check the frames; plan batches and tiles (:mod:`xsr.engine.planning`);
normalise per channel and fill NaN (masked) cells; cut samples (frames, or the time windows of a
windowed model as a strided view, no copy of the whole movie); run every batch of every tile
(:func:`tiles`) through the model; de-normalise, apply the consistency layer (``conserve``) in
physical units and re-apply the mask on the fine grid. Halos are the array layer's job
(:mod:`xsr._chunked`): the engine never pads the time axis or the outer spatial boundary.

This module imports numpy, torch and :mod:`xsr.models` only (never xarray or dask).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xsr.engine.device import full_float32, resolve_device
from xsr.engine.normalisation import frame_arrays, normalisation_arrays
from xsr.engine.planning import (
    MEMORY_BUDGET_BYTES,
    batch_bounds,
    check_options,
    margin_pair,
    plan,
)
from xsr.engine.reference import (
    ModelRef,
    _seed_cache,
    card_dict,
    check_model,
    get_model_cached,
)
from xsr.engine.runtime import scope as runtime_scope
from xsr.engine.threads import serialised

__all__ = ["Tile", "extend_into_mask", "infer", "tiles"]


@dataclass(frozen=True)
class Tile:
    """One spatial tile: the input cells a forward reads and the output cells it writes.

    Attributes
    ----------
    ya, yb, xa, xb : int
        Input rows ``ya:yb`` and columns ``xa:xb`` (core plus halo, clipped at the block edge).
    oy, ox : int
        Offset, in fine pixels, of the core's output inside the forward's full output.
    fy0, fy1, fx0, fx1 : int
        Where the core's output goes in the fine output grid.
    full_halo : bool
        Whether the halo is the whole receptive radius on every side (the forward may then
        skip the halo's outputs).
    """

    ya: int
    yb: int
    xa: int
    xb: int
    oy: int
    ox: int
    fy0: int
    fy1: int
    fx0: int
    fx1: int
    full_halo: bool


def tiles(
    h: int, w: int, margin: tuple[int, int], size: tuple[int, int], radius: int, scale: int
) -> Iterator[Tile]:
    """The tiles covering the interior of ``h x w`` frames, row by row.

    Parameters
    ----------
    h, w : int
        Frame size in low-resolution cells.
    margin : (int, int)
        Input-only rows and columns at each edge.
    size : (int, int)
        Core tile size.
    radius : int
        Halo: the model's receptive radius.
    scale : int
        Upscaling factor.

    Yields
    ------
    Tile

    Examples
    --------
    >>> [(t.ya, t.yb, t.full_halo) for t in tiles(8, 8, (2, 2), (2, 4), 2, 2)][:2]
    [(0, 6, True), (2, 8, True)]
    """
    (my, mx), (ty, tx), r = margin, size, radius
    for y0 in range(my, h - my, ty):
        y1 = min(h - my, y0 + ty)
        ya, yb = max(0, y0 - r), min(h, y1 + r)
        for x0 in range(mx, w - mx, tx):
            x1 = min(w - mx, x0 + tx)
            xa, xb = max(0, x0 - r), min(w, x1 + r)
            yield Tile(
                ya=ya,
                yb=yb,
                xa=xa,
                xb=xb,
                oy=scale * (y0 - ya),
                ox=scale * (x0 - xa),
                fy0=scale * (y0 - my),
                fy1=scale * (y1 - my),
                fx0=scale * (x0 - mx),
                fx1=scale * (x1 - mx),
                full_halo=min(y0 - ya, yb - y1, x0 - xa, xb - x1) == r,
            )


def infer(
    model: Any,
    frames: np.ndarray,
    *,
    normalisation: Any = None,
    frame_stats: Any = None,
    conserve: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int | str = "auto",
    tile: int | tuple[int, int] | None = None,
    margin: int | tuple[int, int] = 0,
    precision: str = "float32",
) -> np.ndarray:
    """Run a model over a block of low-resolution frames.

    Parameters
    ----------
    model : xsr.models.base.SRModel or ModelRef
        The network (a reference is resolved through :func:`get_model_cached`). The engine
        runs its own prepared copy: the caller's module is never modified.
    frames : numpy.ndarray
        ``(B, C, T, H, W)`` in physical units; ``C`` equals ``model.channels`` and
        ``T >= model.window``. NaN cells within ``receptive_radius`` cells of valid ones are
        filled by growing the valid field into them (:func:`extend_into_mask`), the others
        with their frame's mean (``frame_stats``, else computed from the given frames), before
        the forward; they are set back to NaN on the fine grid (every fine pixel of a NaN
        low-resolution cell of the centre frame). A channel whose frame is all NaN is filled
        with the card's training mean of that variable (0 without card statistics), so that
        a multi-variable model sees a typical value of it in the other variables' frames. For
        a fill independent of what lies beyond the block, give a ``margin`` of twice the
        receptive radius.
    normalisation : None, False, "frame", (means, stds) or mapping
        ``None`` uses the model card's ``normalisation`` when there is one (in the card's
        variable order) and none otherwise; ``False`` disables it; a ``(means, stds)`` pair or
        ``{variable: {"mean", "std"}}`` (in channel order) sets it explicitly. ``"frame"``
        normalises each sample's frame by its own mean and standard deviation
        (``frame_stats``), then by the card's normalisation (that of the frame-normalised
        training data, identity when absent), and de-normalises the output by the card's and
        then its centre frame's, so that
        ``infer(a * x + b) == a * infer(x) + b`` for ``a > 0`` (a field model's contract); a
        constant frame (standard deviation 0) comes back as that constant exactly.
    frame_stats : None or (means, stds)
        Per-frame statistics in physical units, two arrays of shape ``(B, C, T)`` (the mean and
        the standard deviation of each frame's finite cells; NaN for an all-NaN frame). The
        array layer computes them over whole frames, so that they do not depend on the block
        or its halos. ``None`` computes them from the given frames (margins included).
    conserve : bool
        Apply :func:`xsr.models.consistency.conserve` in physical units, so that the block mean
        of every output frame equals its centre input frame.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (see :func:`xsr.engine.resolve_device`).
    batch_size : int or "auto"
        Samples (output frames) per forward; ``"auto"`` sizes batches to about
        :data:`~xsr.engine.planning.MEMORY_BUDGET_BYTES` of activations.
    tile : int, (int, int) or None
        Core tile size in low-resolution pixels; each tile is run with a halo of
        ``receptive_radius`` pixels (clipped at the block edge) and cropped, so the output equals
        untiled inference. ``None`` picks cache-sized tiles on CPUs and whole frames on GPUs
        (smaller if the memory budget asks, see :mod:`xsr.engine.planning`); ``False`` never
        tiles.
    margin : int or (int, int)
        Low-resolution rows/columns at each spatial edge that are input only (a halo supplied
        by the caller): the output covers the interior ``H - 2*my`` by ``W - 2*mx`` cells, and
        nothing is computed for the margin. Give at least ``receptive_radius`` for results
        independent of the margin's outer edge.
    precision : {"float32", "bfloat16"}
        ``"float32"`` (default) computes in float32 (on CUDA without TF32). ``"bfloat16"`` runs
        the convolutions in bfloat16 under :func:`torch.autocast`, faster where the hardware
        has bfloat16 units (measure yours: ``benchmarks/upscale.py --bf16``); its error, about
        1e-3 of the data range, is of the size of the super-resolution error itself, so use it
        for previews and quick looks, not for results. Normalisation, the consistency layer and
        the output stay float32.

    Returns
    -------
    numpy.ndarray
        ``(B, C, T - 2 * time_radius, scale * (H - 2*my), scale * (W - 2*mx))`` in the input's
        float dtype (float32 for integer input). Computation runs in float32.

    Raises
    ------
    ValueError
        For a wrong rank, channel count or too few frames, or invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> from xsr.models import get_model
    >>> x = np.random.default_rng(0).random((1, 1, 3, 8, 8), dtype="float32")
    >>> infer(get_model("bicubic", scale=2, channels=1), x).shape
    (1, 1, 3, 16, 16)
    """
    dev = resolve_device(device)
    ref = _reference(model, dev)
    module = get_model_cached(ref, dev)
    arr = _check_frames(frames, module)
    b, c, t, h, w = arr.shape
    my, mx = margin_pair(margin, h, w)
    per_frame = isinstance(normalisation, str) and normalisation == "frame"
    # "frame": per-frame statistics first, then the card's (those of the frame-normalised
    # training corpus; identity when absent)
    stats = normalisation_arrays(None if per_frame else normalisation, card_dict(ref.card), c)
    frame = frame_arrays(frame_stats, arr)
    check_options(precision=precision)
    t_out = t - 2 * int(module.time_radius)
    n_samples = b * t_out if module.window == 1 else t_out  # 2-D models batch every frame
    budget = MEMORY_BUDGET_BYTES
    if dev.type == "cuda":  # GPUs hold more: a quarter of the free memory, at most 8 GiB
        budget = max(budget, min(torch.cuda.mem_get_info(dev)[0] // 4, 8 << 30))
    batch, size = plan(
        module, n_samples, h - 2 * my, w - 2 * mx, batch_size, tile, cpu=dev.type == "cpu",
        budget=budget,
    )  # fmt: skip
    run = _Run(module, dev, (my, mx), batch, size, precision)

    def whole() -> np.ndarray:
        with runtime_scope():
            return _upscale_block(run, arr, stats, conserve, frame, per_frame)

    if dev.type == "cpu":  # all of it on the model thread (see xsr.engine.threads)
        return serialised(whole, cpu=True)
    return whole()


def _reference(model: Any, dev: torch.device) -> ModelRef:
    """A reference for ``model``; an in-memory module is copied into the cache for ``dev``."""
    if isinstance(model, ModelRef):
        return model
    check_model(model)
    ref = ModelRef.from_model(model)
    _seed_cache(ref, model, dev)
    return ref


def _check_frames(frames: Any, module: Any) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 5:
        raise ValueError(
            f"frames must be a (B, C, T, H, W) array, got shape {arr.shape}; add the missing "
            "axes with numpy.expand_dims (a 2-D model still needs a T axis of length >= 1)."
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"frames must be a real numeric array, got dtype {arr.dtype}.")
    b, c, t, h, w = arr.shape
    if c != int(module.channels):
        raise ValueError(
            f"frames have {c} channel(s) but the model takes {module.channels}; stack one "
            "channel per model variable."
        )
    if t < int(module.window):
        raise ValueError(
            f"frames have {t} time step(s) but the model needs a window of {module.window}; "
            "give at least that many frames."
        )
    if min(h, w) < 1 or b < 1:
        raise ValueError(f"frames must not be empty, got shape {arr.shape}.")
    return arr


@dataclass(frozen=True)
class _Run:
    """What every forward of one :func:`infer` call shares."""

    module: Any
    dev: torch.device
    margin: tuple[int, int]
    batch: int
    tile: tuple[int, int]
    precision: str


def _upscale_block(
    run: _Run,
    arr: np.ndarray,
    stats: Any,
    conserve: bool,
    frame: tuple[np.ndarray, np.ndarray],
    per_frame: bool,
) -> np.ndarray:
    """Normalise, run the forwards, de-normalise, conserve and mask (see the module notes)."""
    out_dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype("float32")
    b, c, t, h, w = arr.shape
    tr, scale = int(run.module.time_radius), int(run.module.scale)
    (my, mx), t_out = run.margin, t - 2 * tr
    hc, wc = h - 2 * my, w - 2 * mx
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    mask = torch.isnan(x)
    has_nan = bool(mask.any())
    # the frames' statistics; an all-NaN frame (NaN mean) is all mask, filled with 0
    f_mean = np.nan_to_num(frame[0], nan=0.0)
    f_std = np.nan_to_num(frame[1], nan=0.0)
    mean = std = None
    if per_frame:
        mean = torch.from_numpy(f_mean.astype(np.float32)).view(b, c, t, 1, 1)
        std = torch.from_numpy(f_std.astype(np.float32)).view(b, c, t, 1, 1)
        # a constant frame is normalised to zeros (divided by 1) and de-normalised by its std 0
        xn = (x - mean) / torch.where(std > 0, std, torch.ones_like(std))
        fill = torch.zeros_like(mean)
        if stats is not None:  # the card's statistics of frame-normalised training data
            c_mean = torch.as_tensor(stats[0], dtype=torch.float32).view(1, c, 1, 1, 1)
            c_std = torch.as_tensor(stats[1], dtype=torch.float32).view(1, c, 1, 1, 1)
            xn = (xn - c_mean) / c_std
            fill = (fill - c_mean) / c_std
    elif stats is not None:
        mean = torch.as_tensor(stats[0], dtype=torch.float32).view(1, c, 1, 1, 1)
        std = torch.as_tensor(stats[1], dtype=torch.float32).view(1, c, 1, 1, 1)
        xn = (x - mean) / std
        fill = (torch.from_numpy(f_mean.astype(np.float32)).view(b, c, t, 1, 1) - mean) / std
        # an all-NaN frame of one variable takes the card's mean (0 once normalised), not 0 in
        # data units: the model's other variables in that frame see a typical value of it
        empty = torch.from_numpy(np.isnan(frame[0])).view(b, c, t, 1, 1)
        fill = torch.where(empty, torch.zeros_like(fill), fill)
    else:
        xn = x.clone() if has_nan else x
        fill = torch.from_numpy(f_mean.astype(np.float32)).view(b, c, t, 1, 1)
    if has_nan:
        # masked cells next to valid ones continue the field (means of valid neighbours, grown
        # receptive_radius cells into the mask: all a valid output cell can see); the rest take
        # their frame's mean
        xn = extend_into_mask(xn, mask, int(run.module.receptive_radius))
        xn = torch.where(torch.isnan(xn), fill.expand_as(xn), xn)

    out = torch.empty((b, t_out, c, scale * hc, scale * wc), dtype=torch.float32)
    _forward_all(run, _samples(xn, out, int(run.module.window)))
    out = out.permute(0, 2, 1, 3, 4)  # (B, C, T_out, sH, sW)
    if per_frame:
        if stats is not None:
            out.mul_(c_std).add_(c_mean)
        out.mul_(std[:, :, tr : t - tr]).add_(mean[:, :, tr : t - tr])
    elif std is not None:
        out.mul_(std).add_(mean)

    centre = x[:, :, tr : t - tr, my : h - my, mx : w - mx]
    cmask = mask[:, :, tr : t - tr, my : h - my, mx : w - mx]
    if conserve:
        from xsr.models.consistency import conserve as _conserve

        low = centre
        if has_nan:
            f_low = torch.from_numpy(f_mean.astype(np.float32)).view(b, c, t, 1, 1)
            low = torch.where(cmask, f_low[:, :, tr : t - tr].expand_as(centre), centre)
        flat = (b * c, t_out)
        res = _conserve(out.reshape(*flat, *out.shape[-2:]), low.reshape(*flat, hc, wc), scale)
        out = res.reshape(out.shape)
    if has_nan:
        fine = cmask.repeat_interleave(scale, dim=3).repeat_interleave(scale, dim=4)
        out = out.masked_fill(fine, float("nan"))
    return out.numpy().astype(out_dtype, copy=False)


def extend_into_mask(x: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Fill masked cells that lie within ``steps`` cells of valid ones, growing the valid region.

    Each step gives every masked cell with a valid neighbour (of its 3 x 3 neighbours, over the
    last two axes) the mean of those neighbours, and counts it valid for the next step; cells
    still masked after ``steps`` steps stay NaN. A filled cell depends only on the values within
    ``steps`` cells of it, so a block with a halo of ``2 * steps`` gives every cell a model with
    receptive radius ``steps`` reads the same fill whatever the chunking.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)`` values (those under ``mask`` are ignored).
    mask : torch.Tensor
        Boolean, the shape of ``x``: the cells to fill.
    steps : int
        How many cells into the mask to grow.

    Returns
    -------
    torch.Tensor
        ``x`` with the reachable masked cells filled, the others NaN.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0, float("nan"), float("nan")]])
    >>> extend_into_mask(x, torch.isnan(x), 1).tolist()
    [[1.0, 2.0, 2.0, nan]]
    """
    shape = x.shape
    h, w = shape[-2:]
    valid = (~mask).reshape(-1, 1, h, w).to(x.dtype)
    values = torch.where(mask, torch.zeros((), dtype=x.dtype), x).reshape(-1, 1, h, w)
    kernel = torch.ones((1, 1, 3, 3), dtype=x.dtype)
    for _ in range(max(0, int(steps))):
        todo = valid == 0
        if not bool(todo.any()):
            break
        total = torch.nn.functional.conv2d(values, kernel, padding=1)
        count = torch.nn.functional.conv2d(valid, kernel, padding=1)
        new = todo & (count > 0.5)
        values = torch.where(new, total / count.clamp(min=1.0), values)
        valid = torch.where(new, torch.ones((), dtype=x.dtype), valid)
    out = torch.where(valid > 0, values, torch.full((), float("nan"), dtype=x.dtype))
    return out.reshape(shape)


def _samples(
    xn: torch.Tensor, out: torch.Tensor, window: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(samples, target)`` pairs: the model's inputs and where their outputs go.

    2-D models batch the frames of every leading index together, ``(B*T, C, H, W)``; windowed
    models take ``(T_out, C, window, H, W)`` per leading index, a strided view (``unfold``), so
    windows are copied one batch at a time, never for the whole movie.
    """
    b, c, t, h, w = xn.shape
    if window == 1:
        frames = xn.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        return [(frames, out.view(b * t, c, *out.shape[-2:]))]
    views = xn.unfold(2, window, 1).permute(0, 2, 1, 5, 3, 4)
    return [(views[bi], out[bi]) for bi in range(b)]


def _forward_all(run: _Run, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Every batch of every tile through the model; one at a time per process."""
    module, dev = run.module, run.dev
    r, scale = int(module.receptive_radius), int(module.scale)
    h, w = pairs[0][0].shape[-2:]
    layout = _layout(dev, int(module.window))
    # tiles with a full halo skip the halo's outputs where the engine's copy can
    core = getattr(module, "forward_core", None) if r > 0 else None
    autocast = torch.autocast(
        device_type=dev.type, dtype=torch.bfloat16, enabled=run.precision == "bfloat16"
    )
    pair = run.batch > 1

    def forwards() -> None:
        with torch.inference_mode(), full_float32(dev), autocast:
            for samples, target in pairs:
                for k0, k1 in batch_bounds(samples.shape[0], run.batch):
                    for tl in tiles(h, w, run.margin, run.tile, r, scale):
                        inp = samples[k0:k1, ..., tl.ya : tl.yb, tl.xa : tl.xb]
                        inp = inp.to(dev).contiguous(memory_format=layout)
                        if core is not None and tl.full_halo:
                            y = _forward(core, inp, pair=pair)
                        else:
                            y = _forward(module, inp, pair=pair)
                            hh, ww = tl.fy1 - tl.fy0, tl.fx1 - tl.fx0
                            y = y[..., tl.oy : tl.oy + hh, tl.ox : tl.ox + ww]
                        target[k0:k1, :, tl.fy0 : tl.fy1, tl.fx0 : tl.fx1] = y.to(
                            "cpu", torch.float32
                        )

    if dev.type == "cpu":  # already on the model thread
        forwards()
    else:
        serialised(forwards, cpu=False)


def _layout(dev: torch.device, window: int) -> torch.memory_format:
    """Channels-last suits oneDNN on CPUs; cuDNN's float32 kernels prefer the default layout."""
    if dev.type != "cpu":
        return torch.contiguous_format
    return torch.channels_last if window == 1 else torch.channels_last_3d


def _forward(
    module: Callable[[torch.Tensor], torch.Tensor], inp: torch.Tensor, *, pair: bool
) -> torch.Tensor:
    """``module(inp)``; a lone sample is run as a pair (see :func:`~xsr.engine.planning.batch_bounds`)."""
    if pair and inp.shape[0] == 1:
        return module(torch.cat([inp, inp]))[:1]
    return module(inp)

"""Learn a field model's site detail on its training grid (``fit(..., site=True)``).

What site detail is, and how upscaling applies it, is in :mod:`xsr.site`. Here it is estimated,
once the network is trained, from whole frames of the training split:

1. the training movie is degraded as for training and upscaled by the trained network alone;
2. its error is normalised like the field model's input, ``r = (truth - prediction) / s``, with
   ``s`` the standard deviation of each low-resolution frame (frames with ``s = 0`` are left out);
3. the site detail is a weighted mean of ``r`` over frames, the recent ones weighing
   ``exp(-age / tau)`` (``age`` in frames before the last one): a grid's sub-grid pattern may
   drift (a warming climate run, a reanalysis whose model changes), so the time scale ``tau``
   is chosen among :data:`TIME_SCALES` (fractions of the training frames; ``None``: all alike)
   on the validation frames. For each, ``m_fit``, the mean over the training frames, is scored
   against the validation error: the shrinkage ``k = sum(r_val * m_fit) / sum(m_fit ** 2)``
   over their finite cells, clipped to ``[0, 1]``, is the least-squares multiple of ``m_fit``
   that best predicts it (0 when the pattern does not repeat, about 1 when it does), and the
   time scale whose ``k * m_fit`` lowers the validation squared error most wins;
4. the site detail is ``k`` times that time scale's mean of ``r`` over all frames of the split
   (ages counted from its last frame), NaN cells 0.

With validation frames spread over the record (``val_blocks > 1``) only ``tau = None`` is
tried: "recent" has no meaning there.

Each variable of the data (and each of its levels, members) gets its own map; the frames are
read once, per-cell sums and counts being all that is kept, so a dask-backed archive streams.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from typing import Any

import dask
import numpy as np
import torch
import xarray as xr

from xsr.train.config import FitConfig
from xsr.train.data import Patches, Selection, degraded

__all__ = ["SITE_METHOD", "TIME_SCALES", "fit_site"]

#: How the site detail was estimated (recorded in the card).
SITE_METHOD = (
    "weighted time mean (weights exp(-age / time_scale), age in frames before the last) of "
    "(truth - network) / (low-resolution frame std) over the training split, times the "
    "least-squares shrinkage in [0, 1] against the validation frames; the time scale is the "
    "one of time_scales (fractions of the training frames, null: equal weights) that lowers "
    "the validation error most"
)
#: Candidate time scales of the site detail's weighted mean, as fractions of the training
#: frames (``None``: every frame weighs the same).
TIME_SCALES: tuple[float | None, ...] = (None, 1.0, 0.5, 0.25, 0.125)


def _coord_values(ds: xr.Dataset, dim: Hashable) -> list[Any] | None:
    """A dimension's coordinate as a JSON list of numbers or strings, or None (by position)."""
    if dim not in ds.coords:
        return None
    values = np.asarray(ds[dim].values)
    if np.issubdtype(values.dtype, np.number) or values.dtype.kind in "US":
        return values.tolist()
    return None


def _weighted(r: xr.DataArray, time_dim: Hashable, frames: np.ndarray, tau: float | None) -> Any:
    """Per-cell weighted sum and weight of the finite values of ``r`` at ``frames``.

    Weights ``exp(-(frames[-1] - frame) / tau)`` (all 1 for ``tau=None``).
    """
    age = frames[-1] - frames
    w = np.ones(frames.size) if tau is None else np.exp(-age / tau)
    part = r.isel({time_dim: frames})
    weight = xr.DataArray(w, dims=time_dim)
    return (part * weight).sum(time_dim, skipna=True), (part.notnull() * weight).sum(time_dim)


def _progress(show: bool) -> Any:
    """tqdm's dask callback over the site detail's one pass (a no-op without a bar)."""
    if not show:
        return contextlib.nullcontext()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc="site detail", leave=False)


def _frames(blocks: list[tuple[int, int]]) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in blocks]) if blocks else np.arange(0)


def _choose(candidates: dict, s_val: xr.DataArray, n_val: xr.DataArray) -> tuple[Any, float]:
    """The time scale whose shrunk training mean lowers the validation squared error most."""
    best: tuple[float, Any, float] = (0.0, None, 0.0)
    for tau, (s_fit, n_fit) in candidates.items():
        m = (s_fit / n_fit.where(n_fit > 0)).fillna(0.0)
        num, den = float((m * s_val).sum()), float((m**2 * n_val).sum())
        k = float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 0.0
        gain = 2 * k * num - k * k * den  # the drop of sum((r_val - k * m) ** 2)
        if gain > best[0]:
            best = (gain, tau, k)
    return best[1], best[2]


def fit_site(
    net: torch.nn.Module, sel: Selection, cfg: FitConfig, patches: Patches
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The site detail of each selected variable for a trained field model.

    Parameters
    ----------
    net : SRModel
        The trained field model (its own ``site`` is not used).
    sel : Selection
        The data stage's selection of the user's variables (before they became samples).
    cfg : FitConfig
        Gives the degradation.
    patches : Patches
        Gives the training and validation frames (``train_blocks``, ``val_blocks``).

    Returns
    -------
    (dict of str to torch.Tensor, dict)
        The maps (float32, the variable's dims without time, fine grid) and the card's ``site``
        description (coordinates, dims, shapes, shrinkage and frame counts).

    Raises
    ------
    ValueError
        Without validation frames (the shrinkage needs them).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> from xsr.train import fit
    >>> net, _ = fit("field-xsrnet-x2", random_movie(8, 32, 32), epochs=1, patch_size=4,
    ...              patches_per_epoch=4, batch_size=4, progress=False, site=True)
    >>> tuple(net.site["h"].shape), 0.0 <= net.card.site["variables"]["h"]["shrinkage"] <= 1.0
    ((32, 32), True)
    """
    from xsr.upscaling import upscale

    if not patches.val_blocks:
        raise ValueError(
            "site=True chooses how much site detail to keep on the validation frames; give "
            "val_fraction > 0."
        )
    saved, net.site = net.site, None
    scale, dims, tdim = net.scale, (sel.ydim, sel.xdim), sel.time_dim
    low = degraded(sel, cfg, scale)
    truth = sel.data.isel({d: slice(0, scale * low.sizes[d]) for d in dims})
    periodic = tuple(a for a, p in zip(("y", "x"), sel.periodic) if p) or False
    try:
        device = "cuda" if any(p.is_cuda for p in net.parameters()) else "cpu"
        pred = upscale(low, net, dims=dims, time_dim=tdim, periodic=periodic, device=device)
    finally:
        net.site = saved
    # the prediction's fine coordinates are rebuilt from the coarse ones: use the truth's
    pred = pred.assign_coords({d: truth[d] for d in dims if d in truth.coords})
    fit_frames, val_frames = _frames(patches.train_blocks), _frames(patches.val_blocks)
    all_frames = np.sort(np.concatenate([fit_frames, val_frames]))
    n_train = all_frames.size
    fractions = TIME_SCALES if len(patches.val_blocks) == 1 else (None,)
    taus = {f: None if f is None else f * n_train for f in fractions}
    lazy = {}
    for v in sel.variables:
        std = low[v].astype("float64").std(dims, skipna=True)
        r = (truth[v].astype("float64") - pred[v]) / std.where(std > 0)
        lazy[v] = {
            "fit": {f: _weighted(r, tdim, fit_frames, t) for f, t in taus.items()},
            "all": {f: _weighted(r, tdim, all_frames, t) for f, t in taus.items()},
            "val": _weighted(r, tdim, val_frames, None),
        }
    with _progress(cfg.progress):
        (computed,) = dask.compute(lazy)
    maps: dict[str, torch.Tensor] = {}
    described: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for v, parts in computed.items():
        fraction, k = _choose(parts["fit"], *parts["val"])
        s_all, n_all = parts["all"][fraction]
        site = (k * s_all / n_all.where(n_all > 0)).fillna(0.0).transpose(..., *dims)
        maps[v] = torch.from_numpy(np.ascontiguousarray(site.values, dtype="float32"))
        for d in site.dims:
            coords[str(d)] = _coord_values(truth, d)
        described[v] = {
            "dims": [str(d) for d in site.dims],
            "shape": list(site.shape),
            "shrinkage": k,
            "time_scale_frames": taus[fraction],
            "frames": int(fit_frames.size),
            "validation_frames": int(val_frames.size),
            "rms": float(np.sqrt(np.mean(site.values**2))),
        }
    return maps, {
        "method": SITE_METHOD,
        "time_scales": list(fractions),
        "coords": coords,
        "variables": described,
    }

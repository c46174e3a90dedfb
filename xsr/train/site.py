"""Learn a field model's site detail on its training grid (``fit(..., site=True)``).

What site detail is, and how upscaling applies it, is in :mod:`xsr.site`. Here it is estimated,
once the network is trained, from whole frames of the training split:

1. the training movie is degraded as for training and upscaled by the trained network alone;
2. its error is normalised like the field model's input, ``r = (truth - prediction) / s``, with
   ``s`` the standard deviation of each low-resolution frame (frames with ``s = 0`` are left out);
3. ``m_fit``, the mean of ``r`` over the training frames (NaN cells left out), is scored on the
   validation frames: the shrinkage ``k = sum(r_val * m_fit) / sum(m_fit ** 2)`` over their
   finite cells, clipped to ``[0, 1]``, is the least-squares multiple of ``m_fit`` that best
   predicts the validation error (0 when the pattern does not repeat, about 1 when it does);
4. the site detail is ``k`` times the mean of ``r`` over all frames of the split, NaN cells 0.

Each variable of the data (and each of its levels, members) gets its own map; the frames are
read once, per-cell sums and counts being all that is kept, so a dask-backed archive streams.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import dask
import numpy as np
import torch
import xarray as xr

from xsr.train.config import FitConfig
from xsr.train.data import Patches, Selection, degraded

__all__ = ["SITE_METHOD", "fit_site"]

#: How the site detail was estimated (recorded in the card).
SITE_METHOD = (
    "time mean of (truth - network) / (low-resolution frame std) over the training split, "
    "times the least-squares shrinkage in [0, 1] of the training-frame mean against the "
    "validation frames"
)


def _coord_values(ds: xr.Dataset, dim: Hashable) -> list[Any] | None:
    """A dimension's coordinate as a JSON list of numbers or strings, or None (by position)."""
    if dim not in ds.coords:
        return None
    values = np.asarray(ds[dim].values)
    if np.issubdtype(values.dtype, np.number) or values.dtype.kind in "US":
        return values.tolist()
    return None


def _sums(r: xr.DataArray, time_dim: Hashable, blocks: list[tuple[int, int]]) -> tuple[Any, Any]:
    """Per-cell sum and count of the finite values of ``r`` over the frames of ``blocks``."""
    part = xr.concat([r.isel({time_dim: slice(a, b)}) for a, b in blocks], time_dim)
    return part.sum(time_dim, skipna=True), part.notnull().sum(time_dim)


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
    >>> net, _ = fit("field-xsrnet-x2", random_movie(8, 16, 16), epochs=1, patch_size=4,
    ...              patches_per_epoch=4, batch_size=4, progress=False, site=True)
    >>> tuple(net.site["h"].shape), 0.0 <= net.card.site["variables"]["h"]["shrinkage"] <= 1.0
    ((16, 16), True)
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
        pred = upscale(low, net, dims=dims, time_dim=tdim, periodic=periodic, device="cpu")
    finally:
        net.site = saved
    # the prediction's fine coordinates are rebuilt from the coarse ones: use the truth's
    pred = pred.assign_coords({d: truth[d] for d in dims if d in truth.coords})
    lazy = {}
    for v in sel.variables:
        std = low[v].astype("float64").std(dims, skipna=True)
        r = (truth[v].astype("float64") - pred[v]) / std.where(std > 0)
        lazy[v] = (_sums(r, tdim, patches.train_blocks), _sums(r, tdim, patches.val_blocks))
    (computed,) = dask.compute(lazy)
    maps: dict[str, torch.Tensor] = {}
    described: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for v, ((s_fit, n_fit), (s_val, n_val)) in computed.items():
        m_fit = (s_fit / n_fit.where(n_fit > 0)).fillna(0.0)
        den = float((m_fit**2 * n_val).sum())
        k = float(np.clip(float((m_fit * s_val).sum()) / den, 0.0, 1.0)) if den > 0 else 0.0
        n_all = n_fit + n_val
        site = (k * (s_fit + s_val) / n_all.where(n_all > 0)).fillna(0.0).transpose(..., *dims)
        maps[v] = torch.from_numpy(np.ascontiguousarray(site.values, dtype="float32"))
        for d in site.dims:
            coords[str(d)] = _coord_values(truth, d)
        described[v] = {
            "dims": [str(d) for d in site.dims],
            "shape": list(site.shape),
            "shrinkage": k,
            "frames": int(sum(b - a for a, b in patches.train_blocks)),
            "validation_frames": int(sum(b - a for a, b in patches.val_blocks)),
            "rms": float(np.sqrt(np.mean(site.values**2))),
        }
    return maps, {"method": SITE_METHOD, "coords": coords, "variables": described}

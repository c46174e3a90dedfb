"""The closed-form stage of :func:`xsr.train.fit` for a network with a learned linear base.

A network whose global residual is added to a learned linear filter per sub-pixel phase
(:class:`xsr.models.linear.PhaseFilter`, e.g. xsrnet with ``base="linear"``) predicts
``base(x) + detail(x)``. Before the gradient steps, :func:`fit_linear_base` solves the base in
closed form on the training split given the rest of the network: per variable and phase, the
ridge least squares of ``y - detail(x)`` on the window of ``x`` (the normal equations of
:mod:`xsr.train.linear`, in the normalisation the training uses). For a new network the
detail starts small, so the base starts as the learned linear baseline; for a trained one
(fine-tuning on new data) the solve can only lower the training error, since the old base is
one of the filters it chooses from.

The frames are read a bounded number at a time; the detail is computed on each whole frame
with the network's receptive radius of context (wrapped on periodic axes, mirrored elsewhere),
as the engine computes it. Masked (NaN) input cells are 0 (the mean), as in the training
batches; masked targets are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xsr.engine.inference import extend_into_mask
from xsr.models.linear import PhaseFilter
from xsr.train.config import FitConfig
from xsr.train.data import Patches, Selection, Statistics, degraded
from xsr.train.linear import _normal_equations, _pad, solve_normal_equations
from xsr.train.patches import stack_samples

__all__ = ["fit_linear_base"]

#: Frames per forward pass of the detail network.
_FRAMES_PER_PASS = 64
#: Low-resolution cells read from the data at once (about 100 MiB of float64 per array).
_CELLS_PER_READ = 1 << 24


def _reads(blocks: list[tuple[int, int]], step: int, half: int) -> list[tuple[int, int]]:
    """Frame ranges covering each block's window centres ``step`` at a time, with neighbours.

    Examples
    --------
    >>> _reads([(0, 10)], 4, 1)
    [(0, 6), (4, 10)]
    """
    out = []
    for a, b in blocks:
        for c in range(a + half, b - half, step):  # the centres c .. c + step - 1
            out.append((c - half, min(c + step, b - half) + half))
    return out


def _detail(net: Any, low: np.ndarray, periodic: tuple[bool, bool]) -> np.ndarray:
    """``net``'s output (unprojected) minus its base, for windows of ``low (S, C, T, h, w)``.

    Returns ``(S, C, T', sh, sw)``.

    ``T' = T - window + 1`` centre frames; each frame is padded by the receptive radius (wrap on
    periodic axes, ``symmetric`` elsewhere) and cropped back, so every cell has full context.
    """
    r, s, win = net.receptive_radius, net.scale, net.window
    samples, channels, frames, h, w = low.shape
    padded = _pad(low, r, periodic)
    windows = np.lib.stride_tricks.sliding_window_view(padded, win, axis=2)  # (S,C,T',H,W,win)
    windows = np.moveaxis(windows, -1, 3).transpose(0, 2, 1, 3, 4, 5)  # (S, T', C, win, H, W)
    windows = windows.reshape(-1, channels, win, h + 2 * r, w + 2 * r)
    if win == 1:
        windows = windows[:, :, 0]
    param = next(net.parameters())
    out = []
    with torch.no_grad():
        for start in range(0, windows.shape[0], _FRAMES_PER_PASS):
            x = torch.from_numpy(np.array(windows[start : start + _FRAMES_PER_PASS]))  # a copy
            x = x.to(device=param.device, dtype=param.dtype)
            # before any consistency projection (conserve=True): the solve is for the sum
            detail = net._forward(x) - net.base(net.centre_frame(x))
            out.append(detail[..., s * r : s * (r + h), s * r : s * (r + w)].double().cpu().numpy())
    detail = np.concatenate(out).reshape(samples, frames - win + 1, channels, s * h, s * w)
    return detail.transpose(0, 2, 1, 3, 4)


def _filled(low: np.ndarray, steps: int) -> np.ndarray:
    """``low`` with masked cells continued from valid ones ``steps`` cells deep, the rest 0."""
    if np.isfinite(low).all():
        return low
    t = torch.from_numpy(np.where(np.isfinite(low), low, np.nan))
    return np.nan_to_num(extend_into_mask(t, torch.isnan(t), steps).numpy(), nan=0.0)


def fit_linear_base(
    net: Any,
    sel: Selection,
    cfg: FitConfig,
    patches: Patches,
    stats: Statistics,
    *,
    ridge: float = 1e-6,
) -> dict[str, float] | None:
    """Solve ``net.base`` in closed form on the training split, given the rest of the network.

    Parameters
    ----------
    net : SRModel
        The network being trained; nothing is done unless its ``base`` is a
        :class:`~xsr.models.linear.PhaseFilter`.
    sel : Selection
    cfg : FitConfig
    patches : Patches
        Its ``train_blocks`` are the frames used.
    stats : Statistics
        The training normalisation (the base is solved in normalised units).
    ridge : float, default 1e-6
        Ridge term (see :func:`xsr.train.fit_linear`).

    Returns
    -------
    dict or None
        Per variable, the training mean squared error of ``base + detail`` after the solve
        (normalised units); ``None`` when the network has no linear base.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> from xsr.train.data import make_patches, select, statistics
    >>> from xsr.train.model import prepare_model
    >>> cfg = FitConfig(scale=2, patch_size=4, periodic=False,
    ...                 model_config={"window": 1, "base": "linear", "blocks": 1})
    >>> sel = select(random_movie(6, 32, 32, dtype="float64"), cfg)
    >>> p = prepare_model("xsrnet", cfg, variables=sel.variables, device=torch.device("cpu"))
    >>> patches = make_patches(sel, cfg, scale=2, window=1, halo=p.halo)
    >>> mse = fit_linear_base(p.net, sel, cfg, patches, statistics(sel, patches))
    >>> sorted(mse)
    ['h']
    """
    base = getattr(net, "base", None)
    if not isinstance(base, PhaseFilter):
        return None
    s, r, k = net.scale, base.radius, 2 * base.radius + 1
    p, q = k * k + 1, s * s
    dims = (sel.ydim, sel.xdim)
    low_all = stack_samples(degraded(sel, cfg, s), sel.variables, sel.time_dim, dims)
    high_all = patches.hr
    sums = [np.zeros(p * p + p * q + q + 1) for _ in sel.variables]
    mean = stats.mean[None, :, None, None, None]
    std = stats.std[None, :, None, None, None]
    half = net.window // 2
    was_training = net.training
    net.eval()
    # frames read at once (each with its window's neighbours): memory stays bounded by this
    cells = len(sel.variables) * int(np.prod([n for d, n in low_all.sizes.items()
                                              if d != sel.time_dim]))  # fmt: skip
    step = max(1, _CELLS_PER_READ // max(cells, 1))
    try:
        for a, b in _reads(patches.train_blocks, step, half):
            block = {sel.time_dim: slice(a, b)}
            low = np.stack([low_all[v].isel(block).values for v in sel.variables], axis=1)
            high = np.stack([high_all[v].isel(block).values for v in sel.variables], axis=1)
            low = (low.astype("float64") - mean) / std
            # masked (NaN) inputs are filled as in the training batches and at inference
            # (xsr.train.batches.to_tensors: continued from valid neighbours, the rest 0): the
            # solve is for the network the loop trains, and a masked cell does not void every
            # output within the receptive radius of it
            low = _filled(low, int(net.receptive_radius))
            high = (high.astype("float64") - mean) / std
            target = high[:, :, half : b - a - half] - _detail(net, low, sel.periodic)
            centre = low[:, :, half : b - a - half]
            for c in range(len(sel.variables)):
                sums[c] += _normal_equations(
                    centre[:, c], target[:, c], scale=s, radius=r, bias=True,
                    periodic=sel.periodic, mean=0.0, std=1.0,
                )  # fmt: skip
    finally:
        net.train(was_training)
    weights = base.conv.weight.detach().clone()
    biases = base.conv.bias.detach().clone()
    mse = {}
    for c, v in enumerate(sel.variables):
        sol, mse[str(v)], _ = solve_normal_equations(
            sums[c], p=p, q=q, ridge=ridge, bias=True, name=v
        )
        weights[c * q : (c + 1) * q] = torch.as_tensor(sol[:-1].T.reshape(q, 1, k, k))
        biases[c * q : (c + 1) * q] = torch.as_tensor(sol[-1])
    with torch.no_grad():
        base.conv.weight.copy_(weights)
        base.conv.bias.copy_(biases)
    return mse

"""Closed-form fit of the linear baseline (:class:`xsr.models.linear.Linear`).

:func:`fit_linear` degrades the high-resolution movie with the named operator (the one used at
evaluation), normalises each variable by the mean and standard deviation of its low-resolution
frames, and solves, per variable and per sub-pixel phase, the ridge-regularised least-squares
problem ``min_w sum (x . w - y)^2 + ridge * n * |w|^2`` over every low-resolution cell of every
frame: ``x`` is the ``(2r+1)^2`` window of normalised low-resolution cells around the cell (plus
a constant 1 with ``bias=True``; the bias is not penalised) and ``y`` the normalised fine pixel.

The normal equations ``X^T X`` and ``X^T y`` are accumulated block by block (one dask block of
frames at a time, and inside a block a bounded number of frames at a time), so memory is bounded
by the chunk size whatever the length of the movie, and eager and dask-backed data give the same
filter to float64 rounding. Windows reaching past the frame edge wrap on periodic dims (read with
:func:`xsr.coords.periodic_dims`) and are mirrored including the edge cell elsewhere, as
:func:`xsr.upscaling.upscale` pads. Windows or targets holding NaN are left out.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsr.coords import spatial_dims

__all__ = ["fit_linear", "solve_normal_equations"]

#: Low-resolution cells whose windows are materialised at once inside a block (bounds memory).
_CELLS_PER_STEP = 1 << 16


def _pad(frames: np.ndarray, r: int, periodic: tuple[bool, bool]) -> np.ndarray:
    """Pad the last two axes: wrap where periodic, numpy ``symmetric`` elsewhere."""
    out = frames
    for axis, wrap in zip((-2, -1), periodic):
        width = [(0, 0)] * frames.ndim
        width[axis] = (r, r)
        out = np.pad(out, width, mode="wrap" if wrap else "symmetric")
    return out


def _normal_equations(
    low: np.ndarray,
    high: np.ndarray,
    *,
    scale: int,
    radius: int,
    bias: bool,
    periodic: tuple[bool, bool],
    mean: float,
    std: float,
) -> np.ndarray:
    """``[X^T X, X^T Y, Y^T Y, n]`` flattened, for frames ``low (..., h, w)``, ``high (..., sh, sw)``."""
    s, k = scale, 2 * radius + 1
    h, w = low.shape[-2:]
    lo = (np.asarray(low, dtype="float64").reshape(-1, h, w) - mean) / std
    hi = (np.asarray(high, dtype="float64").reshape(-1, h * s, w * s) - mean) / std
    p = k * k + int(bias)
    q = s * s
    xtx = np.zeros((p, p))
    xty = np.zeros((p, q))
    yty = np.zeros(q)
    count = 0
    step = max(1, _CELLS_PER_STEP // max(h * w, 1))
    for start in range(0, lo.shape[0], step):
        padded = _pad(lo[start : start + step], radius, periodic)
        win = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(-2, -1))
        x = win.reshape(-1, k * k)
        y = hi[start : start + step].reshape(-1, h, s, w, s).transpose(0, 1, 3, 2, 4)
        y = y.reshape(-1, q)
        if bias:
            x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        good = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        if not good.all():
            x, y = x[good], y[good]
        xtx += x.T @ x
        xty += x.T @ y
        yty += np.einsum("ij,ij->j", y, y)
        count += x.shape[0]
    return np.concatenate([xtx.ravel(), xty.ravel(), yty, [count]])


def solve_normal_equations(
    vec: np.ndarray, *, p: int, q: int, ridge: float, bias: bool, name: Hashable
) -> tuple[np.ndarray, float, int]:
    """Solve the ridge least squares of :func:`_normal_equations`' sums ``vec``.

    Parameters
    ----------
    vec : numpy.ndarray
        ``[X^T X, X^T Y, Y^T Y, n]`` flattened.
    p, q : int
        Unknowns per phase (window cells, plus 1 with ``bias``) and phases (``scale**2``).
    ridge : float
        Ridge term relative to the unit variance of the normalised inputs; the bias is free.
    bias : bool
        Whether the last unknown is the constant.
    name : hashable
        The variable, for the error message.

    Returns
    -------
    (numpy.ndarray, float, int)
        The ``(p, q)`` solution, its mean squared error on the samples (normalised units) and
        the number of samples.

    Raises
    ------
    ValueError
        Fewer valid samples than unknowns.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> y = x @ np.array([[2.0], [-1.0]])
    >>> vec = np.concatenate([(x.T @ x).ravel(), (x.T @ y).ravel(), [(y * y).sum()], [50]])
    >>> sol, mse, n = solve_normal_equations(vec, p=2, q=1, ridge=0.0, bias=False, name="h")
    >>> np.round(sol.ravel(), 6).tolist(), round(mse, 9), n
    ([2.0, -1.0], 0.0, 50)
    """
    xtx = vec[: p * p].reshape(p, p)
    xty = vec[p * p : p * p + p * q].reshape(p, q)
    yty = vec[p * p + p * q : p * p + p * q + q]
    n = int(vec[-1])
    if n < p:
        raise ValueError(
            f"the linear filter of variable {name!r} has {n} valid samples for {p} unknowns per "
            "phase; give more (or larger, or less masked) frames, or a smaller radius."
        )
    penalty = np.full(p, ridge * n)
    if bias:
        penalty[-1] = 0.0
    sol = np.linalg.solve(xtx + np.diag(penalty), xty)  # (p, q)
    sse = yty - 2 * np.einsum("pq,pq->q", sol, xty) + np.einsum("pq,pr,rq->q", sol, xtx, sol)
    return sol, float(max(sse.sum(), 0.0) / (n * q)), n


def _accumulate(
    low: xr.DataArray,
    high: xr.DataArray,
    ydim: Hashable,
    xdim: Hashable,
    **kwargs: Any,
) -> np.ndarray:
    """Sum of :func:`_normal_equations` over all frames: one dask reduction on dask input."""
    lead = [d for d in low.dims if d not in (ydim, xdim)]
    low = low.transpose(*lead, ydim, xdim)
    high = high.transpose(*lead, ydim, xdim)
    if low.chunks is None and high.chunks is None:
        return _normal_equations(low.values, high.values, **kwargs)
    import dask.array as da

    lo = low.data if low.chunks is not None else da.from_array(low.values)
    lo = lo.rechunk({low.ndim - 2: -1, low.ndim - 1: -1})
    hi = high.data if high.chunks is not None else da.from_array(high.values)
    hi = hi.rechunk((*lo.chunks[:-2], (high.shape[-2],), (high.shape[-1],)))
    n_lead = lo.ndim - 2

    def block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        vec = _normal_equations(a, b, **kwargs)
        return vec.reshape((1,) * n_lead + (vec.size,))

    size = _normal_equations(
        np.zeros((1, 1, 1)), np.zeros((1, kwargs["scale"], kwargs["scale"])), **kwargs
    ).size
    parts = _blockwise(lo, hi, block, n_lead, size)
    return np.asarray(parts.sum(axis=tuple(range(n_lead))).compute())


def _blockwise(lo: Any, hi: Any, block: Any, n_lead: int, size: int) -> Any:
    """Per-block normal equations as a dask array ``(n_blocks..., size)``."""
    import dask.array as da

    lead = "abcdefghij"[:n_lead]
    return da.blockwise(
        block,
        lead + "z",
        lo,
        lead + "yx",
        hi,
        lead + "YX",
        new_axes={"z": size},
        concatenate=True,
        dtype="float64",
        adjust_chunks=dict.fromkeys(lead, 1),
        meta=np.empty((0,) * (n_lead + 1)),
    )


def fit_linear(
    data: xr.Dataset | xr.DataArray,
    *,
    scale: int,
    variables: Sequence[Hashable] | Hashable | None = None,
    radius: int = 3,
    degrade: str = "coarsen",
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    bias: bool = True,
    ridge: float = 1e-6,
    periodic: Any = None,
    name: str | None = None,
):
    """Fit the linear per-phase baseline to a high-resolution movie, in closed form.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        High-resolution training frames (any dims besides the spatial pair are frames); eager or
        dask-backed (streamed block by block).
    scale : int
        Upscaling factor.
    variables : name or list of names, optional
        Variables to fit (one filter set each, channels in this order); default every data
        variable on both spatial dims.
    radius : int, default 3
        Window half-width in low-resolution cells (3: 7 x 7).
    degrade : {"coarsen", "bicubic"}
        The degradation (:func:`xsr.degradation.degrade`) that makes the low-resolution inputs.
    dims : (str, str), optional
        The ``(y, x)`` dims; found by :func:`xsr.coords.spatial_dims` otherwise.
    time_dim : str
        Name of the time dimension (recorded on the card; every frame is used).
    bias : bool, default True
        Fit a constant per phase as well.
    ridge : float, default 1e-6
        Ridge term, relative to the (unit) variance of the normalised inputs.
    periodic : None, False, "x", "y" or ("y", "x")
        Which dims wrap; ``None`` reads them from the data (:func:`xsr.coords.periodic_dims`).
    name : str, optional
        Card name; default ``linear-<variables>-x<scale>``.

    Returns
    -------
    xsr.models.linear.Linear
        The fitted model in eval mode, with ``model.card`` set (variables with units,
        normalisation, degradation, the fit's settings and its training mean squared error per
        variable); save it with :func:`xsr.models.files.save_model`.

    Raises
    ------
    ValueError
        Unknown variables, a bad ``ridge``, too few valid samples for the unknowns, or any
        error of :func:`xsr.degradation.degrade` (e.g. sizes not divisible by ``scale``).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> model = fit_linear(random_movie(4, 16, 16, dtype="float64"), scale=2, radius=1)
    >>> model.arch, model.scale, model.card.variables[0]["name"]
    ('linear', 2, 'h')
    """
    import torch

    from xsr.coords import resolve_periodic
    from xsr.degradation import degrade as degrade_fn
    from xsr.models.linear import Linear

    if isinstance(data, xr.DataArray):
        data = data.to_dataset(name=data.name if data.name is not None else "var0")
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"data must be an xarray Dataset or DataArray, got {type(data).__name__}.")
    ydim, xdim = spatial_dims(data, dims)
    on_grid = [v for v in data.data_vars if ydim in data[v].dims and xdim in data[v].dims]
    if variables is None:
        names = on_grid
    elif isinstance(variables, str) or not isinstance(variables, Sequence):
        names = [variables]
    else:
        names = list(variables)
    missing = [v for v in names if v not in on_grid]
    if missing or not names:
        raise ValueError(
            f"variables {missing or names!r} are not data variables on the spatial dims "
            f"{(ydim, xdim)!r}; available: {[str(v) for v in on_grid]}."
        )
    if not (isinstance(ridge, int | float) and np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}.")
    model = Linear(scale=scale, channels=len(names), radius=radius, bias=bias)
    pair = resolve_periodic(periodic, data, (ydim, xdim))
    high = data[names]
    low = degrade_fn(high, scale=scale, method=degrade, dims=(ydim, xdim))

    stats = xr.Dataset(
        {f"{v}.mean": low[v].astype("float64").mean() for v in names}
        | {f"{v}.std": low[v].astype("float64").std() for v in names}
    ).compute()
    k, s = 2 * radius + 1, scale
    p, q = k * k + int(bias), s * s
    weights = torch.zeros_like(model.conv.weight, dtype=torch.float64)
    biases = torch.zeros(len(names) * q, dtype=torch.float64)
    normalisation, fit_mse, samples = {}, {}, {}
    for c, v in enumerate(names):
        mean = float(stats[f"{v}.mean"])
        std = float(stats[f"{v}.std"])
        if not np.isfinite(std) or std <= 0:
            std = 1.0  # a constant field: no scale to remove
        vec = _accumulate(
            low[v],
            high[v],
            ydim,
            xdim,
            scale=s,
            radius=radius,
            bias=bias,
            periodic=pair,
            mean=mean,
            std=std,
        )
        sol, mse, n = solve_normal_equations(vec, p=p, q=q, ridge=ridge, bias=bias, name=v)
        fit_mse[str(v)] = mse * std**2
        samples[str(v)] = n
        normalisation[str(v)] = {"mean": mean, "std": std}
        w = torch.as_tensor(sol[: k * k].T.reshape(q, 1, k, k))
        weights[c * q : (c + 1) * q] = w
        if bias:
            biases[c * q : (c + 1) * q] = torch.as_tensor(sol[-1])
    with torch.no_grad():
        model.conv.weight.copy_(weights.to(model.conv.weight.dtype))
        if bias:
            model.conv.bias.copy_(biases.to(model.conv.bias.dtype))
    model.eval()

    from xsr.models.card import ModelCard

    lead = {str(d): int(n) for d, n in high.sizes.items() if d not in (ydim, xdim)}
    label = "-".join(str(v) for v in names)
    model.card = ModelCard(
        name=name or f"linear-{label}-x{scale}",
        arch=model.arch,
        config=model.config,
        scale=model.scale,
        window=model.window,
        time_radius=model.time_radius,
        receptive_radius=model.receptive_radius,
        variables=[
            {
                "name": str(v),
                "units": str(data[v].attrs.get("units", "")),
                "long_name": str(data[v].attrs.get("long_name", v)),
            }
            for v in names
        ],
        normalisation=normalisation,
        degradation={"method": degrade, "scale": int(scale)},
        training={
            "method": "closed-form ridge least squares per sub-pixel phase (xsr.train.fit_linear)",
            "radius": int(radius),
            "bias": bool(bias),
            "ridge": float(ridge),
            "periodic": {str(ydim): bool(pair[0]), str(xdim): bool(pair[1])},
            "dims": {"time": str(time_dim), "y": str(ydim), "x": str(xdim)},
            "frames": lead,
            "samples": samples,
            "data_attrs": {k: str(val) for k, val in data.attrs.items() if k != "history"},
        },
        metrics={"split": "training", "mse": fit_mse},
        parameters=model.parameter_count(),
        sha256="",  # the weights' digest is filled in by xsr.models.files.save_model
    )
    return model

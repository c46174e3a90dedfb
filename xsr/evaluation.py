"""The comparisons every table makes: the classical baselines and the temporal ablations.

:func:`baselines` returns the baseline predictions for a low-resolution movie (``bicubic``,
``bicubic+conserve`` and, given a fitted :func:`xsr.train.fit_linear` model, ``linear``), to be
scored beside any model with :func:`xsr.metrics.score`. :func:`temporal_ablation` scores a
windowed model three ways: with its real neighbours, with the neighbours replaced by copies of
the centre frame (``centre-repeated``), and on a seeded shuffle of the frames (``time-shuffled``,
un-shuffled after upscaling). A gain counts as temporal only when it disappears in the ablations
(``docs/explanation/metrics.md``).

This is the xarray layer: everything goes through :func:`xsr.upscaling.upscale` and stays lazy on
dask input.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["ABLATIONS", "BASELINES", "baselines", "margin_over_baselines", "temporal_ablation"]

#: Names of the baseline rows, in table order (``linear`` only when a fitted model is given).
BASELINES: tuple[str, ...] = ("bicubic", "bicubic+conserve", "linear")
#: Suffixes of the ablation rows of :func:`temporal_ablation`.
ABLATIONS: tuple[str, ...] = ("centre-repeated", "time-shuffled")


def baselines(
    low: xr.Dataset | xr.DataArray,
    *,
    scale: int,
    linear: Any = None,
    dims: Sequence[Hashable] | None = None,
    periodic: Any = None,
    variables: Any = None,
) -> dict[str, xr.Dataset | xr.DataArray]:
    """The classical baseline predictions for a low-resolution movie.

    Parameters
    ----------
    low : xarray.Dataset or xarray.DataArray
        Low-resolution frames (e.g. ``xsr.degradation.degrade(truth, scale=...)``).
    scale : int
        Upscaling factor.
    linear : model, path or name, optional
        A fitted linear baseline (:func:`xsr.train.fit_linear`, or its saved file); it must
        have this ``scale``. Without it there is no ``linear`` row.
    dims : (str, str), optional
        Spatial dims.
    periodic : None, False, "x", "y" or ("y", "x")
        As for :func:`xsr.upscaling.upscale` (``None`` reads the data's own periodicity).
    variables : optional
        As for :func:`xsr.upscaling.upscale`, for every baseline.

    Returns
    -------
    dict
        ``{"bicubic": ..., "bicubic+conserve": ..., "linear": ...}`` (lazy on dask input), in
        the order of :data:`BASELINES`.

    Raises
    ------
    ValueError
        If the linear model's scale is not ``scale``.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> low = random_movie(3, 8, 8)
    >>> sorted(baselines(low, scale=2))
    ['bicubic', 'bicubic+conserve']
    """
    from xsr.upscaling import upscale

    common = {"dims": dims, "periodic": periodic, "variables": variables}
    out = {
        "bicubic": upscale(low, "bicubic", scale=scale, **common),
        "bicubic+conserve": upscale(low, "bicubic", scale=scale, conserve=True, **common),
    }
    if linear is not None:
        out["linear"] = upscale(low, linear, scale=scale, **common)
    return out


def margin_over_baselines(table: xr.Dataset, candidate: str, *, metric: str = "psnr") -> xr.Dataset:
    """A candidate's margin over the strongest baseline row of a score table, per variable.

    Parameters
    ----------
    table : xarray.Dataset
        A :func:`xsr.metrics.score` table holding ``candidate`` and at least one row named in
        :data:`BASELINES`.
    candidate : str
        The row to compare.
    metric : str, default "psnr"
        A higher-is-better column (``psnr``, ``psnr_frames`` or ``ssim``).

    Returns
    -------
    xarray.Dataset
        ``margin`` (the candidate's score minus the strongest baseline's) and ``strongest`` (that
        baseline's name), over ``variable``; computed.

    Raises
    ------
    ValueError
        If the candidate, the metric or every baseline row is missing.

    Examples
    --------
    >>> from xsr.metrics import score
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 16, 16, dtype="float64")
    >>> rows = {"bicubic": truth + 0.1, "linear": truth + 0.01, "mine": truth + 0.001}
    >>> m = margin_over_baselines(score(rows, truth, data_range=1.0), "mine")
    >>> round(float(m["margin"].sel(variable="h")), 6), str(m["strongest"].sel(variable="h").values)
    (20.0, 'linear')
    """
    names = [str(c) for c in table["candidate"].values]
    base = [b for b in BASELINES if b in names and b != candidate]
    if candidate not in names:
        raise ValueError(f"The table has no row {candidate!r}; its rows are {names}.")
    if metric not in ("psnr", "psnr_frames", "ssim") or metric not in table:
        raise ValueError(f"metric must be 'psnr', 'psnr_frames' or 'ssim', got {metric!r}.")
    if not base:
        raise ValueError(
            f"The table has no baseline row ({', '.join(BASELINES)}); add them with "
            "xsr.evaluation.baselines()."
        )
    values = table[metric].compute()
    best = values.sel(candidate=base)
    strongest = best["candidate"].isel(candidate=best.fillna(-np.inf).argmax("candidate"))
    margin = values.sel(candidate=candidate) - best.max("candidate")
    out = xr.Dataset(
        {
            "margin": margin.reset_coords(drop=True),
            "strongest": strongest.reset_coords(drop=True).astype(str),
        }
    )
    out["margin"].attrs = {
        "long_name": f"{candidate} minus the strongest baseline",
        "metric": metric,
    }
    if metric != "ssim":
        out["margin"].attrs["units"] = "dB"
    return out


def _time_index(obj: xr.Dataset | xr.DataArray, time_dim: Hashable) -> int:
    if time_dim not in obj.dims:
        raise ValueError(
            f"temporal_ablation needs the time dimension {time_dim!r}; the data has dims "
            f"{tuple(obj.dims)}. Pass time_dim=."
        )
    return int(obj.sizes[time_dim])


def temporal_ablation(
    model: Any,
    low: xr.Dataset | xr.DataArray,
    truth: xr.Dataset | xr.DataArray,
    *,
    name: str | None = None,
    scale: int | None = None,
    seed: int = 0,
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    periodic: Any = None,
    conserve: bool = False,
    time_boundary: str = "reflect",
    variables: Any = None,
    **score_kwargs: Any,
) -> xr.Dataset:
    """Score a model with its real neighbours, with the centre frame repeated, on shuffled time.

    * real: :func:`xsr.upscaling.upscale` as it is;
    * ``centre-repeated``: every frame upscaled from a window made of ``window`` copies of
      itself (the movie with each frame repeated ``window`` times is upscaled and the middle
      copy of each run kept), so the neighbours carry nothing;
    * ``time-shuffled``: the low-resolution frames in a seeded random order (``seed``),
      upscaled, and put back in order, so the neighbours are unrelated frames.

    A 2-D model (``window == 1``) gets three equal rows. The three predictions are scored with
    :func:`xsr.metrics.score` against ``truth``.

    Parameters
    ----------
    model : str, path or xsr model
        As for :func:`xsr.upscaling.upscale`.
    low : xarray.Dataset or xarray.DataArray
        Low-resolution movie with the time dimension.
    truth : xarray.Dataset or xarray.DataArray
        High-resolution truth of the same frames.
    name : str, optional
        Row label of the real prediction (default: the model card's name, else its arch); the
        ablations are ``"<name> centre-repeated"`` and ``"<name> time-shuffled"``.
    scale : int, optional
        Only for ``model="bicubic"``; default the ratio of the truth's to the input's size.
    seed : int, default 0
        Seed of the permutation.
    dims, time_dim, periodic, conserve, time_boundary, variables
        As for :func:`xsr.upscaling.upscale`.
    **score_kwargs
        Passed to :func:`xsr.metrics.score` (``data_range``, ``crop``, ``exclude_spin_up``,
        ...; ``dims``, ``time_dim`` and ``periodic`` are shared).

    Returns
    -------
    xarray.Dataset
        The :func:`xsr.metrics.score` table with the three rows as candidates; its attributes
        add ``window`` and ``shuffle_seed``.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> from xsr.degradation import degrade
    >>> truth = random_movie(4, 16, 16, dtype="float64")
    >>> table = temporal_ablation("bicubic", degrade(truth, scale=2), truth, name="bicubic")
    >>> table["candidate"].values.tolist()
    ['bicubic', 'bicubic centre-repeated', 'bicubic time-shuffled']
    """
    from xsr.coords import spatial_dims
    from xsr.metrics import score
    from xsr.upscaling import _resolve_model, upscale

    nt = _time_index(low, time_dim)
    if scale is None and isinstance(model, str) and model == "bicubic":
        # a parameter-free interpolation has no scale of its own: the truth's size ratio
        x_low, x_truth = spatial_dims(low, dims)[1], spatial_dims(truth, dims)[1]
        scale = max(1, round(truth.sizes[x_truth] / low.sizes[x_low]))
    net, default_name = _resolve_model(model, scale, [])
    window = int(getattr(net, "window", 1))
    label = name or default_name
    common: dict[str, Any] = {
        "dims": dims,
        "time_dim": time_dim,
        "periodic": periodic,
        "conserve": conserve,
        "time_boundary": time_boundary,
        "variables": variables,
    }
    real = upscale(low, net, **common)

    radius = window // 2
    repeated = low.isel({time_dim: np.repeat(np.arange(nt), window)})
    centre = upscale(repeated, net, **common).isel({time_dim: np.arange(nt) * window + radius})

    perm = np.random.default_rng(seed).permutation(nt)
    shuffled = upscale(low.isel({time_dim: perm}), net, **common)
    shuffled = shuffled.isel({time_dim: np.argsort(perm)})

    rows = {
        label: real,
        f"{label} centre-repeated": centre,
        f"{label} time-shuffled": shuffled,
    }
    table = score(rows, truth, dims=dims, time_dim=time_dim, periodic=periodic, **score_kwargs)
    table.attrs["window"] = window
    table.attrs["shuffle_seed"] = int(seed)
    return table

"""Comparison figures: super-resolved frames against the truth, and metric curves over time.

matplotlib is imported inside the functions, and figures are built with
:class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no global figure manager,
no backend switch, no ``show()``; the caller saves, displays (a ``Figure`` renders itself in
Jupyter) or discards the returned figure. Only the frames drawn are computed from lazy input.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr.coords import spatial_dims

__all__ = ["plot_compare", "plot_psnr_over_time"]


def _pick(obj: Any, variable: Hashable | None, argname: str, dims: Any) -> xr.DataArray:
    """The DataArray to draw from ``obj`` (a DataArray, or a Dataset and ``variable``)."""
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(
            f"{argname} must be an xarray.DataArray or xarray.Dataset, got {type(obj).__name__}"
        )
    if variable is not None:
        if variable not in obj.data_vars:
            raise ValueError(
                f"variable={variable!r} is not a data variable of {argname} (data variables: "
                f"{list(obj.data_vars)})"
            )
        return obj[variable]
    ydim, xdim = spatial_dims(obj, dims)
    for da in obj.data_vars.values():
        if ydim in da.dims and xdim in da.dims:
            return da
    raise ValueError(f"{argname} has no data variable with dims {(ydim, xdim)}; pass variable=")


def _frame(
    da: xr.DataArray,
    time: Any,
    time_dim: Hashable,
    ydim: Hashable,
    xdim: Hashable,
    argname: str,
) -> xr.DataArray:
    """One ``(y, x)`` frame of ``da`` (lazy if ``da`` is)."""
    for dim in (ydim, xdim):
        if dim not in da.dims:
            raise ValueError(
                f"{argname} lacks the spatial dimension {dim!r} (dims {da.dims}); pass dims="
            )
    if time_dim in da.dims:
        if isinstance(time, (int, np.integer)) and not isinstance(time, bool):
            n = da.sizes[time_dim]
            if not -n <= time < n:
                raise ValueError(
                    f"time={time} is out of range for {argname}, which has {n} steps along "
                    f"{time_dim!r}"
                )
            da = da.isel({time_dim: int(time)})
        else:
            da = da.sel({time_dim: time}, method="nearest")
    extra = [d for d in da.dims if d not in (ydim, xdim)]
    if extra:
        raise ValueError(
            f"{argname} has dimensions {extra} besides the spatial {(ydim, xdim)} and time "
            f"{time_dim!r}; select one element first, e.g. {argname}.isel({extra[0]}=0), or "
            "name the time dimension with time_dim="
        )
    return da.transpose(ydim, xdim)


def _edges(coord: np.ndarray | None, n: int, stretch: float = 1.0) -> np.ndarray:
    """Cell edges from cell centres (or ``stretch``-scaled pixel indices without coordinates)."""
    if coord is None or coord.dtype.kind not in "iuf" or coord.size != n:
        return np.arange(n + 1, dtype="float64") * stretch
    c = coord.astype("float64")
    if n == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[:-1] + c[1:])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _coord(da: xr.DataArray, dim: Hashable) -> np.ndarray | None:
    if dim in da.coords and da[dim].ndim == 1:
        return np.asarray(da[dim].values)
    return None


def _psnr(pred: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    valid = np.isfinite(pred) & np.isfinite(truth)
    if not valid.any() or not data_range > 0:
        return float("nan")
    mse = float(np.mean((pred[valid] - truth[valid]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def _fmt_db(value: float) -> str:
    return "PSNR inf" if np.isinf(value) else f"PSNR {value:.2f} dB"


def plot_compare(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    lowres: xr.DataArray | xr.Dataset | None = None,
    baseline: xr.DataArray | xr.Dataset | bool | None = None,
    time: Any = 0,
    variable: Hashable | None = None,
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    label: str = "model",
    cmap: str = "viridis",
    error_cmap: str = "RdBu_r",
    ax: Sequence[Any] | None = None,
    figsize: tuple[float, float] | None = None,
    path: str | Path | None = None,
    dpi: int = 120,
) -> Any:
    """Side-by-side panels: low-res / interpolation / model / truth / error, for one frame.

    Field panels share one colour scale (the truth frame's range); the error panel shows
    ``prediction - truth`` with a diverging colour map centred at 0. The model and interpolation
    panels state their PSNR against the truth, with the data range (the truth frame's
    ``max - min``) in the figure title. NaN cells (land masks) are drawn in light grey.

    Parameters
    ----------
    prediction : xarray.DataArray or xarray.Dataset
        Super-resolved data on the truth's grid.
    truth : xarray.DataArray or xarray.Dataset
        High-resolution reference.
    lowres : xarray.DataArray or xarray.Dataset, optional
        The low-resolution input; adds a "low-res" panel.
    baseline : xarray.DataArray, xarray.Dataset or bool, optional
        Interpolation panel on the truth's grid. ``None`` (default) computes bicubic
        interpolation of ``lowres`` with :func:`xsr.upscaling.upscale` when ``lowres`` is given;
        ``False`` leaves the panel out.
    time : int or label, default 0
        Frame to draw: an integer position along ``time_dim``, or a label (nearest match).
    variable : hashable, optional
        Data variable of Dataset inputs (default: the first one with both spatial dims).
    dims : (str, str), optional
        ``(y, x)`` dimension names; found by name or CF ``axis`` otherwise.
    time_dim : hashable, default "time"
        Name of the time dimension (ignored when absent).
    label : str, default "model"
        Title of the prediction panel.
    cmap, error_cmap : str
        Colour maps of the field panels and of the error panel.
    ax : sequence of matplotlib Axes, optional
        Axes to draw into, one per panel; default: a new figure with one row of panels.
    figsize : (float, float), optional
        Size of a new figure in inches.
    path : str or path, optional
        Also save the figure there (format from the suffix).
    dpi : int, default 120
        Resolution when saving.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not shown; built without ``pyplot``).

    Raises
    ------
    ValueError
        Mismatched grids, a scale that is not an integer, an out-of-range ``time``, unknown
        ``variable``, extra dimensions, or a wrong number of ``ax``.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 16, 16)
    >>> fig = plot_compare(truth["h"] + 0.1, truth["h"], time=1)
    >>> [a.get_title().split("\\n")[0] for a in fig.axes[:3]]
    ['model', 'truth', 'error (model - truth)']
    """
    import dask
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    truth_da = _pick(truth, variable, "truth", dims)
    name = truth_da.name if variable is None else variable
    pred_da = _pick(
        prediction, name if isinstance(prediction, xr.Dataset) else None, "prediction", dims
    )
    ydim, xdim = spatial_dims(truth_da, dims)
    frames = {
        "prediction": _frame(pred_da, time, time_dim, ydim, xdim, "prediction"),
        "truth": _frame(truth_da, time, time_dim, ydim, xdim, "truth"),
    }
    if frames["prediction"].shape != frames["truth"].shape:
        raise ValueError(
            f"prediction {frames['prediction'].shape} and truth {frames['truth'].shape} differ in "
            f"shape along {(ydim, xdim)}; they must be on the same grid"
        )
    fine_shape = frames["truth"].shape
    scale = None
    if lowres is not None:
        low_da = _pick(lowres, name if isinstance(lowres, xr.Dataset) else None, "lowres", dims)
        frames["lowres"] = _frame(low_da, time, time_dim, ydim, xdim, "lowres")
        ratios = [f / c for f, c in zip(fine_shape, frames["lowres"].shape)]
        if ratios[0] != ratios[1] or not float(ratios[0]).is_integer() or ratios[0] < 1:
            raise ValueError(
                f"lowres {frames['lowres'].shape} is not the truth {fine_shape} coarsened by one "
                "integer factor in both spatial dims"
            )
        scale = int(ratios[0])
    base_label = "interpolation"
    if baseline is None and lowres is not None:
        from xsr.upscaling import upscale

        frames["baseline"] = upscale(frames["lowres"], "bicubic", scale=scale, dims=(ydim, xdim))
        base_label = f"bicubic x{scale}"
    elif baseline is not None and baseline is not False:
        if baseline is True:
            raise ValueError("baseline=True is ambiguous: pass lowres= (bicubic) or a DataArray")
        base_da = _pick(
            baseline, name if isinstance(baseline, xr.Dataset) else None, "baseline", dims
        )
        frames["baseline"] = _frame(base_da, time, time_dim, ydim, xdim, "baseline")
    if "baseline" in frames and frames["baseline"].shape != fine_shape:
        raise ValueError(
            f"baseline {frames['baseline'].shape} is not on the truth's grid {fine_shape}"
        )

    keys = list(frames)
    values = dask.compute(*[frames[k].data for k in keys])  # one compute: only these frames
    data = {k: np.asarray(v, dtype="float64") for k, v in zip(keys, values)}

    truth_vals = data["truth"]
    finite = truth_vals[np.isfinite(truth_vals)]
    if finite.size == 0:
        finite = data["prediction"][np.isfinite(data["prediction"])]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    data_range = vmax - vmin
    error = data["prediction"] - truth_vals
    limit = float(np.nanmax(np.abs(error))) if np.isfinite(error).any() else 0.0
    limit = limit if limit > 0 else 1.0

    panels: list[tuple[str, str, np.ndarray]] = []  # (key, title, values)
    if "lowres" in data:
        panels.append(("lowres", "low-res ({}x{})".format(*data["lowres"].shape), data["lowres"]))
    if "baseline" in data:
        psnr = _psnr(data["baseline"], truth_vals, data_range)
        panels.append(("baseline", f"{base_label}\n{_fmt_db(psnr)}", data["baseline"]))
    psnr = _psnr(data["prediction"], truth_vals, data_range)
    panels.append(("prediction", f"{label}\n{_fmt_db(psnr)}", data["prediction"]))
    panels.append(("truth", "truth", truth_vals))
    panels.append(("error", f"error ({label} - truth)", error))

    n = len(panels)
    if ax is None:
        fig = Figure(figsize=figsize or (3.4 * n, 3.6), layout="constrained")
        axes = list(fig.subplots(1, n, squeeze=False)[0])
    else:
        axes = list(np.ravel(ax))
        if len(axes) != n:
            raise ValueError(f"ax must hold {n} Axes (one per panel: {[p[0] for p in panels]})")
        fig = axes[0].figure

    y_fine, x_fine = _coord(frames["truth"], ydim), _coord(frames["truth"], xdim)
    same_units = (
        truth_da[ydim].attrs.get("units") == truth_da[xdim].attrs.get("units")
        if ydim in truth_da.coords and xdim in truth_da.coords
        else True
    )
    field_cmap = colormaps[cmap].with_extremes(bad="0.85")
    err_cmap = colormaps[error_cmap].with_extremes(bad="0.85")
    units = truth_da.attrs.get("units", "")
    for axis, (key, title, values_2d) in zip(axes, panels):
        if key == "lowres":
            low = frames["lowres"]
            ny, nx = values_2d.shape
            ye = _edges(_coord(low, ydim), ny, scale or 1)
            xe = _edges(_coord(low, xdim), nx, scale or 1)
        else:
            ye = _edges(y_fine, fine_shape[0])
            xe = _edges(x_fine, fine_shape[1])
        masked = np.ma.masked_invalid(values_2d)
        if key == "error":
            mesh = axis.pcolormesh(xe, ye, masked, cmap=err_cmap, vmin=-limit, vmax=limit)
        else:
            mesh = axis.pcolormesh(xe, ye, masked, cmap=field_cmap, vmin=vmin, vmax=vmax)
        colorbar = fig.colorbar(mesh, ax=axis, shrink=0.8)
        if units:
            colorbar.set_label(units)
        axis.set_title(title, fontsize="medium")
        axis.set_xlabel(str(xdim))
        axis.set_ylabel(str(ydim))
        if same_units:
            axis.set_aspect("equal")
    when = ""
    if time_dim in truth_da.dims:
        stamp = frames["truth"].coords.get(time_dim)
        when = f" at {time_dim}={stamp.values if stamp is not None else time}"
    fig.suptitle(
        f"{name if name is not None else ''}{when}; PSNR data range {data_range:.4g} "
        "(truth frame max - min)",
        fontsize="medium",
    )
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def _curves(
    table_or_dict: xr.Dataset | Mapping[str, Any], metric: str, variable: Hashable | None
) -> list[tuple[Hashable | None, dict[str, xr.DataArray], xr.DataArray]]:
    """``[(variable, {candidate: per-frame curve}, metric DataArray), ...]``, one per panel.

    The metric DataArray of each panel carries the data range (coordinate or attributes).
    """
    if isinstance(table_or_dict, xr.Dataset):
        table = table_or_dict
        if metric not in table.data_vars or "candidate" not in table.dims:
            raise ValueError(
                f"table_or_dict must be the Dataset of xsr.metrics.compare (a {metric!r} "
                "variable with a 'candidate' dimension) or a dict {name: per-frame DataArray}"
            )
        da = table[metric]
        if "data_range_source" not in da.attrs and "data_range_source" in table.attrs:
            da = da.assign_attrs(data_range_source=table.attrs["data_range_source"])
        if "variable" in da.dims:
            names = list(da["variable"].values)
            if variable is not None:
                if variable not in names:
                    raise ValueError(f"variable={variable!r} is not in the table ({names})")
                names = [variable]
            groups = [(v, da.sel(variable=v).drop_vars("variable")) for v in names]
        else:
            groups = [(None, da)]
        return [
            (var, {str(c): sub.sel(candidate=c, drop=True) for c in sub["candidate"].values}, sub)
            for var, sub in groups
        ]
    if isinstance(table_or_dict, Mapping):
        if not table_or_dict:
            raise ValueError("table_or_dict is empty: give at least one candidate")
        curves = {}
        for key, value in table_or_dict.items():
            if not isinstance(value, xr.DataArray):
                value = np.asarray(value)
                value = xr.DataArray(value, dims=["frame"] if value.ndim == 1 else None)
            curves[str(key)] = value
        return [(None, curves, next(iter(curves.values())))]
    raise TypeError(
        "table_or_dict must be an xarray.Dataset from xsr.metrics.compare or a dict of "
        f"per-frame DataArrays, got {type(table_or_dict).__name__}"
    )


def _range_note(da: xr.DataArray) -> str:
    """How the PSNR/SSIM data range was set, as far as ``da`` says."""
    for key, coord in da.coords.items():
        if str(key).startswith("data_range") and coord.ndim == 0:
            return f"data range {float(coord.values):.4g}"
    value = da.attrs.get("data_range")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"data range {value:.4g}"
    source = da.attrs.get("data_range_source")
    return f"data range: {source}" if source else ""


def plot_psnr_over_time(
    table_or_dict: xr.Dataset | Mapping[str, Any],
    path: str | Path | None = None,
    *,
    metric: str = "psnr",
    variable: Hashable | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 120,
) -> Any:
    """Per-frame metric curves (PSNR by default) of several candidates, one line each.

    Parameters
    ----------
    table_or_dict : xarray.Dataset or dict
        The Dataset of :func:`xsr.metrics.compare` (one line per ``candidate``, one panel per
        ``variable`` when it has that dimension), or ``{name: per-frame DataArray or array}``.
    path : str or path, optional
        Also save the figure there.
    metric : str, default "psnr"
        Metric variable of the table to draw (``"ssim"``, ``"rmse"``, ...).
    variable : hashable, optional
        Draw only this variable of a multi-variable table.
    ax : matplotlib Axes, optional
        Axes to draw into (single-panel plots only); default: a new figure.
    figsize : (float, float), optional
        Size of a new figure in inches.
    dpi : int, default 120
        Resolution when saving.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not shown; built without ``pyplot``). The x axis is the curve's one
        dimension (its coordinate values, with units, when present); PSNR and SSIM panels state
        their data range. Infinite values (identical frames) leave a gap.

    Raises
    ------
    ValueError
        A table without ``metric`` or ``candidate``, an empty dict, an unknown ``variable``, or
        curves that are not one value per frame.

    Examples
    --------
    >>> from xsr.metrics import compare
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(5, 16, 16, dtype="float64")["h"]
    >>> table = compare(truth, good=truth + 0.01, bad=truth + 0.3)
    >>> fig = plot_psnr_over_time(table)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['good', 'bad']
    """
    import dask
    from matplotlib.figure import Figure

    groups = _curves(table_or_dict, metric, variable)
    for _, curves, _ in groups:
        for cand, curve in curves.items():
            curves[cand] = curve = curve.squeeze(drop=True)
            if curve.ndim != 1:
                raise ValueError(
                    f"the {metric} curve of {cand!r} has dims {curve.dims}; give one value per "
                    "frame (a 1-D DataArray along time)"
                )
    # One compute for every curve and data range of a lazy table.
    (groups,) = dask.compute(groups)
    n = len(groups)
    if ax is None:
        fig = Figure(figsize=figsize or (5.5 * n, 3.6), layout="constrained")
        axes = list(fig.subplots(1, n, squeeze=False)[0])
    else:
        if n != 1:
            raise ValueError(
                f"ax= draws one panel, but the table has {n} variables; pass variable="
            )
        axes = [ax]
        fig = ax.figure
    unit = "dB" if metric == "psnr" else ""
    with_range = metric in ("psnr", "ssim")
    for axis, (var, curves, source) in zip(axes, groups):
        for cand, curve in curves.items():
            dim = curve.dims[0]
            x = curve[dim].values if dim in curve.coords else np.arange(curve.size)
            y = np.asarray(curve.values, dtype="float64")
            y = np.where(np.isfinite(y), y, np.nan)  # identical frames (inf dB) leave a gap
            axis.plot(x, y, marker="o" if curve.size <= 30 else None, ms=3, label=cand)
            units = curve[dim].attrs.get("units") if dim in curve.coords else None
            axis.set_xlabel(f"{dim} ({units})" if units else str(dim))
        axis.set_ylabel(f"{metric.upper()}{f' ({unit})' if unit else ''}")
        title = str(var) if var is not None else f"{metric.upper()} per frame"
        note = _range_note(source) if with_range else ""
        axis.set_title(f"{title}{f' ({note})' if note else ''}", fontsize="medium")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig

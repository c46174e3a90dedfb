"""Degradation operators: make a coarse version of a gridded movie.

Two named operators are shared by training, evaluation and the consistency layer:

``coarsen``
    Block mean over ``scale x scale`` cells; the conservative default for physical fields
    (mass-conserving, optionally area-weighted by ``cos(latitude)``).
``bicubic``
    Antialiased bicubic downscaling (torch ``F.interpolate(mode="bicubic", antialias=True)``),
    the report's protocol for building low-resolution inputs.

Both are lazy on dask input and work on Datasets and DataArrays with any extra dimensions.
torch is imported only inside the bicubic kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsr._version import __version__
from xsr.coords import append_history, coarsen_axis, coarsen_bounds, spatial_dims
from xsr.coords import is_latitude as _is_latitude

__all__ = ["METHODS", "degrade"]

#: Names of the degradation operators.
METHODS: tuple[str, ...] = ("coarsen", "bicubic")

_BY = "_xsr_block_y"
_BX = "_xsr_block_x"


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)):
        raise ValueError(
            f"scale must be a positive integer (e.g. scale=2), got {scale!r} "
            f"({type(scale).__name__})."
        )
    if scale < 1:
        raise ValueError(f"scale must be a positive integer (e.g. scale=2), got {scale}.")
    return int(scale)


def _is_dask(data: Any) -> bool:
    return hasattr(data, "dask") or type(data).__module__.startswith("dask")


def _aligned_chunks(chunks: tuple[int, ...], scale: int) -> tuple[int, ...] | int:
    """Chunks along one axis holding whole blocks of ``scale`` (unchanged when they already do)."""
    if not any(c % scale for c in chunks):
        return chunks
    return max(scale, round(float(np.mean(chunks)) / scale) * scale)


def _block_sum(x: np.ndarray, axes: tuple[int, ...], scale: int) -> np.ndarray:
    """Sums over consecutive ``scale``-blocks along ``axes`` (strided adds: fast in numpy)."""
    for ax in axes:
        if x.shape[ax] == 1:  # a broadcast weight axis
            x = x * scale
            continue
        parts = [x[(slice(None),) * ax + (slice(k, None, scale),)] for k in range(scale)]
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        x = total
    return x


def _block_mean_kernel(
    a: np.ndarray,
    w: np.ndarray | None = None,
    *,
    axes: tuple[int, ...],
    scale: int,
    dtype: np.dtype,
) -> np.ndarray:
    """NaN-ignoring (optionally weighted) means over ``scale``-blocks along ``axes`` of ``a``.

    ``w`` (or None) has ``a``'s ndim with size 1 on the axes it does not vary along. Sums are
    accumulated in float64, so the rounded result does not depend on the chunking.
    """
    x = np.array(a, dtype="float64")
    nan = np.isnan(x)
    has_nan = bool(nan.any())
    if has_nan:
        x[nan] = 0.0
    if w is not None:
        w = np.asarray(w, dtype="float64")
        x *= w
    total = _block_sum(x, axes, scale)
    if not has_nan:
        if w is None:
            count: Any = float(scale ** len(axes))
        else:
            count = _block_sum(w, axes, scale)
    else:
        valid = (~nan).astype("float64")
        count = _block_sum(valid if w is None else valid * w, axes, scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    if has_nan or w is not None:
        out = np.where(np.broadcast_to(count, out.shape) > 0, out, np.nan)
    return out.astype(dtype, copy=False)


def _block_mean(
    da: xr.DataArray,
    dims: Sequence[Hashable],
    scale: int,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """NaN-ignoring (optionally weighted) mean over ``scale``-blocks along ``dims``.

    All-NaN blocks give NaN. Integers and booleans give float64; floats keep their dtype.
    """
    dtype = da.dtype if np.issubdtype(da.dtype, np.floating) else np.dtype("float64")
    axes = tuple(sorted(da.get_axis_num(d) for d in dims))
    w = None
    if weights is not None and set(weights.dims) <= set(dims):
        missing = [d for d in da.dims if d not in weights.dims]
        w = weights.expand_dims(missing).transpose(*da.dims).data
    kernel = functools.partial(_block_mean_kernel, axes=axes, scale=scale, dtype=dtype)
    data = da.data
    if not _is_dask(data):
        return xr.DataArray(
            kernel(np.asarray(data), None if w is None else np.asarray(w)), dims=da.dims
        )

    import dask.array as dsa

    data = data.rechunk({ax: _aligned_chunks(data.chunks[ax], scale) for ax in axes})
    out_chunks = tuple(
        tuple(c // scale for c in ch) if ax in axes else ch for ax, ch in enumerate(data.chunks)
    )
    if w is None:
        out = dsa.map_blocks(
            kernel,
            data,
            chunks=out_chunks,
            dtype=dtype,
            meta=np.array((), dtype),
        )
    else:
        w_chunks = tuple(data.chunks[ax] if w.shape[ax] > 1 else (1,) for ax in range(data.ndim))
        w = dsa.asarray(w).rechunk(w_chunks)
        out = dsa.map_blocks(
            kernel, data, w, chunks=out_chunks, dtype=dtype, meta=np.array((), dtype)
        )
    return xr.DataArray(out, dims=da.dims)


def _bicubic_kernel(arr: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale of the last two axes of a numpy array by ``scale``."""
    import torch
    import torch.nn.functional as F

    *lead, h, w = arr.shape
    out_shape = (*lead, h // scale, w // scale)
    if arr.size == 0 or scale == 1:
        return arr.copy() if scale == 1 else np.empty(out_shape, dtype=arr.dtype)
    x = torch.from_numpy(np.ascontiguousarray(arr).reshape(-1, 1, h, w))
    with torch.no_grad():
        y = F.interpolate(
            x, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False
        )
    return y.numpy().reshape(out_shape)


def _bicubic(da: xr.DataArray, ydim: Hashable, xdim: Hashable, scale: int) -> xr.DataArray:
    dtype = da.dtype if da.dtype in (np.float32, np.float64) else np.dtype("float32")
    bare = xr.DataArray(da.data, dims=da.dims).astype(dtype, copy=False)
    if bare.chunks is not None:
        bare = bare.chunk({ydim: -1, xdim: -1})
    ny, nx = bare.sizes[ydim] // scale, bare.sizes[xdim] // scale
    out = xr.apply_ufunc(
        _bicubic_kernel,
        bare,
        kwargs={"scale": scale},
        input_core_dims=[[ydim, xdim]],
        output_core_dims=[[_BY, _BX]],
        exclude_dims={ydim, xdim},
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": {_BY: ny, _BX: nx}},
    )
    return out.rename({_BY: ydim, _BX: xdim}).transpose(*da.dims)


def _coarsen_dim_coord(name: Hashable, var: xr.Variable, scale: int) -> np.ndarray:
    """Block means of a 1-D dimension coordinate, aware of longitudes and pole cells."""
    return coarsen_axis(xr.DataArray(var, name=name), scale)


def _find_latitude(obj: xr.Dataset | xr.DataArray, ydim: Hashable, xdim: Hashable) -> xr.DataArray:
    """The latitude (degrees) of the cell centres: the 1-D ``ydim`` coordinate or a 2-D one."""
    if ydim in obj.coords and _is_latitude(obj.coords[ydim], ydim):
        return obj.coords[ydim]
    for name, coord in obj.coords.items():
        if set(coord.dims) == {ydim, xdim} and _is_latitude(coord, name):
            return coord.transpose(ydim, xdim)
    raise ValueError(
        f"area_weighted=True needs a latitude in degrees: the y dimension {ydim!r} as a latitude "
        f"coordinate, or a 2-D ({ydim!r}, {xdim!r}) coordinate named lat/latitude/nav_lat or "
        "with units='degrees_north'; use area_weighted=False for projected grids."
    )


def _bounds_names(obj: xr.Dataset | xr.DataArray, dims: Sequence[Hashable]) -> dict[Hashable, Any]:
    """Map bounds-variable name -> the spatial dim it bounds (CF ``bounds`` attr or ``<dim>_bnds``)."""
    variables = obj.variables if isinstance(obj, xr.Dataset) else obj.coords
    found: dict[Hashable, Any] = {}
    for dim in dims:
        if dim not in obj.coords:
            continue
        candidates = [obj.coords[dim].attrs.get("bounds"), f"{dim}_bnds", f"{dim}_bounds"]
        for cand in candidates:
            if cand is None or cand not in variables:
                continue
            var = variables[cand]
            if var.ndim == 2 and dim in var.dims:
                other = next(d for d in var.dims if d != dim)
                if var.sizes[other] == 2:
                    found[cand] = dim
                    break
    return found


def _coarsen_bounds_var(var: xr.Variable, dim: Hashable, scale: int) -> xr.Variable:
    other = next(d for d in var.dims if d != dim)
    v = var.transpose(dim, other)
    if _is_dask(v.data):
        import dask.array as dsa

        data = v.data
        new = dsa.stack([data[0::scale, 0], data[scale - 1 :: scale, 1]], axis=1)
    else:
        new = coarsen_bounds(np.asarray(v.values), scale)
    return xr.Variable((dim, other), new, attrs=var.attrs).transpose(*var.dims)


def _degrade_array(
    da: xr.DataArray,
    name: Hashable,
    ydim: Hashable,
    xdim: Hashable,
    scale: int,
    method: str,
    weights: xr.DataArray | None,
    is_coord: bool = False,
) -> xr.Variable:
    present = [d for d in (ydim, xdim) if d in da.dims]
    if da.dtype.kind not in "biuf":
        raise TypeError(
            f"Variable {name!r} has dtype {da.dtype}, which cannot be degraded; only real "
            "numeric (or boolean) variables can. Drop it first, e.g. ds.drop_vars(...)."
        )
    if da.size == 0:
        raise ValueError(
            f"Variable {name!r} is empty (shape {da.shape}); there is nothing to degrade."
        )
    if method == "bicubic" and len(present) == 2 and not is_coord:
        out = _bicubic(da, ydim, xdim, scale)
    else:
        out = _block_mean(da, present, scale, None if is_coord else weights)
    attrs = dict(da.attrs)
    if method == "coarsen" and not is_coord and len(present) == 2:
        how = "mean (area-weighted)" if weights is not None else "mean"
        entry = f"{ydim}: {xdim}: {how}"
        prev = str(attrs.get("cell_methods", "")).strip()
        attrs["cell_methods"] = f"{prev} {entry}".strip()
    return xr.Variable(out.dims, out.data, attrs=attrs, encoding={})


def degrade(
    obj: xr.Dataset | xr.DataArray,
    *,
    scale: int,
    method: Literal["coarsen", "bicubic"] = "coarsen",
    dims: Sequence[Hashable] | None = None,
    boundary: Literal["exact", "trim"] = "exact",
    area_weighted: bool = False,
) -> xr.Dataset | xr.DataArray:
    """Reduce the spatial resolution of a gridded movie by an integer factor.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Input with two spatial dimensions and any others (time, member, level, ...). May be
        dask-backed; the result is then lazy.
    scale : int
        Positive integer factor; each output cell covers ``scale x scale`` input cells.
    method : {"coarsen", "bicubic"}
        ``"coarsen"``: block mean. NaNs are ignored within a block (a NaN-aware mean), and a
        block that is entirely NaN stays NaN, so land masks survive. Integer and boolean
        variables give float64 (float inputs keep their dtype). ``"bicubic"``: antialiased
        bicubic downscaling of every 2-D frame (torch ``F.interpolate(mode="bicubic",
        antialias=True, align_corners=False)``); integers are cast to float32, float64 stays
        float64. NaNs propagate to every coarse cell whose kernel touches them. The spatial
        dims are merged into one dask chunk per frame; other dims keep their chunks.
    dims : pair of str, optional
        ``(y_dim, x_dim)``; found by :func:`xsr.coords.spatial_dims` when omitted.
    boundary : {"exact", "trim"}
        ``"exact"`` raises when a spatial size is not a multiple of ``scale``; ``"trim"`` drops
        the trailing rows/columns that do not fill a whole block.
    area_weighted : bool
        ``coarsen`` only: weight each cell by ``cos(latitude)`` of its centre. The latitude (in
        degrees) is the y dimension coordinate (named ``lat``/``latitude``/``rlat``, or with CF
        ``standard_name`` ``latitude``/``grid_latitude`` or ``units`` ``degrees_north``) or else
        a 2-D ``(y, x)`` coordinate recognised the same way (e.g. NEMO's ``nav_lat``). NaN
        cells carry no weight. Variables with a single spatial dim and a 2-D latitude are
        averaged unweighted.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        Same type as ``obj``. Data variables (and 2-D auxiliary coordinates) with the spatial
        dims are degraded; variables holding only one spatial dim are block-averaged along it;
        the rest pass through unchanged. The coarse 1-D coordinates are the block means of the
        fine ones (:func:`xsr.coords.coarsen_coord`; a longitude that jumps across the date
        line is unwrapped first and wrapped back into its original range), CF bounds variables are recomputed
        (:func:`xsr.coords.coarsen_bounds`), attributes are kept (``coarsen`` adds a CF
        ``cell_methods`` entry), and a line is appended to ``history``.

    Raises
    ------
    ValueError
        Invalid ``scale``/``method``/``boundary``/``dims``; a spatial size that is zero, smaller
        than ``scale`` or (with ``boundary="exact"``) not divisible by it; an empty variable;
        ``area_weighted`` without a latitude or with ``bicubic``; a Dataset with no variable on
        the spatial dims.
    TypeError
        A variable on the spatial dims is not real numeric.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> ds = random_movie(4, 8, 8)
    >>> lo = degrade(ds, scale=2)
    >>> lo["h"].shape
    (4, 4, 4)
    >>> float(lo["x"][0]) == float(ds["x"][:2].mean())
    True
    >>> degrade(ds["h"], scale=2, method="bicubic").dtype
    dtype('float32')
    """
    scale = _check_scale(scale)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if boundary not in ("exact", "trim"):
        raise ValueError(f"boundary must be 'exact' or 'trim', got {boundary!r}.")
    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise TypeError(
            f"obj must be an xarray Dataset or DataArray, got {type(obj).__name__}; wrap numpy "
            "arrays with xr.DataArray(array, dims=(..., 'y', 'x'))."
        )
    if area_weighted and method != "coarsen":
        raise ValueError("area_weighted=True applies to method='coarsen' only.")
    ydim, xdim = spatial_dims(obj, dims)

    trim: dict[Hashable, slice] = {}
    for dim in (ydim, xdim):
        n = obj.sizes[dim]
        if n == 0:
            raise ValueError(f"Spatial dimension {dim!r} is empty (size 0); nothing to degrade.")
        if n < scale:
            raise ValueError(f"Spatial dimension {dim!r} has size {n}, smaller than scale={scale}.")
        if n % scale:
            if boundary == "exact":
                raise ValueError(
                    f"Spatial dimension {dim!r} has size {n}, which is not divisible by "
                    f"scale={scale}. Pass boundary='trim' to drop the last {n % scale} "
                    f"cell(s), or pad/crop the input to a multiple of {scale}."
                )
            trim[dim] = slice(0, n - n % scale)
    if trim:
        obj = obj.isel(trim)

    weights: xr.DataArray | None = None
    if area_weighted:
        lat = _find_latitude(obj, ydim, xdim)
        weights = np.cos(np.deg2rad(xr.DataArray(lat.variable).astype("float64"))).clip(min=0.0)

    spatial = (ydim, xdim)
    bounds = _bounds_names(obj, spatial)
    line = (
        f"xsr.degrade(scale={scale}, method={method!r}, dims=({ydim!r}, {xdim!r}), "
        f"boundary={boundary!r}, area_weighted={area_weighted}) [xsr {__version__}]"
    )

    def new_var(name: Hashable, var: xr.Variable, is_coord: bool) -> xr.Variable:
        if not any(d in var.dims for d in spatial):
            return var
        if name in bounds:
            return _coarsen_bounds_var(var, bounds[name], scale)
        if name in spatial and var.dims == (name,):
            return xr.Variable((name,), _coarsen_dim_coord(name, var, scale), attrs=var.attrs)
        return _degrade_array(
            xr.DataArray(var), name, ydim, xdim, scale, method, weights, is_coord=is_coord
        )

    coords = {name: new_var(name, obj.coords[name].variable, True) for name in obj.coords}
    if isinstance(obj, xr.DataArray):
        if not all(d in obj.dims for d in spatial):
            raise ValueError(
                f"The DataArray {obj.name!r} lacks a spatial dimension of {spatial!r}."
            )
        data = new_var(obj.name, obj.variable, False)
        out = xr.DataArray(data, coords=coords, name=obj.name)
        out.attrs = append_history(data.attrs, line)
        return out

    if not any(all(d in v.dims for d in spatial) for v in obj.data_vars.values()):
        raise ValueError(
            f"No data variable of the Dataset has both spatial dims {spatial!r}; "
            f"variables: {list(obj.data_vars)!r}."
        )
    data_vars = {name: new_var(name, var.variable, False) for name, var in obj.data_vars.items()}
    return xr.Dataset(data_vars, coords=coords, attrs=append_history(obj.attrs, line))

"""Region planning: how long a region is, how the input and output are chunked for it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from xsr.archive.encoding import guard_packing, is_datetime_like, kept_encoding
from xsr.archive.record import _is_dask

#: Target size of one region of output, used when ``region_size`` is not given.
DEFAULT_REGION_BYTES = 64 * 2**20


def _uniform_chunk(chunks: tuple[int, ...]) -> int | None:
    """The chunk size when ``chunks`` are equal but for a smaller last one, else ``None``."""
    if len(chunks) == 0:
        return None
    first = chunks[0]
    if all(c == first for c in chunks[:-1]) and chunks[-1] <= first:
        return int(first)
    return None


def _frame_bytes(ds: xr.Dataset, dim: Hashable) -> int:
    """Bytes of one step along ``dim`` summed over the variables that have ``dim``."""
    total = 0
    for name, var in ds.variables.items():
        if dim in var.dims and name not in ds.indexes:
            total += var.dtype.itemsize * int(np.prod(var.shape)) // max(1, var.sizes[dim])
    return total


def _default_region_size(ds: xr.Dataset, dim: Hashable, target_bytes: int) -> int:
    """Steps per region: the dask chunk along ``dim`` if uniform, capped at ``target_bytes``."""
    length = int(ds.sizes[dim])
    sizes = []
    for name, var in ds.variables.items():
        if dim in var.dims and name not in ds.indexes and _is_dask(var):
            along = var.chunks[var.dims.index(dim)]
            uniform = _uniform_chunk(along)
            sizes.append(uniform if uniform is not None else max(along))
    candidate = min(sizes) if sizes else length
    cap = max(1, target_bytes // max(1, _frame_bytes(ds, dim)))
    return int(max(1, min(candidate, cap, length)))


def _check_region_size(region_size: Any) -> int:
    if isinstance(region_size, bool) or not isinstance(region_size, (int, np.integer)):
        raise TypeError(
            f"region_size must be a positive integer (steps per region), got {region_size!r}"
        )
    if region_size < 1:
        raise ValueError(
            f"region_size must be a positive integer (steps per region), got {region_size}"
        )
    return int(region_size)


def _prepare(ds: xr.Dataset, dim: Hashable, region_size: int) -> tuple[xr.Dataset, list[str]]:
    """Rechunk for region writes and reset encodings; returns ``(dataset, region_variables)``.

    Every non-index variable with ``dim`` becomes dask-backed with chunks of ``region_size``
    along ``dim`` and uniform chunks elsewhere (Zarr chunks equal to those), so no Zarr chunk is
    shared by two regions. Dask-backed variables without ``dim`` are loaded: they are written
    once, with the metadata, and so are datetime variables (such as ``time_bnds``: small, and
    xarray encodes chunked datetimes only when their ``units`` and ``dtype`` are both known).
    Encodings are reset but for :func:`~xsr.archive.encoding.kept_encoding`.
    """
    import dask

    variables = {}
    region_vars: list[str] = []
    static_lazy: dict[Hashable, xr.Variable] = {}
    for name, var in ds.variables.items():
        var = var.copy(deep=False)
        var.encoding = kept_encoding(var)
        if name in ds.indexes:
            variables[name] = var
            continue
        if is_datetime_like(var):
            if _is_dask(var):
                static_lazy[name] = var
            variables[name] = var
            continue
        if dim in var.dims:
            wanted = {}
            for axis, d in enumerate(var.dims):
                if d == dim:
                    wanted[d] = region_size
                elif _is_dask(var):
                    size = _uniform_chunk(var.chunks[axis])
                    wanted[d] = size if size is not None else max(var.chunks[axis])
                else:
                    wanted[d] = var.shape[axis]
            var = guard_packing(var.chunk(wanted), str(name))
            var.encoding["chunks"] = tuple(int(c[0]) for c in var.chunks)
            region_vars.append(str(name))
        elif _is_dask(var):
            static_lazy[name] = var
        variables[name] = var
    if static_lazy:
        names = list(static_lazy)
        (loaded,) = dask.compute([static_lazy[n].data for n in names])
        for name, values in zip(names, loaded):
            loaded_var = static_lazy[name].copy(data=np.asarray(values))
            loaded_var.encoding = dict(static_lazy[name].encoding)
            variables[name] = loaded_var
    coord_names = set(ds.coords)
    out = xr.Dataset(
        {k: v for k, v in variables.items() if k not in coord_names},
        coords={k: v for k, v in variables.items() if k in coord_names},
        attrs=dict(ds.attrs),
    )
    return out, region_vars


def _time_dim(ds: xr.Dataset, time_dim: Hashable | None) -> Hashable:
    if time_dim is not None:
        if time_dim not in ds.dims:
            raise ValueError(
                f"time_dim={time_dim!r} is not a dimension of the data (dimensions: "
                f"{list(ds.dims)})"
            )
        return time_dim
    if "time" in ds.dims:
        return "time"
    for name in ds.dims:
        if name in ds.variables and ds[name].attrs.get("axis") == "T":
            return name
    raise ValueError(
        f"no time dimension found among {list(ds.dims)}; pass time_dim=<name> (the regions of a "
        "streamed write are cut along it)"
    )


def _input_chunks(length: int, region_size: int) -> tuple[int, ...]:
    """Time chunks of the input: one per region, a short remainder merged into the last one.

    A last chunk shorter than a windowed model's time halo would make the array layer merge
    chunks (with a warning); merged here, only that one chunk is computed twice (once per
    region it spans).
    """
    full, rest = divmod(length, region_size)
    chunks = [region_size] * full + ([rest] if rest else [])
    if rest and full >= 1 and 2 * rest <= region_size:
        chunks = [*chunks[:-2], region_size + rest]
    return tuple(chunks)

"""What the output keeps of its variables' encoding, packing, and NetCDF compression.

A region write resets every encoding but what describes the *values* rather than the input's
storage layout:

* datetime and cftime variables keep ``units``, ``calendar`` and ``dtype`` (xarray needs both
  ``units`` and ``dtype`` to encode chunked datetimes, e.g. CMIP ``time_bnds``);
* floating-point variables keep ``_FillValue`` and ``missing_value`` (masked cells stay masked
  for CF readers);
* packed variables (an integer ``dtype`` with ``scale_factor``/``add_offset``) keep their
  packing; values outside the packed range are refused, never wrapped around.

Chunks and compressors are the writer's: Zarr output uses zarr's default compressor (zstd),
NetCDF output zlib level :data:`NETCDF_COMPLEVEL` with shuffle, chunked like the store.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsr.archive.errors import ArchiveError

#: zlib level of NetCDF output (1 fastest .. 9 smallest).
NETCDF_COMPLEVEL = 4
#: Integer type of packed output.
PACK_DTYPE = np.dtype("int16")
#: Share of the data range left free on each side of packed output (upscaled values may
#: overshoot the input's range a little).
PACK_MARGIN = 0.25
_FILL_KEYS = ("_FillValue", "missing_value")
_PACK_KEYS = ("scale_factor", "add_offset")


def is_datetime_like(var: xr.Variable) -> bool:
    """Whether ``var`` holds datetimes/timedeltas (numpy or cftime), without loading it."""
    if var.dtype.kind in "Mm":
        return True
    units = str(var.encoding.get("units", ""))
    return var.dtype.kind == "O" and ("calendar" in var.encoding or " since " in units)


def is_packed(encoding: Mapping[str, Any]) -> bool:
    """Whether ``encoding`` packs floats into integers (``scale_factor``/``add_offset``)."""
    dtype = encoding.get("dtype")
    return (
        dtype is not None
        and np.dtype(dtype).kind in "iu"
        and any(k in encoding for k in _PACK_KEYS)
    )


def kept_encoding(var: xr.Variable) -> dict[str, Any]:
    """The part of ``var.encoding`` a region write keeps (see the module's description)."""
    enc = var.encoding
    if is_datetime_like(var):
        kept = {k: enc[k] for k in ("units", "calendar") if k in enc}
        if "units" in kept and "dtype" in enc:
            kept["dtype"] = enc["dtype"]
        return kept
    if var.dtype.kind != "f":
        return {}
    if is_packed(enc):
        return {k: enc[k] for k in ("dtype", *_PACK_KEYS, *_FILL_KEYS) if k in enc}
    return {k: enc[k] for k in _FILL_KEYS if k in enc}


def packed_range(encoding: Mapping[str, Any]) -> tuple[float, float]:
    """The values a packed ``encoding`` can represent (its ``_FillValue`` code excluded)."""
    info = np.iinfo(np.dtype(encoding["dtype"]))
    scale = float(encoding.get("scale_factor", 1.0))
    offset = float(encoding.get("add_offset", 0.0))
    fill = encoding.get("_FillValue", encoding.get("missing_value"))
    low_code = info.min + 1 if fill is not None and int(fill) == info.min else info.min
    high_code = info.max - 1 if fill is not None and int(fill) == info.max else info.max
    ends = (offset + scale * low_code, offset + scale * high_code)
    return min(ends), max(ends)


def packing_for(low: float, high: float, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Packing of values in ``[low, high]`` (widened by :data:`PACK_MARGIN` on each side).

    ``source`` (the input's encoding) is carried when it is packed and its range holds the
    widened range; otherwise ``int16`` codes are spread over the widened range.
    """
    span = high - low if high > low else max(abs(high), 1.0)
    lo, hi = low - PACK_MARGIN * span, high + PACK_MARGIN * span
    if source is not None and is_packed(source):
        have_lo, have_hi = packed_range(source)
        if have_lo <= lo and hi <= have_hi:
            return {k: source[k] for k in ("dtype", *_PACK_KEYS, *_FILL_KEYS) if k in source}
    info = np.iinfo(PACK_DTYPE)
    levels = float(info.max) - float(info.min + 1)
    return {
        "dtype": PACK_DTYPE.name,
        "scale_factor": (hi - lo) / levels,
        "add_offset": (hi + lo) / 2.0,
        "_FillValue": np.int16(info.min),
    }


def _check_block(block: np.ndarray, name: str, encoding: Mapping[str, Any]) -> np.ndarray:
    lo, hi = packed_range(encoding)
    values = np.asarray(block, dtype="float64")
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < lo or finite.max() > hi):
        raise ArchiveError(
            f"variable {name!r} has values in [{finite.min():.6g}, {finite.max():.6g}], "
            f"outside its packed range [{lo:.6g}, {hi:.6g}] (dtype {encoding['dtype']}, "
            f"scale_factor {encoding.get('scale_factor')}): writing them would wrap around. "
            "Write without packing (pack=False, no --pack), or set a wider "
            "scale_factor/add_offset in the variable's encoding"
        )
    return block


def guard_packing(var: xr.Variable, name: str) -> xr.Variable:
    """``var`` whose values are checked, block by block as they are computed, against its packing.

    A no-op for variables that are not packed; dask-backed data stay lazy (the check runs inside
    the graph, so a streamed write keeps its memory bound).
    """
    if not is_packed(var.encoding):
        return var
    encoding = dict(var.encoding)
    if var.chunks is not None:
        data = var.data.map_blocks(_check_block, name, encoding, dtype=var.dtype)
    else:
        data = _check_block(np.asarray(var.values), name, encoding)
    out = var.copy(data=data)
    out.encoding = encoding
    return out


def netcdf_encoding(ds: xr.Dataset) -> dict[Hashable, dict[str, Any]]:
    """Encoding for a NetCDF copy of a store opened lazily: kept keys plus zlib compression."""
    out: dict[Hashable, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        enc = kept_encoding(var)
        if "dtype" in enc:  # a plain name: netCDF4 refuses explicit byte orders it did not ask
            enc["dtype"] = np.dtype(enc["dtype"]).name
        if var.ndim and var.dtype.kind in "fiu" and not is_datetime_like(var):
            enc.update(zlib=True, complevel=NETCDF_COMPLEVEL, shuffle=True)
            if var.chunks is not None:
                enc["chunksizes"] = tuple(int(c[0]) for c in var.chunks)
        out[name] = enc
    return out

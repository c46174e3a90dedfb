"""Coordinate helpers shared by the xarray layer.

These functions find the spatial dimensions of a dataset, and move 1-D cell-centre coordinates and
their CF ``(n, 2)`` bounds between a fine grid and a grid ``scale`` times coarser, so that
degradation (:func:`xsr.degradation.degrade`) and upscaling agree exactly:
``coarsen_coord(refine_coord(c, s), s) == c`` for every uniform coordinate ``c``.

The module imports numpy and xarray only.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "append_history",
    "check_uniform",
    "coarsen_axis",
    "coarsen_bounds",
    "coarsen_coord",
    "is_global_longitude",
    "is_latitude",
    "is_longitude",
    "parse_periodic",
    "periodic_dims",
    "refine_axis",
    "refine_axis_bounds",
    "refine_bounds",
    "refine_coord",
    "refine_latlon",
    "resolve_periodic",
    "sanitise_history_text",
    "spatial_dims",
]

#: Dimension-name pairs recognised as ``(y, x)``, in order of preference. ``nav_lat``/``nav_lon``
#: (NEMO) are 2-D auxiliary coordinates, never dimensions, and are deliberately not listed.
SPATIAL_NAME_PAIRS: tuple[tuple[str, str], ...] = (
    ("y", "x"),
    ("lat", "lon"),
    ("latitude", "longitude"),
    ("rlat", "rlon"),
)

_Y_STANDARD_NAMES = {"projection_y_coordinate", "latitude", "grid_latitude"}
_X_STANDARD_NAMES = {"projection_x_coordinate", "longitude", "grid_longitude"}
_DEGREE_UNITS = {
    "degrees_east",
    "degree_east",
    "degrees_e",
    "degree_e",
    "degreese",
    "degreee",
    "degrees",
    "degree",
    "deg",
    "dege",
    "degrees_north",
    "degree_north",
}
_RADIAN_UNITS = {"radians", "radian", "rad"}
_LAT_NAMES = {"lat", "latitude", "rlat", "nav_lat"}
_LAT_STANDARD_NAMES = {"latitude", "grid_latitude"}
_LON_NAMES = {"lon", "longitude", "rlon", "nav_lon"}
_LON_STANDARD_NAMES = {"longitude", "grid_longitude"}
_LON_UNITS = {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreese", "degreee"}
_LAT_UNITS = {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn", "degreen"}

#: Attribute of a dimension coordinate that marks the dimension periodic: the domain length, in
#: the coordinate's units (``360`` for a global longitude in degrees, ``Lx`` in metres for the
#: shallow-water generator). See :func:`periodic_dims`.
PERIOD_ATTR = "period"


def _dim_names(obj: xr.Dataset | xr.DataArray) -> tuple[Hashable, ...]:
    return tuple(obj.dims)


def spatial_dims(
    obj: xr.Dataset | xr.DataArray, dims: Sequence[Hashable] | None = None
) -> tuple[Hashable, Hashable]:
    """Find the ``(y, x)`` spatial dimensions of an xarray object.

    The rule, in order:

    1. ``dims`` if given (two distinct dimension names of ``obj``, in ``(y, x)`` order);
    2. the first pair of dimension names in ``(y, x)``, ``(lat, lon)``, ``(latitude, longitude)``,
       ``(rlat, rlon)`` present in ``obj`` (``nav_lat``/``nav_lon`` are 2-D auxiliary coordinates,
       not dimensions, and are never chosen);
    3. 1-D dimension coordinates carrying CF ``axis = "Y"`` / ``axis = "X"`` attributes, or else a
       CF ``standard_name`` (``latitude``, ``projection_y_coordinate``, ``grid_latitude`` and the
       ``x`` counterparts).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        The object whose dimensions are searched.
    dims : sequence of two hashables, optional
        Explicit ``(y_dim, x_dim)``; checked and returned as a tuple.

    Returns
    -------
    tuple
        ``(y_dim, x_dim)``.

    Raises
    ------
    ValueError
        If ``dims`` is malformed or names a missing dimension, or if no (or more than one)
        spatial pair can be found; the message lists the dimensions and asks for ``dims=``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "lat", "lon"))
    >>> spatial_dims(da)
    ('lat', 'lon')
    >>> spatial_dims(da, dims=("lat", "lon"))
    ('lat', 'lon')
    """
    present = _dim_names(obj)
    if dims is not None:
        if isinstance(dims, str) or not isinstance(dims, Sequence) or len(dims) != 2:
            raise ValueError(
                f"dims must be a pair of dimension names (y_dim, x_dim), got {dims!r}; "
                "for example dims=('lat', 'lon')."
            )
        y_dim, x_dim = dims
        if y_dim == x_dim:
            raise ValueError(f"dims must name two different dimensions, got {dims!r}.")
        missing = [d for d in (y_dim, x_dim) if d not in present]
        if missing:
            raise ValueError(
                f"dims={tuple(dims)!r} names dimension(s) {missing!r} that the object does not "
                f"have; its dimensions are {present!r}."
            )
        return (y_dim, x_dim)

    found = [pair for pair in SPATIAL_NAME_PAIRS if pair[0] in present and pair[1] in present]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(
            f"Several spatial dimension pairs {found!r} were found among {present!r}; "
            "pass dims=(y_dim, x_dim) to choose one."
        )

    y_cands: list[Hashable] = []
    x_cands: list[Hashable] = []
    for key in ("axis", "standard_name"):
        for name in present:
            if name not in obj.coords or obj.coords[name].dims != (name,):
                continue
            value = str(obj.coords[name].attrs.get(key, "")).strip()
            if key == "axis":
                if value.upper() == "Y":
                    y_cands.append(name)
                elif value.upper() == "X":
                    x_cands.append(name)
            else:
                if value in _Y_STANDARD_NAMES:
                    y_cands.append(name)
                elif value in _X_STANDARD_NAMES:
                    x_cands.append(name)
        if len(y_cands) == 1 and len(x_cands) == 1:
            return (y_cands[0], x_cands[0])
        y_cands, x_cands = [], []
    raise ValueError(
        f"Cannot tell which dimensions are spatial among {present!r}: no (y, x), (lat, lon), "
        "(latitude, longitude) or (rlat, rlon) pair and no CF axis='Y'/'X' coordinates. "
        "Pass dims=(y_dim, x_dim)."
    )


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a coordinate needs at least one value.")
    return arr


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)):
        raise ValueError(
            f"scale must be a positive integer, got {scale!r} ({type(scale).__name__})."
        )
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}.")
    return int(scale)


def _to_numeric(arr: np.ndarray) -> tuple[np.ndarray, Any]:
    """Float view of a coordinate; datetimes/timedeltas become float offsets from the first value.

    Returns the float array and a function mapping floats back to the original kind.
    """
    if np.issubdtype(arr.dtype, np.datetime64) or np.issubdtype(arr.dtype, np.timedelta64):
        unit = np.datetime_data(arr.dtype)[0]
        origin = arr[0]
        offsets = (arr - origin).astype(f"timedelta64[{unit}]").astype("int64").astype("float64")

        def back(x: np.ndarray) -> np.ndarray:
            return origin + np.rint(x).astype("int64").astype(f"timedelta64[{unit}]")

        return offsets, back
    if np.issubdtype(arr.dtype, np.floating):
        return arr, lambda x: x.astype(arr.dtype, copy=False)
    if np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating):
        return arr.astype("float64"), lambda x: x
    raise TypeError(f"Coordinate values must be numeric or datetime, got dtype {arr.dtype}.")


def check_uniform(values: Any, name: str = "coordinate", *, rtol: float = 1e-5) -> float:
    """Check that a 1-D coordinate is strictly monotonic with uniform spacing.

    Parameters
    ----------
    values : array_like
        1-D numeric or datetime coordinate values (at least two).
    name : str
        Name used in the error message.
    rtol : float
        Allowed relative deviation of each step from the mean step (plus a few float ulps of the
        largest value, so float32 grids pass).

    Returns
    -------
    float
        The signed spacing (negative for a descending coordinate; in the datetime unit for
        datetime coordinates).

    Raises
    ------
    ValueError
        If fewer than two values, repeated values, or non-uniform spacing; the message gives the
        coordinate name, the smallest and largest step, and how to fix it.

    Examples
    --------
    >>> check_uniform([0.5, 1.5, 2.5], "x")
    1.0
    >>> check_uniform([10.0, 5.0, 0.0], "lat")
    -5.0
    """
    arr = _as_1d(values, name)
    if arr.size < 2:
        raise ValueError(
            f"{name} has a single value, so its spacing is unknown; give at least two points."
        )
    num, _ = _to_numeric(arr)
    num = np.asarray(num, dtype="float64")
    if not np.all(np.isfinite(num)):
        raise ValueError(f"{name} contains NaN or infinite values; a grid coordinate cannot.")
    steps = np.diff(num)
    repeated = np.flatnonzero(steps == 0)
    if repeated.size:
        i = int(repeated[0])
        raise ValueError(
            f"{name} has repeated values ({name}[{i}] == {name}[{i + 1}] == {arr[i]}); a grid "
            f"coordinate must be strictly monotonic. Drop the duplicates, e.g. "
            f"obj.drop_duplicates({name!r}), or fix the coordinate."
        )
    spacing = float((num[-1] - num[0]) / (num.size - 1))
    eps = np.finfo(arr.dtype).eps if np.issubdtype(arr.dtype, np.floating) else 1e-15
    tol = rtol * abs(spacing) + 16.0 * eps * float(np.max(np.abs(num)))
    if spacing == 0.0 or np.any(np.abs(steps - spacing) > tol):
        raise ValueError(
            f"{name} is not uniformly spaced (steps range from {steps.min():g} to "
            f"{steps.max():g}); xsr needs a uniform, strictly monotonic grid. Interpolate to a "
            f"uniform grid first, e.g. obj.interp({name}=np.linspace(first, last, n))."
        )
    return spacing


def coarsen_coord(values: Any, scale: int) -> np.ndarray:
    """Coarse cell centres: the means of consecutive blocks of ``scale`` fine values.

    Parameters
    ----------
    values : array_like
        1-D coordinate values (numeric or datetime64) whose length is a multiple of ``scale``.
    scale : int
        Block length (positive integer).

    Returns
    -------
    numpy.ndarray
        ``len(values) // scale`` values; floating input keeps its dtype, integers give float64,
        datetimes stay datetimes.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive integer or the length is not a multiple of it.

    Examples
    --------
    >>> coarsen_coord([0.5, 1.5, 2.5, 3.5], 2)
    array([1., 3.])
    """
    scale = _check_scale(scale)
    arr = _as_1d(values, "values")
    if arr.size % scale:
        raise ValueError(
            f"Cannot coarsen a coordinate of length {arr.size} by scale={scale}: the length is "
            f"not a multiple of the scale. Trim it to {arr.size - arr.size % scale} values first."
        )
    num, back = _to_numeric(arr)
    return back(num.reshape(-1, scale).mean(axis=1))


def refine_coord(
    values: Any, scale: int, *, spacing: float | None = None, name: str = "values"
) -> np.ndarray:
    """Fine cell centres whose block means are ``values``.

    Each coarse centre ``c`` of a uniform grid with spacing ``d`` becomes ``scale`` fine centres
    ``c + (k + 0.5) / scale * d - d / 2`` for ``k = 0 .. scale - 1``, so
    ``coarsen_coord(refine_coord(c, scale), scale) == c`` (to float precision). Descending
    coordinates stay descending.

    Parameters
    ----------
    values : array_like
        1-D uniform coordinate values (numeric or datetime64).
    scale : int
        Number of fine points per coarse cell.
    spacing : float, optional
        Coarse spacing ``d``; needed only when ``values`` holds a single point (otherwise it is
        derived and checked with :func:`check_uniform`).
    name : str
        The coordinate's name, for error messages.

    Returns
    -------
    numpy.ndarray
        ``scale * len(values)`` values, in the input's floating dtype (float64 for integers).

    Raises
    ------
    ValueError
        If the spacing is not uniform, ``scale`` is not a positive integer, or a single value is
        given without ``spacing``.

    Examples
    --------
    >>> refine_coord([1.0, 3.0], 2)
    array([0.5, 1.5, 2.5, 3.5])
    >>> refine_coord([3.0, 1.0], 2)
    array([3.5, 2.5, 1.5, 0.5])
    """
    scale = _check_scale(scale)
    arr = _as_1d(values, "values")
    num, back = _to_numeric(arr)
    if spacing is None:
        if arr.size < 2:
            raise ValueError(
                "refine_coord needs at least two values to know the grid spacing; pass spacing=."
            )
        d = check_uniform(arr, name)
    else:
        d = float(spacing)
        if not np.isfinite(d) or d == 0.0:
            raise ValueError(f"spacing must be a finite non-zero number, got {spacing!r}.")
    offsets = ((np.arange(scale) + 0.5) / scale - 0.5) * d
    fine = np.asarray(num, dtype="float64")[:, None] + offsets[None, :]
    return back(fine.reshape(-1))


def _as_bounds(bounds: Any) -> np.ndarray:
    arr = np.asarray(bounds)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"bounds must have shape (n, 2) (CF cell bounds), got {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError("bounds is empty; it needs at least one cell.")
    return arr


def coarsen_bounds(bounds: Any, scale: int) -> np.ndarray:
    """Coarse CF cell bounds: each coarse cell spans ``scale`` consecutive fine cells.

    Parameters
    ----------
    bounds : array_like
        ``(n, 2)`` bounds in the coordinate's order (ascending or descending); ``n`` a multiple
        of ``scale``.
    scale : int
        Block length (positive integer).

    Returns
    -------
    numpy.ndarray
        ``(n // scale, 2)``: the first bound of each block's first cell and the second bound of
        its last cell.

    Raises
    ------
    ValueError
        If the shape is not ``(n, 2)``, ``scale`` is invalid or ``n`` is not a multiple of it.

    Examples
    --------
    >>> coarsen_bounds([[0, 1], [1, 2], [2, 3], [3, 4]], 2)
    array([[0, 2],
           [2, 4]])
    """
    scale = _check_scale(scale)
    arr = _as_bounds(bounds)
    n = arr.shape[0]
    if n % scale:
        raise ValueError(
            f"Cannot coarsen {n} cell bounds by scale={scale}: {n} is not a multiple of it."
        )
    return np.stack([arr[0::scale, 0], arr[scale - 1 :: scale, 1]], axis=1)


def refine_bounds(bounds: Any, scale: int) -> np.ndarray:
    """Fine CF cell bounds: each cell split into ``scale`` equal parts.

    Parameters
    ----------
    bounds : array_like
        ``(n, 2)`` bounds (ascending or descending).
    scale : int
        Number of fine cells per coarse cell.

    Returns
    -------
    numpy.ndarray
        ``(scale * n, 2)`` floating bounds; ``coarsen_bounds(refine_bounds(b, s), s)`` equals
        ``b``.

    Raises
    ------
    ValueError
        If the shape is not ``(n, 2)`` or ``scale`` is not a positive integer.

    Examples
    --------
    >>> refine_bounds([[0.0, 2.0]], 2)
    array([[0., 1.],
           [1., 2.]])
    """
    scale = _check_scale(scale)
    arr = _as_bounds(bounds)
    num, back = _to_numeric(arr.reshape(-1))
    num = np.asarray(num, dtype="float64").reshape(-1, 2)
    lo, hi = num[:, :1], num[:, 1:]
    k = np.arange(scale)[None, :]
    width = hi - lo
    fine = np.stack([lo + width * k / scale, lo + width * (k + 1) / scale], axis=-1)
    fine[:, -1, 1] = hi[:, 0]  # the outer edges are exact
    return back(fine.reshape(-1)).reshape(-1, 2)


def is_global_longitude(values: Any, units: str | None = None) -> bool:
    """Whether a 1-D longitude coordinate of cell centres spans a full circle.

    True when the coordinate, unwrapped across the date line (so ``[180.5, ..., 359.5, 0.5,
    ..., 179.5]`` counts), is uniformly spaced with step ``d`` and ``n * |d|`` equals 360
    degrees (or ``2 pi`` for radian units) within 1 % of a step.

    Parameters
    ----------
    values : array_like
        1-D longitude cell centres.
    units : str, optional
        CF units; ``None`` means degrees. Radian units use a ``2 pi`` period; any other
        (non-angular) units give ``False``.

    Returns
    -------
    bool
        ``True`` for a periodic (global) longitude.

    Examples
    --------
    >>> is_global_longitude(np.arange(0.5, 360.0, 1.0))
    True
    >>> is_global_longitude(np.arange(0.5, 180.0, 1.0), units="degrees_east")
    False
    """
    if units is None:
        period = 360.0
    else:
        key = str(units).strip().lower()
        if key in _DEGREE_UNITS:
            period = 360.0
        elif key in _RADIAN_UNITS:
            period = 2.0 * np.pi
        else:
            return False
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size < 2 or not np.issubdtype(arr.dtype, np.number):
        return False
    unwrapped = np.unwrap(arr.astype("float64"), period=period)  # a rolled grid is still global
    try:
        d = check_uniform(unwrapped, "longitude", rtol=1e-3)
    except ValueError:
        return False
    return bool(abs(arr.size * abs(d) - period) <= 0.01 * abs(d))


def _is_periodic(coord: xr.DataArray | None) -> bool:
    if coord is None or coord.ndim != 1 or coord.size < 2:
        return False
    period = coord.attrs.get(PERIOD_ATTR)
    if period is None:
        try:
            return bool(is_global_longitude(coord.values, coord.attrs.get("units")))
        except (ValueError, TypeError):
            return False
    try:
        period = float(period)
    except (TypeError, ValueError):
        raise ValueError(
            f"Coordinate {coord.name!r} has {PERIOD_ATTR}={period!r}, which is not a number. The "
            f"{PERIOD_ATTR!r} attribute marks a periodic dimension by its domain length in the "
            "coordinate's units; fix or delete it."
        ) from None
    if not (np.isfinite(period) and period > 0):
        raise ValueError(
            f"Coordinate {coord.name!r} has {PERIOD_ATTR}={period!r}; a domain length must be a "
            "positive number. Fix or delete the attribute."
        )
    values = np.asarray(coord.values)
    if not np.issubdtype(values.dtype, np.number):
        return False
    try:
        step = abs(check_uniform(values.astype("float64"), str(coord.name), rtol=1e-3))
    except ValueError:
        return False
    # A subset of a periodic domain keeps the attribute but no longer spans the period: it
    # falls short by at least one step. Half a step of slack accepts stored coordinates whose
    # step is rounded (ETOPO5's 5' grid spans 360.003 degrees in 4320 columns).
    return bool(abs(values.size * step - period) < 0.5 * step)


def periodic_dims(obj: xr.Dataset | xr.DataArray, dims: Sequence[Hashable]) -> tuple[bool, ...]:
    """Whether each of ``dims`` is periodic, read from the data's own coordinates.

    The convention: a dimension is periodic when its 1-D coordinate carries a ``period``
    attribute (the domain length, in the coordinate's units) and the ``n`` uniformly spaced
    cell centres span that length (``n * step == period`` within half a step), or when,
    without the attribute, the coordinate is a global longitude (:func:`is_global_longitude`).
    A subset of a periodic domain keeps the attribute but no longer spans the period, so it
    reads as not periodic. A dimension without a coordinate is not periodic.

    Parameters
    ----------
    obj : Dataset or DataArray
        Data whose coordinates are read.
    dims : sequence of hashable
        Dimension names, e.g. ``("y", "x")``.

    Returns
    -------
    tuple of bool
        One flag per entry of ``dims``.

    Raises
    ------
    ValueError
        If a ``period`` attribute is not a positive number.

    Examples
    --------
    >>> x = np.arange(4) * 2.5 + 1.25
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"),
    ...                   coords={"x": ("x", x, {"period": 10.0}), "y": [0.0, 1.0, 2.0]})
    >>> periodic_dims(da, ("y", "x"))
    (False, True)
    >>> periodic_dims(da.isel(x=slice(0, 2)), ("y", "x"))
    (False, False)
    """
    return tuple(
        _is_periodic(obj.coords[d] if d in obj.coords and d in obj.dims else None) for d in dims
    )


def sanitise_history_text(text: Any) -> str:
    r"""``text`` on one line: control, format and line/paragraph-separator characters escaped.

    A newline becomes the two characters ``\n``, a tab ``\t``, a carriage return ``\r``,
    any other such character ``\xNN`` or ``\uNNNN``; everything else is kept.

    Parameters
    ----------
    text : Any
        Text (other objects are converted with ``str``).

    Returns
    -------
    str
        The text with no character that could start a new line or hide text.

    Examples
    --------
    >>> print(sanitise_history_text("a\nb\x00c"))
    a\nb\x00c
    >>> len(sanitise_history_text("a\nb").splitlines())
    1
    """
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in str(text):
        if ch in named:
            out.append(named[ch])
        elif unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def parse_periodic(periodic: Any) -> tuple[bool, bool] | None:
    """Check a ``periodic=`` argument: ``None`` (read it from the data) or ``(y, x)`` flags.

    The one meaning of ``periodic=`` across xsr (upscaling, training, evaluation): ``None``
    reads periodicity from the data (:func:`periodic_dims`), ``False`` (or ``"none"``) wraps no
    axis, ``"x"``, ``"y"``, ``("y", "x")`` (or ``"xy"``) name the axes that wrap, and ``True``
    means ``"x"`` (a global longitude).

    Parameters
    ----------
    periodic : None, bool, str or sequence of str
        The argument as given.

    Returns
    -------
    None or (bool, bool)
        ``None``, or whether ``y`` and ``x`` wrap.

    Raises
    ------
    ValueError
        Anything else, listing the accepted values.

    Examples
    --------
    >>> parse_periodic(None) is None
    True
    >>> parse_periodic("x"), parse_periodic(("x", "y")), parse_periodic(False)
    ((False, True), (True, True), (False, False))
    """
    if periodic is None:
        return None
    if periodic is False or (isinstance(periodic, str) and periodic == "none"):
        return (False, False)
    if periodic is True:
        return (False, True)
    axes = periodic
    if isinstance(axes, str):
        axes = tuple(axes) if axes in ("xy", "yx") else (axes,)
    if isinstance(axes, Sequence) and all(isinstance(p, str) and p in ("x", "y") for p in axes):
        return ("y" in axes, "x" in axes)
    raise ValueError(
        "periodic must be None (read from the coordinates: a 'period' attribute or a global "
        f"longitude), False, 'x', 'y' or ('y', 'x'), got {periodic!r}."
    )


def resolve_periodic(
    periodic: Any, obj: xr.Dataset | xr.DataArray, dims: tuple[Hashable, Hashable]
) -> tuple[bool, bool]:
    """Whether the ``(y, x)`` dims wrap: the ``periodic=`` argument, or else the data's marks.

    Parameters
    ----------
    periodic : None, bool, str or sequence of str
        As in :func:`parse_periodic`; ``None`` reads :func:`periodic_dims` of ``obj``.
    obj : Dataset or DataArray
        The data whose coordinates are read when ``periodic`` is ``None``.
    dims : (hashable, hashable)
        The ``(y, x)`` dimension names.

    Returns
    -------
    (bool, bool)
        Whether ``y`` and ``x`` wrap.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 360)), dims=("lat", "lon"),
    ...                   coords={"lon": np.arange(0.5, 360.0)})
    >>> resolve_periodic(None, da, ("lat", "lon")), resolve_periodic(False, da, ("lat", "lon"))
    ((False, True), (False, False))
    """
    flags = parse_periodic(periodic)
    if flags is None:
        py, px = periodic_dims(obj, dims)
        return (py, px)
    return flags


def append_history(attrs: Mapping[str, Any], line: str) -> dict[str, Any]:
    r"""Copy of ``attrs`` with ``line`` appended to the CF ``history`` attribute.

    Each entry is ``"<ISO 8601 UTC timestamp>: <line>"``; entries are separated by newlines,
    oldest first. The input mapping is not modified. ``line`` is sanitised first
    (:func:`sanitise_history_text`): a newline or other control character in it (from a model
    card's ``name``, a file name, any user string) is written as a visible escape, so one call
    adds exactly one entry and cannot forge others.

    Parameters
    ----------
    attrs : mapping
        Attributes of a Dataset or DataArray.
    line : str
        What was done, e.g. ``"xsr.degrade(scale=2, method='coarsen')"``.

    Returns
    -------
    dict
        New attributes.

    Examples
    --------
    >>> out = append_history({"title": "run"}, "xsr.degrade(scale=2)")
    >>> out["history"].endswith(": xsr.degrade(scale=2)")
    True
    >>> forged = append_history({}, "model=evil\n2020-01-01T00:00:00+00:00: fake")
    >>> len(forged["history"].splitlines())
    1
    """
    out = dict(attrs)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    entry = f"{stamp}: {sanitise_history_text(line)}"
    previous = out.get("history")
    if previous is None or str(previous).strip() == "":
        out["history"] = entry
    else:
        out["history"] = f"{str(previous).rstrip()}\n{entry}"
    return out


def is_latitude(coord: xr.DataArray | xr.Variable, name: Hashable | None = None) -> bool:
    """Whether a coordinate is a latitude in degrees (by name, CF ``standard_name`` or units).

    Parameters
    ----------
    coord : DataArray or Variable
        The coordinate.
    name : hashable, optional
        Its name (default: ``coord.name`` where it has one).

    Returns
    -------
    bool
        True for ``lat``/``latitude``/``rlat``/``nav_lat``, ``standard_name`` ``latitude`` or
        ``grid_latitude``, or units ``degrees_north`` (and spellings).

    Examples
    --------
    >>> is_latitude(xr.DataArray([0.0], dims="j", attrs={"units": "degrees_north"}))
    True
    """
    name = getattr(coord, "name", None) if name is None else name
    attrs = coord.attrs
    return (
        str(name).lower() in _LAT_NAMES
        or str(attrs.get("standard_name", "")).strip() in _LAT_STANDARD_NAMES
        or str(attrs.get("units", "")).strip().lower() in _LAT_UNITS
    )


def is_longitude(coord: xr.DataArray | xr.Variable, name: Hashable | None = None) -> bool:
    """Whether a coordinate is a longitude in degrees (by name, CF ``standard_name`` or units).

    Parameters
    ----------
    coord : DataArray or Variable
        The coordinate.
    name : hashable, optional
        Its name (default: ``coord.name`` where it has one).

    Returns
    -------
    bool
        True for ``lon``/``longitude``/``rlon``/``nav_lon``, ``standard_name`` ``longitude`` or
        ``grid_longitude``, or units ``degrees_east`` (and spellings).

    Examples
    --------
    >>> is_longitude(xr.DataArray([0.0], dims="lon", name="lon"))
    True
    """
    name = getattr(coord, "name", None) if name is None else name
    attrs = coord.attrs
    return (
        str(name).lower() in _LON_NAMES
        or str(attrs.get("standard_name", "")).strip() in _LON_STANDARD_NAMES
        or str(attrs.get("units", "")).strip().lower() in _LON_UNITS
    )


def _refine_latitude(values: np.ndarray, scale: int) -> np.ndarray:
    """Fine latitudes, pole cells cut at the pole: see :func:`refine_axis`."""
    lat = np.asarray(values, dtype="float64")
    if lat.size < 2:
        return refine_coord(values, scale)  # raises the single-value error
    d = check_uniform(values, "latitude")  # the stored dtype sets the tolerance (float32 grids)
    edges = np.clip(np.append(lat - d / 2, lat[-1] + d / 2), -90.0, 90.0)
    k = np.arange(scale + 1)[None, :] / scale
    fine_edges = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * k
    fine = 0.5 * (fine_edges[:, :-1] + fine_edges[:, 1:])
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
    return fine.reshape(-1).astype(dtype)


def _longitude_range(lon: np.ndarray) -> float | None:
    """The lower end of the input's longitude convention: 0 for [0, 360), -180 for [-180, 180)."""
    if lon.min() >= 0.0 and lon.max() <= 360.0:
        return 0.0
    if lon.min() >= -180.0 and lon.max() <= 180.0:
        return -180.0
    return None


def refine_axis(coord: xr.DataArray, scale: int) -> np.ndarray:
    """Fine cell centres of a 1-D dimension coordinate, aware of latitudes and longitudes.

    The rule is :func:`refine_coord` (``scale`` equal sub-cells per cell, so block means give
    the coarse centres back), with two exceptions on the sphere:

    * **latitude** (:func:`is_latitude`, values within [-90, 90]): latitudes never leave
      [-90, 90]. A cell whose edge
      would pass a pole (a *node* grid whose first or last value is the pole itself, e.g.
      ``90, 87.5, ..., -90``) is cut at the pole, and its fine centres are the centres of its
      ``scale`` equal parts: ``90`` with spacing 2.5 becomes ``89.6875, 89.0625`` at x2 (the
      cell ``[90, 88.75]``). Interior cells are refined as usual. Such a grid is uniform except
      its pole cells, and is accepted again by :func:`refine_axis`.
    * **longitude** (:func:`is_longitude`): fine values keep the input's range convention
      (``[0, 360)`` or ``[-180, 180)``) by wrapping: ``0, 2.5, ..., 357.5`` gives
      ``359.375, 0.625, ..., 358.125`` at x2 (a rolled grid, as a global longitude may be). A
      longitude that already wraps is unwrapped before refining.

    Parameters
    ----------
    coord : xarray.DataArray
        A 1-D dimension coordinate (its name and attributes decide latitude or longitude).
    scale : int
        Number of fine points per coarse cell.

    Returns
    -------
    numpy.ndarray
        ``scale * len(coord)`` values.

    Raises
    ------
    ValueError
        If the spacing is not uniform.

    Examples
    --------
    >>> lat = xr.DataArray(np.linspace(90, -90, 73), dims="lat", name="lat")
    >>> fine = refine_axis(lat, 2)
    >>> float(fine[0]), float(fine[1]), float(fine[-1])
    (89.6875, 89.0625, -89.6875)
    >>> lon = xr.DataArray(np.arange(0, 360, 2.5), dims="lon", name="lon")
    >>> fine = refine_axis(lon, 2)
    >>> float(fine[0]), float(fine[1]), float(fine.min()), float(fine.max())
    (359.375, 0.625, 0.625, 359.375)
    """
    values = np.asarray(coord.values)
    numeric = np.issubdtype(values.dtype, np.number) and values.size >= 2
    # a coordinate named like a latitude but with values beyond +-90 is not one in degrees
    name = str(coord.name) if coord.name is not None else "coordinate"
    if scale == 1:
        return refine_coord(values, 1, name=name) if values.size >= 2 else values.copy()
    if numeric and is_latitude(coord) and np.all(np.abs(values) <= 90.0):
        plain = refine_coord(values, scale, name=name)
        if np.all(np.abs(plain) <= 90.0):
            return plain  # no cell reaches past a pole
        return _refine_latitude(values, scale)
    if numeric and is_longitude(coord) and np.all(np.abs(values) <= 360.0):
        # float32 longitudes stay float32: check_uniform's tolerance follows the stored dtype
        lon = values if np.issubdtype(values.dtype, np.floating) else values.astype("float64")
        lo = _longitude_range(lon)
        wraps = np.any(np.abs(np.diff(lon)) > 180.0)
        src = np.unwrap(lon, period=360.0) if wraps else lon
        fine = refine_coord(src, scale, name=name)
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype("float64")
        if lo is not None:
            fine = (fine - lo) % 360.0 + lo
            # a centre on the range's lower end computed a rounding error below it (float32
            # grids) wraps to the upper end, outside the range once stored: put it back
            tol = 360.0 * 8 * np.finfo(dtype).eps
            fine = np.where(fine >= lo + 360.0 - tol, fine - 360.0, fine)
        return fine.astype(dtype)
    return refine_coord(values, scale, name=name)


def refine_axis_bounds(bounds: Any, scale: int, coord: xr.DataArray | None) -> np.ndarray:
    """Fine CF bounds of a 1-D dimension coordinate, consistent with :func:`refine_axis`.

    :func:`refine_bounds`, with latitude bounds clipped to [-90, 90] first (so a pole cell's
    parts are the ones :func:`refine_axis` centres on) and longitude bounds moved by whole turns
    with their fine cell centre into the input's range convention.

    Parameters
    ----------
    bounds : array_like
        ``(n, 2)`` bounds.
    scale : int
        Number of fine cells per coarse cell.
    coord : xarray.DataArray or None
        The coordinate the bounds belong to (name and attributes decide latitude/longitude);
        ``None`` for plain :func:`refine_bounds`.

    Returns
    -------
    numpy.ndarray
        ``(scale * n, 2)`` bounds.

    Examples
    --------
    >>> lat = xr.DataArray([90.0, 87.5], dims="lat", name="lat")
    >>> refine_axis_bounds([[91.25, 88.75], [88.75, 86.25]], 2, lat)[:2].tolist()
    [[90.0, 89.375], [89.375, 88.75]]
    """
    arr = np.asarray(bounds)
    if coord is None:
        return refine_bounds(arr, scale)
    values = np.asarray(coord.values)
    degrees = np.issubdtype(values.dtype, np.number) and np.all(np.abs(values) <= 90.0)
    if is_latitude(coord) and degrees and np.issubdtype(arr.dtype, np.number):
        return refine_bounds(np.clip(arr.astype("float64"), -90.0, 90.0), scale)
    fine = refine_bounds(arr, scale)
    if is_longitude(coord) and np.issubdtype(values.dtype, np.number) and values.size >= 1:
        if not np.all(np.abs(values) <= 360.0):
            return fine
        lo = _longitude_range(values.astype("float64"))
        if lo is not None:
            centre = fine.mean(axis=1)
            turns = np.floor((centre - lo) / 360.0)
            fine = fine - 360.0 * turns[:, None]
    return fine


def coarsen_axis(coord: xr.DataArray, scale: int) -> np.ndarray:
    """Coarse cell centres of a 1-D dimension coordinate: the inverse of :func:`refine_axis`.

    :func:`coarsen_coord` (block means), except on the sphere: a longitude that wraps is
    unwrapped first and the means are put back in the input's range convention; a latitude
    whose end cell was cut at a pole (by :func:`refine_axis`) gets the centre of the uncut
    cell back (``90`` for the node grid ``90, 87.5, ...``), so
    ``coarsen_axis(refine_axis(c, s), s) == c``.

    Parameters
    ----------
    coord : xarray.DataArray
        A 1-D dimension coordinate of length a multiple of ``scale``.
    scale : int
        Block length.

    Returns
    -------
    numpy.ndarray
        ``len(coord) // scale`` values.

    Examples
    --------
    >>> lat = xr.DataArray(np.linspace(90, -90, 73), dims="lat", name="lat")
    >>> fine = xr.DataArray(refine_axis(lat, 2), dims="lat", name="lat")
    >>> bool(np.allclose(coarsen_axis(fine, 2), lat))
    True
    """
    values = np.asarray(coord.values)
    numeric = np.issubdtype(values.dtype, np.floating) and values.size > scale
    degrees = numeric and bool(np.all(np.abs(values) <= 360.0))
    if degrees and is_longitude(coord) and np.any(np.abs(np.diff(values)) > 180.0):
        lon = values.astype("float64")
        lo = _longitude_range(lon)
        coarse = coarsen_coord(np.unwrap(lon, period=360.0), scale)
        if lo is not None:
            coarse = ((coarse - lo) % 360.0 + lo).astype(values.dtype)
            # rounding to a float32 input may land on the range's end (359.99999 -> 360.0)
            coarse = np.where(coarse >= lo + 360.0, coarse - 360.0, coarse)
        return coarse.astype(values.dtype)
    coarse = coarsen_coord(values, scale)
    on_sphere = degrees and np.all(np.abs(values) <= 90.0)
    if scale > 1 and on_sphere and is_latitude(coord) and coarse.size >= 3:
        lat = values.astype("float64")
        step = float(np.median(np.diff(lat[scale:-scale])))  # the fine step of interior cells
        out = coarse.astype("float64")
        # (coarse index, its two outermost fine centres, the first fine centre of the next cell)
        for end, outer, inner, sign in ((0, (0, 1), scale, 1.0), (-1, (-1, -2), -scale - 1, -1.0)):
            cut = abs(abs(lat[outer[1]] - lat[outer[0]]) - abs(step)) > 1e-6 * abs(step)
            if cut:
                # a cell cut at the pole: its centre is that of the whole, uncut cell
                edge = lat[inner] - sign * step / 2
                out[end] = edge - sign * scale * step / 2
        return out.astype(values.dtype)
    return coarse


def _refine_index_axis(a: np.ndarray, axis: int, scale: int) -> np.ndarray:
    """Linear interpolation (and extrapolation at the ends) to fine cell-centre positions."""
    n = a.shape[axis]
    if n == 1:
        return np.repeat(a, scale, axis=axis)
    pos = (np.arange(n * scale) + 0.5) / scale - 0.5  # fine centres in coarse index units
    i0 = np.clip(np.floor(pos).astype(int), 0, n - 2)
    w = pos - i0
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - w) + np.take(a, i0 + 1, axis=axis) * w


def refine_latlon(lat: Any, lon: Any, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Refine 2-D latitude/longitude cell centres (a curvilinear grid) by ``scale``.

    Positions are interpolated on the sphere: each centre becomes a 3-D unit vector, the vectors
    are interpolated bilinearly in grid-index space to the fine cell centres (extrapolated
    linearly at the edges), normalised, and turned back into latitude and longitude. So a grid
    crossing the date line or surrounding a pole is refined without the 360-degree jumps of raw
    longitudes. Fine longitudes stay next to their coarse neighbours' values, in the input's
    range convention (``[0, 360)`` or ``[-180, 180)``) where it has one.

    Parameters
    ----------
    lat, lon : array_like
        2-D arrays of the same shape ``(ny, nx)``, in degrees.
    scale : int
        Number of fine cells per coarse cell along each axis.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Fine latitude and longitude, shape ``(scale * ny, scale * nx)``, float64.

    Raises
    ------
    ValueError
        If the shapes differ or are not 2-D, or latitudes leave [-90, 90].

    Examples
    --------
    >>> lat = np.array([[10.0, 10.0], [20.0, 20.0]])
    >>> lon = np.array([[179.0, -179.0], [179.0, -179.0]])   # across the date line
    >>> flat, flon = refine_latlon(lat, lon, 2)
    >>> flat.shape
    (4, 4)
    >>> [round(float(v), 2) for v in flon[0]]
    [178.5, 179.5, -179.5, -178.5]
    """
    scale = _check_scale(scale)
    la = np.asarray(lat, dtype="float64")
    lo = np.asarray(lon, dtype="float64")
    if la.ndim != 2 or la.shape != lo.shape:
        raise ValueError(
            f"lat and lon must be 2-D arrays of one shape, got {la.shape} and {lo.shape}."
        )
    if np.any(np.abs(la[np.isfinite(la)]) > 90.0):
        raise ValueError("lat must be in degrees within [-90, 90].")
    phi, lam = np.deg2rad(la), np.deg2rad(lo)
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    fine = _refine_index_axis(_refine_index_axis(xyz, 1, scale), 2, scale)
    fine /= np.linalg.norm(fine, axis=0, keepdims=True)
    flat = np.rad2deg(np.arcsin(np.clip(fine[2], -1.0, 1.0)))
    flon = np.rad2deg(np.arctan2(fine[1], fine[0]))
    # next to the coarse neighbour's value, then in the input's range convention
    ref = np.repeat(np.repeat(lo, scale, axis=0), scale, axis=1)
    flon = ref + (flon - ref + 180.0) % 360.0 - 180.0
    finite = lo[np.isfinite(lo)]
    start = _longitude_range(finite) if finite.size else None
    if start is not None:
        flon = (flon - start) % 360.0 + start
    return flat, flon

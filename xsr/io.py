"""Opening data files: one opener for every format xsr reads, and the readers xarray lacks.

* :func:`open_dataset`: the one opener used by the command line and the archive: NetCDF/HDF5
  (``.nc``, ``.nc4``, ``.netcdf``, ``.cdf``, ``.h5``, ``.hdf5``, ``.he5``), Zarr stores
  (``.zarr`` folders, format 2 and 3), ``.mat`` and ``.y4m``, chosen by suffix (or by content
  for a folder that is a Zarr store);
* :func:`open_mat`: MATLAB ``.mat`` files, both v4/v5/v7 (via :func:`scipy.io.loadmat`) and v7.3
  (HDF5, via h5py), such as the report's climate movie ``H_Field_NI5.mat``;
* :func:`open_y4m`: YUV4MPEG2 (``.y4m``) videos, such as the Xiph "derf" collection.

NetCDF and Zarr are read lazily with :func:`xarray.open_dataset` / :func:`xarray.open_zarr`.
Malformed or truncated files raise :class:`FileFormatError` (a ``ValueError``) naming the file
and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

__all__ = ["FileFormatError", "is_zarr_store", "open_dataset", "open_mat", "open_y4m"]


class FileFormatError(ValueError):
    """A file is malformed, truncated or not of the expected format."""


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No such file: '{p}'.")
    if p.is_dir():
        raise IsADirectoryError(f"Expected a file, got the directory '{p}'.")
    return p


# ---------------------------------------------------------------------------- MATLAB

_MAT_SKIP_CLASSES = {"char", "cell", "struct", "function_handle", "object"}


def _read_mat_v5(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import scipy.io

    try:
        major, _minor = scipy.io.matlab.matfile_version(str(path))
    except Exception as err:
        raise FileFormatError(
            f"'{path}' is not a readable MATLAB file: no valid v4/v5/v7.3 header ({err})."
        ) from None
    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=False, mat_dtype=False)
    except Exception as err:
        raise FileFormatError(
            f"'{path}' is a damaged or truncated MATLAB v{major + 4 if major else 4} file: "
            f"{type(err).__name__}: {err}."
        ) from None
    header = raw.get("__header__", b"")
    attrs = {
        "mat_version": "4" if major == 0 else "5",
        "mat_header": header.decode("latin-1", "replace").strip() if header else "",
    }
    arrays = {k: v for k, v in raw.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    return arrays, attrs


def _read_mat_v73(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import h5py

    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            header = b""
            if f.userblock_size >= 128:
                with open(path, "rb") as fh:
                    header = fh.read(116)
            if not header.startswith(b"MATLAB"):
                raise FileFormatError(
                    f"'{path}' is an HDF5 file without a MATLAB 7.3 header (no 512-byte MATLAB "
                    "userblock), so its axis order is unknown; read netCDF-4/HDF5 files with "
                    "xarray.open_dataset(...) or h5py instead."
                )
            for name, obj in f.items():
                if not isinstance(obj, h5py.Dataset) or name.startswith("#"):
                    continue
                cls = obj.attrs.get("MATLAB_class", b"")
                cls = cls.decode() if isinstance(cls, bytes) else str(cls)
                if cls in _MAT_SKIP_CLASSES or obj.attrs.get("MATLAB_empty", 0):
                    continue
                if obj.dtype.kind not in "biuf":
                    continue
                # MATLAB is column-major: HDF5 holds the transpose of the MATLAB array
                data = np.asarray(obj[()]).T
                if cls == "logical":
                    data = data.astype(bool)
                arrays[name] = data
    except OSError as err:
        raise FileFormatError(
            f"'{path}' is a damaged or truncated MATLAB v7.3 (HDF5) file: {err}."
        ) from None
    attrs = {
        "mat_version": "7.3",
        "mat_header": header.rstrip(b"\x00 ").decode("latin-1", "replace"),
    }
    return arrays, attrs


def _mat_dims(
    shape: tuple[int, ...], dims: Sequence[Hashable] | None, time_axis: int | None, time_dim: str
) -> tuple[tuple[Hashable, ...], int]:
    """Names of the axes of a 3-D array (MATLAB order) and the index of the time axis."""
    if time_axis is not None:
        if isinstance(time_axis, bool) or not isinstance(time_axis, (int, np.integer)):
            raise ValueError(f"time_axis must be 0, 1, 2 or -1..-3, got {time_axis!r}.")
        if not -3 <= time_axis <= 2:
            raise ValueError(f"time_axis must be 0, 1, 2 or -1..-3, got {time_axis}.")
        t = int(time_axis) % 3
        if dims is not None and time_dim in dims and list(dims).index(time_dim) != t:
            raise ValueError(
                f"time_axis={time_axis} disagrees with dims={tuple(dims)!r}, which puts "
                f"{time_dim!r} at axis {list(dims).index(time_dim)}; give one or make them agree."
            )
    elif dims is not None and time_dim in dims:
        t = list(dims).index(time_dim)
    else:
        sizes = list(shape)
        equal = [(i, j) for i in range(3) for j in range(i + 1, 3) if sizes[i] == sizes[j]]
        if len(equal) == 1:
            t = ({0, 1, 2} - set(equal[0])).pop()
        else:
            t = 2
    if dims is None:
        spatial = iter(("y", "x"))
        names = tuple(time_dim if i == t else next(spatial) for i in range(3))
    else:
        names = tuple(dims)
        if names[t] != time_dim:
            names = tuple(time_dim if i == t else n for i, n in enumerate(names))
    return names, t


def open_mat(
    path: str | os.PathLike[str],
    *,
    variables: Sequence[str] | None = None,
    dims: Sequence[Hashable] | None = None,
    time_axis: int | None = None,
    time_dim: str = "time",
) -> xr.Dataset:
    """Read the numeric 3-D (and 2-D) arrays of a MATLAB ``.mat`` file as a Dataset.

    v4/v5/v7 files are read with :func:`scipy.io.loadmat`, v7.3 (HDF5 with a 512-byte MATLAB
    userblock) with h5py, transposed back to MATLAB's (column-major) axis order. Everything is
    loaded into memory. Character arrays, cells, structs, complex arrays and vectors (arrays
    with a length-1 axis) are skipped unless named in ``variables`` (then they raise).

    The time axis of a 3-D array ``(a0, a1, a2)`` (in MATLAB order) is, in order of priority:
    ``time_axis`` if given; the position of ``time_dim`` in ``dims`` if given; the one axis
    whose length differs when the other two are equal (square frames); otherwise the **last**
    axis, since MATLAB stacks frames as ``H(:, :, k)``. The two other axes are the spatial
    ``(y, x)`` in that order (rows, columns), named by ``dims`` or ``"y"``, ``"x"``. Each 3-D
    variable is returned as ``(time, y, x)``; 2-D variables get the spatial names.

    Parameters
    ----------
    path : str or path-like
        The ``.mat`` file.
    variables : sequence of str, optional
        Names to read; default every numeric 2-D/3-D array.
    dims : sequence of three str, optional
        Names of the axes of 3-D arrays in MATLAB order, e.g. ``("lat", "lon", "time")``. The
        axis chosen as time is renamed ``time_dim``.
    time_axis : int, optional
        MATLAB-order axis (0, 1, 2 or negative) that holds time; overrides detection.
    time_dim : str
        Name of the time dimension.

    Returns
    -------
    xarray.Dataset
        Variables in their stored dtype (``logical`` becomes bool). Attributes: ``source``,
        ``mat_version`` (``"4"``, ``"5"`` or ``"7.3"``) and the ``mat_header`` text. No
        coordinates are invented.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FileFormatError
        If the file is not a MATLAB file, is damaged or truncated, holds no numeric 2-D/3-D
        array, or its variables disagree on dimension sizes.
    ValueError
        Bad ``dims`` / ``time_axis`` / ``variables``.

    Examples
    --------
    >>> import tempfile, os, scipy.io
    >>> tmp = os.path.join(tempfile.mkdtemp(), "field.mat")
    >>> frames = np.zeros((32, 32, 5), dtype="float32")      # MATLAB: H(:, :, k) is frame k
    >>> scipy.io.savemat(tmp, {"H": frames})
    >>> ds = open_mat(tmp)
    >>> ds["H"].dims, ds["H"].shape
    (('time', 'y', 'x'), (5, 32, 32))
    """
    p = _existing(path)
    if dims is not None and (isinstance(dims, str) or len(dims) != 3 or len(set(dims)) != 3):
        raise ValueError(
            f"dims must name the three axes of the 3-D arrays in MATLAB order, e.g. "
            f"('y', 'x', 'time'); got {dims!r}."
        )
    import h5py

    arrays, attrs = _read_mat_v73(p) if h5py.is_hdf5(p) else _read_mat_v5(p)

    if variables is not None:
        if isinstance(variables, str):
            variables = [variables]
        missing = [v for v in variables if v not in arrays]
        if missing:
            raise ValueError(
                f"variables {missing!r} are not numeric arrays in '{p}'; it has {sorted(arrays)!r}."
            )
        selected = {v: arrays[v] for v in variables}
    else:
        selected = arrays

    data_vars: dict[str, tuple[tuple[Hashable, ...], np.ndarray]] = {}
    for name, arr in selected.items():
        usable = arr.dtype.kind in "biuf" and arr.ndim in (2, 3) and min(arr.shape, default=0) > 1
        if not usable:
            if variables is not None:
                raise ValueError(
                    f"Variable {name!r} in '{p}' is not a numeric 2-D/3-D array (dtype "
                    f"{arr.dtype}, shape {arr.shape}); xsr reads movies and 2-D fields only."
                )
            continue
        if arr.ndim == 3:
            names, t = _mat_dims(arr.shape, dims, time_axis, time_dim)
            spatial = tuple(n for i, n in enumerate(names) if i != t)
            data_vars[name] = ((time_dim, *spatial), np.moveaxis(arr, t, 0))
        else:
            if dims is not None:
                names, t = _mat_dims((0, 0, 0), dims, time_axis, time_dim)
                spatial = tuple(n for i, n in enumerate(names) if i != t)
            else:
                spatial = ("y", "x")
            data_vars[name] = (spatial, arr)
    if not data_vars:
        raise FileFormatError(
            f"'{p}' holds no numeric 2-D or 3-D array (found {sorted(arrays)!r}); it may be "
            "truncated or hold only text, cells or structs."
        )
    try:
        ds = xr.Dataset(data_vars)
    except ValueError as err:
        raise FileFormatError(
            f"The arrays of '{p}' disagree on dimension sizes ({err}); read them one at a time "
            "with variables=[...] or give dims=/time_axis=."
        ) from None
    ds.attrs = {"source": str(p), **attrs}
    return ds


# ---------------------------------------------------------------------------- YUV4MPEG2

_Y4M_MAGIC = b"YUV4MPEG2"
#: colourspace tag -> (horizontal, vertical) chroma subsampling; None for mono
_Y4M_CHROMA: dict[str, tuple[int, int] | None] = {
    "420jpeg": (2, 2),
    "420paldv": (2, 2),
    "420mpeg2": (2, 2),
    "420": (2, 2),
    "422": (2, 1),
    "411": (4, 1),
    "444": (1, 1),
    "444alpha": (1, 1),
    "mono": None,
}
_Y4M_HEADER_MAX = 4096


def _parse_y4m_header(path: Path, line: bytes) -> dict[str, Any]:
    if not line.startswith(_Y4M_MAGIC + b" ") and line != _Y4M_MAGIC:
        raise FileFormatError(
            f"'{path}' is not a YUV4MPEG2 file: it does not start with 'YUV4MPEG2 '."
        )
    fields: dict[str, Any] = {"comments": []}
    for token in line[len(_Y4M_MAGIC) :].decode("ascii", "replace").split():
        key, value = token[0], token[1:]
        if key == "X":
            fields["comments"].append(value)
        else:
            fields[key] = value
    for key in ("W", "H"):
        if key not in fields:
            raise FileFormatError(f"'{path}': the YUV4MPEG2 header has no '{key}' parameter.")
        if not fields[key].isdigit() or int(fields[key]) <= 0:
            raise FileFormatError(f"'{path}': bad {key} in the YUV4MPEG2 header: {fields[key]!r}.")
    return fields


def _y4m_colorspace(path: Path, tag: str) -> tuple[str, tuple[int, int] | None, int]:
    m = re.fullmatch(r"(420jpeg|420paldv|420mpeg2|444alpha|420|422|411|444|mono)(?:p(\d+))?", tag)
    if m is None:
        m2 = re.fullmatch(r"(mono)(\d+)", tag)  # e.g. mono16
        if m2 is None:
            raise FileFormatError(
                f"'{path}': unsupported YUV4MPEG2 colourspace C{tag}; supported: "
                f"{sorted(_Y4M_CHROMA)} (optionally with p10/p12/p16)."
            )
        base, bits = m2.group(1), int(m2.group(2))
    else:
        base, bits = m.group(1), int(m.group(2) or 8)
    if not 8 <= bits <= 16:
        raise FileFormatError(f"'{path}': unsupported bit depth {bits} in C{tag}.")
    return base, _Y4M_CHROMA[base], bits


class _Y4MPlane:
    """Array-like view of one plane of every frame of a .y4m file, read on demand.

    Holds only the path and offsets (so it pickles); each ``__getitem__`` memory-maps the file
    and copies the frames it needs.
    """

    def __init__(
        self,
        path: str,
        offsets: tuple[int, ...],
        plane_offset: int,
        shape: tuple[int, int],
        dtype: np.dtype,
    ) -> None:
        self.path = path
        self.offsets = offsets
        self.plane_offset = plane_offset
        self.shape = (len(offsets), *shape)
        self.dtype = dtype
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        frames = np.arange(self.shape[0])[key[0]]
        h, w = self.shape[1:]
        n = h * w * self.dtype.itemsize
        mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        try:
            out = np.empty((np.size(frames), h, w), dtype=self.dtype)
            for k, i in enumerate(np.atleast_1d(frames)):
                start = self.offsets[i] + self.plane_offset
                out[k] = np.frombuffer(mm[start : start + n], dtype=self.dtype).reshape(h, w)
        finally:
            del mm
        if np.ndim(frames) == 0:
            out = out[0]
        return out[(Ellipsis, *key[1:])] if len(key) > 1 else out


def open_y4m(
    path: str | os.PathLike[str],
    *,
    chroma: Literal["none", "native", "upsample"] = "none",
    raw: bool = False,
    chunks: int | None = None,
) -> xr.Dataset:
    """Read a YUV4MPEG2 (``.y4m``) video as a ``(time, y, x)`` movie.

    Parameters
    ----------
    path : str or path-like
        The ``.y4m`` file (8-bit, or 9-16-bit with ``C...p10`` style tags, little-endian).
    chroma : {"none", "native", "upsample"}
        ``"none"``: luma only. ``"native"``: also ``U``/``V`` on their own, subsampled grid with
        dims ``(time, y_c, x_c)`` (``ceil(H/sy), ceil(W/sx)``; coordinates are the chroma
        sample positions in luma pixels, ``(i + 0.5) * s - 0.5``, ignoring the fine siting
        differences between 420jpeg/420mpeg2/420paldv). ``"upsample"``: ``U``/``V`` repeated to
        the luma grid (nearest neighbour) with dims ``(time, y, x)``. Mono videos have no
        chroma; asking for it raises.
    raw : bool
        ``False`` (default): float32 in ``[0, 1]`` (sample / (2**bits - 1)). ``True``: the stored
        integers (uint8, or uint16 for deeper videos).
    chunks : int, optional
        Frames per dask chunk. Default ``None`` reads the whole video into memory; an integer
        returns lazy dask-backed variables that read their frames from the file on demand (the
        graph holds only the path and frame offsets, so it pickles for distributed workers).
        The file is scanned once either way, to find and check every frame.

    Returns
    -------
    xarray.Dataset
        ``Y`` (luma) ``(time, y, x)``, optional chroma ``U``, ``V`` (upper case, the YUV
        notation: a data variable cannot share the name of the ``y`` dimension); ``time`` in
        seconds from the frame rate (frame index if the header has none), ``y``/``x`` pixel
        indices. Attributes carry
        the header: ``width``, ``height``, ``frame_rate`` (``"num:den"``), ``interlacing``,
        ``pixel_aspect``, ``colorspace``, ``bit_depth``, ``comments``, ``source``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FileFormatError
        Bad magic or header, unsupported colourspace, a missing ``FRAME`` marker, no frame, or
        a truncated frame (with its index and byte counts).
    ValueError
        Bad ``chroma`` option, or chroma asked of a mono video.

    Examples
    --------
    >>> import tempfile, os
    >>> tmp = os.path.join(tempfile.mkdtemp(), "clip.y4m")
    >>> frame = b"FRAME\\n" + bytes(4 * 4) + bytes(2 * 2) * 2      # 4x4 luma, 2x2 U and V
    >>> with open(tmp, "wb") as f:
    ...     _ = f.write(b"YUV4MPEG2 W4 H4 F25:1 Ip A1:1 C420jpeg\\n" + frame * 3)
    >>> ds = open_y4m(tmp)
    >>> ds["Y"].shape, ds["time"].values.tolist()
    ((3, 4, 4), [0.0, 0.04, 0.08])
    """
    p = _existing(path)
    if chroma not in ("none", "native", "upsample"):
        raise ValueError(f"chroma must be 'none', 'native' or 'upsample', got {chroma!r}.")
    if chunks is not None and (
        isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1
    ):
        raise ValueError(f"chunks must be a positive number of frames or None, got {chunks!r}.")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(_Y4M_HEADER_MAX)
    end = head.find(b"\n")
    if end < 0:
        if not head.startswith(_Y4M_MAGIC):
            raise FileFormatError(
                f"'{p}' is not a YUV4MPEG2 file: it does not start with 'YUV4MPEG2 '."
            )
        raise FileFormatError(f"'{p}': the YUV4MPEG2 header line is not terminated (truncated?).")
    fields = _parse_y4m_header(p, head[:end])
    width, height = int(fields["W"]), int(fields["H"])
    tag = fields.get("C", "420jpeg")
    base, sub, bits = _y4m_colorspace(p, tag)
    if chroma != "none" and sub is None:
        raise ValueError(f"'{p}' is a mono (luma-only) video; use chroma='none'.")
    sample = 1 if bits == 8 else 2
    planes = [(height, width)]
    if sub is not None:
        ch, cw = -(-height // sub[1]), -(-width // sub[0])
        planes += [(ch, cw), (ch, cw)]
        if base == "444alpha":
            planes.append((height, width))
    frame_bytes = sum(h * w for h, w in planes) * sample

    mm = np.memmap(p, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    offsets = []
    pos = end + 1
    index = 0
    while pos < size:
        marker = bytes(mm[pos : pos + 5])
        if marker != b"FRAME":
            raise FileFormatError(
                f"'{p}': expected 'FRAME' at byte {pos} (frame {index}), found {marker!r}; the "
                "file is damaged or its header does not match its frames."
            )
        nl = -1
        search = bytes(mm[pos + 5 : pos + 5 + _Y4M_HEADER_MAX])
        nl = search.find(b"\n")
        if nl < 0:
            raise FileFormatError(f"'{p}': frame {index} header is not terminated (truncated).")
        start = pos + 5 + nl + 1
        if start + frame_bytes > size:
            raise FileFormatError(
                f"'{p}' is truncated: frame {index} has {size - start} of its {frame_bytes} "
                f"bytes ({width}x{height} C{tag})."
            )
        offsets.append(start)
        pos = start + frame_bytes
        index += 1
    if not offsets:
        raise FileFormatError(f"'{p}' holds a YUV4MPEG2 header but no frame.")

    dtype = np.dtype("uint8") if sample == 1 else np.dtype("<u2")
    nt = len(offsets)
    stacks: list[Any] = []
    plane_offset = 0
    for h, w in planes:
        plane = _Y4MPlane(str(p), tuple(offsets), plane_offset, (h, w), dtype)
        if chunks is None:
            stacks.append(plane[:])
        else:
            import dask.array as dsa
            from dask.base import tokenize

            token = tokenize(str(p), p.stat().st_mtime_ns, size, plane_offset, chunks)
            stacks.append(
                dsa.from_array(plane, chunks=(chunks, h, w), name=f"y4m-{token}", asarray=True)
            )
        plane_offset += h * w * sample
    del mm

    def convert(a: Any) -> Any:
        if raw:
            return a.astype(dtype.newbyteorder("="))
        return (a.astype("float32") / np.float32(2**bits - 1)).astype("float32")

    rate = fields.get("F", "")
    m = re.fullmatch(r"(\d+):(\d+)", rate)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        fps = Fraction(int(m.group(1)), int(m.group(2)))
        times = np.arange(nt, dtype="float64") * (fps.denominator / fps.numerator)
        time_attrs = {"units": "s", "long_name": "time since the first frame", "axis": "T"}
    else:
        times = np.arange(nt, dtype="float64")
        time_attrs = {"units": "1", "long_name": "frame index (no frame rate in header)"}
    coords: dict[str, Any] = {
        "time": ("time", times, time_attrs),
        "y": ("y", np.arange(height, dtype="float64"), {"long_name": "pixel row", "axis": "Y"}),
        "x": ("x", np.arange(width, dtype="float64"), {"long_name": "pixel column", "axis": "X"}),
    }
    value_attrs = (
        {"units": "1", "valid_range": [0, 2**bits - 1]}
        if raw
        else {"units": "1", "valid_range": [0.0, 1.0]}
    )
    data_vars: dict[str, Any] = {
        "Y": (("time", "y", "x"), convert(stacks[0]), {"long_name": "luma (Y')", **value_attrs})
    }
    if chroma != "none" and sub is not None:
        sx, sy = sub
        for name, stack in (("U", stacks[1]), ("V", stacks[2])):
            attrs = {"long_name": f"chroma {name} (C{'b' if name == 'U' else 'r'})"}
            if chroma == "upsample":
                up = stack.repeat(sy, axis=1).repeat(sx, axis=2)[:, :height, :width]
                data_vars[name] = (("time", "y", "x"), convert(up), {**attrs, **value_attrs})
            else:
                data_vars[name] = (("time", "y_c", "x_c"), convert(stack), {**attrs, **value_attrs})
        if chroma == "native":
            ch, cw = planes[1]
            coords["y_c"] = ("y_c", (np.arange(ch) + 0.5) * sy - 0.5, {"long_name": "chroma row"})
            coords["x_c"] = (
                "x_c",
                (np.arange(cw) + 0.5) * sx - 0.5,
                {"long_name": "chroma column"},
            )
    attrs = {
        "source": str(p),
        "format": "YUV4MPEG2",
        "width": width,
        "height": height,
        "frame_rate": rate,
        "interlacing": fields.get("I", "?"),
        "pixel_aspect": fields.get("A", "0:0"),
        "colorspace": tag,
        "bit_depth": bits,
        "comments": " ".join(fields["comments"]),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------- any format

#: Suffixes read as NetCDF (netCDF4/HDF5 or netCDF3) files.
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5", ".he5")
#: Suffixes read as Zarr stores.
ZARR_SUFFIXES = (".zarr",)
_SUFFIX_HINT = (
    "give a NetCDF file (" + ", ".join(NETCDF_SUFFIXES) + "), a Zarr store (.zarr), a MATLAB "
    "file (.mat) or a YUV4MPEG2 video (.y4m)"
)


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a Zarr group or array (format 2 or 3).

    Parameters
    ----------
    path : str or path-like
        A local path.

    Returns
    -------
    bool
        ``True`` when the folder holds ``zarr.json``, ``.zgroup`` or ``.zarray``.

    Examples
    --------
    >>> import tempfile
    >>> is_zarr_store(tempfile.mkdtemp())
    False
    """
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in ("zarr.json", ".zgroup", ".zarray"))


def _open_zarr(path: str | Path, label: str, **kwargs: Any) -> xr.Dataset:
    import json

    try:
        return xr.open_zarr(path, **kwargs)
    except FileNotFoundError as err:
        raise FileFormatError(
            f"'{label}' is not a readable Zarr store: {err}. Give the folder that holds "
            "zarr.json (format 3) or .zgroup (format 2)."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(
            f"'{label}' is a damaged Zarr store: its metadata is not valid JSON ({err}). "
            "Rewrite the store from its source."
        ) from None


def open_dataset(path: str | os.PathLike[str], **kwargs: Any) -> xr.Dataset:
    """Open a NetCDF file, Zarr store, ``.mat`` file or ``.y4m`` video as a Dataset.

    The format is chosen by the suffix, or by content for a folder that is a Zarr store.
    NetCDF files are opened lazily with dask (``chunks={}``: the file's own chunks) and Zarr
    stores with :func:`xarray.open_zarr` (the store's chunks; consolidated metadata when
    present, formats 2 and 3); ``.mat`` and ``.y4m`` go to :func:`open_mat` and
    :func:`open_y4m`. Damaged or truncated files raise :class:`FileFormatError` naming the file.

    Parameters
    ----------
    path : str or path-like
        The file or store. A ``scheme://`` address is opened only when it names a Zarr
        store (``.zarr``), through xarray's fsspec support.
    **kwargs
        Passed on to the reader (:func:`xarray.open_dataset`, :func:`xarray.open_zarr`,
        :func:`open_mat` or :func:`open_y4m`), e.g. ``chunks={"time": 10}``.

    Returns
    -------
    xarray.Dataset
        The data, lazy for NetCDF and Zarr.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FileFormatError
        The suffix is unknown, or the file is damaged, truncated or not of its suffix's format.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "run.nc")
    >>> random_movie(4, 8, 8).to_netcdf(path)
    >>> ds = open_dataset(path)
    >>> ds["h"].chunks is not None, ds["h"].shape
    (True, (4, 8, 8))
    """
    text = os.fspath(path)
    if "://" in text:
        if not text.rstrip("/").lower().endswith(ZARR_SUFFIXES):
            raise FileFormatError(
                f"'{text}' is a remote address; xsr opens remote data only as Zarr stores "
                "(.zarr). Copy the file to a local path, or open it yourself with xarray and "
                "pass the Dataset."
            )
        try:
            return xr.open_zarr(text, **kwargs)
        except (ImportError, ValueError, OSError) as err:
            raise FileFormatError(
                f"cannot open the remote Zarr store '{text}': {type(err).__name__}: {err}. "
                "Install the fsspec package for its scheme (s3fs, gcsfs, ...) or copy it locally."
            ) from None
    p = Path(text).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"No such file or store: '{p}'.")
    suffix = p.suffix.lower()
    if suffix in ZARR_SUFFIXES or is_zarr_store(p):
        if not p.is_dir():
            raise FileFormatError(f"'{p}' is a file, but a Zarr store is a folder; {_SUFFIX_HINT}.")
        if not is_zarr_store(p):
            raise FileFormatError(
                f"'{p}' is a folder without Zarr metadata (zarr.json or .zgroup): not a Zarr "
                "store, or an empty/unfinished one."
            )
        ds = _open_zarr(p, str(p), **kwargs)
        for var in ds.variables.values():  # as xarray does for files: where the data live
            var.encoding.setdefault("source", str(p))
        return ds
    if p.is_dir():
        raise IsADirectoryError(f"'{p}' is a folder but not a Zarr store; {_SUFFIX_HINT}.")
    if suffix == ".mat":
        return open_mat(p, **kwargs)
    if suffix == ".y4m":
        return open_y4m(p, **kwargs)
    if suffix not in NETCDF_SUFFIXES:
        raise FileFormatError(f"cannot tell the format of '{p}' from its suffix; {_SUFFIX_HINT}.")
    kwargs.setdefault("chunks", {})
    try:
        return xr.open_dataset(p, **kwargs)
    except (OSError, ValueError) as err:
        size = p.stat().st_size
        raise FileFormatError(
            f"'{p}' ({size} bytes) is not a readable NetCDF file: it is damaged, truncated or "
            f"of another format ({type(err).__name__}: {err}). Check the file (ncdump -h) or "
            "copy it again from its source."
        ) from None

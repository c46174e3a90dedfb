"""Resumable, region-by-region Zarr writes of lazy Datasets, and whole-file upscaling.

A super-resolved archive is usually far larger than memory and takes hours to compute. The
functions here stream a lazy (dask-backed) Dataset to a Zarr store one *region* at a time — a
region is a block of consecutive steps along one dimension (``time`` by default) that matches the
store's chunks along that dimension exactly — so memory stays bounded whatever the archive's
length, and they make the write **resumable**: a run killed at any point and started again with
the same arguments computes only the missing regions and ends with the same store an
uninterrupted run writes.

How the store records progress
------------------------------
Besides the Dataset's own arrays, the store holds a subgroup ``_xsr`` (xarray ignores subgroups
when it opens the store, so the Dataset is unchanged):

* ``_xsr`` attributes, written once before anything else: the job ``fingerprint`` (xsr version,
  the identity of the inputs — names, shapes, dtypes, a hash of coordinates and attributes —,
  the model's sha256, the arguments, and the layout of the regions) and its sha256 ``job_id``.
* ``_xsr/completed``: one ``uint8`` per region, **one Zarr chunk per region**, created after the
  Dataset's metadata (its presence means "initialised") and set to 1 for a region only *after*
  every chunk of that region's data has been written. Writing one chunk is atomic (the local store
  writes a temporary file and renames it; object stores put whole objects), so a region cut off
  half-way is never taken for complete: it is recomputed on the next run.

When every region is complete the metadata is consolidated; a store with every region complete
and consolidated metadata is *finished*. Only Zarr output is resumable: NetCDF output
(:func:`upscale_file` with a ``.nc`` path) is streamed into a resumable temporary Zarr store
beside the output first, then converted chunk by chunk into ``OUT.nc`` through a ``.part`` file
renamed into place at the end, so a killed NetCDF job also resumes its expensive part.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import warnings
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr._version import __version__

__all__ = [
    "ArchiveError",
    "JobMismatchError",
    "ReadOnlyStoreError",
    "StoreExistsError",
    "store_status",
    "upscale_file",
    "upscale_to_zarr",
    "write_zarr_resumable",
]

logger = logging.getLogger(__name__)

#: Version of the ``_xsr`` record layout written into stores.
ARCHIVE_FORMAT = 1
#: Name of the subgroup that holds the job record and the completion markers.
STATE_GROUP = "_xsr"
#: Name of the per-region completion marker array inside :data:`STATE_GROUP`.
MARKER_ARRAY = "completed"
#: Target size of one region of output, used when ``region_size`` is not given.
DEFAULT_REGION_BYTES = 64 * 2**20

_ZARR_SUFFIXES = (".zarr",)
_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
_INPUT_NETCDF_SUFFIXES = (*_NETCDF_SUFFIXES, ".h5", ".hdf5", ".he5")
#: Arguments that choose *where* or *how fast* to compute, not *what*: left out of fingerprints.
_NON_IDENTITY_ARGUMENTS = frozenset({"device", "batch_size", "progress"})
_OVERWRITE_HINT = "pass overwrite=True (--overwrite on the command line)"


class ArchiveError(ValueError):
    """An output store cannot be written as asked (base class of the errors of this module)."""


class StoreExistsError(ArchiveError, FileExistsError):
    """The output store exists and may not be resumed or replaced without ``overwrite=True``."""


class JobMismatchError(StoreExistsError):
    """The output store holds an unfinished job with a different fingerprint."""


class ReadOnlyStoreError(ArchiveError, PermissionError):
    """The output store (or the folder it would be created in) cannot be written."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _is_dask(var: xr.Variable | xr.DataArray) -> bool:
    """Whether ``var`` is dask-backed (asked without touching ``.data``, which would load a
    lazily indexed file variable into memory)."""
    return var.chunks is not None


def _in_memory(var: xr.Variable) -> bool:
    return bool(getattr(var, "_in_memory", True))


def _source_identity(var: xr.Variable) -> dict[str, Any]:
    """Identity of a variable still in its file (opened without dask): the file's stat."""
    source = var.encoding.get("source")
    if source and os.path.exists(source):
        stat = os.stat(source)
        return {
            "source": os.path.abspath(source),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
    return {"sha256": _hash_values(var.values)}


def _jsonable(value: Any) -> Any:
    """Turn attribute-like values into plain JSON types (deterministically)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _canonical_json(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_values(values: np.ndarray) -> str:
    values = np.asarray(values)
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    if values.dtype.kind in "OUS":
        digest.update("\x1f".join(map(str, values.ravel().tolist())).encode("utf-8"))
    else:
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _dataset_identity(
    ds: xr.Dataset, *, attrs: bool = True, chunks: bool = True, content: bool = True
) -> dict[str, Any]:
    """A JSON-able description of a Dataset that identifies it without computing anything.

    Every variable is described by dims, shape and dtype (and its chunks when ``chunks``).
    In-memory coordinates are hashed. With ``content``, in-memory data variables are hashed
    too, and dask-backed ones are identified by their dask name — a deterministic hash of how
    the array was built (for an opened file: its path, modification time and chunks). The
    ``history`` attribute is always left out: it carries timestamps that differ between runs.
    """
    variables: dict[str, Any] = {}
    for name, var in ds.variables.items():
        entry: dict[str, Any] = {
            "dims": [str(d) for d in var.dims],
            "shape": list(var.shape),
            "dtype": str(var.dtype),
            "coord": name in ds.coords,
        }
        if _is_dask(var):
            if chunks:
                entry["chunks"] = [list(c) for c in var.chunks]
            if content:
                entry["dask_name"] = str(var.data.name)
        elif name in ds.coords or (content and _in_memory(var)):
            entry["sha256"] = _hash_values(var.values)
        elif content:
            entry.update(_source_identity(var))
        if attrs:
            entry["attrs"] = _jsonable({k: v for k, v in var.attrs.items() if k != "history"})
        variables[str(name)] = entry
    out: dict[str, Any] = {
        "dims": {str(k): int(v) for k, v in ds.sizes.items()},
        "variables": variables,
    }
    if attrs:
        out["attrs"] = _jsonable({k: v for k, v in ds.attrs.items() if k != "history"})
    return out


def _as_dataset(obj: xr.Dataset | xr.DataArray, argname: str) -> tuple[xr.Dataset, Any]:
    """``(dataset, dataarray_name)``; the name is ``_NOT_A_DATAARRAY`` for Datasets."""
    if isinstance(obj, xr.Dataset):
        return obj, _NOT_A_DATAARRAY
    if isinstance(obj, xr.DataArray):
        name = obj.name if obj.name is not None else _UNNAMED
        return obj.to_dataset(name=name, promote_attrs=True), obj.name
    raise TypeError(
        f"{argname} must be an xarray.Dataset or xarray.DataArray, got {type(obj).__name__}"
    )


_NOT_A_DATAARRAY = object()
_UNNAMED = "__xarray_dataarray_variable__"


def _restore_kind(ds: xr.Dataset, name: Any) -> xr.Dataset | xr.DataArray:
    if name is _NOT_A_DATAARRAY:
        return ds
    da = ds[name if name is not None else _UNNAMED]
    return da.rename(None) if name is None else da


# --------------------------------------------------------------------------------------------
# stores: local paths, checks, state
# --------------------------------------------------------------------------------------------


def _local_path(store: Any) -> Path | None:
    """The filesystem path of ``store`` when it is a local path, else ``None``."""
    if isinstance(store, os.PathLike) or (isinstance(store, str) and "://" not in store):
        return Path(os.fspath(store)).expanduser()
    root = getattr(store, "root", None)
    if root is not None and type(store).__name__ == "LocalStore":
        return Path(root)
    return None


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zarray"))


def _check_writable(store: Any) -> None:
    """Raise :class:`ReadOnlyStoreError` early when ``store`` clearly cannot be written."""
    if getattr(store, "read_only", False):
        raise ReadOnlyStoreError(
            f"store {store!r} was opened read-only; pass a writable store or path as `store`"
        )
    path = _local_path(store)
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise StoreExistsError(
            f"store {str(path)!r} exists and is a file, not a Zarr store; choose another path"
        )
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ReadOnlyStoreError(
            f"cannot create store {str(path)!r}: {str(probe)!r} is a file, not a folder; "
            "choose a path in a writable folder"
        )
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ReadOnlyStoreError(
            f"cannot write store {str(path)!r}: {str(probe)!r} is not writable; "
            "choose a path in a writable folder"
        )


@contextlib.contextmanager
def _explain_os_errors(store: Any) -> Iterator[None]:
    """Turn permission and read-only-filesystem errors into :class:`ReadOnlyStoreError`."""
    try:
        yield
    except ArchiveError:
        raise
    except (PermissionError, NotADirectoryError) as err:
        raise ReadOnlyStoreError(
            f"cannot write store {_store_label(store)}: {err}; choose a writable path for `store`"
        ) from err
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ReadOnlyStoreError(
                f"cannot write store {_store_label(store)}: {err}; "
                "choose a writable path for `store`"
            ) from err
        raise
    except ValueError as err:
        if "read-only" in str(err) or "read only" in str(err):
            raise ReadOnlyStoreError(
                f"cannot write store {_store_label(store)}: {err}; "
                "pass a writable store or path as `store`"
            ) from err
        raise


def _store_label(store: Any) -> str:
    path = _local_path(store)
    return repr(str(path)) if path is not None else repr(store)


def _zarr_store_arg(store: Any) -> Any:
    path = _local_path(store)
    if path is not None and not hasattr(store, "root"):
        return str(path)
    return store


def _read_state(store: Any) -> dict[str, Any] | None:
    """What is in ``store``: ``None`` when empty or absent, else a description.

    The description has ``xsr`` (whether the job record exists), and for xsr stores ``attrs``
    (the record), ``initialised`` (the marker array exists), ``completed`` (bool per region) and
    ``consolidated``.
    """
    import zarr
    from zarr.errors import GroupNotFoundError

    path = _local_path(store)
    if path is not None:
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return None
        if path.is_dir() and not _looks_like_zarr(path):
            return {"xsr": False, "zarr": False}
    try:
        root = zarr.open_group(_zarr_store_arg(store), mode="r", use_consolidated=False)
    except (FileNotFoundError, GroupNotFoundError):
        return None if path is None else {"xsr": False, "zarr": True}
    except Exception as err:  # a store that is not a readable Zarr group
        logger.debug("store %r is not a readable Zarr group: %s", store, err)
        return {"xsr": False, "zarr": False}
    try:
        state = root[STATE_GROUP]
    except KeyError:
        return {"xsr": False, "zarr": True}
    attrs = dict(state.attrs)
    if "job_id" not in attrs:
        return {"xsr": False, "zarr": True}
    info: dict[str, Any] = {"xsr": True, "zarr": True, "attrs": attrs}
    try:
        markers = state[MARKER_ARRAY]
    except KeyError:
        info["initialised"] = False
        info["completed"] = np.zeros(int(attrs.get("n_regions", 0)), dtype=bool)
        info["consolidated"] = False
        return info
    info["initialised"] = True
    info["completed"] = _read_markers(markers)
    consolidated = zarr.open_group(_zarr_store_arg(store), mode="r")
    info["consolidated"] = consolidated.metadata.consolidated_metadata is not None
    return info


def _read_markers(markers: Any) -> np.ndarray:
    """Completion flags, one per region; a marker that cannot be read counts as not complete."""
    try:
        return np.asarray(markers[:]) == 1
    except Exception:  # one damaged marker chunk must not hide the others
        flags = np.zeros(markers.shape[0], dtype=bool)
        for i in range(markers.shape[0]):
            with contextlib.suppress(Exception):
                flags[i] = bool(markers[i] == 1)
        return flags


def store_status(store: Any) -> dict[str, Any]:
    """Progress of a resumable job written by :func:`write_zarr_resumable`.

    Parameters
    ----------
    store : str, path or zarr store
        The output store.

    Returns
    -------
    dict
        ``job_id`` (sha256 of the job fingerprint), ``fingerprint`` (dict), ``regions_along``
        (dimension name), ``region_size`` (steps per region), ``n_regions``, ``completed`` (sorted
        list of the indices of complete regions), ``missing`` (the others) and ``finished``
        (every region complete and the metadata consolidated).

    Raises
    ------
    FileNotFoundError
        If ``store`` is absent or empty.
    ArchiveError
        If ``store`` was not written by :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "out.zarr")
    >>> _ = write_zarr_resumable(random_movie(4, 8, 8).chunk(time=2), path, progress=False)
    >>> status = store_status(path)
    >>> status["n_regions"], status["completed"], status["finished"]
    (2, [0, 1], True)
    """
    state = _read_state(store)
    if state is None:
        raise FileNotFoundError(f"store {_store_label(store)} does not exist or is empty")
    if not state["xsr"]:
        raise ArchiveError(
            f"store {_store_label(store)} holds no xsr job record (it was not written by "
            "xsr.archive.write_zarr_resumable)"
        )
    attrs = state["attrs"]
    completed = state["completed"]
    done = [int(i) for i in np.flatnonzero(completed)]
    return {
        "job_id": attrs["job_id"],
        "fingerprint": attrs.get("fingerprint"),
        "regions_along": attrs.get("regions_along"),
        "region_size": attrs.get("region_size"),
        "n_regions": int(attrs.get("n_regions", completed.size)),
        "completed": done,
        "missing": [i for i in range(completed.size) if i not in set(done)],
        "finished": bool(state["initialised"] and completed.all() and state["consolidated"]),
    }


# --------------------------------------------------------------------------------------------
# preparing a lazy dataset for region writes
# --------------------------------------------------------------------------------------------


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


_KEPT_ENCODING = {"units", "calendar"}


def _prepare(ds: xr.Dataset, dim: Hashable, region_size: int) -> tuple[xr.Dataset, list[str]]:
    """Rechunk for region writes and reset encodings; returns ``(dataset, region_variables)``.

    Every non-index variable with ``dim`` becomes dask-backed with chunks of ``region_size``
    along ``dim`` and uniform chunks elsewhere (Zarr chunks equal to those), so no Zarr chunk is
    shared by two regions. Dask-backed variables without ``dim`` are loaded: they are written
    once, with the metadata. Encodings are reset but for time ``units``/``calendar``.
    """
    import dask

    variables = {}
    region_vars: list[str] = []
    static_lazy: dict[Hashable, xr.Variable] = {}
    for name, var in ds.variables.items():
        var = var.copy(deep=False)
        var.encoding = {k: v for k, v in var.encoding.items() if k in _KEPT_ENCODING}
        if name in ds.indexes:
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
            var = var.chunk(wanted)
            var.encoding["chunks"] = tuple(int(c[0]) for c in var.chunks)
            region_vars.append(str(name))
        elif _is_dask(var):
            static_lazy[name] = var
        variables[name] = var
    if static_lazy:
        names = list(static_lazy)
        (loaded,) = dask.compute([static_lazy[n].data for n in names])
        for name, values in zip(names, loaded):
            variables[name] = static_lazy[name].copy(data=np.asarray(values))
    coord_names = set(ds.coords)
    out = xr.Dataset(
        {k: v for k, v in variables.items() if k not in coord_names},
        coords={k: v for k, v in variables.items() if k in coord_names},
        attrs=dict(ds.attrs),
    )
    return out, region_vars


# --------------------------------------------------------------------------------------------
# the resumable writer
# --------------------------------------------------------------------------------------------


def _fingerprint(
    ds: xr.Dataset, job: Any, dim: Hashable, region_size: int, n_regions: int
) -> dict[str, Any]:
    if job is None:
        job = {"dataset": _dataset_identity(ds)}
    elif not isinstance(job, (str, Mapping)):
        raise TypeError(f"job_id must be a string, a mapping or None, got {type(job).__name__}")
    return _jsonable(
        {
            "xsr_version": __version__,
            "job": job,
            "output": _dataset_identity(ds, attrs=False, chunks=False, content=False),
            "layout": {
                "regions_along": str(dim),
                "region_size": region_size,
                "n_regions": n_regions,
                "length": int(ds.sizes[dim]),
            },
        }
    )


def _differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for key in sorted(set(old) | set(new)):
            keys += _differing_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return keys
    return [] if old == new else [prefix.rstrip(".") or "job"]


def _clear_store(store: Any) -> None:
    """Delete the contents of ``store`` (a Zarr store or an empty/absent folder)."""
    import zarr

    path = _local_path(store)
    if path is not None and path.exists():
        if path.is_dir() and any(path.iterdir()) and not _looks_like_zarr(path):
            raise StoreExistsError(
                f"store {str(path)!r} is a folder that is not a Zarr store; xsr will not delete "
                "it even with overwrite=True: choose another path"
            )
        shutil.rmtree(path)
        return
    zarr.open_group(_zarr_store_arg(store), mode="w")


def _init_store(ds: xr.Dataset, store: Any, state_attrs: dict[str, Any], n_regions: int) -> None:
    """Write the job record, then the template, then the (empty) marker array — in that order."""
    import zarr

    _clear_store(store)
    target = _zarr_store_arg(store)
    root = zarr.open_group(target, mode="w", zarr_format=3)
    root.create_group(STATE_GROUP, attributes=state_attrs)
    ds.to_zarr(target, mode="a", compute=False, consolidated=False, zarr_format=3)
    root.create_array(
        f"{STATE_GROUP}/{MARKER_ARRAY}",
        shape=(n_regions,),
        chunks=(1,),
        dtype="uint8",
        fill_value=0,
        compressors=None,
    )


def _consolidate(store: Any) -> None:
    import zarr

    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not yet part of the v3 specification.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(_zarr_store_arg(store))


def _open_result(store: Any) -> xr.Dataset:
    return xr.open_zarr(_zarr_store_arg(store), consolidated=True)


def write_zarr_resumable(
    obj: xr.Dataset | xr.DataArray,
    store: Any,
    *,
    regions_along: Hashable = "time",
    region_size: int | None = None,
    job_id: str | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> xr.Dataset | xr.DataArray:
    """Write a lazy Dataset to Zarr region by region, resumably, with bounded memory.

    The metadata (and every variable without ``regions_along``) is written first with the job
    fingerprint; then each region — ``region_size`` consecutive steps along ``regions_along``,
    one Zarr chunk deep — is computed on its own (only that region's part of the dask graph)
    and written, and only then recorded complete. Started again on an unfinished store of the
    same job, it skips the complete regions and recomputes the others, including any region cut
    off half-way, so the finished store equals an uninterrupted run's.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        What to write, usually lazy (dask-backed). In-memory variables are written too.
    store : str, path or zarr store
        Output Zarr store (format 3). A local path is created with its parent folders.
    regions_along : hashable, default "time"
        Dimension along which the output is cut into regions.
    region_size : int, optional
        Steps per region (= Zarr chunk along ``regions_along``). Default: the dask chunk along
        ``regions_along`` when uniform, capped so that one region is at most about 64 MiB.
        Chunks that differ are rechunked (best for speed: chunk the input so they match).
    job_id : str or mapping, optional
        What this computation is (a model hash, arguments, input identity). It goes into the
        store's fingerprint so that a store of another job is never resumed by mistake. Default:
        the identity of ``obj``: variables, shapes, dtypes, chunks, hashes of its coordinates,
        attributes and in-memory data, and the dask names of its lazy variables (deterministic
        hashes of how they were built). Dask names of user functions depend on how the function
        is defined (a function defined in a script and the same one in a notebook differ), so
        pass an explicit ``job_id`` for long jobs that may be resumed from elsewhere.
    overwrite : bool, default False
        Replace an existing store. Without it, an existing store is an error unless it is an
        unfinished store of the same job, which is resumed.
    progress : bool, default True
        Show a progress bar over the regions (tqdm, on stderr).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The written store opened lazily (same kind as ``obj``).

    Raises
    ------
    StoreExistsError
        ``store`` is finished, or is not an xsr store, and ``overwrite`` is false.
    JobMismatchError
        ``store`` holds an unfinished job with another fingerprint and ``overwrite`` is false.
    ReadOnlyStoreError
        ``store`` or its parent folder cannot be written.

    Notes
    -----
    A failed region (an exception while computing it) leaves the store resumable: the regions
    written before it stay complete, and the next call with the same arguments continues.
    The ``history`` attribute is left out of the fingerprint (its timestamps differ between
    runs). Zarr output only: see :func:`upscale_file` for NetCDF.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> ds = random_movie(6, 8, 8).chunk(time=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "out.zarr")
    >>> out = write_zarr_resumable(2 * ds, path, progress=False)
    >>> out["h"].chunks[0], bool((out["h"] == 2 * ds["h"]).all())
    ((2, 2, 2), True)
    """
    from tqdm.auto import tqdm

    ds, name = _as_dataset(obj, "obj")
    if regions_along not in ds.dims:
        raise ValueError(
            f"regions_along={regions_along!r} is not a dimension of the data (dimensions: "
            f"{list(ds.dims)}); pass regions_along=<one of them>"
        )
    dim = regions_along
    length = int(ds.sizes[dim])
    if length == 0:
        raise ValueError(f"dimension {dim!r} has length 0: nothing to write")
    if region_size is None:
        region_size = _default_region_size(ds, dim, DEFAULT_REGION_BYTES)
    region_size = min(_check_region_size(region_size), length)
    n_regions = math.ceil(length / region_size)

    _check_writable(store)
    fingerprint = _fingerprint(ds, job_id, dim, region_size, n_regions)
    job_hash = _sha256_text(_canonical_json(fingerprint))
    state_attrs = {
        "xsr_archive_format": ARCHIVE_FORMAT,
        "job_id": job_hash,
        "fingerprint": fingerprint,
        "regions_along": str(dim),
        "region_size": region_size,
        "n_regions": n_regions,
    }

    state = _read_state(store)
    fresh = state is None or overwrite
    if state is not None and not overwrite:
        if not state["xsr"]:
            raise StoreExistsError(
                f"store {_store_label(store)} exists and holds no resumable xsr job; choose "
                f"another path or {_OVERWRITE_HINT} to replace it"
            )
        old_id = state["attrs"]["job_id"]
        finished = state["initialised"] and state["completed"].all() and state["consolidated"]
        if old_id != job_hash:
            keys = _differing_keys(state["attrs"].get("fingerprint"), fingerprint)
            raise JobMismatchError(
                f"store {_store_label(store)} holds {'a finished' if finished else 'an unfinished'}"
                f" xsr job with a different fingerprint (differs in: {', '.join(keys[:8])}); "
                f"choose another path, or {_OVERWRITE_HINT} to replace it"
            )
        if finished:
            raise StoreExistsError(
                f"store {_store_label(store)} is already complete for this job; "
                f"{_OVERWRITE_HINT} to compute it again"
            )
        fresh = not state["initialised"]

    ds, region_vars = _prepare(ds, dim, region_size)
    with _explain_os_errors(store):
        if fresh:
            logger.info("xsr.archive: new store %s, %d regions", _store_label(store), n_regions)
            _init_store(ds, store, state_attrs, n_regions)
            completed = np.zeros(n_regions, dtype=bool)
        else:
            completed = state["completed"]
            logger.info(
                "xsr.archive: resuming %s, %d of %d regions complete",
                _store_label(store),
                int(completed.sum()),
                n_regions,
            )
        _write_regions(ds, store, dim, region_size, region_vars, completed, progress, tqdm)
        _consolidate(store)
    return _restore_kind(_open_result(store), name)


def _write_regions(
    ds: xr.Dataset,
    store: Any,
    dim: Hashable,
    region_size: int,
    region_vars: list[str],
    completed: np.ndarray,
    progress: bool,
    tqdm: Any,
) -> None:
    import zarr

    target = _zarr_store_arg(store)
    markers = zarr.open_array(target, path=f"{STATE_GROUP}/{MARKER_ARRAY}", mode="r+")
    todo = [i for i in range(completed.size) if not completed[i]]
    length = int(ds.sizes[dim])
    payload = ds[region_vars] if region_vars else None
    if payload is not None:
        payload = payload.drop_vars([v for v in payload.variables if v not in region_vars])
    with tqdm(
        total=completed.size,
        initial=completed.size - len(todo),
        disable=not progress,
        desc=f"xsr: writing {_store_label(store)}",
        unit="region",
    ) as bar:
        for i in todo:
            start, stop = i * region_size, min((i + 1) * region_size, length)
            if payload is not None:
                try:
                    payload.isel({dim: slice(start, stop)}).to_zarr(
                        target, region={dim: slice(start, stop)}, mode="r+", consolidated=False
                    )
                except Exception as err:
                    if hasattr(err, "add_note"):
                        err.add_note(
                            f"xsr: region {i} ({dim} {start}:{stop}) failed; the store "
                            f"{_store_label(store)} stays resumable: call again with the same "
                            "arguments to continue"
                        )
                    raise
            markers[i] = 1  # after the data: a region is complete only once fully written
            _trim_memory()
            bar.update(1)
            logger.debug("xsr.archive: region %d (%s %d:%d) complete", i, dim, start, stop)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def _trim_memory() -> None:
    """Hand freed heap memory back to the OS between regions (glibc), as dask.distributed
    workers do: large per-region buffers freed in per-thread arenas otherwise keep the resident
    size of a long run some 100 MiB above what it needs."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


# --------------------------------------------------------------------------------------------
# upscaling to archives
# --------------------------------------------------------------------------------------------


def _model_identity(model: Any) -> Any:
    """A JSON-able identity of ``model``: the sha256 of its weights wherever one can be found."""
    if model is None:
        return None
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        path = Path(text).expanduser()
        for candidate in (path, path.with_suffix(".safetensors")):
            if candidate.is_file():
                return {"file": candidate.name, "sha256": _sha256_file(candidate)}
        shipped = _shipped_weights(text)
        if shipped is not None:
            return {"name": text, "sha256": _sha256_file(shipped)}
        return {"name": text}
    state_dict = getattr(model, "state_dict", None)
    if callable(state_dict):
        # The weights themselves, not the card's hash: a model fine-tuned in memory after
        # loading keeps its card but is another job.
        digest = hashlib.sha256()
        for key, tensor in sorted(state_dict().items()):
            digest.update(key.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            values = tensor.detach().cpu()
            try:
                digest.update(np.ascontiguousarray(values.numpy()).tobytes())
            except TypeError:  # dtypes numpy lacks (bfloat16)
                digest.update(np.ascontiguousarray(values.double().numpy()).tobytes())
        return {
            "arch": getattr(model, "arch", type(model).__name__),
            "config": _jsonable(getattr(model, "config", None)),
            "state_sha256": digest.hexdigest(),
        }
    card = getattr(model, "card", None)
    sha = getattr(card, "sha256", None) if card is not None else None
    if sha is None and isinstance(card, Mapping):
        sha = card.get("sha256")
    if sha:
        return {"arch": getattr(model, "arch", type(model).__name__), "sha256": str(sha)}
    return {"repr": repr(model)}


def _shipped_weights(name: str) -> Path | None:
    """The ``.safetensors`` file of a shipped pretrained model called ``name``, if any."""
    try:
        from xsr.models.pretrained import PRETRAINED, pretrained_path
    except ImportError:
        return None
    if name not in PRETRAINED:
        return None
    path = Path(f"{pretrained_path(name)}.safetensors")
    return path if path.is_file() else None


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


def upscale_to_zarr(
    obj: xr.Dataset | xr.DataArray,
    store: Any,
    *,
    model: Any = None,
    scale: int | None = None,
    region_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **upscale_kwargs: Any,
) -> xr.Dataset | xr.DataArray:
    """Super-resolve ``obj`` into a Zarr store, streaming region by region, resumably.

    Equivalent to ``xsr.upscale.upscale(obj, model, scale=scale, **upscale_kwargs)`` written with
    :func:`write_zarr_resumable` along the time dimension: memory is bounded by one region
    (plus the model's time halo), and a killed run called again with the same arguments computes
    only the missing regions. The job fingerprint holds the identity of ``obj`` (variables,
    shapes, dtypes, hashes of its coordinates, attributes and in-memory data, and the dask names
    of lazy variables: for an opened file, its path, modification time and chunks), the model's
    weights sha256, ``scale``, ``region_size`` and the other arguments (but ``device`` and
    ``batch_size``, which choose how to compute, not what).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Low-resolution data with a time dimension (eager or dask-backed).
    store : str, path or zarr store
        Output Zarr store.
    model : str, path or model, optional
        What :func:`xsr.upscale.upscale` accepts: a shipped model name, a model file, an
        ``SRModel``, or an interpolation method such as ``"bicubic"``.
    scale : int, optional
        Upscaling factor (passed on to ``upscale`` when given).
    region_size : int, optional
        Time steps per region. Default: the input's time chunk when it is chunked along time,
        capped so that one region of output is at most about 64 MiB.
    overwrite : bool, default False
        Replace an existing store (see :func:`write_zarr_resumable`).
    progress : bool, default True
        Show a progress bar over the regions.
    **upscale_kwargs
        Passed on to :func:`xsr.upscale.upscale` (``dims``, ``time_dim``, ``conserve``,
        ``device``, ...).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The written store opened lazily.

    Raises
    ------
    StoreExistsError, JobMismatchError, ReadOnlyStoreError
        See :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "x2.zarr")
    >>> hi = upscale_to_zarr(random_movie(4, 8, 8), path, model="bicubic", scale=2, progress=False)
    >>> hi["h"].shape
    (4, 16, 16)
    """
    from xsr.upscale import upscale

    ds, name = _as_dataset(obj, "obj")
    if model is None and scale is None:
        raise ValueError("pass model=<name, file or model> or scale=<int> (or both)")
    dim = _time_dim(ds, upscale_kwargs.get("time_dim"))
    call_kwargs = dict(upscale_kwargs)
    call_kwargs.setdefault("time_dim", dim)
    if scale is not None:
        call_kwargs["scale"] = scale

    if region_size is None:
        probe_input = ds if any(_is_dask(v) for v in ds.data_vars.values()) else ds.chunk()
        probe = upscale(probe_input, model, **call_kwargs)
        probe_ds = probe if isinstance(probe, xr.Dataset) else probe.to_dataset(name=_UNNAMED)
        region_size = _default_region_size(probe_input, dim, DEFAULT_REGION_BYTES)
        region_size = min(
            region_size,
            max(1, DEFAULT_REGION_BYTES // max(1, _frame_bytes(probe_ds, dim))),
        )
    region_size = min(_check_region_size(region_size), int(ds.sizes[dim]))

    job = {
        "kind": "xsr.archive.upscale_to_zarr",
        "input": _dataset_identity(ds, chunks=False),
        "model": _model_identity(model),
        "arguments": {
            "scale": scale,
            "region_size": region_size,
            **{k: v for k, v in upscale_kwargs.items() if k not in _NON_IDENTITY_ARGUMENTS},
        },
    }
    lazy = upscale(
        ds.chunk({dim: _input_chunks(int(ds.sizes[dim]), region_size)}), model, **call_kwargs
    )
    result = write_zarr_resumable(
        lazy,
        store,
        regions_along=dim,
        region_size=region_size,
        job_id=job,
        overwrite=overwrite,
        progress=progress,
    )
    if name is _NOT_A_DATAARRAY or isinstance(result, xr.DataArray):
        return result
    return _restore_kind(result, name)


def _open_input(path: Path) -> xr.Dataset:
    if path.suffix.lower() in _ZARR_SUFFIXES or (path.is_dir() and _looks_like_zarr(path)):
        return xr.open_zarr(path)
    if path.suffix.lower() in _INPUT_NETCDF_SUFFIXES:
        return xr.open_dataset(path, chunks={})
    try:
        return xr.open_dataset(path, chunks={})
    except Exception as err:
        raise ValueError(
            f"cannot open input_path {str(path)!r}: {err}; give a NetCDF file (.nc) or a Zarr "
            "store (.zarr)"
        ) from err


def _output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _ZARR_SUFFIXES:
        return "zarr"
    if suffix in _NETCDF_SUFFIXES:
        return "netcdf"
    raise ValueError(
        f"unsupported output suffix {path.suffix!r} for output_path {str(path)!r}: use .zarr "
        f"(resumable) or one of {', '.join(_NETCDF_SUFFIXES)}"
    )


def _to_netcdf_streamed(source: Any, path: Path, *, progress: bool) -> None:
    """Copy a Zarr store into NetCDF chunk by chunk, via ``PATH.part`` renamed at the end."""
    import dask
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    part = path.with_name(path.name + ".part")
    with xr.open_zarr(source, consolidated=True) as ds:
        for var in ds.variables.values():
            var.encoding = {k: v for k, v in var.encoding.items() if k in _KEPT_ENCODING}
        delayed = ds.to_netcdf(part, compute=False)
        n_tasks = len(dict(delayed.__dask_graph__()))

        class _Bar(Callback):
            def __init__(self, bar: Any) -> None:
                super().__init__()
                self._bar = bar

            def _posttask(self, key, result, dsk, state, worker_id):
                self._bar.update(1)

        with (
            tqdm(total=n_tasks, disable=not progress, desc=f"xsr: writing {path.name}") as bar,
            _Bar(bar),
        ):
            dask.compute(delayed, scheduler="threads")
            bar.update(bar.total - bar.n)  # not every task reports back: finish the bar
    os.replace(part, path)


def upscale_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    model: Any = None,
    scale: int | None = None,
    overwrite: bool = False,
    variables: list[str] | None = None,
    region_size: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Super-resolve a NetCDF file or Zarr store into a Zarr store or NetCDF file.

    The input is opened lazily (``xr.open_dataset(path, chunks={})`` or ``xr.open_zarr``) and
    streamed with :func:`upscale_to_zarr`. A ``.zarr`` output is written directly and is
    resumable. A NetCDF output (``.nc``, ``.nc4``, ``.netcdf``, ``.cdf``) is computed into a
    resumable temporary store ``OUTPUT.xsr-partial.zarr`` beside it, then copied chunk by chunk
    to ``OUTPUT.part`` and renamed to ``OUTPUT``; the temporary store is removed at the end. A
    killed NetCDF job run again resumes the temporary store.

    Parameters
    ----------
    input_path : str or path
        NetCDF file or Zarr store (low resolution).
    output_path : str or path
        Output ``.zarr`` store or NetCDF file; the suffix chooses the format.
    model : str, path or model, optional
        Model name, model file or interpolation method (see :func:`upscale_to_zarr`).
    scale : int, optional
        Upscaling factor.
    overwrite : bool, default False
        Replace an existing finished output.
    variables : list of str, optional
        Data variables to upscale (default: all).
    region_size : int, optional
        Time steps per region.
    progress : bool, default True
        Show progress bars.
    **kwargs
        Passed on to :func:`xsr.upscale.upscale`.

    Returns
    -------
    pathlib.Path
        ``output_path``.

    Raises
    ------
    FileNotFoundError
        ``input_path`` does not exist.
    ValueError
        Unsupported output suffix, or unknown ``variables``.
    StoreExistsError, JobMismatchError, ReadOnlyStoreError
        See :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> folder = tempfile.mkdtemp()
    >>> random_movie(4, 8, 8).to_netcdf(os.path.join(folder, "run.nc"))
    >>> out = upscale_file(os.path.join(folder, "run.nc"), os.path.join(folder, "run_x2.zarr"),
    ...                    model="bicubic", scale=2, progress=False)
    >>> out.name
    'run_x2.zarr'
    """
    src = Path(os.fspath(input_path)).expanduser()
    dst = Path(os.fspath(output_path)).expanduser()
    kind = _output_kind(dst)
    if not src.exists():
        raise FileNotFoundError(f"input_path {str(src)!r} does not exist")
    if src.resolve() == dst.resolve():
        raise ValueError("output_path must differ from input_path")
    if kind == "netcdf" and dst.exists() and not overwrite:
        raise StoreExistsError(f"output_path {str(dst)!r} exists; {_OVERWRITE_HINT} to replace it")
    with _open_input(src) as ds:
        if variables is not None:
            missing = [v for v in variables if v not in ds.data_vars]
            if missing:
                raise ValueError(
                    f"variables {missing} are not in {str(src)!r} (data variables: "
                    f"{list(ds.data_vars)})"
                )
            ds = ds[list(variables)]
        common = {
            "model": model,
            "scale": scale,
            "region_size": region_size,
            "progress": progress,
            **kwargs,
        }
        if kind == "zarr":
            upscale_to_zarr(ds, dst, overwrite=overwrite, **common)
            return dst
        _check_writable(dst.parent)
        tmp = dst.with_name(dst.name + ".xsr-partial.zarr")
        try:
            upscale_to_zarr(ds, tmp, overwrite=overwrite, **common)
        except StoreExistsError as err:
            if isinstance(err, JobMismatchError) or not store_status(tmp)["finished"]:
                raise
            logger.info("xsr.archive: %s already complete; converting to NetCDF", tmp)
    with _explain_os_errors(dst):
        _to_netcdf_streamed(str(tmp), dst, progress=progress)
    shutil.rmtree(tmp)
    return dst

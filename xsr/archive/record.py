"""The job record and its integrity: what a store holds, which job wrote it, what is complete.

The record lives in the store's ``_xsr`` subgroup (see :mod:`xsr.archive`): the job fingerprint
and its sha256 ``job_id`` in the group's attributes, and one completion marker per region.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr._version import __version__
from xsr.archive.errors import ArchiveError, CorruptStoreError
from xsr.archive.inputs import fingerprint_inputs, input_files
from xsr.archive.stores import _local_path, _store_label, _zarr_store_arg
from xsr.digest import canonical_json, sha256_array
from xsr.io import is_zarr_store

__all__ = ["store_status"]

logger = logging.getLogger("xsr.archive")

#: Version of the ``_xsr`` record layout written into stores.
ARCHIVE_FORMAT = 2
#: Name of the subgroup that holds the job record and the completion markers.
STATE_GROUP = "_xsr"
#: Name of the per-region completion marker array inside :data:`STATE_GROUP`.
MARKER_ARRAY = "completed"
#: Name of the per-region checksum array (sha256 bytes) inside :data:`STATE_GROUP`.
CHECKSUM_ARRAY = "checksums"


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types, spelled as :func:`xsr.digest.canonical_json` spells it."""
    return json.loads(canonical_json(value))


def _is_dask(var: xr.Variable | xr.DataArray) -> bool:
    """Whether ``var`` is dask-backed (asked without touching ``.data``, which would load a
    lazily indexed file variable into memory)."""
    return var.chunks is not None


def _in_memory(var: xr.Variable) -> bool:
    return bool(getattr(var, "_in_memory", True))


def _source_sha256(var: xr.Variable, inputs: Mapping[str, Any] | None) -> str | None:
    """Content sha256 of the file ``var`` is read from, when it is still the file's data."""
    files = input_files(xr.Dataset({"v": var}), as_opened=True)
    if not files:
        return None
    key = str(files[0])
    record = (inputs or {}).get(key)
    if record is None:
        record = fingerprint_inputs(files)[key]
    return str(record["sha256"])


def _dataset_identity(
    ds: xr.Dataset,
    *,
    attrs: bool = True,
    chunks: bool = True,
    content: bool = True,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-able description of a Dataset that identifies it without computing anything.

    Every variable is described by dims, shape and dtype (and its chunks when ``chunks``).
    In-memory coordinates are hashed. With ``content``, in-memory data variables are hashed
    too; variables still as opened from a file are identified by the sha256 of the file's
    content (``inputs``, from :func:`~xsr.archive.inputs.fingerprint_inputs`, spares hashing
    again), so neither the file's path nor its modification time matters; other dask-backed
    variables by their dask name — a deterministic hash of how the array was built. The
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
        if _is_dask(var) and chunks:
            entry["chunks"] = [list(c) for c in var.chunks]
        if name in ds.coords and not _is_dask(var):
            entry["sha256"] = sha256_array(var.values)
        elif content:
            source = _source_sha256(var, inputs) if not _in_memory(var) or _is_dask(var) else None
            if source is not None:
                entry["source_sha256"] = source
            elif _is_dask(var):
                entry["dask_name"] = str(var.data.name)
            else:
                entry["sha256"] = sha256_array(var.values)
        if attrs:
            entry["attrs"] = _plain({k: v for k, v in var.attrs.items() if k != "history"})
        variables[str(name)] = entry
    out: dict[str, Any] = {
        "dims": {str(k): int(v) for k, v in ds.sizes.items()},
        "variables": variables,
    }
    if attrs:
        out["attrs"] = _plain({k: v for k, v in ds.attrs.items() if k != "history"})
    return out


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
        if path.is_dir() and not is_zarr_store(path):
            return {"xsr": False, "zarr": False}
        if path.is_dir():
            _check_metadata(path)
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
    info["checksums"] = _read_checksums(state, info["completed"].size)
    consolidated = zarr.open_group(_zarr_store_arg(store), mode="r")
    info["consolidated"] = consolidated.metadata.consolidated_metadata is not None
    return info


def _check_metadata(path: Path) -> None:
    """Raise :class:`CorruptStoreError` naming the first metadata file that is not valid JSON.

    Reads the metadata files of the root, of its arrays and groups and of the job record: a
    damaged one otherwise surfaces as a bare JSON error that names no file.
    """
    names = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
    candidates = [path / n for n in names]
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        candidates += [child / n for n in names]
        if child.name == STATE_GROUP:
            candidates += [g / n for g in sorted(child.iterdir()) if g.is_dir() for n in names]
    for meta in candidates:
        if not meta.is_file():
            continue
        try:
            json.loads(meta.read_bytes())
        except (ValueError, UnicodeDecodeError) as err:
            what = (
                "the xsr job record"
                if meta.parent.name == STATE_GROUP and meta.parent.parent == path
                else "a metadata file"
            )
            raise CorruptStoreError(
                f"store {str(path)!r} is damaged: {what} {str(meta)!r} is not valid JSON "
                f"({err}). xsr cannot tell which job wrote the store or which regions are "
                "complete, so it cannot be resumed or verified: compute it again with "
                "overwrite=True (--overwrite on the command line)"
            ) from None


def _read_checksums(state: Any, n_regions: int) -> np.ndarray | None:
    """Region checksums (``(n_regions, 32)`` uint8, zeros where none), ``None`` if not kept."""
    try:
        array = state[CHECKSUM_ARRAY]
    except KeyError:
        return None
    try:
        return np.asarray(array[:], dtype=np.uint8)
    except Exception:  # damaged checksum chunks: those regions count as unverified
        out = np.zeros((n_regions, 32), dtype=np.uint8)
        for i in range(n_regions):
            with contextlib.suppress(Exception):
                out[i] = np.asarray(array[i], dtype=np.uint8)
        return out


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
        list of the indices of regions marked complete), ``missing`` (the others), ``damaged``
        (``{region: reason}`` for regions marked complete whose chunk files are missing) and
        ``finished`` (every region complete, none damaged, the metadata consolidated).

    Raises
    ------
    FileNotFoundError
        If ``store`` is absent or empty.
    ArchiveError
        If ``store`` was not written by :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.archive import write_zarr_resumable
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
    from xsr.archive.verify import check_regions

    attrs = state["attrs"]
    completed = state["completed"]
    done = [int(i) for i in np.flatnonzero(completed)]
    damaged = check_regions(store, state, done, checksums=False) if state["initialised"] else {}
    return {
        "job_id": attrs["job_id"],
        "fingerprint": attrs.get("fingerprint"),
        "regions_along": attrs.get("regions_along"),
        "region_size": attrs.get("region_size"),
        "n_regions": int(attrs.get("n_regions", completed.size)),
        "completed": done,
        "missing": [i for i in range(completed.size) if i not in set(done)],
        "damaged": damaged,
        "finished": bool(
            state["initialised"] and completed.all() and state["consolidated"] and not damaged
        ),
    }


def _fingerprint(
    ds: xr.Dataset,
    job: Any,
    dim: Hashable,
    region_size: int,
    n_regions: int,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if job is None:
        job = {"dataset": _dataset_identity(ds, inputs=inputs)}
    elif not isinstance(job, (str, Mapping)):
        raise TypeError(f"job_id must be a string, a mapping or None, got {type(job).__name__}")
    return _plain(
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

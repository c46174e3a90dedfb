"""Writing: the resumable region-by-region Zarr writer and the streamed NetCDF copy."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr.archive.encoding import netcdf_encoding
from xsr.archive.errors import OVERWRITE_HINT as _OVERWRITE_HINT
from xsr.archive.errors import ArchiveError, JobMismatchError, StoreExistsError
from xsr.archive.inputs import check_inputs, fingerprint_inputs, input_files
from xsr.archive.lock import DEFAULT_LOCK_TIMEOUT, store_lock
from xsr.archive.record import (
    ARCHIVE_FORMAT,
    CHECKSUM_ARRAY,
    MARKER_ARRAY,
    STATE_GROUP,
    _differing_keys,
    _fingerprint,
    _read_state,
)
from xsr.archive.regions import (
    DEFAULT_REGION_BYTES,
    _check_region_size,
    _default_region_size,
    _prepare,
)
from xsr.archive.stores import (
    _check_writable,
    _clear_store,
    _consolidate,
    _explain_os_errors,
    _local_path,
    _open_result,
    _store_label,
    _zarr_store_arg,
)
from xsr.archive.verify import check_regions, describe, region_checksum, unmark
from xsr.digest import sha256_json

__all__ = ["write_zarr_resumable"]

logger = logging.getLogger("xsr.archive")


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


def _init_store(ds: xr.Dataset, store: Any, state_attrs: dict[str, Any], n_regions: int) -> None:
    """Write the job record, then the template, then the (empty) marker array — in that order."""
    import zarr

    _clear_store(store)
    target = _zarr_store_arg(store)
    root = zarr.open_group(target, mode="w", zarr_format=3)
    root.create_group(STATE_GROUP, attributes=state_attrs)
    ds.to_zarr(target, mode="a", compute=False, consolidated=False, zarr_format=3)
    _create_checksum_array(root[STATE_GROUP], n_regions)
    root.create_array(
        f"{STATE_GROUP}/{MARKER_ARRAY}",
        shape=(n_regions,),
        chunks=(1,),
        dtype="uint8",
        fill_value=0,
        compressors=None,
    )


def write_zarr_resumable(
    obj: xr.Dataset | xr.DataArray,
    store: Any,
    *,
    regions_along: Hashable = "time",
    region_size: int | None = None,
    job_id: str | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    verify: bool = False,
    inputs: Sequence[str | os.PathLike[str]] | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
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
        Replace an existing store. Without it, an existing store is an error unless it holds
        the same job: an unfinished one is resumed, a finished one is returned as it is
        (nothing to do).
    progress : bool, default True
        Show a progress bar over the regions (tqdm, on stderr).
    verify : bool, default False
        Before resuming (or returning a finished store), check every complete region against
        its checksum and recompute the bad ones (see :func:`~xsr.archive.verify_store`). Missing
        chunk files are always looked for.
    inputs : sequence of paths, optional
        The files (or Zarr stores) the computation reads. They are fingerprinted (content
        sha256; it identifies the job in place of their paths) and checked unchanged before
        each region is marked complete and before the store is marked finished. Default: the
        files the variables of ``obj`` were opened from (``encoding["source"]``).
    lock_timeout : float, default 10
        Seconds to wait when another process writes the same store, before refusing.

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
    StoreLockedError
        Another live process writes ``store``.
    InputChangedError
        An input file changed while the job ran (the region then being written is not marked
        complete; run again once the input is restored).
    CorruptStoreError
        The store's metadata or job record is damaged.

    Notes
    -----
    A failed region (an exception while computing it) leaves the store resumable: the regions
    written before it stay complete, and the next call with the same arguments continues.
    A local store is locked while it is written (a file ``STORE.xsr-lock`` beside it, see
    :mod:`xsr.archive.lock`); each region's checksum is recorded before its completion marker.
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

    _check_writable(store)
    with _explain_os_errors(store), store_lock(_local_path(store), timeout=lock_timeout):
        out = _write_locked(
            ds, store, dim, region_size, job_id, overwrite, progress, verify, inputs
        )
    return _restore_kind(out, name)


def _write_locked(
    ds: xr.Dataset,
    store: Any,
    dim: Hashable,
    region_size: int,
    job_id: Any,
    overwrite: bool,
    progress: bool,
    verify: bool,
    inputs: Sequence[str | os.PathLike[str]] | None,
) -> xr.Dataset:
    """The body of :func:`write_zarr_resumable`, run while holding the store's lock."""
    from tqdm.auto import tqdm

    length = int(ds.sizes[dim])
    n_regions = math.ceil(length / region_size)
    state = None if overwrite else _read_state(store)
    known = state["attrs"].get("inputs") if state is not None and state["xsr"] else None
    records = fingerprint_inputs(input_files(ds) if inputs is None else inputs, known)
    fingerprint = _fingerprint(ds, job_id, dim, region_size, n_regions, records)
    job_hash = sha256_json(fingerprint)
    fresh = state is None
    if state is not None:
        if not state["xsr"]:
            raise StoreExistsError(
                f"store {_store_label(store)} exists and holds no resumable xsr job; choose "
                f"another path or {_OVERWRITE_HINT} to replace it"
            )
        old_id = state["attrs"]["job_id"]
        if old_id != job_hash:
            finished = state["initialised"] and state["completed"].all()
            keys = _differing_keys(state["attrs"].get("fingerprint"), fingerprint)
            what = ", ".join(keys[:8])
            if any("source_sha256" in k for k in keys):
                what += (
                    " (the content of an input file differs from the one the store was begun with)"
                )
            raise JobMismatchError(
                f"store {_store_label(store)} holds {'a finished' if finished else 'an unfinished'}"
                f" xsr job with a different fingerprint (differs in: {what}); "
                f"choose another path, or {_OVERWRITE_HINT} to replace it"
            )
        fresh = not state["initialised"]

    if fresh:
        completed = np.zeros(n_regions, dtype=bool)
    else:
        completed = state["completed"].copy()
        done = [int(i) for i in np.flatnonzero(completed)]
        bad = check_regions(store, state, done, checksums=verify)
        if bad:
            for i, reason in sorted(bad.items()):
                logger.warning("recomputing %s", describe(state["attrs"], i, reason))
            unmark(store, sorted(bad))
            completed[sorted(bad)] = False
        if completed.all() and state["consolidated"]:
            logger.info("%s is complete for this job: nothing to do", store)
            return _open_result(store)
        _record_inputs(store, records)

    ds, region_vars = _prepare(ds, dim, region_size)
    if fresh:
        logger.info("new store %s (%d regions)", _store_label(store), n_regions)
        state_attrs = {
            "xsr_archive_format": ARCHIVE_FORMAT,
            "job_id": job_hash,
            "fingerprint": fingerprint,
            "regions_along": str(dim),
            "region_size": region_size,
            "n_regions": n_regions,
            "region_variables": region_vars,
            "inputs": records,
        }
        _init_store(ds, store, state_attrs, n_regions)
    else:
        logger.info(
            "resuming %s, %d of %d regions complete",
            _store_label(store),
            int(completed.sum()),
            n_regions,
        )
        _ensure_checksum_array(store, n_regions)
    _write_regions(ds, store, dim, region_size, region_vars, completed, progress, tqdm, records)
    # A marker set for a region never written (or a chunk lost since): rewrite, never finish.
    final = _read_state(store)
    gone = check_regions(store, final, list(range(n_regions)), checksums=False)
    if gone:
        unmark(store, sorted(gone))
        redo = np.ones(n_regions, dtype=bool)
        redo[sorted(gone)] = False
        _write_regions(ds, store, dim, region_size, region_vars, redo, progress, tqdm, records)
    check_inputs(records, when="marking the store finished")
    _consolidate(store)
    return _open_result(store)


def _record_inputs(store: Any, records: dict[str, Any]) -> None:
    """Update the inputs' paths and stats in the job record (a copy may lie elsewhere now)."""
    import zarr

    state = zarr.open_group(_zarr_store_arg(store), path=STATE_GROUP, mode="r+")
    if state.attrs.get("inputs") != records:
        state.attrs.update({"inputs": records})


def _ensure_checksum_array(store: Any, n_regions: int) -> None:
    """Add the checksum array to a store begun by an xsr that kept none."""
    import zarr

    state = zarr.open_group(_zarr_store_arg(store), path=STATE_GROUP, mode="r+")
    if CHECKSUM_ARRAY not in state:
        _create_checksum_array(state, n_regions)


def _create_checksum_array(state: Any, n_regions: int) -> None:
    state.create_array(
        CHECKSUM_ARRAY,
        shape=(n_regions, 32),
        chunks=(1, 32),
        dtype="uint8",
        fill_value=0,
        compressors=None,
    )


def _write_regions(
    ds: xr.Dataset,
    store: Any,
    dim: Hashable,
    region_size: int,
    region_vars: list[str],
    completed: np.ndarray,
    progress: bool,
    tqdm: Any,
    records: dict[str, Any],
) -> None:
    """Compute, write and checksum, then mark each incomplete region, in order."""
    import zarr

    from xsr.engine.runtime import release_free_memory

    target = _zarr_store_arg(store)
    markers = zarr.open_array(target, path=f"{STATE_GROUP}/{MARKER_ARRAY}", mode="r+")
    checksums = zarr.open_array(target, path=f"{STATE_GROUP}/{CHECKSUM_ARRAY}", mode="r+")
    root = zarr.open_group(target, mode="r", use_consolidated=False)
    path = _local_path(store)
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
            where = f"region {i} ({dim} {start}:{stop})"
            if payload is not None:
                try:
                    payload.isel({dim: slice(start, stop)}).to_zarr(
                        target,
                        region={dim: slice(start, stop)},
                        mode="r+",
                        consolidated=False,
                        write_empty_chunks=True,
                    )
                except Exception as err:
                    if not isinstance(err, ArchiveError):
                        # An input truncated under an open handle fails here: say so.
                        check_inputs(records, when=f"marking {where} complete")
                    if hasattr(err, "add_note"):
                        err.add_note(
                            f"xsr: {where} failed; the store {_store_label(store)} stays "
                            "resumable: call again with the same arguments to continue"
                        )
                    raise
            digest = region_checksum(root, region_vars, dim, i, start, stop, path)
            check_inputs(records, when=f"marking {where} complete")
            checksums[i] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint8)
            markers[i] = 1  # last: a region is complete only once written and checksummed
            release_free_memory()  # freed per-region buffers go back to the OS
            bar.update(1)
            logger.debug("%s complete", where)


def _to_netcdf_streamed(
    source: Any, path: Path, *, progress: bool, attrs: Mapping[str, Any] | None = None
) -> None:
    """Copy a Zarr store into NetCDF chunk by chunk, via ``PATH.part`` renamed at the end.

    Variables keep :func:`~xsr.archive.encoding.kept_encoding` and are zlib-compressed;
    ``attrs`` are added to the global attributes.
    """
    import dask
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    part = path.with_name(path.name + ".part")
    with xr.open_zarr(source, consolidated=True) as ds:
        encoding = netcdf_encoding(ds)
        for var in ds.variables.values():
            var.encoding = {}
        ds.attrs.update(attrs or {})
        delayed = ds.to_netcdf(part, compute=False, encoding=encoding)
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

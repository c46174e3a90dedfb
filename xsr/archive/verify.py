"""Region checksums and verification: telling right from corrupted, complete from half-done.

When a region is written, the sha256 of what was stored is recorded in ``_xsr/checksums``
*before* the region's completion marker is set: for a local store the bytes of the region's chunk
files (nothing is decoded, so it costs a read of the compressed bytes), for other stores the
region's raw values read back. Verification computes it again and compares:

* a chunk file that is missing (a marker set for a region never written), found cheaply by
  listing, on every resume and by :func:`~xsr.archive.store_status`;
* a chunk truncated, replaced or with a flipped byte, found by the checksum, by
  :func:`verify_store` (``xsr verify STORE``) and on a resume with ``verify=True``
  (``--verify``).

A bad region is named (index, range along the region dimension and reason); with
``repair=True`` (``--repair``), and always on a ``verify=True`` resume, its marker is cleared
so that the next run of the same job recomputes it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from xsr.archive.errors import ArchiveError
from xsr.archive.lock import DEFAULT_LOCK_TIMEOUT, store_lock
from xsr.archive.record import MARKER_ARRAY, STATE_GROUP, _read_state
from xsr.archive.stores import _local_path, _store_label, _zarr_store_arg
from xsr.digest import sha256_array, sha256_file, sha256_json

__all__ = ["verify_store"]

logger = logging.getLogger("xsr.archive")


def region_variables(root: Any, attrs: dict[str, Any]) -> list[str]:
    """Names of the arrays written region by region (recorded; derived for older stores)."""
    recorded = attrs.get("region_variables")
    if recorded is not None:
        return [str(v) for v in recorded]
    dim = attrs.get("regions_along")
    out = []
    for name, array in root.arrays():
        dims = array.metadata.dimension_names or ()
        if dim in dims and name != dim:
            out.append(name)
    return sorted(out)


def _selection(array: Any, dim: Hashable, start: int, stop: int) -> tuple[slice, ...]:
    dims = list(array.metadata.dimension_names)
    sel = [slice(None)] * len(dims)
    sel[dims.index(dim)] = slice(start, stop)
    return tuple(sel)


def region_chunk_keys(root: Any, names: list[str], dim: Hashable, index: int) -> list[str]:
    """Store keys of the chunks of region ``index`` of every region variable."""
    keys = []
    for name in names:
        array = root[name]
        dims = list(array.metadata.dimension_names)
        grid = [
            [index] if d == dim else range(math.ceil(n / c))
            for d, n, c in zip(dims, array.shape, array.chunks)
        ]
        encoding = array.metadata.chunk_key_encoding
        keys += [
            f"{name}/{encoding.encode_chunk_key(tuple(coords))}"
            for coords in itertools.product(*grid)
        ]
    return keys


def region_checksum(
    root: Any, names: list[str], dim: Hashable, index: int, start: int, stop: int, path: Any
) -> str:
    """sha256 of what is stored for one region of every region variable.

    For a local store: the bytes of its chunk files, as written (cheap: nothing is decoded).
    For other stores: the region's raw (undecoded) values read back.
    """
    if path is not None:
        digests = {}
        for key in region_chunk_keys(root, names, dim, index):
            file = path / key
            digests[key] = sha256_file(file) if file.exists() else None
        return sha256_json(digests)
    values = {}
    for name in names:
        array = root[name]
        values[name] = sha256_array(np.asarray(array[_selection(array, dim, start, stop)]))
    return sha256_json(values)


def missing_chunks(
    path: Path | None, root: Any, names: list[str], dim: Hashable, index: int
) -> list[str]:
    """Chunk files of region ``index`` absent from a local store (``[]`` for other stores)."""
    if path is None:
        return []
    return [k for k in region_chunk_keys(root, names, dim, index) if not (path / k).exists()]


def check_regions(
    store: Any, state: dict[str, Any], regions: list[int], *, checksums: bool
) -> dict[int, str]:
    """Problems of ``regions`` (indices): missing chunks, and with ``checksums`` bad values.

    Returns ``{region: reason}`` for the bad ones.
    """
    import zarr

    attrs = state["attrs"]
    root = zarr.open_group(_zarr_store_arg(store), mode="r", use_consolidated=False)
    names = region_variables(root, attrs)
    dim = attrs["regions_along"]
    size, length = int(attrs["region_size"]), int(attrs["fingerprint"]["layout"]["length"])
    path = _local_path(store)
    recorded = state.get("checksums")
    bad: dict[int, str] = {}
    for i in regions:
        start, stop = i * size, min((i + 1) * size, length)
        gone = missing_chunks(path, root, names, dim, i)
        if gone:
            bad[i] = f"chunk files missing: {', '.join(gone[:4])}" + (" ..." if gone[4:] else "")
            continue
        if not checksums:
            continue
        if recorded is None or not recorded[i].any():
            bad[i] = "no checksum recorded (written by an older xsr, or the record is damaged)"
            continue
        try:
            digest = region_checksum(root, names, dim, i, start, stop, path)
        except Exception as err:  # undecodable chunk: zarr, numcodecs or OS errors
            bad[i] = f"cannot be read back ({type(err).__name__}: {err})"
            continue
        if digest != bytes(recorded[i]).hex():
            bad[i] = (
                "checksum differs: the stored chunks changed since the region was written "
                "(a flipped byte, a truncated or replaced chunk file)"
            )
    return bad


def describe(attrs: dict[str, Any], index: int, reason: str) -> str:
    """One line naming a bad region."""
    size, length = int(attrs["region_size"]), int(attrs["fingerprint"]["layout"]["length"])
    start, stop = index * size, min((index + 1) * size, length)
    return f"region {index} ({attrs['regions_along']} {start}:{stop}): {reason}"


def unmark(store: Any, regions: list[int]) -> None:
    """Clear the completion markers of ``regions`` so that the next run recomputes them."""
    import zarr

    markers = zarr.open_array(
        _zarr_store_arg(store), path=f"{STATE_GROUP}/{MARKER_ARRAY}", mode="r+"
    )
    for i in regions:
        markers[i] = 0


def verify_store(
    store: Any, *, repair: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> dict[str, Any]:
    """Check every complete region of a store against its recorded checksum.

    Parameters
    ----------
    store : str, path or zarr store
        A store written by :func:`~xsr.archive.write_zarr_resumable` (or ``xsr upscale``).
    repair : bool, default False
        Clear the completion markers of bad regions, so that running the same job again
        recomputes exactly them (takes the store's lock).
    lock_timeout : float, default 10
        Seconds to wait for another writer when ``repair`` is set.

    Returns
    -------
    dict
        ``checked`` (number of regions checked), ``bad`` (``{region: reason}``), ``messages``
        (one line per bad region, naming its range) and ``ok`` (no bad region).

    Raises
    ------
    FileNotFoundError
        ``store`` is absent or empty.
    ArchiveError
        ``store`` holds no xsr job record.
    CorruptStoreError
        The store's metadata or job record cannot be read.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.archive import write_zarr_resumable
    >>> from xsr.testing import random_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "out.zarr")
    >>> _ = write_zarr_resumable(random_movie(4, 8, 8).chunk(time=2), path, progress=False)
    >>> report = verify_store(path)
    >>> report["checked"], report["ok"]
    (2, True)
    """
    path = _local_path(store)
    state = _read_state(store)
    if state is None:
        raise FileNotFoundError(f"store {_store_label(store)} does not exist or is empty")
    if not state["xsr"]:
        raise ArchiveError(
            f"store {_store_label(store)} holds no xsr job record (it was not written by "
            "xsr.archive.write_zarr_resumable or xsr upscale); nothing to verify"
        )
    done = [int(i) for i in np.flatnonzero(state["completed"])]
    bad = check_regions(store, state, done, checksums=True)
    if bad and repair:
        with store_lock(path, timeout=lock_timeout):
            unmark(store, sorted(bad))
    return {
        "checked": len(done),
        "bad": bad,
        "messages": [describe(state["attrs"], i, r) for i, r in sorted(bad.items())],
        "ok": not bad,
    }

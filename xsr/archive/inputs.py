"""The input fingerprint: which files a job reads, and whether they changed.

A job's identity must not depend on where its input lies or when it was last touched: an input
copied to another path, or touched, with the same bytes, is the same job (a killed job resumes),
while an input with other bytes is another job (refused). So a file-backed input is identified
by the sha256 of its content (for a Zarr store, of every file in it), computed once per run and
reused when the store's record already holds it for the same path, size and modification time.

While a job runs, the files may change under it (truncated, rewritten): an already-open HDF5
handle then reads fill values without an error. So before each region is marked complete, and
before the store is marked finished, every input is checked against its record: size and
modification time, and a cheap content sample (the first and last 64 KiB of a file; the names,
sizes and metadata files of a store). A change raises
:class:`~xsr.archive.errors.InputChangedError` naming the file, and leaves the region unmarked.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from xsr.archive.errors import InputChangedError
from xsr.digest import sha256_bytes, sha256_file, sha256_json

_SAMPLE = 1 << 16
_ZARR_METADATA = {"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"}
#: Dask name prefix of variables as xarray opened them from a file (not yet transformed).
_OPENED = "open_dataset-"


def _files(path: Path) -> list[tuple[str, os.stat_result]]:
    """``(relative path, stat)`` of the regular files of a folder, sorted."""
    out = []
    for folder, _dirs, names in os.walk(path):
        for name in names:
            full = Path(folder, name)
            out.append((full.relative_to(path).as_posix(), full.stat()))
    return sorted(out)


def _stat(path: Path) -> dict[str, int]:
    """Size and modification time (for a folder: totals over its files)."""
    if path.is_dir():
        files = _files(path)
        return {
            "size": sum(s.st_size for _, s in files),
            "mtime_ns": max((s.st_mtime_ns for _, s in files), default=0),
            "files": len(files),
        }
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sample(path: Path) -> str:
    """A cheap content fingerprint: both ends of a file; names, sizes and metadata of a store."""
    if path.is_dir():
        listing = []
        for rel, st in _files(path):
            entry: list[Any] = [rel, st.st_size]
            if rel.rsplit("/", 1)[-1] in _ZARR_METADATA:
                entry.append(sha256_file(path / rel))
            listing.append(entry)
        return sha256_json(listing)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_SAMPLE)
        fh.seek(max(0, size - _SAMPLE))
        tail = fh.read(_SAMPLE)
    return sha256_bytes(f"{size}:".encode() + head + tail)


@functools.lru_cache(maxsize=64)
def _content(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of the content (cached per path, size and modification time)."""
    p = Path(path)
    if p.is_dir():
        return sha256_json({rel: sha256_file(p / rel) for rel, _ in _files(p)})
    return sha256_file(p)


def input_files(ds: xr.Dataset, *, as_opened: bool = False) -> list[Path]:
    """The local files (or Zarr stores) the variables of ``ds`` are read from.

    A variable counts when it carries its file in ``encoding["source"]``; with ``as_opened``,
    only when it is still the file's data (dask-backed as xarray opened it, or lazily indexed),
    not a computation on it.
    """
    found: dict[str, Path] = {}
    for var in ds.variables.values():
        source = var.encoding.get("source")
        if not source or "://" in str(source) or not os.path.exists(source):
            continue
        if as_opened and var.chunks is not None and not str(var.data.name).startswith(_OPENED):
            continue
        path = Path(source).resolve()
        found[str(path)] = path
    return [found[k] for k in sorted(found)]


def fingerprint_inputs(
    files: Iterable[str | os.PathLike[str]], known: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Record of each input: ``size``, ``mtime_ns``, ``sample`` and content ``sha256``.

    ``known`` (a previous record) spares hashing a file whose path, size and modification time
    are unchanged.
    """
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        path = Path(f).resolve()
        stat = _stat(path)
        old = (known or {}).get(str(path))
        if isinstance(old, Mapping) and all(old.get(k) == v for k, v in stat.items()):
            sha = old.get("sha256")
        else:
            sha = None
        if not sha:
            sha = _content(str(path), stat["size"], stat["mtime_ns"])
        out[str(path)] = {**stat, "sample": _sample(path), "sha256": sha}
    return out


def check_inputs(record: Mapping[str, Mapping[str, Any]], *, when: str) -> None:
    """Raise :class:`InputChangedError` when an input differs from its ``record``.

    Parameters
    ----------
    record : mapping
        From :func:`fingerprint_inputs`.
    when : str
        What was about to happen (said in the message).
    """
    for name, old in record.items():
        path = Path(name)
        if not path.exists():
            problem = "was removed"
        else:
            stat = _stat(path)
            if stat["size"] != old["size"]:
                problem = f"changed size from {old['size']} to {stat['size']} bytes (truncated?)"
            elif stat["mtime_ns"] != old["mtime_ns"] or _sample(path) != old["sample"]:
                problem = "was modified"
            else:
                continue
        raise InputChangedError(
            f"input {name!r} {problem} while the job ran; stopped before {when}, so no region "
            "computed from the changed file is marked complete. Restore the input and run the "
            "same command again to resume, or pass overwrite=True (--overwrite) to start over "
            "from the new input"
        )

"""Stores as places: local paths, writability checks, clearing, consolidation and opening."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xarray as xr

from xsr.archive.errors import ArchiveError, ReadOnlyStoreError, StoreExistsError
from xsr.io import is_zarr_store

logger = logging.getLogger("xsr.archive")


def _local_path(store: Any) -> Path | None:
    """The filesystem path of ``store`` when it is a local path, else ``None``."""
    if isinstance(store, os.PathLike) or (isinstance(store, str) and "://" not in store):
        return Path(os.fspath(store)).expanduser()
    root = getattr(store, "root", None)
    if root is not None and type(store).__name__ == "LocalStore":
        return Path(root)
    return None


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
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ArchiveError(
                f"no space left while writing store {_store_label(store)}: {err}. Free space "
                "(or move the store) and run the same command again: the finished regions are "
                "kept and only the others are computed"
            ) from err
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


def _clear_store(store: Any) -> None:
    """Delete the contents of ``store`` (a Zarr store or an empty/absent folder)."""
    import zarr

    path = _local_path(store)
    if path is not None and path.exists():
        if path.is_dir() and any(path.iterdir()) and not is_zarr_store(path):
            raise StoreExistsError(
                f"store {str(path)!r} is a folder that is not a Zarr store; xsr will not delete "
                "it even with overwrite=True: choose another path"
            )
        shutil.rmtree(path)
        return
    zarr.open_group(_zarr_store_arg(store), mode="w")


def _consolidate(store: Any) -> None:
    import zarr

    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not yet part of the v3 specification.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(_zarr_store_arg(store))


def _open_result(store: Any) -> xr.Dataset:
    return xr.open_zarr(_zarr_store_arg(store), consolidated=True)

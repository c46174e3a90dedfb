"""The store's lock: one writer at a time, and a lock left by a dead process is taken over.

The lock is a small JSON file ``STORE.xsr-lock`` beside the store (not inside it, so replacing
the store with ``overwrite=True`` keeps it) holding the owner's process id, host name, start
time and command line. It is created atomically (written to a private temporary file, then
hard-linked to its name, which fails when the name exists), so a reader never sees half of it.
A lock whose owner runs on this host and is no longer alive is stale: it is renamed away (only
one of several contenders can rename it) and taken. A lock held by a live process, or by a
process on another host (whose life cannot be checked from here), makes a second writer wait up
to ``timeout`` seconds and then refuse with :class:`~xsr.archive.errors.StoreLockedError`
naming the owner and the lock file. Only local stores are locked; other stores (object stores,
in-memory stores) rely on the caller to run one writer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xsr.archive.errors import StoreLockedError

#: Suffix of the lock file written beside a store.
LOCK_SUFFIX = ".xsr-lock"
#: Seconds a second writer waits for the lock before refusing, by default.
DEFAULT_LOCK_TIMEOUT = 10.0
_POLL = 0.2


def lock_path(path: Path) -> Path:
    """The lock file of the store at ``path``."""
    return path.with_name(path.name + LOCK_SUFFIX)


def _owner() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": " ".join(sys.argv)[:500],
    }


def _read(lock: Path) -> dict[str, Any] | None:
    """The lock's owner, ``{}`` when unreadable, ``None`` when the lock is gone."""
    try:
        text = lock.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _stale(info: dict[str, Any]) -> bool:
    """Whether the owner is known to be dead (same host, no such process)."""
    pid = info.get("pid")
    return (
        isinstance(pid, int)
        and info.get("host") == socket.gethostname()
        and pid != os.getpid()
        and not _alive(pid)
    )


def _try_create(lock: Path) -> bool:
    """Create the lock atomically; ``False`` when it exists."""
    tmp = lock.with_name(f"{lock.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(_owner()))
    try:
        os.link(tmp, lock)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def _break_stale(lock: Path, info: dict[str, Any]) -> None:
    """Remove a stale lock; of several processes doing it at once, one renames it away."""
    grave = lock.with_name(f"{lock.name}.{uuid.uuid4().hex}.stale")
    try:
        os.rename(lock, grave)
    except FileNotFoundError:
        return
    if _read(grave) != info:  # renamed a fresh lock taken meanwhile: put it back
        with contextlib.suppress(OSError):
            os.link(grave, lock)
    with contextlib.suppress(OSError):
        grave.unlink()


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "an unknown process (the lock file is unreadable)"
    return (
        f"process {info.get('pid')} on host {info.get('host')!r} since {info.get('time')} "
        f"({info.get('argv', '')!r})"
    )


@contextlib.contextmanager
def store_lock(path: Path | None, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock of the store at ``path`` (nothing for non-local stores).

    Parameters
    ----------
    path : pathlib.Path or None
        The store's local path; ``None`` locks nothing.
    timeout : float
        Seconds to wait for a live owner to finish before refusing.

    Raises
    ------
    StoreLockedError
        Another live process holds the lock after ``timeout`` seconds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "out.zarr"
    >>> with store_lock(store):
    ...     lock_path(store).exists()
    True
    >>> lock_path(store).exists()
    False
    """
    if path is None:
        yield
        return
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(0.0, float(timeout))
    while not _try_create(lock):
        info = _read(lock)
        if info is None:
            continue  # released meanwhile
        if _stale(info):
            _break_stale(lock, info)
            continue
        if time.monotonic() >= deadline:
            raise StoreLockedError(
                f"store {str(path)!r} is being written by {_describe(info)}: two writers on "
                f"one store would corrupt it. Wait for that job to end (or stop it) and run "
                f"again; if no such job runs, delete the lock file {str(lock)!r}"
            )
        time.sleep(_POLL)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()

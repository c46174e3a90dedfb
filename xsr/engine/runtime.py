"""Process settings the engine applies while it runs: scoped, documented and switchable.

Importing xsr changes nothing in the process. The engine applies these only while it runs:

* **Huge pages for torch's large CPU tensors.** Inside :func:`scope`, ``THP_MEM_ALLOC_ENABLE=1``
  is set in the environment when the user has not set the variable, and the environment is
  restored on exit. torch reads the variable once per process, at its first CPU allocation (of
  any size), and keeps that answer for the life of the process. So the setting takes effect only
  when the engine is the first code in the process to allocate a torch tensor; after a model has
  been built or loaded it has none. To have huge pages in every case, set
  ``THP_MEM_ALLOC_ENABLE=1`` in the environment before the process starts (a job script, or
  ``os.environ`` before anything uses torch); ``0`` opts out, and a user's value is never
  overridden.
* **Idle OpenMP threads** of the thread that hands work to the engine are released
  (:func:`xsr.engine.threads.release_idle_openmp_threads`).
* **Freed heap memory** goes back to the operating system when a long job asks for it between
  pieces of work (:func:`release_free_memory`, glibc's ``malloc_trim``).

The switch: ``XSR_ENGINE_RUNTIME=off`` in the environment (read at each run, so it may be set at
any time and reaches dask workers started afterwards) turns all three off; the engine then
computes the same results with the process left exactly as the user set it. The figures behind
these settings are in ``docs/benchmarks.md``.

This module imports the standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ENV_SWITCH", "release_free_memory", "runtime_enabled", "scope"]

#: The environment variable that turns the engine's runtime settings off (``off``, ``0``,
#: ``false`` or ``no``).
ENV_SWITCH = "XSR_ENGINE_RUNTIME"
_OFF = ("off", "0", "false", "no")
_THP = "THP_MEM_ALLOC_ENABLE"
_LOCK = threading.Lock()
_DEPTH = [0]
_SET_BY_US = [False]


def runtime_enabled() -> bool:
    """Whether the engine applies its runtime settings (unless ``XSR_ENGINE_RUNTIME=off``).

    Returns
    -------
    bool

    Examples
    --------
    >>> import os
    >>> runtime_enabled() == (os.environ.get("XSR_ENGINE_RUNTIME", "on").lower()
    ...                       not in ("off", "0", "false", "no"))
    True
    """
    return os.environ.get(ENV_SWITCH, "on").strip().lower() not in _OFF


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Apply the engine's allocator setting inside the block and restore the environment after.

    Re-entrant and thread-safe: concurrent or nested blocks share one setting, removed when the
    last one exits. Nothing happens when the user set ``THP_MEM_ALLOC_ENABLE`` or turned the
    runtime settings off (see the module notes).

    Examples
    --------
    >>> import os
    >>> before = dict(os.environ)
    >>> with scope():
    ...     pass
    >>> dict(os.environ) == before
    True
    """
    with _LOCK:
        if _DEPTH[0] == 0:
            _SET_BY_US[0] = runtime_enabled() and _THP not in os.environ
            if _SET_BY_US[0]:
                os.environ[_THP] = "1"
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0 and _SET_BY_US[0]:
                os.environ.pop(_THP, None)
                _SET_BY_US[0] = False


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


def release_free_memory() -> bool:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

    Large buffers freed in per-thread arenas otherwise keep the resident size of a long run
    above what it needs; dask.distributed workers do the same between tasks. Call it between
    pieces of a long job (the archive writer does, between regions). Does nothing where libc is
    not glibc, or when the runtime settings are off.

    Returns
    -------
    bool
        Whether memory was trimmed.

    Examples
    --------
    >>> release_free_memory() in (True, False)
    True
    """
    libc = _libc()
    if libc is None or not runtime_enabled():
        return False
    libc.malloc_trim(0)
    return True

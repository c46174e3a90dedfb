"""The engine's thread policy: one model thread per process, and idle OpenMP teams released.

One model forward runs at a time per process. On CPUs the whole of each :func:`xsr.engine.infer`
runs on one engine-owned thread (:func:`serialised`), so torch keeps one OpenMP thread team: work
started from several dask threads would start a team in each, and a finished team keeps spinning
on the cores while the next one works. Each call uses ``n`` intra-op threads, ``n`` being the
caller's torch thread count, or the thread count of the dask.distributed worker the call runs
on when that is larger (its nanny starts workers with ``OMP_NUM_THREADS=1``). The count is set
on the engine's own thread only: the caller's threads are never changed. On GPUs the model calls
run under a lock in the caller's thread (CUDA's current device is per thread), so that the host
work of other tasks overlaps them. Dask tasks therefore read and cut data in parallel but run the
network one after the other, each call using every core; torch activations, not dask chunks,
set the memory (``batch_size`` and ``tile`` are the knobs). The figures behind this policy are in
``docs/benchmarks.md``.

Idle OpenMP worker threads that another thread (a notebook's main thread) keeps for its own
torch work slow the model thread down under GNU OpenMP; :func:`release_idle_openmp_threads` lets
the caller's exit, and :func:`serialised` calls it before handing work over.

This module imports torch and the standard library only (never dask: a dask.distributed worker
is recognised only when ``distributed`` is already loaded).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

from xsr.engine.runtime import runtime_enabled

__all__ = ["release_idle_openmp_threads", "serialised", "worker_threads"]

_T = TypeVar("_T")
_FORWARD_LOCK = threading.Lock()
_POOL_LOCK = threading.Lock()
#: On CPUs, model calls run on one thread per process (see :func:`serialised`).
_ONE_MODEL_THREAD = True
_MODEL_THREAD: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
#: ``omp_pause_soft`` of the OpenMP 5 API.
_OMP_PAUSE_SOFT = 1
_GOMP_PAUSE: list[Callable[[int], int]] | None = None


def model_thread() -> concurrent.futures.ThreadPoolExecutor:
    """This process's model thread (a new one after a fork: threads do not survive it).

    Returns
    -------
    concurrent.futures.ThreadPoolExecutor
        A one-thread pool whose thread is named ``xsr-model``.

    Examples
    --------
    >>> model_thread().submit(lambda: 1 + 1).result()
    2
    """
    global _MODEL_THREAD
    with _POOL_LOCK:
        if _MODEL_THREAD is None or _MODEL_THREAD[0] != os.getpid():
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xsr-model")
            _MODEL_THREAD = (os.getpid(), pool)
        return _MODEL_THREAD[1]


def worker_threads() -> int | None:
    """The thread count of the dask.distributed worker running this task, or ``None``.

    Only consulted when ``distributed`` is already imported (the engine never imports dask).

    Returns
    -------
    int or None

    Examples
    --------
    >>> worker_threads() is None   # not on a dask.distributed worker
    True
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return int(distributed.get_worker().state.nthreads)
    except (ValueError, AttributeError):  # not on a worker
        return None


def _gomp_pause_functions() -> list[Callable[[int], int]]:
    """``omp_pause_resource_all`` of every GNU OpenMP (libgomp) loaded in this process.

    Found once, from ``/proc/self/maps`` (Linux); empty elsewhere and for other OpenMP runtimes
    (LLVM's libomp, Intel's libiomp5), whose pause is process-wide and which do not throttle.
    """
    global _GOMP_PAUSE
    if _GOMP_PAUSE is None:
        paths: set[str] = set()
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    fields = line.split(maxsplit=5)
                    if len(fields) == 6 and os.path.basename(fields[5]).startswith("libgomp"):
                        paths.add(fields[5].strip())
        except OSError:  # not Linux
            pass
        found = []
        for path in sorted(paths):
            try:
                pause = ctypes.CDLL(path).omp_pause_resource_all
            except (OSError, AttributeError):  # pragma: no cover - libgomp older than GCC 9
                continue
            pause.argtypes, pause.restype = [ctypes.c_int], ctypes.c_int
            found.append(pause)
        _GOMP_PAUSE = found
    return _GOMP_PAUSE


def release_idle_openmp_threads() -> bool:
    """Let the calling thread's idle OpenMP worker threads exit (GNU OpenMP only).

    A thread that has run a parallel torch operation keeps its OpenMP worker threads for later.
    GNU OpenMP (the runtime of the PyPI torch wheels on Linux) counts them even while idle, and
    once it counts more threads than cores it makes every waiting thread sleep almost at once
    instead of spinning, so the engine's model thread would pay a wake-up at each of the many
    small operations of a forward. The engine calls this on the thread that hands work to its
    model thread (:func:`xsr.engine.infer`) and on the thread that builds an upscaling graph
    (:func:`xsr.engine.prepare_run`), so a notebook that trained or ran torch before upscaling
    keeps full speed. The threads are started again by the thread's next parallel operation.
    Nothing is released when the engine's runtime settings are off
    (:func:`xsr.engine.runtime.runtime_enabled`).

    Returns
    -------
    bool
        Whether a GNU OpenMP runtime was found and released the threads.

    Examples
    --------
    >>> import torch
    >>> _ = torch.ones(1 << 20).sum()  # may start OpenMP worker threads for this thread
    >>> release_idle_openmp_threads() in (True, False)
    True
    """
    if not runtime_enabled():
        return False
    done = False
    for pause in _gomp_pause_functions():
        done = pause(_OMP_PAUSE_SOFT) == 0 or done
    return done


def serialised(fn: Callable[[], _T], *, cpu: bool) -> _T:
    """Run ``fn`` one at a time per process and return its result (see the module notes).

    On a CPU ``fn`` runs on the engine's model thread with the caller's torch thread count (or
    the dask.distributed worker's, when larger); on a GPU it runs in the caller's thread under a
    lock. Exceptions reach the caller.

    Parameters
    ----------
    fn : callable
        The work, taking no arguments.
    cpu : bool
        Whether it runs on a CPU.

    Returns
    -------
    object
        ``fn()``.

    Examples
    --------
    >>> import threading
    >>> serialised(lambda: threading.current_thread().name, cpu=True).startswith("xsr-model")
    True
    """
    if not (cpu and _ONE_MODEL_THREAD) or threading.current_thread().name.startswith("xsr-model"):
        with _FORWARD_LOCK:
            return fn()
    n = max(torch.get_num_threads(), worker_threads() or 0)
    release_idle_openmp_threads()  # the caller's idle team would throttle the model thread's

    def call() -> _T:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)  # the engine's own thread: nobody else's count changes
        return fn()

    return model_thread().submit(call).result()

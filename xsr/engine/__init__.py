"""The inference engine: numpy arrays in, numpy arrays out, torch in between.

One module per job:

=====================================  =========================================================
:mod:`xsr.engine.inference`            :func:`infer`: normalise, tile, batch, forward, conserve
:mod:`xsr.engine.planning`             batch and tile sizes, option checks
:mod:`xsr.engine.reference`            :class:`ModelRef` (the model in dask tasks) and the
                                       per-process cache of the engine's model copies
:mod:`xsr.engine.fast`                 fast forms: every inference rewrite of a model, by
                                       architecture, applied to the engine's private copy
:mod:`xsr.engine.device`               :func:`resolve_device`, the one meaning of ``"auto"``
:mod:`xsr.engine.threads`              the thread policy (one model thread, idle OpenMP teams)
:mod:`xsr.engine.runtime`              allocator settings while the engine runs, and their switch
:mod:`xsr.engine.normalisation`        per-channel statistics from the card or the caller
=====================================  =========================================================

Importing the engine changes nothing in the process; its runtime settings apply while it runs
(see :mod:`xsr.engine.runtime`). The engine imports numpy, torch and :mod:`xsr.models` only
(never xarray or dask).

Examples
--------
>>> import numpy as np
>>> from xsr.engine import infer
>>> from xsr.models import get_model
>>> infer(get_model("bicubic", scale=2), np.zeros((1, 1, 1, 4, 4), "float32")).shape
(1, 1, 1, 8, 8)
"""

from __future__ import annotations

from typing import Any

from xsr.engine.device import resolve_device
from xsr.engine.inference import infer
from xsr.engine.planning import PRECISIONS, check_options
from xsr.engine.reference import (
    ModelRef,
    cache_info,
    card_dict,
    clear_model_cache,
    get_model_cached,
)
from xsr.engine.threads import release_idle_openmp_threads

__all__ = [
    "PRECISIONS",
    "ModelRef",
    "cache_info",
    "card_dict",
    "check_options",
    "clear_model_cache",
    "get_model_cached",
    "infer",
    "prepare_run",
    "release_idle_openmp_threads",
    "resolve_device",
]


def prepare_run(*, batch_size: Any = "auto", tile: Any = None, precision: Any = "float32") -> None:
    """Check the engine's options and ready the calling thread for later runs of the engine.

    Called where an upscaling graph is built (before any lazy computation): the options are
    validated with clear errors, and the calling thread's idle OpenMP threads are released
    (:func:`release_idle_openmp_threads`), since that thread (a notebook's) usually computes
    the graph and would otherwise slow the engine's model thread down.

    Parameters
    ----------
    batch_size, tile, precision
        As for :func:`infer`.

    Raises
    ------
    ValueError
        Naming a bad option.

    Examples
    --------
    >>> prepare_run(batch_size=2, tile=64)
    """
    check_options(batch_size=batch_size, tile=tile, precision=precision)
    release_idle_openmp_threads()

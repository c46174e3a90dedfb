"""xsr: deep-learning super-resolution of scientific movies for xarray and dask.

Importing xsr registers the ``.sr`` accessor on every :class:`xarray.Dataset` and
:class:`xarray.DataArray`. It imports xarray, dask and numpy but not torch: the functions that
run networks import it when they are called. Importing xsr changes nothing else in the process
(no environment variables, no allocator or thread settings): the engine applies its runtime
settings only while it runs (see :mod:`xsr.engine.runtime`).

Examples
--------
>>> import xsr
>>> ds = xsr.testing.random_movie(4, 8, 8)
>>> lo = ds.sr.degrade(scale=2)          # same as xsr.degrade(ds, scale=2)
>>> dict(lo.sizes)
{'time': 4, 'y': 4, 'x': 4}
"""

from __future__ import annotations

from typing import Any

# ``xsr.degrade`` and ``xsr.upscale`` are the functions; their modules are ``xsr.degradation``
# and ``xsr.upscaling`` (no module shares its name with a public function).
from xsr import accessor, coords, data, io, metrics, plot, testing
from xsr._version import __version__
from xsr.archive import upscale_file, upscale_to_zarr
from xsr.degradation import degrade
from xsr.upscaling import upscale

__all__ = [
    "__version__",
    "accessor",
    "coords",
    "data",
    "degrade",
    "io",
    "load_model",
    "metrics",
    "models",
    "plot",
    "save_model",
    "testing",
    "train",
    "upscale",
    "upscale_file",
    "upscale_to_zarr",
]

# Names whose import needs torch: resolved on first use.
_LAZY = {
    "load_model": ("xsr.models.files", "load_model"),
    "save_model": ("xsr.models.files", "save_model"),
    "models": ("xsr.models", None),
    "train": ("xsr.train", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xsr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

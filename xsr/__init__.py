"""xsr: deep-learning super-resolution of scientific movies for xarray and dask.

(Integration note: during the first build the package namespace is filled in once every layer
exists; until then import from the submodules.)
"""

from __future__ import annotations

from xsr import accessor, testing
from xsr._version import __version__

__all__ = ["__version__", "accessor", "testing"]

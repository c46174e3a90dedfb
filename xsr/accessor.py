"""The ``.sr`` accessor on xarray objects.

Every method is one line that delegates to a public function; heavy imports happen inside the
methods, and nothing (no loaded model) is stored on the accessor, because xarray builds a new
accessor for every new object.
"""

from __future__ import annotations

from typing import Any

import xarray as xr


class SRAccessor:
    """Super-resolution methods for a :class:`xarray.Dataset` or :class:`xarray.DataArray`.

    Examples
    --------
    >>> import xsr
    >>> ds = xsr.testing.random_movie(4, 8, 8)
    >>> ds.sr.degrade(scale=2)["h"].shape
    (4, 4, 4)
    """

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def upscale(self, model: Any = None, **kwargs: Any) -> Any:
        """Super-resolve with a model; see :func:`xsr.upscaling.upscale`."""
        from xsr.upscaling import upscale

        return upscale(self._obj, model, **kwargs)

    def degrade(self, **kwargs: Any) -> Any:
        """Coarsen to a lower resolution; see :func:`xsr.degradation.degrade`."""
        from xsr.degradation import degrade

        return degrade(self._obj, **kwargs)

    def evaluate(self, truth: Any, **kwargs: Any) -> xr.Dataset:
        """Metrics table of this prediction against ``truth``; see :func:`xsr.metrics.evaluate`."""
        from xsr.metrics import evaluate

        return evaluate(self._obj, truth, **kwargs)

    def plot_compare(self, truth: Any, **kwargs: Any) -> Any:
        """Comparison panels against ``truth``; see :func:`xsr.plot.plot_compare`."""
        from xsr.plot import plot_compare

        return plot_compare(self._obj, truth, **kwargs)


xr.register_dataset_accessor("sr")(SRAccessor)
xr.register_dataarray_accessor("sr")(SRAccessor)

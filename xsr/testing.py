"""Testing utilities for xsr and for code built on it.

Light helpers in the spirit of :mod:`xarray.testing`: they import only numpy, dask and xarray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import xarray as xr

__all__ = ["CountingScheduler", "raise_if_dask_computes", "random_movie"]


class CountingScheduler:
    """A dask scheduler that counts how often it is called and can refuse to compute.

    Parameters
    ----------
    max_computes : int
        Raise ``RuntimeError`` once more than this many computes were asked for.

    Examples
    --------
    >>> import dask, dask.array as da
    >>> sched = CountingScheduler(max_computes=1)
    >>> with dask.config.set(scheduler=sched):
    ...     _ = da.ones(3, chunks=1).sum().compute()
    >>> sched.total_computes
    1
    """

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were scheduled: {self.total_computes} > "
                f"{self.max_computes}. Something that should be lazy computed."
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Raise if dask computes more than ``max_computes`` times inside the block.

    Parameters
    ----------
    max_computes : int, default 0
        Number of computes allowed.

    Yields
    ------
    CountingScheduler
        The scheduler in use, with its ``total_computes`` counter.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> with raise_if_dask_computes():
    ...     y = x + 1          # lazy: fine
    """
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler


def random_movie(
    nt: int = 6,
    ny: int = 16,
    nx: int = 20,
    *,
    seed: int = 0,
    variables: tuple[str, ...] = ("h",),
    dtype: str = "float32",
) -> xr.Dataset:
    """A small smooth random movie with CF-labelled ``(time, y, x)`` coordinates, for tests.

    Parameters
    ----------
    nt, ny, nx : int
        Sizes of the time, y and x dimensions.
    seed : int
        Seed of the random generator.
    variables : tuple of str
        Names of the data variables.
    dtype : str
        Floating dtype of the data.

    Returns
    -------
    xarray.Dataset
        Variables of dims ``(time, y, x)`` with metre coordinates (cell centres, 1 km spacing).

    Examples
    --------
    >>> ds = random_movie(4, 8, 8)
    >>> ds["h"].dims
    ('time', 'y', 'x')
    """
    rng = np.random.default_rng(seed)
    data_vars = {}
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    damp = np.exp(-((ky**2 + kx**2) * 40.0))
    for name in variables:
        noise = rng.standard_normal((nt, ny, nx))
        field = np.fft.ifft2(np.fft.fft2(noise) * damp).real
        field = field / (field.std() + 1e-12)
        data_vars[name] = (
            ("time", "y", "x"),
            field.astype(dtype),
            {"units": "m", "long_name": f"test field {name}"},
        )
    coords = {
        "time": ("time", np.arange(nt, dtype="float64") * 60.0, {"units": "s", "axis": "T"}),
        "y": ("y", (np.arange(ny) + 0.5) * 1000.0, {"units": "m", "axis": "Y"}),
        "x": ("x", (np.arange(nx) + 0.5) * 1000.0, {"units": "m", "axis": "X"}),
    }
    return xr.Dataset(data_vars, coords=coords, attrs={"title": "xsr random test movie"})

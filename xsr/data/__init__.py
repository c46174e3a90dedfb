"""Synthetic scientific movies for training and testing: shallow water and phantoms.

Public entry points are :func:`shallow_water` and :func:`phantom_movie` (labelled Datasets, from
:mod:`xsr.data.datasets`). The array cores are :mod:`xsr.data.swe` (shallow-water equations)
and :mod:`xsr.data.phantom`; import from them with ``from xsr.data.swe import simulate``. No
module shares its name with a public function, so ``xsr.data.swe.configure`` and
``xsr.data.shallow_water(...)`` both resolve.
"""

from __future__ import annotations

from xsr.data.datasets import phantom_movie, shallow_water
from xsr.data.real import list_real, open_real

__all__ = ["list_real", "open_real", "phantom_movie", "shallow_water"]

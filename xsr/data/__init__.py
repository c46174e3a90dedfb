"""Synthetic scientific movies for training and testing: shallow water and phantoms.

Public entry points are :func:`shallow_water` and :func:`phantom_movie` (labelled Datasets, from
:mod:`xsr.data.datasets`). The array cores are :mod:`xsr.data.shallow_water` and
:mod:`xsr.data.phantom`; import from them with ``from xsr.data.shallow_water import simulate``
(the attribute ``xsr.data.shallow_water`` is the function, which shadows the submodule).
"""

from __future__ import annotations

from xsr.data.datasets import phantom_movie, shallow_water
from xsr.data.real import list_real, open_real

__all__ = ["list_real", "open_real", "phantom_movie", "shallow_water"]

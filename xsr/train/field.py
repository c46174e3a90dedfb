"""Training data for field models: every variable's frames as samples of one scalar field.

A field model (``kind: "field"``) maps one scalar field to itself at higher resolution, and the
engine normalises each low-resolution frame by its own mean and standard deviation before the
network sees it (:func:`xsr.engine.infer` with ``normalisation="frame"``). Training must see the
field the same way, so :func:`frame_normalised` divides every high-resolution frame by the
statistics of its degraded (low-resolution) version: degradation is linear and block means keep
the mean, so the low-resolution input the network is trained on is exactly the frame-normalised
input it gets at inference.

:func:`field_selection` turns the data stage's :class:`~xsr.train.data.Selection` of any
variables into a selection of one ``field`` variable whose extra dimension runs over the
variables (and their own extra dims, such as levels or ensemble members), which is how
:func:`xsr.train.fit` fine-tunes a field model on a user's file:
``fit("field-xsrnet-x2", ds)`` learns from every variable of ``ds`` at once.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from typing import Any

import xarray as xr

from xsr.train.config import FitConfig
from xsr.train.data import Selection, degraded

__all__ = ["FIELD", "FIELD_ATTRS", "field_card", "field_selection", "frame_normalised"]

#: The one variable of a field model, and its attributes (its values are frame-normalised).
FIELD = "field"
FIELD_ATTRS = {"units": "1", "long_name": "any scalar field (per-frame normalised)"}
#: The dimension over which the variables (and their extra dims) are laid as samples.
FIELD_SAMPLE_DIM = "_xsr_field"


def frame_normalised(
    hires: xr.DataArray, lowres: xr.DataArray, dims: Sequence[Hashable]
) -> xr.DataArray:
    """``hires`` minus the mean of each low-resolution frame, over its standard deviation.

    The statistics are those :func:`xsr.engine.normalisation.frame_statistics` gives the engine
    at inference: the mean and the population standard deviation of each ``lowres`` frame's
    finite cells. A constant frame (standard deviation 0) is only shifted, so it becomes 0
    everywhere (a field model returns a constant exactly; there is nothing else to learn from
    it). Lazy on dask input.

    Parameters
    ----------
    hires : xarray.DataArray
        High-resolution frames.
    lowres : xarray.DataArray
        Their low-resolution (degraded) version, on the same non-spatial dims.
    dims : (hashable, hashable)
        The spatial dims, reduced over.

    Returns
    -------
    xarray.DataArray
        ``hires`` normalised frame by frame, in float32.

    Examples
    --------
    >>> import numpy as np
    >>> hi = xr.DataArray(np.arange(32.0).reshape(2, 4, 4), dims=("time", "y", "x"))
    >>> lo = hi.coarsen(y=2, x=2).mean()
    >>> z = frame_normalised(hi, lo, ("y", "x"))
    >>> [round(float(v), 6) for v in z.coarsen(y=2, x=2).mean().std(("y", "x"))]
    [1.0, 1.0]
    """
    dims = list(dims)
    mean = lowres.mean(dims, skipna=True)
    std = lowres.std(dims, skipna=True)
    std = std.where(std > 0, 1.0)
    return ((hires - mean) / std).astype("float32")


def _as_samples(da: xr.DataArray, keep: Sequence[Hashable]) -> xr.DataArray:
    """``da`` with every dim not in ``keep`` stacked into :data:`FIELD_SAMPLE_DIM` (unlabelled)."""
    extra = [d for d in da.dims if d not in keep]
    da = da.stack({FIELD_SAMPLE_DIM: extra}) if extra else da.expand_dims(FIELD_SAMPLE_DIM)
    drop = [c for c in da.coords if c not in keep]
    return da.drop_vars(drop).transpose(FIELD_SAMPLE_DIM, *keep)


def field_selection(sel: Selection, cfg: FitConfig, scale: int) -> Selection:
    """The selection as one frame-normalised ``field`` variable, variables laid as samples.

    Parameters
    ----------
    sel : Selection
        The data stage's selection (any number of variables).
    cfg : FitConfig
        Gives the degradation that makes the low-resolution frames.
    scale : int
        The model's factor.

    Returns
    -------
    Selection
        Its ``ds`` and ``data`` hold one variable, :data:`FIELD`, with attributes
        :data:`FIELD_ATTRS` and the input's global attributes; its infinite-cell counts are the
        input's (they name the user's variables).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> from xsr.train.data import select
    >>> cfg = FitConfig(periodic=False)
    >>> ds = random_movie(4, 8, 8, variables=("a", "b"))
    >>> fsel = field_selection(select(ds, cfg), cfg, scale=2)
    >>> fsel.variables, dict(fsel.data[FIELD].sizes)
    (('field',), {'_xsr_field': 2, 'time': 4, 'y': 8, 'x': 8})
    """
    keep = (sel.time_dim, sel.ydim, sel.xdim)
    low = degraded(sel, cfg, scale)
    dims = (sel.ydim, sel.xdim)
    hires = sel.data.isel({d: slice(0, scale * low.sizes[d]) for d in dims})
    parts = [_as_samples(frame_normalised(hires[v], low[v], dims), keep) for v in sel.variables]
    field = xr.concat(parts, FIELD_SAMPLE_DIM, coords="minimal", compat="override")
    field.attrs = dict(FIELD_ATTRS)
    for d in dims:  # the spatial coordinates keep their attributes (``period`` among them)
        if d in hires.coords:
            field = field.assign_coords({d: hires[d]})
    ds = xr.Dataset({FIELD: field}, attrs=dict(sel.ds.attrs))
    return Selection(
        ds, ds, (FIELD,), sel.time_dim, sel.ydim, sel.xdim, sel.periodic, dict(sel.infinite)
    )


def field_card(model: Any) -> Any:
    """The card of ``model`` when it is a field model (an SRModel, pretrained name or file).

    An architecture name is never one (a new network is specialised until trained as a field
    model by ``scripts/train_field_models.py``), nor is anything without a card.

    Parameters
    ----------
    model : str, path or SRModel

    Returns
    -------
    xsr.models.card.ModelCard or None

    Examples
    --------
    >>> field_card("fsrcnn") is None, field_card("xsrnet-swe-x2") is None
    (True, True)
    """
    card = getattr(model, "card", None)
    if card is None and isinstance(model, (str, os.PathLike)):
        card = _named_card(model)
    return card if getattr(card, "kind", None) == "field" else None


def _named_card(model: str | os.PathLike[str]) -> Any:
    """The card behind a pretrained name or a model file (``None`` for an architecture name)."""
    from xsr.models.card import ModelCard
    from xsr.models.files import model_paths
    from xsr.models.pretrained import PRETRAINED, pretrained_card
    from xsr.models.registry import list_models

    if isinstance(model, str) and model in list_models():
        return None
    if isinstance(model, str) and model in PRETRAINED:
        return pretrained_card(model)
    card_path = model_paths(model)[1]
    if not card_path.exists():
        return None  # fit's model stage names the missing file
    return ModelCard.from_json(card_path.read_text(encoding="utf-8"))

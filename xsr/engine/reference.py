"""Model references for dask tasks, and the per-process cache of the engine's model copies.

:class:`ModelRef` is the picklable handle that travels in dask tasks instead of the module: it
holds the model card (:class:`xsr.models.card.ModelCard`: architecture, config, the contract
numbers, variables, normalisation), the serialised weights (or a model-file path) and a key.
:func:`get_model_cached` rebuilds the module at most once per process and device (an LRU keyed by
the weights' sha256) and prepares it for inference (:func:`xsr.engine.fast.prepare`), so a dask
worker builds a model once, not once per task. The cache holds the engine's private copies: the
caller's module is never modified.

This module imports torch, safetensors and :mod:`xsr.models` only.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xsr.digest import sha256_bytes
from xsr.engine.device import resolve_device
from xsr.engine.fast import prepare
from xsr.engine.normalisation import normalisation_arrays
from xsr.models.card import ModelCard

__all__ = [
    "ModelRef",
    "cache_info",
    "card_dict",
    "check_model",
    "clear_model_cache",
    "get_model_cached",
]

_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()
_CACHE: collections.OrderedDict[tuple[str, str], torch.nn.Module] = collections.OrderedDict()
_STATS = {"builds": 0, "hits": 0}
_CARD_FIELDS = {f.name for f in dataclasses.fields(ModelCard)}


def card_dict(card: Any) -> dict[str, Any]:
    """A model card as a plain dict: ``{}`` for none, a copy of a mapping, ``ModelCard.to_dict()``.

    The one card-to-dict conversion of xsr (the engine's references and the xarray layer use
    it).

    Parameters
    ----------
    card : ModelCard, mapping or None
        A model's ``card`` attribute.

    Returns
    -------
    dict

    Raises
    ------
    TypeError
        For anything else.

    Examples
    --------
    >>> card_dict(None), card_dict({"name": "m"})
    ({}, {'name': 'm'})
    """
    if card is None:
        return {}
    if isinstance(card, Mapping):
        return dict(card)
    to_dict = getattr(card, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"model.card must be a ModelCard or a dict, got {type(card).__name__}.")


def _make_key(arch: str, config: Any, digest: str) -> str:
    blob = json.dumps([arch, config], sort_keys=True, default=str)
    return sha256_bytes(blob.encode() + digest.encode())


def check_model(model: Any) -> None:
    """Raise a clear :class:`TypeError` unless ``model`` obeys the xsr model contract.

    Parameters
    ----------
    model : object
        Candidate model.

    Raises
    ------
    TypeError
        Naming the missing attributes and how to build a model.

    Examples
    --------
    >>> from xsr.models import get_model
    >>> check_model(get_model("bicubic", scale=2))
    """
    missing = [
        a
        for a in ("scale", "window", "time_radius", "receptive_radius", "channels")
        if not hasattr(model, a)
    ]
    if not isinstance(model, torch.nn.Module) or missing:
        raise TypeError(
            "model must be an xsr model (a torch.nn.Module with the attributes scale, window, "
            f"time_radius, receptive_radius and channels); got {type(model).__name__}"
            + (f" missing {missing}" if missing else "")
            + ". Build one with xsr.models.get_model(...) or xsr.models.files.load_model(...)."
        )


def _describe(model: torch.nn.Module, own_sha256: str, name: str | None) -> ModelCard:
    """The model's card, its contract numbers taken from the module itself.

    A model without a card gets one that describes it bare: no variables, no normalisation.
    """
    given = card_dict(getattr(model, "card", None))
    arch = str(getattr(model, "arch", type(model).__name__))
    fields: dict[str, Any] = {
        "name": arch,
        "variables": [],
        "normalisation": {},
        "sha256": own_sha256,
        **{k: v for k, v in given.items() if k in _CARD_FIELDS and v is not None},
        "arch": arch,
        "config": dict(getattr(model, "config", {})),
        "scale": int(model.scale),
        "window": int(model.window),
        "time_radius": int(model.time_radius),
        "receptive_radius": int(model.receptive_radius),
    }
    fields["name"] = str(name or fields["name"] or arch)
    fields["sha256"] = str(fields["sha256"] or own_sha256)
    return ModelCard(**fields)


@dataclass(frozen=True, eq=False)
class ModelRef:
    """A picklable, hashable handle to a model, for dask tasks.

    Tasks carry the reference, never the ``torch.nn.Module``; :func:`get_model_cached` rebuilds
    the module once per process from the serialised weights (or from ``path``). Build one with
    :meth:`from_model` or :meth:`from_path`; the model's description is its :attr:`card`.

    Parameters
    ----------
    card : xsr.models.card.ModelCard
        The model card; for a model without one, a card describing the bare model (no
        variables, no normalisation). Its contract numbers are the module's own.
    channels : int
        Number of variables (in = out).
    weights : bytes
        The state dict as safetensors bytes (empty when ``path`` is used).
    path : str, optional
        A model file to load instead of ``weights`` (shared file systems).
    key : str
        Identity of the architecture, its config and its weights (computed when empty).

    Examples
    --------
    >>> from xsr.models import get_model
    >>> ref = ModelRef.from_model(get_model("bicubic", scale=2, channels=1))
    >>> ref.scale, ref.window, ref.card.arch
    (2, 1, 'bicubic')
    >>> import pickle
    >>> pickle.loads(pickle.dumps(ref)).key == ref.key
    True
    """

    card: ModelCard
    channels: int
    weights: bytes = b""
    path: str | None = None
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", _make_key(self.arch, self.config, self.sha256))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelRef) and other.key == self.key

    def __dask_tokenize__(self) -> str:
        return self.key

    # -- the card's contract, for code that takes a model or a reference ----------------------
    @property
    def arch(self) -> str:
        """Registry name of the architecture."""
        return self.card.arch

    @property
    def config(self) -> dict[str, Any]:
        """Architecture configuration (``get_model(arch, **config)``)."""
        return self.card.config

    @property
    def scale(self) -> int:
        """Spatial upscaling factor."""
        return self.card.scale

    @property
    def window(self) -> int:
        """Frames in."""
        return self.card.window

    @property
    def time_radius(self) -> int:
        """Frames needed on each side of an output frame."""
        return self.card.time_radius

    @property
    def receptive_radius(self) -> int:
        """Spatial receptive radius in low-resolution pixels."""
        return self.card.receptive_radius

    @property
    def sha256(self) -> str:
        """The model file's sha256 when the card has one, else that of the serialised weights."""
        return self.card.sha256

    @property
    def name(self) -> str:
        """Display name for provenance."""
        return self.card.name

    @property
    def normalisation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel ``(mean, std)`` arrays from the card, or ``None``."""
        return normalisation_arrays(None, card_dict(self.card), self.channels)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: torch.nn.Module, *, name: str | None = None) -> ModelRef:
        """Reference an in-memory model by serialising its weights.

        Parameters
        ----------
        model : xsr.models.base.SRModel
            A model obeying the xsr model contract (its ``card`` is kept when present).
        name : str, optional
            Display name; defaults to the card's name or the architecture.

        Returns
        -------
        ModelRef

        Examples
        --------
        >>> from xsr.models import get_model
        >>> ModelRef.from_model(get_model("bicubic", scale=4, channels=1)).scale
        4
        """
        from safetensors.torch import save

        check_model(model)
        state = {
            k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()
        }
        weights = save(state) if state else b""
        own = sha256_bytes(weights)
        card = _describe(model, own, name)
        ref = cls(
            card=card,
            channels=int(model.channels),
            weights=weights,
            key=_make_key(card.arch, card.config, own),
        )
        _seed_cache(ref, model)
        return ref

    @classmethod
    def from_path(cls, path: str) -> ModelRef:
        """Reference a model file; workers load it themselves (shared file systems).

        Parameters
        ----------
        path : str
            A model file path or a pretrained name, as accepted by
            :func:`xsr.models.files.load_model`.

        Returns
        -------
        ModelRef

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from xsr.models import get_model
        >>> from xsr.models.files import save_model
        >>> p = save_model(get_model("fsrcnn", scale=2, channels=1),
        ...                pathlib.Path(tempfile.mkdtemp()) / "m")
        >>> ModelRef.from_path(str(p)).arch
        'fsrcnn'
        """
        from xsr.models.files import load_model

        ref = cls.from_model(load_model(path))
        return dataclasses.replace(ref, weights=b"", path=str(path))

    def build(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Rebuild the module (uncached and unprepared; prefer :func:`get_model_cached`).

        Parameters
        ----------
        device : str or torch.device
            Where to put the weights.

        Returns
        -------
        torch.nn.Module
            The model in eval mode with gradients disabled.

        Examples
        --------
        >>> from xsr.models import get_model
        >>> ref = ModelRef.from_model(get_model("fsrcnn", scale=2, channels=1))
        >>> ref.build().scale
        2
        """
        if self.path is not None:
            from xsr.models.files import load_model

            model = load_model(self.path)
        else:
            from safetensors.torch import load

            from xsr.models import get_model

            model = get_model(self.arch, **self.config)
            if self.weights:
                model.load_state_dict(load(self.weights))
        model = model.to(torch.device(device)).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model


def get_model_cached(ref: ModelRef, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The engine's prepared module for ``ref`` on ``device``, built at most once per process.

    A small LRU (8 entries) keyed by the reference's key (architecture, config and weights
    sha256) and the device. Thread-safe: concurrent tasks on one worker wait for one build.
    The module is the engine's own copy, prepared for inference (:func:`xsr.engine.fast.prepare`);
    do not train it.

    Parameters
    ----------
    ref : ModelRef
        The model reference.
    device : str or torch.device
        Target device.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> from xsr.models import get_model
    >>> ref = ModelRef.from_model(get_model("fsrcnn", scale=2, channels=1))
    >>> get_model_cached(ref) is get_model_cached(ref)
    True
    """
    key = (ref.key, str(resolve_device(device)))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is not None:
            _CACHE.move_to_end(key)
            _STATS["hits"] += 1
            return model
        # the same model already prepared for another device: copy it (in-memory models whose
        # architecture is not registered can then move to the GPU too)
        other = next((m for (k, _), m in _CACHE.items() if k == ref.key), None)
        if other is not None:
            model = prepare(copy.deepcopy(other).to(key[1]))
        else:
            model = prepare(ref.build(key[1]))
        _STATS["builds"] += 1
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return model


def _seed_cache(ref: ModelRef, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
    """Put a prepared copy of an in-memory model in this process's cache (no rebuild needed)."""
    key = (ref.key, str(torch.device(device)))
    with _CACHE_LOCK:
        if key in _CACHE:
            return
    frozen = prepare(copy.deepcopy(model).to(key[1]))
    with _CACHE_LOCK:
        _CACHE[key] = frozen
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def cache_info() -> dict[str, int]:
    """Counters of the model cache of this process: ``builds``, ``hits`` and ``size``.

    Returns
    -------
    dict

    Examples
    --------
    >>> sorted(cache_info())
    ['builds', 'hits', 'size']
    """
    with _CACHE_LOCK:
        return {"builds": _STATS["builds"], "hits": _STATS["hits"], "size": len(_CACHE)}


def clear_model_cache() -> None:
    """Empty the model cache of this process and reset its counters.

    Examples
    --------
    >>> clear_model_cache()
    >>> cache_info()["size"]
    0
    """
    with _CACHE_LOCK:
        _CACHE.clear()
        _STATS["builds"] = 0
        _STATS["hits"] = 0

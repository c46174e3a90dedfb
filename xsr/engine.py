"""The inference engine: numpy arrays in, numpy arrays out, torch in between.

:func:`infer` takes a block of low-resolution frames ``(B, C, T, H, W)`` in physical units and
returns the super-resolved frames. It normalises per channel, fills NaN (masked) cells, builds the
time windows of windowed models as a strided view (``unfold``, no copy of the whole movie),
batches, optionally tiles space with halos taken from the model's receptive radius, de-normalises,
re-applies the mask on the fine grid and applies the consistency layer (``conserve``) in physical
units. It never pads the time axis or the outer spatial boundary: halos are the array layer's job
(:mod:`xsr._chunked`).

:class:`ModelRef` is the picklable handle that travels in dask tasks instead of the module: it
holds the serialised weights (or a model-file path), the card and the architecture, and
:func:`get_model_cached` rebuilds the module at most once per process and device (an LRU keyed by
the weights' sha256), so a dask worker builds a model once, not once per task.

Thread policy (measured with ``benchmarks/upscale.py --policy`` on 2 CPU cores): one model
forward runs at a time per process (on CPUs the whole of each :func:`infer` runs on one thread,
see :func:`_serialised`; on GPUs the forwards run under a lock), and each forward uses torch's
own intra-op threads (one per core by default; on a dask.distributed worker, the worker's thread
count, see :func:`use_threads`). Dask tasks therefore read and cut data in parallel but run the
network one after the other, each call using every core. For the report's 3D network (16
frames of 128x128, time chunks of 4) one OpenMP thread per dask thread with concurrent calls
took 1.1-1.5x the time and about 2x the peak memory of this policy. Torch activations, not
dask chunks, set the memory: ``batch_size`` (and ``tile``) are the knobs. Idle OpenMP threads
that other threads (a notebook's main thread) keep for their own torch work would slow the model
thread's down under GNU OpenMP; xsr releases the caller's (:func:`release_idle_openmp_threads`).

This module imports numpy, torch and :mod:`xsr.models` only (never xarray or dask).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import copy
import ctypes
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "PRECISIONS",
    "ModelRef",
    "cache_info",
    "check_options",
    "clear_model_cache",
    "get_model_cached",
    "infer",
    "release_idle_openmp_threads",
    "resolve_device",
    "use_threads",
]

#: Activation memory an automatic batch (and, when one frame alone is too big, a tile) aims at.
MEMORY_BUDGET_BYTES = 1 << 30
#: Side, in fine pixels, of automatic spatial tiles (cache-sized forwards are faster on CPUs).
TILE_FINE_PIXELS = 256
#: Automatic tiles are at least this many receptive radii wide (coarse pixels), so the halo of
#: a tile adds at most about 13 % to its work: xsrnet (radius 8) at x2 gets 256-pixel tiles
#: instead of 128 (measured on 2 cores: 9-14 % less CPU time), FSRCNN (radius 4) keeps 128.
HALO_TILE_FACTOR = 32
#: Fine pixels (times the window) that an automatic batch aims at per forward.
FINE_PIXELS_PER_FORWARD = 2 * 256 * 256
#: Assumed float32 feature maps per output pixel and window frame when sizing automatic batches.
_FEATURES_PER_PIXEL = 64
_CACHE_SIZE = 8
_T = TypeVar("_T")

_FORWARD_LOCK = threading.Lock()
#: On CPUs, model calls run on one thread per process (see :func:`_serialised`).
_ONE_MODEL_THREAD = True
_MODEL_THREAD: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
_CACHE_LOCK = threading.Lock()
_CACHE: collections.OrderedDict[tuple[str, str], torch.nn.Module] = collections.OrderedDict()
_STATS = {"builds": 0, "hits": 0}


def _card_dict(card: Any) -> dict[str, Any] | None:
    if card is None:
        return None
    if isinstance(card, Mapping):
        return dict(card)
    to_dict = getattr(card, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"model.card must be a ModelCard or a dict, got {type(card).__name__}.")


def _make_key(arch: str, config: Any, digest: str) -> str:
    blob = json.dumps([arch, config], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode() + digest.encode()).hexdigest()


def _check_model(model: Any) -> None:
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


@dataclass(frozen=True, eq=False)
class ModelRef:
    """A picklable, hashable handle to a model, for dask tasks.

    Tasks carry the reference, never the ``torch.nn.Module``; :func:`get_model_cached` rebuilds
    the module once per process from the serialised weights (or from ``path``).

    Parameters
    ----------
    arch : str
        Registry name (``xsr.models.get_model(arch, **config)`` rebuilds the architecture).
    config : dict
        JSON-serialisable architecture configuration.
    scale, window, time_radius, receptive_radius, channels : int
        The model contract attributes.
    sha256 : str
        sha256 of the weights (the model file's hash when the card has one, else the hash of the
        serialised state dict).
    weights : bytes
        The state dict as safetensors bytes (empty when ``path`` is used).
    path : str, optional
        A model file to load instead of ``weights`` (shared file systems).
    card : dict, optional
        The model card as a dict (variables, units, normalisation, ...).
    name : str
        A display name for provenance.

    Examples
    --------
    >>> from xsr.models import get_model
    >>> ref = ModelRef.from_model(get_model("bicubic", scale=2, channels=1))
    >>> ref.scale, ref.window
    (2, 1)
    >>> import pickle
    >>> pickle.loads(pickle.dumps(ref)).key == ref.key
    True
    """

    arch: str
    config: dict[str, Any]
    scale: int
    window: int
    time_radius: int
    receptive_radius: int
    channels: int
    sha256: str
    weights: bytes = b""
    path: str | None = None
    card: dict[str, Any] | None = None
    name: str = ""
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", _make_key(self.arch, self.config, self.sha256))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelRef) and other.key == self.key

    def __dask_tokenize__(self) -> str:
        return self.key

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

        _check_model(model)
        state = {
            k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()
        }
        weights = save(state) if state else b""
        card = _card_dict(getattr(model, "card", None))
        own = hashlib.sha256(weights).hexdigest()
        arch = str(getattr(model, "arch", type(model).__name__))
        display = name or (card or {}).get("name") or arch
        ref = cls(
            arch=arch,
            config=dict(getattr(model, "config", {})),
            scale=int(model.scale),
            window=int(model.window),
            time_radius=int(model.time_radius),
            receptive_radius=int(model.receptive_radius),
            channels=int(model.channels),
            sha256=str((card or {}).get("sha256") or own),
            weights=weights,
            card=card,
            name=str(display),
            key=_make_key(arch, getattr(model, "config", {}), own),
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

        model = load_model(path)
        ref = cls.from_model(model)
        return cls(
            arch=ref.arch,
            config=ref.config,
            scale=ref.scale,
            window=ref.window,
            time_radius=ref.time_radius,
            receptive_radius=ref.receptive_radius,
            channels=ref.channels,
            sha256=ref.sha256,
            path=str(path),
            card=ref.card,
            name=ref.name,
            key=ref.key,
        )

    @property
    def normalisation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel ``(mean, std)`` arrays from the card, or ``None``."""
        return _normalisation_arrays(None, self.card, self.channels)

    def build(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Rebuild the module (uncached; prefer :func:`get_model_cached`).

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


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into ``cuda`` when a GPU exists, else ``cpu``.

    The environment variable ``XSR_DEVICE`` (e.g. ``XSR_DEVICE=cpu``), when set, is what
    ``"auto"`` means instead: a way to keep a whole run off a shared GPU without changing code.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If a CUDA device is asked for where none exists, or the name is not a device.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        override = os.environ.get("XSR_DEVICE", "").strip()
        if not override or override == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return resolve_device(override)
        except ValueError as err:
            raise ValueError(
                f"the environment variable XSR_DEVICE={override!r} (what device='auto' means) is "
                f"not usable here: {err} Unset it or set it to 'cpu', 'cuda' or 'auto'."
            ) from err
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
            ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for a GPU but torch sees none; use device='cpu' or 'auto'."
        )
    return dev


def use_threads(n: int) -> int:
    """Let torch use at least ``n`` intra-op threads in this process; returns the count in use.

    Part of the thread policy (see the module notes): model calls run one at a time per
    process, so a process that runs ``n`` dask threads gives each call ``n`` torch threads.
    Never lowers the count.

    Parameters
    ----------
    n : int
        Threads wanted.

    Returns
    -------
    int
        ``torch.get_num_threads()`` afterwards.

    Examples
    --------
    >>> use_threads(1) >= 1
    True
    """
    if int(n) > torch.get_num_threads():
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def get_model_cached(ref: ModelRef, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The module for ``ref`` on ``device``, built at most once per process.

    A small LRU (8 entries) keyed by the reference's key (architecture, config and weights
    sha256) and the device. Thread-safe: concurrent tasks on one worker wait for one build.

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
            model = _prepare(copy.deepcopy(other).to(key[1]))
        else:
            model = _prepare(ref.build(key[1]))
        _STATS["builds"] += 1
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return model


def _prepare(module: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no gradients, fused inference layers, convolution weights in channels-last.

    With channels-last weights oneDNN runs every convolution in its channels-last kernels
    (measured here: about 20 % faster for xsrnet and srnet3d), whatever the model reshapes.
    :meth:`~xsr.models.base.SRModel.fuse_for_inference` folds layers into faster equivalent
    forms (FSRCNN's fine-resolution tail runs at low resolution). ``module`` is always the
    engine's own copy.
    """
    module.eval()
    fuse = getattr(module, "fuse_for_inference", None)
    if callable(fuse):
        fuse()
    for p in module.parameters():
        p.requires_grad_(False)
        if p.device.type != "cpu":
            continue
        if p.ndim == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.ndim == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def _seed_cache(ref: ModelRef, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
    """Put a frozen copy of an in-memory model in this process's cache (no rebuild needed)."""
    key = (ref.key, str(torch.device(device)))
    with _CACHE_LOCK:
        if key in _CACHE:
            return
    frozen = _prepare(copy.deepcopy(model).to(key[1]))
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


def _normalisation_arrays(
    normalisation: Any, card: Any, channels: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (mean, std) float64 arrays, or None for no normalisation."""
    if normalisation is False:
        return None
    if normalisation is None:
        card = _card_dict(card)
        normalisation = (card or {}).get("normalisation")
        if not normalisation:
            return None
        names = [v["name"] for v in (card or {}).get("variables") or []]
        if names and all(n in normalisation for n in names):
            normalisation = {n: normalisation[n] for n in names}
    if isinstance(normalisation, Mapping):
        try:
            mean = [float(v["mean"]) for v in normalisation.values()]
            std = [float(v["std"]) for v in normalisation.values()]
        except (KeyError, TypeError) as err:
            raise ValueError(
                "normalisation must map each variable to {'mean': ..., 'std': ...}; got "
                f"{normalisation!r}."
            ) from err
    elif isinstance(normalisation, Sequence) and len(normalisation) == 2:
        mean = np.atleast_1d(np.asarray(normalisation[0], dtype="float64")).tolist()
        std = np.atleast_1d(np.asarray(normalisation[1], dtype="float64")).tolist()
    else:
        raise ValueError(
            "normalisation must be None, False, a (means, stds) pair or a mapping "
            f"{{variable: {{'mean', 'std'}}}}; got {normalisation!r}."
        )
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"normalisation has {len(mean)} channel(s) but the model has {channels}; give one "
            "(mean, std) per variable."
        )
    m, s = np.asarray(mean), np.asarray(std)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"normalisation needs finite means and positive stds, got {m}, {s}.")
    return m, s


def _tile_pair(tile: Any) -> tuple[int, int] | None:
    if tile is None or tile is False:
        return None
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
        tile = (int(tile), int(tile))
    if (
        isinstance(tile, Sequence)
        and len(tile) == 2
        and all(
            isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t > 0 for t in tile
        )
    ):
        return int(tile[0]), int(tile[1])
    raise ValueError(
        f"tile must be None (automatic), a positive int or a (ty, tx) pair of low-resolution "
        f"pixels, got {tile!r}."
    )


#: Arithmetic of the forward passes (see :func:`infer`).
PRECISIONS = ("float32", "bfloat16")


def check_options(
    *, batch_size: Any = "auto", tile: Any = None, precision: Any = "float32"
) -> None:
    """Validate ``batch_size``, ``tile`` and ``precision`` early (before any lazy computation).

    Parameters
    ----------
    batch_size : int or "auto"
        Samples per forward.
    tile : None, False, int or (int, int)
        Tile size in low-resolution pixels.
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward passes.

    Raises
    ------
    ValueError
        Naming the argument and what it accepts.

    Examples
    --------
    >>> check_options(batch_size=4, tile=(64, 64))
    """
    _tile_pair(tile)
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}; "
            "'float32' (the default) is exact to float rounding, 'bfloat16' is faster and rougher."
        )
    if batch_size == "auto":
        return
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or 'auto', got {batch_size!r}.")


def _margin_pair(margin: Any, h: int, w: int) -> tuple[int, int]:
    if isinstance(margin, (int, np.integer)) and not isinstance(margin, bool):
        margin = (int(margin), int(margin))
    if (
        not isinstance(margin, Sequence)
        or len(margin) != 2
        or not all(isinstance(m, (int, np.integer)) and not isinstance(m, bool) for m in margin)
        or min(margin) < 0
    ):
        raise ValueError(f"margin must be a non-negative int or (my, mx) pair, got {margin!r}.")
    my, mx = int(margin[0]), int(margin[1])
    if 2 * my >= h or 2 * mx >= w:
        raise ValueError(
            f"margin={margin!r} leaves no interior in frames of {h}x{w} low-resolution cells."
        )
    return my, mx


def _sample_bytes(model: Any, h: int, w: int) -> int:
    """A conservative estimate of the activation bytes of one sample."""
    fine = (model.scale * h) * (model.scale * w)
    return 4 * _FEATURES_PER_PIXEL * fine * max(int(model.window), 1) + 1


def _even_split(size: int, target: int) -> int:
    """Tile length splitting ``size`` into near-equal parts of about ``target``."""
    parts = max(1, round(size / max(1, target)))
    return math.ceil(size / parts)


def _plan(
    model: Any,
    n: int,
    h: int,
    w: int,
    batch_size: Any,
    tile: Any,
    *,
    cpu: bool = True,
    budget: int | None = None,
) -> tuple[int, tuple[int, int]]:
    """Batch size and (ty, tx) core tile size.

    On a CPU, automatic tiles hold about :data:`TILE_FINE_PIXELS` fine pixels a side (and at
    least :data:`HALO_TILE_FACTOR` receptive radii) and automatic batches about
    :data:`FINE_PIXELS_PER_FORWARD` fine pixels (times the window):
    measured on 2 CPU cores, 128x128 tiles two at a time ran FSRCNN about 1.5x faster than
    batches of six, and those about 1.3x faster than whole 256x256 frames (oneDNN keeps them in
    cache). A GPU wants the opposite, whole frames in large batches (measured on an H200, the
    CPU plan ran FSRCNN at 0.6x a plain batch-of-8 forward). Both are capped by ``budget``
    bytes of activations.
    """
    check_options(batch_size=batch_size, tile=tile)
    budget = MEMORY_BUDGET_BYTES if budget is None else int(budget)
    scale, r = int(model.scale), int(model.receptive_radius)
    tiles = _tile_pair(tile)
    if tiles is not None:
        ty, tx = min(tiles[0], h), min(tiles[1], w)
    elif tile is None:
        # cache-sized, but at least HALO_TILE_FACTOR halos wide, so halos add at most ~13 %
        target = max(16, TILE_FINE_PIXELS // scale, HALO_TILE_FACTOR * r) if cpu else max(h, w)
        ty, tx = _even_split(h, target), _even_split(w, target)
        while _sample_bytes(model, ty, tx) > budget and max(ty, tx) > 16:
            if ty >= tx:
                ty = math.ceil(ty / 2)
            else:
                tx = math.ceil(tx / 2)
    else:
        ty, tx = h, w
    if batch_size != "auto":
        return int(batch_size), (ty, tx)
    hh, ww = min(ty + 2 * r, h), min(tx + 2 * r, w)
    fine = scale * scale * hh * ww * max(int(model.window), 1)
    bs = budget // _sample_bytes(model, hh, ww)
    if cpu:
        bs = min(bs, FINE_PIXELS_PER_FORWARD // fine)
    return max(min(2, n), min(n, bs)), (ty, tx)


def _batch_bounds(n: int, batch: int) -> list[tuple[int, int]]:
    """Batches of at most ``batch`` samples; a trailing single sample joins the previous batch.

    oneDNN runs a one-sample batch through other kernels than larger batches, which changes
    results in the last float32 bits; avoiding lone samples keeps outputs independent of the
    batching, and so of the dask chunking.
    """
    bounds = [(k, min(n, k + batch)) for k in range(0, n, batch)]
    if batch > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _forward(
    module: Callable[[torch.Tensor], torch.Tensor], inp: torch.Tensor, *, pair: bool
) -> torch.Tensor:
    """``module(inp)``; a lone sample is run as a pair (see :func:`_batch_bounds`)."""
    if pair and inp.shape[0] == 1:
        return module(torch.cat([inp, inp]))[:1]
    return module(inp)


def _model_thread() -> concurrent.futures.ThreadPoolExecutor:
    """This process's model thread (a new one after a fork: threads do not survive it)."""
    global _MODEL_THREAD
    with _CACHE_LOCK:
        if _MODEL_THREAD is None or _MODEL_THREAD[0] != os.getpid():
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xsr-model")
            _MODEL_THREAD = (os.getpid(), pool)
        return _MODEL_THREAD[1]


#: ``omp_pause_soft`` of the OpenMP 5 API.
_OMP_PAUSE_SOFT = 1
_GOMP_PAUSE: list[Callable[[int], int]] | None = None


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
    instead of spinning, so xsr's model thread pays a wake-up at each of the many small
    operations of a forward. Measured on 2 cores: after a single torch operation on the main
    thread, the engine ran FSRCNN about 30 % slower (11 against 16 Mpx/s), until this was
    called. xsr calls it on the thread that hands work to its model thread (:func:`infer`) and
    when it builds an upscaling graph (:func:`xsr._chunked.upscale_array`), so a notebook that
    trained or ran torch before upscaling keeps full speed. The threads are started again by
    the thread's next parallel operation (about 0.1 ms).

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
    done = False
    for pause in _gomp_pause_functions():
        done = pause(_OMP_PAUSE_SOFT) == 0 or done
    return done


def _serialised(fn: Callable[[], _T], *, cpu: bool) -> _T:
    """Run ``fn`` one at a time per process and return its result.

    On a CPU ``fn`` is the whole of one :func:`infer` (its tensor work, not only the model
    calls), and every one runs on the same thread, so torch keeps one OpenMP thread team: work
    started from several dask threads starts a team in each, and a finished team keeps spinning
    on the cores while the next one works (measured on 2 cores: FSRCNN through
    ``ds.sr.upscale`` with the threaded scheduler ran at 0.69x the synchronous scheduler; with
    ``OMP_WAIT_POLICY=PASSIVE`` the gap closed). The model thread takes the caller's torch
    thread count. On a GPU ``fn`` is the model calls, under a lock in the caller's thread
    (CUDA's current device is per thread), so that host work of other tasks overlaps them.
    """
    if not (cpu and _ONE_MODEL_THREAD) or threading.current_thread().name.startswith("xsr-model"):
        with _FORWARD_LOCK:
            return fn()
    n = torch.get_num_threads()
    release_idle_openmp_threads()  # the caller's idle team would throttle the model thread's

    def call() -> _T:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return fn()

    return _model_thread().submit(call).result()


@contextlib.contextmanager
def _full_float32(dev: torch.device) -> Iterator[None]:
    """On CUDA, convolutions in full float32: cuDNN's default TF32 keeps 10 mantissa bits.

    TF32 errors (about 1e-3 relative) are of the size of the super-resolution error itself, as
    for bfloat16, so they are never the default; the results then match the CPU's to float32
    rounding. Call the model directly under your own TF32 settings for the faster, rougher
    arithmetic.
    """
    if dev.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9
        old = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:  # pragma: no cover - older torch
        old = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old


def infer(
    model: Any,
    frames: np.ndarray,
    *,
    normalisation: Any = None,
    conserve: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int | str = "auto",
    tile: int | tuple[int, int] | None = None,
    margin: int | tuple[int, int] = 0,
    precision: str = "float32",
) -> np.ndarray:
    """Run a model over a block of low-resolution frames.

    Parameters
    ----------
    model : xsr.models.base.SRModel or ModelRef
        The network (a reference is resolved through :func:`get_model_cached`).
    frames : numpy.ndarray
        ``(B, C, T, H, W)`` in physical units; ``C`` equals ``model.channels`` and
        ``T >= model.window``. NaN cells are filled with the channel mean (normalised zero)
        before the forward and set back to NaN on the fine grid (every fine pixel of a NaN
        low-resolution cell of the centre frame).
    normalisation : None, False, (means, stds) or mapping
        ``None`` uses the model card's ``normalisation`` when there is one (in the card's
        variable order) and none otherwise; ``False`` disables it; a ``(means, stds)`` pair or
        ``{variable: {"mean", "std"}}`` (in channel order) sets it explicitly.
    conserve : bool
        Apply :func:`xsr.models.consistency.conserve` in physical units, so that the block mean
        of every output frame equals its centre input frame.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    batch_size : int or "auto"
        Samples (output frames) per forward; ``"auto"`` sizes batches to about
        :data:`MEMORY_BUDGET_BYTES` of activations.
    tile : int, (int, int) or None
        Core tile size in low-resolution pixels; each tile is run with a halo of
        ``receptive_radius`` pixels (clipped at the block edge) and cropped, so the output equals
        untiled inference. ``None`` picks cache-sized tiles (about
        :data:`TILE_FINE_PIXELS` fine pixels a side, smaller if the memory budget asks);
        ``False`` never tiles.
    margin : int or (int, int)
        Low-resolution rows/columns at each spatial edge that are input only (a halo supplied
        by the caller): the output covers the interior ``H - 2*my`` by ``W - 2*mx`` cells, and
        nothing is computed for the margin. Give at least ``receptive_radius`` for results
        independent of the margin's outer edge.
    precision : {"float32", "bfloat16"}
        ``"float32"`` (default) computes in float32 (on CUDA without TF32). ``"bfloat16"`` runs
        the convolutions in bfloat16 under :func:`torch.autocast`, faster where the hardware
        has bfloat16 units (measure yours: ``benchmarks/upscale.py --bf16``); its error, about
        1e-3 of the data range (some 55 dB below it), is of the size of the super-resolution
        error itself, so use it for previews and quick looks, not for results. Normalisation,
        the consistency layer and the output stay float32.

    Returns
    -------
    numpy.ndarray
        ``(B, C, T - 2 * time_radius, scale * (H - 2*my), scale * (W - 2*mx))`` in the input's
        float dtype (float32 for integer input). Computation runs in float32.

    Raises
    ------
    ValueError
        For a wrong rank, channel count or too few frames, or invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> from xsr.models import get_model
    >>> x = np.random.default_rng(0).random((1, 1, 3, 8, 8), dtype="float32")
    >>> infer(get_model("bicubic", scale=2, channels=1), x).shape
    (1, 1, 3, 16, 16)
    """
    dev = resolve_device(device)
    if not isinstance(model, ModelRef):
        # A frozen, prepared copy from the cache; the caller's module is never modified.
        _check_model(model)
        ref = ModelRef.from_model(model)
        _seed_cache(ref, model, dev)
        model = ref
    card = model.card
    module = get_model_cached(model, dev)
    arr = np.asarray(frames)
    if arr.ndim != 5:
        raise ValueError(
            f"frames must be a (B, C, T, H, W) array, got shape {arr.shape}; add the missing "
            "axes with numpy.expand_dims (a 2-D model still needs a T axis of length >= 1)."
        )
    out_dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype("float32")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"frames must be a real numeric array, got dtype {arr.dtype}.")
    b, c, t, h, w = arr.shape
    window, tr = int(module.window), int(module.time_radius)
    scale, r = int(module.scale), int(module.receptive_radius)
    if c != int(module.channels):
        raise ValueError(
            f"frames have {c} channel(s) but the model takes {module.channels}; stack one "
            "channel per model variable."
        )
    if t < window:
        raise ValueError(
            f"frames have {t} time step(s) but the model needs a window of {window}; give at "
            "least that many frames."
        )
    if min(h, w) < 1 or b < 1:
        raise ValueError(f"frames must not be empty, got shape {arr.shape}.")
    my, mx = _margin_pair(margin, h, w)
    stats = _normalisation_arrays(normalisation, card, c)
    t_out = t - 2 * tr
    n_samples = b * t_out if window == 1 else t_out
    hc, wc = h - 2 * my, w - 2 * mx
    cpu = dev.type == "cpu"
    budget = MEMORY_BUDGET_BYTES
    if dev.type == "cuda":  # GPUs hold more: a quarter of the free memory, at most 8 GiB
        budget = max(budget, min(torch.cuda.mem_get_info(dev)[0] // 4, 8 << 30))
    check_options(precision=precision)
    batch, (ty, tx) = _plan(module, n_samples, hc, wc, batch_size, tile, cpu=cpu, budget=budget)
    autocast = torch.autocast(
        device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"
    )

    def body(run_model: Callable[[Callable[[], None]], None]) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        mask = torch.isnan(x)
        has_nan = bool(mask.any())
        if stats is not None:
            mean = torch.as_tensor(stats[0], dtype=torch.float32).view(1, c, 1, 1, 1)
            std = torch.as_tensor(stats[1], dtype=torch.float32).view(1, c, 1, 1, 1)
            xn = (x - mean) / std
        else:
            mean = std = None
            xn = x.clone() if has_nan else x
        if has_nan:
            xn = xn.masked_fill(mask, 0.0)
        sh, sw = scale * hc, scale * wc
        out = torch.empty((b, t_out, c, sh, sw), dtype=torch.float32)
        if window == 1:
            # (B*T, C, H, W): 2-D models batch frames of every leading index together.
            groups = [xn.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)]
            targets = [out.view(b * t_out, c, sh, sw)]
        else:
            # (T_out, C, window, H, W) per leading index: a strided view (unfold), so windows are
            # copied one batch at a time, never for the whole movie.
            views = xn.unfold(2, window, 1).permute(0, 2, 1, 5, 3, 4)
            groups = [views[bi] for bi in range(b)]
            targets = [out[bi] for bi in range(b)]
        # channels-last suits oneDNN; cuDNN's float32 kernels were faster in the default layout
        if not cpu:
            fmt = torch.contiguous_format
        elif window == 1:
            fmt = torch.channels_last
        else:
            fmt = torch.channels_last_3d

        # tiles with a full halo go through forward_core where the model has it (xsrnet and
        # FSRCNN skip the halo's outputs; see SRModel.forward_core)
        core = getattr(module, "forward_core", None) if r > 0 else None

        def run_batches() -> None:
            with torch.inference_mode(), _full_float32(dev), autocast:
                for samples, target in zip(groups, targets):
                    for k0, k1 in _batch_bounds(samples.shape[0], batch):
                        sample = samples[k0:k1]
                        for y0 in range(my, h - my, ty):
                            y1 = min(h - my, y0 + ty)
                            ya, yb = max(0, y0 - r), min(h, y1 + r)
                            fy0, fy1 = scale * (y0 - my), scale * (y1 - my)
                            for x0 in range(mx, w - mx, tx):
                                x1 = min(w - mx, x0 + tx)
                                xa, xb = max(0, x0 - r), min(w, x1 + r)
                                fx0, fx1 = scale * (x0 - mx), scale * (x1 - mx)
                                inp = (
                                    sample[..., ya:yb, xa:xb].to(dev).contiguous(memory_format=fmt)
                                )
                                # halos are at most r: a full one on every side lets the
                                # model skip the halo's outputs
                                halo = min(y0 - ya, yb - y1, x0 - xa, xb - x1)
                                if core is not None and halo == r:
                                    y = _forward(core, inp, pair=batch > 1)
                                else:
                                    y = _forward(module, inp, pair=batch > 1)
                                    oy, ox = scale * (y0 - ya), scale * (x0 - xa)
                                    y = y[
                                        ...,
                                        oy : oy + scale * (y1 - y0),
                                        ox : ox + scale * (x1 - x0),
                                    ]
                                target[k0:k1, :, fy0:fy1, fx0:fx1] = y.to("cpu", torch.float32)

        run_model(run_batches)
        out = out.permute(0, 2, 1, 3, 4)  # (B, C, T_out, sH, sW)
        if std is not None:
            out.mul_(std).add_(mean)
        if conserve or has_nan:
            centre = x[:, :, tr : t - tr, my : h - my, mx : w - mx]
            cmask = mask[:, :, tr : t - tr, my : h - my, mx : w - mx]
            if conserve:
                from xsr.models.consistency import conserve as _conserve

                low = centre
                if has_nan:
                    fill = mean if mean is not None else torch.zeros((1, c, 1, 1, 1))
                    low = torch.where(cmask, fill.expand_as(centre), centre)
                flat = (b * c, t_out)
                res = _conserve(
                    out.reshape(*flat, sh, sw),
                    low.reshape(*flat, hc, wc),
                    scale,
                )
                out = res.reshape(out.shape)
            if has_nan:
                fine = cmask.repeat_interleave(scale, dim=3).repeat_interleave(scale, dim=4)
                out = out.masked_fill(fine, float("nan"))
        return out.numpy().astype(out_dtype, copy=False)

    if cpu:  # all of it on the model thread (see _serialised)
        return _serialised(lambda: body(lambda run: run()), cpu=True)
    return body(lambda run: _serialised(run, cpu=False))

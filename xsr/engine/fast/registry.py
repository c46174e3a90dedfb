"""The fast-form registry and the base class of fast forms.

A fast form is an inference-only module built from the engine's private, prepared copy of a model:
the same layers and weights, run faster (fused layers, "valid" convolutions on tiles with a
halo, layouts that spare copies, bfloat16 guards), with outputs equal to the model's own forward
to float32 rounding. ``FAST_FORMS`` maps an architecture name (the model's ``arch``) to the
function that builds it; an architecture without an entry runs its own forward.

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from xsr.engine.fast.layers import crop_border, swap_prelus
from xsr.models.consistency import conserve as _conserve
from xsr.models.registry import MODELS

__all__ = ["FAST_FORMS", "FastForm", "prepare", "register"]

#: Architecture name -> builder of its fast form from the engine's prepared copy.
FAST_FORMS: dict[str, Callable[[Any], FastForm]] = {}


def register(arch: str) -> Callable[[Callable[[Any], FastForm]], Callable[[Any], FastForm]]:
    """Register the fast form of architecture ``arch`` (a decorator of its builder).

    Parameters
    ----------
    arch : str
        The architecture's registry name.

    Returns
    -------
    callable
        The decorator; it returns the builder unchanged.

    Examples
    --------
    >>> @register("doc-example")
    ... def _build(model):
    ...     return FastForm(model)
    >>> "doc-example" in FAST_FORMS
    True
    >>> del FAST_FORMS["doc-example"]
    """

    def decorator(builder: Callable[[Any], FastForm]) -> Callable[[Any], FastForm]:
        FAST_FORMS[arch] = builder
        return builder

    return decorator


class FastForm(nn.Module):
    """The fast inference form of one model; subclasses override :meth:`run` and :meth:`core`.

    Holds the model (the engine's copy) and its contract numbers. :meth:`forward` checks the
    input as the model does, calls :meth:`run` and applies the model's consistency layer
    (``conserve=True``); :meth:`forward_core` returns the output of a tile's core (the input
    carries ``receptive_radius`` cells of halo on each side), through :meth:`core`.

    Parameters
    ----------
    model : xsr.models.base.SRModel
        The engine's prepared copy (never the caller's module).

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> fast = FastForm(get_model("bicubic", scale=2).eval())
    >>> fast.forward_core(torch.zeros(1, 1, 8, 8)).shape  # radius 2
    torch.Size([1, 1, 8, 8])
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.arch = str(getattr(model, "arch", type(model).__name__))
        self.config = dict(getattr(model, "config", {}))
        self.scale = int(model.scale)
        self.window = int(model.window)
        self.time_radius = int(model.time_radius)
        self.receptive_radius = int(model.receptive_radius)
        self.channels = int(model.channels)
        self.conserve = bool(getattr(model, "conserve", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for ``x``, computed the fast way."""
        check = getattr(self.model, "check_input", None)
        if check is not None:
            check(x)
        y = self.run(x)
        if self.conserve:
            y = _conserve(y, self.model.centre_frame(x), self.scale)
        return y

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The forward without checks or consistency layer (override; default the model's)."""
        inner = getattr(self.model, "_forward", None)
        return inner(x) if inner is not None else self.model(x)

    def forward_core(self, x: torch.Tensor) -> torch.Tensor:
        """The output for the core of ``x``, whose spatial sides carry a halo of radius ``r``.

        Equal to ``self(x)`` cropped by ``scale * r`` fine cells on each side, to float32
        rounding; :meth:`core` may skip computing the halo's outputs.

        Parameters
        ----------
        x : torch.Tensor
            A valid model input with ``H, W > 2 * receptive_radius``.

        Returns
        -------
        torch.Tensor
            ``(N, C, scale*(H - 2r), scale*(W - 2r))``.

        Raises
        ------
        ValueError
            For frames no larger than twice the receptive radius.
        """
        r, s = self.receptive_radius, self.scale
        if min(x.shape[-2:]) <= 2 * r:
            raise ValueError(
                f"forward_core needs frames larger than twice the receptive radius ({r}), got "
                f"{tuple(x.shape[-2:])}; call the model itself on smaller frames."
            )
        if self.conserve:  # the projection needs the whole output
            return crop_border(self(x), s * r)
        check = getattr(self.model, "check_input", None)
        if check is not None:
            check(x)
        return self.core(x)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """The core's output without checks (override; default the cropped :meth:`run`)."""
        return crop_border(self.run(x), self.scale * self.receptive_radius)


def prepare(module: nn.Module) -> nn.Module:
    """Prepare the engine's private copy of a model for inference, and return its fast form.

    Eval mode, no gradients, convolution weights channels-last on CPUs (oneDNN's fast kernels),
    PReLUs with the bfloat16 detour (:class:`~xsr.engine.fast.layers.DetourPReLU`), then the
    architecture's fast form from :data:`FAST_FORMS` when there is one; otherwise the module
    itself, which runs its own forward. ``module`` must be the engine's own copy: it is
    changed in place.

    Parameters
    ----------
    module : torch.nn.Module
        A copy of a model obeying the xsr model contract.

    Returns
    -------
    torch.nn.Module
        The module to run: a :class:`FastForm` or ``module``.

    Examples
    --------
    >>> import copy
    >>> from xsr.models import get_model
    >>> model = get_model("fsrcnn", scale=2)
    >>> type(prepare(copy.deepcopy(model))).__name__
    'FastFSRCNN'
    >>> type(prepare(copy.deepcopy(get_model("bicubic", scale=2)))).__name__
    'Bicubic'
    """
    if isinstance(module, FastForm):  # a prepared copy (e.g. moved to another device)
        module = module.model
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
        if p.device.type != "cpu":
            continue
        if p.ndim == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.ndim == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    swap_prelus(module)
    arch = str(getattr(module, "arch", ""))
    builder = FAST_FORMS.get(arch)
    if type(module) is not MODELS.get(arch):  # a fast form is for its registered class only
        builder = None
    with torch.no_grad():
        return builder(module) if builder is not None else module

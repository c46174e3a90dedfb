"""Layer-level rewrites shared by the fast forms (all equal to the plain layers).

* :class:`DetourPReLU`: under CPU bfloat16 autocast, a PReLU on few channels runs in float32.
* :func:`one_channel_float32`: under CPU autocast, a convolution of one input channel runs in
  float32.
* :func:`like_weight_layout`: a one-channel input viewed channels-last, so a convolution with
  channels-last weights writes a channels-last output.
* :func:`crop_border`: the core of a tile.

This module imports torch only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BF16_PRELU_MIN_CHANNELS",
    "DetourPReLU",
    "cpu_autocast",
    "crop_border",
    "like_weight_layout",
    "one_channel_float32",
    "swap_prelus",
]


def crop_border(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` without ``n`` cells on each side of its last two axes (a view; ``n=0`` keeps all).

    Parameters
    ----------
    t : torch.Tensor
        ``(..., H, W)``.
    n : int
        Cells removed on each side.

    Returns
    -------
    torch.Tensor
        ``(..., H - 2n, W - 2n)``.

    Examples
    --------
    >>> import torch
    >>> crop_border(torch.zeros(1, 6, 5), 1).shape
    torch.Size([1, 4, 3])
    """
    return t[..., n : t.shape[-2] - n, n : t.shape[-1] - n]


def cpu_autocast() -> bool:
    """Whether CPU autocast is on (the engine's ``precision="bfloat16"``).

    Returns
    -------
    bool
        ``torch.is_autocast_enabled("cpu")``.

    Examples
    --------
    >>> import torch
    >>> cpu_autocast()
    False
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     cpu_autocast()
    True
    """
    try:
        return bool(torch.is_autocast_enabled("cpu"))
    except TypeError:  # pragma: no cover - torch < 2.4
        return bool(torch.is_autocast_cpu_enabled())


#: Under CPU autocast, a PReLU whose input has fewer channels than this runs in float32: torch's
#: bfloat16 PReLU kernel is not vectorised for so few channels-last channels (the measurements
#: are in docs/benchmarks.md).
BF16_PRELU_MIN_CHANNELS = 16


class DetourPReLU(nn.PReLU):
    """:class:`torch.nn.PReLU` that runs in float32 on few channels under CPU bfloat16 autocast.

    Same parameters and state dict as ``nn.PReLU``. Under CPU autocast, a bfloat16 input with
    fewer than :data:`BF16_PRELU_MIN_CHANNELS` channels is computed in float32 (the result is
    float32; the next convolution casts it back). Any other input, a bfloat16 model run without
    autocast included, runs as in ``nn.PReLU``. :func:`swap_prelus` turns the PReLUs of the
    engine's model copies into these.

    Examples
    --------
    >>> import torch
    >>> act = DetourPReLU(8, init=0.25)
    >>> x = torch.randn(1, 8, 4, 4).bfloat16()
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     y = act(x)
    >>> y.dtype
    torch.float32
    >>> bool(torch.equal(y, torch.nn.functional.prelu(x.float(), act.weight)))
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the PReLU (see the class notes for bfloat16 inputs)."""
        if (
            x.dtype == torch.bfloat16
            and x.device.type == "cpu"
            and x.ndim > 1
            and x.shape[1] < BF16_PRELU_MIN_CHANNELS
            and cpu_autocast()  # a bfloat16 model without autocast keeps bfloat16 throughout
        ):
            with torch.autocast("cpu", enabled=False):
                return F.prelu(x.float(), self.weight.float())
        return super().forward(x)


def swap_prelus(module: nn.Module) -> nn.Module:
    """Turn every plain :class:`torch.nn.PReLU` inside ``module`` into a :class:`DetourPReLU`.

    In place (the class of each layer changes; parameters and state dict stay). The engine does
    this to its own copies only.

    Parameters
    ----------
    module : torch.nn.Module
        The engine's copy of a model.

    Returns
    -------
    torch.nn.Module
        ``module``.

    Examples
    --------
    >>> from torch import nn
    >>> type(swap_prelus(nn.Sequential(nn.PReLU()))[0]).__name__
    'DetourPReLU'
    """
    for layer in module.modules():
        if type(layer) is nn.PReLU:
            layer.__class__ = DetourPReLU
    return module


def one_channel_float32(
    conv: nn.Module, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn(x)``, in float32 with autocast off where ``conv`` has one input channel on a CPU.

    With one input channel, oneDNN's bfloat16 convolution is far slower than its float32 one
    (docs/benchmarks.md), and such a layer is a small share of a network's FLOPs, so under
    ``precision="bfloat16"`` (CPU autocast) it runs in float32 and returns float32. Elsewhere
    (no autocast, GPUs, several channels) this is just ``fn(x)``.

    Parameters
    ----------
    conv : torch.nn.Module
        The convolution ``fn`` applies.
    x : torch.Tensor
        Its input.
    fn : callable
        Applies the convolution to a tensor.

    Returns
    -------
    torch.Tensor
        ``fn(x)``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> conv, x = nn.Conv2d(1, 4, 3), torch.randn(1, 1, 6, 6)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     one_channel_float32(conv, x, conv).dtype, conv(x).dtype
    (torch.float32, torch.bfloat16)
    """
    if getattr(conv, "in_channels", None) == 1 and x.device.type == "cpu" and cpu_autocast():
        with torch.autocast("cpu", enabled=False):
            return fn(x.float())
    return fn(x)


def like_weight_layout(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` viewed channels-last where it has one channel and ``weight`` is channels-last.

    With a single channel the two layouts are the same memory, and torch takes such a tensor
    for a plain (NCHW/NCDHW) one, so a convolution with channels-last weights then returns a
    plain output that the next channels-last layer has to copy. The view costs nothing; every
    other tensor is returned unchanged.

    Parameters
    ----------
    x : torch.Tensor
        A 4-D or 5-D convolution input.
    weight : torch.Tensor
        A weight of the same rank whose layout decides (one with more than one input channel
        and a kernel wider than 1, so that its layout is unambiguous).

    Returns
    -------
    torch.Tensor
        ``x``, or the same memory with channels-last strides.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(4, 2, 3, 3).contiguous(memory_format=torch.channels_last)
    >>> x = like_weight_layout(torch.zeros(1, 1, 5, 6), w)
    >>> x.stride()
    (30, 1, 6, 1)
    >>> x.is_contiguous(memory_format=torch.channels_last)
    True
    """
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.ndim)
    if (
        fmt is None
        or x.shape[1] != 1
        or not x.is_contiguous()
        or weight.ndim != x.ndim
        or weight.is_contiguous()
        or not weight.is_contiguous(memory_format=fmt)
    ):
        return x
    return x.as_strided(x.shape, (x.stride(0), 1, *x.stride()[2:]))

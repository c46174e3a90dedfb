"""xsrnet's fast form: a channels-last first layer, and "valid" convolutions on tiles.

On a tile with a full halo every convolution runs without padding, so each layer computes only
the cells the next one needs (the halo's outputs are never computed), and the residual skips are
added into the convolutions' fresh outputs (one tensor fewer per block).

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from xsr.engine.fast.layers import crop_border, like_weight_layout
from xsr.engine.fast.registry import FastForm, register
from xsr.models.base import conv_radius
from xsr.models.linear import PhaseFilter
from xsr.models.xsrnet import XSRNet

__all__ = ["FastXSRNet"]


class FastXSRNet(FastForm):
    """xsrnet as the engine runs it (see the module notes).

    Parameters
    ----------
    model : xsr.models.xsrnet.XSRNet
        The engine's prepared copy.

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> model = get_model("xsrnet", scale=2, window=3).eval()
    >>> fast, x = FastXSRNet(model), torch.randn(1, 1, 3, 20, 21)
    >>> r = model.receptive_radius
    >>> with torch.no_grad():
    ...     full = model(x)[..., 2 * r : -2 * r, 2 * r : -2 * r]
    ...     bool(torch.allclose(fast.forward_core(x), full, atol=1e-5))
    True
    """

    def _stack(self, x: torch.Tensor) -> torch.Tensor:
        """Early fusion: the window's frames become channels."""
        if self.window > 1:
            n, c, t, h, w = x.shape
            return x.reshape(n, c * t, h, w)
        return x

    def run(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        features = m.body(m.head(like_weight_layout(self._stack(x), m.tail.weight)))
        return m.shuffle(m.tail(features)) + m.base(m.centre_frame(x))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """Every convolution "valid"; the core equals the padded forward's, cropped."""
        m, r = self.model, self.receptive_radius
        conv, act = m.head
        y = act(F.conv2d(like_weight_layout(self._stack(x), m.tail.weight), conv.weight, conv.bias))
        for block in m.body:
            inner = block.act(F.conv2d(y, block.conv1.weight, block.conv1.bias))
            # the skip is added into the convolution's fresh output (bit-equal to x + conv(x))
            y = F.conv2d(inner, block.conv2.weight, block.conv2.bias).add_(crop_border(y, 2))
        y = F.conv2d(y, m.tail.weight, m.tail.bias)
        y = crop_border(y, r - conv_radius([m.head, m.body, m.tail]))  # a wider base
        centre = m.centre_frame(x)
        if isinstance(m.base, PhaseFilter):
            # the filter's phases are laid out as the tail's channels: add them before the one
            # pixel shuffle (out of place: under bfloat16 autocast the detail is bfloat16)
            phases = m.base.phases(crop_border(centre, r - m.base.radius))
            return m.shuffle(phases + y)
        return m.shuffle(y) + crop_border(m.base(centre), self.scale * r)


@register("xsrnet")
def fast_xsrnet(model: XSRNet) -> FastXSRNet:
    """The fast form of an xsrnet (see :class:`FastXSRNet`).

    Parameters
    ----------
    model : xsr.models.xsrnet.XSRNet
        The engine's prepared copy.

    Returns
    -------
    FastXSRNet

    Examples
    --------
    >>> from xsr.models import get_model
    >>> fast_xsrnet(get_model("xsrnet", scale=2).eval()).receptive_radius
    8
    """
    return FastXSRNet(model)

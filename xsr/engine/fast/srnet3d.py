"""The report's 3D network's fast form: channels-last first layer, "valid" spatial convolutions.

On a tile with a full halo every spatial convolution runs without padding (time keeps its
padding), and the margin padding before the collapsing layers is not needed: the halo provides
those cells. Under CPU bfloat16 autocast the first convolution, on one channel, runs in float32.

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xsr.engine.fast.layers import crop_border, like_weight_layout, one_channel_float32
from xsr.engine.fast.registry import FastForm, register
from xsr.models.base import conv_radius
from xsr.models.srnet3d import SRNet3D

__all__ = ["FastSRNet3D"]


class FastSRNet3D(FastForm):
    """The 3D network as the engine runs it (see the module notes).

    Parameters
    ----------
    model : xsr.models.srnet3d.SRNet3D
        The engine's prepared copy.

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> model = get_model("srnet3d", scale=2).eval()
    >>> fast, x = FastSRNet3D(model), torch.randn(1, 1, 5, 20, 19)
    >>> r = model.receptive_radius
    >>> with torch.no_grad():
    ...     full = model(x)[..., 2 * r : -2 * r, 2 * r : -2 * r]
    ...     bool(torch.allclose(fast.forward_core(x), full, atol=1e-5))
    True
    """

    def run(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        up = m.upsample(x)  # (N, C, T, sH, sW)
        g = m.margin
        if m.pad_mode == "zeros":
            padded = F.pad(up, (g, g, g, g))
        else:
            n, c, t, h, w = up.shape
            padded = F.pad(up.reshape(n, c * t, h, w), (g, g, g, g), mode=m.pad_mode)
            padded = padded.reshape(n, c, t, h + 2 * g, w + 2 * g)
        padded = like_weight_layout(padded, m.collapse[0].weight)
        y = m.collapse(m.extract(padded))  # (N, F, 1, sH, sW)
        y = m.reconstruct(y[:, :, 0])
        return y + up[:, :, m.time_radius] if m.residual else y

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial convolutions "valid"; the core equals the padded forward's, cropped."""
        m, r, s = self.model, self.receptive_radius, self.scale
        up = m.upsample(x)  # (N, C, T, sH, sW); its own edge lies inside the halo
        y = like_weight_layout(up, m.collapse[0].weight)
        for layer in m.extract:
            if isinstance(layer, nn.Conv3d):
                pad = (layer.padding[0], 0, 0)
                y = one_channel_float32(  # bfloat16 is slow on one channel
                    layer, y, lambda t, c=layer, p=pad: F.conv3d(t, c.weight, c.bias, padding=p)
                )
            else:
                y = layer(y)
        y = m.collapse(y)  # valid already
        conv = m.reconstruct[0]
        y = m.reconstruct[1:](F.conv2d(y[:, :, 0], conv.weight, conv.bias))
        # the valid layers took conv_radius fine cells from each side; the core is s*r in
        y = crop_border(y, s * r - conv_radius([m.extract, m.collapse, m.reconstruct]))
        if m.residual:
            y = y + crop_border(up[:, :, m.time_radius], s * r)
        return y


@register("srnet3d")
def fast_srnet3d(model: SRNet3D) -> FastSRNet3D:
    """The fast form of the report's 3D network (see :class:`FastSRNet3D`).

    Parameters
    ----------
    model : xsr.models.srnet3d.SRNet3D
        The engine's prepared copy.

    Returns
    -------
    FastSRNet3D

    Examples
    --------
    >>> from xsr.models import get_model
    >>> fast_srnet3d(get_model("srnet3d", scale=2).eval()).window
    5
    """
    return FastSRNet3D(model)

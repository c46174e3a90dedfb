"""The report's 3D network ("3D SRnet", section 3), layer by layer.

Input: a window of 5 low-resolution frames ``(N, C, 5, H, W)``, upsampled inside the model with
bicubic interpolation (frame by frame) to ``scale*H x scale*W``, then (kernels written
``time x y x x``):

=====  ==========  ========  =========  =========================================
layer  kernel      filters   padding    role
=====  ==========  ========  =========  =========================================
1      3 x 5 x 5   32        same       feature extraction
2      3 x 1 x 1   8         same       shrinking
3      3 x 3 x 3   8         same       non-linear mapping
4      3 x 3 x 3   8         same       non-linear mapping
5      3 x 3 x 3   32        same       expanding
6      3 x 3 x 3   32        valid      5 frames -> 3, H, W -> H-2, W-2
7      3 x 3 x 3   32        valid      3 frames -> 1, H, W -> H-4, W-4
8      5 x 5 (2D)  channels  same       reconstruction of the single frame
=====  ==========  ========  =========  =========================================

with a PReLU (slopes initialised at 0) after each hidden layer. The two valid layers shrink the
frame by 2 pixels on each side; xsr pads the upsampled window by that margin first
(``pad_mode``, replicate by default) so that the output covers the whole frame. The window
length is derived from the valid layers (``1 + sum(kt - 1)`` = 5). With ``scale=1`` there is no
interpolation: the network is the high-resolution refiner of the report's two-stage method
("2D then 3D") and the low-resolution 3D stage of "3D then 2D".

The output layer is linear by default and ``residual=False`` as in the report (see
:mod:`xsr.models.srcnn`); ``residual=True`` adds the bicubic upsample of the centre frame.

Receptive radius: the bicubic interpolation's plus every spatial kernel (fine pixels, converted
to coarse ones); about 358 kFLOP per output pixel at any scale
(:meth:`~xsr.models.base.SRModel.flops_per_output_pixel`). The engine runs it with "valid"
spatial convolutions on tiles (:mod:`xsr.engine.fast.srnet3d`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xsr.models.base import (
    RESIDUAL_OUTPUT_GAIN,
    BicubicUpsample,
    SRModel,
    conv_radius,
    hr_to_lr_radius,
    init_conv,
)
from xsr.models.srcnn import output_activation_layer

__all__ = ["SRNet3D"]

_PAD_MODES = ("replicate", "zeros")


class SRNet3D(SRModel):
    """The report's 3D super-resolution network on a 5-frame window.

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor (``1`` makes it a high-resolution refiner).
    channels : int, default 1
        Number of variables (in = out).
    features : int, default 32
        Filters of layers 1 and 5-7.
    shrink : int, default 8
        Filters of layers 2-4.
    prelu_init : float, default 0.0
        Initial PReLU slope.
    pad_mode : {"replicate", "zeros"}, default "replicate"
        How the window is padded by the margin the valid layers remove.
    residual : bool, default False
        Add the bicubic upsample of the centre frame to the output.
    output_activation : {None, "prelu"}, default None
        Activation of the last layer.
    conserve : bool, default False
        Project the output so that its block means equal the centre input frame.

    Examples
    --------
    >>> import torch
    >>> SRNet3D(scale=2)(torch.zeros(1, 1, 5, 4, 6)).shape
    torch.Size([1, 1, 8, 12])
    """

    arch: ClassVar[str] = "srnet3d"

    def __init__(
        self,
        *,
        scale: int = 2,
        channels: int = 1,
        features: int = 32,
        shrink: int = 8,
        prelu_init: float = 0.0,
        pad_mode: str = "replicate",
        residual: bool = False,
        output_activation: str | None = None,
        conserve: bool = False,
    ) -> None:
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"srnet3d: pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}.")
        f, s, c = int(features), int(shrink), int(channels)
        same = [  # (in, out, kernel (t, y, x))
            (c, f, (3, 5, 5)),
            (f, s, (3, 1, 1)),
            (s, s, (3, 3, 3)),
            (s, s, (3, 3, 3)),
            (s, f, (3, 3, 3)),
        ]
        valid = [(f, f, (3, 3, 3)), (f, f, (3, 3, 3))]
        window = 1 + sum(k[0] - 1 for _, _, k in valid)
        super().__init__(scale=scale, channels=channels, window=window, conserve=conserve)
        if min(f, s) < 1:
            raise ValueError(f"srnet3d: features and shrink must be >= 1, got {f}, {s}.")
        self.upsample = BicubicUpsample(self.scale)
        layers: list[nn.Module] = []
        for cin, cout, k in same:
            conv = nn.Conv3d(cin, cout, k, padding=tuple(n // 2 for n in k))
            init_conv(conv, prelu=prelu_init)
            layers += [conv, nn.PReLU(cout, init=prelu_init)]
        self.extract = nn.Sequential(*layers)
        layers = []
        for cin, cout, k in valid:
            conv = nn.Conv3d(cin, cout, k, padding=0)
            init_conv(conv, prelu=prelu_init)
            layers += [conv, nn.PReLU(cout, init=prelu_init)]
        self.collapse = nn.Sequential(*layers)
        self.margin = sum(k[-1] // 2 for _, _, k in valid)
        self.reconstruct = nn.Sequential(
            nn.Conv2d(f, c, 5, padding=2),
            output_activation_layer(output_activation, c, prelu_init, self.arch),
        )
        init_conv(self.reconstruct[0], prelu=None, gain=RESIDUAL_OUTPUT_GAIN if residual else 1.0)
        self.pad_mode = pad_mode
        self.residual = bool(residual)
        self.config = {
            "scale": self.scale,
            "channels": c,
            "features": f,
            "shrink": s,
            "prelu_init": float(prelu_init),
            "pad_mode": pad_mode,
            "residual": self.residual,
            "output_activation": output_activation,
            "conserve": conserve,
        }

    @property
    def receptive_radius(self) -> int:
        """Bicubic radius plus all spatial kernels (fine pixels, converted with ceil)."""
        hr = conv_radius([self.extract, self.collapse, self.reconstruct])
        return self.upsample.radius + hr_to_lr_radius(hr, self.scale)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)  # (N, C, T, sH, sW)
        m = self.margin
        if self.pad_mode == "zeros":
            padded = F.pad(up, (m, m, m, m))
        else:
            n, c, t, h, w = up.shape
            padded = F.pad(up.reshape(n, c * t, h, w), (m, m, m, m), mode=self.pad_mode)
            padded = padded.reshape(n, c, t, h + 2 * m, w + 2 * m)
        y = self.collapse(self.extract(padded))  # (N, F, 1, sH, sW)
        y = self.reconstruct(y[:, :, 0])
        return y + up[:, :, self.time_radius] if self.residual else y

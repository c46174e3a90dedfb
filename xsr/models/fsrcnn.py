"""FSRCNN: feature extraction at low resolution, then a transposed convolution upsamples.

Two forms, chosen by ``variant``:

``"original"`` (Dong, Loy & Tang 2016)
    conv 5x5 (d=56) - conv 1x1 (s=12) - m=4 x conv 3x3 (s) - conv 1x1 (d) - 9x9 transposed
    convolution with stride ``scale`` to ``channels`` outputs.
``"small"`` (FSRCNN-s, the form the report describes as its starting point)
    conv 5x5 (32) - conv 1x1 (5) - conv 3x3 (5) - conv 1x1 (32) - 9x9 transposed convolution
    with stride ``scale``; the same layer layout as ``"original"``.
``"report"`` (the report's variant, section 2)
    conv 5x5 (32) - conv 1x1 (8) - conv 3x3 (8) - conv 1x1 (32) - transposed convolution with
    32 filters whose kernel and stride are ``scale`` (2x2 at x2) - conv 5x5 to ``channels``.

Every hidden layer is followed by a PReLU whose slope starts at ``prelu_init`` (0, as in the
report). As for SRCNN the output layer is linear by default (``output_activation="prelu"`` gives
the report's exact form) and ``residual=False`` is the report's direct prediction.

The receptive field is the features' convolutions, then the transposed convolution's reach, then
the fine convolutions converted to coarse pixels (:attr:`FSRCNN.receptive_radius`); the cost is
:meth:`~xsr.models.base.SRModel.flops_per_output_pixel` (4.6 kFLOP per output pixel for the
report variant at x2, one variable). The engine runs the report variant's fine-resolution tail
at low resolution (:mod:`xsr.engine.fast.fsrcnn`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from xsr.models.base import (
    RESIDUAL_OUTPUT_GAIN,
    BicubicUpsample,
    SRModel,
    conv_radius,
    hr_to_lr_radius,
    init_conv,
    transposed_conv_radius,
)
from xsr.models.srcnn import output_activation_layer

__all__ = ["FSRCNN", "VARIANTS"]

#: Default hyper-parameters of the two forms: (d, s, m, deconvolution kernel or None for scale).
VARIANTS: dict[str, dict[str, int | None]] = {
    "original": {"d": 56, "s": 12, "m": 4, "deconv_kernel": 9},
    "small": {"d": 32, "s": 5, "m": 1, "deconv_kernel": 9},
    "report": {"d": 32, "s": 8, "m": 1, "deconv_kernel": None},
}


def _deconv_padding(kernel: int, scale: int) -> tuple[int, int]:
    """Padding and output padding so that a transposed conv maps ``H`` to exactly ``scale*H``."""
    if kernel >= scale:
        padding = -(-(kernel - scale) // 2)
        return padding, 2 * padding - (kernel - scale)
    return 0, scale - kernel  # pragma: no cover - refused before (kernel < scale leaves holes)


class FSRCNN(SRModel):
    """FSRCNN in its original form or in the report's variant.

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor; at most the transposed convolution's kernel size.
    channels : int, default 1
        Number of variables (in = out).
    variant : {"report", "original", "small"}, default "report"
        Which form (see the module notes).
    d, s, m : int, optional
        Feature, shrinking and mapping sizes; default to the variant's (56, 12, 4 original;
        32, 5, 1 small; 32, 8, 1 report).
    deconv_kernel : int, optional
        Kernel of the transposed convolution; defaults to 9 (original) or ``scale`` (report).
    prelu_init : float, default 0.0
        Initial PReLU slope.
    residual : bool, default False
        Add the bicubic upsample of the input to the output.
    output_activation : {None, "prelu"}, default None
        Activation of the last layer.
    conserve : bool, default False
        Project the output so that its block means equal the input.

    Examples
    --------
    >>> import torch
    >>> FSRCNN(scale=2, variant="original")(torch.zeros(1, 1, 6, 5)).shape
    torch.Size([1, 1, 12, 10])
    """

    arch: ClassVar[str] = "fsrcnn"

    def __init__(
        self,
        *,
        scale: int = 2,
        channels: int = 1,
        variant: str = "report",
        d: int | None = None,
        s: int | None = None,
        m: int | None = None,
        deconv_kernel: int | None = None,
        prelu_init: float = 0.0,
        residual: bool = False,
        output_activation: str | None = None,
        conserve: bool = False,
    ) -> None:
        super().__init__(scale=scale, channels=channels, window=1, conserve=conserve)
        if variant not in VARIANTS:
            raise ValueError(f"fsrcnn: variant must be one of {sorted(VARIANTS)}, got {variant!r}.")
        defaults = VARIANTS[variant]
        d = int(defaults["d"] if d is None else d)
        s = int(defaults["s"] if s is None else s)
        m = int(defaults["m"] if m is None else m)
        if deconv_kernel is None:
            deconv_kernel = defaults["deconv_kernel"] or self.scale
        deconv_kernel = int(deconv_kernel)
        if min(d, s) < 1 or m < 0:
            raise ValueError(f"fsrcnn: need d, s >= 1 and m >= 0, got d={d}, s={s}, m={m}.")
        if deconv_kernel < self.scale:
            raise ValueError(
                f"fsrcnn: scale={self.scale} is larger than the transposed convolution's kernel "
                f"({deconv_kernel}), which would leave holes in the output; use scale <= "
                f"{deconv_kernel} or pass deconv_kernel >= {self.scale}."
            )
        if self.scale == 1 and deconv_kernel % 2 == 0:
            raise ValueError(
                f"fsrcnn: at scale=1 the transposed convolution needs an odd kernel to keep the "
                f"frame size, got deconv_kernel={deconv_kernel}; use an odd deconv_kernel."
            )
        c = self.channels
        layers: list[nn.Module] = [nn.Conv2d(c, d, 5, padding=2), nn.PReLU(d, init=prelu_init)]
        layers += [nn.Conv2d(d, s, 1), nn.PReLU(s, init=prelu_init)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s, init=prelu_init)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d, init=prelu_init)]
        self.features = nn.Sequential(*layers)
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                init_conv(layer, prelu=prelu_init)
        padding, output_padding = _deconv_padding(deconv_kernel, self.scale)
        self._deconv_geometry = (deconv_kernel, padding)
        out_gain = RESIDUAL_OUTPUT_GAIN if residual else 1.0
        out_act = output_activation_layer(output_activation, c, prelu_init, self.arch)
        if variant != "report":
            self.upsample = nn.ConvTranspose2d(
                d, c, deconv_kernel, stride=self.scale, padding=padding,
                output_padding=output_padding,
            )  # fmt: skip
            init_conv(self.upsample, prelu=None, gain=out_gain)
            self.reconstruct = nn.Sequential(out_act)
        else:
            self.upsample = nn.ConvTranspose2d(
                d, d, deconv_kernel, stride=self.scale, padding=padding,
                output_padding=output_padding,
            )  # fmt: skip
            init_conv(self.upsample, prelu=prelu_init)
            self.reconstruct = nn.Sequential(
                nn.PReLU(d, init=prelu_init), nn.Conv2d(d, c, 5, padding=2), out_act
            )
            init_conv(self.reconstruct[1], prelu=None, gain=out_gain)
        self.residual = bool(residual)
        self.bicubic = BicubicUpsample(self.scale) if self.residual else None
        self.variant = variant
        self.config = {
            "scale": self.scale,
            "channels": c,
            "variant": variant,
            "d": d,
            "s": s,
            "m": m,
            "deconv_kernel": deconv_kernel,
            "prelu_init": float(prelu_init),
            "residual": self.residual,
            "output_activation": output_activation,
            "conserve": conserve,
        }

    @property
    def receptive_radius(self) -> int:
        """Low-resolution convolutions, the transposed convolution, then fine convolutions."""
        kernel, padding = self._deconv_geometry
        radius = conv_radius(self.features)
        radius += transposed_conv_radius(kernel, self.scale, padding)
        radius += hr_to_lr_radius(conv_radius(self.reconstruct), self.scale)
        if self.bicubic is not None:
            radius = max(radius, self.bicubic.radius)
        return radius

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reconstruct(self.upsample(self.features(x)))
        if self.bicubic is not None:
            y = y + self.bicubic(x)
        return y

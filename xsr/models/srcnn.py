"""SRCNN as the report builds it: bicubic pre-upsampling, then 9x9x64, 1x1x32, 5x5 convolutions.

Dong et al. (2014) with the report's changes (section 2): PReLU activations instead of ReLU
(slopes initialised at ``prelu_init``, 0 as Keras does), the bicubic upsampling moved inside the
model so that it takes the low-resolution field like every xsr model.

Two choices differ from the report and are configurable: the output layer is linear by default
(``output_activation=None``; the report put a PReLU there too, harmless on its data scaled to
``(0, 1)`` but not on xsr's zero-mean normalised fields — pass ``output_activation="prelu"`` for
the exact report form) and ``residual=False`` keeps the report's direct prediction
(``residual=True`` adds the bicubic upsample to the output).

Receptive radius: the bicubic interpolation's plus the convolutions' (fine pixels, converted to
coarse ones); about 16.1 kFLOP per output pixel
(:meth:`~xsr.models.base.SRModel.flops_per_output_pixel`).
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
)

__all__ = ["SRCNN", "output_activation_layer"]


def output_activation_layer(kind: str | None, channels: int, prelu_init: float, arch: str):
    """The optional activation after the last layer (``None`` or ``"prelu"``).

    Parameters
    ----------
    kind : {None, "prelu"}
        Activation kind.
    channels : int
        Number of output channels.
    prelu_init : float
        Initial PReLU slope.
    arch : str
        Architecture name for the error message.

    Returns
    -------
    torch.nn.Module
        ``nn.Identity()`` or ``nn.PReLU``.

    Examples
    --------
    >>> output_activation_layer(None, 1, 0.0, "srcnn")
    Identity()
    """
    if kind is None:
        return nn.Identity()
    if kind == "prelu":
        return nn.PReLU(channels, init=prelu_init)
    raise ValueError(f"{arch}: output_activation must be None or 'prelu', got {kind!r}.")


class SRCNN(SRModel):
    """The report's SRCNN: bicubic upsampling, conv 9x9 (64), conv 1x1 (32), conv 5x5 (channels).

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor (any integer >= 1).
    channels : int, default 1
        Number of variables (in = out).
    features : tuple of int, default (64, 32)
        Filters of the first two layers.
    kernels : tuple of int, default (9, 1, 5)
        Kernel sizes of the three layers.
    prelu_init : float, default 0.0
        Initial PReLU slope.
    residual : bool, default False
        Add the bicubic upsample to the output (the report does not).
    output_activation : {None, "prelu"}, default None
        Activation of the last layer (the report used PReLU; see the module notes).
    conserve : bool, default False
        Project the output so that its block means equal the input.

    Examples
    --------
    >>> import torch
    >>> SRCNN(scale=3)(torch.zeros(2, 1, 5, 7)).shape
    torch.Size([2, 1, 15, 21])
    """

    arch: ClassVar[str] = "srcnn"

    def __init__(
        self,
        *,
        scale: int = 2,
        channels: int = 1,
        features: tuple[int, int] | list[int] = (64, 32),
        kernels: tuple[int, int, int] | list[int] = (9, 1, 5),
        prelu_init: float = 0.0,
        residual: bool = False,
        output_activation: str | None = None,
        conserve: bool = False,
    ) -> None:
        super().__init__(scale=scale, channels=channels, window=1, conserve=conserve)
        features, kernels = list(features), list(kernels)
        if len(features) != 2 or len(kernels) != 3 or any(k % 2 != 1 for k in kernels):
            raise ValueError(
                "srcnn: features must have 2 entries and kernels 3 odd sizes, got "
                f"features={features}, kernels={kernels}."
            )
        f1, f2 = features
        k1, k2, k3 = kernels
        self.upsample = BicubicUpsample(self.scale)
        self.body = nn.Sequential(
            nn.Conv2d(self.channels, f1, k1, padding=k1 // 2),
            nn.PReLU(f1, init=prelu_init),
            nn.Conv2d(f1, f2, k2, padding=k2 // 2),
            nn.PReLU(f2, init=prelu_init),
            nn.Conv2d(f2, self.channels, k3, padding=k3 // 2),
            output_activation_layer(output_activation, self.channels, prelu_init, self.arch),
        )
        init_conv(self.body[0], prelu=prelu_init)
        init_conv(self.body[2], prelu=prelu_init)
        init_conv(self.body[4], prelu=None, gain=RESIDUAL_OUTPUT_GAIN if residual else 1.0)
        self.residual = bool(residual)
        self.config = {
            "scale": self.scale,
            "channels": self.channels,
            "features": features,
            "kernels": kernels,
            "prelu_init": float(prelu_init),
            "residual": self.residual,
            "output_activation": output_activation,
            "conserve": conserve,
        }

    @property
    def receptive_radius(self) -> int:
        """Bicubic radius plus the convolutions' radius (fine pixels, converted with ceil)."""
        return self.upsample.radius + hr_to_lr_radius(conv_radius(self.body), self.scale)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        y = self.body(up)
        return y + up if self.residual else y

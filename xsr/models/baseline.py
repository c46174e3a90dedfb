"""``bicubic``: the parameter-free interpolation baseline, obeying the model contract.

The inference layer treats interpolation like any model (same halos, same engine), so baselines
and networks are compared on identical terms.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from xsr.models.base import BicubicUpsample, SRModel

__all__ = ["Bicubic"]


class Bicubic(SRModel):
    """Bicubic interpolation (torch, ``align_corners=False``) as an :class:`SRModel`.

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor.
    channels : int, default 1
        Number of variables (in = out).
    conserve : bool, default False
        Project the output so that its block means equal the input.

    Examples
    --------
    >>> import torch
    >>> model = Bicubic(scale=2)
    >>> model(torch.ones(1, 1, 3, 3)).shape, model.receptive_radius
    (torch.Size([1, 1, 6, 6]), 2)
    """

    arch: ClassVar[str] = "bicubic"

    def __init__(self, *, scale: int = 2, channels: int = 1, conserve: bool = False) -> None:
        super().__init__(scale=scale, channels=channels, window=1, conserve=conserve)
        self.upsample = BicubicUpsample(self.scale)
        self.config = {"scale": self.scale, "channels": self.channels, "conserve": conserve}

    @property
    def receptive_radius(self) -> int:
        """The interpolation's radius (see :func:`xsr.models.base.bicubic_radius`)."""
        return self.upsample.radius

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)

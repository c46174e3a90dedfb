"""xsrnet: xsr's own compact network for fast (CPU) inference on scientific movies.

Design (beyond the report):

* **Early temporal fusion at low resolution**: the ``window`` frames are stacked as channels
  and fused by the first 3x3 convolution, so the cost of the time window is one layer.
* **Feature extraction at low resolution**: ``blocks`` residual blocks (conv 3x3 - PReLU -
  conv 3x3, plus skip) run on the coarse grid, ``scale**2`` times fewer pixels than the report's
  networks, which work after bicubic pre-upsampling.
* **Sub-pixel upsampling**: a 3x3 convolution to ``channels * scale**2`` maps and a pixel
  shuffle, initialised ICNR-style (sub-pixels start equal, no checkerboard).
* **Global residual over a base upsampling** of the centre frame: the network learns only the
  detail the base misses; the last layer starts small (zero over a linear base), so an untrained
  xsrnet starts close to its base. The base is bicubic (``base="bicubic"``, the default) or a
  learned linear filter per sub-pixel phase (``base="linear"``,
  :class:`~xsr.models.linear.PhaseFilter`, starting as bicubic): on block-mean inputs the best
  linear filter is far better than bicubic, and :func:`xsr.train.fit` solves it in closed form
  before the gradient steps, so the network's capacity goes to what no linear filter can do.

With the defaults (``features=32, blocks=3, window=3``) it costs about 29 kFLOP per output pixel
at x2 and 8 kFLOP at x4, against about 358 kFLOP for the report's 3D network at any scale
(see :meth:`~xsr.models.base.SRModel.flops_per_output_pixel`). The receptive radius is the
convolutions' (one cell each), or the base's when wider. The engine runs it with "valid"
convolutions on tiles (:mod:`xsr.engine.fast.xsrnet`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from xsr.models.base import BicubicUpsample, SRModel, conv_radius, init_conv
from xsr.models.linear import PhaseFilter

__all__ = ["ResidualBlock", "XSRNet"]


class ResidualBlock(nn.Module):
    """``x + conv3x3(prelu(conv3x3(x)))``.

    Parameters
    ----------
    features : int
        Number of feature maps (in = out).
    prelu_init : float
        Initial PReLU slope.

    Examples
    --------
    >>> import torch
    >>> ResidualBlock(4, 0.25)(torch.zeros(1, 4, 5, 5)).shape
    torch.Size([1, 4, 5, 5])
    """

    def __init__(self, features: int, prelu_init: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.act = nn.PReLU(features, init=prelu_init)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        init_conv(self.conv1, prelu=prelu_init)
        init_conv(self.conv2, prelu=None, gain=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return x + self.conv2(self.act(self.conv1(x)))


class XSRNet(SRModel):
    """xsr's compact video super-resolution network (see the module notes).

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor (any integer >= 1).
    channels : int, default 1
        Number of variables (in = out).
    window : int, default 3
        Frames in (odd; 1 gives a single-image model taking ``(N, C, H, W)``).
    features : int, default 32
        Feature maps at low resolution.
    blocks : int, default 3
        Residual blocks.
    prelu_init : float, default 0.25
        Initial PReLU slope.
    conserve : bool, default False
        Project the output so that its block means equal the centre input frame.
    base : {"bicubic", "linear"}, default "bicubic"
        The upsampling the network's detail is added to: fixed bicubic, or a learned filter per
        sub-pixel phase (starts as bicubic; :func:`xsr.train.fit` solves it in closed form).
    base_radius : int, default 3
        The linear base's window half-width in low-resolution cells (3: 7 x 7).

    Examples
    --------
    >>> import torch
    >>> XSRNet(scale=4, window=3)(torch.zeros(1, 1, 3, 5, 6)).shape
    torch.Size([1, 1, 20, 24])
    >>> net = XSRNet(scale=2, window=1, base="linear")
    >>> type(net.base).__name__, net.base.radius, net.receptive_radius
    ('PhaseFilter', 3, 8)
    """

    arch: ClassVar[str] = "xsrnet"

    def __init__(
        self,
        *,
        scale: int = 2,
        channels: int = 1,
        window: int = 3,
        features: int = 32,
        blocks: int = 3,
        prelu_init: float = 0.25,
        conserve: bool = False,
        base: str = "bicubic",
        base_radius: int = 3,
    ) -> None:
        super().__init__(scale=scale, channels=channels, window=window, conserve=conserve)
        f, b, c, s = int(features), int(blocks), self.channels, self.scale
        if f < 1 or b < 0:
            raise ValueError(f"xsrnet: need features >= 1 and blocks >= 0, got {f}, {b}.")
        self.head = nn.Sequential(
            nn.Conv2d(c * self.window, f, 3, padding=1), nn.PReLU(f, init=prelu_init)
        )
        init_conv(self.head[0], prelu=prelu_init)
        self.body = nn.Sequential(*(ResidualBlock(f, prelu_init) for _ in range(b)))
        self.tail = nn.Conv2d(f, c * s * s, 3, padding=1)
        self._init_tail()
        self.shuffle = nn.PixelShuffle(s)
        if base not in ("bicubic", "linear"):
            raise ValueError(f"xsrnet: base must be 'bicubic' or 'linear', got {base!r}.")
        self.base: nn.Module = (
            BicubicUpsample(s) if base == "bicubic" else PhaseFilter(s, c, base_radius)
        )
        self.config = {
            "scale": s,
            "channels": c,
            "window": self.window,
            "features": f,
            "blocks": b,
            "prelu_init": float(prelu_init),
            "conserve": conserve,
        }
        if base == "linear":  # older cards (bicubic base) keep their config
            self.config.update(base=base, base_radius=int(base_radius))
            # no detail at the start: an untrained network is its base, and the closed-form
            # solve of the base (xsr.train.fit) is then exactly the linear baseline
            nn.init.zeros_(self.tail.weight)

    def _init_tail(self) -> None:
        """ICNR: the ``scale**2`` sub-pixel maps of a channel start with the same small kernel."""
        s2 = self.scale**2
        seed = nn.Conv2d(self.tail.in_channels, self.channels, 3, padding=1)
        init_conv(seed, prelu=None, gain=0.1)
        with torch.no_grad():
            self.tail.weight.copy_(seed.weight.repeat_interleave(s2, dim=0))
            self.tail.bias.zero_()

    @property
    def receptive_radius(self) -> int:
        """Low-resolution convolutions (pixel shuffle adds none), or the base's if wider."""
        return max(conv_radius([self.head, self.body, self.tail]), self.base.radius)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = self.centre_frame(x)
        if self.window > 1:
            n, c, t, h, w = x.shape
            x = x.reshape(n, c * t, h, w)  # early fusion: frames become channels
        features = self.body(self.head(x))
        detail = self.shuffle(self.tail(features))
        return detail + self.base(centre)

"""``linear``: a least-squares filter per sub-pixel phase, the learned linear baseline.

Each of the ``scale**2`` fine pixels of a low-resolution cell (a *phase*) is a weighted sum of
the ``(2 radius + 1)**2`` low-resolution cells around that cell, plus an optional bias: one
convolution with ``scale**2`` output channels per variable (grouped, so a variable sees only
itself) followed by a pixel shuffle. Its weights are not learned by gradient descent but solved
in closed form from the normal equations (:func:`xsr.train.linear.fit_linear`); any other
weights (e.g. from :func:`~xsr.models.registry.get_model`) are random, as for every
architecture.

At its own frame edges the model mirrors the input including the edge cell (numpy's
``symmetric``), as the inference engine's default ``reflect`` boundary does, so a bare forward
equals the engine's output on non-periodic data.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from xsr.models.base import SRModel, conv_radius, init_conv

__all__ = ["Linear", "PhaseFilter", "symmetric_pad"]


def _symmetric_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices of an axis of length ``n`` padded by ``r`` with numpy's ``symmetric`` mode."""
    period = 2 * n
    idx = torch.arange(-r, n + r, device=device) % period
    return torch.where(idx < n, idx, period - 1 - idx)


def symmetric_pad(x: torch.Tensor, r: int) -> torch.Tensor:
    """Pad the last two axes of ``x`` by ``r`` cells, mirroring including the edge cell.

    Equal to ``numpy.pad(x, r, mode="symmetric")`` on those axes, for any ``r`` (also larger
    than the axis, where the mirror repeats).

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    r : int
        Cells added on each side.

    Returns
    -------
    torch.Tensor
        ``(..., H + 2r, W + 2r)``.

    Examples
    --------
    >>> symmetric_pad(torch.arange(3.0).reshape(1, 3), 2)[0]
    tensor([1., 0., 0., 1., 2., 2., 1.])
    """
    if r == 0:
        return x
    h, w = x.shape[-2:]
    x = x.index_select(-2, _symmetric_index(h, r, x.device))
    return x.index_select(-1, _symmetric_index(w, r, x.device))


class PhaseFilter(nn.Module):
    """A learned linear upsampling layer: a filter per sub-pixel phase, then a pixel shuffle.

    The layer form of :class:`Linear` (same filters, same ``symmetric`` edges), used as the
    global residual base of a network (xsrnet's ``base="linear"``): the network then learns the
    detail a linear filter misses, and the filter itself can be solved in closed form
    (:func:`xsr.train.linear.fit_phase_filter`). It starts as bicubic upsampling (exactly, away
    from the frame edges, when ``radius`` reaches bicubic's two cells).

    Parameters
    ----------
    scale : int
        Upscaling factor.
    channels : int
        Variables; each has its own filters.
    radius : int
        Low-resolution cells on each side of a cell read by its fine pixels.

    Examples
    --------
    >>> from xsr.models.base import BicubicUpsample
    >>> layer, x = PhaseFilter(2, 1, 3), torch.randn(1, 1, 12, 12)
    >>> with torch.no_grad():
    ...     same = torch.allclose(layer(x)[..., 6:-6, 6:-6], BicubicUpsample(2)(x)[..., 6:-6, 6:-6],
    ...                           atol=1e-5)
    >>> same, layer.radius
    (True, 3)
    """

    def __init__(self, scale: int, channels: int, radius: int) -> None:
        super().__init__()
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(
                f"radius must be an integer >= 0 (cells on each side), got {radius!r}."
            )
        self.scale, self.channels, self.radius = int(scale), int(channels), int(radius)
        k = 2 * self.radius + 1
        self.conv = nn.Conv2d(self.channels, self.channels * self.scale**2, k, groups=self.channels)
        self.shuffle = nn.PixelShuffle(self.scale)
        with torch.no_grad():
            self.conv.weight.copy_(self._bicubic_weights().repeat(self.channels, 1, 1, 1))
            self.conv.bias.zero_()

    def _bicubic_weights(self) -> torch.Tensor:
        """``(scale**2, 1, k, k)``: bicubic upsampling's weights per phase, read off impulses."""
        from xsr.models.base import BicubicUpsample

        r, s, k = self.radius, self.scale, 2 * self.radius + 1
        n = 2 * k + 5  # the centre cell's taps stay clear of the grid's edges
        impulses = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
        up = BicubicUpsample(s)(impulses)  # (n*n, 1, s*n, s*n)
        c = n // 2
        block = up[:, 0, s * c : s * c + s, s * c : s * c + s].reshape(n, n, s * s)
        window = block[c - r : c + r + 1, c - r : c + r + 1]  # input offsets around the centre
        return window.permute(2, 0, 1).unsqueeze(1).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample ``(N, C, H, W)`` by ``scale`` (edges mirrored including the edge cell)."""
        return self.valid(symmetric_pad(x, self.radius))

    def valid(self, x: torch.Tensor) -> torch.Tensor:
        """The filter without padding: ``(N, C, H, W) -> (N, C, s(H - 2r), s(W - 2r))``.

        Always in float32 (outside any autocast): the base carries the whole signal, which
        bfloat16's 8 bits of mantissa would round to about 0.4 %.

        Examples
        --------
        >>> PhaseFilter(2, 1, 1).valid(torch.zeros(1, 1, 5, 6)).shape
        torch.Size([1, 1, 6, 8])
        """
        return self.shuffle(self.phases(x))

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`valid` before the pixel shuffle: ``(N, C * scale**2, H - 2r, W - 2r)``.

        Examples
        --------
        >>> PhaseFilter(2, 3, 1).phases(torch.zeros(1, 3, 5, 6)).shape
        torch.Size([1, 12, 3, 4])
        """
        w, b = self.conv.weight, self.conv.bias
        if not torch.amp.is_autocast_available(x.device.type):  # e.g. "meta" tensors
            return F.conv2d(x.float(), w.float(), b.float(), groups=self.channels)
        with torch.autocast(x.device.type, enabled=False):
            return F.conv2d(x.float(), w.float(), b.float(), groups=self.channels)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, channels={self.channels}, radius={self.radius}"


class Linear(SRModel):
    """A linear filter per sub-pixel phase: conv ``(2r+1)^2 -> scale^2`` channels, pixel shuffle.

    Parameters
    ----------
    scale : int, default 2
        Upscaling factor.
    channels : int, default 1
        Number of variables (in = out); each has its own filters.
    radius : int, default 3
        Low-resolution cells on each side of the centre cell read by every fine pixel
        (3: a 7 x 7 window).
    bias : bool, default True
        Add a constant per phase and variable.
    conserve : bool, default False
        Project the output so that its block means equal the input.

    Examples
    --------
    >>> model = Linear(scale=2, radius=3)
    >>> model(torch.zeros(1, 1, 5, 6)).shape, model.receptive_radius
    (torch.Size([1, 1, 10, 12]), 3)
    >>> model.parameter_count()  # 4 phases x (49 weights + 1 bias)
    200
    """

    arch: ClassVar[str] = "linear"

    def __init__(
        self,
        *,
        scale: int = 2,
        channels: int = 1,
        radius: int = 3,
        bias: bool = True,
        conserve: bool = False,
    ) -> None:
        super().__init__(scale=scale, channels=channels, window=1, conserve=conserve)
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(
                f"linear: radius must be an integer >= 0 (cells on each side), got {radius!r}."
            )
        if not isinstance(bias, bool):
            raise ValueError(f"linear: bias must be True or False, got {bias!r}.")
        self.radius = int(radius)
        k = 2 * self.radius + 1
        phases = self.scale**2
        # padding is done by symmetric_pad in _forward, so the convolution itself is "valid"
        self.conv = nn.Conv2d(
            self.channels, self.channels * phases, k, groups=self.channels, bias=bias
        )
        init_conv(self.conv, prelu=None)
        self.shuffle = nn.PixelShuffle(self.scale)
        self.config = {
            "scale": self.scale,
            "channels": self.channels,
            "radius": self.radius,
            "bias": bias,
            "conserve": conserve,
        }

    @property
    def receptive_radius(self) -> int:
        """The window's half-width (low-resolution cells): ``radius``."""
        return conv_radius([self.conv])

    def filters(self) -> torch.Tensor:
        """The weights as ``(channels, scale, scale, 2r+1, 2r+1)``: phase ``(i, j)`` of a cell.

        Phase ``(i, j)`` is the fine pixel in row ``i``, column ``j`` of the ``scale x scale``
        block of a low-resolution cell; its window is centred on that cell.

        Returns
        -------
        torch.Tensor
            A detached copy.

        Examples
        --------
        >>> Linear(scale=2, channels=3, radius=1).filters().shape
        torch.Size([3, 2, 2, 3, 3])
        """
        k = 2 * self.radius + 1
        w = self.conv.weight.detach().clone()
        return w.reshape(self.channels, self.scale, self.scale, k, k)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(symmetric_pad(x, self.radius)))

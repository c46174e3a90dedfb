"""FSRCNN's fast form: the report variant's fine-resolution tail computed at low resolution.

:class:`SubPixelTail` replaces the transposed convolution (kernel = stride = scale), its PReLU
and the 5x5 "same" convolution of the report variant with an equivalent computation on the
coarse grid; on CPUs it runs as blocked matrix products whose intermediates stay in cache.
:class:`FastFSRCNN` runs the features, then that tail; on a tile with a full halo every
convolution runs "valid", so the halo's own outputs are never computed. The other variants
(``"original"``, ``"small"``) keep their transposed convolution. Measurements are in
docs/benchmarks.md.

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

import threading

import torch
from torch import nn
from torch.nn import functional as F

from xsr.engine.fast.layers import cpu_autocast, crop_border, like_weight_layout
from xsr.engine.fast.registry import FastForm, register
from xsr.models.base import conv_radius
from xsr.models.fsrcnn import FSRCNN

__all__ = ["SCRATCH_MAX_BYTES", "FastFSRCNN", "SubPixelTail"]

#: Scratch buffers of the blocked CPU tail, one set per thread (a model may run in several).
_SCRATCH = threading.local()
#: Largest scratch buffer kept between calls; bigger ones are allocated for the call only.
SCRATCH_MAX_BYTES = 64 << 20


def _scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor of ``shape``, reused by this thread's later calls.

    The blocked tail writes a few MiB of intermediates per call; reused buffers spare faulting
    their pages in again on every call. The buffers hold no data between calls: every element
    is written before it is read. Buffers above :data:`SCRATCH_MAX_BYTES` are not kept.
    """
    numel = 1
    for n in shape:
        numel *= n
    if numel * torch.finfo(dtype).bits // 8 > SCRATCH_MAX_BYTES:
        return torch.empty(shape, dtype=dtype)
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.dtype != dtype or buf.numel() < numel:
        buf = torch.empty(numel, dtype=dtype)
        setattr(_SCRATCH, name, buf)
    return buf[:numel].view(shape)


def _cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` takes the blocked CPU form (a CPU, no autocast, no gradient needed)."""
    return (
        x.device.type == "cpu"
        and x.numel() > 0
        and not cpu_autocast()
        and not (x.requires_grad and torch.is_grad_enabled())
    )


class SubPixelTail(nn.Module):
    """Transposed conv (kernel = stride = s), PReLU and a "same" conv, computed at low resolution.

    A transposed convolution whose kernel equals its stride is a 1x1 convolution to ``d * s**2``
    channels followed by a pixel shuffle; the PReLU is per channel, so it commutes with the
    shuffle; and a ``k x k`` convolution on the shuffled (fine) grid is a convolution on the
    coarse grid from the ``d * s**2`` phase channels to ``C * s**2`` output phases, with a
    kernel of ``2 * ceil(k // 2 / s) + 1`` coarse pixels. So the whole tail runs on the coarse
    grid and only the final pixel shuffle touches the fine grid. Zero padding maps to zero
    padding, so the result equals the unfused tail everywhere, borders included, to float32
    rounding. The weights are non-persistent buffers: they never enter a state dict.

    On CPUs the tail runs as matrix products over cache-sized blocks of pixels (channels-last
    rows), so the ``d * s**2``-channel intermediate never leaves the cache. The PReLU splits as
    ``prelu(z) = (1 - a) relu(z) + a z``: the linear part ``a z`` is linear in the input, so it
    folds into a small ``d_in -> C * s**2 * k**2`` product; the ``(1 - a) relu(z)`` part and the
    coarse convolution become one product to the ``C * s**2`` phases times the ``k**2`` kernel
    taps, whose shifted sum (zero outside the input, as zero padding) is the convolution. GPUs,
    CPU autocast (bfloat16) and inputs that need a gradient keep the convolution form.

    Parameters
    ----------
    deconv : torch.nn.ConvTranspose2d
        Kernel and stride ``scale``, no padding, no groups or dilation.
    act : torch.nn.PReLU
        Applied to the transposed convolution's output.
    conv : torch.nn.Conv2d
        Odd square kernel, stride 1, padding ``kernel // 2``.
    scale : int
        The upscaling factor.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> deconv, act = nn.ConvTranspose2d(4, 4, 2, stride=2), nn.PReLU(4, init=0.1)
    >>> conv = nn.Conv2d(4, 1, 5, padding=2)
    >>> x = torch.randn(1, 4, 6, 7)
    >>> with torch.no_grad():
    ...     same = torch.allclose(SubPixelTail(deconv, act, conv, 2)(x), conv(act(deconv(x))),
    ...                           atol=1e-5)
    >>> same
    True
    """

    def __init__(
        self, deconv: nn.ConvTranspose2d, act: nn.PReLU, conv: nn.Conv2d, scale: int
    ) -> None:
        super().__init__()
        s = int(scale)
        if not self.supports(deconv, act, conv, s):
            raise ValueError(
                "SubPixelTail: needs a transposed conv with kernel = stride = scale and no "
                "padding, a PReLU, and an odd 'same' convolution with stride 1."
            )
        d_in, d = deconv.weight.shape[:2]
        c, _, k, _ = conv.weight.shape
        p = k // 2
        r = max(-(-p // s), (s - 1 + p) // s)  # coarse-grid radius of the fine kernel
        w_up = deconv.weight.detach().permute(1, 2, 3, 0).reshape(d * s * s, d_in, 1, 1)
        b_up = deconv.bias.detach() if deconv.bias is not None else torch.zeros(d)
        slope = act.weight.detach().expand(d) if act.weight.numel() == 1 else act.weight.detach()
        w_fine = conv.weight.detach()
        w_low = w_fine.new_zeros(c, s, s, d, s, s, 2 * r + 1, 2 * r + 1)
        for pa in range(s):
            for ky in range(k):
                ly, a = divmod(pa + ky - p, s)
                for pb in range(s):
                    for kx in range(k):
                        lx, b = divmod(pb + kx - p, s)
                        w_low[:, pa, pb, :, a, b, ly + r, lx + r] += w_fine[:, :, ky, kx]
        b_fine = conv.bias.detach() if conv.bias is not None else w_fine.new_zeros(c)
        self.scale, self.radius = s, r
        fmt = torch.channels_last
        self.register_buffer("w_up", w_up.contiguous(memory_format=fmt), persistent=False)
        self.register_buffer("b_up", b_up.repeat_interleave(s * s).clone(), persistent=False)
        self.register_buffer("slope", slope.repeat_interleave(s * s).clone(), persistent=False)
        w_low = w_low.reshape(c * s * s, d * s * s, 2 * r + 1, 2 * r + 1)
        self.register_buffer("w_low", w_low.contiguous(memory_format=fmt), persistent=False)
        self.register_buffer("b_low", b_fine.repeat_interleave(s * s).clone(), persistent=False)
        # The CPU form (see the class docstring): matrix products over rows of pixels.
        taps = (2 * r + 1) ** 2
        up = w_up[:, :, 0, 0]  # (d s s, d_in)
        # one row per (kernel tap, output phase): w_tap[(ky, kx, o), c] = w_low[o, c, ky, kx]
        w_tap = w_low.permute(2, 3, 0, 1).reshape(taps * c * s * s, d * s * s)
        w_relu = w_tap * (1 - self.slope)
        w_lin = (w_tap * self.slope) @ up  # the PReLU's linear part, folded into the input
        b_lin = (w_tap * self.slope) @ self.b_up
        self.register_buffer("g_up", up.t().contiguous(), persistent=False)
        self.register_buffer("g_relu", w_relu.contiguous(), persistent=False)
        self.register_buffer("g_lin", w_lin.contiguous(), persistent=False)
        self.register_buffer("g_bias", b_lin[:, None].contiguous(), persistent=False)
        self.taps = taps
        # pixels per block: the (pixels, d s s) intermediate stays about 2 MiB, in cache
        self.block = max(256, (2 << 20) // (4 * d * s * s))

    @staticmethod
    def supports(deconv: nn.Module, act: nn.Module, conv: nn.Module | None, scale: int) -> bool:
        """Whether the three layers have the shapes this fusion handles.

        Parameters
        ----------
        deconv, act, conv : torch.nn.Module
            The candidate layers.
        scale : int
            The upscaling factor.

        Returns
        -------
        bool

        Examples
        --------
        >>> from torch import nn
        >>> SubPixelTail.supports(nn.ConvTranspose2d(4, 4, 2, stride=2), nn.PReLU(4),
        ...                       nn.Conv2d(4, 1, 5, padding=2), 2)
        True
        """
        return (
            isinstance(deconv, nn.ConvTranspose2d)
            and isinstance(act, nn.PReLU)
            and isinstance(conv, nn.Conv2d)
            and deconv.kernel_size == (scale, scale)
            and deconv.stride == (scale, scale)
            and deconv.padding == (0, 0)
            and deconv.output_padding == (0, 0)
            and deconv.dilation == (1, 1)
            and deconv.groups == 1
            and conv.kernel_size[0] == conv.kernel_size[1]
            and conv.kernel_size[0] % 2 == 1
            and conv.padding == (conv.kernel_size[0] // 2,) * 2
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.groups == 1
            and conv.padding_mode == "zeros"
        )

    def forward(self, x: torch.Tensor, *, valid: bool = False) -> torch.Tensor:
        """The fine-resolution tail output for coarse features ``x`` ``(N, d, H, W)``.

        Parameters
        ----------
        x : torch.Tensor
            Coarse features.
        valid : bool, default False
            Only the outputs whose kernel lies inside ``x`` (``radius`` coarse cells less on
            each side), as a convolution without padding.

        Returns
        -------
        torch.Tensor
            ``(N, C, scale*H, scale*W)``, or ``(N, C, scale*(H - 2r), scale*(W - 2r))`` with
            ``valid=True``.

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> tail = SubPixelTail(nn.ConvTranspose2d(4, 4, 2, stride=2), nn.PReLU(4),
        ...                     nn.Conv2d(4, 1, 5, padding=2), 2)
        >>> tail(torch.zeros(1, 4, 3, 3)).shape
        torch.Size([1, 1, 6, 6])
        """
        if _cpu_inference(x):
            return self._forward_blocked(x, valid=valid)
        z = F.prelu(F.conv2d(x, self.w_up, self.b_up), self.slope)
        z = F.conv2d(z, self.w_low, self.b_low, padding=0 if valid else self.radius)
        return F.pixel_shuffle(z, self.scale)

    def _forward_blocked(self, x: torch.Tensor, *, valid: bool = False) -> torch.Tensor:
        """The CPU form: blocked matrix products, then a shifted sum over the kernel taps."""
        n, d_in, h, w = x.shape
        s, r, taps = self.scale, self.radius, self.taps
        phases = self.b_low.numel()
        pixels = n * h * w
        rows = x.permute(0, 2, 3, 1).reshape(pixels, d_in)  # a view for channels-last x
        # q[(tap, phase), pixel]: each pixel's contribution to each tap of each output phase
        q = _scratch("q", (taps * phases, pixels), x.dtype)
        step = -(-pixels // -(-pixels // self.block))  # equal blocks of at most self.block
        z = _scratch("z", (min(step, pixels), self.g_up.shape[1]), x.dtype)  # for every block
        for i0 in range(0, pixels, step):
            xi = rows[i0 : i0 + step]
            zi = torch.addmm(self.b_up, xi, self.g_up, out=z[: xi.shape[0]]).relu_()
            qi = q[:, i0 : i0 + step]
            if valid:  # every tap is inside: the taps' biases are added once, below
                torch.mm(self.g_lin, xi.t(), out=qi)
            else:
                torch.addmm(self.g_bias, self.g_lin, xi.t(), out=qi)
            qi.addmm_(self.g_relu, zi.t())
        # the convolution: shifted sums of the tap planes, zero outside the input
        qt = q.view(taps, phases, n, h, w)
        k, centre = 2 * r + 1, taps // 2
        if valid:  # only the outputs whose taps all lie inside x
            ho, wo = h - 2 * r, w - 2 * r
            bias = self.b_low + self.g_bias.view(taps, phases).sum(0)
            y = qt[centre, ..., r : h - r, r : w - r] + bias.view(phases, 1, 1, 1)
            for t in range(taps):
                dy, dx = t // k - r, t % k - r
                if t != centre:
                    y += qt[t, ..., r + dy : h - r + dy, r + dx : w - r + dx]
        else:
            ho, wo = h, w
            y = qt[centre] + self.b_low.view(phases, 1, 1, 1)
            for t in range(taps):
                dy, dx = t // k - r, t % k - r
                y0, y1 = max(0, -dy), h - max(0, dy)
                x0, x1 = max(0, -dx), w - max(0, dx)
                if t != centre and y1 > y0 and x1 > x0:
                    y[..., y0:y1, x0:x1] += qt[t, ..., y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        c = phases // (s * s)
        return y.view(c, s, s, n, ho, wo).permute(3, 0, 4, 1, 5, 2).reshape(n, c, ho * s, wo * s)


class FastFSRCNN(FastForm):
    """FSRCNN with the report variant's tail as a :class:`SubPixelTail` and a valid-core path.

    Parameters
    ----------
    model : xsr.models.fsrcnn.FSRCNN
        The engine's prepared copy.

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> model = get_model("fsrcnn", scale=2).eval()
    >>> fast = FastFSRCNN(model)
    >>> x = torch.randn(1, 1, 14, 12)
    >>> with torch.no_grad():
    ...     bool(torch.allclose(fast(x), model(x), atol=1e-5))
    True
    >>> fast.forward_core(x).shape  # radius 4
    torch.Size([1, 1, 12, 8])
    """

    def __init__(self, model: FSRCNN) -> None:
        super().__init__(model)
        rec = model.reconstruct
        act, conv = rec[0], rec[1] if len(rec) > 1 else None
        self.tail: SubPixelTail | None = None
        if SubPixelTail.supports(model.upsample, act, conv, model.scale):
            self.tail = SubPixelTail(model.upsample, act, conv, model.scale)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.tail is not None:
            y = m.reconstruct[2:](self.tail(m.features(x)))
        else:
            y = m.reconstruct(m.upsample(m.features(x)))
        if m.bicubic is not None:
            y = y + m.bicubic(x)
        return y

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """Every convolution "valid": the halo's outputs are never computed."""
        m, r, s, tail = self.model, self.receptive_radius, self.scale, self.tail
        inner = conv_radius(m.features) + (tail.radius if tail is not None else 0)
        if tail is None or inner > r:
            return super().core(x)
        y = like_weight_layout(x, m.reconstruct[1].weight)  # the report variant's 5x5
        for layer in m.features:
            if isinstance(layer, nn.Conv2d):
                y = F.conv2d(y, layer.weight, layer.bias)
            else:
                y = layer(y)
        y = m.reconstruct[2:](tail(y, valid=True))
        y = crop_border(y, s * (r - inner))  # a wider radius elsewhere (the bicubic residual's)
        if m.bicubic is not None:
            y = y + crop_border(m.bicubic(x), s * r)
        return y


@register("fsrcnn")
def fast_fsrcnn(model: FSRCNN) -> FastFSRCNN:
    """The fast form of an FSRCNN (see :class:`FastFSRCNN`).

    Parameters
    ----------
    model : xsr.models.fsrcnn.FSRCNN
        The engine's prepared copy.

    Returns
    -------
    FastFSRCNN

    Examples
    --------
    >>> from xsr.models import get_model
    >>> fast_fsrcnn(get_model("fsrcnn", scale=2).eval()).tail is not None
    True
    """
    return FastFSRCNN(model)

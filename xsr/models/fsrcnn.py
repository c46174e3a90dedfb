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

For inference, :meth:`FSRCNN.fuse_for_inference` computes the report variant's fine-resolution
tail (transposed convolution, PReLU, 5x5 convolution) entirely at low resolution
(:class:`SubPixelTail`): measured on 2 CPU cores this roughly halves the cost of the tail.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from xsr.models.base import (
    RESIDUAL_OUTPUT_GAIN,
    BicubicUpsample,
    PReLU,
    SRModel,
    conv_radius,
    cpu_autocast,
    crop_border,
    hr_to_lr_radius,
    init_conv,
    like_weight_layout,
    transposed_conv_radius,
)
from xsr.models.srcnn import output_activation_layer

__all__ = ["FSRCNN", "VARIANTS", "SubPixelTail"]

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


#: Scratch buffers of the blocked CPU tail, one set per thread (a model may run in several).
_SCRATCH = threading.local()
#: Largest scratch buffer kept between calls; bigger ones are allocated for the call only.
SCRATCH_MAX_BYTES = 64 << 20


def _scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor of ``shape``, reused by this thread's later calls.

    The blocked tail writes a few MiB of intermediates per call. Allocated afresh, their
    pages are faulted in again on every call, which cost about 10-15 % of FSRCNN's inference
    time on 2 CPU cores (paired runs). The buffers hold no data between calls: every element
    is written before it is read.
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
    """Whether ``x`` takes the CPU inference forms (no autocast, no gradient needed)."""
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
    grid, where oneDNN's kernels are far more efficient than a ``d -> C`` convolution over
    ``s**2`` times more pixels, and only the final pixel shuffle touches the fine grid. Zero
    padding maps to zero padding, so the result equals the unfused tail everywhere, borders
    included, to float32 rounding. The weights are non-persistent buffers: they never enter a
    state dict.

    On CPUs the tail runs as matrix products over cache-sized blocks of pixels (channels-last
    rows), so the ``d * s**2``-channel intermediate never leaves the cache. The PReLU splits as
    ``prelu(z) = (1 - a) relu(z) + a z``: the linear part ``a z`` is linear in the input, so it
    folds into a small ``d_in -> C * s**2 * k**2`` product; the ``(1 - a) relu(z)`` part and the
    coarse convolution become one product to the ``C * s**2`` phases times the ``k**2`` kernel
    taps, whose shifted sum (zero outside the input, as zero padding) is the convolution.
    Measured on 2 CPU cores: the tail of the report's x2 variant ran about 2x faster than as
    convolutions, which spend most of their time moving the 128-channel intermediate through
    memory (the whole engine, 1.3x). GPUs, CPU autocast (bfloat16) and inputs that need a
    gradient keep the convolution form.

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
    def supports(deconv: nn.Module, act: nn.Module, conv: nn.Module, scale: int) -> bool:
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
        layers: list[nn.Module] = [nn.Conv2d(c, d, 5, padding=2), PReLU(d, init=prelu_init)]
        layers += [nn.Conv2d(d, s, 1), PReLU(s, init=prelu_init)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), PReLU(s, init=prelu_init)]
        layers += [nn.Conv2d(s, d, 1), PReLU(d, init=prelu_init)]
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
                PReLU(d, init=prelu_init), nn.Conv2d(d, c, 5, padding=2), out_act
            )
            init_conv(self.reconstruct[1], prelu=None, gain=out_gain)
        self.residual = bool(residual)
        self.bicubic = BicubicUpsample(self.scale) if self.residual else None
        self.variant = variant
        self.fused_tail: SubPixelTail | None = None  # set by fuse_for_inference()
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

    def _fuse(self) -> None:
        """The report variant's tail runs at low resolution (:class:`SubPixelTail`)."""
        act, conv = self.reconstruct[0], self.reconstruct[1] if len(self.reconstruct) > 1 else None
        self.fused_tail = None  # always rebuilt from the current weights
        if SubPixelTail.supports(self.upsample, act, conv, self.scale):
            self.fused_tail = SubPixelTail(self.upsample, act, conv, self.scale)

    def _unfuse(self) -> None:
        self.fused_tail = None

    def forward_core(self, x: torch.Tensor) -> torch.Tensor:
        """The output for the core of ``x`` (see :meth:`SRModel.forward_core`), halo skipped.

        With the fused tail (the report variant prepared for inference), every convolution
        runs without padding ("valid"), so the halo's own outputs are never computed; the kept
        core equals the padded forward's to float32 rounding. Otherwise (and with
        ``conserve=True``) it is the cropped full forward.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, C, H, W)`` with ``H, W > 2 * receptive_radius``.

        Returns
        -------
        torch.Tensor
            ``(N, C, scale*(H - 2r), scale*(W - 2r))``.

        Examples
        --------
        >>> import torch
        >>> model = FSRCNN(scale=2).eval().fuse_for_inference()
        >>> model.forward_core(torch.zeros(1, 1, 14, 12)).shape  # radius 4
        torch.Size([1, 1, 12, 8])
        """
        r, s, tail = int(self.receptive_radius), self.scale, self.fused_tail
        inner = conv_radius(self.features) + (tail.radius if tail is not None else 0)
        if tail is None or inner > r or not self._valid_core_applies(x):
            return super().forward_core(x)
        y = like_weight_layout(x, self.reconstruct[1].weight)  # the report variant's 5x5
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                y = F.conv2d(y, layer.weight, layer.bias)
            else:
                y = layer(y)
        y = self.reconstruct[2:](tail(y, valid=True))
        y = crop_border(y, s * (r - inner))  # a wider radius elsewhere (the bicubic residual's)
        if self.bicubic is not None:
            y = y + crop_border(self.bicubic(x), s * r)
        return y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_tail is not None:
            y = self.reconstruct[2:](self.fused_tail(self.features(x)))
        else:
            y = self.reconstruct(self.upsample(self.features(x)))
        if self.bicubic is not None:
            y = y + self.bicubic(x)
        return y

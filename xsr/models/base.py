"""The model contract: :class:`SRModel` and the layer helpers every architecture shares.

Every xsr network is a :class:`SRModel` (a :class:`torch.nn.Module`) that declares its ``arch``,
``config``, ``scale``, ``window``, ``time_radius``, ``receptive_radius`` and ``channels``
(see ``docs/explanation/architecture.md``). The receptive radius is *derived* from the layers by
the helpers of this module (kernel sizes, upsamplers, the internal bicubic), never hand-set, and
:meth:`SRModel.flops_per_output_pixel` is counted from the layers too.

This module imports torch only (never xarray or dask).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xsr.models.consistency import conserve as _conserve

__all__ = [
    "BF16_PRELU_MIN_CHANNELS",
    "BicubicUpsample",
    "PReLU",
    "SRModel",
    "bicubic_radius",
    "check_scale",
    "conv_radius",
    "cpu_autocast",
    "crop_border",
    "hr_to_lr_radius",
    "init_conv",
    "like_weight_layout",
    "one_channel_float32",
    "transposed_conv_radius",
]


def check_scale(scale: Any, arch: str, *, minimum: int = 1) -> int:
    """Validate an upscaling factor and return it as an ``int``.

    Parameters
    ----------
    scale : int
        The spatial upscaling factor asked for.
    arch : str
        Architecture name, for the error message.
    minimum : int, default 1
        Smallest factor the architecture can do.

    Returns
    -------
    int
        ``scale``.

    Raises
    ------
    ValueError
        If ``scale`` is not an integer ``>= minimum``.

    Examples
    --------
    >>> check_scale(2, "fsrcnn")
    2
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < minimum:
        raise ValueError(
            f"{arch}: scale must be an integer >= {minimum}, got {scale!r}; "
            f"pass e.g. scale=2 (xsr models upscale by integer factors only)."
        )
    return int(scale)


def _positive_int(value: Any, name: str, arch: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arch}: {name} must be a positive integer, got {value!r}.")
    return int(value)


def _spatial_halfwidth(module: nn.Module) -> int:
    """Largest spatial reach (in the layer's own pixels) of one stride-1 convolution."""
    kernel = module.kernel_size
    dilation = module.dilation
    # Conv3d kernels are (t, y, x): only the last two axes are spatial.
    ks, ds = kernel[-2:], dilation[-2:]
    return max(d * (k // 2) for k, d in zip(ks, ds))


def conv_radius(layers: Iterable[nn.Module]) -> int:
    """Spatial receptive radius of a stack of stride-1 convolutions, in their own pixels.

    Walks the modules (recursively) and adds ``dilation * (kernel // 2)`` of every
    :class:`torch.nn.Conv2d` / :class:`torch.nn.Conv3d` (spatial axes only). Pointwise layers
    (activations, 1x1 convolutions) add nothing.

    Parameters
    ----------
    layers : iterable of torch.nn.Module
        The layers, in any order (the radius of a chain of convolutions is the sum).

    Returns
    -------
    int
        The radius in pixels of the grid the convolutions run on.

    Raises
    ------
    ValueError
        If a convolution is strided (strided layers must be handled by the caller).

    Examples
    --------
    >>> from torch import nn
    >>> conv_radius([nn.Conv2d(1, 8, 9, padding=4), nn.PReLU(), nn.Conv2d(8, 1, 5, padding=2)])
    6
    """
    radius = 0
    for layer in layers:
        for module in layer.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d):
                if any(s != 1 for s in module.stride):
                    raise ValueError("conv_radius handles stride-1 convolutions only.")
                radius += _spatial_halfwidth(module)
    return radius


def hr_to_lr_radius(radius_hr: int, scale: int) -> int:
    """Convert a radius in fine (high-resolution) pixels to low-resolution pixels.

    A fine pixel inside low-resolution cell ``i`` that depends on fine pixels within
    ``radius_hr`` depends on low-resolution cells within ``ceil(radius_hr / scale)`` of ``i``.

    Parameters
    ----------
    radius_hr : int
        Radius in fine pixels.
    scale : int
        Fine pixels per low-resolution cell.

    Returns
    -------
    int
        Radius in low-resolution cells.

    Examples
    --------
    >>> hr_to_lr_radius(9, 2)
    5
    """
    return math.ceil(radius_hr / scale)


def bicubic_radius(scale: int) -> int:
    """Radius, in low-resolution pixels, of torch bicubic upsampling (``align_corners=False``).

    The fine pixel ``p`` samples the coarse coordinate ``x = (p + 0.5) / scale - 0.5`` with the
    four taps ``floor(x) - 1 .. floor(x) + 2`` (a tap whose weight is exactly zero, at integer
    ``x``, is not counted). The radius is the largest distance from the fine pixel's own cell
    ``p // scale`` to a tap, over the ``scale`` fine pixels of a cell. ``scale == 1`` is the
    identity (radius 0).

    Parameters
    ----------
    scale : int
        Upscaling factor.

    Returns
    -------
    int
        Radius in low-resolution pixels.

    Examples
    --------
    >>> bicubic_radius(1), bicubic_radius(2), bicubic_radius(4)
    (0, 2, 2)
    """
    if scale == 1:
        return 0
    radius = 0
    for q in range(scale):
        x = (q + 0.5) / scale - 0.5  # coordinate of fine pixel q of cell 0
        base = math.floor(x)
        taps = [base - 1, base, base + 1, base + 2]
        if x == base:  # integer coordinate: only the centre tap has weight
            taps = [base]
        radius = max(radius, *(abs(t) for t in taps))
    return radius


def transposed_conv_radius(kernel: int, stride: int, padding: int) -> int:
    """Radius, in input pixels, of a transposed convolution producing ``stride`` x upsampling.

    Output index ``o`` receives input ``i`` when ``0 <= o + padding - stride * i < kernel``.

    Parameters
    ----------
    kernel, stride, padding : int
        The transposed convolution's kernel size, stride and padding.

    Returns
    -------
    int
        Largest distance between an output pixel's own input cell ``o // stride`` and an input
        it depends on.

    Examples
    --------
    >>> transposed_conv_radius(2, 2, 0)     # kernel == stride: no overlap
    0
    >>> transposed_conv_radius(9, 2, 4)     # FSRCNN's 9x9 deconvolution at x2
    2
    """
    radius = 0
    for q in range(stride):  # output o = q in cell 0
        lo = math.ceil((q + padding - kernel + 1) / stride)
        hi = math.floor((q + padding) / stride)
        radius = max(radius, abs(lo), abs(hi))
    return radius


#: Initial gain of the output layer of a residual model: the network starts as (almost exactly)
#: bicubic interpolation and learns the detail, instead of first unlearning random noise.
RESIDUAL_OUTPUT_GAIN = 1e-3


def crop_border(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` without ``n`` cells on each side of its last two axes (a view; ``n=0`` keeps all).

    Parameters
    ----------
    t : torch.Tensor
        ``(..., H, W)``.
    n : int
        Cells removed on each side.

    Returns
    -------
    torch.Tensor
        ``(..., H - 2n, W - 2n)``.

    Examples
    --------
    >>> import torch
    >>> crop_border(torch.zeros(1, 6, 5), 1).shape
    torch.Size([1, 4, 3])
    """
    return t[..., n : t.shape[-2] - n, n : t.shape[-1] - n]


def cpu_autocast() -> bool:
    """Whether CPU autocast is on (the engine's ``precision="bfloat16"``).

    Returns
    -------
    bool
        ``torch.is_autocast_enabled("cpu")``.

    Examples
    --------
    >>> import torch
    >>> cpu_autocast()
    False
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     cpu_autocast()
    True
    """
    try:
        return bool(torch.is_autocast_enabled("cpu"))
    except TypeError:  # pragma: no cover - torch < 2.4
        return bool(torch.is_autocast_cpu_enabled())


#: Under CPU autocast, a PReLU whose input has fewer channels than this runs in float32: torch's
#: bfloat16 PReLU kernel is not vectorised for so few channels-last channels (measured on
#: 2 cores: 14x float32's time on 8 channels, 0.85x on 32).
BF16_PRELU_MIN_CHANNELS = 16


class PReLU(nn.PReLU):
    """:class:`torch.nn.PReLU` that stays fast under CPU bfloat16 autocast.

    Same parameters and state dict as ``nn.PReLU`` (model files and their sha256 are unchanged).
    Under CPU autocast, a bfloat16 input with fewer than :data:`BF16_PRELU_MIN_CHANNELS`
    channels is computed in float32 (the result is float32; the next convolution casts it back).
    Any other input, a bfloat16 model run without autocast included, runs as in ``nn.PReLU``.

    Examples
    --------
    >>> import torch
    >>> act = PReLU(8, init=0.25)
    >>> x = torch.randn(1, 8, 4, 4).bfloat16()
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     y = act(x)
    >>> y.dtype
    torch.float32
    >>> bool(torch.equal(y, torch.nn.functional.prelu(x.float(), act.weight)))
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the PReLU (see the class notes for bfloat16 inputs)."""
        if (
            x.dtype == torch.bfloat16
            and x.device.type == "cpu"
            and x.ndim > 1
            and x.shape[1] < BF16_PRELU_MIN_CHANNELS
            and cpu_autocast()  # a bfloat16 model without autocast keeps bfloat16 throughout
        ):
            with torch.autocast("cpu", enabled=False):
                return F.prelu(x.float(), self.weight.float())
        return super().forward(x)


def one_channel_float32(
    conv: nn.Module, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn(x)``, in float32 with autocast off where ``conv`` has one input channel on a CPU.

    With one input channel, oneDNN's bfloat16 convolution is far slower than its float32 one
    (measured on 2 cores: 5x for the 3D network's first layer), and such a layer is a small
    share of a network's FLOPs, so under ``precision="bfloat16"`` (CPU autocast) it runs in
    float32 and returns float32. Elsewhere (no autocast, GPUs, several channels) this is just
    ``fn(x)``.

    Parameters
    ----------
    conv : torch.nn.Module
        The convolution ``fn`` applies.
    x : torch.Tensor
        Its input.
    fn : callable
        Applies the convolution to a tensor.

    Returns
    -------
    torch.Tensor
        ``fn(x)``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> conv, x = nn.Conv2d(1, 4, 3), torch.randn(1, 1, 6, 6)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     one_channel_float32(conv, x, conv).dtype, conv(x).dtype
    (torch.float32, torch.bfloat16)
    """
    if getattr(conv, "in_channels", None) == 1 and x.device.type == "cpu" and cpu_autocast():
        with torch.autocast("cpu", enabled=False):
            return fn(x.float())
    return fn(x)


def like_weight_layout(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` viewed channels-last where it has one channel and ``weight`` is channels-last.

    With a single channel the two layouts are the same memory, and torch takes such a tensor
    for a plain (NCHW/NCDHW) one, so a convolution with channels-last weights then returns a
    plain output that the next channels-last layer has to copy (for the 3D network's first
    layer: 12 % of its time). The view costs nothing; every other tensor is returned unchanged.

    Parameters
    ----------
    x : torch.Tensor
        A 4-D or 5-D convolution input.
    weight : torch.Tensor
        A weight of the same rank whose layout decides (one with more than one input channel
        and a kernel wider than 1, so that its layout is unambiguous).

    Returns
    -------
    torch.Tensor
        ``x``, or the same memory with channels-last strides.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(4, 2, 3, 3).contiguous(memory_format=torch.channels_last)
    >>> x = like_weight_layout(torch.zeros(1, 1, 5, 6), w)
    >>> x.stride()
    (30, 1, 6, 1)
    >>> x.is_contiguous(memory_format=torch.channels_last)
    True
    """
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.ndim)
    if (
        fmt is None
        or x.shape[1] != 1
        or not x.is_contiguous()
        or weight.ndim != x.ndim
        or weight.is_contiguous()
        or not weight.is_contiguous(memory_format=fmt)
    ):
        return x
    return x.as_strided(x.shape, (x.stride(0), 1, *x.stride()[2:]))


def init_conv(module: nn.Module, *, prelu: float | None = 0.0, gain: float = 1.0) -> None:
    """He-style initialisation of a (transposed) convolution followed by a PReLU.

    The fan-in is the number of inputs one output actually sums over (for a transposed
    convolution ``in_channels * kernel / stride``), so transposed layers are not mis-scaled.
    Biases start at zero.

    Parameters
    ----------
    module : torch.nn.Module
        A ``Conv2d``, ``Conv3d``, ``ConvTranspose2d`` or ``ConvTranspose3d``.
    prelu : float or None, default 0.0
        Initial PReLU slope of the activation that follows; ``None`` for a linear output.
    gain : float, default 1.0
        Extra factor on the standard deviation (e.g. 0.1 for a residual branch).

    Examples
    --------
    >>> from torch import nn
    >>> conv = nn.Conv2d(4, 8, 3)
    >>> init_conv(conv, prelu=0.25)
    >>> float(conv.bias.detach().abs().sum())
    0.0
    """
    weight = module.weight
    kernel = math.prod(module.kernel_size)
    if isinstance(module, nn.ConvTranspose2d | nn.ConvTranspose3d):
        fan_in = module.in_channels // module.groups * kernel / math.prod(module.stride)
    else:
        fan_in = module.in_channels // module.groups * kernel
    act_gain = 1.0 if prelu is None else math.sqrt(2.0 / (1.0 + prelu**2))
    std = gain * act_gain / math.sqrt(max(fan_in, 1.0))
    with torch.no_grad():
        weight.normal_(0.0, std)
        if module.bias is not None:
            module.bias.zero_()


class BicubicUpsample(nn.Module):
    """Bicubic upsampling by an integer factor (torch, ``align_corners=False``), as a layer.

    Works on images ``(N, C, H, W)`` and on movies ``(N, C, T, H, W)`` (each frame separately,
    the time axis folded into the batch). ``scale == 1`` returns the input unchanged.

    Parameters
    ----------
    scale : int
        Upscaling factor.

    Examples
    --------
    >>> import torch
    >>> BicubicUpsample(2)(torch.zeros(1, 1, 3, 4)).shape
    torch.Size([1, 1, 6, 8])
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = int(scale)

    @property
    def radius(self) -> int:
        """Radius in input pixels (see :func:`bicubic_radius`)."""
        return bicubic_radius(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample the last two axes of ``x`` by ``scale``."""
        if self.scale == 1:
            return x
        if x.ndim == 5:
            n, c, t, h, w = x.shape
            frames = x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
            up = self.forward(frames)
            return up.reshape(n, t, c, h * self.scale, w * self.scale).permute(0, 2, 1, 3, 4)
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


# FLOPs counted per multiply-add pair: 2 FLOPs per multiply-accumulate.
_BICUBIC_TAPS = 16


def _module_flops(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> int:
    x = inputs[0]
    if isinstance(module, nn.ConvTranspose2d | nn.ConvTranspose3d):
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return 2 * x.numel() * per_input
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return 2 * output.numel() * per_output
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    if isinstance(module, BicubicUpsample) and module.scale != 1:
        return 2 * output.numel() * _BICUBIC_TAPS
    return 0


class SRModel(nn.Module):
    """Base class of every xsr super-resolution network (the model contract).

    Subclasses set the contract attributes in ``__init__`` and implement :meth:`_forward`;
    :meth:`forward` validates the input (rank, channel count, window length) with clear errors,
    calls :meth:`_forward`, and applies the optional consistency layer (``conserve=True``).

    Attributes
    ----------
    arch : str
        Registry name.
    config : dict
        JSON-serialisable keyword arguments; ``get_model(arch, **config)`` rebuilds the model.
    scale : int
        Spatial upscaling factor (1 for a pure refiner).
    window : int
        Frames in (1 for 2D models, odd otherwise).
    channels : int
        Number of variables (in = out).
    conserve : bool
        Whether the output is projected so that its block means equal the input (centre frame).
    card : ModelCard or None
        The model card, attached by :func:`xsr.models.files.load_model` and by training.

    Examples
    --------
    >>> from xsr.models.registry import get_model
    >>> model = get_model("fsrcnn", scale=2, channels=1)
    >>> [cls.__name__ for cls in type(model).__mro__[:2]], model.window, model.time_radius
    (['FSRCNN', 'SRModel'], 1, 0)
    """

    arch: ClassVar[str] = ""

    def __init__(self, *, scale: int, channels: int, window: int, conserve: bool = False) -> None:
        super().__init__()
        self.scale = check_scale(scale, self.arch or type(self).__name__)
        self.channels = _positive_int(channels, "channels", self.arch)
        self.window = _positive_int(window, "window", self.arch)
        if self.window % 2 != 1:
            raise ValueError(f"{self.arch}: window must be odd, got {window}; use e.g. 3 or 5.")
        if not isinstance(conserve, bool):
            raise ValueError(f"{self.arch}: conserve must be True or False, got {conserve!r}.")
        self.conserve = conserve
        self.config: dict[str, Any] = {}
        self.card: Any = None

    # -- contract -----------------------------------------------------------------------------
    @property
    def time_radius(self) -> int:
        """Frames needed on each side of the output frame: ``window // 2``."""
        return self.window // 2

    @property
    def receptive_radius(self) -> int:
        """Spatial receptive radius in low-resolution pixels, derived from the layers."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (normalised).

        Parameters
        ----------
        x : torch.Tensor
            ``(N, C, H, W)`` when ``window == 1``, otherwise ``(N, C, window, H, W)``.

        Returns
        -------
        torch.Tensor
            ``(N, C, scale*H, scale*W)``: the (centre) frame at high resolution.

        Raises
        ------
        TypeError, ValueError
            For a wrong type, rank, channel count or window length (see :meth:`check_input`).

        Examples
        --------
        >>> import torch
        >>> from xsr.models.registry import get_model
        >>> get_model("xsrnet", scale=2, window=3)(torch.zeros(4, 1, 3, 8, 8)).shape
        torch.Size([4, 1, 16, 16])
        """
        self.check_input(x)
        y = self._forward(x)
        if self.conserve:
            y = _conserve(y, self.centre_frame(x), self.scale)
        return y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def forward_core(self, x: torch.Tensor) -> torch.Tensor:
        """The output for the core of ``x``, whose spatial sides carry a halo.

        ``x`` has :attr:`receptive_radius` extra cells on each side of both spatial axes (as the
        inference engine's tiles and dask blocks do); the result is ``self(x)`` without the
        halo's outputs: ``(N, C, scale*(H - 2r), scale*(W - 2r))``, equal to the cropped full
        output to float32 rounding. Here it is exactly that crop; subclasses may skip computing
        the halo's outputs ("valid" convolutions, see :class:`~xsr.models.xsrnet.XSRNet`).

        Parameters
        ----------
        x : torch.Tensor
            A valid model input with ``H, W > 2 * receptive_radius``.

        Returns
        -------
        torch.Tensor
            The core's high-resolution output.

        Examples
        --------
        >>> import torch
        >>> from xsr.models.registry import get_model
        >>> model = get_model("fsrcnn", scale=2)
        >>> model.forward_core(torch.zeros(1, 1, 14, 12)).shape  # radius 4
        torch.Size([1, 1, 12, 8])
        """
        r, s = int(self.receptive_radius), self.scale
        if min(x.shape[-2:]) <= 2 * r:
            raise ValueError(
                f"forward_core needs frames larger than twice the receptive radius ({r}), got "
                f"{tuple(x.shape[-2:])}; call the model itself on smaller frames."
            )
        return crop_border(self(x), s * r)

    def _valid_core_applies(self, x: torch.Tensor) -> bool:
        """Whether a subclass's valid-convolution :meth:`forward_core` may run on ``x``.

        Not with ``conserve=True`` (the projection needs the whole output) nor on frames no
        larger than twice the receptive radius (the base version raises the clear error);
        ``x`` is checked as a model input.
        """
        if self.conserve:
            return False
        self.check_input(x)
        return min(x.shape[-2:]) > 2 * int(self.receptive_radius)

    def fuse_for_inference(self) -> SRModel:
        """Fold layers into an equivalent, faster form for inference (in place).

        The inference engine calls this on its own frozen copies of a model (never on the
        caller's module). The outputs equal the unfused model's to float32 rounding (about
        1e-6 relative); the state dict, and so the weights' sha256, is unchanged. The fused form
        is a snapshot of the weights: putting the model back in training mode
        (``model.train()``) or loading a state dict undoes it, and calling this again rebuilds
        it (do so after changing weights in place). The base class has nothing to fuse;
        subclasses with a faster equivalent form override :meth:`_fuse`.

        Returns
        -------
        SRModel
            ``self``.

        Examples
        --------
        >>> import torch
        >>> from xsr.models.registry import get_model
        >>> model = get_model("fsrcnn", scale=2, channels=1).eval()
        >>> x = torch.randn(2, 1, 8, 8)
        >>> with torch.no_grad():
        ...     y0 = model(x)
        ...     y1 = model.fuse_for_inference()(x)
        >>> bool(torch.allclose(y0, y1, atol=1e-5))
        True
        """
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, SRModel):
                    module._fuse()
        return self

    def _fuse(self) -> None:
        """Build this model's fused inference form (override; the default has none)."""

    def _drop_fused(self) -> None:
        """Drop the fused form of this model and of every SRModel inside it."""
        for module in self.modules():
            if isinstance(module, SRModel):
                module._unfuse()

    def _unfuse(self) -> None:
        """Drop the fused inference form (override together with :meth:`_fuse`)."""

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load weights (see :meth:`torch.nn.Module.load_state_dict`); drops any fused form.

        Parameters
        ----------
        state_dict : mapping
            The weights.
        strict, assign : bool
            As for :meth:`torch.nn.Module.load_state_dict`.

        Returns
        -------
        NamedTuple
            The missing and unexpected keys.

        Examples
        --------
        >>> from xsr.models.registry import get_model
        >>> model = get_model("fsrcnn", scale=2)
        >>> model.load_state_dict(model.state_dict())
        <All keys matched successfully>
        """
        self._drop_fused()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> SRModel:
        """Set training mode; entering it drops any fused inference form.

        See :meth:`fuse_for_inference`.

        Parameters
        ----------
        mode : bool, default True
            Training (True) or evaluation (False) mode.

        Returns
        -------
        SRModel
            ``self``.

        Examples
        --------
        >>> from xsr.models.registry import get_model
        >>> get_model("fsrcnn", scale=2).train().training
        True
        """
        if mode:
            self._drop_fused()
        return super().train(mode)

    def centre_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The low-resolution frame the output corresponds to: ``x`` itself or its centre frame.

        Parameters
        ----------
        x : torch.Tensor
            A valid model input.

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)``.

        Examples
        --------
        >>> import torch
        >>> from xsr.models.registry import get_model
        >>> m = get_model("srnet3d", scale=2)
        >>> m.centre_frame(torch.zeros(1, 1, 5, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
        """
        return x if self.window == 1 else x[:, :, self.time_radius]

    def check_input(self, x: Any) -> None:
        """Raise a clear error unless ``x`` is a valid input for this model.

        Parameters
        ----------
        x : torch.Tensor
            Candidate input.

        Raises
        ------
        TypeError
            If ``x`` is not a floating-point tensor.
        ValueError
            If the rank, the channel count or the window length is wrong.

        Examples
        --------
        >>> import torch
        >>> from xsr.models.registry import get_model
        >>> get_model("srcnn", scale=2).check_input(torch.zeros(1, 1, 8, 8))
        """
        name = self.arch
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: x must be a torch.Tensor, got {type(x).__name__}.")
        if not x.is_floating_point():
            raise TypeError(
                f"{name}: x must be a floating-point tensor, got dtype {x.dtype}; "
                "convert with x.float()."
            )
        if self.window == 1:
            if x.ndim != 4:
                hint = (
                    " (a movie with one frame? take x[:, :, 0])"
                    if x.ndim == 5
                    else " (add a batch axis with x[None])"
                    if x.ndim == 3
                    else ""
                )
                raise ValueError(
                    f"{name}: x must be an image batch (N, C, H, W) for this 2D model, "
                    f"got shape {tuple(x.shape)}{hint}."
                )
        else:
            if x.ndim != 5:
                raise ValueError(
                    f"{name}: x must be a movie batch (N, C, T, H, W) with T = window = "
                    f"{self.window}, got shape {tuple(x.shape)}."
                )
            if x.shape[2] != self.window:
                raise ValueError(
                    f"{name}: x has {x.shape[2]} frames along dim 2 but this model needs "
                    f"window = {self.window} frames (the output is the centre frame); pass "
                    f"x[:, :, t - {self.time_radius}: t + {self.time_radius + 1}]."
                )
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{name}: x has {x.shape[1]} channels (dim 1) but the model was built with "
                f"channels={self.channels}; variables are channels, so rebuild with "
                f"get_model({self.arch!r}, channels={x.shape[1]}, ...) or select the variables."
            )
        if x.shape[-1] < 1 or x.shape[-2] < 1 or x.shape[0] < 1:
            raise ValueError(f"{name}: x has an empty axis, shape {tuple(x.shape)}.")

    # -- costs --------------------------------------------------------------------------------
    def flops_per_output_pixel(self) -> float:
        """Floating-point operations per high-resolution output pixel, counted from the layers.

        Convolutions, transposed convolutions and the internal bicubic interpolation are
        counted (2 FLOPs per multiply-accumulate; activations, additions and pixel shuffles are
        not). The count is the asymptotic cost for large frames: three forward passes on
        ``meta`` tensors (no memory, no compute) of growing size fix the quadratic
        ``flops(n) = a n^2 + b n + c`` exactly, and ``a / scale^2`` is returned, so
        boundary padding does not bias the figure. The cost covers all ``channels`` of one
        output frame.

        Returns
        -------
        float
            FLOPs per output pixel.

        Examples
        --------
        >>> from xsr.models.registry import get_model
        >>> round(get_model("srnet3d", scale=2).flops_per_output_pixel() / 1e3)
        358
        """
        probe = copy.deepcopy(self).to("meta")
        probe.card = None
        sizes = (24, 48, 72)
        totals = []
        count = [0]

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            count[0] += _module_flops(module, inputs, output)

        for n in sizes:
            count[0] = 0
            handles = [m.register_forward_hook(hook) for m in probe.modules()]
            try:
                shape = (1, self.channels, n, n)
                if self.window > 1:
                    shape = (1, self.channels, self.window, n, n)
                with torch.no_grad():
                    probe(torch.empty(shape, device="meta"))
            finally:
                for handle in handles:
                    handle.remove()
            totals.append(count[0])
        (n1, n2, n3), (f1, f2, f3) = sizes, totals
        # Leading coefficient of the quadratic through the three points.
        a = ((f3 - f2) / (n3 - n2) - (f2 - f1) / (n2 - n1)) / (n3 - n1)
        return a / self.scale**2

    def parameter_count(self) -> int:
        """Number of parameters.

        Returns
        -------
        int
            Total number of elements of all parameters.

        Examples
        --------
        >>> from xsr.models.registry import get_model
        >>> get_model("bicubic", scale=2).parameter_count()
        0
        """
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, scale={self.scale}, window={self.window}, "
            f"channels={self.channels}, receptive_radius={self.receptive_radius}"
        )

"""The model contract: :class:`SRModel` and the layer helpers every architecture shares.

Every xsr network is a :class:`SRModel` (a :class:`torch.nn.Module`) that declares its ``arch``,
``config``, ``scale``, ``window``, ``time_radius``, ``receptive_radius`` and ``channels``
(see ``docs/explanation/architecture.md``). The receptive radius is *derived* from the layers by
the helpers of this module (kernel sizes, upsamplers, the internal bicubic), never hand-set, and
:meth:`SRModel.flops_per_output_pixel` is counted from the layers too.

Models are architecture and contract only: every inference rewrite (fused layers, valid
convolutions on tiles, layouts, bfloat16 guards) lives in the engine (:mod:`xsr.engine.fast`),
applied to the engine's own copy. This module imports torch only (never xarray or dask).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xsr.models.consistency import conserve as _conserve

__all__ = [
    "BicubicUpsample",
    "SRModel",
    "bicubic_radius",
    "check_scale",
    "conv_radius",
    "hr_to_lr_radius",
    "init_conv",
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
    site : dict of str to torch.Tensor, or None
        A field model's site detail per variable (see :class:`~xsr.models.card.ModelCard`),
        set by fine-tuning with ``site=True`` and by ``load_model``; ``None`` for none.

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
        self.site: dict[str, torch.Tensor] | None = None

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

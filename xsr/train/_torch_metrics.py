"""Per-sample image metrics in torch, for monitoring training on the device.

Definitions follow the project conventions (and :mod:`xsr.metrics`): every metric is computed per
sample (one frame of one variable) and PSNR always takes an explicit data range. SSIM is the
Wang et al. (2004) index with an 11-tap Gaussian window (sigma 1.5), population covariances,
``K1=0.01``, ``K2=0.03``, averaged over the *valid* region (no padding): the same numbers as
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=...)``; the tests check this.
"""

from __future__ import annotations

import torch

__all__ = ["mae", "mse", "psnr", "ssim"]

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * 1.5 + 0.5): the window skimage uses for sigma=1.5
_K1 = 0.01
_K2 = 0.03


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` to ``(N, C, H*W)``."""
    if x.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], x.shape[1], -1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean(dim=-1)
    m = _flat(mask).to(values.dtype)
    return (values * m).sum(dim=-1) / m.sum(dim=-1).clamp_min(1.0)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample and channel.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, C, H, W)`` tensors of the same shape.
    mask : torch.Tensor, optional
        Boolean ``(N, C, H, W)``; only ``True`` pixels count (NaN-masked data).

    Returns
    -------
    torch.Tensor
        ``(N, C)``.

    Examples
    --------
    >>> import torch
    >>> mse(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    tensor([[1.]])
    """
    diff = _flat(pred) - _flat(target)
    if mask is not None:
        diff = torch.where(_flat(mask), diff, torch.zeros_like(diff))
    return _masked_mean(diff**2, mask)


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per sample and channel.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, C, H, W)`` tensors of the same shape.
    mask : torch.Tensor, optional
        Boolean ``(N, C, H, W)``; only ``True`` pixels count.

    Returns
    -------
    torch.Tensor
        ``(N, C)``.

    Examples
    --------
    >>> import torch
    >>> mae(torch.zeros(1, 1, 2, 2), -2 * torch.ones(1, 1, 2, 2))
    tensor([[2.]])
    """
    diff = _flat(pred) - _flat(target)
    if mask is not None:
        diff = torch.where(_flat(mask), diff, torch.zeros_like(diff))
    return _masked_mean(diff.abs(), mask)


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor | float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per sample and channel, for a stated data range.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, C, H, W)`` tensors of the same shape.
    data_range : float or torch.Tensor
        Peak-to-peak range of the data, a scalar or one value per channel ``(C,)``.
    mask : torch.Tensor, optional
        Boolean ``(N, C, H, W)``; only ``True`` pixels count.

    Returns
    -------
    torch.Tensor
        ``(N, C)``; ``inf`` where the error is exactly zero.

    Examples
    --------
    >>> import torch
    >>> psnr(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), data_range=10.0)
    tensor([[20.]])
    """
    err = mse(pred, target, mask)
    rng = torch.as_tensor(data_range, dtype=err.dtype, device=err.device)
    if rng.ndim == 1:
        rng = rng[None, :]
    return 10.0 * torch.log10(rng**2 / err)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-(r**2) / (2 * _SSIM_SIGMA**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor | float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Structural similarity per sample and channel (Gaussian window, valid region).

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, C, H, W)`` tensors of the same shape, finite. Frames smaller than the 11-pixel
        window are compared with a window cropped to the frame.
    data_range : float or torch.Tensor
        Peak-to-peak range of the data, a scalar or one value per channel ``(C,)``.
    mask : torch.Tensor, optional
        Boolean ``(N, C, H, W)`` of valid pixels. As in :func:`xsr.metrics.ssim_frames`, the
        local statistics become mask-normalised Gaussian averages over valid pixels and the
        map is averaged over valid pixels only.

    Returns
    -------
    torch.Tensor
        ``(N, C)``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x, data_range=1.0)
    tensor([[1.],
            [1.]])
    """
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} and {tuple(target.shape)}")
    n, c, h, w = pred.shape
    dtype = torch.promote_types(pred.dtype, torch.float32)
    x = pred.to(dtype).reshape(n * c, 1, h, w)
    y = target.to(dtype).reshape(n * c, 1, h, w)
    g = _gaussian_window(dtype, pred.device)
    ry = min(_SSIM_RADIUS, (h - 1) // 2)
    rx = min(_SSIM_RADIUS, (w - 1) // 2)
    gy = g[_SSIM_RADIUS - ry : _SSIM_RADIUS + ry + 1]
    gx = g[_SSIM_RADIUS - rx : _SSIM_RADIUS + rx + 1]
    gy = (gy / gy.sum()).tolist()
    gx = (gx / gx.sum()).tolist()

    def blur(t: torch.Tensor) -> torch.Tensor:
        # Separable "valid" Gaussian as weighted sums of shifted slices: in float64 this is
        # several times faster than conv2d with one input channel on CPU.
        ny, nx = t.shape[-2] - len(gy) + 1, t.shape[-1] - len(gx) + 1
        rows = sum(wk * t[..., k : k + ny, :] for k, wk in enumerate(gy))
        return sum(wk * rows[..., k : k + nx] for k, wk in enumerate(gx))

    valid = None
    norm: torch.Tensor | float = 1.0
    if mask is not None and not bool(mask.all()):
        valid = mask.reshape(n * c, 1, h, w)
        x = torch.where(valid, x, torch.zeros_like(x))
        y = torch.where(valid, y, torch.zeros_like(y))
        weight = blur(valid.to(dtype))
        norm = torch.where(weight > 1e-12, 1.0 / weight.clamp_min(1e-12), torch.nan)
    mu_x, mu_y = blur(x) * norm, blur(y) * norm
    sxx = blur(x * x) * norm - mu_x**2
    syy = blur(y * y) * norm - mu_y**2
    sxy = blur(x * y) * norm - mu_x * mu_y
    rng = torch.as_tensor(data_range, dtype=dtype, device=pred.device)
    rng = rng.reshape(1, -1).expand(n, c).reshape(n * c, 1, 1, 1) if rng.ndim else rng
    c1 = (_K1 * rng) ** 2
    c2 = (_K2 * rng) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    if valid is None:
        return s.mean(dim=(-3, -2, -1)).reshape(n, c).to(pred.dtype)
    keep = valid[..., ry : h - ry, rx : w - rx] & torch.isfinite(s)
    total = torch.where(keep, s, torch.zeros_like(s)).sum(dim=(-3, -2, -1))
    out = total / keep.sum(dim=(-3, -2, -1))
    return out.reshape(n, c).to(pred.dtype)

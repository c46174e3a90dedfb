"""Hard consistency: make ``block_mean(output) == lowres`` hold exactly (to float precision).

:func:`conserve` returns ``output + nearest_upsample(lowres - block_mean(output))``. This is the
orthogonal projection of ``output`` onto the set of fields whose block means are ``lowres``; when
the truth lies in that set (low resolution made by block means, xsr's ``coarsen``) the
projection can only move the output closer to it, so the consistency layer never lowers PSNR.
Block means commute with xsr's per-channel affine normalisation, so it may be applied to
normalised or to physical fields alike.
"""

from __future__ import annotations

import torch

__all__ = ["block_mean", "conserve", "nearest_upsample"]


def _check_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    return scale


def block_mean(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean over non-overlapping ``scale x scale`` blocks of the last two axes.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., scale*H, scale*W)``.
    scale : int
        Block size.

    Returns
    -------
    torch.Tensor
        ``(..., H, W)``.

    Raises
    ------
    ValueError
        If the last two axes are not multiples of ``scale``.

    Examples
    --------
    >>> import torch
    >>> block_mean(torch.arange(16.0).reshape(4, 4), 2)
    tensor([[ 2.5000,  4.5000],
            [10.5000, 12.5000]])
    """
    s = _check_scale(scale)
    *lead, hh, ww = x.shape
    if hh % s or ww % s:
        raise ValueError(
            f"block_mean: the last two axes of x {tuple(x.shape)} must be multiples of scale={s}."
        )
    return x.reshape(*lead, hh // s, s, ww // s, s).mean(dim=(-3, -1))


def nearest_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Repeat every pixel of the last two axes ``scale`` times in each direction.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    scale : int
        Factor.

    Returns
    -------
    torch.Tensor
        ``(..., scale*H, scale*W)``.

    Examples
    --------
    >>> import torch
    >>> nearest_upsample(torch.tensor([[1.0, 2.0]]), 2)
    tensor([[1., 1., 2., 2.],
            [1., 1., 2., 2.]])
    """
    s = _check_scale(scale)
    *lead, h, w = x.shape
    return x[..., :, None, :, None].expand(*lead, h, s, w, s).reshape(*lead, h * s, w * s)


def conserve(output: torch.Tensor, lowres: torch.Tensor, scale: int) -> torch.Tensor:
    """Correct ``output`` so that its block means equal ``lowres`` (mass conservation).

    Parameters
    ----------
    output : torch.Tensor
        High-resolution field ``(..., scale*H, scale*W)``.
    lowres : torch.Tensor
        Low-resolution field ``(..., H, W)`` with the same leading axes.
    scale : int
        Upscaling factor.

    Returns
    -------
    torch.Tensor
        ``output + nearest_upsample(lowres - block_mean(output, scale), scale)``; differentiable,
        so it can sit inside a model during training.

    Raises
    ------
    ValueError
        If the shapes do not match ``scale``.

    Examples
    --------
    >>> import torch
    >>> y = torch.rand(1, 1, 4, 4)
    >>> x = torch.rand(1, 1, 2, 2)
    >>> torch.allclose(block_mean(conserve(y, x, 2), 2), x, atol=1e-6)
    True
    """
    s = _check_scale(scale)
    expected = (*lowres.shape[:-2], lowres.shape[-2] * s, lowres.shape[-1] * s)
    if tuple(output.shape) != expected:
        raise ValueError(
            f"conserve: output has shape {tuple(output.shape)} but lowres {tuple(lowres.shape)} "
            f"at scale={s} needs {expected}."
        )
    return output + nearest_upsample(lowres.to(output.dtype) - block_mean(output, s), s)

"""The radius helpers agree with what the layers actually do."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch import nn

from xsr.models.base import (
    BicubicUpsample,
    bicubic_radius,
    conv_radius,
    hr_to_lr_radius,
    transposed_conv_radius,
)
from xsr.models.fsrcnn import _deconv_padding


def _reach(fine: torch.Tensor, scale: int, a: int) -> int:
    """Largest low-resolution-cell distance from ``a`` of a changed fine pixel (1D profile)."""
    idx = torch.nonzero(fine.abs() > 1e-12).flatten()
    return int((idx // scale - a).abs().max())


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8))
def test_bicubic_radius_is_exact(scale):
    n, a = 15, 7
    x = torch.zeros(1, 1, 1, n, dtype=torch.float64)
    x[..., a] = 1.0
    fine = F.interpolate(x, size=(1, n * scale), mode="bicubic", align_corners=False)[0, 0, 0]
    assert _reach(fine, scale, a) == bicubic_radius(scale)
    assert BicubicUpsample(scale).radius == bicubic_radius(scale)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 11))
def test_transposed_conv_radius_is_exact(scale, kernel):
    if kernel < scale:
        kernel = scale
    if scale == 1 and kernel % 2 == 0:
        kernel += 1  # refused by fsrcnn: an even kernel cannot keep the size at stride 1
    padding, output_padding = _deconv_padding(kernel, scale)
    conv = nn.ConvTranspose1d(
        1, 1, kernel, stride=scale, padding=padding, output_padding=output_padding, bias=False
    ).double()
    nn.init.constant_(conv.weight, 1.0)
    n, a = 17, 8
    x = torch.zeros(1, 1, n, dtype=torch.float64)
    x[..., a] = 1.0
    fine = conv(x)[0, 0]
    assert fine.shape[-1] == n * scale
    assert _reach(fine, scale, a) == transposed_conv_radius(kernel, scale, padding)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 40), st.integers(1, 8))
def test_hr_to_lr_radius_is_the_smallest_bound(radius_hr, scale):
    # fine pixels of cell 0 are 0..scale-1; they reach fine pixels within radius_hr
    cells = {(p + d) // scale for p in range(scale) for d in (-radius_hr, radius_hr)}
    assert max(abs(c) for c in cells) == hr_to_lr_radius(radius_hr, scale)


def test_conv_radius():
    layers = [nn.Conv2d(1, 2, 5, padding=2), nn.PReLU(), nn.Conv2d(2, 2, 3, dilation=2)]
    assert conv_radius(layers) == 2 + 2
    assert conv_radius([nn.Conv3d(1, 1, (3, 1, 1))]) == 0  # time kernels are not spatial
    with pytest.raises(ValueError, match="stride-1"):
        conv_radius([nn.Conv2d(1, 1, 3, stride=2)])


def test_bicubic_upsample_handles_movies():
    x = torch.randn(2, 3, 4, 5, 6)
    up = BicubicUpsample(2)(x)
    assert up.shape == (2, 3, 4, 10, 12)
    torch.testing.assert_close(up[:, :, 1], BicubicUpsample(2)(x[:, :, 1]))

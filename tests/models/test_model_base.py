"""The radius helpers agree with what the layers actually do."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch import nn
from toys import randomise

from xsr.models.base import (
    BicubicUpsample,
    bicubic_radius,
    conv_radius,
    hr_to_lr_radius,
    transposed_conv_radius,
)
from xsr.models.fsrcnn import _deconv_padding
from xsr.models.registry import get_model


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


@pytest.mark.parametrize("arch", ["fsrcnn", "srcnn", "srnet3d"])
def test_forward_core_is_the_cropped_forward(arch):
    from xsr.models.registry import get_model

    model = get_model(arch, scale=2).eval()
    r = model.receptive_radius
    shape = (1, 1, 2 * r + 3, 2 * r + 4)
    if model.window > 1:
        shape = (1, 1, model.window, *shape[2:])
    x = torch.randn(shape)
    with torch.no_grad():
        core = model.forward_core(x)
        assert torch.equal(core, model(x)[..., 2 * r : -2 * r, 2 * r : -2 * r])
    assert core.shape[-2:] == (6, 8)


def test_like_weight_layout_only_restrides_one_channel_under_channels_last_weights():
    from xsr.models.base import like_weight_layout

    cl, cl3 = torch.channels_last, torch.channels_last_3d
    w4 = torch.zeros(4, 2, 3, 3).contiguous(memory_format=cl)
    w5 = torch.zeros(4, 2, 3, 3, 3).contiguous(memory_format=cl3)
    x4, x5 = torch.randn(2, 1, 5, 6), torch.randn(2, 1, 3, 5, 6)
    y4, y5 = like_weight_layout(x4, w4), like_weight_layout(x5, w5)
    assert y4.is_contiguous(memory_format=cl)
    assert y4.stride()[1] == 1
    assert y5.is_contiguous(memory_format=cl3)
    assert y5.stride()[1] == 1
    assert y5.data_ptr() == x5.data_ptr()
    assert torch.equal(y5, x5)
    unchanged = [
        (torch.randn(2, 3, 5, 6), w4),  # several channels: their layout is unambiguous
        (x4, torch.zeros(4, 2, 3, 3)),  # plain weights
        (x4, w5),  # ranks differ
        (torch.randn(2, 1, 6, 5).transpose(-1, -2), w4),  # not contiguous
        (torch.randn(5, 6), w4),  # not a convolution input
    ]
    for x, w in unchanged:
        assert like_weight_layout(x, w) is x


def test_prelu_runs_few_channels_in_float32_under_bfloat16():
    from xsr.models.base import BF16_PRELU_MIN_CHANNELS, PReLU

    for channels in (1, 8, BF16_PRELU_MIN_CHANNELS):
        act = PReLU(channels, init=0.25)
        with torch.no_grad():
            act.weight.copy_(torch.linspace(-0.5, 1.5, channels))
        assert act.state_dict().keys() == torch.nn.PReLU(channels).state_dict().keys()
        x = torch.randn(2, channels, 5, 6).contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(act(x), F.prelu(x, act.weight), rtol=0, atol=0)
        xb = x.bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = act(xb)
        if channels < BF16_PRELU_MIN_CHANNELS:
            assert y.dtype == torch.float32
            torch.testing.assert_close(y, F.prelu(xb.float(), act.weight), rtol=0, atol=0)
        else:  # torch's own bfloat16 kernel
            assert y.dtype == torch.bfloat16
            torch.testing.assert_close(
                y.float(), F.prelu(xb.float(), act.weight), rtol=1e-2, atol=1e-2
            )


def test_one_channel_float32_only_under_cpu_autocast():
    from xsr.models.base import one_channel_float32

    one, two = torch.nn.Conv3d(1, 4, 3), torch.nn.Conv3d(2, 4, 3)
    x1, x2 = torch.randn(1, 1, 4, 5, 5), torch.randn(1, 2, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(one_channel_float32(one, x1, one), one(x1), rtol=0, atol=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y1 = one_channel_float32(one, x1, one)
            y2 = one_channel_float32(two, x2, two)
            assert torch.is_autocast_enabled("cpu")  # restored after the float32 call
        assert y1.dtype == torch.float32
        torch.testing.assert_close(y1, one(x1), rtol=0, atol=0)
        assert y2.dtype == torch.bfloat16


@pytest.mark.parametrize("arch", ["fsrcnn", "srnet3d", "xsrnet"])
def test_bfloat16_core_stays_close_to_float32(arch):
    """The float32 detours under bfloat16 autocast keep the result within bfloat16's error."""
    from xsr.engine.fast import prepare

    model = prepare(randomise(get_model(arch, scale=2, channels=1)))
    r = model.receptive_radius
    shape = (2, 1, *((model.window,) if model.window > 1 else ()), 2 * r + 6, 2 * r + 5)
    x = torch.rand(shape)
    with torch.inference_mode():
        ref = model.forward_core(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model.forward_core(x)
    assert y.shape == ref.shape
    err = float((y.float() - ref).abs().max() / ref.abs().max())
    assert err < 0.05


def test_prelu_keeps_a_bfloat16_model_in_bfloat16_without_autocast():
    from xsr.models.base import PReLU

    act = PReLU(8, init=0.25).bfloat16()
    x = torch.randn(2, 8, 5, 6).bfloat16()
    y = act(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, F.prelu(x, act.weight), rtol=0, atol=0)

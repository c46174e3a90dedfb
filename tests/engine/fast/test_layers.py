"""Tests of :mod:`xsr.engine.fast.layers` (layer-level rewrites)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xsr.engine.fast.layers import (
    BF16_PRELU_MIN_CHANNELS,
    DetourPReLU,
    crop_border,
    like_weight_layout,
    one_channel_float32,
    swap_prelus,
)


def test_crop_border() -> None:
    x = torch.arange(30.0).reshape(1, 5, 6)
    assert torch.equal(crop_border(x, 1), x[:, 1:4, 1:5])
    assert crop_border(x, 0) is not None
    assert crop_border(x, 0).shape == x.shape


def test_like_weight_layout_only_restrides_one_channel_under_channels_last_weights():
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
    for channels in (1, 8, BF16_PRELU_MIN_CHANNELS):
        act = DetourPReLU(channels, init=0.25)
        with torch.no_grad():
            act.weight.copy_(torch.linspace(-0.5, 1.5, channels))
        assert act.state_dict().keys() == nn.PReLU(channels).state_dict().keys()
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


def test_prelu_keeps_a_bfloat16_model_in_bfloat16_without_autocast():
    act = DetourPReLU(8, init=0.25).bfloat16()
    x = torch.randn(2, 8, 5, 6).bfloat16()
    y = act(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, F.prelu(x, act.weight), rtol=0, atol=0)


def test_swap_prelus_keeps_weights_and_state_dict():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.PReLU(4, init=0.3), nn.ReLU())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    swap_prelus(model)
    assert type(model[1]) is DetourPReLU
    assert type(model[2]) is nn.ReLU
    assert model.state_dict().keys() == state.keys()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_one_channel_float32_only_under_cpu_autocast():
    one, two = nn.Conv3d(1, 4, 3), nn.Conv3d(2, 4, 3)
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

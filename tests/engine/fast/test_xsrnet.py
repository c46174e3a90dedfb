"""Tests of :mod:`xsr.engine.fast.xsrnet` (valid convolutions on tiles)."""

from __future__ import annotations

import pytest
import torch
from toys import assert_first_layer_channels_last, crop_core, fast_form

from xsr.models.registry import get_model


@pytest.mark.parametrize(
    ("scale", "window", "blocks", "channels", "conserve"),
    [(2, 3, 3, 1, False), (4, 3, 3, 1, False), (3, 1, 1, 2, False), (2, 1, 0, 1, False),
     (2, 3, 2, 1, True)],
)  # fmt: skip
def test_forward_core_skips_the_halo_and_equals_the_cropped_forward(
    scale: int, window: int, blocks: int, channels: int, conserve: bool
) -> None:
    torch.manual_seed(scale + blocks)
    model = get_model(
        "xsrnet", scale=scale, window=window, blocks=blocks, channels=channels, conserve=conserve
    ).eval()
    shape = (2, channels, window, 23, 20) if window > 1 else (2, channels, 23, 20)
    x = torch.randn(shape)
    fast = fast_form(model)
    with torch.no_grad():
        full = crop_core(model(x), model)
        with torch.profiler.profile(record_shapes=True) as prof:
            core = fast.forward_core(x)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5)
    convs = [e.input_shapes[0][-1] for e in prof.events() if e.name == "aten::convolution"]
    if not conserve:  # each layer computes only what the next needs: inputs shrink by 2
        assert convs == [20 - 2 * i for i in range(2 + 2 * blocks)]


@pytest.mark.parametrize(
    ("scale", "window", "blocks", "base_radius"), [(2, 1, 3, 3), (4, 3, 0, 5), (3, 1, 1, 1)]
)
def test_linear_base_core_equals_the_cropped_forward(
    scale: int, window: int, blocks: int, base_radius: int
) -> None:
    torch.manual_seed(blocks)
    model = get_model(
        "xsrnet", scale=scale, window=window, blocks=blocks, base="linear", base_radius=base_radius
    ).eval()
    with torch.no_grad():  # a base that is not bicubic any more
        model.base.conv.weight.add_(0.01 * torch.randn_like(model.base.conv.weight))
        model.base.conv.bias.fill_(0.3)
    x = torch.randn((2, 1, window, 25, 22) if window > 1 else (2, 1, 25, 22))
    with torch.no_grad():
        full = crop_core(model(x), model)
        core = fast_form(model).forward_core(x)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5)


def test_linear_base_stays_float32_under_bfloat16_autocast() -> None:
    model = get_model("xsrnet", scale=2, window=1, blocks=1, base="linear").eval()
    with torch.no_grad():
        model.tail.weight.zero_()  # no detail: the output is the base alone
    x = 1000 + torch.randn(1, 1, 20, 20)  # bfloat16 would round these to steps of 4
    with torch.no_grad():
        exact = crop_core(model.base(x), model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            core = fast_form(model).forward_core(x)
            base = model.base(x)
    assert base.dtype == torch.float32
    assert float((core - exact).abs().max()) < 1e-3


def test_forward_core_needs_frames_larger_than_the_halo() -> None:
    fast = fast_form(get_model("xsrnet", scale=2, window=1))
    with pytest.raises(ValueError, match="twice the receptive radius"):
        fast.forward_core(torch.zeros(1, 1, 16, 30))


@pytest.mark.parametrize("core", [False, True])
def test_single_frame_runs_channels_last_under_the_engine(core: bool) -> None:
    """One variable, one frame: the head outputs channels-last with the engine's weights."""
    config = {"scale": 2, "window": 1, "features": 8, "blocks": 1}
    r = get_model("xsrnet", **config).receptive_radius
    x = torch.randn(2, 1, 2 * r + 4, 2 * r + 5)
    assert_first_layer_channels_last("xsrnet", config, "head.1", x, core=core)

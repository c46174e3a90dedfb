"""Tests of :mod:`xsr.engine.fast.srnet3d` (valid spatial convolutions on tiles)."""

from __future__ import annotations

import pytest
import torch
from toys import assert_first_layer_channels_last, crop_core, fast_form, randomise

from xsr.models.registry import get_model


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"channels": 2, "residual": True},
        {"pad_mode": "zeros", "output_activation": "prelu"},
        {"conserve": True},
    ],
)
def test_forward_core_equals_the_cropped_forward(scale: int, config: dict) -> None:
    model = randomise(get_model("srnet3d", scale=scale, features=8, shrink=4, **config)).eval()
    r, s, c = model.receptive_radius, scale, model.channels
    x = torch.randn(2, c, 5, 2 * r + 5, 2 * r + 4)
    with torch.no_grad():
        full = crop_core(model(x), model)
        core = fast_form(model).forward_core(x)
    assert core.shape == full.shape == (2, c, 5 * s, 4 * s)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5 * float(full.abs().max()))


def test_forward_core_runs_the_spatial_convolutions_valid() -> None:
    """No margin padding and no spatial padding: the valid layers see the shrunken frame."""
    model = get_model("srnet3d", scale=2, features=8, shrink=4).eval()
    fast = fast_form(model)
    r = model.receptive_radius
    seen = []
    fast.model.collapse[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    x = torch.randn(1, 1, 5, 2 * r + 3, 2 * r + 3)
    with torch.no_grad():
        fast(x)
        fast.forward_core(x)
    fine = 2 * (2 * r + 3)
    extract = 5  # 5x5, 1x1, then three 3x3 convolutions: 2 + 0 + 1 + 1 + 1 fine cells a side
    assert seen[0][-2:] == (fine + 2 * model.margin,) * 2  # the padded forward
    assert seen[1][-2:] == (fine - 2 * extract,) * 2  # the core: valid throughout
    assert seen[1][2] == 5  # time keeps its padding
    with pytest.raises(ValueError, match="larger than twice the receptive radius"):
        fast.forward_core(torch.zeros(1, 1, 5, 2 * r, 2 * r + 3))


@pytest.mark.parametrize("core", [False, True])
def test_one_variable_runs_channels_last_under_the_engine(core: bool) -> None:
    """With the engine's channels-last weights, one variable's first layer outputs channels-last
    (otherwise the next layer copies its 32-channel output); results are equal."""
    config = {"scale": 2, "features": 8, "shrink": 4}
    r = get_model("srnet3d", **config).receptive_radius
    x = torch.randn(2, 1, 5, 2 * r + 4, 2 * r + 5)
    assert_first_layer_channels_last("srnet3d", config, "extract.1", x, core=core)

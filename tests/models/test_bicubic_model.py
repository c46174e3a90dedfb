"""The parameter-free bicubic baseline obeys the model contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xsr.models.registry import get_model


@pytest.mark.parametrize("scale", [1, 2, 3, 5])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (4, 7)])
def test_output_shape(checks, scale, h, w):
    checks.output_shape(get_model("bicubic", scale=scale, channels=2), h, w)


def test_is_torch_bicubic():
    x = torch.randn(2, 3, 5, 6)
    got = get_model("bicubic", scale=3, channels=3)(x)
    torch.testing.assert_close(
        got, F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    )
    torch.testing.assert_close(get_model("bicubic", scale=1, channels=3)(x), x, rtol=0, atol=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius(checks, scale):
    checks.receptive_radius_is_tight_bound(get_model("bicubic", scale=scale))


def test_no_parameters_and_rebuilds(checks):
    model = get_model("bicubic", scale=2)
    assert model.parameter_count() == 0
    checks.rebuilds_identically(model)
    assert model.flops_per_output_pixel() == 32.0  # 16 taps, one multiply-add each

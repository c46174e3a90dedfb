"""xsrnet: xsr's own compact network, its costs and its contract."""

from __future__ import annotations

import pytest
import torch

from xsr.models.base import BicubicUpsample
from xsr.models.registry import get_model


@pytest.mark.parametrize("window", [1, 3, 5])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7)])
def test_output_shape(checks, window, scale, h, w):
    checks.output_shape(get_model("xsrnet", scale=scale, window=window, blocks=1), h, w)


def test_window_layout():
    assert get_model("xsrnet").window == 3
    with pytest.raises(ValueError, match="image batch"):
        get_model("xsrnet", window=1)(torch.zeros(1, 1, 3, 4, 4))
    with pytest.raises(ValueError, match="window must be odd"):
        get_model("xsrnet", window=2)


@pytest.mark.parametrize("seed", range(5))
def test_untrained_model_starts_close_to_bicubic(seed):
    # The residual branch's last layer starts at gain 0.1: the deviation from bicubic is about a
    # tenth of the signal (seeded: weights and input are random).
    torch.manual_seed(seed)
    model = get_model("xsrnet", scale=2).eval()
    x = torch.randn(4, 1, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
        bic = model.base(x[:, :, 1])
    assert (y - bic).std() < 0.2 * bic.std()


def test_icnr_tail_has_equal_subpixels():
    model = get_model("xsrnet", scale=3, channels=2)
    w = model.tail.weight.detach().reshape(2, 9, *model.tail.weight.shape[1:])
    torch.testing.assert_close(w, w[:, :1].expand_as(w))


def test_gradients(checks):
    checks.gradients_reach_every_parameter(get_model("xsrnet", scale=2, channels=2))


@pytest.mark.parametrize(("scale", "window", "blocks"), [(2, 3, 3), (3, 1, 1), (4, 5, 0)])
def test_receptive_radius(checks, scale, window, blocks):
    model = get_model("xsrnet", scale=scale, window=window, blocks=blocks)
    checks.receptive_radius_is_tight_bound(model)


@pytest.mark.parametrize("scale", [2, 4])
def test_overfits_one_batch(checks, scale):
    first, last = checks.overfit_one_batch(get_model("xsrnet", scale=scale))
    assert last < 0.2 * first


def test_config_rebuilds(checks):
    checks.rebuilds_identically(get_model("xsrnet", scale=3, window=5, features=8, blocks=2))


@pytest.mark.parametrize("scale", [2, 4])
def test_ten_times_cheaper_than_srnet3d(scale):
    cheap = get_model("xsrnet", scale=scale).flops_per_output_pixel()
    report = get_model("srnet3d", scale=scale).flops_per_output_pixel()
    assert 10 * cheap <= report


def test_linear_base_starts_as_bicubic_and_rebuilds(checks):
    model = get_model("xsrnet", scale=2, window=1, base="linear").eval()
    x = torch.randn(2, 1, 20, 20)
    with torch.no_grad():  # no detail at the start; the filter is bicubic away from the edges
        torch.testing.assert_close(
            model(x)[..., 8:-8, 8:-8], BicubicUpsample(2)(x)[..., 8:-8, 8:-8], atol=1e-5, rtol=0
        )
    checks.rebuilds_identically(get_model("xsrnet", scale=3, base="linear", base_radius=2))
    assert get_model("xsrnet", scale=2, base="linear", base_radius=5).receptive_radius == 8
    assert (
        get_model("xsrnet", scale=2, blocks=0, base="linear", base_radius=5).receptive_radius == 5
    )


def test_bad_base_is_refused():
    with pytest.raises(ValueError, match="base must be 'bicubic' or 'linear'"):
        get_model("xsrnet", base="cubic")
    with pytest.raises(ValueError, match="radius must be an integer >= 0"):
        get_model("xsrnet", base="linear", base_radius=-1)

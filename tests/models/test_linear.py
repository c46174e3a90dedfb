"""The linear per-phase filter obeys the model contract and is the filter it says it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xsr.models.linear import Linear, symmetric_pad
from xsr.models.registry import get_model


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (4, 7)])
def test_output_shape(checks, scale, h, w):
    checks.output_shape(get_model("linear", scale=scale, channels=2, radius=2), h, w)


@pytest.mark.parametrize(("scale", "radius"), [(2, 3), (4, 1), (3, 0)])
def test_receptive_radius(checks, scale, radius):
    checks.receptive_radius_is_tight_bound(get_model("linear", scale=scale, radius=radius))


def test_gradients_and_rebuild(checks):
    model = get_model("linear", scale=2, channels=2, radius=1, bias=True)
    checks.gradients_reach_every_parameter(model)
    checks.rebuilds_identically(model)
    assert model.parameter_count() == 2 * 4 * (9 + 1)
    assert get_model("linear", radius=1, bias=False).parameter_count() == 4 * 9


def test_flops_count_the_window():
    # one multiply-add per window cell per fine pixel, per variable
    assert get_model("linear", scale=2, radius=3).flops_per_output_pixel() == 2 * 49
    assert get_model("linear", scale=4, channels=3, radius=1).flops_per_output_pixel() == 3 * 18


def test_symmetric_pad_is_numpy_symmetric():
    x = torch.arange(12.0).reshape(1, 3, 4)
    for r in (0, 1, 3, 5):
        want = np.pad(x.numpy(), ((0, 0), (r, r), (r, r)), mode="symmetric")
        np.testing.assert_array_equal(symmetric_pad(x, r).numpy(), want)


def test_forward_is_the_phase_filter():
    """Fine pixel (i, j) of cell (p, q) = sum of filter (i, j) over the window around (p, q)."""
    torch.manual_seed(0)
    model = Linear(scale=2, radius=1).double().eval()
    x = torch.randn(1, 1, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
    xp = np.pad(x[0, 0].numpy(), 1, mode="symmetric")
    f = model.filters()[0].numpy()
    b = model.conv.bias.detach().numpy().reshape(2, 2)
    for p, q, i, j in [(0, 0, 0, 0), (2, 3, 1, 0), (4, 5, 1, 1), (1, 4, 0, 1)]:
        want = (xp[p : p + 3, q : q + 3] * f[i, j]).sum() + b[i, j]
        assert float(y[0, 0, 2 * p + i, 2 * q + j]) == pytest.approx(want, rel=1e-12)


def test_variables_do_not_mix():
    model = Linear(scale=2, channels=2, radius=1).eval()
    x = torch.randn(1, 2, 6, 6)
    x2 = x.clone()
    x2[:, 1] += 1.0
    with torch.no_grad():
        assert torch.equal(model(x)[:, 0], model(x2)[:, 0])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_radius(bad):
    with pytest.raises(ValueError, match="radius must be an integer"):
        Linear(radius=bad)

"""Hard consistency: block means of the output equal the input, at no PSNR cost."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from xsr.models.consistency import block_mean, conserve, nearest_upsample
from xsr.models.registry import get_model

shapes = st.tuples(
    st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4)
)


def _pair(n, c, h, w, s, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, c, h * s, w * s, generator=gen, dtype=dtype) * 3 + 1
    x = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    return y, x


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_block_mean_of_result_is_lowres(shape, seed):
    n, c, h, w, s = shape
    for dtype, tol in ((torch.float32, 2e-6), (torch.float64, 1e-13)):
        y, x = _pair(n, c, h, w, s, seed, dtype)
        out = conserve(y, x, s)
        torch.testing.assert_close(F.avg_pool2d(out, s), x, rtol=0, atol=tol * 8)
        torch.testing.assert_close(block_mean(out, s), x, rtol=0, atol=tol * 8)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_identity_when_already_consistent(shape, seed):
    n, c, h, w, s = shape
    y, _ = _pair(n, c, h, w, s, seed)
    torch.testing.assert_close(conserve(y, block_mean(y, s), s), y, rtol=0, atol=0)
    torch.testing.assert_close(conserve(y, F.avg_pool2d(y, s), s), y, rtol=0, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_never_moves_away_from_a_coarsened_truth(shape, seed):
    """Projection onto the consistent set: the error to any consistent truth cannot grow."""
    n, c, h, w, s = shape
    truth, _ = _pair(n, c, h, w, s, seed, torch.float64)
    guess = truth + torch.randn(truth.shape, dtype=torch.float64) + 0.5
    fixed = conserve(guess, block_mean(truth, s), s)
    assert F.mse_loss(fixed, truth) <= F.mse_loss(guess, truth) + 1e-12


def test_nearest_upsample_and_block_mean_are_adjoint_inverse():
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(block_mean(nearest_upsample(x, 3), 3), x)
    torch.testing.assert_close(nearest_upsample(x, 2), F.interpolate(x, scale_factor=2))


def test_differentiable():
    y = torch.randn(1, 1, 4, 4, requires_grad=True)
    conserve(y, torch.randn(1, 1, 2, 2), 2).sum().backward()
    assert y.grad is not None


def test_bad_shapes():
    with pytest.raises(ValueError, match="needs"):
        conserve(torch.zeros(1, 1, 5, 4), torch.zeros(1, 1, 2, 2), 2)
    with pytest.raises(ValueError, match="multiples of scale"):
        block_mean(torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="positive integer"):
        conserve(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), 0)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("bicubic", {"scale": 3}),
        ("srcnn", {"scale": 2}),
        ("fsrcnn", {"scale": 2, "variant": "original"}),
        ("srnet3d", {"scale": 2, "features": 8, "shrink": 4}),
        ("xsrnet", {"scale": 4}),
        ("chain", {"stages": [{"arch": "fsrcnn", "scale": 2}, {"arch": "srcnn", "scale": 1}]}),
    ],
)
def test_every_model_can_conserve(name, config):
    torch.manual_seed(0)
    plain = get_model(name, **config).eval()
    model = get_model(name, conserve=True, **config).eval()
    model.load_state_dict(plain.state_dict())
    s = model.scale
    shape = (2, 1, 5, 6) if model.window == 1 else (2, 1, model.window, 5, 6)
    x = torch.randn(shape)
    with torch.no_grad():
        y = model(x)
        y_plain = plain(x)
    centre = model.centre_frame(x)
    torch.testing.assert_close(block_mean(y, s), centre, rtol=0, atol=1e-5)
    # No PSNR cost: against a truth whose block means are the input, the error cannot grow.
    truth = nearest_upsample(centre, s) + torch.randn(y.shape) * 0.1
    truth = conserve(truth, centre, s)
    assert F.mse_loss(y, truth) <= F.mse_loss(y_plain, truth) + 1e-6

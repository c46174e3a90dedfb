"""SRCNN: the report's form, on the model contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xsr.models.registry import get_model


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (8, 3)])
def test_output_shape(checks, scale, h, w):
    checks.output_shape(get_model("srcnn", scale=scale), h, w)


def test_layers_are_the_reports():
    model = get_model("srcnn", scale=2)
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 64, (9, 9)),
        (64, 32, (1, 1)),
        (32, 1, (5, 5)),
    ]
    prelus = [m for m in model.body if isinstance(m, nn.PReLU)]
    assert len(prelus) == 2
    assert all(float(p.weight.detach().abs().max()) == 0.0 for p in prelus)  # alpha 0 (Keras)
    exact = get_model("srcnn", scale=2, output_activation="prelu")
    assert isinstance(exact.body[-1], nn.PReLU)


def test_bicubic_upsampling_is_inside_the_model():
    model = get_model("srcnn", scale=3)
    x = torch.randn(1, 1, 4, 4)
    up = torch.nn.functional.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    torch.testing.assert_close(model.upsample(x), up)


def test_multichannel_and_residual(checks):
    model = get_model("srcnn", scale=2, channels=3, residual=True)
    checks.output_shape(model, 4, 5)
    with torch.no_grad():
        for p in model.body.parameters():
            p.zero_()
        x = torch.randn(1, 3, 4, 5)
        torch.testing.assert_close(model(x), model.upsample(x))


def test_gradients(checks):
    checks.gradients_reach_every_parameter(get_model("srcnn", scale=2, prelu_init=0.1))


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_receptive_radius(checks, scale):
    checks.receptive_radius_is_tight_bound(get_model("srcnn", scale=scale))


def test_overfits_one_batch(checks):
    first, last = checks.overfit_one_batch(get_model("srcnn", scale=2, features=[16, 8]))
    assert last < 0.2 * first


def test_config_rebuilds(checks):
    checks.rebuilds_identically(get_model("srcnn", scale=3, channels=2, residual=True))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"scale": 0}, "scale must be an integer >= 1"),
        ({"scale": 2.5}, "scale must be an integer"),
        ({"kernels": [9, 2, 5]}, "kernels"),
        ({"output_activation": "relu"}, "output_activation"),
        ({"channels": 0}, "channels must be a positive integer"),
    ],
)
def test_bad_config(config, match):
    with pytest.raises(ValueError, match=match):
        get_model("srcnn", **config)

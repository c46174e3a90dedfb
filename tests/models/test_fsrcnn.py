"""FSRCNN: the original form and the report's variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xsr.models.registry import get_model


@pytest.mark.parametrize("variant", ["report", "original", "small"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (8, 3)])
def test_output_shape(checks, variant, scale, h, w):
    checks.output_shape(get_model("fsrcnn", scale=scale, variant=variant), h, w)


def _layers(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]


def test_report_variant_layers():
    model = get_model("fsrcnn", scale=2)
    got = [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [
        ("Conv2d", 1, 32, (5, 5)),
        ("Conv2d", 32, 8, (1, 1)),
        ("Conv2d", 8, 8, (3, 3)),
        ("Conv2d", 8, 32, (1, 1)),
        ("ConvTranspose2d", 32, 32, (2, 2)),
        ("Conv2d", 32, 1, (5, 5)),
    ]
    assert _layers(model)[4].stride == (2, 2)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 5  # every hidden layer, the transposed one included
    assert all(float(p.weight.detach().abs().max()) == 0.0 for p in prelus)
    x4 = _layers(get_model("fsrcnn", scale=4))[4]
    assert x4.kernel_size == (4, 4)
    assert x4.stride == (4, 4)


def test_original_layers():
    model = get_model("fsrcnn", scale=3, variant="original")
    got = [(m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [(1, 56, (5, 5)), (56, 12, (1, 1))] + [(12, 12, (3, 3))] * 4 + [
        (12, 56, (1, 1)),
        (56, 1, (9, 9)),
    ]
    assert _layers(model)[-1].stride == (3, 3)


def test_small_variant_is_fsrcnn_s():
    model = get_model("fsrcnn", scale=2, variant="small")
    got = [(m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [
        (1, 32, (5, 5)),
        (32, 5, (1, 1)),
        (5, 5, (3, 3)),
        (5, 32, (1, 1)),
        (32, 1, (9, 9)),
    ]


def test_gradients(checks):
    for variant in ("report", "original"):
        checks.gradients_reach_every_parameter(
            get_model("fsrcnn", scale=2, variant=variant, prelu_init=0.1)
        )


@pytest.mark.parametrize("variant", ["report", "original"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius(checks, variant, scale):
    checks.receptive_radius_is_tight_bound(get_model("fsrcnn", scale=scale, variant=variant))


@pytest.mark.parametrize("variant", ["report", "original"])
def test_overfits_one_batch(checks, variant):
    first, last = checks.overfit_one_batch(get_model("fsrcnn", scale=2, variant=variant))
    assert last < 0.2 * first


def test_residual_is_bicubic_plus_network(checks):
    model = get_model("fsrcnn", scale=3, residual=True, channels=2)
    checks.output_shape(model, 4, 4)
    with torch.no_grad():
        for p in model.reconstruct.parameters():
            p.zero_()
        x = torch.randn(1, 2, 4, 4)
        torch.testing.assert_close(model(x), model.bicubic(x))


def test_config_rebuilds(checks):
    checks.rebuilds_identically(get_model("fsrcnn", scale=3, variant="original", d=20, m=2))
    checks.rebuilds_identically(get_model("fsrcnn", scale=2, channels=3))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"variant": "keras"}, "variant must be one of"),
        ({"variant": "original", "scale": 10}, "larger than the transposed convolution"),
        ({"scale": 4, "deconv_kernel": 3}, "would leave holes"),
        ({"scale": -2}, "scale must be an integer >= 1"),
        ({"d": 0}, "d, s >= 1"),
        ({"scale": 1, "deconv_kernel": 4}, "needs an odd kernel"),
    ],
)
def test_bad_config(config, match):
    with pytest.raises(ValueError, match=match):
        get_model("fsrcnn", **config)

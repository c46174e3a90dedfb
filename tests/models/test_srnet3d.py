"""The report's 3D network: layers, 5-frame window, whole-frame output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xsr.models.registry import get_model


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (4, 5), (6, 3)])
def test_output_covers_whole_frame(checks, scale, h, w):
    checks.output_shape(get_model("srnet3d", scale=scale, features=8, shrink=4), h, w)


def test_layers_are_the_reports():
    model = get_model("srnet3d", scale=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d | nn.Conv2d)]
    got = [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs]
    assert got == [
        (1, 32, (3, 5, 5), (1, 2, 2)),
        (32, 8, (3, 1, 1), (1, 0, 0)),
        (8, 8, (3, 3, 3), (1, 1, 1)),
        (8, 8, (3, 3, 3), (1, 1, 1)),
        (8, 32, (3, 3, 3), (1, 1, 1)),
        (32, 32, (3, 3, 3), (0, 0, 0)),  # valid: 5 frames -> 3
        (32, 32, (3, 3, 3), (0, 0, 0)),  # valid: 3 frames -> 1
        (32, 1, (5, 5), (2, 2)),
    ]
    assert model.window == 5
    assert model.time_radius == 2
    assert model.margin == 2
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 7
    assert all(float(p.weight.detach().abs().max()) == 0.0 for p in prelus)


def test_valid_layers_turn_five_frames_into_one():
    model = get_model("srnet3d", scale=1, features=4, shrink=2)
    x = torch.randn(1, 4, 5, 9, 9)
    mid = model.collapse[0](x)
    assert mid.shape == (1, 4, 3, 7, 7)
    assert model.collapse[2](mid).shape == (1, 4, 1, 5, 5)


def test_every_frame_matters_and_output_is_the_centre(checks):
    reach, r = checks.footprint(get_model("srnet3d", scale=1, features=8, shrink=4))
    assert reach <= r


def test_gradients(checks):
    checks.gradients_reach_every_parameter(
        get_model("srnet3d", scale=2, features=8, shrink=4, prelu_init=0.1), h=4, w=4
    )


@pytest.mark.parametrize("scale", [1, 2])
def test_receptive_radius(checks, scale):
    checks.receptive_radius_is_tight_bound(get_model("srnet3d", scale=scale))


def test_overfits_one_batch(checks):
    first, last = checks.overfit_one_batch(get_model("srnet3d", scale=2), size=6)
    assert last < 0.2 * first


def test_zero_padding_mode_and_residual(checks):
    model = get_model("srnet3d", scale=2, pad_mode="zeros", residual=True, channels=2)
    checks.output_shape(model, 3, 4)
    checks.rebuilds_identically(model)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 1, 3, 4, 4), "needs window = 5"),
        ((1, 1, 4, 4), r"movie batch \(N, C, T, H, W\)"),
        ((1, 2, 5, 4, 4), "2 channels"),
    ],
)
def test_bad_input(shape, match):
    with pytest.raises(ValueError, match=match):
        get_model("srnet3d", scale=2)(torch.zeros(shape))


def test_bad_config():
    with pytest.raises(ValueError, match="pad_mode"):
        get_model("srnet3d", pad_mode="wrap")

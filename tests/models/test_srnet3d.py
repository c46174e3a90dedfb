"""The report's 3D network: layers, 5-frame window, whole-frame output."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from toys import assert_first_layer_channels_last, randomise

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
def test_forward_core_equals_the_cropped_forward(scale, config):
    model = randomise(get_model("srnet3d", scale=scale, features=8, shrink=4, **config)).eval()
    r, s, c = model.receptive_radius, scale, model.channels
    x = torch.randn(2, c, 5, 2 * r + 5, 2 * r + 4)
    with torch.no_grad():
        full = model(x)[..., s * r : s * (r + 5), s * r : s * (r + 4)]
        core = model.forward_core(x)
    assert core.shape == full.shape == (2, c, 5 * s, 4 * s)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5 * float(full.abs().max()))


def test_forward_core_runs_the_spatial_convolutions_valid():
    """No margin padding and no spatial padding: the valid layers see the shrunken frame."""
    model = get_model("srnet3d", scale=2, features=8, shrink=4).eval()
    r = model.receptive_radius
    seen = []
    model.collapse[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    x = torch.randn(1, 1, 5, 2 * r + 3, 2 * r + 3)
    with torch.no_grad():
        model(x)
        model.forward_core(x)
    fine = 2 * (2 * r + 3)
    extract = 5  # 5x5, 1x1, then three 3x3 convolutions: 2 + 0 + 1 + 1 + 1 fine cells a side
    assert seen[0][-2:] == (fine + 2 * model.margin,) * 2  # the padded forward
    assert seen[1][-2:] == (fine - 2 * extract,) * 2  # the core: valid throughout
    assert seen[1][2] == 5  # time keeps its padding
    with pytest.raises(ValueError, match="larger than twice the receptive radius"):
        model.forward_core(torch.zeros(1, 1, 5, 2 * r, 2 * r + 3))


@pytest.mark.parametrize("core", [False, True])
def test_one_variable_runs_channels_last_under_the_engine(core):
    """With the engine's channels-last weights, one variable's first layer outputs channels-last.

    Otherwise torch takes the 1-channel input for a plain one, and the next layer copies the
    32-channel output into channels-last (12 % of the 3D network's time); results are equal.
    """
    config = {"scale": 2, "features": 8, "shrink": 4}
    r = get_model("srnet3d", **config).receptive_radius
    x = torch.randn(2, 1, 5, 2 * r + 4, 2 * r + 5)
    assert_first_layer_channels_last("srnet3d", config, "extract.1", x, core=core)

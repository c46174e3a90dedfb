"""Chains: 2D then 3D, 3D then 2D, two-in-one, built by composing stages."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from xsr.models.chain import Chain, combination
from xsr.models.registry import get_model

SMALL3D = {"arch": "srnet3d", "scale": 1, "features": 8, "shrink": 4}
TWO_THEN_THREE = [{"arch": "fsrcnn", "scale": 2}, SMALL3D]
THREE_THEN_TWO = [SMALL3D, {"arch": "fsrcnn", "scale": 2}]


@pytest.mark.parametrize("stages", [TWO_THEN_THREE, THREE_THEN_TWO])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 4)])
def test_output_shape(checks, stages, h, w):
    model = get_model("chain", stages=stages)
    assert (model.scale, model.window, model.time_radius) == (2, 5, 2)
    checks.output_shape(model, h, w)


def test_2d_chain_takes_images_and_windows_add_up(checks):
    two_d = get_model("chain", stages=[{"arch": "fsrcnn", "scale": 2}, {"arch": "srcnn"}])
    assert (two_d.scale, two_d.window) == (4, 1)
    checks.output_shape(two_d, 3, 5)
    long = get_model("chain", stages=[{"arch": "xsrnet", "scale": 2, "window": 3}, SMALL3D])
    assert long.window == 3 + 5 - 1
    checks.output_shape(long, 3, 4)


def test_window_packing_matches_a_frame_by_frame_loop():
    torch.manual_seed(0)
    model = get_model("chain", stages=TWO_THEN_THREE).eval()
    x = torch.randn(3, 1, 5, 6, 7)
    two_d, three_d = model.stages
    with torch.no_grad():
        got = model(x)
        per_sample = []
        for n in range(x.shape[0]):  # the loop the report could not write in Keras
            frames = torch.stack([two_d(x[n : n + 1, :, t])[0] for t in range(5)], dim=1)
            per_sample.append(three_d(frames[None])[0])
        torch.testing.assert_close(got, torch.stack(per_sample))


def test_3d_then_2d_slides_the_windows():
    torch.manual_seed(1)
    model = get_model("chain", stages=[{"arch": "xsrnet", "scale": 1, "window": 3}, SMALL3D]).eval()
    x = torch.randn(2, 1, 7, 5, 5)
    first, second = model.stages
    with torch.no_grad():
        mid = torch.stack([first(x[:, :, t : t + 3]) for t in range(5)], dim=2)
        torch.testing.assert_close(model(x), second(mid))


@pytest.mark.parametrize("stages", [TWO_THEN_THREE, THREE_THEN_TWO])
def test_receptive_radius(checks, stages):
    checks.receptive_radius_is_tight_bound(get_model("chain", stages=stages))


def test_radius_composes_with_ceil():
    model = get_model("chain", stages=TWO_THEN_THREE)
    first, second = model.stages
    assert model.receptive_radius == first.receptive_radius + -(-second.receptive_radius // 2)


def test_trainable_jointly(checks):
    stages = [{"arch": "fsrcnn", "scale": 2, "prelu_init": 0.1}, {**SMALL3D, "prelu_init": 0.1}]
    checks.gradients_reach_every_parameter(get_model("chain", stages=stages), h=4, w=4)
    first, last = checks.overfit_one_batch(get_model("chain", stages=TWO_THEN_THREE), size=6)
    assert last < 0.2 * first


def test_trainable_stage_by_stage():
    torch.manual_seed(0)
    model = get_model("chain", stages=TWO_THEN_THREE)
    frozen = {k: v.clone() for k, v in model.stages[0].state_dict().items()}
    model.stages[0].requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(2, 1, 5, 6, 6)
    target = F.interpolate(x[:, :, 2], scale_factor=2, mode="bicubic")
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for k, v in model.stages[0].state_dict().items():
        torch.testing.assert_close(v, frozen[k], rtol=0, atol=0)


def test_run_stages_gives_what_each_stage_is_fed():
    """The report's two-stage method: the 3D stage is trained on the 2D stage's outputs."""
    torch.manual_seed(2)
    model = get_model("chain", stages=TWO_THEN_THREE).eval()
    x = torch.randn(2, 1, 5, 4, 6)
    with torch.no_grad():
        assert torch.equal(model.run_stages(x, 0), x)
        mid = model.run_stages(x, 1)
        assert mid.shape == (2, 1, 5, 8, 12)
        torch.testing.assert_close(mid[:, :, 3], model.stages[0](x[:, :, 3]))
        torch.testing.assert_close(model.stages[1](mid), model(x))
        assert model.run_stages(x, 2).shape == (2, 1, 1, 8, 12)
    with pytest.raises(ValueError, match="stop must be an integer in"):
        model.run_stages(x, 3)


def test_config_rebuilds_and_lists_full_stage_configs(checks):
    model = get_model("chain", stages=THREE_THEN_TWO)
    assert json.loads(json.dumps(model.config))["stages"][1]["variant"] == "report"
    checks.rebuilds_identically(model)


def test_built_models_as_stages():
    a, b = get_model("srcnn", scale=2), get_model("bicubic", scale=2)
    model = Chain(stages=[a, b])
    assert model.stages[0] is a
    assert model.scale == 4


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([], "at least one stage"),
        ([{"scale": 2}], "'arch' key"),
        ({"arch": "srcnn"}, "must be a list"),
        ([{"arch": "chain", "stages": [{"arch": "srcnn"}]}], "cannot itself be a chain"),
        ([{"arch": "srcnn", "channels": 2}, {"arch": "srcnn"}], "same channels"),
        ([{"arch": "nosuch"}], "Unknown model architecture"),
    ],
)
def test_bad_stages(stages, match):
    with pytest.raises(ValueError, match=match):
        get_model("chain", stages=stages)


def test_bad_input_names_window():
    model = get_model("chain", stages=TWO_THEN_THREE)
    with pytest.raises(ValueError, match="needs window = 5"):
        model(torch.zeros(1, 1, 3, 4, 4))


def test_named_combinations():
    two_then_three = get_model("chain", stages=combination("2d+3d", scale=3, channels=2))
    assert [m.arch for m in two_then_three.stages] == ["fsrcnn", "srnet3d"]
    assert (two_then_three.scale, two_then_three.window, two_then_three.channels) == (3, 5, 2)
    three_then_two = get_model("chain", stages=combination("3d+2d", two_d="srcnn", residual=True))
    assert [m.arch for m in three_then_two.stages] == ["srnet3d", "srcnn"]
    assert three_then_two.stages[1].residual
    with pytest.raises(ValueError, match="kind must be one of"):
        combination("2d+2d")

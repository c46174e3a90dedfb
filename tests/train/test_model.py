"""Tests for xsr.train.model: building, checking, transferring and freezing the network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xsr.models.registry import get_model
from xsr.testing import random_movie
from xsr.train.config import FitConfig
from xsr.train.model import build_model, prepare_model

TINY = {"d": 8, "s": 4, "m": 1}
CPU = torch.device("cpu")


def _prepare(model="fsrcnn", variables=("h",), **cfg):
    cfg = FitConfig(**{"scale": 2, "model_config": TINY, **cfg})
    return prepare_model(model, cfg, variables=list(variables), device=CPU)


def test_seeded_build_is_reproducible_and_seed_dependent():
    a, b, c = _prepare(seed=1), _prepare(seed=1), _prepare(seed=2)
    for x, y in zip(a.net.parameters(), b.net.parameters()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert any(not torch.equal(x, z) for x, z in zip(a.net.parameters(), c.net.parameters()))


def test_halo_defaults_to_the_receptive_radius():
    p = _prepare()
    assert p.halo == p.net.receptive_radius
    assert _prepare(halo=0).halo == 0
    assert (p.scale, p.window, p.radius) == (2, 1, 0)


def test_a_given_model_is_copied_not_trained_in_place():
    net = get_model("fsrcnn", scale=2, **TINY)
    p = prepare_model(net, FitConfig(), variables=["h"], device=CPU)
    assert p.net is not net
    assert p.scale == 2


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "match"),
    [
        (nn.Conv2d(1, 1, 3), {}, TypeError, "must be an xsr SRModel"),
        (3, {}, TypeError, "architecture name, a pretrained name"),
        ("no-such-net", {}, ValueError, "neither an architecture"),
        ("fsrcnn", {"scale": None}, ValueError, "scale= is required"),
    ],
)
def test_build_errors_name_the_fix(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        build_model(model, **{"scale": 2, "channels": 1, "model_config": {}, **kwargs})


def test_model_config_only_with_an_architecture_name():
    net = get_model("fsrcnn", scale=2, **TINY)
    with pytest.raises(TypeError, match="only applies when model is an architecture name"):
        build_model(net, scale=2, channels=1, model_config={"d": 4})


def test_checks_against_the_variables_and_scale():
    net = get_model("fsrcnn", scale=2, **TINY)
    with pytest.raises(ValueError, match=r"takes 1 channel\(s\) but variables=\['u', 'v'\]"):
        prepare_model(net, FitConfig(), variables=["u", "v"], device=CPU)
    with pytest.raises(ValueError, match="scale=3 disagrees with the model's scale 2"):
        prepare_model(net, FitConfig(scale=3), variables=["h"], device=CPU)


def test_freeze_and_transfer_are_recorded():
    source = get_model("fsrcnn", scale=2, **TINY)
    p = _prepare(init_from=source, freeze="features.0")
    assert "features.0.weight" in p.transferred
    assert p.frozen == ["features.0.weight", "features.0.bias"]
    assert not p.net.features[0].weight.requires_grad
    torch.testing.assert_close(p.net.features[0].weight, source.features[0].weight)


def test_stage_freezes_every_other_stage_of_a_chain():
    chain = get_model(
        "chain", stages=[{"arch": "fsrcnn", "scale": 2, **TINY}, {"arch": "srcnn", "scale": 1}]
    )
    p = prepare_model(chain, FitConfig(stage=1), variables=["h"], device=CPU)
    assert p.frozen
    assert all(name.startswith("stages.0.") for name in p.frozen)
    assert all(not q.requires_grad for q in p.net.stages[0].parameters())
    assert all(q.requires_grad for q in p.net.stages[1].parameters())
    with pytest.raises(ValueError, match="needs a 'chain' model"):
        _prepare(stage=0)
    with pytest.raises(ValueError, match="out of range"):
        prepare_model(chain, FitConfig(stage=2), variables=["h"], device=CPU)


def test_fine_tuning_keeps_the_normalisation_its_weights_were_trained_with():
    from xsr.train import fit

    fast = {"epochs": 1, "patch_size": 4, "batch_size": 4, "patches_per_epoch": 8}
    first, _ = fit("fsrcnn", random_movie(8, 24, 24), scale=2, progress=False, **fast, **TINY)
    shifted = random_movie(8, 24, 24, seed=1)
    shifted["h"] = shifted["h"] * 10.0 + 50.0
    tuned, _ = fit(first, shifted, progress=False, **fast)
    assert tuned.card.normalisation == first.card.normalisation
    fresh, _ = fit("fsrcnn", shifted, scale=2, progress=False, **fast, **TINY)
    assert fresh.card.normalisation["h"]["mean"] > 40.0  # a new network: the data's own


def test_a_model_trained_on_other_variables_takes_the_datas_normalisation():
    from xsr.train import fit

    fast = {"epochs": 1, "patch_size": 4, "batch_size": 4, "patches_per_epoch": 8}
    images = random_movie(8, 24, 24, variables=("image",))
    first, _ = fit("fsrcnn", images, scale=2, progress=False, **fast, **TINY)
    kelvin = random_movie(8, 24, 24, seed=1, variables=("tas",))
    kelvin["tas"] = kelvin["tas"] * 10.0 + 280.0
    tuned, _ = fit(first, kelvin, progress=False, **fast)
    assert tuned.card.normalisation["tas"]["mean"] > 250.0

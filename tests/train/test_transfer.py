"""Tests for transfer learning: matched-layer copies, freezing, per-layer rates, chain stages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xsr.models.files import save_model
from xsr.models.registry import get_model
from xsr.testing import random_movie
from xsr.train.trainer import fit
from xsr.train.transfer import freeze, layer_names, param_groups, transfer_weights

TINY = {"d": 8, "s": 4, "m": 1}
FAST = {"epochs": 2, "batch_size": 8, "patch_size": 4, "patches_per_epoch": 16, "progress": False}


def _fsrcnn(channels: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    return get_model("fsrcnn", scale=2, channels=channels, **TINY)


def test_copies_layers_matched_by_name_and_shape():
    source, target = _fsrcnn(1, seed=1), _fsrcnn(3, seed=2)
    result = transfer_weights(target, source)
    # the first and last layers see 1 vs 3 channels: skipped with the shapes given
    assert "features.0.weight" not in result
    assert "shape (8, 1, 5, 5) in source != (8, 3, 5, 5)" in result.skipped["features.0.weight"]
    assert "features.4.weight" in result
    torch.testing.assert_close(target.features[4].weight, source.features[4].weight)
    assert "copied  features.4.weight" in result.summary()


def test_first_layer_only_like_the_report(tmp_path):
    source, target = _fsrcnn(seed=1), _fsrcnn(seed=2)
    before = target.features[4].weight.detach().clone()
    path = save_model(source, tmp_path / "authors")
    result = transfer_weights(target, path, layers=["features.0"])
    assert list(result) == ["features.0.weight", "features.0.bias"]
    assert result.skipped["features.4.weight"] == "not in layers="
    torch.testing.assert_close(target.features[0].weight, source.features[0].weight)
    torch.testing.assert_close(target.features[4].weight, before)


def test_prefixes_map_a_2d_model_into_a_chain_stage():
    source = _fsrcnn(seed=1)
    chain = get_model(
        "chain",
        stages=[{"arch": "fsrcnn", "scale": 2, **TINY}, {"arch": "srcnn", "scale": 1}],
    )
    result = transfer_weights(chain, source, target_prefix="stages.0.")
    assert len(result) == len(source.state_dict())
    torch.testing.assert_close(chain.stages[0].upsample.weight, source.upsample.weight)


def test_nothing_matching_is_an_error():
    with pytest.raises(ValueError, match="no layer could be copied"):
        transfer_weights(nn.Conv2d(1, 2, 3), nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"layers \['nope'\] are not in the target"):
        transfer_weights(_fsrcnn(), _fsrcnn(), layers=["nope"])
    with pytest.raises(TypeError, match="init_from/source must be"):
        transfer_weights(_fsrcnn(), 42)


def test_freeze_and_param_groups():
    model = _fsrcnn()
    frozen = freeze(model, ["features.0", "upsample.bias"])
    assert frozen == ["features.0.weight", "features.0.bias", "upsample.bias"]
    assert not model.features[0].weight.requires_grad
    groups = param_groups(model, 1e-3, {"features": 1e-4, "features.4": 1e-5})
    by_name = {n: g["lr"] for g in groups for n in g["names"]}
    assert "features.0.weight" not in by_name  # frozen: not optimised
    assert by_name["features.2.weight"] == 1e-4
    assert by_name["features.4.weight"] == 1e-5  # the longest name wins
    assert by_name["reconstruct.1.weight"] == 1e-3
    assert layer_names(model)[:2] == ["features.0", "features.1"]
    with pytest.raises(ValueError, match=r"freeze= names \['body'\] match no parameter"):
        freeze(model, "body")
    with pytest.raises(ValueError, match="must be positive"):
        param_groups(model, 1e-3, {"features": 0.0})
    freeze(model, [n for n, _ in model.named_parameters()])
    with pytest.raises(ValueError, match="every parameter is frozen"):
        param_groups(model, 1e-3)


def test_fit_init_from_copies_and_freeze_keeps_fixed(tmp_path):
    source = _fsrcnn(seed=5)
    path = save_model(source, tmp_path / "natural")
    ds = random_movie(8, 32, 32, seed=1)
    model, hist = fit("fsrcnn", ds, scale=2, init_from=path, freeze=["features.0"], **FAST, **TINY)
    assert "features.0.weight" in hist.attrs["transferred"]
    assert hist.attrs["frozen"] == "features.0.weight, features.0.bias"
    # the frozen, transferred first layer is exactly the source's
    torch.testing.assert_close(model.features[0].weight, source.features[0].weight)
    torch.testing.assert_close(model.features[0].bias, source.features[0].bias)
    # the other transferred layers were fine-tuned
    assert not torch.equal(model.features[4].weight, source.features[4].weight)
    assert model.card.training["init_from"] == str(path)


def test_fit_layer_lr_slows_a_layer():
    ds = random_movie(8, 32, 32, seed=2)
    torch.manual_seed(0)
    start = _fsrcnn(seed=0)
    model, _ = fit(start, ds, layer_lr={"features.4": 1e-12}, **FAST)
    with torch.no_grad():
        slow = (model.features[4].weight - start.features[4].weight).abs().max()
        fast = (model.features[6].weight - start.features[6].weight).abs().max()
    assert float(slow) < 1e-8 < float(fast)


def test_fit_chain_two_stage_method():
    ds = random_movie(10, 32, 32, seed=3)
    chain = get_model(
        "chain",
        stages=[
            {"arch": "fsrcnn", "scale": 2, **TINY},
            {"arch": "srnet3d", "scale": 1, "features": 4, "shrink": 2},
        ],
    )

    def changed(a, b, prefix):
        return [k for k in a if k.startswith(prefix) and not torch.equal(a[k], b[k])]

    start = {k: v.clone() for k, v in chain.state_dict().items()}
    first, _ = fit(chain, ds, stage=0, halo=3, **{**FAST, "epochs": 1})
    after0 = first.state_dict()
    assert changed(after0, start, "stages.0.")
    assert not changed(after0, start, "stages.1.")
    second, _ = fit(first, ds, stage=1, halo=3, **{**FAST, "epochs": 1})
    after1 = second.state_dict()
    assert not changed(after1, after0, "stages.0.")
    assert changed(after1, after0, "stages.1.")
    assert second.card.training["stage"] == 1
    assert all(p.requires_grad for p in second.parameters())  # the returned model is unfrozen
    with pytest.raises(ValueError, match="out of range"):
        fit(chain, ds, stage=2, **FAST)
    upscale_last = get_model(
        "chain",
        stages=[{"arch": "srcnn", "scale": 1}, {"arch": "fsrcnn", "scale": 2, **TINY}],
    )
    with pytest.raises(ValueError, match=r"stages\[:1\] upscale by 1 but the chain by 2"):
        fit(upscale_last, ds, stage=0, **FAST)


def test_init_from_and_fine_tune_a_pretrained_name(tmp_path, monkeypatch):
    from xsr.models import pretrained

    source = _fsrcnn(seed=7)
    save_model(source, tmp_path / "tiny-natural-x2")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(pretrained.PRETRAINED, "tiny-natural-x2", "tiny-natural-x2")
    ds = random_movie(8, 32, 32, seed=4)
    model, hist = fit(
        "fsrcnn", ds, scale=2, init_from="tiny-natural-x2", freeze="features", **FAST, **TINY
    )
    assert "features.0.weight" in hist.attrs["transferred"]
    torch.testing.assert_close(model.features[4].weight, source.features[4].weight)
    assert model.card.training["init_from"] == "tiny-natural-x2"
    tuned, _ = fit("tiny-natural-x2", ds, **{**FAST, "epochs": 1})  # fine-tune by name
    assert tuned.arch == "fsrcnn"

"""Model files: bit-exact round trips, and clear refusals of anything that does not match."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch

from xsr.digest import sha256_file
from xsr.models import files, pretrained
from xsr.models.card import ModelCard, card_digest
from xsr.models.files import ModelFileError, load_model, save_model
from xsr.models.registry import get_model

ARCHS = [
    ("bicubic", {"scale": 2}),
    ("srcnn", {"scale": 3, "channels": 2}),
    ("fsrcnn", {"scale": 2, "variant": "original"}),
    ("srnet3d", {"scale": 2, "features": 8, "shrink": 4}),
    ("xsrnet", {"scale": 4, "window": 5, "conserve": True}),
    ("chain", {"stages": [{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]}),
]


@pytest.fixture
def saved(tmp_path):
    model = get_model("fsrcnn", scale=2)
    path = save_model(
        model,
        tmp_path / "fsrcnn-test",
        variables=[{"name": "h", "units": "m", "long_name": "layer depth"}],
        normalisation={"h": {"mean": 10.0, "std": 0.5}},
        degradation={"method": "coarsen", "scale": 2},
    )
    return model, path


@pytest.mark.parametrize(("name", "config"), ARCHS)
def test_round_trip_is_bit_exact(tmp_path, name, config):
    model = get_model(name, **config)
    with torch.no_grad():  # make buffers/params distinctive
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = save_model(model, tmp_path / name)
    assert path == tmp_path / f"{name}.safetensors"
    assert (tmp_path / f"{name}.json").exists()
    loaded = load_model(tmp_path / name)
    assert not loaded.training
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(original) == list(restored)
    for k in original:
        assert torch.equal(original[k], restored[k]), k
    model.eval()
    shape = (2, model.channels, 5, 6)
    if model.window > 1:
        shape = (2, model.channels, model.window, 5, 6)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    card = loaded.card
    assert isinstance(card, ModelCard)
    assert (card.arch, card.scale, card.window) == (name, model.scale, model.window)
    assert card.receptive_radius == model.receptive_radius
    assert card.parameters == model.parameter_count()
    assert card.sha256 == sha256_file(path)


def test_paths_with_or_without_suffix(tmp_path, saved):
    _, path = saved
    for ref in (path, str(path), path.with_suffix(""), path.with_suffix(".json")):
        assert load_model(ref).card.name == "fsrcnn-test"
    again = save_model(get_model("srcnn"), tmp_path / "x.json")
    assert again.name == "x.safetensors"


def test_card_fields_are_kept(saved):
    _, path = saved
    card = load_model(path).card
    assert card.variables[0]["units"] == "m"
    assert card.normalisation == {"h": {"mean": 10.0, "std": 0.5}}
    assert card.degradation == {"method": "coarsen", "scale": 2}


def test_resave_keeps_the_card_and_updates_the_hash(tmp_path, saved):
    _, path = saved
    model = load_model(path)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    new = save_model(model, tmp_path / "again", metrics={"psnr": 30.0, "data_range": 2.0})
    card = load_model(new).card
    assert card.variables[0]["name"] == "h"
    assert card.metrics["psnr"] == 30.0
    assert card.sha256 != load_model(path).card.sha256


def test_the_same_weights_always_save_to_the_same_bytes(tmp_path, saved):
    # safetensors writes its metadata map in a hash order that changes between calls; xsr
    # sorts it, so equal weights get an equal sha256 (the engine's cache key)
    model, path = saved
    digests = {sha256_file(save_model(model, tmp_path / f"copy{i}")) for i in range(12)}
    assert digests == {sha256_file(path)}
    header = path.read_bytes()
    n = int.from_bytes(header[:8], "little")
    assert json.loads(header[8 : 8 + n])["__metadata__"] == {"arch": "fsrcnn", "format": "pt"}
    assert torch.equal(load_model(path).state_dict()["features.0.weight"], model.features[0].weight)


def test_nothing_is_unpickled(saved, monkeypatch):
    _, path = saved

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_model(path)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["arch"] == "fsrcnn"


def test_tampered_weights_are_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256 mismatch") as info:
        load_model(path)
    assert str(path) in str(info.value)


def _edit_card(path, **changes):
    card_path = path.with_suffix(".json")
    data = json.loads(card_path.read_text())
    data.update(changes)
    card_path.write_text(json.dumps(data))


def test_truncated_weights_are_refused(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:100])
    _edit_card(path, sha256=sha256_file(path))  # even with a matching hash
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(path)


def test_weights_from_another_architecture_are_refused(tmp_path, saved):
    _, path = saved
    other = save_model(get_model("fsrcnn", scale=2, d=16), tmp_path / "other")
    path.write_bytes(other.read_bytes())
    _edit_card(path, sha256=sha256_file(path))
    with pytest.raises(ModelFileError, match=r"tensors do not match.*shape mismatches"):
        load_model(path)


def test_card_config_for_another_architecture_is_refused(saved):
    _, path = saved
    _edit_card(path, arch="srcnn", config=get_model("srcnn", scale=2).config)
    with pytest.raises(ModelFileError, match=r"missing \[.*unexpected \["):
        load_model(path)


def test_card_contract_numbers_must_match(saved):
    _, path = saved
    _edit_card(path, receptive_radius=1)
    with pytest.raises(ModelFileError, match="receptive_radius: card 1 vs architecture 4"):
        load_model(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"arch": "esrgan"}, "unknown architecture 'esrgan'"),
        ({"config": {"scale": 2, "blocks": 7}}, "cannot rebuild 'fsrcnn'"),
        ({"sha256": "xyz"}, "invalid model card: .*sha256"),
        ({"extra_field": 1}, r"unknown fields \['extra_field'\]"),
        ({"normalisation": {"h": {"mean": 0.0, "std": 0.0}}}, "normalisation"),
        ({"degradation": {"method": "gaussian", "scale": 2}}, "degradation"),
    ],
)
def test_bad_cards_are_refused(saved, change, match):
    _, path = saved
    _edit_card(path, **change)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_missing_or_unreadable_files(tmp_path, saved):
    _, path = saved
    card_path = path.with_suffix(".json")
    text = card_path.read_text()
    card_path.write_text(text[:-20])
    with pytest.raises(ModelFileError, match="not readable JSON"):
        load_model(path)
    card_path.unlink()
    with pytest.raises(ModelFileError, match="model card missing"):
        load_model(path)
    card_path.write_text(text)
    path.unlink()
    with pytest.raises(ModelFileError, match="weights file missing"):
        load_model(path)
    with pytest.raises(ModelFileError, match="no pretrained model of that name"):
        load_model(tmp_path / "nothing-here")
    with pytest.raises(ModelFileError, match="no pretrained model of that name"):
        load_model("fsrcnn-swe-x3")
    assert issubclass(ModelFileError, ValueError)


def test_save_refuses_derived_fields_and_bad_variables(tmp_path):
    model = get_model("srcnn", scale=2)
    with pytest.raises(ValueError, match=r"\['scale'\] are derived from the model"):
        save_model(model, tmp_path / "m", scale=4)
    with pytest.raises(ValueError, match="one variable per channel"):
        save_model(model, tmp_path / "m", variables=[{"name": "u", "units": "m/s"}] * 2)
    with pytest.raises(TypeError, match="SRModel"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "m")
    assert not (tmp_path / "m.safetensors").exists()


def test_pretrained_names_resolve(tmp_path, monkeypatch):
    save_model(get_model("xsrnet", scale=2), tmp_path / "xsrnet-test-x2", description="demo")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "PRETRAINED", {"xsrnet-test-x2": "xsrnet-test-x2"})
    model = load_model("xsrnet-test-x2")
    assert model.arch == "xsrnet"
    summary = pretrained.list_pretrained()["xsrnet-test-x2"]
    assert summary["arch"] == "xsrnet"
    assert summary["description"] == "demo"
    assert summary["variables"] == ["var0"]
    table = pretrained.format_pretrained_table()
    assert "xsrnet-test-x2" in table.splitlines()[1]
    monkeypatch.delitem(pretrained.PRETRAINED, "xsrnet-test-x2")
    assert "no pretrained models shipped yet" in pretrained.format_pretrained_table()


def test_device_argument(saved):
    _, path = saved
    model = load_model(path, device="cpu")
    assert next(model.parameters()).device.type == "cpu"


def test_weights_sha256_hashes_the_bytes(saved):
    _, path = saved
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert files.model_paths(path)[1] == path.with_suffix(".json")


def _script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _training_script():
    """The natural-image models' training script."""
    return _script("train_shipped_weights")


def _results_script():
    """The script that trains, scores and ships the shallow-water models (docs/results.md)."""
    return _script("results_report")


def _field_script():
    """The universal field models' training script."""
    return _script("train_field_models")


def _writer(name: str) -> str:
    """The script that writes a shipped model (its card's ``training.script``)."""
    if name in _results_script().SHIPPED:
        return "scripts/results_report.py"
    if name in _field_script().RECIPES:
        return "scripts/train_field_models.py"
    return "scripts/train_shipped_weights.py"


@pytest.mark.parametrize("name", sorted(pretrained.PRETRAINED))
def test_every_shipped_model_loads_with_its_card(name):
    model = load_model(name)
    assert model.card.name == name
    assert model.card.sha256 == sha256_file(
        pretrained.pretrained_path(name).with_suffix(".safetensors")
    )
    assert model.card.degradation is not None
    assert model.card.training.get("script") == _writer(name)


@pytest.mark.parametrize("name", sorted(pretrained.PRETRAINED))
def test_every_shipped_model_beats_bicubic_in_its_card(name):
    # held-out runs of the generator for the shallow-water models (mean over variables), the
    # validation patches for the natural-image ones; the numbers are the training script's
    metrics = load_model(name).card.metrics
    if "held_out" in metrics:
        assert metrics["psnr"] > metrics["bicubic_psnr"]
    else:
        validation = metrics.get("validation", metrics)
        for variable, best in validation["best"].items():
            assert best["psnr"] > validation["bicubic"][variable]["psnr"]


@pytest.mark.parametrize("name", sorted(pretrained.PRETRAINED))
def test_every_shipped_file_comes_from_the_scripts_current_recipe(name):
    # the script must reproduce what is shipped: a recipe changed without retraining (or a file
    # retrained without committing its recipe) fails here
    training = load_model(name).card.training
    if training["script"] == "scripts/train_field_models.py":
        recipe = _field_script().RECIPES[name]
        assert training["recipe"] == {k: v for k, v in recipe.items() if k != "stages"}
        budgets = [{k: s[k] for k in r} for s, r in zip(training["stages"], recipe["stages"])]
        assert budgets == recipe["stages"]
        return
    results = _results_script()
    if name in results.SHIPPED:
        assert training["recipe"] == results.recipe(name, results.budget(quick=False))
        assert training["quick"] is False
    else:
        assert training["recipe"] == _training_script().RECIPES[name]


@pytest.mark.parametrize("name", sorted(pretrained.PRETRAINED))
def test_every_held_out_score_uses_the_scripts_current_held_out_runs(name):
    # a held-out set changed in the script without reshipping (or rescoring) fails here
    card = load_model(name).card
    held = card.metrics.get("held_out")
    results = _results_script()
    if card.kind == "field":  # scored on the shallow-water models' held-out runs, if at all
        if held is not None:
            assert held["seed"] == results.HELD_OUT_SEED
        return
    if name not in results.SHIPPED:
        assert held is None
        return
    b = results.budget(quick=False)
    assert (held["seed"], held["members"], held["frames"]) == (
        results.HELD_OUT_SEED,
        b.held_out_members,
        b.held_out_frames,
    )


def test_every_shipped_shallow_water_model_is_in_the_registry():
    assert set(_results_script().SHIPPED) <= set(pretrained.PRETRAINED)


def test_shipped_temporal_cards_carry_their_ablations():
    for name in _results_script().SHIPPED:
        model = load_model(name)
        held = model.card.metrics["held_out"]
        if model.window > 1:
            ablation = held["temporal_ablation"]
            assert set(ablation) == {"real", "centre-repeated", "time-shuffled"}
            assert ablation["real"].keys() == held["per_variable"].keys()
        else:
            assert "temporal_ablation" not in held


def test_shipped_two_stage_model_starts_from_the_shipped_fsrcnn():
    shipped = _results_script().SHIPPED
    for name, (scale, row) in shipped.items():
        if row != "2D then 3D":
            continue
        first_name = next(n for n, (s, r) in shipped.items() if s == scale and r == "FSRCNN")
        first = load_model(first_name).state_dict()
        stage = load_model(name).stages[0].state_dict()
        assert first.keys() == stage.keys()
        for key, value in first.items():
            assert torch.equal(value, stage[key]), f"{name}: stage 0 differs at {key}"


def test_models_page_names_each_variable_a_model_does_not_improve(monkeypatch):
    def info(tracer: float) -> dict:
        per_var = {"h": {"psnr": 50.0}, "tracer": {"psnr": tracer}}
        base = {"h": {"psnr": 45.0}, "tracer": {"psnr": 44.0}}
        held = {"per_variable": per_var, "bicubic_per_variable": base}
        return {
            "arch": "fsrcnn",
            "scale": 2,
            "window": 1,
            "variables": ["h", "tracer"],
            "parameters": 10,
            "degradation": {"method": "coarsen"},
            "metrics": {"psnr": 47.0, "bicubic_psnr": 44.5, "held_out": held},
        }

    monkeypatch.setattr(pretrained, "list_pretrained", lambda: {"a": info(45.0), "b": info(43.5)})
    page = pretrained.pretrained_markdown()
    assert "| `b` | 50.00 / 45.00 | 43.50 / 44.00 |" in page
    assert "Not above bicubic interpolation: `b` on `tracer` (-0.50 dB)." in page
    assert "`a` on" not in page
    monkeypatch.setattr(pretrained, "list_pretrained", lambda: {"a": info(45.0)})
    assert "Every model beats bicubic interpolation on every variable." in (
        pretrained.pretrained_markdown()
    )


def _tamper(path, edit):
    card_path = path.with_suffix(".json")
    data = json.loads(card_path.read_text())
    edit(data)
    card_path.write_text(json.dumps(data, indent=2))
    return card_path


def _scale_normalisation(data):
    for stats in data["normalisation"].values():
        stats["mean"] *= 10
        stats["std"] *= 10


def _swap_variables(data):
    data["variables"] = data["variables"][::-1]


@pytest.mark.parametrize("edit", [_scale_normalisation, _swap_variables])
def test_an_edited_card_is_refused(tmp_path, edit):
    variables = [{"name": "u", "units": "m s-1"}, {"name": "v", "units": "m s-1"}]
    path = save_model(
        get_model("srcnn", scale=2, channels=2),
        tmp_path / "two",
        variables=variables,
        normalisation={"u": {"mean": 0.5, "std": 2.0}, "v": {"mean": -1.0, "std": 3.0}},
    )
    card_path = _tamper(path, edit)
    with pytest.raises(ModelFileError, match="changed after it was written") as info:
        load_model(path)
    message = str(info.value)
    assert str(card_path) in message
    assert "stamp_card" in message


def test_a_card_without_its_digest_is_refused_and_stamp_card_accepts_an_edit(saved):
    _, path = saved
    card_path = _tamper(path, lambda d: d.pop("card_sha256"))
    with pytest.raises(ModelFileError, match="carries no card_sha256") as info:
        load_model(path)
    assert str(card_path) in str(info.value)
    _tamper(path, lambda d: d.update(description="edited on purpose"))
    files.stamp_card(path)
    assert load_model(path).card.description == "edited on purpose"


def test_the_card_digest_covers_the_weights_digest_and_ignores_formatting(saved):
    _, path = saved
    card_path = path.with_suffix(".json")
    data = json.loads(card_path.read_text())
    assert data["card_sha256"] == card_digest(data)
    # reformatting (key order, indentation) keeps the digest: it is over canonical JSON
    card_path.write_text(json.dumps(dict(reversed(list(data.items())))))
    load_model(path)
    assert card_digest({**data, "sha256": "0" * 64}) != data["card_sha256"]


def test_stamp_card_refuses_weights_that_are_not_the_cards(tmp_path, saved):
    _, path = saved
    other = save_model(get_model("fsrcnn", scale=2, d=16), tmp_path / "other")
    path.write_bytes(other.read_bytes())
    with pytest.raises(ModelFileError, match="do not match the card's sha256"):
        files.stamp_card(path)


@pytest.mark.parametrize("name", sorted(pretrained.PRETRAINED))
def test_every_shipped_card_is_stamped(name):
    data = json.loads(pretrained.pretrained_path(name).with_suffix(".json").read_text())
    assert data["card_sha256"] == card_digest(data)

"""Model cards: one schema for every card, and the load-time check agrees with it."""

from __future__ import annotations

import copy
import json

import hypothesis.strategies as st
import jsonschema
import pytest
from hypothesis import given, settings

from xsr.models import pretrained
from xsr.models.card import ModelCard, load_schema
from xsr.models.files import save_model
from xsr.models.registry import get_model

SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

BUILDS = [
    ("bicubic", {}),
    ("srcnn", {}),
    ("fsrcnn", {"variant": "original"}),
    ("srnet3d", {"features": 4, "shrink": 2}),
    ("xsrnet", {"window": 5}),
    ("chain", {"stages": [{"arch": "srcnn"}, {"arch": "srnet3d", "scale": 1, "features": 4}]}),
]


def test_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _shipped_cards():
    return sorted(pretrained.WEIGHTS_DIR.glob("*.json"))


def test_every_shipped_card_matches_the_schema():
    for path in _shipped_cards():
        VALIDATOR.validate(json.loads(path.read_text()))
    for stem in pretrained.PRETRAINED.values():
        assert (pretrained.WEIGHTS_DIR / f"{stem}.json").exists()
        assert (pretrained.WEIGHTS_DIR / f"{stem}.safetensors").exists()


@pytest.mark.parametrize(("name", "config"), BUILDS)
def test_every_written_card_matches_the_schema(tmp_path, name, config):
    save_model(
        get_model(name, **config),
        tmp_path / name,
        variables=[{"name": "h", "units": "m", "long_name": "depth"}],
        normalisation={"h": {"mean": 1.5, "std": 0.25}},
        degradation={"method": "bicubic", "scale": 2},
        training={"generator": "shallow_water", "seeds": [1, 2], "epochs": 3},
        metrics={"psnr": 31.5, "data_range": 2.0},
    )
    VALIDATOR.validate(json.loads((tmp_path / f"{name}.json").read_text()))


def _valid():
    return ModelCard.from_dict(
        {
            "name": "demo",
            "arch": "srcnn",
            "config": {"scale": 2},
            "scale": 2,
            "window": 1,
            "time_radius": 0,
            "receptive_radius": 5,
            "variables": [
                {"name": "u", "units": "m s-1", "long_name": "eastward velocity"},
                {"name": "v", "units": "m s-1"},
            ],
            "normalisation": {"u": {"mean": 0.0, "std": 2.0}, "v": {"mean": 0.1, "std": 1}},
            "sha256": "a" * 64,
        }
    ).to_dict()


BROKEN = [
    ("scale", 0),
    ("window", 2),
    ("time_radius", 3),
    ("sha256", "A" * 64),
    ("variables", []),
    ("variables", [{"name": "u"}]),
    ("normalisation", {"u": {"mean": 0.0, "std": -1.0}, "v": {"mean": 0.0, "std": 1.0}}),
    ("normalisation", {"u": {"mean": 0.0, "std": 1.0}}),
    ("degradation", {"method": "coarsen"}),
    ("degradation", {"method": "lanczos", "scale": 2}),
    ("metrics", [1, 2]),
    ("parameters", -1),
    ("name", ""),
    ("surprise", True),
]


@pytest.mark.parametrize(("field", "value"), BROKEN)
def test_hand_check_refuses_what_the_schema_refuses(field, value):
    data = _valid()
    VALIDATOR.validate(data)
    data[field] = value
    schema_ok = VALIDATOR.is_valid(data)
    with pytest.raises(ValueError, match=field if field != "surprise" else "unknown fields"):
        ModelCard.from_dict(data)
    # time_radius, duplicate-free normalisation keys etc. go beyond JSON schema's reach
    if field not in ("time_radius", "normalisation"):
        assert not schema_ok


def test_missing_field():
    data = _valid()
    del data["sha256"]
    assert not VALIDATOR.is_valid(data)
    with pytest.raises(ValueError, match=r"lacks the required fields \['sha256'\]"):
        ModelCard.from_dict(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids,
    max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(training=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       metrics=st.dictionaries(st.text(max_size=6), json_values, max_size=4))  # fmt: skip
def test_round_trip_through_json(training, metrics):
    data = _valid()
    data["training"] = training
    data["metrics"] = metrics
    card = ModelCard.from_dict(copy.deepcopy(data))
    assert ModelCard.from_json(card.to_json()) == card
    assert card.to_dict() == data
    VALIDATOR.validate(card.to_dict())


def test_non_json_values_are_refused():
    data = _valid()
    data["metrics"] = {"psnr": float("nan")}
    with pytest.raises(ValueError, match="non-finite"):
        ModelCard.from_dict(data)
    data["metrics"] = {"psnr": {1, 2}}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        ModelCard.from_dict(data)
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelCard.from_json("{")


def test_summary_and_version():
    card = ModelCard.from_dict(_valid())
    assert card.summary()["variables"] == ["u", "v"]
    assert card.xsr_version


def test_kind_field_is_in_the_schema_and_the_hand_check(tmp_path):
    # a field model's card: one placeholder variable, kind written; the default kind is not
    path = save_model(
        get_model("srcnn"),
        tmp_path / "field",
        kind="field",
        variables=[{"name": "field", "units": "1", "long_name": "any scalar field"}],
    )
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["kind"] == "field"
    VALIDATOR.validate(data)
    assert ModelCard.from_dict(data).kind == "field"
    plain = _valid()
    assert "kind" not in plain  # specialised, the default: digests of older cards unchanged
    assert ModelCard.from_dict(plain).kind == "specialised"
    for bad in ({**plain, "kind": "universal"}, {**plain, "kind": "field"}):
        assert not VALIDATOR.is_valid(bad)  # unknown kind; a field card with two variables
        with pytest.raises(ValueError, match="kind"):
            ModelCard.from_dict(bad)


def test_site_field_is_in_the_schema_and_the_hand_check(tmp_path):
    # written only when a field model carries site detail; schema and hand check agree
    field_var = [{"name": "field", "units": "1", "long_name": "any scalar field"}]
    path = save_model(get_model("srcnn"), tmp_path / "plain", kind="field", variables=field_var)
    assert "site" not in json.loads(path.with_suffix(".json").read_text())
    good = {
        **_valid(),
        "kind": "field",
        "variables": field_var,
        "normalisation": {"field": {"mean": 0.0, "std": 1.0}},
        "site": {
            "method": "m",
            "coords": {"y": [0.0, 1.0], "x": None},
            "variables": {"t": {"dims": ["y", "x"], "shape": [2, 3]}},
        },
    }
    VALIDATOR.validate(good)
    assert ModelCard.from_dict(good).site == good["site"]
    broken = [
        {**good, "site": {"coords": {}, "variables": {"t": {"dims": ["y"], "shape": [2]}}}},
        {**good, "site": {"variables": {}}},
        {**good, "site": []},
    ]
    for bad in broken:
        assert not VALIDATOR.is_valid(bad)
        with pytest.raises(ValueError, match="site"):
            ModelCard.from_dict(bad)
    with pytest.raises(ValueError, match="site"):  # only a field model has site detail
        ModelCard.from_dict({**_valid(), "site": good["site"]})

"""Tests of :mod:`xsr.engine.reference` (ModelRef holds the card; one card-to-dict helper)."""

from __future__ import annotations

import pickle

import pytest
from toys import Toy2D

from xsr.engine import ModelRef, card_dict
from xsr.models import get_model, load_model
from xsr.models.card import ModelCard


def test_card_dict_is_the_one_conversion() -> None:
    card = load_model("fsrcnn-natural-x2").card
    assert card_dict(card) == card.to_dict()
    assert card_dict(None) == {}
    assert card_dict({"name": "x"}) == {"name": "x"}
    with pytest.raises(TypeError, match="ModelCard or a dict"):
        card_dict(3)


def test_a_reference_holds_the_models_card() -> None:
    model = load_model("fsrcnn-natural-x2")
    ref = ModelRef.from_model(model)
    assert isinstance(ref.card, ModelCard)
    assert ref.card.to_dict() == model.card.to_dict()
    assert (ref.arch, ref.scale, ref.window, ref.name) == ("fsrcnn", 2, 1, "fsrcnn-natural-x2")
    assert ref.sha256 == model.card.sha256  # the model file's hash
    assert pickle.loads(pickle.dumps(ref)).card == ref.card


def test_a_bare_model_gets_a_card_describing_it() -> None:
    model = Toy2D(channels=2)
    ref = ModelRef.from_model(model, name="mine")
    assert ref.card.variables == []
    assert ref.card.normalisation == {}
    assert ref.normalisation is None
    assert (ref.name, ref.channels, ref.receptive_radius) == ("mine", 2, 2)
    assert len(ref.sha256) == 64


def test_the_contract_numbers_come_from_the_module() -> None:
    model = get_model("xsrnet", scale=2)
    model.card = {"name": "stale", "scale": 4, "receptive_radius": 1}
    ref = ModelRef.from_model(model)
    assert (ref.name, ref.scale, ref.receptive_radius) == ("stale", 2, model.receptive_radius)


def test_from_path_keeps_the_path_and_the_key(tmp_path) -> None:
    from xsr.models.files import save_model

    path = save_model(get_model("fsrcnn", scale=2), tmp_path / "m")
    ref = ModelRef.from_path(str(path))
    assert ref.path == str(path)
    assert ref.weights == b""
    assert ref.key == ModelRef.from_model(load_model(path)).key

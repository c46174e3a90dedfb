"""Tests for xsr.train.card: the returned model, the history and the model card."""

from __future__ import annotations

import json

import numpy as np
import torch

from xsr.models.registry import get_model
from xsr.testing import random_movie
from xsr.train.card import _describe, _json_attrs, finish_model
from xsr.train.loop import LoopState
from xsr.train.model import PreparedModel
from xsr.train.trainer import fit

TINY = {"d": 8, "s": 4, "m": 1}


def test_json_attrs_make_anything_writable():
    attrs = _json_attrs({"a": np.float32(1.5), "b": np.arange(2), "c": object, 3: "x"})
    assert attrs["a"] == 1.5
    assert attrs["b"] == [0, 1]
    assert attrs["c"].startswith("<class")
    json.dumps(attrs)


def test_describe_names_the_transfer_source():
    net = get_model("fsrcnn", scale=2, **TINY)
    assert _describe("fsrcnn-natural-x2") == "fsrcnn-natural-x2"
    assert _describe(net) == "FSRCNN"
    assert _describe({"w": torch.zeros(1)}) == "dict"


def test_finish_model_restores_the_best_and_unfreezes():
    net = get_model("fsrcnn", scale=2, **TINY)
    best = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.features[0].weight.add_(1.0)
    net.features[0].weight.requires_grad_(False)
    model = PreparedModel(net, 2, 1, 0, 4, [], ["features.0.weight"])
    out = finish_model(model, LoopState(best_state=best))
    torch.testing.assert_close(out.features[0].weight, best["features.0.weight"])
    assert out.features[0].weight.requires_grad
    assert not out.training


def test_history_and_card_record_the_run():
    ds = random_movie(8, 32, 32, seed=2)
    ds["x"].attrs["period"] = 32000.0
    model, hist = fit(
        "fsrcnn", ds, scale=2, epochs=2, patch_size=4, batch_size=8, patches_per_epoch=8,
        progress=False, **TINY,
    )  # fmt: skip
    assert json.loads(hist.attrs["periodic"]) == [False, True]
    assert hist.attrs["train_batches_per_epoch"] == 1
    card = model.card
    assert card.training["periodic"] == {"y": False, "x": True}
    assert card.training["epochs"] == 2
    assert card.training["max_epochs"] == 2
    assert card.name == "fsrcnn-h-x2"
    assert card.metrics["best"]["h"]["psnr"] == float(
        hist["val_psnr"].sel(epoch=hist.attrs["best_epoch"], variable="h")
    )
    assert card.metrics["bicubic"]["h"]["psnr"] == hist.attrs["bicubic_val_psnr"][0]
    assert card.parameters == sum(p.numel() for p in model.parameters())


def test_card_of_a_fit_with_an_undefined_validation_metric_is_json(monkeypatch):
    # SSIM is undefined (NaN) where no valid cell lies away from a patch's edges (a land mask);
    # the card is JSON, which has no NaN: it says null and keeps the defined metrics
    from xsr.train import _torch_metrics as tm

    monkeypatch.setattr(tm, "ssim", lambda pred, *a, **k: torch.full(pred.shape[:2], torch.nan))
    model, hist = fit(
        "fsrcnn", random_movie(8, 32, 32, seed=3), scale=2, epochs=1, patch_size=4,
        batch_size=8, patches_per_epoch=8, progress=False, **TINY,
    )  # fmt: skip
    assert np.isnan(hist["val_ssim"]).all()
    assert np.isfinite(hist["val_psnr"]).all()
    card = json.loads(json.dumps(model.card.to_dict(), allow_nan=False))
    assert card["metrics"]["best"]["h"]["ssim"] is None
    assert card["metrics"]["bicubic"]["h"]["ssim"] is None
    assert card["metrics"]["best"]["h"]["psnr"] == float(hist["val_psnr"].squeeze())

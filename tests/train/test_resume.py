"""Tests for xsr.train.resume: run fingerprints, per-epoch saving, refusing another run's state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xsr.testing import random_movie
from xsr.train.config import FitConfig
from xsr.train.data import Statistics, select
from xsr.train.history import Checkpoint
from xsr.train.loop import LoopState, make_optimizer
from xsr.train.model import prepare_model
from xsr.train.resume import RunSaver, resume, run_fingerprint

TINY = {"d": 8, "s": 4, "m": 1}
CPU = torch.device("cpu")


def _run(ds=None, **cfg):
    cfg = FitConfig(**{"scale": 2, "model_config": TINY, **cfg})
    sel = select(random_movie(6, 16, 16) if ds is None else ds, cfg)
    model = prepare_model("fsrcnn", cfg, variables=sel.variables, device=CPU)
    return cfg, sel, model, make_optimizer(model.net, cfg)


def _fingerprint(ds=None, **cfg):
    cfg, sel, model, _ = _run(ds, **cfg)
    return run_fingerprint(cfg, sel, model)


def test_fingerprint_tells_runs_apart():
    base = _fingerprint()
    assert base == _fingerprint(progress=False)  # display options do not make another run
    assert base != _fingerprint(lr=2e-3)
    assert base != _fingerprint(halo=1)
    assert base != _fingerprint(periodic="x")
    assert base != _fingerprint(random_movie(7, 16, 16))


def test_saved_state_resumes_and_another_run_is_refused(tmp_path):
    cfg, sel, model, opt = _run(checkpoint=tmp_path, resume=True)
    fp = run_fingerprint(cfg, sel, model)
    assert resume(cfg, fp, model, opt) is None  # nothing saved yet: start fresh
    stats = Statistics(np.array([1.0]), np.array([2.0]), np.array([3.0]))
    state = LoopState(records=[{"epoch": 1, "loss": 0.5}], epoch=1)
    assert state.improve(0.25, 1, model.net)
    RunSaver(cfg, fp, model, opt, stats)(state, True)
    assert Checkpoint(tmp_path).exists()
    back, back_stats = resume(cfg, fp, model, opt)
    assert (back.epoch, back.best_loss, back.best_epoch, back.records) == (
        1,
        0.25,
        1,
        state.records,
    )
    for k, v in state.best_state.items():
        torch.testing.assert_close(back.best_state[k], v)
    np.testing.assert_array_equal(back_stats.std, [2.0])
    with pytest.raises(ValueError, match="written by a different run"):
        resume(cfg, "0" * 16, model, opt)


def test_no_checkpoint_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, _, model, opt = _run()
    stats = Statistics(np.zeros(1), np.ones(1), np.ones(1))
    saver = RunSaver(cfg, "x", model, opt, stats)
    state = LoopState()
    state.improve(1.0, 1, model.net)
    saver(state, True)
    assert saver.ck is None
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_a_checkpoint_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    cfg, _, model, opt = _run(checkpoint=tmp_path / "f")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        resume(cfg, "x", model, opt)

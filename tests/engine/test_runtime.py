"""Tests of :mod:`xsr.engine.runtime`: settings applied while the engine runs, then restored."""

from __future__ import annotations

import os

import numpy as np
import pytest
from toys import Toy2D

from xsr.engine import inference, runtime


def test_huge_pages_are_asked_for_only_while_the_engine_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.delenv(runtime.ENV_SWITCH, raising=False)
    seen = []
    original = inference._forward

    def spy(module, inp, *, pair):
        seen.append(os.environ.get("THP_MEM_ALLOC_ENABLE"))
        return original(module, inp, pair=pair)

    monkeypatch.setattr(inference, "_forward", spy)
    before = dict(os.environ)
    inference.infer(Toy2D(), np.zeros((1, 1, 2, 8, 8), "float32"))
    assert seen
    assert set(seen) == {"1"}
    assert dict(os.environ) == before  # restored


@pytest.mark.parametrize(("user", "switch", "expected"), [("0", None, "0"), (None, "off", None)])
def test_the_users_choice_and_the_switch_win(
    monkeypatch: pytest.MonkeyPatch, user: str | None, switch: str | None, expected: str | None
) -> None:
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.delenv(runtime.ENV_SWITCH, raising=False)
    if user is not None:
        monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", user)
    if switch is not None:
        monkeypatch.setenv(runtime.ENV_SWITCH, switch)
    with runtime.scope():
        assert os.environ.get("THP_MEM_ALLOC_ENABLE") == expected
    assert os.environ.get("THP_MEM_ALLOC_ENABLE") == user


def test_nested_scopes_restore_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.delenv(runtime.ENV_SWITCH, raising=False)
    with runtime.scope():
        with runtime.scope():
            pass
        assert os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"  # the outer block still runs
    assert "THP_MEM_ALLOC_ENABLE" not in os.environ


def test_release_free_memory_obeys_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.ENV_SWITCH, "off")
    assert runtime.release_free_memory() is False
    monkeypatch.setenv(runtime.ENV_SWITCH, "on")
    assert runtime.release_free_memory() is (runtime._libc() is not None)

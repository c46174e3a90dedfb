"""Tests of :mod:`xsr.engine.threads` (the engine's thread policy)."""

from __future__ import annotations

import threading
import types

import pytest
import torch

from xsr.engine import threads


def test_worker_threads_follow_the_dask_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    assert threads.worker_threads() is None  # not on a worker
    fake = types.SimpleNamespace(state=types.SimpleNamespace(nthreads=7))
    monkeypatch.setattr(distributed, "get_worker", lambda: fake)
    assert threads.worker_threads() == 7


def test_model_thread_takes_the_workers_thread_count_and_the_caller_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "worker_threads", lambda: before + 1)
    try:
        seen = threads.serialised(
            lambda: (threading.current_thread().name, torch.get_num_threads()), cpu=True
        )
        assert seen[0].startswith("xsr-model")
        assert seen[1] == before + 1
    finally:
        threads.model_thread().submit(torch.set_num_threads, before).result()
        torch.set_num_threads(before)


def test_gpu_work_runs_in_the_callers_thread() -> None:
    name = threads.serialised(lambda: threading.current_thread().name, cpu=False)
    assert name == threading.current_thread().name


def test_release_does_nothing_when_the_runtime_settings_are_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called = []
    monkeypatch.setattr(threads, "_gomp_pause_functions", lambda: [called.append])
    monkeypatch.setenv("XSR_ENGINE_RUNTIME", "off")
    assert threads.release_idle_openmp_threads() is False
    assert called == []
    monkeypatch.setenv("XSR_ENGINE_RUNTIME", "on")
    threads.release_idle_openmp_threads()
    assert called == [1]  # omp_pause_soft

"""Tests of :mod:`xsr.engine.device` (the one device resolver)."""

from __future__ import annotations

import pytest
import torch

from xsr.engine import device, resolve_device


def test_auto_is_cuda_if_available_else_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XSR_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    monkeypatch.setattr(device, "_mps_available", lambda: True)  # never chosen by "auto"
    assert resolve_device("auto").type == expected


def test_mps_only_when_asked_and_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS"):
        resolve_device("mps")
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")


def test_training_resolves_devices_with_the_same_function() -> None:
    from xsr.train import trainer

    assert trainer.resolve_device is resolve_device


def test_not_a_device_names_the_argument() -> None:
    with pytest.raises(ValueError, match="device='abacus' is not a torch device"):
        resolve_device("abacus")


def test_full_float32_restores_nothing_on_cpu() -> None:
    with device.full_float32(torch.device("cpu")):
        pass

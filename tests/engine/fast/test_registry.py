"""Fast forms as a whole (:mod:`xsr.engine.fast.registry`): every shipped model's and every
registered architecture's fast form equals the model's own forward; an architecture without one
runs correctly; the caller's model is never touched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from toys import crop_core, fast_form, randomise

from xsr.engine import infer
from xsr.engine.fast import FAST_FORMS, FastForm, prepare
from xsr.models import get_model, list_models, load_model
from xsr.models.base import SRModel
from xsr.models.pretrained import list_pretrained


def _input(model: nn.Module, h: int, w: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    window = (model.window,) if model.window > 1 else ()
    return torch.randn(n, model.channels, *window, h, w, generator=gen)


def _assert_equal(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    assert got.shape == expected.shape
    torch.testing.assert_close(
        got.float(), expected, rtol=rtol, atol=rtol * float(expected.abs().max())
    )


def _check_fast_form(model: nn.Module, *, bf16: bool = True) -> None:
    """The fast form's forward and core against the model's own forward (and bfloat16)."""
    model = model.eval()
    fast = fast_form(model)
    r = model.receptive_radius
    x = _input(model, 2 * r + 7, 2 * r + 5)
    with torch.no_grad():
        full = model(x)
        _assert_equal(fast(x), full)
        core = getattr(fast, "forward_core", None)
        if core is not None:
            _assert_equal(core(x), crop_core(full, model))
        if bf16:  # the bfloat16 paths (and their float32 detours) stay close to float32
            with torch.autocast("cpu", dtype=torch.bfloat16):
                rough = fast(x)
                rough_core = core(x) if core is not None else None
            span = float(full.abs().max())
            assert float((rough.float() - full).abs().max()) < 0.05 * span
            if rough_core is not None:
                err = float((rough_core.float() - crop_core(full, model)).abs().max())
                assert err < 0.05 * span


@pytest.mark.parametrize("name", list_pretrained())
def test_every_shipped_models_fast_form_equals_its_forward(name: str) -> None:
    model = load_model(name)
    fast = fast_form(model)
    if model.arch in FAST_FORMS:
        assert isinstance(fast, FastForm)
    _check_fast_form(model)


CONFIGS = {
    "bicubic": [{"scale": 2}],
    "srcnn": [{"scale": 2}, {"scale": 3, "channels": 2, "residual": True}],
    "fsrcnn": [
        {"scale": 2},
        {"scale": 3, "channels": 2, "residual": True},
        {"scale": 2, "output_activation": "prelu", "conserve": True},
        {"scale": 2, "deconv_kernel": 5},
        {"scale": 2, "variant": "original"},
    ],
    "srnet3d": [
        {"scale": 2, "features": 8, "shrink": 4},
        {"scale": 1, "features": 8, "shrink": 4, "pad_mode": "zeros", "residual": True},
        {"scale": 2, "features": 8, "shrink": 4, "conserve": True},
    ],
    "xsrnet": [
        {"scale": 2},
        {"scale": 4, "window": 1, "channels": 2},
        {"scale": 2, "blocks": 0, "conserve": True},
        {"scale": 2, "window": 1, "channels": 2, "base": "linear"},
        {"scale": 4, "blocks": 0, "base": "linear", "base_radius": 5},
    ],
    "linear": [{"scale": 2, "radius": 2}, {"scale": 3, "channels": 2}],
    "chain": [
        {"stages": [{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]},
        {"stages": [{"arch": "srnet3d", "scale": 1}, {"arch": "xsrnet", "scale": 2}]},
    ],
}


def test_every_registered_architecture_is_covered() -> None:
    assert set(CONFIGS) == set(list_models())
    assert set(FAST_FORMS) <= set(list_models())


@pytest.mark.parametrize(
    ("arch", "config"), [(a, c) for a, configs in CONFIGS.items() for c in configs]
)
def test_fast_forms_equal_the_models_forward(arch: str, config: dict) -> None:
    _check_fast_form(randomise(get_model(arch, **config)), bf16=arch != "bicubic")


def test_the_callers_model_is_never_changed() -> None:
    model = randomise(get_model("fsrcnn", scale=2)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    layouts = [p.is_contiguous() for p in model.parameters()]
    infer(model, np.zeros((1, 1, 2, 12, 12), "float32"))
    assert [type(m) for m in model.modules()] == kinds  # no PReLU swapped, nothing fused
    assert [p.is_contiguous() for p in model.parameters()] == layouts
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    fast = fast_form(model)  # the engine's copy: same state dict, so the same sha256
    assert fast.model.state_dict().keys() == state.keys()


def test_the_fast_form_is_for_the_registered_class_only() -> None:
    class NotFSRCNN(SRModel):
        arch = "fsrcnn"  # a name that collides with a registered architecture

        def __init__(self) -> None:
            super().__init__(scale=2, channels=1, window=1)
            self.conv = nn.Conv2d(1, 4, 3, padding=1)

        @property
        def receptive_radius(self) -> int:
            return 1

        def _forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pixel_shuffle(self.conv(x), 2)

    model = NotFSRCNN().eval()
    assert prepare(copy.deepcopy(model)).__class__ is NotFSRCNN


class Unregistered(SRModel):
    """A toy architecture that no registry knows: a PReLU, a 3x3 convolution, a pixel shuffle."""

    arch = "toy-unregistered"

    def __init__(self) -> None:
        super().__init__(scale=2, channels=1, window=3)
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.PReLU(8, init=0.2)
        self.tail = nn.Conv2d(8, 4, 3, padding=1)
        self.config = {}

    @property
    def receptive_radius(self) -> int:
        return 2

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        return F.pixel_shuffle(self.tail(self.act(self.head(x.reshape(n, c * t, h, w)))), 2)


def test_an_architecture_without_a_fast_form_runs_correctly_through_the_engine() -> None:
    model = randomise(Unregistered()).eval()
    assert model.arch not in FAST_FORMS
    prepared = prepare(copy.deepcopy(model))
    assert not isinstance(prepared, FastForm)  # its own forward
    frames = np.random.default_rng(0).standard_normal((1, 1, 7, 19, 17)).astype("float32")
    tiled = infer(model, frames, tile=(5, 6), batch_size=2, margin=2)
    with torch.no_grad():  # the plain forward on whole frames, cropped to the interior
        x = torch.from_numpy(frames[0, 0])
        windows = torch.stack([x[k : k + 3] for k in range(5)])[:, None]
        whole = model(windows)[:, 0, 4:-4, 4:-4].numpy()
    np.testing.assert_allclose(tiled[0, 0], whole, rtol=0, atol=1e-5 * np.abs(whole).max())
    with torch.no_grad():
        _check_fast_form(model)

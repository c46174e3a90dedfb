"""Tiny models obeying the model contract, shared by the engine and array-layer tests, and a
weight randomiser for the architectures' tests."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Toy2D",
    "Toy3D",
    "assert_first_layer_channels_last",
    "crop_core",
    "fast_form",
    "randomise",
]


def randomise(model: nn.Module, seed: int = 1) -> nn.Module:
    """Random weights everywhere, PReLU slopes and biases included (fresh models have zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def fast_form(model: nn.Module) -> nn.Module:
    """The engine's prepared form of a copy of ``model`` (its fast form where it has one)."""
    from xsr.engine.fast import prepare

    return prepare(copy.deepcopy(model))


def crop_core(y: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """The core of a full output: ``scale * receptive_radius`` fine cells less on each side."""
    n = int(model.scale) * int(model.receptive_radius)
    return y[..., n : y.shape[-2] - n, n : y.shape[-1] - n]


def assert_first_layer_channels_last(
    arch: str, config: dict, activation: str, x: torch.Tensor, *, core: bool
) -> None:
    """Under the engine's channels-last weights, the first layer's output is channels-last.

    A model ``arch`` with random weights runs plainly and as the engine prepares it (same
    weights, channels-last, its fast form); a hook on the module named ``activation`` (the
    first layer's activation, a path inside the model) sees a channels-last output in the
    engine's copy, and the outputs are equal. ``core`` runs the fast form's ``forward_core``
    (against the cropped plain forward) instead of the forward.
    """
    from xsr.models.registry import get_model

    model = randomise(get_model(arch, **config)).eval()
    fast = fast_form(model)
    outs = []
    fast.model.get_submodule(activation).register_forward_hook(lambda m, inp, out: outs.append(out))
    with torch.no_grad():
        expected = crop_core(model(x), model) if core else model(x)
        got = fast.forward_core(x) if core else fast(x)
    fmt = torch.channels_last if outs[0].ndim == 4 else torch.channels_last_3d
    assert outs[0].is_contiguous(memory_format=fmt)
    assert not outs[0].is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


class Toy2D(nn.Module):
    """A tiny 2-D model obeying the contract: two 3x3 convs at low resolution, pixel shuffle."""

    arch = "toy2d"

    def __init__(self, scale: int = 2, channels: int = 1, seed: int = 0) -> None:
        super().__init__()
        self.scale, self.channels, self.window, self.time_radius = scale, channels, 1, 0
        self.receptive_radius = 2
        self.config = {"scale": scale, "channels": channels, "seed": seed}
        self.c1 = nn.Conv2d(channels, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, channels * scale * scale, 3, padding=1)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(self.c2(torch.tanh(self.c1(x))), self.scale)
        return y + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class Toy3D(nn.Module):
    """A tiny windowed model: two valid-in-time 3x3x3 convs over 5 frames, pixel shuffle."""

    arch = "toy3d"

    def __init__(self, scale: int = 2, channels: int = 1, seed: int = 1) -> None:
        super().__init__()
        self.scale, self.channels, self.window, self.time_radius = scale, channels, 5, 2
        self.receptive_radius = 2
        self.config = {"scale": scale, "channels": channels, "seed": seed}
        self.c1 = nn.Conv3d(channels, 4, 3, padding=(0, 1, 1))
        self.c2 = nn.Conv3d(4, channels * scale * scale, 3, padding=(0, 1, 1))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c2(torch.tanh(self.c1(x)))[:, :, 0]
        centre = x[:, :, self.time_radius]
        return F.pixel_shuffle(y, self.scale) + F.interpolate(
            centre, scale_factor=self.scale, mode="nearest"
        )

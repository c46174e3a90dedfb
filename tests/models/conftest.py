"""Shared checks of the model contract, used by every architecture's test file."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xsr.models.base import SRModel
from xsr.models.registry import get_model


def model_input(
    model: SRModel, h: int, w: int, *, n: int = 2, seed: int = 0, dtype=torch.float32
) -> torch.Tensor:
    """A random input of the right layout for ``model``."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, model.channels, h, w)
    if model.window > 1:
        shape = (n, model.channels, model.window, h, w)
    return torch.randn(shape, generator=gen, dtype=dtype)


def smooth_field(shape: tuple[int, ...], *, seed: int = 0) -> torch.Tensor:
    """A smooth random field (low-pass filtered noise), unit variance."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=gen)
    flat = noise.reshape(-1, 1, *shape[-2:])
    kernel = torch.ones(1, 1, 5, 5) / 25.0
    for _ in range(2):
        flat = F.conv2d(F.pad(flat, (2, 2, 2, 2), mode="circular"), kernel)
    field = flat.reshape(shape)
    return (field - field.mean()) / field.std()


class Checks:
    """The contract checks (static methods, reached through the ``checks`` fixture)."""

    input = staticmethod(model_input)
    smooth = staticmethod(smooth_field)

    @staticmethod
    def output_shape(model: SRModel, h: int, w: int) -> None:
        x = model_input(model, h, w)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, model.channels, model.scale * h, model.scale * w)
        assert y.dtype == x.dtype
        assert torch.isfinite(y).all()

    @staticmethod
    def gradients_reach_every_parameter(model: SRModel, h: int = 6, w: int = 5) -> None:
        model.train()
        x = model_input(model, h, w, seed=1)
        target = torch.randn(2, model.channels, model.scale * h, model.scale * w)
        loss = F.mse_loss(model(x), target)
        loss.backward()
        named = list(model.named_parameters())
        assert named, "model has no parameters"
        for name, p in named:
            assert p.grad is not None, f"no gradient reached {name}"
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"zero gradient at {name}"

    @staticmethod
    def footprint(model: SRModel) -> tuple[int, int]:
        """Perturb one low-resolution pixel; return (max changed cell distance, radius).

        The model runs in float64 with all PReLU slopes set to 0.3, so nothing is dead; the
        input is large enough that no padding reaches the changed outputs.
        """
        model = model.double().eval()
        for module in model.modules():
            if isinstance(module, nn.PReLU):
                nn.init.constant_(module.weight, 0.3)
        r, s = model.receptive_radius, model.scale
        size = 2 * r + 7
        a = size // 2
        x = model_input(model, size, size, n=1, seed=3, dtype=torch.float64)
        distances = []
        frames = range(model.window) if model.window > 1 else [None]
        with torch.no_grad():
            base = model(x)
            for t in frames:
                x2 = x.clone()
                if t is None:
                    x2[0, 0, a, a] += 1.0
                else:
                    x2[0, 0, t, a, a] += 1.0
                diff = (model(x2) - base).abs().amax(dim=(0, 1))
                changed = torch.nonzero(diff > 1e-10)
                assert len(changed), f"perturbing frame {t} changed nothing"
                cells = changed // s
                distances.append(int((cells - a).abs().max()))
        return max(distances), r

    @staticmethod
    def receptive_radius_is_tight_bound(model: SRModel) -> None:
        reach, r = Checks.footprint(model)
        assert reach <= r, f"output changed {reach} cells away, declared radius {r}"
        assert reach >= r - 1, f"declared radius {r} is loose: footprint reaches only {reach}"

    @staticmethod
    def overfit_one_batch(
        model: SRModel, *, size: int = 8, steps: int = 100, lr: float = 1e-3, n: int = 2
    ) -> tuple[float, float]:
        """Fit one tiny batch (coarsened smooth target); return (first loss, last loss)."""
        torch.manual_seed(0)
        model.train()
        s, t = model.scale, model.window
        hr = smooth_field((n, model.channels, t, s * size, s * size), seed=5)
        lr_movie = F.avg_pool3d(hr, (1, s, s))
        x = lr_movie if t > 1 else lr_movie[:, :, 0]
        target = hr[:, :, t // 2]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(model(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses[0], min(losses[-5:])

    @staticmethod
    def rebuilds_identically(model: SRModel) -> None:
        import json

        config = json.loads(json.dumps(model.config))  # JSON-serialisable
        rebuilt = get_model(model.arch, **config)
        assert rebuilt.config == model.config
        assert type(rebuilt) is type(model)
        a = {k: v.shape for k, v in model.state_dict().items()}
        b = {k: v.shape for k, v in rebuilt.state_dict().items()}
        assert a == b
        rebuilt.load_state_dict(model.state_dict())
        x = model_input(model, 5, 6)
        model.eval()
        rebuilt.eval()
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


@pytest.fixture
def checks() -> type[Checks]:
    """The model-contract checks."""
    return Checks

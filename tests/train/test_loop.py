"""Tests for xsr.train.loop: loss, meter, optimiser and schedule, predictions over cores, state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xsr.models.registry import get_model
from xsr.train.config import FitConfig
from xsr.train.loop import LoopState, Meter, Predictor, make_optimizer, masked_loss


def test_masked_loss_ignores_masked_values():
    pred = torch.tensor([[[[1.0, 3.0], [0.0, 100.0]]]])
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[[True, True], [True, False]]]])
    assert float(masked_loss(pred, target, mask, "mse")) == pytest.approx(10 / 3)
    assert float(masked_loss(pred, target, mask, "mae")) == pytest.approx(4 / 3)
    assert float(masked_loss(pred, target, mask, "psnr")) == pytest.approx(10 * math.log10(10 / 3))
    nothing = torch.zeros_like(mask)
    assert float(masked_loss(pred, target, nothing, "mse")) == 0.0


def test_meter_averages_per_sample_in_physical_units():
    m = Meter(1)
    pred, target = torch.ones(3, 1, 8, 8), torch.zeros(3, 1, 8, 8)
    std, mean, rng = (torch.tensor([v], dtype=torch.float64) for v in (2.0, 5.0, 10.0))
    m.add(pred, target, target == 0, std, mean, rng, loss=1.5)
    means = m.means()
    assert means["mse"] == pytest.approx([4.0])  # (1 * std) ** 2
    assert means["mae"] == pytest.approx([2.0])
    assert means["psnr"] == pytest.approx([10 * math.log10(100 / 4)])
    assert m.loss / m.n == 1.5


@pytest.mark.parametrize("schedule", ["cosine", "plateau", None])
def test_optimiser_reports_the_scheduled_rate(schedule):
    net = torch.nn.Linear(2, 2)
    opt = make_optimizer(net, FitConfig(lr=0.01, epochs=4, lr_schedule=schedule, patience=2))
    assert opt.current_lr(0.01) == pytest.approx(0.01)
    for _ in range(2):
        net(torch.ones(1, 2)).sum().backward()
        opt.optimizer.step()
        opt.step_schedule(1.0)  # a plateau
    expected = {"cosine": 0.005, "plateau": 0.01, None: 0.01}[schedule]
    assert opt.current_lr(0.01) == pytest.approx(expected)


def test_layer_rates_become_groups():
    net = get_model("fsrcnn", scale=2, d=8, s=4, m=1)
    opt = make_optimizer(net, FitConfig(lr=1e-3, layer_lr={"features.0": 1e-5}))
    rates = sorted(g["lr"] for g in opt.optimizer.param_groups)
    assert rates[0] == pytest.approx(1e-5)
    assert rates[-1] == pytest.approx(1e-3)


def test_model_predictions_see_exactly_the_training_halo():
    torch.manual_seed(0)
    net = get_model("srcnn", scale=2, features=[4, 4]).eval()
    pred = Predictor(net, scale=2, window=1, halo=1, patch_size=4)
    x = torch.randn(2, 1, 10, 10)  # context 3 around a 4-cell core
    with torch.no_grad():
        wide = pred.model(x, context=3)
        narrow = pred.model(x[..., 2:-2, 2:-2])
    assert wide.shape == (2, 1, 8, 8)
    torch.testing.assert_close(wide, narrow, rtol=0, atol=0)


def test_bicubic_prediction_is_interpolation_over_the_core():
    x = torch.randn(1, 1, 8, 8)
    pred = Predictor(None, scale=2, window=1, halo=0, patch_size=4)
    full = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(pred.bicubic(x, context=2), full[..., 4:12, 4:12])
    movie = torch.stack([x * 0, x, x * 0], dim=2)  # window 3: the centre frame
    pred3 = Predictor(None, scale=2, window=3, halo=0, patch_size=4)
    torch.testing.assert_close(pred3.bicubic(movie, context=2), full[..., 4:12, 4:12])


def test_loop_state_keeps_the_best_weights():
    net = torch.nn.Linear(1, 1)
    state = LoopState()
    assert state.improve(2.0, 1, net)
    with torch.no_grad():
        net.weight.fill_(7.0)
    assert not state.improve(3.0, 2, net)
    assert state.best_epoch == 1
    assert float(state.best_state["weight"]) != 7.0
    assert state.improve(1.0, 3, net)
    assert float(state.best_state["weight"]) == 7.0
    assert (state.best_loss, state.best_epoch, state.bad_epochs) == (1.0, 3, 0)

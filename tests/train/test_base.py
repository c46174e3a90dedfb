"""The closed-form linear base of a network (:mod:`xsr.train.base`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsr
from xsr.train.base import _detail, fit_linear_base
from xsr.train.config import FitConfig
from xsr.train.data import make_patches, select, statistics
from xsr.train.linear import fit_linear
from xsr.train.model import prepare_model
from xsr.train.trainer import fit


def _prepared(ds: xr.Dataset, **model_config):
    cfg = FitConfig(scale=2, patch_size=4, periodic=False, val_fraction=0.25,
                    model_config={"base": "linear", **model_config})  # fmt: skip
    sel = select(ds, cfg)
    p = prepare_model("xsrnet", cfg, variables=sel.variables, device=torch.device("cpu"))
    patches = make_patches(sel, cfg, scale=2, window=p.window, halo=p.halo)
    return p.net, sel, cfg, patches, statistics(sel, patches)


@pytest.fixture(scope="module")
def swe() -> xr.Dataset:
    return xsr.data.shallow_water(32, 32, frames=8, seed=3, dtype="float64")


def test_without_detail_the_base_is_the_linear_baseline(swe):
    net, sel, cfg, patches, stats = _prepared(swe[["h", "tracer"]], window=1, blocks=1)
    with torch.no_grad():
        net.tail.weight.zero_()  # no detail: the base alone is solved
    fit_linear_base(net, sel, cfg, patches, stats)
    (a, b), = patches.train_blocks  # fmt: skip
    baseline = fit_linear(swe[["h", "tracer"]].isel(time=slice(a, b)), scale=2, periodic=False)
    # the filter's weights do not depend on the normalisation (its bias does)
    torch.testing.assert_close(
        net.base.conv.weight, baseline.conv.weight.to(net.base.conv.weight.dtype),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip


@pytest.mark.parametrize("window", [1, 3])
def test_the_solve_never_raises_the_training_error(swe, window):
    torch.manual_seed(1)
    net, sel, cfg, patches, stats = _prepared(swe[["h"]], window=window, blocks=1)
    with torch.no_grad():
        net.tail.weight.mul_(20)  # a large detail, as in a trained network

    def training_mse() -> float:
        (a, b), = patches.train_blocks  # fmt: skip
        low = xsr.degradation.degrade(swe[["h"]], scale=2).isel(time=slice(a, b))
        high = swe["h"].isel(time=slice(a, b)).values
        lo = (low["h"].values[None, None] - stats.mean[0]) / stats.std[0]
        with torch.no_grad():
            from xsr.train.linear import _pad

            x = _pad(lo, net.base.radius, (False, False))[0, 0]
            base = net.base.valid(torch.as_tensor(x[:, None], dtype=torch.float32)).numpy()
        half = window // 2
        pred = base[half : b - a - half, 0] + _detail(net, lo, (False, False))[0, 0]
        truth = (high[half : b - a - half] - stats.mean[0]) / stats.std[0]
        return float(np.mean((pred - truth) ** 2))

    before = training_mse()
    mse = fit_linear_base(net, sel, cfg, patches, stats)
    after = training_mse()
    assert after < before
    assert mse["h"] == pytest.approx(after, rel=1e-3)


def test_fit_solves_the_base_first_and_says_so(swe):
    model, hist = fit("xsrnet", swe, variables=["h"], scale=2, window=1, blocks=1, base="linear",
                      epochs=1, patch_size=4, batch_size=4, patches_per_epoch=8, progress=False,
                      keep_start=True)  # fmt: skip
    assert set(model.card.training["linear_base"]["mse_normalised"]) == {"h"}
    assert "base.conv.weight" in hist.attrs["frozen"]  # solved, not stepped
    assert all(p.requires_grad for p in model.parameters())  # frozen for this fit only
    # before any gradient step (epoch 0) the model is the solved linear filter, far above bicubic
    metrics = model.card.metrics
    assert hist.attrs["best_epoch"] == 0
    assert metrics["best"]["h"]["psnr"] > metrics["bicubic"]["h"]["psnr"] + 2.0


def test_bicubic_base_is_untouched(swe):
    net, sel, cfg, patches, stats = _prepared(swe[["h"]], window=1, blocks=1, base="bicubic")
    assert fit_linear_base(net, sel, cfg, patches, stats) is None


def test_periodic_and_dask_input_give_the_same_solve(swe):
    chunked = swe[["h"]].chunk({"time": 2})
    eager_net, *rest = _prepared(swe[["h"]], window=1, blocks=0)
    fit_linear_base(eager_net, *rest)
    lazy_net, *rest = _prepared(chunked, window=1, blocks=0)
    fit_linear_base(lazy_net, *rest)
    torch.testing.assert_close(eager_net.base.conv.weight, lazy_net.base.conv.weight)


@pytest.mark.parametrize("window", [1, 3])
def test_reading_a_few_frames_at_a_time_gives_the_same_solve(swe, window, monkeypatch):
    import xsr.train.base as base

    whole, *rest = _prepared(swe[["h"]], window=window, blocks=1)
    fit_linear_base(whole, *rest)
    monkeypatch.setattr(base, "_CELLS_PER_READ", 2 * 16 * 16)  # two frames' centres per read
    pieces, *rest = _prepared(swe[["h"]], window=window, blocks=1)
    fit_linear_base(pieces, *rest)
    torch.testing.assert_close(whole.base.conv.weight, pieces.base.conv.weight)
    torch.testing.assert_close(whole.base.conv.bias, pieces.base.conv.bias)


def test_a_base_frozen_by_the_caller_is_frozen_once(swe):
    _, hist = fit("xsrnet", swe, variables=["h"], scale=2, window=1, blocks=0, base="linear",
                  freeze=["base"], epochs=1, patch_size=4, batch_size=4, patches_per_epoch=4,
                  progress=False)  # fmt: skip
    frozen = hist.attrs["frozen"].split(", ")
    assert sorted(frozen) == ["base.conv.bias", "base.conv.weight"]


def test_a_conserving_network_is_solved_before_its_projection(swe):
    net, sel, cfg, patches, stats = _prepared(swe[["h"]], window=1, blocks=1, conserve=True)
    with torch.no_grad():
        net.tail.weight.zero_()  # no detail: the unprojected output is the base alone
    fit_linear_base(net, sel, cfg, patches, stats)
    plain, *rest = _prepared(swe[["h"]], window=1, blocks=1)
    with torch.no_grad():
        plain.tail.weight.zero_()
    fit_linear_base(plain, *rest)
    torch.testing.assert_close(net.base.conv.weight, plain.base.conv.weight)


def test_a_land_mask_near_every_cell_still_gives_a_solve(swe):
    # land stripes 8 cells apart: every cell is within the receptive radius of a masked cell,
    # so the detail of an input with NaN would be NaN everywhere; masked inputs are 0, as in
    # the training batches, and only the masked targets are left out
    ds = swe[["h"]].copy(deep=True)
    ds["h"][:, :, ::8] = np.nan  # whole 2 x 2 blocks: masked at low resolution too
    ds["h"][:, :, 1::8] = np.nan
    net, sel, cfg, patches, stats = _prepared(ds, window=1, blocks=2)
    assert net.receptive_radius >= 4  # coarse cells; the stripes are 4 coarse cells apart
    before = net.base.conv.weight.detach().clone()
    mse = fit_linear_base(net, sel, cfg, patches, stats)
    assert np.isfinite(mse["h"])
    assert torch.isfinite(net.base.conv.weight).all()
    assert not torch.equal(net.base.conv.weight, before)

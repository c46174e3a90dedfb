"""fit(..., site=True): learning a field model's site detail on its training grid."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xsr.degradation import degrade
from xsr.testing import random_movie
from xsr.train import fit
from xsr.upscaling import upscale

FAST = {"epochs": 1, "patch_size": 8, "patches_per_epoch": 8, "batch_size": 8, "progress": False}


def _movie(sign_flip_at: int | None = None, frames: int = 24) -> xr.Dataset:
    """A random movie plus a fixed fine-scale pattern (its sign flipped from a frame on)."""
    ds = random_movie(frames, 32, 32, seed=1)
    pattern = np.random.default_rng(0).standard_normal((32, 32))
    sign = np.ones(frames)
    if sign_flip_at is not None:
        sign[sign_flip_at:] = -1.0
    amplitude = 0.5 * float(ds["h"].std())
    ds["h"] = ds["h"] + amplitude * xr.DataArray(sign, dims="time") * xr.DataArray(
        pattern, dims=("y", "x")
    )
    return ds


def _mse(net, ds: xr.Dataset) -> float:
    low = degrade(ds, scale=2, method="coarsen")
    return float(((upscale(low, net)["h"] - ds["h"].values) ** 2).mean())


@pytest.fixture(scope="module")
def learnt() -> tuple:
    ds = _movie()
    train, test = ds.isel(time=slice(0, 16)), ds.isel(time=slice(16, None))
    net, _ = fit("field-xsrnet-x2", train[["h"]], site=True, **FAST)
    return net, test


def test_a_fixed_pattern_is_learnt_and_pays_on_later_frames(learnt: tuple) -> None:
    net, test = learnt
    meta = net.card.site["variables"]["h"]
    assert meta["dims"] == ["y", "x"]
    assert meta["shape"] == [32, 32]
    assert meta["shrinkage"] > 0.8
    assert meta["frames"] + meta["validation_frames"] == 16
    assert net.card.site["coords"]["y"] == test["y"].values.tolist()
    with_site = _mse(net, test)
    net_alone = net.site
    net.site = None
    try:
        without = _mse(net, test)
    finally:
        net.site = net_alone
    assert with_site < 0.3 * without


def test_a_pattern_that_does_not_hold_on_validation_frames_is_not_kept() -> None:
    # the pattern's sign flips in the validation frames (the last 4 of 16): shrinkage 0
    ds = _movie(sign_flip_at=12, frames=16)
    net, _ = fit("field-xsrnet-x2", ds[["h"]], site=True, val_fraction=0.25, **FAST)
    assert net.card.site["variables"]["h"]["shrinkage"] == 0.0
    assert float(np.abs(net.site["h"].numpy()).max()) == 0.0


def test_an_unnamed_dataarray_gets_its_site_detail_back() -> None:
    da = _movie(frames=12)["h"].rename(None)
    net, _ = fit("field-xsrnet-x2", da, site=True, **FAST)
    assert list(net.site) == ["data"]
    low = degrade(da.isel(time=slice(0, 3)), scale=2, method="coarsen")
    assert "site=data" in upscale(low, net).attrs["history"]


def test_site_needs_a_field_model_and_validation_frames() -> None:
    ds = random_movie(8, 16, 16)
    with pytest.raises(ValueError, match=r"site=True .* field model"):
        fit("fsrcnn", ds, variables=["h"], scale=2, site=True, **FAST)
    with pytest.raises(ValueError, match="val_fraction > 0"):
        fit("field-xsrnet-x2", ds, site=True, val_fraction=0, **FAST)


def test_fine_tuning_a_sited_model_without_site_drops_the_old_detail(learnt: tuple) -> None:
    net, test = learnt
    again, _ = fit(net, test[["h"]], **FAST)
    assert again.site is None
    assert again.card.site is None


def test_a_drifting_pattern_is_weighted_towards_the_recent_frames() -> None:
    # the fixed pattern's amplitude grows over the record (a trend): the validation frames
    # pick a finite time scale, and the map is nearer the late amplitude than the mean one
    frames = 24
    ds = random_movie(frames, 32, 32, seed=1)
    pattern = np.random.default_rng(0).standard_normal((32, 32))
    growth = np.linspace(0.0, 1.0, frames) ** 3
    amplitude = float(ds["h"].std())
    ds["h"] = ds["h"] + amplitude * xr.DataArray(growth, dims="time") * xr.DataArray(
        pattern, dims=("y", "x")
    )
    net, _ = fit("field-xsrnet-x2", ds[["h"]], site=True, val_fraction=0.25, **FAST)
    meta = net.card.site["variables"]["h"]
    assert meta["time_scale_frames"] is not None
    # the map, back in units of the pattern, against the last frames' amplitude and the mean
    std = degrade(ds["h"], scale=2, method="coarsen").std(("y", "x")).values
    fitted = float((net.site["h"].numpy() * pattern).mean() / (pattern**2).mean())
    late = float((amplitude * growth / std)[-6:].mean())
    mean = float((amplitude * growth / std).mean())
    assert abs(fitted - late) < abs(fitted - mean)

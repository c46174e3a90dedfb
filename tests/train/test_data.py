"""Tests for xsr.train.data: selection, periodic wrapping, infinite cells, patches, statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.testing import random_movie
from xsr.train.config import FitConfig
from xsr.train.data import (
    BICUBIC_RADIUS,
    InfiniteValuesWarning,
    degraded,
    make_patches,
    select,
    statistics,
)
from xsr.train.trainer import fit
from xsr.upscaling import NonFiniteWarning

TINY = {"d": 8, "s": 4, "m": 1}
FAST = {"epochs": 1, "batch_size": 8, "patch_size": 4, "progress": False}


def periodic_movie(nt=8, ny=32, nx=32, seed=0, **kw) -> xr.Dataset:
    """random_movie (doubly periodic in content) with its period marked on x and y."""
    ds = random_movie(nt, ny, nx, seed=seed, **kw)
    ds["x"].attrs["period"] = nx * 1000.0
    ds["y"].attrs["period"] = ny * 1000.0
    return ds


def _maybe_chunk(ds: xr.Dataset, chunked: bool) -> xr.Dataset:
    return ds.chunk({"time": 3}) if chunked else ds


# ----------------------------------------------------------------------------- selection


def test_select_reads_periodicity_from_the_data_or_the_argument():
    ds = periodic_movie()
    assert select(ds, FitConfig()).periodic == (True, True)
    assert select(ds, FitConfig(periodic=False)).periodic == (False, False)
    assert select(ds, FitConfig(periodic="x")).periodic == (False, True)
    assert select(random_movie(4, 8, 8), FitConfig()).periodic == (False, False)
    # a subset of a periodic domain no longer wraps
    assert select(ds.isel(x=slice(0, 20)), FitConfig()).periodic == (True, False)


def test_select_errors_name_the_fix():
    ds = random_movie(4, 8, 8)
    with pytest.raises(ValueError, match=r"variables \['sst'\] are not in the data"):
        select(ds, FitConfig(variables="sst"))
    with pytest.raises(ValueError, match="time_dim='t' is not a dimension"):
        select(ds, FitConfig(time_dim="t"))
    with pytest.raises(TypeError, match="xarray Dataset or DataArray"):
        select(ds["h"].values, FitConfig())


# ----------------------------------------------------------------------------- periodic


@settings(max_examples=12, deadline=None)
@given(
    method=st.sampled_from(["coarsen", "bicubic"]),
    scale=st.sampled_from([2, 3]),
    shift_y=st.integers(0, 7),
    shift_x=st.integers(0, 7),
)
def test_periodic_degradation_wraps_across_the_seam(method, scale, shift_y, shift_x):
    # translation equivariance: degrading a rolled field is the rolled degraded field
    ds = periodic_movie(1, 8 * scale, 8 * scale, seed=shift_x)
    cfg = FitConfig(degrade=method)
    low = degraded(select(ds, cfg), cfg, scale)["h"].values
    rolled = ds.roll(y=scale * shift_y, x=scale * shift_x, roll_coords=False)
    low_rolled = degraded(select(rolled, cfg), cfg, scale)["h"].values
    expected = np.roll(low, (shift_y, shift_x), axis=(-2, -1))
    np.testing.assert_allclose(low_rolled, expected, atol=1e-5)


def test_bounded_bicubic_degradation_is_not_shift_equivariant():
    # the guard for the test above: without wrapping, the kernel is clamped at the edges
    ds = periodic_movie(1, 16, 16)
    cfg = FitConfig(degrade="bicubic", periodic=False)
    low = degraded(select(ds, cfg), cfg, 2)["h"].values
    rolled = ds.roll(x=6, roll_coords=False)
    low_rolled = degraded(select(rolled, cfg), cfg, 2)["h"].values
    assert np.abs(low_rolled - np.roll(low, 3, axis=-1)).max() > 1e-3


def test_periodic_patches_cover_the_whole_domain_with_wrapped_context():
    ds = periodic_movie(4, 24, 24)
    halo, p = 3, 4
    for periodic, first_core in ((None, 0), (False, halo)):
        cfg = FitConfig(patch_size=p, periodic=periodic, val_fraction=0.25)
        patches = make_patches(select(ds, cfg), cfg, scale=2, window=1, halo=halo)
        batch = patches.train.load(range(len(patches.train)))
        cores = np.unique(batch.positions[:, 2]) - (halo if periodic is None else 0)
        assert cores.min() == first_core
        if periodic is None:  # every low-resolution column is some patch's target
            covered = np.unique(np.concatenate([np.arange(c, c + p) for c in cores]))
            np.testing.assert_array_equal(covered, np.arange(12))
    # the first patch's context comes from across the seam, equal to the wrapped data
    cfg = FitConfig(patch_size=p, val_fraction=0.25)
    sel = select(ds, cfg)
    patches = make_patches(sel, cfg, scale=2, window=1, halo=halo)
    low = degraded(sel, cfg, 2)["h"].values
    first = patches.train.load([0]).lr[0, 0, 0]
    np.testing.assert_allclose(first, np.roll(low[0], (halo, halo), axis=(0, 1))[: p + 6, : p + 6])


def test_periodic_validation_is_invariant_under_a_roll_of_the_domain():
    # validation cores tile the periodic domain and see wrapped context: a shift of the data by
    # one patch only permutes them, so the bicubic baseline on them is unchanged
    ds = periodic_movie(10, 32, 32, seed=3)
    kw = dict(scale=2, **FAST, **TINY)
    _, hist = fit("fsrcnn", ds, **kw)
    _, rolled = fit("fsrcnn", ds.roll(x=8, y=16, roll_coords=False), **kw)
    np.testing.assert_allclose(
        rolled.attrs["bicubic_val_psnr"], hist.attrs["bicubic_val_psnr"], rtol=1e-6
    )
    _, bounded = fit("fsrcnn", ds, periodic=False, **kw)
    _, bounded_rolled = fit("fsrcnn", ds.roll(x=8, y=16, roll_coords=False), periodic=False, **kw)
    assert bounded.attrs["n_val_patches"] < hist.attrs["n_val_patches"]
    assert bounded_rolled.attrs["bicubic_val_psnr"] != bounded.attrs["bicubic_val_psnr"]
    assert hist.attrs["periodic"] == "[true, true]"


@pytest.mark.parametrize("chunked", [False, True])
def test_fit_on_periodic_data(chunked):
    ds = _maybe_chunk(periodic_movie(8, 32, 32, seed=2), chunked)
    model, hist = fit("fsrcnn", ds, scale=2, degrade="bicubic", **FAST, **TINY)
    assert np.isfinite(hist["val_psnr"]).all()
    assert model.card.training["periodic"] == {"y": True, "x": True}


def test_periodic_axis_not_a_multiple_of_scale():
    ds = periodic_movie(6, 32, 33)
    with pytest.raises(ValueError, match=r"'x' is periodic but its size 33.*periodic=False"):
        fit("fsrcnn", ds, scale=2, **FAST, **TINY)
    _, hist = fit("fsrcnn", ds, scale=2, periodic="y", **FAST, **TINY)
    assert hist.attrs["periodic"] == "[true, false]"


def test_periodic_axis_needs_no_room_for_the_halo():
    # 10 coarse cells hold a 4-cell patch with a halo of 4 on each side only by wrapping
    ds = periodic_movie(6, 20, 20)
    _, hist = fit("fsrcnn", ds, scale=2, **FAST, **TINY)
    assert hist.attrs["halo"] == 4
    with pytest.raises(ValueError, match="use a smaller patch_size"):
        fit("fsrcnn", ds, scale=2, periodic=False, **FAST, **TINY)


# ----------------------------------------------------------------------------- validation context


def test_bicubic_baseline_has_real_context_whatever_the_halo():
    # the validation patches carry BICUBIC_RADIUS cells of context even when the model is given
    # less, so the baseline never interpolates over clamped patch edges
    ds = random_movie(10, 32, 32, seed=6)
    base = {}
    for halo in (0, 1, BICUBIC_RADIUS):
        _, hist = fit("fsrcnn", ds, scale=2, halo=halo, **FAST, **TINY)
        base[halo] = hist.attrs["bicubic_val_psnr"]
    assert base[0] == base[1] == base[BICUBIC_RADIUS]


def test_validation_context_shrinks_to_what_a_small_domain_holds():
    cfg = FitConfig(patch_size=14, periodic=False)
    sel = select(random_movie(10, 30, 30), cfg)
    assert make_patches(sel, cfg, scale=2, window=1, halo=0).val_halo == 0
    cfg = FitConfig(patch_size=12, periodic=False)
    assert make_patches(sel, cfg, scale=2, window=1, halo=0).val_halo == 1


# ----------------------------------------------------------------------------- infinite cells


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_cells_are_masked_like_nan_with_a_warning(chunked, value):
    ds = random_movie(8, 32, 32, seed=8)
    with_inf = ds.copy(deep=True)
    with_inf["h"][2, 5, 7] = value
    with_nan = ds.copy(deep=True)
    with_nan["h"][2, 5, 7] = np.nan
    kw = dict(scale=2, **FAST, **TINY)
    with pytest.warns(InfiniteValuesWarning, match=r"variable 'h' has 1 infinite cell") as seen:
        _, hist = fit("fsrcnn", _maybe_chunk(with_inf, chunked), **kw)
    assert len(seen) == 1
    assert issubclass(seen[0].category, NonFiniteWarning)  # as upscale warns for them
    with warnings.catch_warnings():
        warnings.simplefilter("error", InfiniteValuesWarning)
        _, expected = fit("fsrcnn", _maybe_chunk(with_nan, chunked), **kw)
    xr.testing.assert_identical(hist, expected)


def test_all_infinite_variable_is_refused_naming_it():
    ds = random_movie(8, 32, 32, seed=13)
    ds["h"][:] = np.inf
    with (
        pytest.warns(InfiniteValuesWarning, match="8192 infinite"),
        pytest.raises(ValueError, match=r"'h' is entirely NaN.*after masking its infinite"),
    ):
        fit("fsrcnn", ds, scale=2, **FAST)


def test_statistics_leave_out_masked_cells():
    ds = random_movie(10, 16, 16, seed=1)
    ds["h"][0, 0, 0] = np.inf
    cfg = FitConfig(patch_size=4)
    sel = select(ds, cfg)
    with pytest.warns(InfiniteValuesWarning):
        stats = statistics(sel, make_patches(sel, cfg, scale=2, window=1, halo=1))
    train = ds["h"].isel(time=slice(0, 8))
    finite = train.where(np.isfinite(train))
    assert stats.mean[0] == pytest.approx(float(finite.mean()), rel=1e-6)
    assert stats.std[0] == pytest.approx(float(finite.std()), rel=1e-6)

"""Tests for the time split and aligned LR/HR patch streaming (xsr.train.patches)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.degradation import degrade
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.train.patches import PatchSet, split_time, stack_samples


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(5, 200),
    window=st.sampled_from([1, 3, 5]),
    frac=st.floats(0.05, 0.5),
    blocks=st.integers(1, 4),
)
def test_split_is_disjoint_contiguous_and_windows_fit(n, window, frac, blocks):
    try:
        train, val = split_time(n, window=window, val_fraction=frac, val_blocks=blocks)
    except ValueError as err:
        message = str(err)
        train = val = None
    if train is None:  # too short a record: the error explains it in frames
        assert "frames" in message
        return
    assert len(val) == blocks
    frames = [set(range(a, b)) for a, b in train + val]
    assert sum(len(f) for f in frames) == len(set().union(*frames))  # disjoint
    assert all(b - a >= window for a, b in train + val)  # a window fits in every block
    assert val[-1][1] == n  # validation ends the record
    n_val = sum(b - a for a, b in val)
    assert n_val >= round(frac * n)


def test_split_examples_and_errors():
    assert split_time(10, val_fraction=0.0) == ([(0, 10)], [])
    assert split_time(10, window=3, val_fraction=0.1) == ([(0, 7)], [(7, 10)])
    with pytest.raises(ValueError, match="fewer than the model's window of 5"):
        split_time(4, window=5)
    with pytest.raises(ValueError, match="val_fraction"):
        split_time(10, val_fraction=1.0)
    with pytest.raises(ValueError, match="no training block"):
        split_time(6, window=5, val_fraction=0.2)


def _patchset(ds, *, scale=2, window=3, p=4, blocks=None, method="coarsen", stride=None):
    lr = degrade(ds, scale=scale, method=method)
    hr_s = stack_samples(ds, list(ds.data_vars), "time", ("y", "x"))
    lr_s = stack_samples(lr, list(ds.data_vars), "time", ("y", "x"))
    blocks = blocks or [(0, ds.sizes["time"])]
    ps = PatchSet(
        hr_s,
        lr_s,
        variables=list(ds.data_vars),
        scale=scale,
        window=window,
        patch_size=p,
        blocks=blocks,
        time_dim="time",
        dims=("y", "x"),
        stride=stride,
    )
    return ps, lr


@pytest.mark.parametrize("method", ["coarsen", "bicubic"])
@pytest.mark.parametrize("window", [1, 3])
def test_lr_and_hr_patches_are_aligned(method, window):
    ds = random_movie(7, 16, 24, variables=("h", "u"), seed=2)
    ps, lr = _patchset(ds, window=window, method=method, stride=2)
    batch = ps.load(range(len(ps)))
    r = window // 2
    assert batch.lr.shape == (len(ps), 2, window, 4, 4)
    assert batch.hr.shape == (len(ps), 2, 8, 8)
    for n, (t0, i0, j0) in enumerate(batch.positions):
        for c, v in enumerate(["h", "u"]):
            np.testing.assert_array_equal(
                batch.lr[n, c], lr[v].values[t0 : t0 + window, i0 : i0 + 4, j0 : j0 + 4]
            )
            hr = ds[v].values[t0 + r, 2 * i0 : 2 * i0 + 8, 2 * j0 : 2 * j0 + 8]
            np.testing.assert_array_equal(batch.hr[n, c], hr)
            if method == "coarsen":  # the LR centre frame is the block mean of the target
                np.testing.assert_allclose(
                    batch.lr[n, c, r], hr.reshape(4, 2, 4, 2).mean(axis=(1, 3)), rtol=1e-5
                )


def test_patches_never_cross_blocks():
    ds = random_movie(12, 8, 8, seed=0)
    ps, _ = _patchset(ds, window=3, blocks=[(0, 5), (7, 12)])
    t0 = ps.load(range(len(ps))).positions[:, 0]
    starts = set(t0.tolist())
    assert starts == {0, 1, 2, 7, 8, 9}  # windows [t0, t0+3) inside [0,5) or [7,12)


def test_extra_dims_become_samples():
    ds = random_movie(5, 8, 8, seed=1)
    ds = xr.concat([ds, ds * 2], dim="member").transpose("time", "member", "y", "x")
    ps, _ = _patchset(ds, window=1, p=4)
    batch = ps.load([0])
    assert batch.lr.shape[0] == 2
    np.testing.assert_allclose(batch.hr[1], 2 * batch.hr[0], rtol=1e-6)


def test_load_is_one_compute_per_batch_on_dask():
    ds = random_movie(8, 16, 16, seed=3).chunk({"time": 1})
    ps, _ = _patchset(ds, window=3)
    with raise_if_dask_computes(max_computes=1) as sched:
        batch = ps.load([0, 5, 9])
    assert sched.total_computes == 1
    assert batch.lr.shape == (3, 1, 3, 4, 4)


def test_patch_larger_than_data():
    ds = random_movie(4, 8, 8)
    with pytest.raises(ValueError, match="patch_size=8 with halo=0 needs 8"):
        _patchset(ds, p=8, window=1)


def test_lazily_indexed_netcdf_is_read_patch_by_patch(tmp_path):
    ds = random_movie(6, 16, 16, seed=4)
    ds.to_netcdf(tmp_path / "m.nc")
    with xr.open_dataset(tmp_path / "m.nc") as opened:  # no dask: a lazily indexed backend
        lr = stack_samples(degrade(ds, scale=2), ["h"], "time", ("y", "x"))
        hr = stack_samples(opened, ["h"], "time", ("y", "x"))
        ps = PatchSet(hr, lr, variables=["h"], scale=2, window=3, patch_size=4, blocks=[(0, 6)])
        batch = ps.load([0, 3])
        assert not opened["h"].variable._in_memory  # only the patches were read, not cached
        ref, _ = _patchset(ds, window=3)
        np.testing.assert_array_equal(batch.hr, ref.load([0, 3]).hr)

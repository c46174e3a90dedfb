"""Tests of xsr.degrade: coarsen (block mean) and bicubic degradation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xsr.accessor  # noqa: F401  (registers .sr)
from xsr.degradation import degrade
from xsr.testing import raise_if_dask_computes, random_movie


def _with_bounds(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    for dim in ("y", "x"):
        c = ds[dim].values
        ds.coords[f"{dim}_bnds"] = ((dim, "nv"), np.stack([c - 500.0, c + 500.0], axis=1))
        ds[dim].attrs["bounds"] = f"{dim}_bnds"
    return ds


def _manual_block_mean(a: np.ndarray, s: int) -> np.ndarray:
    *lead, ny, nx = a.shape
    return np.nanmean(a.reshape(*lead, ny // s, s, nx // s, s), axis=(-3, -1))


# ---------------------------------------------------------------- coarsen


def test_coarsen_dataset_eager_values_coords_bounds_attrs():
    ds = _with_bounds(random_movie(3, 8, 12))
    out = degrade(ds, scale=2)
    assert isinstance(out, xr.Dataset)
    assert out["h"].shape == (3, 4, 6)
    assert out["h"].dtype == np.float32
    np.testing.assert_allclose(out["h"].values, _manual_block_mean(ds["h"].values, 2), rtol=1e-6)
    np.testing.assert_allclose(out["x"].values, ds["x"].values.reshape(-1, 2).mean(1))
    np.testing.assert_allclose(out["y"].values, (np.arange(4) + 0.5) * 2000.0)
    # bounds recomputed: each coarse cell spans two fine cells
    np.testing.assert_allclose(out["x_bnds"].values[:, 0], np.arange(6) * 2000.0)
    np.testing.assert_allclose(out["x_bnds"].values[:, 1], (np.arange(6) + 1) * 2000.0)
    np.testing.assert_allclose(out["y_bnds"].values.mean(axis=1), out["y"].values)
    # CF attrs kept, provenance appended, time untouched
    assert out["h"].attrs["units"] == "m"
    assert out["h"].attrs["cell_methods"] == "y: x: mean"
    assert out["x"].attrs["axis"] == "X"
    assert out["x"].attrs["bounds"] == "x_bnds"
    assert out.attrs["title"] == ds.attrs["title"]
    assert "xsr.degrade(scale=2, method='coarsen'" in out.attrs["history"]
    xr.testing.assert_identical(out["time"], ds["time"])
    assert "history" not in ds.attrs  # input untouched


def test_coarsen_chunked_is_lazy_and_matches_eager():
    ds = _with_bounds(random_movie(4, 12, 10, variables=("h", "u")))
    eager = degrade(ds, scale=2)
    chunked = ds.chunk({"time": 1, "y": 5, "x": 3})
    with raise_if_dask_computes():
        lazy = degrade(chunked, scale=2)
    assert lazy["h"].chunks is not None
    assert lazy["h"].chunksizes["time"] == (1, 1, 1, 1)
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_coarsen_dataarray_with_member_dim_eager_and_chunked():
    base = random_movie(3, 6, 9, variables=("a", "b"))
    da = xr.concat([base["a"], base["b"]], dim="member").transpose("time", "member", "y", "x")
    out = degrade(da, scale=3)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("time", "member", "y", "x")
    assert out.shape == (3, 2, 2, 3)
    np.testing.assert_allclose(out.values, _manual_block_mean(da.values, 3), rtol=1e-6)
    assert "history" in out.attrs
    with raise_if_dask_computes():
        lazy = degrade(da.chunk({"member": 1, "y": 3}), scale=3)
    xr.testing.assert_allclose(lazy.compute(), out)


def test_accessor_delegates():
    ds = random_movie(2, 4, 4)
    xr.testing.assert_allclose(ds.sr.degrade(scale=2), degrade(ds, scale=2))
    xr.testing.assert_allclose(ds["h"].sr.degrade(scale=2), degrade(ds["h"], scale=2))


@settings(max_examples=25, deadline=None)
@given(
    scale=st.integers(1, 4),
    nby=st.integers(1, 4),
    nbx=st.integers(1, 4),
    cy=st.integers(1, 9),
    cx=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_coarsen_conserves_mean_and_is_chunk_invariant(scale, nby, nbx, cy, cx, seed):
    rng = np.random.default_rng(seed)
    da = xr.DataArray(rng.normal(size=(2, nby * scale, nbx * scale)), dims=("time", "y", "x"))
    out = degrade(da, scale=scale)
    np.testing.assert_allclose(out.mean(("y", "x")), da.mean(("y", "x")), rtol=1e-10, atol=1e-12)
    lazy = degrade(da.chunk({"y": cy, "x": cx}), scale=scale)
    np.testing.assert_allclose(lazy.values, out.values, rtol=1e-12)


def test_coarsen_nan_ignored_all_nan_block_stays_nan():
    a = np.arange(16.0).reshape(1, 4, 4)
    a[0, 0, 0] = np.nan
    a[0, 2:, 2:] = np.nan
    da = xr.DataArray(a, dims=("time", "y", "x"))
    out = degrade(da, scale=2).values[0]
    assert out[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert np.isnan(out[1, 1])
    assert out[0, 1] == pytest.approx((2 + 3 + 6 + 7) / 4)
    with raise_if_dask_computes():
        lazy = degrade(da.chunk({"y": 2}), scale=2)
    np.testing.assert_array_equal(lazy.values[0], out)


def test_integer_input():
    da = xr.DataArray(np.arange(32, dtype="int16").reshape(2, 4, 4), dims=("time", "y", "x"))
    co = degrade(da, scale=2)
    assert co.dtype == np.float64
    assert co.values[0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    bi = degrade(da, scale=2, method="bicubic")
    assert bi.dtype == np.float32
    assert bool(np.isfinite(bi).all())


def test_area_weighted_coarsen_on_latlon():
    lat = np.array([0.0, 20.0, 40.0, 60.0])
    lon = np.arange(0.5, 4.0)
    rng = np.random.default_rng(1)
    field = rng.normal(size=(2, 4, 4))
    da = xr.DataArray(
        field,
        dims=("time", "lat", "lon"),
        coords={"lat": ("lat", lat, {"units": "degrees_north"}), "lon": lon},
    )
    out = degrade(da, scale=2, area_weighted=True)
    w = np.cos(np.deg2rad(lat))
    block = field[0, :2, :2]
    expected = (block * w[:2, None]).sum() / (2 * w[:2].sum())
    assert out.values[0, 0, 0] == pytest.approx(expected)
    assert out.attrs["cell_methods"] == "lat: lon: mean (area-weighted)"
    # the area-weighted global integral is conserved
    wc = w.reshape(2, 2).sum(1)
    fine_total = (field * w[None, :, None]).sum(axis=(1, 2))
    coarse_total = (out.values * wc[None, :, None]).sum(axis=(1, 2)) * 2
    np.testing.assert_allclose(coarse_total, fine_total, rtol=1e-12)
    unweighted = degrade(da, scale=2)
    assert not np.allclose(unweighted.values, out.values)
    with raise_if_dask_computes():
        lazy = degrade(da.chunk({"time": 1}), scale=2, area_weighted=True)
    xr.testing.assert_allclose(lazy.compute(), out)


def test_area_weighted_with_2d_latitude_and_nan_land():
    ny, nx = 4, 6
    lat2d = 10.0 + 15.0 * np.arange(ny)[:, None] + 2.0 * np.arange(nx)[None, :]
    rng = np.random.default_rng(2)
    field = rng.normal(size=(3, ny, nx))
    field[:, 0, 0] = np.nan  # a land cell
    ds = xr.Dataset(
        {"sst": (("time", "y", "x"), field)},
        coords={"nav_lat": (("y", "x"), lat2d), "nav_lon": (("y", "x"), lat2d * 0 + 1)},
    )
    out = degrade(ds, scale=2, area_weighted=True)
    w = np.cos(np.deg2rad(lat2d))
    block, wb = field[1, :2, :2], w[:2, :2]
    valid = ~np.isnan(block)
    expected = np.nansum(block * wb) / wb[valid].sum()
    assert float(out["sst"][1, 0, 0]) == pytest.approx(expected)
    np.testing.assert_allclose(out["nav_lat"].values, lat2d.reshape(2, 2, 3, 2).mean(axis=(1, 3)))
    with raise_if_dask_computes():
        lazy = degrade(ds.chunk({"time": 1, "x": 3}), scale=2, area_weighted=True)
    xr.testing.assert_allclose(lazy.compute(), out)


def test_area_weighted_needs_latitude():
    ds = random_movie(2, 4, 4)
    with pytest.raises(ValueError, match="area_weighted=True needs"):
        degrade(ds, scale=2, area_weighted=True)
    lat_ds = ds.rename({"y": "lat", "x": "lon"})
    with pytest.raises(ValueError, match="method='coarsen' only"):
        degrade(lat_ds, scale=2, method="bicubic", area_weighted=True)


def test_descending_latitude():
    lat = np.array([75.0, 45.0, 15.0, -15.0])
    da = xr.DataArray(
        np.arange(16.0).reshape(4, 4), dims=("lat", "lon"), coords={"lat": lat, "lon": np.arange(4)}
    )
    out = degrade(da, scale=2)
    np.testing.assert_allclose(out["lat"].values, [60.0, 0.0])
    np.testing.assert_allclose(out.values, _manual_block_mean(da.values, 2))
    bounds = xr.DataArray(np.stack([lat + 15, lat - 15], axis=1), dims=("lat", "bnds"))
    ds = da.to_dataset(name="t").assign_coords(lat_bnds=bounds)
    ds["lat"].attrs["bounds"] = "lat_bnds"
    dso = degrade(ds, scale=2)
    np.testing.assert_allclose(dso["lat_bnds"].values, [[90.0, 30.0], [30.0, -30.0]])


def test_passthrough_and_one_spatial_dim_variables():
    ds = random_movie(3, 4, 6)
    ds["scalar_series"] = ("time", np.arange(3.0), {"units": "s"})
    ds["profile"] = ("y", np.arange(4.0))
    ds["mask"] = (("y", "x"), np.ones((4, 6), dtype=bool))
    out = degrade(ds, scale=2)
    xr.testing.assert_identical(out["scalar_series"], ds["scalar_series"])
    np.testing.assert_allclose(out["profile"].values, [0.5, 2.5])
    assert out["mask"].dtype == np.float64
    np.testing.assert_allclose(out["mask"].values, 1.0)


def test_trim_boundary():
    ds = random_movie(2, 9, 11)
    with pytest.raises(ValueError, match=r"not divisible by scale=2.*boundary='trim'"):
        degrade(ds, scale=2)
    out = degrade(ds, scale=2, boundary="trim")
    assert out["h"].shape == (2, 4, 5)
    np.testing.assert_allclose(
        out["h"].values, _manual_block_mean(ds["h"].values[:, :8, :10], 2), rtol=1e-6
    )
    assert "boundary='trim'" in out.attrs["history"]


def test_scale_one_is_identity_on_values():
    ds = random_movie(2, 4, 4)
    for method in ("coarsen", "bicubic"):
        out = degrade(ds, scale=1, method=method)
        np.testing.assert_allclose(out["h"].values, ds["h"].values, rtol=1e-6)


# ---------------------------------------------------------------- bicubic


def test_bicubic_eager_and_chunked():
    ds = random_movie(4, 16, 12, variables=("h", "u"))
    eager = degrade(ds, scale=2, method="bicubic")
    assert eager["h"].shape == (4, 8, 6)
    assert eager["h"].dtype == np.float32
    assert "cell_methods" not in eager["h"].attrs
    assert "method='bicubic'" in eager.attrs["history"]
    np.testing.assert_allclose(eager["y"].values, ds["y"].values.reshape(-1, 2).mean(1))
    chunked = ds.chunk({"time": 2, "y": 5, "x": 4})
    with raise_if_dask_computes():
        lazy = degrade(chunked, scale=2, method="bicubic")
    assert lazy["h"].chunksizes["time"] == (2, 2)
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_bicubic_reproduces_constant_and_linear_fields_and_differs_from_coarsen():
    x = np.arange(24.0)
    ramp = np.broadcast_to(x[None, None, :], (2, 24, 24)).astype("float64")
    da = xr.DataArray(ramp, dims=("time", "y", "x"))
    out = degrade(da, scale=2, method="bicubic")
    assert out.dtype == np.float64
    # the normalised symmetric kernel is exact on linear fields away from the edges
    expected = np.broadcast_to(x.reshape(-1, 2).mean(1)[2:-2], (2, 12, 8))
    np.testing.assert_allclose(out.values[:, :, 2:-2], expected, atol=1e-9)
    const = degrade(xr.full_like(da, 3.5), scale=3, method="bicubic")
    np.testing.assert_allclose(const.values, 3.5, rtol=1e-12)
    noisy = random_movie(2, 16, 16)["h"]
    assert not np.allclose(
        degrade(noisy, scale=2, method="bicubic").values, degrade(noisy, scale=2).values
    )


def test_bicubic_member_dim_dataarray():
    base = random_movie(2, 8, 8, variables=("a", "b"))
    da = xr.concat([base["a"], base["b"]], dim="member")
    out = degrade(da, scale=2, method="bicubic")
    assert out.dims == ("member", "time", "y", "x")
    single = degrade(base["b"], scale=2, method="bicubic")
    np.testing.assert_allclose(out.sel(member=1).values, single.values, rtol=1e-6)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("scale", [0, -2, 1.5, 2.0, "2", None, True])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        degrade(random_movie(2, 4, 4), scale=scale)


def test_bad_method_boundary_dims_and_types():
    ds = random_movie(2, 4, 4)
    with pytest.raises(ValueError, match=r"method must be one of \('coarsen', 'bicubic'\)"):
        degrade(ds, scale=2, method="nearest")
    with pytest.raises(ValueError, match="boundary must be"):
        degrade(ds, scale=2, boundary="pad")
    with pytest.raises(ValueError, match=r"dims=.*'lat'"):
        degrade(ds, scale=2, dims=("lat", "lon"))
    with pytest.raises(ValueError, match="Cannot tell which dimensions"):
        degrade(ds.rename({"y": "a", "x": "b"}).drop_vars(["a", "b"]), scale=2)
    with pytest.raises(TypeError, match="xarray Dataset or DataArray"):
        degrade(np.zeros((4, 4)), scale=2)
    with pytest.raises(ValueError, match="smaller than scale=8"):
        degrade(ds, scale=8)
    strings = xr.DataArray(np.array([["a", "b"], ["c", "d"]]), dims=("y", "x"))
    with pytest.raises(TypeError, match="dtype"):
        degrade(strings, scale=2)
    no_spatial = xr.Dataset({"t": ("time", np.arange(3.0))}, coords={"y": [0, 1], "x": [0, 1]})
    with pytest.raises(ValueError, match="No data variable"):
        degrade(no_spatial, scale=2)
    assert degrade(ds, scale=2, dims=["y", "x"])["h"].shape == (2, 2, 2)


def test_empty_arrays():
    empty_space = xr.DataArray(np.zeros((2, 0, 4)), dims=("time", "y", "x"))
    with pytest.raises(ValueError, match="'y' is empty"):
        degrade(empty_space, scale=2)
    empty_time = xr.DataArray(np.zeros((0, 4, 4)), dims=("time", "y", "x"))
    with pytest.raises(ValueError, match="is empty"):
        degrade(empty_time, scale=2, method="bicubic")


def test_longitude_wrapping_across_the_date_line():
    lon = np.roll(np.arange(0.5, 360.0, 10.0), 17)  # 350.5 is followed by 0.5 inside a block
    lat = np.array([-5.0, 5.0])
    da = xr.DataArray(
        np.ones((2, lon.size)),
        dims=("lat", "lon"),
        coords={"lat": lat, "lon": ("lon", lon, {"units": "degrees_east"})},
    )
    out = degrade(da, scale=2)
    expected = np.unwrap(lon, period=360.0).reshape(-1, 2).mean(1) % 360.0
    np.testing.assert_allclose(out["lon"].values, expected)
    assert 355.5 in out["lon"].values  # the block (350.5, 0.5) is centred on 355.5, not 175.5
    assert out["lon"].attrs["units"] == "degrees_east"


@settings(max_examples=30, deadline=None)
@given(
    scale=st.integers(2, 4),
    nb=st.integers(1, 3),
    nan_fraction=st.sampled_from([0.0, 0.3, 0.9]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_coarsen_matches_reference_nan_weighted_mean(scale, nb, nan_fraction, weighted, seed):
    rng = np.random.default_rng(seed)
    n = nb * scale
    a = rng.normal(size=(2, n, n + scale))
    a[rng.random(a.shape) < nan_fraction] = np.nan
    lat = np.linspace(-80.0, 80.0, n)
    da = xr.DataArray(a, dims=("time", "lat", "lon"), coords={"lat": lat})
    out = degrade(da, scale=scale, area_weighted=weighted).values
    w = np.cos(np.deg2rad(lat)) if weighted else np.ones(n)
    blocks = a.reshape(2, nb, scale, (n + scale) // scale, scale)
    wb = np.broadcast_to(w.reshape(1, nb, scale, 1, 1), blocks.shape)
    valid = ~np.isnan(blocks)
    num = np.where(valid, blocks * wb, 0.0).sum(axis=(2, 4))
    den = np.where(valid, wb, 0.0).sum(axis=(2, 4))
    with np.errstate(invalid="ignore"):
        expected = np.where(den > 0, num / den, np.nan)
    np.testing.assert_allclose(out, expected, rtol=1e-12, equal_nan=True)
    lazy = degrade(da.chunk({"lat": scale, "lon": 3}), scale=scale, area_weighted=weighted)
    np.testing.assert_allclose(lazy.values, out, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method", ["coarsen", "bicubic"])
def test_lazy_graph_pickles_for_distributed_workers(method):
    cloudpickle = pytest.importorskip("cloudpickle")
    lat_ds = random_movie(4, 8, 8).rename({"y": "lat", "x": "lon"}).chunk({"time": 2})
    lazy = degrade(lat_ds, scale=2, method=method, area_weighted=method == "coarsen")
    restored = cloudpickle.loads(cloudpickle.dumps(lazy))
    xr.testing.assert_identical(restored.compute(), lazy.compute())

"""Tests of what the output keeps (issue 17, items 13, 14 and 15): CF time encodings with
``time_bnds``, ``_FillValue``, packing, compression; no placeholder names leak into stores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

from xsr.archive import (
    ArchiveError,
    store_status,
    upscale_file,
    upscale_to_zarr,
    write_zarr_resumable,
)
from xsr.archive.encoding import guard_packing, kept_encoding, packed_range, packing_for
from xsr.testing import random_movie


def cmip_like(tmp_path, calendar: str) -> str:
    times = xr.date_range(
        "2000-01-01", periods=6, freq="D", calendar=calendar, use_cftime=calendar != "standard"
    )
    bounds = np.stack([times.values, times.values], axis=1)
    ds = xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), np.random.default_rng(0).random((6, 8, 8), "float32")),
            "time_bnds": (("time", "bnds"), bounds),
        },
        coords={"time": times, "lat": np.linspace(-10, 10, 8), "lon": np.linspace(0, 20, 8)},
    )
    ds["time"].attrs["bounds"] = "time_bnds"
    units = {"units": "days since 1850-01-01", "calendar": calendar}
    path = str(tmp_path / f"cmip_{calendar}.nc")
    ds.to_netcdf(path, encoding={"time": units, "time_bnds": units})
    return path


@pytest.mark.parametrize("calendar", ["standard", "noleap"])
@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_time_bounds_survive_zarr_and_netcdf_output(tmp_path, calendar, suffix):
    src = cmip_like(tmp_path, calendar)
    out = tmp_path / f"out{suffix}"
    upscale_file(src, out, model="bicubic", scale=2, region_size=4, progress=False)
    with xr.open_dataset(src) as low, xr.open_dataset(out) as high:
        xr.testing.assert_identical(high["time_bnds"], low["time_bnds"])
        assert high["time"].encoding["calendar"] == calendar
        assert high["tas"].shape == (6, 16, 16)


def test_time_bounds_of_an_in_memory_dataset_without_encoding(tmp_path):
    times = xr.date_range("2000-01-01", periods=4, freq="D", use_cftime=True, calendar="noleap")
    ds = random_movie(4, 8, 8).assign_coords(time=times)
    ds["time_bnds"] = (("time", "bnds"), np.stack([times.values, times.values], axis=1))
    out = upscale_to_zarr(
        ds.chunk(time=2), tmp_path / "o.zarr", model="bicubic", scale=2, progress=False
    )
    xr.testing.assert_identical(out["time_bnds"].compute(), ds["time_bnds"])


def test_unnamed_dataarray_leaves_no_placeholder_in_the_store(tmp_path):
    da = random_movie(4, 8, 8)["h"].rename(None)
    da.attrs = {}
    out = upscale_to_zarr(da, tmp_path / "u.zarr", model="bicubic", scale=2, progress=False)
    assert isinstance(out, xr.DataArray)
    assert out.name is None
    text = "".join(p.read_text() for p in (tmp_path / "u.zarr").rglob("zarr.json"))
    assert "__xsr_unnamed__" not in text
    assert xr.open_dataarray(tmp_path / "u.zarr", engine="zarr").name is None
    # bicubic has no weights: history says so instead of the sha256 of nothing
    assert "weights=none" in out.attrs["history"]
    assert "e3b0c442" not in out.attrs["history"]


def test_fill_value_of_a_float_input_is_kept(tmp_path):
    ds = random_movie(4, 8, 8)
    ds["h"][1, 2, 3] = np.nan
    ds.to_netcdf(tmp_path / "in.nc", encoding={"h": {"_FillValue": -9999.0}})
    for suffix in (".zarr", ".nc"):
        out = tmp_path / f"out{suffix}"
        upscale_file(tmp_path / "in.nc", out, model="bicubic", scale=2, progress=False)
        with xr.open_dataset(out) as high, xr.open_dataset(out, mask_and_scale=False) as raw:
            assert high["h"].encoding["_FillValue"] == -9999.0
            assert np.isnan(high["h"][1].values).any()
            assert (raw["h"][1].values == -9999.0).any()  # stored as the CF fill value


def packed_input(tmp_path) -> str:
    rng = np.random.default_rng(0)
    nt, n = 40, 96
    lat, lon = np.linspace(-45, 45, n), np.linspace(0, 180, n)
    waves = np.sin(np.radians(lon)[None, None] * 3 + np.arange(nt)[:, None, None] * 0.1)
    field = 280 + 10 * waves * np.cos(np.radians(lat)[None, :, None] * 2)
    field = (field + rng.normal(0, 0.3, field.shape)).astype("float32")
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), field, {"units": "K"})},
        coords={"time": np.arange(nt) * 1.0, "lat": lat, "lon": lon},
    )
    low, high = float(field.min()), float(field.max())
    encoding = {
        "dtype": "int16",
        "scale_factor": (high - low) / 65000,
        "add_offset": (high + low) / 2,
        "_FillValue": np.int16(-32768),
        "zlib": True,
    }
    path = str(tmp_path / "packed.nc")
    ds.to_netcdf(path, encoding={"tas": encoding})
    return path


def test_packed_x2_netcdf_is_near_four_times_its_input(tmp_path):
    import os

    src = packed_input(tmp_path)
    size_in = os.path.getsize(src)
    upscale_file(
        src, tmp_path / "packed_x2.nc", model="bicubic", scale=2, pack=True, progress=False
    )
    upscale_file(src, tmp_path / "float_x2.nc", model="bicubic", scale=2, progress=False)
    packed = os.path.getsize(tmp_path / "packed_x2.nc") / size_in
    floats = os.path.getsize(tmp_path / "float_x2.nc") / size_in
    assert packed < 4.5  # 4x the grid, packed and compressed like the input
    assert packed < floats < 8  # uncompressed float32 at x2 would be 8x
    with xr.open_dataset(tmp_path / "packed_x2.nc") as high, xr.open_dataset(src) as low:
        enc = high["tas"].encoding
        assert enc["dtype"] == np.dtype("int16")
        assert enc["zlib"]
        assert "scale_factor" in enc
        assert "add_offset" in enc
        step = float(enc["scale_factor"])
        coarse = high["tas"].coarsen(lat=2, lon=2).mean()
        assert float(abs(coarse - low["tas"].values).max()) < 1.0  # bicubic, not garbage
        ref = xr.open_dataset(tmp_path / "float_x2.nc")["tas"]
        assert float(abs(high["tas"] - ref).max()) <= step  # packing error: one step at most


def test_zarr_output_is_compressed_by_default(tmp_path):
    upscale_to_zarr(
        random_movie(4, 8, 8), tmp_path / "c.zarr", model="bicubic", scale=2, progress=False
    )
    compressors = zarr.open_array(tmp_path / "c.zarr", path="h").compressors
    assert compressors
    assert "Zstd" in type(compressors[0]).__name__


def test_packing_helpers():
    enc = packing_for(0.0, 10.0)
    low, high = packed_range(enc)
    assert low <= -2.5
    assert high >= 12.5
    carried = {"dtype": "int16", "scale_factor": 0.01, "add_offset": 0.0, "_FillValue": -32768}
    assert packing_for(0.0, 10.0, carried) == carried  # [-327.67, 327.67] holds it: carried
    narrow = {"dtype": "int16", "scale_factor": 1e-4, "add_offset": 0.0}
    assert packing_for(0.0, 10.0, narrow)["scale_factor"] != 1e-4  # too narrow: recomputed
    var = xr.Variable("x", np.array([0.0, 400.0]))
    var.encoding = carried
    with pytest.raises(ArchiveError, match=r"'h'.*outside its packed range.*pack=False"):
        guard_packing(var, "h")
    lazy = guard_packing(var.chunk({"x": 1}), "h")  # checked when computed, block by block
    with pytest.raises(ArchiveError, match="wrap around"):
        lazy.compute()
    assert guard_packing(var[:1], "h").encoding == carried


def test_values_outside_the_packing_stop_the_write(tmp_path):
    ds = random_movie(4, 8, 8).chunk(time=1)
    ds["h"].encoding = {"dtype": "int16", "scale_factor": 1e-5, "add_offset": 0.0, "_FillValue": -1}
    with pytest.raises(ArchiveError, match=r"'h'.*outside its packed range"):
        write_zarr_resumable(ds, tmp_path / "p.zarr", progress=False)
    assert store_status(tmp_path / "p.zarr")["completed"] == []  # nothing wrapped was marked


def test_kept_encoding():
    var = xr.Variable(("t",), np.zeros(2, "float32"))
    var.encoding = {"_FillValue": -1.0, "chunks": (1,), "zlib": True, "source": "x.nc"}
    assert kept_encoding(var) == {"_FillValue": -1.0}
    times = xr.Variable(("t",), np.array(["2000-01-01", "2000-01-02"], "datetime64[ns]"))
    times.encoding = {"units": "days since 2000-01-01", "calendar": "standard", "dtype": "f8"}
    assert kept_encoding(times) == times.encoding

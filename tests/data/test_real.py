"""xsr.data.real (table, cache, open_real, splits) and the converters of scripts/fetch_real_data.py.

Small synthetic NetCDF files in tmp_path stand in for the cache; the real data are only opened by
the slow test at the end, and only where they have been fetched.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from xsr.data.real import (
    FETCH_COMMAND,
    MANIFEST,
    REAL_DATASETS,
    default_cache,
    list_real,
    open_real,
    real_path,
    split_index,
)
from xsr.digest import sha256_file
from xsr.testing import raise_if_dask_computes

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_real_data.py"


def _script():
    """Import the fetch script as a module (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("fetch_real_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _navy_like(path: Path) -> xr.Dataset:
    """A small stand-in for navy-winds.nc: 132 monthly frames 1982-1992, descending latitude."""
    time = pd.date_range("1982-01-01", periods=132, freq="MS") + pd.Timedelta(days=15)
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            v: (("time", "lat", "lon"), rng.normal(size=(132, 5, 8)).astype("float32"))
            for v in ("uwnd", "vwnd")
        },
        coords={
            "time": time,
            "lat": np.linspace(60.0, -60.0, 5),
            "lon": ("lon", np.arange(8) * 45.0 + 20.0, {"period": 360.0}),
        },
    )
    ds.to_netcdf(path)
    return ds


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    _navy_like(tmp_path / "navy-winds.nc")
    return tmp_path


def test_table_rows_are_consistent():
    for name, entry in REAL_DATASETS.items():
        assert entry.name == name
        assert entry.filename == f"{name}.nc"
        assert entry.split_dim in entry.dims, name
        assert entry.variables
        assert entry.licence
        assert entry.split_note
        assert entry.source.split(":")[0] in {"debian", "pypi"}
        assert (entry.time_span is None) == ("time" not in entry.dims), name


def test_list_real_describes_every_dataset_and_what_is_cached(cache):
    rows = list_real(cache=cache)
    assert [r["name"] for r in rows] == list(REAL_DATASETS)
    cached = {r["name"]: r["cached"] for r in rows}
    assert cached["navy-winds"] is True
    assert not any(v for k, v in cached.items() if k != "navy-winds")
    row = rows[0]
    assert row["variables"] == ["uwnd", "vwnd"]
    assert row["split_dim"] == "time"
    assert row["path"] == str(cache / "navy-winds.nc")
    json.dumps(rows)  # plain data, printable as JSON


def test_missing_dataset_names_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        open_real("etopo5", cache=tmp_path)
    message = str(err.value)
    assert FETCH_COMMAND in message
    assert str(tmp_path / "etopo5.nc") in message
    assert "never downloads" in message


def test_unknown_name_and_bad_split_are_refused(cache):
    with pytest.raises(KeyError, match=r"known names: .*navy-winds"):
        open_real("navy_winds", cache=cache)
    with pytest.raises(ValueError, match="split='validation'"):
        open_real("navy-winds", cache=cache, split="validation")


def test_cache_precedence_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XSR_DATA_DIR", raising=False)
    assert default_cache() == Path.home() / ".cache" / "xsr" / "real"
    monkeypatch.setenv("XSR_DATA_DIR", str(tmp_path / "env"))
    assert default_cache() == tmp_path / "env"
    assert real_path("etopo5") == tmp_path / "env" / "etopo5.nc"
    assert real_path("etopo5", cache=tmp_path / "arg") == tmp_path / "arg" / "etopo5.nc"
    (tmp_path / "env").mkdir()
    _navy_like(tmp_path / "env" / "navy-winds.nc")
    assert open_real("navy-winds").sizes["time"] == 132


@pytest.mark.parametrize("chunks", [None, {"time": 10}], ids=["eager", "chunked"])
def test_train_and_test_split_the_record_without_overlap(cache, chunks):
    full = open_real("navy-winds", cache=cache, chunks=chunks)
    with raise_if_dask_computes():
        train = open_real("navy-winds", cache=cache, split="train", chunks=chunks)
        test = open_real("navy-winds", cache=cache, split="test", chunks=chunks)
    assert (train.sizes["time"], test.sizes["time"]) == (96, 36)
    assert train.time.max() < np.datetime64("1990-01-01") <= test.time.min()
    assert (train.attrs["xsr_split"], test.attrs["xsr_split"], full.attrs["xsr_split"]) == (
        "train",
        "test",
        "all",
    )
    xr.testing.assert_equal(xr.concat([train, test], "time"), full)
    # The files' own orientation is kept: latitude still descends.
    assert float(full.lat[0]) > float(full.lat[-1])


def test_split_of_a_year_zero_climatology_decodes_without_warnings(tmp_path):
    # Ferret's COADS climatology is dated in year 0 (hours since 0000-01-01, proleptic Gregorian).
    hours = np.array([366.0 + 730.485 * m for m in range(12)])
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), np.zeros((12, 3, 4), "float32"))},
        coords={
            "time": (
                "time",
                hours,
                {"units": "hours since 0000-01-01 00:00:00", "calendar": "proleptic_gregorian"},
            ),
            "lat": [-1.0, 0.0, 1.0],
            "lon": [0.0, 90.0, 180.0, 270.0],
        },
    )
    ds.to_netcdf(tmp_path / "coads-climatology.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = open_real("coads-climatology", cache=tmp_path, split="train")
        test = open_real("coads-climatology", cache=tmp_path, split="test")
    assert [t.month for t in train.time.values] == list(range(1, 9))
    assert [t.month for t in test.time.values] == [9, 10, 11, 12]


def test_a_split_dimension_that_does_not_increase_is_refused(tmp_path):
    ds = xr.Dataset(
        {"rose": (("lat", "lon"), np.zeros((3, 6), "float32"))},
        coords={"lat": [-1.0, 0.0, 1.0], "lon": np.arange(6)[::-1] * 60.0},
    )
    ds.to_netcdf(tmp_path / "etopo5.nc")
    with pytest.raises(ValueError, match=r"'lon' does not increase.*--force"):
        open_real("etopo5", cache=tmp_path, split="train")
    assert open_real("etopo5", cache=tmp_path).sizes["lon"] == 6  # "all" needs no split


def test_a_split_that_leaves_a_part_empty_is_refused():
    entry = REAL_DATASETS["etopo5"]  # test from 252 degrees east
    with pytest.raises(ValueError, match="leaves 3 of 3 positions"):
        split_index(pd.Index([0.0, 100.0, 200.0]), entry)
    with pytest.raises(ValueError, match="leaves 0 of 2 positions"):
        split_index(pd.Index([300.0, 310.0]), entry)


@given(
    n=st.integers(min_value=2, max_value=400),
    data=st.data(),
)
def test_split_index_partitions_at_the_first_label_not_before_test_from(n, data):
    values = np.cumsum(data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))) * 1.0
    k_expected = data.draw(st.integers(1, n - 1))
    entry = dataclasses.replace(REAL_DATASETS["etopo5"], test_from=float(values[k_expected]))
    k = split_index(pd.Index(values), entry)
    assert k == k_expected
    assert (values[:k] < entry.test_from).all()
    assert (values[k:] >= entry.test_from).all()


# ----------------------------------------------------------------------------------------------
# The fetch script's converters, on synthetic files shaped like the packages' originals
# ----------------------------------------------------------------------------------------------


def _ferret_like(path: Path) -> None:
    """A Ferret-style file: uppercase names, odd units, ``modulo`` longitude from 20 degrees E."""
    nt, ny, nx = 14, 4, 6
    ds = xr.Dataset(
        {
            "UWND": (
                ("TIME", "FNOCY", "FNOCX"),
                np.arange(nt * ny * nx, dtype="float32").reshape(nt, ny, nx),
                {"units": "M/S", "long_name": "ZONAL WIND", "missing_value": np.float32(-99.9)},
            )
        },
        coords={
            "TIME": (
                "TIME",
                np.arange(nt) * 730.5 + 17598.0,
                {"units": "hour since 1980-01-14 14:00:00", "time_origin": "14-JAN-1980"},
            ),
            "FNOCY": ("FNOCY", [90.0, 30.0, -30.0, -90.0], {"units": "degrees_north"}),
            "FNOCX": (
                "FNOCX",
                np.arange(nx) * 60.0 + 20.0,
                {"units": "degrees_east", "modulo": " "},
            ),
        },
    )
    ds["UWND"].encoding["_FillValue"] = np.float32(-99.9)
    ds.to_netcdf(path, unlimited_dims=["TIME"])


def test_ferret_converter_gives_cf_names_and_keeps_values_order_and_dtype(tmp_path):
    fetch = _script()
    raw = tmp_path / "monthly_navy_winds.cdf"
    _ferret_like(raw)
    ds = fetch.convert_navy_winds(raw)
    assert list(ds.data_vars) == ["uwnd"]
    assert ds["uwnd"].dims == ("time", "lat", "lon")
    assert ds["uwnd"].attrs["units"] == "m s-1"
    assert ds["uwnd"].attrs["original_units"] == "M/S"
    assert ds["uwnd"].attrs["standard_name"] == "eastward_wind"
    assert ds["lon"].attrs["period"] == 360.0
    assert "modulo" not in ds["lon"].attrs
    np.testing.assert_array_equal(ds["lat"], [90.0, 30.0, -30.0, -90.0])  # order kept
    np.testing.assert_array_equal(ds["lon"], np.arange(6) * 60.0 + 20.0)  # values kept
    with xr.open_dataset(raw) as original:
        np.testing.assert_array_equal(ds["uwnd"].values, original["UWND"].values)
    assert str(ds["time"].values[0])[:10] == "1982-01-16"
    assert ds.encoding["unlimited_dims"] == {"time"}
    out = tmp_path / "out.nc"
    ds.to_netcdf(out)
    with xr.open_dataset(out, mask_and_scale=False) as back:
        assert back["uwnd"].dtype == np.float32
        assert back["uwnd"].attrs["_FillValue"] == np.float32(-99.9)


def test_convert_one_writes_a_verified_record_and_refuses_a_table_mismatch(tmp_path):
    fetch = _script()
    raw = tmp_path / "raw.cdf"
    _ferret_like(raw)
    entry = dataclasses.replace(
        REAL_DATASETS["navy-winds"],
        variables=("uwnd",),
        time_span=("1982-01-16", "1983-02"),
        test_from="1983-01-01",
    )
    fetch.CONVERTERS[entry.name] = fetch.convert_navy_winds
    record = fetch.convert_one(entry, raw, tmp_path)
    assert record["sha256"] == sha256_file(tmp_path / "navy-winds.nc")
    assert record["dims"] == {"time": 14, "lat": 4, "lon": 6}
    assert record["split"]["train"] == 12
    assert record["split"]["test"] == 2
    assert record["variables"]["uwnd"]["units"] == "m s-1"
    manifest = {"datasets": {entry.name: record}}
    assert fetch.verified(tmp_path, manifest, entry)
    (tmp_path / "navy-winds.nc").write_bytes(b"not the file")
    assert not fetch.verified(tmp_path, manifest, entry)
    wrong = dataclasses.replace(entry, variables=("uwnd", "vwnd"))
    with pytest.raises(ValueError, match="no variable 'vwnd'"):
        fetch.convert_one(wrong, raw, tmp_path)


def test_fetch_skips_a_verified_dataset_and_refetches_a_changed_one(tmp_path, monkeypatch):
    fetch = _script()
    raw = tmp_path / "raw.cdf"
    _ferret_like(raw)
    entry = dataclasses.replace(
        REAL_DATASETS["navy-winds"],
        variables=("uwnd",),
        time_span=("1982-01-16", "1983-02"),
        test_from="1983-01-01",
    )
    monkeypatch.setitem(fetch.REAL_DATASETS, "navy-winds", entry)
    cache = tmp_path / "cache"
    cache.mkdir()
    fetch.save_manifest(cache, {"datasets": {"navy-winds": fetch.convert_one(entry, raw, cache)}})
    calls = []

    def no_network(package, packages_dir):
        calls.append(package)
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(fetch, "fetch_package", no_network)
    assert fetch.fetch(["navy-winds"], cache) == {"navy-winds": "cached (sha256 verified)"}
    assert calls == []
    (cache / "navy-winds.nc").write_bytes(b"truncated")
    outcome = fetch.fetch(["navy-winds"], cache)
    assert calls == ["ferret-datasets"]
    assert outcome["navy-winds"].startswith("FAILED to fetch ferret-datasets")
    assert fetch.main(["--cache", str(cache), "navy-winds"]) == 1


# ----------------------------------------------------------------------------------------------
# The real data, where fetched
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL_DATASETS))
def test_real_dataset_opens_and_splits_where_fetched(name):
    path = real_path(name)
    if not path.is_file():
        pytest.skip(f"{name} is not fetched ({FETCH_COMMAND})")
    entry = REAL_DATASETS[name]
    manifest = json.loads((path.parent / MANIFEST).read_text())
    assert sha256_file(path) == manifest["datasets"][name]["sha256"]
    full = open_real(name, chunks={})
    for v in entry.variables:
        assert full[v].dims == entry.dims
        assert full[v].attrs.get("units")
    train = open_real(name, split="train")
    test = open_real(name, split="test")
    assert train.sizes[entry.split_dim] + test.sizes[entry.split_dim] == full.sizes[entry.split_dim]
    assert train.sizes[entry.split_dim] >= test.sizes[entry.split_dim] > 0

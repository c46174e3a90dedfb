"""The scale-only call ``ds.sr.upscale(scale=s)`` on data shaped like users' files (issue 16).

What a user brings: an NCEP-style file (``uwnd`` packed as int16, latitude 90..-90, global
longitude 0..357.5), a CMIP-style file (``tas`` in K, noleap calendar, ``lat_bnds``/``lon_bnds``),
each built-in variable alone, the cached public real datasets, and bad input (an all-NaN
variable, a constant, integers still packed, a single frame, a field smaller than the model's
receptive field). The call must pick its model by :func:`xsr.upscaling.best_pretrained` (the
shipped field model; bicubic with a :class:`NoLearnedModelWarning` while none is shipped), say
which in ``history``, and label the result.

The tests hold with whichever field model is shipped: they find it by its card's kind, never by a
name or its weights; those that need one are skipped while none is shipped.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import warnings
from collections.abc import Hashable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsr
from xsr._chunked import HaloChunkWarning
from xsr.degradation import degrade
from xsr.models import pretrained
from xsr.testing import raise_if_dask_computes
from xsr.upscaling import (
    InputRangeWarning,
    NoLearnedModelWarning,
    NoShippedModelError,
    PackedDataWarning,
    best_pretrained,
)

#: No specialised model has a variable of this name: best_pretrained finds field models only.
_PROBE = "__no_specialised_model_has_this_variable__"
_SWE_VARS = ("h", "u", "v", "vorticity", "tracer")
_CF_RAW = ("scale_factor", "add_offset", "_FillValue", "missing_value")


# ------------------------------------------------------------------ synthetic user files


def ncep_like(path: Path, *, frames: int = 2, missing: bool = False) -> Path:
    """An NCEP/NCAR-reanalysis-style file: daily ``uwnd`` packed as int16 on a 2.5 degree grid.

    Latitude runs 90..-90 (73 nodes, the poles included), longitude 0..357.5 (144, global);
    ``missing`` leaves two cells of the first frame missing (stored as the fill value).
    """
    lat = np.linspace(90.0, -90.0, 73)
    lon = np.arange(144) * 2.5
    rng = np.random.default_rng(0)
    phase = rng.random((frames, 1, 1)) * 2 * np.pi
    jet = 25.0 * np.cos(np.deg2rad(lat))[None, :, None] ** 2
    wave = 8.0 * np.sin(np.deg2rad(3 * lon)[None, None, :] + phase)
    u = jet + wave * np.cos(np.deg2rad(lat))[None, :, None] + rng.normal(0, 1.5, (frames, 73, 144))
    if missing:
        u[0, 20, 30] = u[0, 50, 100] = np.nan
    ds = xr.Dataset(
        {
            "uwnd": (
                ("time", "lat", "lon"),
                u,
                {
                    "long_name": "mean Daily u-wind at 850 mb",
                    "units": "m/s",
                    "var_desc": "u-wind",
                    "level_desc": "Pressure Levels",
                    "statistic": "Mean",
                    "precision": 2,
                },
            )
        },
        coords={
            "time": ("time", pd.date_range("1990-01-01", periods=frames, freq="D")),
            "lat": ("lat", lat, {"units": "degrees_north", "long_name": "Latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "long_name": "Longitude"}),
        },
        attrs={"Conventions": "COARDS", "title": "synthetic NCEP-style daily u-wind"},
    )
    encoding = {
        "uwnd": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 187.65, "_FillValue": 32766}
    }
    ds.to_netcdf(path, encoding=encoding)
    return path


def cmip_like(path: Path, *, frames: int = 3) -> Path:
    """A CMIP-style monthly ``tas`` file: K, noleap calendar, lat/lon/time bounds variables."""
    nlat, nlon = 24, 48
    lat = -90.0 + 7.5 * (np.arange(nlat) + 0.5)
    lon = 7.5 * (np.arange(nlon) + 0.5)
    time = xr.date_range(
        "2015-01-01", periods=frames + 1, freq="MS", calendar="noleap", use_cftime=True
    )
    mid = [a + (b - a) / 2 for a, b in itertools.pairwise(time)]
    rng = np.random.default_rng(1)
    tas = (
        250.0
        + 45.0 * np.cos(np.deg2rad(lat))[None, :, None]
        + 5.0 * np.sin(np.deg2rad(2 * lon))[None, None, :]
        + rng.normal(0, 1.0, (frames, nlat, nlon))
    )
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                tas.astype("float32"),
                {
                    "standard_name": "air_temperature",
                    "long_name": "Near-Surface Air Temperature",
                    "units": "K",
                    "cell_methods": "area: time: mean",
                },
            ),
            "time_bnds": (("time", "bnds"), np.stack([time[:-1], time[1:]], axis=1)),
            "lat_bnds": (("lat", "bnds"), np.stack([lat - 3.75, lat + 3.75], axis=1)),
            "lon_bnds": (("lon", "bnds"), np.stack([lon - 3.75, lon + 3.75], axis=1)),
        },
        coords={
            "time": ("time", mid, {"bounds": "time_bnds", "axis": "T"}),
            "lat": (
                "lat",
                lat,
                {
                    "bounds": "lat_bnds",
                    "units": "degrees_north",
                    "axis": "Y",
                    "standard_name": "latitude",
                },
            ),
            "lon": (
                "lon",
                lon,
                {
                    "bounds": "lon_bnds",
                    "units": "degrees_east",
                    "axis": "X",
                    "standard_name": "longitude",
                },
            ),
        },
        attrs={"Conventions": "CF-1.7 CMIP-6.2", "history": "synthetic CMIP-style tas"},
    )
    units = "days since 1850-01-01"
    encoding = {
        "time": {"units": units, "calendar": "noleap"},
        "time_bnds": {"units": units, "calendar": "noleap"},
    }
    ds.to_netcdf(path, encoding=encoding)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user-files")
    return {
        "ncep": ncep_like(root / "uwnd.nc"),
        "ncep-missing": ncep_like(root / "uwnd-missing.nc", missing=True),
        "cmip": cmip_like(root / "tas.nc"),
    }


@pytest.fixture(scope="module")
def swe() -> xr.Dataset:
    # the fast preset (no spin-up): only the variables and their labels matter here
    return xsr.data.shallow_water(16, 16, preset="smooth", frames=3, seed=1, dtype="float32")


# ------------------------------------------------------------------ what the call must pick


def _shipped_field(scale: int, frames: int = 1) -> str | None:
    """The shipped field model the scale-only call uses for any variable, or None.

    ``frames``: the data's frames (a temporal field model needs its window of them).
    """
    try:
        name = best_pretrained(scale, [_PROBE], frames=frames)
    except NoShippedModelError:
        return None
    assert pretrained.pretrained_card(name).kind == "field"
    return name


def _spatial_names(obj: xr.Dataset | xr.DataArray) -> list[Hashable]:
    if isinstance(obj, xr.DataArray):
        return [obj.name]
    return [n for n, v in obj.data_vars.items() if v.ndim >= 2 and "bnds" not in v.dims]


def _frames(obj: xr.Dataset | xr.DataArray) -> int:
    """Frames along ``time`` of the variables to upscale (1 without a time axis)."""
    if isinstance(obj, xr.DataArray):
        return obj.sizes.get("time", 1)
    return min(obj[n].sizes.get("time", 1) for n in _spatial_names(obj))


@contextlib.contextmanager
def _scale_only(obj: xr.Dataset | xr.DataArray, scale: int) -> Iterator[str | None]:
    """Expect the pick of ``best_pretrained``: yields its name, or None for the fallback.

    The fallback must come with its warning naming the variables; no other xsr warning may
    appear (pytest turns them into errors).
    """
    names = [str(n) for n in _spatial_names(obj)]
    try:
        expected = best_pretrained(scale, names, frames=_frames(obj))
    except NoShippedModelError:
        expected = None
    if expected is None:
        with pytest.warns(NoLearnedModelWarning, match=repr(names[0])):
            yield None
    else:
        yield expected


def _history_says(out: xr.Dataset | xr.DataArray, scale: int, expected: str | None) -> None:
    line = out.attrs["history"].splitlines()[-1]
    if expected is None:
        assert f"model=bicubic-x{scale} weights=none" in line
        assert "fallback=no-learned-model" in line
        return
    card = pretrained.pretrained_card(expected)
    assert f"model={expected} weights_sha256={card.sha256} " in line
    assert f"scale={scale} " in line
    assert ("kind=field" in line) == (card.kind == "field")


def _without_raw(attrs: dict) -> dict:
    """Attributes less CF packing/fill attributes (left in attrs by mask_and_scale=False)."""
    return {k: v for k, v in attrs.items() if k not in (*_CF_RAW, "history")}


def _check_labels(
    src: xr.Dataset | xr.DataArray, out: xr.Dataset | xr.DataArray, scale: int
) -> None:
    """Shapes, masks, attributes, coordinates and bounds of a result against its input."""
    assert type(out) is type(src)
    spatial = {d for d in ("lat", "lon", "y", "x", "latitude", "longitude") if d in src.dims}
    for name in _spatial_names(src):
        s = src if isinstance(src, xr.DataArray) else src[name]
        o = out if isinstance(out, xr.DataArray) else out[name]
        assert o.dims == s.dims
        assert o.sizes == {d: n * scale if d in spatial else n for d, n in s.sizes.items()}
        # NaN exactly on the fine cells of NaN input cells, finite everywhere else
        fine = np.isnan(s.values)
        for d in spatial:
            fine = fine.repeat(scale, axis=s.get_axis_num(d))
        np.testing.assert_array_equal(np.isnan(o.values), fine)
        assert np.isfinite(o.values[~fine]).all()
        assert _without_raw(o.attrs) == _without_raw(s.attrs)
    # coordinates: fine cell centres whose block means (degrade) give the input's back, the
    # other coordinates unchanged, latitudes on the sphere
    back = degrade(out.compute(), scale=scale)
    for d in spatial:
        if d in src.coords:
            # float32 coordinates (OSTIA's) come back to their rounding
            atol = 1e-4 if src[d].dtype == np.float32 else 1e-9
            np.testing.assert_allclose(back[d].values, src[d].values, rtol=0, atol=atol)
            assert _without_raw(out[d].attrs) == _without_raw(src[d].attrs)
            if "lat" in str(d):
                assert np.abs(out[d].values).max() <= 90.0
    for n, c in src.coords.items():
        if not spatial & set(c.dims):
            xr.testing.assert_identical(out.coords[n], c)
    if isinstance(src, xr.Dataset):
        # CF bounds: contiguous, around the fine centres, spanning the coarse cells
        for d in spatial:
            b = src[d].attrs.get("bounds")
            if b is None:
                continue
            fine_b, coarse_b = out[b].values, src[b].values
            assert fine_b.shape == (scale * coarse_b.shape[0], 2)
            np.testing.assert_allclose(fine_b[1:, 0], fine_b[:-1, 1])
            np.testing.assert_allclose(fine_b[::scale, 0], coarse_b[:, 0])
            np.testing.assert_allclose(fine_b[scale - 1 :: scale, 1], coarse_b[:, 1])
            lo, hi = fine_b.min(axis=1), fine_b.max(axis=1)
            assert np.all((lo <= out[d].values) & (out[d].values <= hi))
        for n, v in src.data_vars.items():  # time bounds and other passengers unchanged
            if not spatial & set(v.dims):
                xr.testing.assert_identical(out[n], v)
        history = src.attrs.get("history")
        if history:
            assert out.attrs["history"].startswith(history)


def _same(lazy: xr.Dataset | xr.DataArray, eager: xr.Dataset | xr.DataArray) -> None:
    """Equal within 1e-5 of the data range (chunked inference sums in another order)."""
    for name in _spatial_names(eager):
        a = lazy if isinstance(lazy, xr.DataArray) else lazy[name]
        b = eager if isinstance(eager, xr.DataArray) else eager[name]
        span = float(np.nanmax(b.values) - np.nanmin(b.values)) or 1.0
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-5 * span)


@contextlib.contextmanager
def _strict() -> Iterator[None]:
    """Any warning is an error (numpy's RuntimeWarnings from dask tasks included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------------ the call on users' files


def _open(files: dict[str, Path], kind: str, how: str) -> xr.Dataset:
    if how == "eager":
        return xr.open_dataset(files[kind]).load()  # xarray's own opener
    # two chunks along longitude, each wider than the models' halos
    chunks = {"time": 1, "lon": 72 if kind.startswith("ncep") else 24}
    return xsr.io.open_dataset(files[kind], chunks=chunks)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("kind", ["ncep", "cmip"])
def test_scale_only_on_user_files_eager(files: dict[str, Path], kind: str, scale: int) -> None:
    ds = _open(files, kind, "eager")
    with _scale_only(ds, scale) as expected:
        out = ds.sr.upscale(scale=scale)
    _history_says(out, scale, expected)
    _check_labels(ds, out, scale)
    assert out[_spatial_names(ds)[0]].dtype == ds[_spatial_names(ds)[0]].dtype


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("kind", ["ncep", "cmip"])
def test_scale_only_on_user_files_is_lazy(files: dict[str, Path], kind: str, scale: int) -> None:
    ds = _open(files, kind, "dask")
    with _scale_only(ds, scale) as expected, raise_if_dask_computes():
        lazy = ds.sr.upscale(scale=scale)
    name = _spatial_names(ds)[0]
    assert lazy[name].chunks is not None
    with _strict():
        out = lazy.compute()
    _history_says(out, scale, expected)
    _check_labels(ds, out, scale)
    eager = _open(files, kind, "eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLearnedModelWarning)
        _same(out, eager.sr.upscale(scale=scale))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("form", ["dataset", "dataarray", "dataarray-chunked"])
@pytest.mark.parametrize("name", _SWE_VARS)
def test_scale_only_on_each_built_in_variable_alone(
    swe: xr.Dataset, name: str, form: str, scale: int
) -> None:
    src = swe[[name]] if form == "dataset" else swe[name]
    if form == "dataarray-chunked":
        src = src.chunk({"time": 1})
    with _scale_only(src, scale) as expected, raise_if_dask_computes():
        out = src.sr.upscale(scale=scale)
    with _strict():
        out = out.compute()
    _history_says(out, scale, expected)
    _check_labels(src, out, scale)
    assert "period" in out["x"].attrs
    assert "periodic_x=True" in out.attrs["history"]


@pytest.mark.slow  # a LocalCluster starts in about a second; with the work, a few seconds
def test_scale_only_on_a_local_cluster(files: dict[str, Path]) -> None:
    distributed = pytest.importorskip("distributed")
    ds = _open(files, "cmip", "dask")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLearnedModelWarning)
        eager = _open(files, "cmip", "eager").sr.upscale(scale=2)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        with _scale_only(ds, 2) as expected:
            lazy = ds.sr.upscale(scale=2)
        out = lazy.compute()
    _history_says(out, 2, expected)
    _check_labels(ds, out, 2)
    _same(out, eager)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_shipped_field_model_is_picked_for_any_variable(
    files: dict[str, Path], swe: xr.Dataset, scale: int
) -> None:
    if _shipped_field(scale) is None:
        pytest.skip(f"no field model is shipped for scale={scale} (PRETRAINED has none)")
    cases = [
        xr.open_dataset(files["ncep"]),
        xr.open_dataset(files["cmip"]),
        *(swe[[n]] for n in _SWE_VARS),
        swe["h"].rename(None),
    ]
    for i, ds in enumerate(cases):
        names = [str(n) for n in _spatial_names(ds)]
        if any(
            {str(v["name"]) for v in pretrained.pretrained_card(n).variables} == set(names)
            for n in pretrained.PRETRAINED
        ):
            continue  # a specialised model of exactly these variables may beat it
        field = _shipped_field(scale, _frames(ds))
        assert best_pretrained(scale, names, frames=_frames(ds)) == field
        if i in (1, 2, len(cases) - 1):  # the call itself, on a few (each takes a moment)
            with _strict():
                out = ds.sr.upscale(scale=scale)
            _history_says(out, scale, field)
            assert "kind=field" in out.attrs["history"].splitlines()[-1]


# ------------------------------------------------------------------ the cached real datasets


def _few_frames(ds: xr.Dataset, name: str) -> xr.Dataset:
    """A few frames of a test split; ETOPO5's single 5-minute map is cut to one region."""
    small = {d: slice(0, 3) for d in ("time", "number") if d in ds.dims}
    if name == "etopo5":  # 2160 x 1296 cells: a 96 x 128 region keeps the test in seconds
        small.update({"lat": slice(1000, 1096), "lon": slice(0, 128)})
    return ds.isel(small)


_REAL = [r["name"] for r in xsr.data.list_real()]


@pytest.mark.slow
@pytest.mark.parametrize("name", _REAL)
def test_scale_only_on_every_cached_real_dataset(name: str) -> None:
    row = next(r for r in xsr.data.list_real() if r["name"] == name)
    if not row["cached"]:
        pytest.skip(f"{name} is not in the real-data cache ({xsr.data.real.FETCH_COMMAND})")
    ds = _few_frames(xsr.data.open_real(name, split="test", chunks={}), name)
    for scale in (2, 4):
        with _scale_only(ds, scale) as expected, raise_if_dask_computes():
            lazy = ds.sr.upscale(scale=scale)
        with _strict():
            out = lazy.compute()
        _history_says(out, scale, expected)
        _check_labels(ds, out, scale)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("scale", [2, 4])
def test_an_all_nan_variable_stays_nan_and_leaves_the_others_alone(
    swe: xr.Dataset, scale: int, chunked: bool
) -> None:
    ds = swe[["h", "tracer"]].copy()
    ds["h"] = ds["h"].where(False)
    src = ds.chunk({"time": 1}) if chunked else ds
    with _scale_only(src, scale) as expected:
        out = src.sr.upscale(scale=scale)
    with _strict():  # no RuntimeWarning from the empty frames' statistics either
        out = out.compute()
    _history_says(out, scale, expected)
    assert bool(np.isnan(out["h"]).all())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLearnedModelWarning)
        alone = swe[["tracer"]].sr.upscale(scale=scale)
    _same(out[["tracer"]], alone)


@pytest.mark.parametrize("chunked", [False, True])
def test_an_all_nan_frame_given_to_a_specialised_model(swe: xr.Dataset, chunked: bool) -> None:
    # 'h' missing in one frame: NaN there; the other variables of that frame are computed with
    # 'h' at the model's training mean (a typical depth, not 0 m)
    model = "fsrcnn-swe-x2"
    card = pretrained.pretrained_card(model)
    ds = swe.copy(deep=True)
    ds["h"][1] = np.nan
    typical = ds.copy(deep=True)
    typical["h"][1] = card.normalisation["h"]["mean"]
    src = ds.chunk({"time": 1}) if chunked else ds
    with _strict():
        out = src.sr.upscale(model=model).compute()
    ref = typical.sr.upscale(model=model)
    assert bool(np.isnan(out["h"][1]).all())
    assert bool(np.isfinite(out["h"][[0, 2]]).all())
    for name in ("u", "v", "vorticity", "tracer"):
        _same(out[name], ref[name])


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("scale", [2, 4])
def test_a_constant_field_comes_back_exactly(swe: xr.Dataset, scale: int, chunked: bool) -> None:
    field = _shipped_field(scale, swe.sizes["time"])
    if field is None:
        pytest.skip(f"no field model is shipped for scale={scale}")
    ds = xr.Dataset({"h": swe["h"] * 0 + 101.3, "tracer": swe["tracer"] * 0 - 3.0e5})
    ds["h"].attrs["units"] = "m"
    ds["tracer"][0, 2:5, 3:6] = np.nan  # a mask: the valid cells still hold the constant
    src = ds.chunk({"time": 1, "x": 8}) if chunked else ds
    with _strict():
        # chunks narrower than a model's halo are merged with a warning: not this test's point
        warnings.filterwarnings("ignore", category=HaloChunkWarning)
        out = src.sr.upscale(scale=scale).compute()
    _history_says(out, scale, field)
    assert np.all(out["h"].values == np.float32(101.3))
    valid = out["tracer"].values[~np.isnan(out["tracer"].values)]
    assert valid.size == out["tracer"].size - 9 * scale**2
    assert np.all(valid == np.float32(-3.0e5))


@pytest.mark.parametrize("how", ["eager", "dask"])
def test_packed_integers_opened_without_decoding_warn_and_are_decoded(
    files: dict[str, Path], how: str
) -> None:
    path = files["ncep-missing"]
    if how == "eager":
        raw = xr.open_dataset(path, mask_and_scale=False).load()
    else:
        raw = xsr.io.open_dataset(path, mask_and_scale=False, chunks={"time": 1})
    assert raw["uwnd"].dtype == np.int16
    assert {"scale_factor", "add_offset", "_FillValue"} <= set(raw["uwnd"].attrs)
    decoded = xr.open_dataset(path).load()
    with (
        _scale_only(raw, 2) as expected,
        pytest.warns(PackedDataWarning, match=r"'uwnd' \(int16\).*mask_and_scale=False") as rec,
        raise_if_dask_computes(),
    ):
        out = raw.sr.upscale(scale=2)
    assert any("xr.decode_cf" in str(w.message) for w in rec)
    with _strict():
        out = out.compute()
    _history_says(out, 2, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLearnedModelWarning)
        ref = decoded.sr.upscale(scale=2)
    _check_labels(decoded, out, 2)  # the missing cells are NaN; the packing attributes gone
    _same(out, ref)


def test_a_single_frame_works_with_and_without_a_time_dimension(swe: xr.Dataset) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLearnedModelWarning)
        frame0 = swe[["h"]].sr.upscale(scale=2)["h"][0]
    for src in (swe.isel(time=0), swe.isel(time=[0])):
        # the whole set of variables: a model reading windows of 3 frames is not picked
        with _scale_only(src, 2) as expected:
            out = src.sr.upscale(scale=2)
        _history_says(out, 2, expected)
        _check_labels(src, out, 2)
        if expected is not None:
            assert pretrained.pretrained_card(expected).window == 1
    for src in (swe["h"].isel(time=0), swe[["h"]].isel(time=[0])):
        with _scale_only(src, 2) as expected:
            out = src.sr.upscale(scale=2)
        one = out if isinstance(out, xr.DataArray) else out["h"][0]
        _same(one, frame0)  # a 2-D model serves each frame alone


def _mirrored(da_: xr.DataArray, dims: tuple[str, str]) -> xr.DataArray:
    """``da_`` with mirror images on every side (3 x 3 tiles), new uniform coordinates."""
    out = da_
    for d in dims:
        flipped = out.isel({d: slice(None, None, -1)})
        out = xr.concat([flipped, out, flipped], dim=d)
        step = float(da_[d][1] - da_[d][0])
        start = float(da_[d][0]) - step * da_.sizes[d]
        out = out.assign_coords({d: start + step * np.arange(out.sizes[d])})
    return out


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("which", ["field", "specialised", "specialised-windowed"])
def test_a_field_smaller_than_the_receptive_field_is_upscaled_with_mirrored_edges(
    swe: xr.Dataset, which: str, scale: int, chunked: bool
) -> None:
    # 3 x 3 cells, radius 4 or more: the edges are mirrored as on any bounded grid, so the
    # result equals the middle of the result for the field mirrored on every side
    if which == "field":
        model = _shipped_field(scale, swe.sizes["time"])
        if model is None:
            pytest.skip(f"no field model is shipped for scale={scale}")
        names = ["h"]
    else:
        arch = "xsrnet" if which == "specialised-windowed" else "fsrcnn"
        model = f"{arch}-swe-x{scale}"
        names = list(_SWE_VARS)
    card = pretrained.pretrained_card(model)
    assert card.receptive_radius > 3
    # new coordinates: the crop of a periodic domain is not periodic
    tiny = swe[names].isel(y=slice(5, 8), x=slice(9, 12)).drop_vars(["x", "y"])
    tiny = tiny.assign_coords(y=[0.0, 1.0, 2.0], x=[0.0, 1.0, 2.0])
    big = xr.Dataset({n: _mirrored(tiny[n], ("y", "x")) for n in names})
    src = tiny.chunk({"time": 1}) if chunked else tiny
    with _strict():
        out = src.sr.upscale(model=model).compute()
        ref = big.sr.upscale(model=model)
    n = 3 * scale
    for name in names:
        assert out[name].shape == (swe.sizes["time"], n, n)
        _same(out[name], ref[name].isel(y=slice(n, 2 * n), x=slice(n, 2 * n)))


@pytest.mark.parametrize("scale", [2, 4])
def test_a_tiny_global_grid_wraps_around(scale: int) -> None:
    # 3 longitudes (120 degrees apart) on a periodic axis, halo 4 or more: wrapped, so the
    # result equals the middle of the result for the longitudes repeated three times
    field = _shipped_field(scale, 2)
    if field is None:
        pytest.skip(f"no field model is shipped for scale={scale}")
    rng = np.random.default_rng(3)
    tiny = xr.DataArray(
        (280 + 10 * rng.random((2, 4, 3))).astype("float32"),
        dims=("time", "lat", "lon"),
        coords={"lat": [-45.0, -15.0, 15.0, 45.0], "lon": [0.0, 120.0, 240.0]},
        name="tas",
        attrs={"units": "K"},
    )
    wide = xr.concat([tiny] * 3, dim="lon").assign_coords(lon=np.arange(9) * 40.0)
    with _strict():
        out = tiny.chunk({"time": 1}).sr.upscale(scale=scale).compute()
        ref = wide.sr.upscale(scale=scale)
    assert "periodic_x=True" in out.attrs["history"]
    n = 3 * scale
    _same(out, ref.isel(lon=slice(n, 2 * n)))


# ------------------------------------------------------------------ guards of specialised models


def test_no_units_and_far_values_warn_naming_the_variable_and_the_universal_model(
    swe: xr.Dataset,
) -> None:
    ds = swe.copy()
    ds["u"] = swe["u"] * 100  # cm/s, with no units attribute to say so
    ds["u"].attrs = {"long_name": "eastward velocity"}
    field = _shipped_field(2, swe.sizes["time"])
    hint = re.escape(f"model={field!r}" if field else "none is shipped for scale=2")
    with pytest.warns(InputRangeWarning, match=r"'u'.*20 standard deviations") as rec:
        ds.sr.upscale(model="fsrcnn-swe-x2")
    assert all(re.search(hint, str(w.message)) for w in rec)
    assert not any("'h'" in str(w.message) for w in rec)
    bad = swe.copy()
    bad["u"] = swe["u"].assign_attrs(units="K")
    with pytest.raises(ValueError, match=rf"'u' has units 'K'.*{hint}"):
        bad.sr.upscale(model="fsrcnn-swe-x2")

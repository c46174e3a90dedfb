"""Tests of the labelled upscaling function (xarray layer) with the real xsr models."""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import warnings
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings

import xsr.accessor  # noqa: F401  (registers .sr)
from xsr import engine
from xsr._chunked import HaloChunkWarning
from xsr._version import __version__
from xsr.coords import coarsen_coord
from xsr.degradation import degrade
from xsr.models import ModelFileError, get_model, pretrained, save_model
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.upscaling import (
    InputRangeWarning,
    NoLearnedModelWarning,
    NonFiniteWarning,
    NoShippedModelError,
    PackedDataWarning,
    VariableNameWarning,
    best_pretrained,
    upscale,
)


def _build(name: str, **config: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = get_model(name, **config)
    with torch.no_grad():  # make every PReLU slope non-zero so nothing is dead
        for module in model.modules():
            if isinstance(module, torch.nn.PReLU):
                module.weight.fill_(0.2)
    return model.eval()


MODELS = {
    "fsrcnn": _build("fsrcnn", scale=2, channels=1),
    "srnet3d": _build("srnet3d", scale=2, channels=1),
    "chain": _build(
        "chain", stages=[{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]
    ),
    "xsrnet": _build("xsrnet", scale=2, channels=1),
}


def _close(
    a: xr.DataArray | xr.Dataset, b: xr.DataArray | xr.Dataset, *, rel: float = 1e-6
) -> None:
    if isinstance(b, xr.Dataset):
        for name in b.data_vars:
            _close(a[name], b[name], rel=rel)
        return
    # "equal within 1e-6 relative": relative to the data range of the reference
    data_range = float(np.nanmax(b.values) - np.nanmin(b.values)) if b.size else 1.0
    xr.testing.assert_allclose(a, b, rtol=0, atol=rel * data_range)


def _movie(nt: int = 8, ny: int = 8, nx: int = 10, **kw: object) -> xr.Dataset:
    return random_movie(nt, ny, nx, **kw)


# ---------------------------------------------------------------- eager and lazy


@pytest.mark.parametrize("name", ["fsrcnn", "srnet3d", "chain", "xsrnet"])
def test_dataset_eager_and_chunked(name: str) -> None:
    model = MODELS[name]
    ds = _movie(nx=40, variables=("h", "u"))
    eager = upscale(ds, model)
    assert eager["h"].shape == (8, 16, 80)
    assert eager["h"].dims == ("time", "y", "x")
    assert eager["h"].dtype == np.float32
    with raise_if_dask_computes():  # chunks of at least the halo (twice the receptive radius)
        lazy = upscale(ds.chunk({"time": 4, "x": 20}), model)
    assert lazy["h"].chunks == ((4, 4), (16,), (40, 40))
    _close(lazy.compute(), eager)
    xr.testing.assert_identical(lazy["x"], eager["x"])


def test_dataarray_eager_and_chunked() -> None:
    da = _movie()["h"]
    eager = upscale(da, MODELS["srnet3d"])
    assert isinstance(eager, xr.DataArray)
    assert eager.name == "h"
    with raise_if_dask_computes():
        lazy = da.chunk({"time": 3}).sr.upscale(MODELS["srnet3d"])
    assert isinstance(lazy.data, type(da.chunk().data))
    _close(lazy.compute(), eager)


def test_bfloat16_precision_eager_and_chunked() -> None:
    ds = _movie(nx=20)
    exact = upscale(ds, MODELS["xsrnet"])
    rough = upscale(ds, MODELS["xsrnet"], precision="bfloat16")
    with raise_if_dask_computes():
        lazy = ds.chunk({"time": 4}).sr.upscale(MODELS["xsrnet"], precision="bfloat16")
    _close(lazy.compute(), rough)  # chunk invariant in bfloat16 too
    _close(rough, exact, rel=2e-2)
    assert not np.array_equal(rough["h"].values, exact["h"].values)
    with pytest.raises(ValueError, match="precision must be one of"):
        upscale(ds.chunk({"time": 4}), MODELS["xsrnet"], precision="half")


def test_accessor_matches_function() -> None:
    ds = _movie(4, 6, 6)
    _close(ds.sr.upscale("bicubic", scale=2), upscale(ds, "bicubic", scale=2))


_EAGER: dict[str, xr.Dataset] = {}


@settings(max_examples=9, deadline=None)
@given(
    name=st.sampled_from(["fsrcnn", "srnet3d", "chain"]),
    ct=st.integers(1, 8),
    cy=st.integers(1, 8),
    cx=st.integers(1, 10),
)
def test_chunk_invariance_property(name: str, ct: int, cy: int, cx: int) -> None:
    ds = _movie()
    if name not in _EAGER:
        _EAGER[name] = upscale(ds, MODELS[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HaloChunkWarning)
        lazy = upscale(ds.chunk({"time": ct, "y": cy, "x": cx}), MODELS[name])
    _close(lazy.compute(), _EAGER[name])


def test_tiling_matches_untiled() -> None:
    ds = _movie(5, 10, 11)
    for name in ("fsrcnn", "srnet3d"):
        whole = upscale(ds, MODELS[name], tile=False)
        _close(upscale(ds, MODELS[name], tile=(6, 5), batch_size=2), whole)


def test_small_chunks_are_rechunked_with_a_warning() -> None:
    ds = _movie()
    with pytest.warns(HaloChunkWarning, match="merged"):
        lazy = upscale(ds.chunk({"time": 1}), MODELS["srnet3d"])
    _close(lazy.compute(), upscale(ds, MODELS["srnet3d"]))


# ---------------------------------------------------------------- masks, globes, consistency


def test_nan_mask_is_kept_on_the_fine_grid() -> None:
    ds = _movie(6, 8, 32)
    ds["h"][:, 2:4, 1:3] = np.nan
    ds["h"][3, 5, 12] = np.nan
    ds["h"][:, :, 15:18] = np.nan  # a mask across the chunk boundary
    out = upscale(ds, MODELS["srnet3d"])
    land = np.isnan(ds["h"].values).repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(np.isnan(out["h"].values), land)
    # chunks of at least the halo (twice the receptive radius), so x stays split in two
    lazy = upscale(ds.chunk({"time": 3, "x": 16}), MODELS["srnet3d"])
    assert len(lazy.chunks["x"]) == 2
    _close(lazy.compute(), out)


def _global(nlat: int = 6, nlon: int = 12, nt: int = 6) -> xr.Dataset:
    rng = np.random.default_rng(3)
    lon = np.arange(nlon) * (360.0 / nlon) + 360.0 / nlon / 2
    lat = np.linspace(75.0, -75.0, nlat)  # descending
    data = rng.standard_normal((nt, nlat, nlon)).astype("float32")
    return xr.Dataset(
        {"sst": (("time", "lat", "lon"), data, {"units": "K", "standard_name": "sst"})},
        coords={
            "time": np.arange(nt),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_periodic_longitude_has_no_seam(chunked: bool) -> None:
    ds = _global()
    k = 5
    model = MODELS["fsrcnn"]
    src = ds.chunk({"lon": 4}) if chunked else ds
    base = upscale(src, model).compute()
    assert "periodic_x=True" in base.attrs["history"]
    rolled_in = ds.copy(data={"sst": np.roll(ds["sst"].values, k, axis=-1)})
    rolled_in = rolled_in.chunk({"lon": 4}) if chunked else rolled_in
    rolled = upscale(rolled_in, model).compute()
    back = np.roll(rolled["sst"].values, -2 * k, axis=-1)
    np.testing.assert_allclose(back, base["sst"].values, atol=1e-5)
    no_wrap = upscale(rolled_in, model, periodic=False).compute()
    assert np.abs(np.roll(no_wrap["sst"].values, -2 * k, axis=-1) - base["sst"].values).max() > 1e-3


@pytest.mark.parametrize("name", ["fsrcnn", "chain"])
def test_conserve_makes_coarsen_exact(name: str) -> None:
    ds = _movie(6, 8, 8)
    ds["h"] = ds["h"] * 3 + 10
    out = upscale(ds.chunk({"time": 3}), MODELS[name], conserve=True).compute()
    back = degrade(out, scale=2)  # xsr's coarsen: block means, coordinates coarsened too
    np.testing.assert_allclose(back["h"].values, ds["h"].values, rtol=1e-6, atol=1e-6)
    xr.testing.assert_allclose(back["x"], ds["x"])
    xr.testing.assert_allclose(back["y"], ds["y"])
    plain = upscale(ds, MODELS[name]).compute()
    assert np.abs(plain["h"].coarsen(y=2, x=2).mean().values - ds["h"].values).max() > 1e-3


# ---------------------------------------------------------------- labels


def test_labels_descending_bounds_attrs_members_passthrough() -> None:
    ds = _global(nlat=6, nlon=8)
    ds["lon"] = ds["lon"] / 2  # not global: no wrap
    ds = ds.expand_dims(member=[1, 2]).transpose("member", "time", "lat", "lon")
    lat_b = np.stack([ds.lat.values + 15.0, ds.lat.values - 15.0], axis=1)
    ds["lat_bnds"] = (("lat", "nv"), lat_b)
    ds["lat"].attrs["bounds"] = "lat_bnds"
    ds = ds.set_coords("lat_bnds")
    ds["trend"] = ("time", np.arange(6.0), {"units": "K"})
    ds["flag"] = ((), 3)
    ds.attrs = {"title": "test", "Conventions": "CF-1.8", "history": "made"}
    out = upscale(ds, MODELS["fsrcnn"])
    assert out["sst"].dims == ("member", "time", "lat", "lon")
    assert out["sst"].attrs == ds["sst"].attrs
    assert out["lat"].attrs == ds["lat"].attrs
    assert np.all(np.diff(out["lat"].values) < 0)
    np.testing.assert_allclose(coarsen_coord(out["lat"].values, 2), ds["lat"].values)
    np.testing.assert_allclose(coarsen_coord(out["lon"].values, 2), ds["lon"].values)
    assert out["lat_bnds"].shape == (12, 2)
    np.testing.assert_allclose(out["lat_bnds"].values[::2, 0], lat_b[:, 0])
    np.testing.assert_allclose(out["lat_bnds"].values[1::2, 1], lat_b[:, 1])
    xr.testing.assert_identical(out["trend"], ds["trend"])
    xr.testing.assert_identical(out["flag"], ds["flag"])
    assert out.attrs["title"] == "test"
    assert out.attrs["history"].startswith("made\n")
    np.testing.assert_array_equal(out["member"].values, [1, 2])
    one = upscale(ds.isel(member=1), MODELS["fsrcnn"])
    _close(out["sst"].isel(member=1), one["sst"])


def test_integer_input_is_cast_to_float32() -> None:
    ds = _movie(3, 6, 6)
    ds["h"] = (ds["h"] * 100).astype("int16")
    out = upscale(ds, "bicubic", scale=2)
    assert out["h"].dtype == np.float32
    _close(out, upscale(ds.astype("float32"), "bicubic", scale=2))


def test_history_line() -> None:
    model = MODELS["srnet3d"]
    out = upscale(_movie(), model)
    line = out.attrs["history"].splitlines()[-1]
    sha = engine.ModelRef.from_model(model).sha256
    for part in (f"xsr {__version__}", "model=srnet3d", f"sha256={sha}", "scale=2"):
        assert part in line
    assert f"halo_time=2 halo_space={model.receptive_radius}" in line


def test_bicubic_baseline_through_the_same_machinery() -> None:
    ds = _movie(3, 8, 8)
    out = upscale(ds, model="bicubic", scale=3)
    assert out["h"].shape == (3, 24, 24)
    assert "model=bicubic-x3" in out.attrs["history"]
    _close(out, upscale(ds, get_model("bicubic", scale=3, channels=1)))


def test_multichannel_card_order_and_name_mapping(tmp_path: Path) -> None:
    model = _build("fsrcnn", scale=2, channels=2)
    path = save_model(
        model,
        tmp_path / "two",
        name="two-x2",
        variables=[
            {"name": "u", "units": "m", "long_name": "u"},
            {"name": "h", "units": "m", "long_name": "h"},
        ],
        normalisation={"u": {"mean": 0.5, "std": 2.0}, "h": {"mean": -1.0, "std": 3.0}},
    )
    ds = _movie(3, 6, 6, variables=("h", "u"))
    out = upscale(ds, str(path))
    frames = np.stack([ds["u"].values, ds["h"].values])[None]
    r = model.receptive_radius
    padded = np.pad(frames, [(0, 0), (0, 0), (0, 0), (r, r), (r, r)], mode="symmetric")
    expected = engine.infer(model, padded)[0][..., 2 * r : -2 * r, 2 * r : -2 * r]
    np.testing.assert_allclose(out["u"].values, expected[0], atol=1e-5)
    np.testing.assert_allclose(out["h"].values, expected[1], atol=1e-5)
    renamed = ds.rename({"h": "ssh"})
    with pytest.raises(ValueError, match="variables="):
        upscale(renamed, str(path))
    with pytest.warns(VariableNameWarning, match="'ssh'"):
        mapped = upscale(renamed, str(path), variables={"ssh": "h", "u": "u"})
    np.testing.assert_allclose(mapped["ssh"].values, out["h"].values)
    bad_units = ds.copy()
    bad_units["h"].attrs["units"] = "K"
    with pytest.raises(ValueError, match="units"):
        upscale(bad_units, str(path))


def test_extra_spatial_variable_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = save_model(
        _build("fsrcnn", scale=2, channels=1),
        tmp_path / "h",
        variables=[{"name": "h", "units": "m", "long_name": "h"}],
    )
    ds = _movie(3, 6, 6, variables=("h", "u"))
    with pytest.warns(UserWarning, match="'u'"):
        out = upscale(ds, str(path))
    assert "u" not in out
    assert "u" not in upscale(ds, str(path), variables=["h"])


# ---------------------------------------------------------------- shipped models


def _ship(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, scale: int, psnr: float):
    if tmp_path != pretrained.WEIGHTS_DIR:  # a registry of test models only
        monkeypatch.setattr(pretrained, "PRETRAINED", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    save_model(
        _build("fsrcnn", scale=scale, channels=1),
        tmp_path / name,
        name=name,
        variables=[{"name": "h", "units": "m", "long_name": "h"}],
        metrics={"psnr": psnr},
    )
    monkeypatch.setitem(pretrained.PRETRAINED, name, name)


def test_scale_only_picks_the_best_shipped_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ship(tmp_path, monkeypatch, "fsrcnn-test-x2-a", 2, 30.0)
    _ship(tmp_path, monkeypatch, "fsrcnn-test-x2-b", 2, 31.0)
    _ship(tmp_path, monkeypatch, "fsrcnn-test-x4", 4, 40.0)
    assert best_pretrained(2, ["h"]) == "fsrcnn-test-x2-b"
    ds = _movie(3, 6, 6)
    out = ds.sr.upscale(scale=2)
    assert out["h"].shape == (3, 12, 12)
    assert "model=fsrcnn-test-x2-b" in out.attrs["history"]
    assert upscale(ds, scale=4)["h"].shape == (3, 24, 24)
    by_name = upscale(ds, "fsrcnn-test-x2-a")
    assert "model=fsrcnn-test-x2-a" in by_name.attrs["history"]
    with pytest.raises(ValueError, match="contradicts"):
        upscale(ds, "fsrcnn-test-x4", scale=2)
    with pytest.warns(NoLearnedModelWarning, match="scale=3"):
        fallback = upscale(ds, scale=3)
    assert "model=bicubic-x3 weights=none" in fallback.attrs["history"]
    assert "fallback=no-learned-model" in fallback.attrs["history"]


def test_scale_only_prefers_the_cheaper_of_nearly_equal_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    variables = [{"name": "h", "units": "m", "long_name": "h"}]
    for name, arch, psnr in (
        ("srnet3d-test-x2", "srnet3d", 31.05),  # 0.05 dB better, far more compute
        ("fsrcnn-test-x2", "fsrcnn", 31.0),
        ("srcnn-test-x2", "srcnn", 30.0),
    ):
        save_model(
            _build(arch, scale=2, channels=1),
            tmp_path / name,
            name=name,
            variables=variables,
            metrics={"psnr": psnr},
        )
        monkeypatch.setitem(pretrained.PRETRAINED, name, name)
    assert best_pretrained(2, ["h"]) == "fsrcnn-test-x2"
    # beyond the tie margin the better model wins whatever it costs
    monkeypatch.setattr(sys.modules[best_pretrained.__module__], "PSNR_TIE_DB", 0.01)
    assert best_pretrained(2, ["h"]) == "srnet3d-test-x2"


@pytest.mark.parametrize(("centre", "picked"), [(31.0, "fsrcnn-test-x2"), (30.0, "temporal")])
def test_scale_only_skips_a_windowed_model_whose_gain_is_not_temporal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, centre: float, picked: str
) -> None:
    # the windowed model scores higher, but with its neighbours replaced by the centre frame it
    # keeps that score (centre=31.0): its gain is not temporal and it is not picked
    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    variables = [{"name": "h", "units": "m", "long_name": "h"}]
    ablation = {"real": {"h": 31.0}, "centre-repeated": {"h": centre}, "time-shuffled": {"h": 29.0}}
    for name, arch, psnr, held in (
        ("temporal", "srnet3d", 31.0, {"temporal_ablation": ablation}),
        ("fsrcnn-test-x2", "fsrcnn", 30.0, {}),
    ):
        save_model(
            _build(arch, scale=2, channels=1),
            tmp_path / name,
            name=name,
            variables=variables,
            metrics={"psnr": psnr, "held_out": held},
        )
        monkeypatch.setitem(pretrained.PRETRAINED, name, name)
    assert best_pretrained(2, ["h"]) == picked


def test_no_shipped_shallow_water_default_is_a_windowed_model_without_a_temporal_gain() -> None:
    from xsr.models.pretrained import pretrained_card

    for scale in (2, 4):
        card = pretrained_card(best_pretrained(scale, ["h", "u", "v", "vorticity", "tracer"]))
        if card.window > 1:
            ablation = card.metrics.get("held_out", {}).get("temporal_ablation")
            assert ablation, f"{card.name} has a time window but no temporal ablation"
            gains = [ablation["real"][v] - ablation["centre-repeated"][v] for v in ablation["real"]]
            assert min(gains) >= 0.5


def _validation(psnr: float) -> dict:
    return {"validation": {"best": {"h": {"psnr": psnr}}}}


@pytest.mark.parametrize(
    ("metrics", "best"),
    [
        # validation PSNRs only (as the natural-image cards): the better one, 0.2 dB ahead
        ({"cheap": _validation(36.95), "costly": _validation(37.15)}, "costly"),
        # held-out for one card only: both compare on validation, where the cheap one leads
        ({"cheap": _validation(37.3), "costly": {"psnr": 40.0, **_validation(37.0)}}, "cheap"),
        # held-out for both: held-out decides, whatever validation says
        (
            {
                "cheap": {"psnr": 39.0, **_validation(38.0)},
                "costly": {"psnr": 40.0, **_validation(30.0)},
            },
            "costly",
        ),
    ],
)
def test_scale_only_ranks_cards_on_the_same_footing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: dict, best: str
) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    archs = {"cheap": "fsrcnn", "costly": "srcnn"}
    for key, card_metrics in metrics.items():
        save_model(
            _build(archs[key], scale=2, channels=1),
            tmp_path / key,
            name=key,
            variables=[{"name": "h", "units": "m", "long_name": "h"}],
            metrics=card_metrics,
        )
        monkeypatch.setitem(pretrained.PRETRAINED, key, key)
    assert best_pretrained(2, ["h"]) == best


def test_no_shipped_model_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    ds = _movie(3, 6, 6)
    with pytest.raises(NoShippedModelError, match="no shipped model for scale=2"):
        best_pretrained(2, ["h"])
    with pytest.warns(NoLearnedModelWarning, match="bicubic interpolation"):
        out = ds.sr.upscale(scale=2)
    xr.testing.assert_allclose(out.drop_attrs(), upscale(ds, "bicubic", scale=2).drop_attrs())
    assert "fallback=no-learned-model" in out.attrs["history"]


# ---------------------------------------------------------------- distributed


@pytest.mark.slow  # 10 s idle, 30 s on the shared 2-core machine (cluster start-up)
def test_distributed_cluster_builds_each_model_once_per_worker() -> None:
    distributed = pytest.importorskip("distributed")
    ds = _movie(12, 8, 16)
    model = MODELS["srnet3d"]
    eager = upscale(ds, model)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = upscale(ds.chunk({"time": 3, "x": 8}), model)
        result = lazy.compute()
        infos = client.run(engine.cache_info)
    # Workers run torch with their own thread count, which picks other float32 kernels
    # (summation order): measured 1.1e-6 of the data range for this 3D model, so 1e-5 here.
    _close(result, eager, rel=1e-5)
    builds = [info["builds"] for info in infos.values()]
    assert all(b <= 1 for b in builds)
    assert sum(builds) >= 1


# ---------------------------------------------------------------- errors


def test_errors_a_new_user_would_meet(tmp_path: Path) -> None:
    ds = _movie()
    m3d = MODELS["srnet3d"]
    with pytest.raises(ValueError, match="no time dimension"):
        upscale(ds.isel(time=0), m3d)
    with pytest.raises(ValueError, match="only 3"):
        upscale(ds.isel(time=slice(0, 3)), m3d)
    uneven = ds.assign_coords(y=ds.y.values**1.1)
    with pytest.raises(ValueError, match="'y'"):
        upscale(uneven, MODELS["fsrcnn"])
    with pytest.raises(ValueError, match="dims"):
        upscale(ds, MODELS["fsrcnn"], dims=("lat", "lon"))
    with pytest.raises(ValueError, match="dims="):
        upscale(ds.rename({"x": "a", "y": "b"}).drop_vars(["a", "b"]), MODELS["fsrcnn"])
    path = save_model(_build("fsrcnn", scale=4, channels=1), tmp_path / "x4")
    with pytest.raises(ValueError, match="contradicts"):
        upscale(ds, str(path), scale=2)
    with pytest.raises(ValueError, match=r"model= .* or scale="):
        upscale(ds)
    for arch in ("fsrcnn", "chain"):
        with pytest.raises(ValueError, match="untrained architecture"):
            upscale(ds, arch)
    with pytest.raises(ValueError, match="interpolation; give its factor with scale="):
        upscale(ds, "bicubic")
    with pytest.raises(ModelFileError, match="no model file"):
        upscale(ds, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="periodic"):
        upscale(ds, "bicubic", scale=2, periodic="z")
    with pytest.raises(ValueError, match="time_boundary"):
        upscale(ds, m3d, time_boundary="wrap")
    with pytest.raises(ValueError, match="scale"):
        upscale(ds, "bicubic", scale=0)
    with pytest.raises(TypeError, match="Dataset or DataArray"):
        upscale(ds["h"].values, "bicubic", scale=2)
    with pytest.raises(ValueError, match="not data variables"):
        upscale(ds, MODELS["fsrcnn"], variables=["nope"])
    with pytest.raises(ValueError, match="var0"):
        upscale(ds, str(path))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_matches_cpu() -> None:
    # float32 on either side (no TF32), summed in other orders: 1e-5 of the data range
    ds = _movie()
    for name in ("srnet3d", "chain", "fsrcnn"):
        gpu = upscale(ds.chunk({"time": 3}), MODELS[name], device="cuda")
        _close(gpu.compute(), upscale(ds, MODELS[name], device="cpu"), rel=1e-5)


def test_single_frame_and_unnamed_dataarray_with_a_2d_model() -> None:
    frame = _movie(1, 6, 8)["h"].isel(time=0)
    out = upscale(frame, MODELS["fsrcnn"])
    assert out.dims == ("y", "x")
    assert out.shape == (12, 16)
    assert "time" in out.coords  # the scalar time coordinate is kept
    unnamed = frame.rename(None)
    lazy = upscale(unnamed.chunk({"x": 4}), MODELS["fsrcnn"])
    assert lazy.name is None
    _close(lazy.compute(), out.rename(None))


def test_static_fields_are_not_fed_to_a_windowed_model() -> None:
    ds = _movie()
    ds["depth"] = (("y", "x"), np.ones((8, 10), dtype="float32"))
    with pytest.warns(UserWarning, match="'depth'"):
        out = upscale(ds, MODELS["srnet3d"])
    assert out["h"].shape == (8, 16, 20)
    both = upscale(ds, MODELS["fsrcnn"])  # a 2-D model upscales the static field too
    assert both["depth"].shape == (16, 20)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"batch_size": 0}, "batch_size"), ({"tile": -1}, "tile")]
)
def test_options_are_checked_before_computing(kwargs: dict, match: str) -> None:
    with raise_if_dask_computes(), pytest.raises(ValueError, match=match):
        upscale(_movie().chunk({"time": 4}), MODELS["fsrcnn"], **kwargs)


def test_other_dimension_names() -> None:
    ds = _movie()
    expected = upscale(ds, MODELS["srnet3d"])
    renamed = ds.rename({"time": "t", "y": "rlat", "x": "rlon"})
    out = upscale(renamed, MODELS["srnet3d"], time_dim="t")
    assert out["h"].dims == ("t", "rlat", "rlon")
    np.testing.assert_allclose(out["h"].values, expected["h"].values, atol=1e-6)
    bare = ds.rename({"y": "row", "x": "col"}).drop_vars(["row", "col"])
    plain = upscale(bare, MODELS["srnet3d"], dims=("row", "col"))
    assert "row" not in plain.coords
    np.testing.assert_allclose(plain["h"].values, expected["h"].values, atol=1e-6)


# ---------------------------------------------------------------- real files (issue 17)

FLIP_KINDS = ["fsrcnn", "srnet3d", "chain", "xsrnet", "bicubic", "field"]


@functools.cache
def _field_model() -> torch.nn.Module:
    """A field model (card kind 'field': every frame normalised by its own statistics)."""
    from xsr.models.files import load_model

    path = save_model(
        _build("fsrcnn", scale=2, channels=1),
        Path(tempfile.mkdtemp()) / "field-x2",
        kind="field",
        variables=[{"name": "field", "units": "1"}],
        normalisation={"field": {"mean": 0.1, "std": 1.3}},
    )
    return load_model(path)


def _kind(name: str) -> torch.nn.Module:
    if name == "field":
        return _field_model()
    return get_model("bicubic", scale=2, channels=1) if name == "bicubic" else MODELS[name]


@pytest.mark.parametrize("name", FLIP_KINDS)
@settings(max_examples=6, deadline=None)
@given(
    flip_y=st.booleans(),
    flip_x=st.booleans(),
    conserve=st.booleans(),
)
def test_upscaling_a_flipped_input_is_the_flipped_output(
    name: str, flip_y: bool, flip_x: bool, conserve: bool
) -> None:
    # ERA5 stores latitude from north to south: the model must see the data in its own
    # (ascending) orientation, so flipping the input only flips the output
    ds = _movie(6, 8, 10)
    flips = {d: slice(None, None, -1) for d, f in (("y", flip_y), ("x", flip_x)) if f}
    model = _kind(name)
    expected = upscale(ds, model, conserve=conserve).isel(flips)
    got = upscale(ds.isel(flips), model, conserve=conserve)
    xr.testing.assert_equal(got, expected)
    if flips:
        assert all(np.diff(got[d].values)[0] < 0 for d in flips)


@pytest.mark.parametrize("name", ["xsrnet-swe-x2", "fsrcnn-srnet3d-swe-x2"])
def test_descending_latitude_with_a_shipped_multivariable_model(name: str) -> None:
    from xsr.data import shallow_water

    ds = shallow_water(nx=16, ny=16, frames=6, seed=3)
    ds = ds[["h", "u", "v", "vorticity", "tracer"]]
    ds = degrade(ds, scale=2)
    expected = upscale(ds, name).isel(y=slice(None, None, -1))
    flipped = ds.isel(y=slice(None, None, -1))
    with raise_if_dask_computes():
        lazy = upscale(flipped.chunk({"time": 3}), name)
    xr.testing.assert_allclose(lazy.compute(), expected, atol=1e-5)
    xr.testing.assert_equal(lazy["y"], expected["y"])


def test_descending_bounds_follow_the_data() -> None:
    ds = _global(nlat=6, nlon=8)  # latitude 75 .. -75
    lat_b = np.stack([ds.lat.values + 15.0, ds.lat.values - 15.0], axis=1)
    ds = ds.assign_coords(lat_bnds=(("lat", "nv"), lat_b))
    ds["lat"].attrs["bounds"] = "lat_bnds"
    out = upscale(ds, MODELS["fsrcnn"])
    asc = upscale(ds.isel(lat=slice(None, None, -1)), MODELS["fsrcnn"])
    xr.testing.assert_equal(out["sst"], asc["sst"].isel(lat=slice(None, None, -1)))
    fine = out["lat"].values
    np.testing.assert_allclose(out["lat_bnds"].values.mean(axis=1), fine)


def _card_model(tmp_path: Path, normalisation: dict | None = None) -> torch.nn.Module:
    from xsr.models.files import load_model

    path = save_model(
        _build("srcnn", scale=2, channels=2),
        tmp_path / "hu",
        variables=[{"name": "h", "units": "m"}, {"name": "u", "units": "m"}],
        normalisation=normalisation
        or {"h": {"mean": 0.0, "std": 1.5}, "u": {"mean": 0.2, "std": 1.0}},
    )
    return load_model(path)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_cells_are_masked_like_nan_with_a_warning(tmp_path: Path, value: float) -> None:
    model = _card_model(tmp_path)
    ds = _movie(4, 8, 8, variables=("h", "u"))
    bad = ds.copy(deep=True)
    bad["h"][1, 3, 4] = value
    with pytest.warns(NonFiniteWarning, match=r"'h': 1 cell\(s\) are \+inf or -inf"):
        out = upscale(bad, model)
    nan = ds.copy(deep=True)
    nan["h"][1, 3, 4] = np.nan
    xr.testing.assert_equal(out, upscale(nan, model))
    assert int(np.isnan(out["h"]).sum()) == 4  # only the 2x2 fine cells of that cell
    assert not np.isnan(out["u"]).any()  # the other variable is untouched
    # dask: nothing is computed (or warned) until the result is; the warning comes from the
    # task that meets the cell, with that block's count
    with raise_if_dask_computes(), warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = upscale(bad.chunk({"time": 2}), model)
    with pytest.warns(NonFiniteWarning, match="'h': 1 cell"):
        computed = lazy.compute()
    xr.testing.assert_allclose(computed, out)


def test_an_outlier_warns_and_stays_within_the_receptive_field(tmp_path: Path) -> None:
    model = _card_model(tmp_path)
    ds = _movie(2, 24, 24, variables=("h", "u"))
    clean = upscale(ds, model)
    bad = ds.copy(deep=True)
    bad["h"][0, 12, 12] = 1e30
    with pytest.warns(InputRangeWarning, match=r"'h': 1 cell.*more than 20 stand"):
        out = upscale(bad, model)
    r = model.receptive_radius
    changed = ~np.isclose(out["u"].values, clean["u"].values, rtol=0, atol=1e-5)
    rows, cols = np.nonzero(changed[0])
    assert changed[0].any()
    assert not changed[1].any()
    # fine pixels are changed only over the coarse cells within the receptive radius
    assert rows.min() >= 2 * (12 - r)
    assert rows.max() < 2 * (12 + r + 1)
    assert cols.min() >= 2 * (12 - r)
    assert cols.max() < 2 * (12 + r + 1)
    with raise_if_dask_computes():
        lazy = upscale(bad.chunk({"time": 1}), model)
    with pytest.warns(InputRangeWarning, match="'h'"):
        lazy.compute()


def test_wrong_units_without_a_units_attribute_are_caught_by_the_range_guard(
    tmp_path: Path,
) -> None:
    model = _card_model(tmp_path, {"h": {"mean": 0.0, "std": 0.01}, "u": {"mean": 0, "std": 1}})
    ds = _movie(2, 8, 8, variables=("h", "u"))
    ds["h"].attrs.pop("units")
    with pytest.warns(InputRangeWarning, match="Check the variable's units"):
        upscale(ds, model)
    # identity normalisation records no training statistics: no guard
    plain = _card_model(tmp_path, {"h": {"mean": 0.0, "std": 1.0}, "u": {"mean": 0, "std": 1}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upscale(ds * 1e6, plain)


def _packed(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as a NetCDF file opened with mask_and_scale=False: int16 with the attributes."""
    packed = ds.copy()
    raw = np.round((ds["h"].values - 1.0) / 0.01).astype("int16")
    raw[0, 0, 0] = -32767
    attrs = {**ds["h"].attrs, "scale_factor": 0.01, "add_offset": 1.0, "_FillValue": -32767}
    packed["h"] = (ds["h"].dims, raw, attrs)
    return packed


@pytest.mark.parametrize("chunked", [False, True])
def test_packed_integers_are_decoded_with_a_warning(chunked: bool) -> None:
    ds = _movie(3, 8, 8)
    packed = _packed(ds)
    decoded = xr.decode_cf(packed)
    src = packed.chunk({"time": 1}) if chunked else packed
    with (
        pytest.warns(PackedDataWarning, match="mask_and_scale") as record,
        raise_if_dask_computes(),
    ):
        out = upscale(src, "bicubic", scale=2)
    message = str(record[0].message)
    assert "'h'" in message
    assert "scale_factor" in message
    assert "add_offset" in message
    assert "xr.decode_cf" in message
    xr.testing.assert_allclose(out["h"], upscale(decoded, "bicubic", scale=2)["h"])
    assert np.isnan(out["h"].values[0, :2, :2]).all()  # the fill value is masked
    assert not {"scale_factor", "add_offset", "_FillValue"} & set(out["h"].attrs)
    assert out["h"].attrs["units"] == "m"


def test_fill_value_and_missing_value_both_mask() -> None:
    ds = _movie(2, 6, 6)
    raw = np.round(ds["h"].values * 100).astype("int16")
    raw[0, 1, 1], raw[1, 2, 2] = -999, -998
    ds["h"] = (ds["h"].dims, raw, {"_FillValue": -999, "missing_value": -998})
    with pytest.warns(PackedDataWarning, match="_FillValue.*missing_value"):
        out = upscale(ds, "bicubic", scale=2)
    assert int(np.isnan(out["h"]).sum()) == 8


def test_nan_fill_value_on_floats_is_not_a_packed_warning() -> None:
    ds = _movie(2, 6, 6)
    ds["h"].attrs["_FillValue"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = upscale(ds, "bicubic", scale=2)
    assert "_FillValue" not in out["h"].attrs


def test_history_digest_covers_the_card_and_nothing_for_bicubic(tmp_path: Path) -> None:
    from xsr.models.card import card_digest

    model = _card_model(tmp_path)
    out = upscale(_movie(3, 6, 6, variables=("h", "u")), model)
    line = out.attrs["history"].splitlines()[-1]
    stamp = json.loads((tmp_path / "hu.json").read_text())["card_sha256"]
    assert f"card_sha256={stamp}" in line
    assert stamp == card_digest(model.card.to_dict())
    bicubic = upscale(_movie(3, 6, 6), "bicubic", scale=2).attrs["history"]
    assert "weights=none" in bicubic
    assert "e3b0c442" not in bicubic
    assert "sha256" not in bicubic


def test_a_model_name_with_a_newline_cannot_forge_history(tmp_path: Path) -> None:
    from xsr.models.files import load_model

    path = save_model(
        _build("fsrcnn", scale=2, channels=1),
        tmp_path / "evil",
        name="evil\n2020-01-01T00:00:00+00:00: xsr upscale: model=trusted",
        variables=[{"name": "h", "units": "m"}],
    )
    ds = _movie(3, 6, 6)
    ds.attrs["history"] = "created"
    out = upscale(ds, load_model(path))
    lines = out.attrs["history"].splitlines()
    assert len(lines) == 2
    assert lines[0] == "created"
    assert "evil\\n2020" in lines[1]


def test_the_unnamed_sentinel_never_leaks(tmp_path: Path) -> None:
    da = _movie(3, 6, 6)["h"].rename(None)
    for obj in (da, da.chunk({"time": 1})):
        out = upscale(obj, "bicubic", scale=2)
        assert out.name is None
        assert "__xsr" not in str(out.attrs)
        assert "__xsr" not in str(out.coords)
    with pytest.raises(ValueError, match="unnamed DataArray") as info:
        upscale(da, _card_model(tmp_path))
    assert "__xsr" not in str(info.value)
    da.attrs["units"] = "K"
    with pytest.raises(ValueError, match="the unnamed DataArray has units") as info:
        upscale(da, "fsrcnn-natural-x2")
    assert "__xsr" not in str(info.value)


def _node_grid(nt: int = 4) -> xr.Dataset:
    """NCEP-style: latitude nodes 90 .. -90 (poles included), longitude 0 .. 350."""
    lat = np.linspace(90.0, -90.0, 19)
    lon = np.arange(0.0, 360.0, 10.0)
    rng = np.random.default_rng(5)
    data = rng.standard_normal((nt, lat.size, lon.size)).astype("float32") * 3 + 280
    return xr.Dataset(
        {"air": (("time", "lat", "lon"), data, {"units": "K"})},
        coords={
            "time": np.arange(nt),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_pole_inclusive_node_grid_stays_on_the_sphere(chunked: bool) -> None:
    ds = _node_grid()
    src = ds.chunk({"time": 2}) if chunked else ds
    with raise_if_dask_computes():
        out = upscale(src, "bicubic", scale=2, conserve=True)
    lat, lon = out["lat"].values, out["lon"].values
    assert lat.max() <= 90.0
    assert lat.min() >= -90.0
    assert lon.min() >= 0.0
    assert lon.max() < 360.0
    assert np.unique(lat).size == lat.size
    np.testing.assert_allclose(lat[:2], [88.75, 86.25])  # the pole cell [90, 85] in two
    assert lon[0] == 357.5  # wrapped into [0, 360) rather than -2.5
    assert "periodic_x=True" in out.attrs["history"]
    back = degrade(out.compute(), scale=2)  # conserve: block means give the input back
    xr.testing.assert_allclose(back["air"], ds["air"], rtol=1e-6)
    np.testing.assert_allclose(back["lat"], ds["lat"], atol=1e-9)
    np.testing.assert_allclose(back["lon"], ds["lon"], atol=1e-9)


def _rotated_to_geographic(rlat: np.ndarray, rlon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rotated-pole mapping (a rotation of the sphere) that puts the grid across the date line."""
    phi, lam = np.deg2rad(rlat), np.deg2rad(rlon)
    v = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    a, b = np.deg2rad(40.0), np.deg2rad(180.0)  # tilt the pole, then turn to the date line
    tilt = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    turn = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    g = np.einsum("ij,j...->i...", turn @ tilt, v)
    return np.rad2deg(np.arcsin(g[2])), np.rad2deg(np.arctan2(g[1], g[0]))


def _curvilinear(ny: int = 10, nx: int = 12) -> xr.Dataset:
    rlat = -9.0 + 2.0 * np.arange(ny)
    rlon = -11.0 + 2.0 * np.arange(nx)
    lat, lon = _rotated_to_geographic(*np.meshgrid(rlat, rlon, indexing="ij"))
    rng = np.random.default_rng(2)
    return xr.Dataset(
        {"pr": (("time", "rlat", "rlon"), rng.random((3, ny, nx)).astype("float32"))},
        coords={
            "rlat": ("rlat", rlat, {"standard_name": "grid_latitude", "units": "degrees"}),
            "rlon": ("rlon", rlon, {"standard_name": "grid_longitude", "units": "degrees"}),
            "lat": (("rlat", "rlon"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("rlat", "rlon"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_curvilinear_latlon_are_refined_on_the_sphere(chunked: bool) -> None:
    ds = _curvilinear()
    assert ds["lon"].max() > 170
    assert ds["lon"].min() < -170
    src = ds.chunk({"rlat": 5, "rlon": 6}) if chunked else ds
    with raise_if_dask_computes():
        out = upscale(src, "bicubic", scale=2)
    assert out["lat"].dims == ("rlat", "rlon")
    assert out["lat"].shape == (20, 24)
    assert out["lat"].attrs == ds["lat"].attrs
    assert out["lon"].attrs == ds["lon"].attrs
    exact_lat, exact_lon = _rotated_to_geographic(
        *np.meshgrid(out["rlat"].values, out["rlon"].values, indexing="ij")
    )
    np.testing.assert_allclose(out["lat"].values, exact_lat, atol=0.02)
    dlon = (out["lon"].values - exact_lon + 180.0) % 360.0 - 180.0
    assert np.abs(dlon * np.cos(np.deg2rad(exact_lat))).max() < 0.02
    assert out["lon"].min() >= -180.0
    assert out["lon"].max() < 180.0  # the input's range convention


def test_other_coarse_grid_coordinates_are_dropped_with_a_warning() -> None:
    ds = _curvilinear().assign_coords(area=(("rlat", "rlon"), np.ones((10, 12))))
    with pytest.warns(UserWarning, match=r"\['area'\] lie on the coarse grid"):
        out = upscale(ds, "bicubic", scale=2)
    assert "area" not in out.coords
    assert "lat" in out.coords


# ---------------------------------------------------------------- further bad inputs (issue 17)


def _cftime(ds: xr.Dataset, calendar: str) -> xr.Dataset:
    times = xr.date_range(
        "2000-02-27", periods=ds.sizes["time"], calendar=calendar, use_cftime=True
    )
    return ds.assign_coords(time=times)


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
@pytest.mark.parametrize("chunked", [False, True])
def test_cftime_calendars_pass_through(calendar: str, chunked: bool) -> None:
    ds = _movie(6, 8, 8)
    cf = _cftime(ds, calendar)
    src = cf.chunk({"time": 3}) if chunked else cf
    with raise_if_dask_computes():
        out = upscale(src, MODELS["srnet3d"])
    xr.testing.assert_identical(out["time"], cf["time"])
    np.testing.assert_allclose(out["h"].values, upscale(ds, MODELS["srnet3d"])["h"].values)


REFUSED = [
    (
        "strings as x",
        lambda ds: ds.assign_coords(x=[f"c{i}" for i in range(ds.sizes["x"])]),
        r"dimension 'x': .*numeric.*obj.drop_vars\('x'\)",
    ),
    ("one row", lambda ds: ds.isel(y=[0]), r"'y' has a single cell.*drop_vars\('y'\)"),
    (
        "repeated x",
        lambda ds: ds.assign_coords(x=np.r_[ds.x.values[:1], ds.x.values[:-1]]),
        r"x has repeated values .*drop_duplicates\('x'\)",
    ),
    ("NaN in x", lambda ds: ds.assign_coords(x=np.r_[np.nan, ds.x.values[1:]]), "'x'.*NaN"),
    ("no frames", lambda ds: ds.isel(time=slice(0, 0)), r"'h' has no cells along \['time'\]"),
    ("complex", lambda ds: ds.astype("complex64"), "'h' holds complex values.*obj.real"),
    ("text", lambda ds: ds.astype(str), "'h' has dtype <U.*not numbers"),
    ("no grid", lambda ds: ds.mean(("y", "x")), r"Pass dims=\(y_dim, x_dim\)"),
]


@pytest.mark.parametrize(("case", "make", "match"), REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_inputs_are_refused_naming_the_fix(case: str, make, match: str) -> None:
    bad = make(_movie(6, 8, 8))
    for src in (bad, bad.chunk()):
        with raise_if_dask_computes(), pytest.raises(ValueError, match=match):
            upscale(src, MODELS["fsrcnn"])


def test_numbers_stored_as_objects_are_numbers() -> None:
    ds = _movie(3, 6, 6)
    out = upscale(ds.assign_coords(x=ds.x.values.astype(object)), MODELS["fsrcnn"])
    xr.testing.assert_equal(out["h"], upscale(ds, MODELS["fsrcnn"])["h"])
    assert out["x"].dtype == np.float64


def test_fields_smaller_than_the_receptive_field_all_nan_and_constant() -> None:
    ds = _movie(6, 8, 8)
    tiny = ds.isel(y=slice(0, 2), x=slice(0, 2))  # far below the receptive field
    for model in (MODELS["fsrcnn"], MODELS["srnet3d"]):
        out = upscale(tiny, model)
        assert out["h"].shape == (6, 4, 4)
        assert np.isfinite(out["h"]).all()
        _close(upscale(tiny.chunk({"time": 3}), model).compute(), out)
    nan = upscale(ds.where(False), MODELS["fsrcnn"])  # all-NaN stays all-NaN, no error
    assert bool(np.isnan(nan["h"]).all())
    flat = upscale(ds * 0 + 5.0, "bicubic", scale=2, conserve=True)
    np.testing.assert_allclose(flat["h"].values, 5.0, rtol=1e-6)


def test_float16_bool_and_float64_inputs() -> None:
    ds = _movie(3, 6, 6)
    half = upscale(ds.astype("float16"), MODELS["fsrcnn"])
    assert half["h"].dtype == np.float32
    _close(half, upscale(ds.astype("float16").astype("float32"), MODELS["fsrcnn"]))
    mask = upscale(ds > 0, "bicubic", scale=2, conserve=True)  # a fraction of "True" per cell
    assert mask["h"].dtype == np.float32
    np.testing.assert_allclose(
        mask["h"].coarsen(y=2, x=2).mean().values, (ds["h"] > 0).values, atol=1e-6
    )
    assert upscale(ds.astype("float64"), MODELS["fsrcnn"])["h"].dtype == np.float64


def test_extra_dims_and_time_not_first() -> None:
    ds = _movie(6, 8, 8)
    model = MODELS["srnet3d"]
    base = upscale(ds, model)
    levels = ds.expand_dims(level=[850, 500]).transpose("time", "level", "y", "x")
    out = upscale(levels.chunk({"level": 1}), model)
    assert out["h"].dims == ("time", "level", "y", "x")
    _close(out["h"].sel(level=500, drop=True).compute(), base["h"])
    last = upscale(ds.transpose("y", "x", "time"), model)
    assert last["h"].dims == ("y", "x", "time")
    _close(last["h"].transpose("time", "y", "x"), base["h"])


@settings(max_examples=6, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 7), st.booleans()),
        min_size=1,
        max_size=4,
    ),
    ct=st.integers(1, 4),
)
def test_infinite_cells_are_exactly_nan_cells_property(cells: list, ct: int) -> None:
    model = MODELS["fsrcnn"]
    ds = _movie(4, 8, 8)
    bad, nan = ds.copy(deep=True), ds.copy(deep=True)
    for t, y, x, positive in cells:
        bad["h"][t, y, x] = np.inf if positive else -np.inf
        nan["h"][t, y, x] = np.nan
    expected = upscale(nan, model)
    with pytest.warns(NonFiniteWarning, match="'h'"):
        got = upscale(bad.chunk({"time": ct}), model).compute()
    _close(got, expected)

"""Tests of the labelled upscaling function (xarray layer) with the real xsr models."""

from __future__ import annotations

import sys
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
from xsr.degrade import degrade
from xsr.models import ModelFileError, get_model, pretrained, save_model
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.upscale import VariableNameWarning, best_pretrained, upscale


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
    ds = _movie(nx=20, variables=("h", "u"))
    eager = upscale(ds, model)
    assert eager["h"].shape == (8, 16, 40)
    assert eager["h"].dims == ("time", "y", "x")
    assert eager["h"].dtype == np.float32
    with raise_if_dask_computes():
        lazy = upscale(ds.chunk({"time": 4, "x": 10}), model)
    assert lazy["h"].chunks == ((4, 4), (16,), (20, 20))
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
    ds = _movie(6, 8, 16)
    ds["h"][:, 2:4, 1:3] = np.nan
    ds["h"][3, 5, 12] = np.nan
    out = upscale(ds, MODELS["srnet3d"])
    land = np.isnan(ds["h"].values).repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(np.isnan(out["h"].values), land)
    lazy = upscale(ds.chunk({"time": 3, "x": 8}), MODELS["srnet3d"])
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
    bad_units["h"].attrs["units"] = "cm"
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
    with pytest.raises(ValueError, match="no shipped model for scale=3"):
        upscale(ds, scale=3)


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
    with pytest.raises(ValueError, match="no shipped model for scale=2"):
        _movie(3, 6, 6).sr.upscale(scale=2)


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

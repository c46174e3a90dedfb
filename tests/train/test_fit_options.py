"""More fit options: validation layouts, degradations, grids, schedulers and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from xsr.testing import random_movie
from xsr.train.trainer import fit

TINY = {"d": 8, "s": 4, "m": 1}
FAST = {"epochs": 2, "batch_size": 8, "patch_size": 4, "patches_per_epoch": 16, "progress": False}


def test_no_validation_split_trains_on_everything():
    ds = random_movie(6, 32, 32, seed=1)
    model, hist = fit("fsrcnn", ds, scale=2, val_fraction=0.0, **FAST, **TINY)
    assert np.isnan(hist["val_psnr"]).all()
    assert "bicubic_val_psnr" not in hist.attrs
    assert hist.attrs["val_blocks"] == "[]"
    np.testing.assert_array_equal(hist["val_loss"], hist["loss"])  # best epoch by train loss
    assert model.card.metrics["bicubic"] == {}


def test_several_validation_blocks():
    ds = random_movie(20, 32, 32, seed=2)
    model, hist = fit("fsrcnn", ds, scale=2, val_fraction=0.3, val_blocks=2, **FAST, **TINY)
    assert model.card.training["val_blocks"] == [[7, 10], [17, 20]]
    assert model.card.training["train_blocks"] == [[0, 7], [10, 17]]
    assert np.isfinite(hist["val_psnr"]).all()


def test_bicubic_degradation_is_recorded():
    ds = random_movie(8, 32, 32, seed=3)
    model, hist = fit("fsrcnn", ds, scale=2, degrade="bicubic", **FAST, **TINY)
    assert model.card.degradation == {"method": "bicubic", "scale": 2}
    assert hist.attrs["degradation"] == "bicubic"


def test_latitude_longitude_grid_descending_latitude_and_odd_sizes():
    ds = random_movie(8, 33, 35, seed=4, variables=("ua", "va"))
    ds = ds.rename({"y": "lat", "x": "lon"}).assign_coords(
        lat=("lat", np.linspace(60, 20, 33), {"units": "degrees_north"}),
        lon=("lon", np.linspace(0, 34, 35), {"units": "degrees_east"}),
    )
    model, hist = fit("fsrcnn", ds, scale=2, **FAST, **TINY)  # 33x35 trimmed to 32x34
    assert [v["name"] for v in model.card.variables] == ["ua", "va"]
    assert model.card.training["dims"] == {"time": "time", "y": "lat", "x": "lon"}
    assert np.isfinite(hist["train_mse"]).all()


def test_patches_per_epoch_larger_than_the_data_draws_with_replacement():
    ds = random_movie(4, 32, 32, seed=5)
    _, hist = fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1, "patches_per_epoch": 200}, **TINY)
    assert hist.attrs["n_train_patches"] < 200
    assert hist.attrs["train_batches_per_epoch"] == 25


def test_runs_under_a_distributed_client():
    distributed = pytest.importorskip("distributed")
    ds = random_movie(8, 32, 32, seed=6).chunk({"time": 2})
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ):
        _, hist = fit("fsrcnn", ds, scale=2, **FAST, **TINY)
    _, eager = fit("fsrcnn", ds.compute(), scale=2, **FAST, **TINY)
    xr.testing.assert_allclose(hist, eager)  # same patches, same numbers


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_matches_cpu_closely():
    ds = random_movie(8, 32, 32, seed=7)
    model, hist = fit("fsrcnn", ds, scale=2, device="cuda", **FAST, **TINY)
    assert hist.attrs["device"].startswith("cuda")
    assert next(model.parameters()).is_cuda
    _, cpu = fit("fsrcnn", ds, scale=2, device="cpu", **FAST, **TINY)
    np.testing.assert_allclose(hist["val_psnr"], cpu["val_psnr"], rtol=1e-2)


def test_seeded_fit_leaves_the_global_torch_rng_alone():
    ds = random_movie(6, 32, 32, seed=8)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)
    torch.testing.assert_close(torch.rand(3), expected)


def test_history_writes_to_netcdf(tmp_path):
    ds = random_movie(6, 32, 32, seed=9)
    _, hist = fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)
    hist.to_netcdf(tmp_path / "history.nc")
    back = xr.open_dataset(tmp_path / "history.nc")
    np.testing.assert_allclose(back["val_psnr"], hist["val_psnr"])
    assert back.attrs["best_epoch"] == 1
    back.close()


def test_dimension_order_and_names_do_not_matter():
    ds = random_movie(6, 32, 32, seed=10)
    _, ref = fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)
    odd = ds.transpose("x", "time", "y").rename({"y": "row", "x": "col", "time": "step"})
    _, hist = fit(
        "fsrcnn",
        odd,
        scale=2,
        dims=("row", "col"),
        time_dim="step",
        **{**FAST, "epochs": 1},
        **TINY,
    )
    np.testing.assert_allclose(hist["val_mse"], ref["val_mse"], rtol=1e-5)
    np.testing.assert_allclose(hist["loss"], ref["loss"], rtol=1e-5)


def test_file_opened_without_dask_is_streamed(tmp_path):
    ds = random_movie(8, 32, 32, seed=11)
    ds.to_netcdf(tmp_path / "run.nc")
    with xr.open_dataset(tmp_path / "run.nc") as opened:  # lazily indexed, cache=True
        _, hist = fit("fsrcnn", opened, scale=2, **{**FAST, "epochs": 1}, **TINY)
        assert not opened["h"].variable._in_memory  # never loaded (and cached) whole
    _, ref = fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)
    np.testing.assert_allclose(hist["val_mse"], ref["val_mse"], rtol=1e-5)


def test_keep_start_returns_the_start_when_no_epoch_beats_it():
    ds = random_movie(8, 32, 32, seed=9)
    start, _ = fit("fsrcnn", ds, scale=2, seed=1, **FAST, **TINY)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    # a learning rate too small to change anything: no epoch beats the start
    model, hist = fit(start, ds, scale=2, lr=1e-12, keep_start=True, seed=2, **FAST)
    assert hist.attrs["best_epoch"] == 0
    assert model.card.training["best_epoch"] == 0
    assert model.card.training["keep_start"] is True
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert np.isfinite(model.card.metrics["best"]["h"]["psnr"])
    assert hist.sizes["epoch"] == 2  # the history still holds the trained epochs


def test_keep_start_keeps_a_better_epoch():
    ds = random_movie(8, 32, 32, seed=9)
    _, hist = fit("fsrcnn", ds, scale=2, keep_start=True, lr=3e-3, seed=1, **FAST, **TINY)
    _, plain_hist = fit("fsrcnn", ds, scale=2, lr=3e-3, seed=1, **FAST, **TINY)
    # a random start is worse than training: the same epochs win with and without keep_start
    assert hist.attrs["best_epoch"] == plain_hist.attrs["best_epoch"] >= 1
    xr.testing.assert_allclose(hist, plain_hist)

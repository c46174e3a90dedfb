"""Tests for xsr.train.fit: learning, reproducibility, streaming, checkpoints, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from xsr.models.files import load_model, save_model
from xsr.models.registry import get_model
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.train.trainer import fit

TINY = {"d": 8, "s": 4, "m": 1}  # a small FSRCNN: fast on one CPU thread
FAST = {
    "epochs": 3,
    "batch_size": 8,
    "patch_size": 4,
    "patches_per_epoch": 16,
    "progress": False,
}


@pytest.fixture(scope="module")
def swe() -> xr.Dataset:
    """A small shallow-water run (vortices) from the built-in generator."""
    from xsr.data.datasets import shallow_water

    # the smooth preset: the data the thresholds below were measured on
    return shallow_water(48, 48, preset="smooth", frames=16, seed=1, interval="3h", dtype="float32")


def test_fit_beats_bicubic_on_shallow_water(swe):
    model, hist = fit(
        "fsrcnn",
        swe,
        variables=["h"],
        scale=2,
        epochs=10,
        batch_size=8,
        patch_size=6,
        patches_per_epoch=64,
        lr=3e-3,  # residual models start at bicubic: +1.2 to +3.0 dB for seeds 3-5 here
        progress=False,
        residual=True,
        seed=3,
        **TINY,
    )
    best = hist["val_psnr"].sel(epoch=hist.attrs["best_epoch"], variable="h")
    # the same validation patches, with the same halo of context, bicubic-interpolated
    assert float(best) > hist.attrs["bicubic_val_psnr"][0] + 0.5
    assert model.card.metrics["best"]["h"]["psnr"] == pytest.approx(float(best))
    assert model.card.metrics["bicubic"]["h"]["psnr"] == hist.attrs["bicubic_val_psnr"][0]
    # the card's normalisation and degradation agree with inference: on whole validation
    # frames, upscaling through the engine beats bicubic interpolation as well
    from xsr.degradation import degrade
    from xsr.metrics import psnr_frames
    from xsr.upscaling import upscale

    val = swe[["h"]].isel(time=slice(13, None))
    low = degrade(val, scale=2)
    data_range = float(val["h"].max() - val["h"].min())
    ours = upscale(low, model, device="cpu")["h"].values
    interp = upscale(low, "bicubic", scale=2, device="cpu")["h"].values
    truth = val["h"].values
    assert psnr_frames(ours, truth, data_range).mean() > (
        psnr_frames(interp, truth, data_range).mean() + 0.3
    )


def test_same_seed_same_history_other_seed_other_history():
    ds = random_movie(8, 32, 32, seed=0)
    model, hist = fit("fsrcnn", ds, seed=3, scale=2, **FAST, **TINY)
    model2, hist2 = fit("fsrcnn", ds, seed=3, scale=2, **FAST, **TINY)
    xr.testing.assert_identical(hist, hist2)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _, hist3 = fit("fsrcnn", ds, seed=4, scale=2, **FAST, **TINY)
    assert not np.array_equal(hist3["loss"].values, hist["loss"].values)


def test_history_and_card_are_complete(swe, tmp_path):
    model, hist = fit("fsrcnn", swe, variables=["h", "u", "v"], scale=2, **FAST, **TINY)
    assert hist["val_psnr"].dims == ("epoch", "variable")
    assert list(hist["variable"].values) == ["h", "u", "v"]
    assert list(hist["epoch"].values) == [1, 2, 3]
    for split in ("train", "val"):
        for m in ("mse", "mae", "psnr", "ssim"):
            assert np.isfinite(hist[f"{split}_{m}"]).all()
    card = model.card
    assert [v["name"] for v in card.variables] == ["h", "u", "v"]
    assert card.variables[1]["units"] == "m s-1"
    assert card.degradation == {"method": "coarsen", "scale": 2}
    assert card.training["data_attrs"]["source"].startswith("xsr.data.shallow_water")
    assert card.training["data_attrs"]["seed"] == 1
    assert card.training["variable_attrs"]["u"]["standard_name"] == "sea_water_x_velocity"
    assert set(card.metrics["data_range"]) == {"h", "u", "v"}
    # normalisation: mean/std of the training split only (the last 20% of frames held out)
    train = swe.isel(time=slice(0, 13))
    assert card.training["train_blocks"] == [[0, 13]]
    for v in ("h", "u", "v"):
        assert card.normalisation[v]["mean"] == pytest.approx(float(train[v].mean()), rel=1e-5)
        assert card.normalisation[v]["std"] == pytest.approx(float(train[v].std()), rel=1e-5)
    val = swe["h"].isel(time=slice(13, None))
    assert card.metrics["data_range"]["h"] == pytest.approx(float(val.max() - val.min()), rel=1e-6)
    # the card is complete enough to write and read back a model file
    path = save_model(model, tmp_path / "m")
    again = load_model(path)
    assert again.card.normalisation == card.normalisation
    assert again.card.metrics["best"] == card.metrics["best"]


def test_fit_accepts_dataarray_and_extra_dims():
    ds = random_movie(6, 32, 32, seed=2)
    both = xr.concat([ds["h"], -ds["h"]], dim="member").rename("h")
    model, hist = fit("srcnn", both, scale=2, features=[4, 4], **{**FAST, "epochs": 1})
    assert model.card.variables[0]["name"] == "h"
    assert hist.sizes["epoch"] == 1


def test_fit_streams_from_dask_one_compute_per_batch():
    ds = random_movie(10, 32, 32, seed=4).chunk({"time": 1})
    with raise_if_dask_computes(max_computes=1000) as sched:
        _, hist = fit("fsrcnn", ds, scale=2, **FAST, **TINY)
    a = hist.attrs
    expected = 1 + a["val_batches_per_epoch"] * (1 + 3) + 3 * a["train_batches_per_epoch"]
    assert sched.total_computes == expected  # statistics, baseline, then one per batch


class _CountingStore:
    """Wrap a zarr store and count chunk reads (keys of data chunks)."""

    def __init__(self, path):
        import zarr.storage

        class Counting(zarr.storage.WrapperStore):
            reads: list[str] = []  # noqa: RUF012 - shared on purpose between clones

            async def get(self, key, prototype, byte_range=None):
                if "/c/" in key:
                    Counting.reads.append(key)
                return await super().get(key, prototype, byte_range)

        self.cls = Counting
        self.store = Counting(zarr.storage.LocalStore(path, read_only=True))


def test_fit_from_chunked_zarr_never_loads_it_whole(tmp_path, monkeypatch):
    ds = random_movie(20, 32, 32, seed=5)
    ds.chunk({"time": 1, "y": 16, "x": 16}).to_zarr(tmp_path / "run.zarr", consolidated=False)
    counting = _CountingStore(tmp_path / "run.zarr")
    opened = xr.open_zarr(counting.store, consolidated=False)
    n_chunks = 20 * 2 * 2

    def refuse(self, *args, **kwargs):
        raise AssertionError("the archive was loaded whole")

    monkeypatch.setattr(xr.Dataset, "load", refuse)
    monkeypatch.setattr(xr.DataArray, "load", refuse)
    reads_per_compute: list[int] = []
    import dask

    def scheduler(dsk, keys, **kwargs):
        before = len(counting.cls.reads)
        out = dask.get(dsk, keys, **kwargs)
        reads_per_compute.append(len(counting.cls.reads) - before)
        return out

    with dask.config.set(scheduler=scheduler):
        _, hist = fit("fsrcnn", opened, scale=2, **FAST, **TINY)
    assert hist.sizes["epoch"] == 3
    # the statistics pass reads every chunk once (a streaming reduction); every batch after it
    # reads at most its own patches' chunks: never the archive
    assert reads_per_compute[0] == n_chunks
    assert max(reads_per_compute[1:]) <= 8 * 4  # batch_size patches, <= 4 chunks each
    assert max(reads_per_compute[1:]) < n_chunks


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_resume_after_interrupt_continues_from_checkpoint(tmp_path, schedule):
    ds = random_movie(10, 32, 32, seed=6)
    kwargs = dict(scale=2, lr_schedule=schedule, **{**FAST, "epochs": 4}, **TINY)
    full_model, full = fit("fsrcnn", ds, **kwargs)

    def interrupt(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit("fsrcnn", ds, checkpoint=tmp_path / "ck", callback=interrupt, **kwargs)
    state = json.loads((tmp_path / "ck" / "state.json").read_text())
    assert state["epoch"] == 2
    seen = []
    model, resumed = fit(
        "fsrcnn",
        ds,
        checkpoint=tmp_path / "ck",
        resume=True,
        callback=lambda e, r: seen.append(e),
        **kwargs,
    )
    assert seen == [3, 4]  # only the missing epochs ran
    xr.testing.assert_allclose(resumed, full, rtol=1e-6)
    for a, b in zip(model.state_dict().values(), full_model.state_dict().values()):
        torch.testing.assert_close(a, b)
    # only safetensors and JSON are written (nothing to unpickle)
    assert sorted(p.suffix for p in (tmp_path / "ck").iterdir()) == [
        ".json",
        ".safetensors",
        ".safetensors",
        ".safetensors",
    ]
    with pytest.raises(ValueError, match="different run"):
        fit("fsrcnn", ds, checkpoint=tmp_path / "ck", resume=True, **{**kwargs, "lr": 0.1})


def test_early_stopping_with_patience():
    ds = random_movie(8, 32, 32, seed=7)
    _, hist = fit(
        "fsrcnn",
        ds,
        scale=2,
        lr=1e-30,
        lr_schedule=None,
        patience=2,
        **{**FAST, "epochs": 10},
        **TINY,
    )
    assert hist.attrs["stopped_early"] == 1
    assert hist.sizes["epoch"] < 10
    assert hist.attrs["best_epoch"] == hist.sizes["epoch"] - 2


@pytest.mark.parametrize("schedule", ["plateau", None])
def test_schedules_and_mae_loss(schedule):
    ds = random_movie(8, 32, 32, seed=8)
    _, hist = fit("fsrcnn", ds, scale=2, lr_schedule=schedule, loss="mae", **FAST, **TINY)
    if schedule is None:
        assert np.all(hist["lr"].values == 1e-3)
    assert np.isfinite(hist["loss"]).all()


def test_psnr_loss_is_mean_per_patch_decibels():
    from xsr.train.loop import masked_loss as _loss

    target = torch.zeros(2, 1, 4, 4)
    pred = torch.zeros(2, 1, 4, 4)
    pred[0] += 0.1  # MSE 1e-2: -20 dB
    pred[1] += 1.0  # MSE 1: 0 dB
    mask = torch.ones_like(pred, dtype=torch.bool)
    assert float(_loss(pred, target, mask, "psnr")) == pytest.approx(-10.0, abs=1e-5)
    # MSE averages the squares instead: the large error dominates
    assert float(_loss(pred, target, mask, "mse")) == pytest.approx(0.505)
    # halving the small error gains as much as halving the large one (6 dB each)
    small, large = pred.clone(), pred.clone()
    small[0] /= 2
    large[1] /= 2
    a, b = (float(_loss(p, target, mask, "psnr")) for p in (small, large))
    assert a == pytest.approx(b, abs=1e-4)
    # masked values and fully masked patches are ignored
    mask[1] = False
    assert float(_loss(pred, target, mask, "psnr")) == pytest.approx(-20.0, abs=1e-4)
    # an exact match is finite
    assert np.isfinite(float(_loss(target, target, torch.ones_like(mask), "psnr")))


def test_psnr_loss_trains_and_selects_on_the_same_loss():
    ds = random_movie(8, 32, 32, seed=8)
    _, hist = fit("fsrcnn", ds, scale=2, loss="psnr", **FAST, **TINY)
    assert np.isfinite(hist["loss"]).all()
    # the validation loss is minus the mean per-patch PSNR up to a constant (the data range
    # and the normalisation), so val_loss + val_psnr is the same at every epoch
    total = hist["val_loss"] + hist["val_psnr"].squeeze(drop=True)
    assert float(total.std()) < 1e-4 * float(abs(total).mean())
    assert float(hist["val_loss"].std()) > 1e-3  # not trivially constant
    best = int(np.argmin(hist["val_loss"].values)) + 1
    assert hist.attrs["best_epoch"] == best
    with pytest.raises(ValueError, match="loss must be one of"):
        fit("fsrcnn", ds, scale=2, loss="ssim", **FAST, **TINY)


def test_window_model_and_vectors():
    ds = random_movie(12, 32, 32, seed=9, variables=("h", "u", "v"))
    model, hist = fit("srnet3d", ds, scale=2, features=4, shrink=2, halo=2, **{**FAST, "epochs": 1})
    assert model.window == 5
    assert hist.attrs["window"] == 5
    assert hist.attrs["halo"] == 2


def test_progress_bar_shows_loss_and_val_psnr(capsys):
    ds = random_movie(8, 32, 32, seed=10)
    fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1, "progress": True}, **TINY)
    err = capsys.readouterr().err
    assert "val_psnr" in err
    assert "loss" in err
    fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)  # progress=False: silent
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out == ""


def test_device_is_resolved_by_the_engine(monkeypatch):
    import xsr.engine
    import xsr.train
    import xsr.train.trainer

    # one resolver for training and inference: "auto" means the same thing for both
    assert xsr.train.trainer.resolve_device is xsr.engine.resolve_device
    assert "resolve_device" not in xsr.train.__all__
    ds = random_movie(6, 32, 32, seed=1)
    monkeypatch.setenv("XSR_DEVICE", "cpu")
    _, hist = fit("fsrcnn", ds, scale=2, device="auto", **{**FAST, "epochs": 1}, **TINY)
    assert hist.attrs["device"] == "cpu"
    with pytest.raises(ValueError, match="not a torch device"):
        fit("fsrcnn", ds, scale=2, device="abacus", **FAST, **TINY)
    if not torch.cuda.is_available():  # checked, not passed on to fail inside torch
        with pytest.raises(ValueError, match="GPU"):
            fit("fsrcnn", ds, scale=2, device="cuda", **FAST, **TINY)


def test_fine_tune_a_model_file(tmp_path):
    ds = random_movie(8, 32, 32, seed=11)
    base, _ = fit("fsrcnn", ds, scale=2, **{**FAST, "epochs": 1}, **TINY)
    path = save_model(base, tmp_path / "base")
    tuned, _ = fit(path, ds, **{**FAST, "epochs": 1})
    assert tuned.arch == "fsrcnn"
    with pytest.raises(ValueError, match="disagrees"):
        fit(path, ds, scale=3, **FAST)


# --------------------------------------------------------------------------- bad input


def test_unknown_model_name():
    with pytest.raises(ValueError, match="neither an architecture"):
        fit("no-such-net", random_movie(6, 32, 32), scale=2, **FAST)


@pytest.mark.parametrize("scale", [0, 2.5])
def test_scale_the_architecture_cannot_do(scale):
    with pytest.raises(ValueError, match="scale"):
        fit("fsrcnn", random_movie(6, 32, 32), scale=scale, **FAST)


def test_scale_required_for_arch_name():
    with pytest.raises(ValueError, match="scale= is required"):
        fit("fsrcnn", random_movie(6, 32, 32), **FAST)


def test_missing_variables():
    with pytest.raises(ValueError, match=r"variables \['sst'\] are not in the data"):
        fit("fsrcnn", random_movie(6, 32, 32), variables=["sst"], scale=2, **FAST)


def test_fewer_frames_than_window():
    with pytest.raises(ValueError, match="fewer than the model's window of 5"):
        fit("srnet3d", random_movie(4, 32, 32), scale=2, features=4, shrink=2, **FAST)


def test_nan_only_patch_is_reported_or_skipped():
    ds = random_movie(8, 32, 32, seed=12)
    ds["h"][:, :16, :16] = np.nan  # a "land" quadrant: whole patches of NaN
    with pytest.raises(ValueError, match=r"entirely NaN.*nan_patches='skip'"):
        fit("fsrcnn", ds, scale=2, **FAST, **TINY)
    _, hist = fit("fsrcnn", ds, scale=2, nan_patches="skip", **FAST, **TINY)
    assert np.isfinite(hist["val_psnr"]).all()


def test_all_nan_variable():
    ds = random_movie(8, 32, 32, seed=13)
    ds["h"][:] = np.nan
    with pytest.raises(ValueError, match="entirely NaN in the training split"):
        fit("fsrcnn", ds, scale=2, **FAST)


def test_corrupted_model_file(tmp_path):
    path = save_model(get_model("fsrcnn", scale=2, **TINY), tmp_path / "m")
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"m\.safetensors"):
        fit(path, random_movie(6, 32, 32), **FAST)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degrade": "nearest"}, "degrade must be one of"),
        ({"loss": "huber"}, "loss must be one of"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"patch_size": 64}, "use a smaller patch_size"),
        ({"resume": True}, "needs checkpoint="),
        ({"nan_patches": "drop"}, "nan_patches must be one of"),
        ({"time_dim": "t"}, "time_dim='t' is not a dimension"),
        ({"stage": 0}, "needs a 'chain' model"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit("fsrcnn", random_movie(6, 32, 32), scale=2, **{**FAST, **kwargs})


def test_bad_data_type():
    with pytest.raises(TypeError, match="xarray Dataset or DataArray"):
        fit("fsrcnn", np.zeros((4, 8, 8)), scale=2, **FAST)


def test_corrupted_or_misplaced_checkpoint(tmp_path):
    ds = random_movie(6, 32, 32, seed=14)
    kwargs = dict(scale=2, checkpoint=tmp_path / "ck", **{**FAST, "epochs": 1}, **TINY)
    fit("fsrcnn", ds, **kwargs)
    (tmp_path / "ck" / "last.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="incomplete or corrupted"):
        fit("fsrcnn", ds, resume=True, **kwargs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        fit("fsrcnn", ds, **{**kwargs, "checkpoint": tmp_path / "file"})


def test_resume_without_a_checkpoint_yet_starts_fresh(tmp_path):
    ds = random_movie(6, 32, 32, seed=15)
    kwargs = dict(scale=2, **{**FAST, "epochs": 1}, **TINY)
    _, fresh = fit("fsrcnn", ds, **kwargs)
    _, resumed = fit("fsrcnn", ds, checkpoint=tmp_path / "new", resume=True, **kwargs)
    xr.testing.assert_identical(fresh, resumed)
    assert (tmp_path / "new" / "best.safetensors").is_file()


def test_divergence_is_reported():
    with pytest.raises(FloatingPointError, match="lower lr="):
        fit("fsrcnn", random_movie(6, 32, 32), scale=2, lr=1e30, **FAST, **TINY)

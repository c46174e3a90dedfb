"""The ``xsr`` command line, run in-process through :func:`xsr.cli.main`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import xsr
from xsr.cli import build_parser, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert xsr.__version__ in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "xsr.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"xsr {xsr.__version__}"


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_simulate_writes_a_labelled_run(tmp_path, suffix, capsys):
    out = tmp_path / f"run{suffix}"
    assert main(["simulate", "-o", str(out), "--nx", "16", "--ny", "16", "--frames", "3"]) == 0
    ds = xr.open_zarr(out) if suffix == ".zarr" else xr.open_dataset(out)
    assert dict(ds.sizes) == {"time": 3, "y": 16, "x": 16}
    assert {"h", "u", "v", "tracer"} <= set(ds.data_vars)
    assert "wrote" in capsys.readouterr().out
    # A second run refuses to replace the output unless asked.
    assert main(["simulate", "-o", str(out), "--nx", "16", "--ny", "16", "--frames", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    ds.close()


def test_simulate_refuses_unknown_suffix_before_simulating(tmp_path, capsys, monkeypatch):
    import xsr.data

    def never(*args, **kwargs):
        raise AssertionError("simulated before checking the output suffix")

    monkeypatch.setattr(xsr.data, "shallow_water", never)
    out = str(tmp_path / "run.txt")
    assert main(["simulate", "-o", out, "--nx", "8", "--ny", "8", "--frames", "2"]) == 2
    err = capsys.readouterr().err
    assert "run.txt" in err and ".zarr" in err and ".nc" in err


def test_simulate_bad_values_are_clear_errors(tmp_path, capsys):
    code = main(["simulate", "-o", str(tmp_path / "r.zarr"), "--nx", "0", "--frames", "2"])
    assert code == 2
    assert "nx" in capsys.readouterr().err


def test_evaluate_prints_the_table(tmp_path, capsys):
    truth = xsr.testing.random_movie(3, 16, 16, variables=("h",))
    pred = truth + 0.01 * np.random.default_rng(0).standard_normal(truth["h"].shape)
    pred = pred.astype("float32")
    truth.to_netcdf(tmp_path / "truth.nc")
    pred.to_netcdf(tmp_path / "pred.nc")
    assert main(["evaluate", str(tmp_path / "pred.nc"), str(tmp_path / "truth.nc")]) == 0
    out = capsys.readouterr().out
    assert "PSNR" in out
    assert "SSIM" in out
    assert "data range" in out


def test_evaluate_protocol_options_and_baselines(tmp_path, capsys):
    from xsr.degrade import degrade
    from xsr.models.files import save_model
    from xsr.train.linear import fit_linear
    from xsr.upscale import upscale

    truth = xsr.testing.random_movie(5, 16, 16, variables=("h",), dtype="float64")
    truth["time"].attrs["spin_up_end"] = 60.0
    pred = upscale(degrade(truth, scale=2), "bicubic", scale=2)
    truth.to_netcdf(tmp_path / "truth.nc")
    pred.to_netcdf(tmp_path / "mine.nc")
    save_model(fit_linear(truth, scale=2, radius=1), tmp_path / "lin")
    args = ["evaluate", str(tmp_path / "mine.nc"), str(tmp_path / "truth.nc"), "--crop", "2"]
    assert main([*args, "--baselines", "2", "--linear", str(tmp_path / "lin")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:5]] == [
        "bicubic",
        "bicubic+conserve",
        "linear",
        "mine",
    ]
    assert "frames: 4 scored, 1 excluded as spin-up" in lines[-1]
    assert "crop: y=2, x=2" in lines[-1]
    assert lines[1].split()[2:] == lines[4].split()[2:]  # the same prediction, the same scores
    assert main([*args, "--include-spin-up"]) == 0
    assert "frames: 5 scored, 0 excluded" in capsys.readouterr().out


def test_evaluate_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.nc"), str(tmp_path / "nope2.nc")]) == 2
    assert "No such file or store" in capsys.readouterr().err


def test_upscale_with_interpolation_model(tmp_path):
    low = xsr.testing.random_movie(4, 8, 8)
    low.to_zarr(tmp_path / "low.zarr")
    code = main(
        [
            "upscale",
            str(tmp_path / "low.zarr"),
            str(tmp_path / "hi.zarr"),
            "--model",
            "bicubic",
            "--scale",
            "2",
        ]
    )
    assert code == 0
    hi = xr.open_zarr(tmp_path / "hi.zarr")
    assert dict(hi.sizes) == {"time": 4, "y": 16, "x": 16}


def test_upscale_in_bfloat16(tmp_path):
    low = xsr.data.shallow_water(16, 16, frames=4, seed=1).astype("float32")
    low.to_zarr(tmp_path / "low.zarr")
    args = ["upscale", str(tmp_path / "low.zarr"), str(tmp_path / "hi.zarr"), "--scale", "2"]
    assert main([*args, "--model", "xsrnet-swe-x2", "--precision", "bfloat16"]) == 0
    hi = xr.open_zarr(tmp_path / "hi.zarr")
    assert hi["h"].dtype == np.float32
    assert dict(hi["h"].sizes) == {"time": 4, "y": 32, "x": 32}
    with pytest.raises(SystemExit):
        main([*args, "--model", "xsrnet-swe-x2", "--precision", "float16", "--overwrite"])


def test_train_writes_a_model_file(tmp_path, capsys):
    swe = xsr.testing.random_movie(10, 32, 32, variables=("h",))
    swe.to_zarr(tmp_path / "train.zarr")
    code = main(
        [
            "train",
            str(tmp_path / "train.zarr"),
            "--model",
            "fsrcnn",
            "--variables",
            "h",
            "--scale",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--patch-size",
            "4",
            "--patches-per-epoch",
            "8",
            "--lr",
            "5e-4",
            "--loss",
            "psnr",
            "--keep-start",
            "--checkpoint",
            str(tmp_path / "ckpt"),
            "-o",
            str(tmp_path / "model"),
            "--name",
            "tiny",
        ]
    )
    assert code == 0
    model = xsr.load_model(tmp_path / "model" / "tiny")
    assert model.scale == 2
    assert model.card.variables[0]["name"] == "h"
    training = model.card.training
    assert (training["loss"], training["lr"], training["patches_per_epoch"]) == ("psnr", 5e-4, 8)
    assert training["keep_start"] is True
    assert (tmp_path / "model" / "tiny-history.nc").exists()
    assert any((tmp_path / "ckpt").iterdir())


def test_train_missing_variable_is_a_clear_error(tmp_path, capsys):
    xsr.testing.random_movie(6, 8, 8).to_zarr(tmp_path / "d.zarr")
    code = main(
        [
            "train",
            str(tmp_path / "d.zarr"),
            "--variables",
            "nope",
            "--scale",
            "2",
            "--epochs",
            "1",
            "-o",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_models_lists_the_shipped_models(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.strip()


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])

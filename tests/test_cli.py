"""The ``xsr`` command line, run in-process through :func:`xsr.cli.main`."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    assert "run.txt" in err
    assert ".zarr" in err
    assert ".nc" in err


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
    from xsr.degradation import degrade
    from xsr.models.files import save_model
    from xsr.train.linear import fit_linear
    from xsr.upscaling import upscale

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


def test_train_site_fine_tunes_a_field_model_with_its_grids_site_detail(tmp_path):
    xsr.testing.random_movie(12, 32, 32, variables=("h",)).to_zarr(tmp_path / "train.zarr")
    code = main(
        [
            "train", str(tmp_path / "train.zarr"), "--model", "field-xsrnet-x2",
            "--epochs", "1", "--batch-size", "4", "--patch-size", "8",
            "--patches-per-epoch", "4", "--keep-start", "--site",
            "-o", str(tmp_path / "model"), "--name", "sited",
        ]
    )  # fmt: skip
    assert code == 0
    model = xsr.load_model(tmp_path / "model" / "sited")
    assert model.card.kind == "field"
    assert list(model.site) == ["h"]
    assert model.card.site["variables"]["h"]["shape"] == [32, 32]


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


# ---------------------------------------------------------------------------------------------
# upscale: options, reruns and faults a new user meets (issue 17, items 16 and the further cases)
# ---------------------------------------------------------------------------------------------


def _low(tmp_path, name="low.nc", nt=4):
    path = tmp_path / name
    xsr.testing.random_movie(nt, 8, 8).to_netcdf(path)
    return str(path)


def _up(*args):
    return main(["upscale", *map(str, args), "--model", "bicubic", "--scale", "2", "--quiet"])


def test_every_option_has_help_a_default_or_example(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("simulate", "train", "upscale", "verify", "models", "demo"):
        p = sub.choices[name]
        assert "examples:" in (p.epilog or ""), name
        assert f"xsr {name}" in p.epilog, name
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"xsr {name} {action.dest} has no help"
            if action.option_strings and action.nargs != 0:
                assert "e.g." in action.help or action.choices, f"{name} {action.dest}"


def test_upscale_options_dims_time_dim_periodic_chunks_region_size(tmp_path):
    low = xsr.testing.random_movie(6, 8, 8).rename(time="step", y="lat", x="lon")
    low.to_netcdf(tmp_path / "low.nc")
    args = [tmp_path / "low.nc", tmp_path / "hi.zarr", "--dims", "lat", "lon"]
    args += ["--time-dim", "step", "--periodic", "x", "--region-size", "4"]
    args += ["--chunks", "lat=4", "--variables", "h"]
    assert _up(*args) == 0
    hi = xr.open_zarr(tmp_path / "hi.zarr")
    assert dict(hi["h"].sizes) == {"step": 6, "lat": 16, "lon": 16}
    assert hi["h"].encoding["chunks"][0] == 4
    assert "periodic_x=True" in hi.attrs["history"]


def test_upscale_variable_mapping(tmp_path):
    low = xsr.testing.random_movie(3, 16, 16)
    low["h"].attrs = {}
    low.to_netcdf(tmp_path / "low.nc")
    args = ["upscale", str(tmp_path / "low.nc"), str(tmp_path / "hi.zarr"), "--quiet"]
    with pytest.warns(UserWarning, match="image"):
        code = main([*args, "--model", "srcnn-natural-x2", "--variables", "h=image"])
    assert code == 0
    assert xr.open_zarr(tmp_path / "hi.zarr")["h"].shape == (3, 32, 32)


def test_rerun_on_a_finished_output_is_nothing_to_do(tmp_path, capsys):
    src = _low(tmp_path)
    for out in ("hi.zarr", "hi.nc"):
        assert _up(src, tmp_path / out) == 0
        capsys.readouterr()
        assert _up(src, tmp_path / out) == 0
        assert "nothing to do" in capsys.readouterr().err
    (tmp_path / "other.nc").write_bytes(b"not ours")
    assert _up(src, tmp_path / "other.nc") == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{src}", "{src}"], "would overwrite (or lie inside) input_path"),
        (["{src}", "{src}/out.zarr"], "would overwrite (or lie inside) input_path"),
        (["{src}", "{tmp}/notes.txt/out.zarr"], "is a file, not a folder"),
        (["{tmp}/notes.txt", "{tmp}/out.zarr"], "cannot tell the format of"),
        (["{src}", "{tmp}/out.tif"], "unsupported output suffix '.tif'"),
        (["s3://bucket/run.nc", "{tmp}/out.zarr"], "remote address"),
        (["{tmp}/missing.nc", "{tmp}/out.zarr"], "does not exist"),
        (["{tmp}/folder", "{tmp}/out.zarr"], "not a Zarr store"),
        (["{src}", "{tmp}/out.zarr", "--variables", "nope"], "are not in"),
        (["{src}", "{tmp}/out.zarr", "--variables", "=h"], "NAME=MODEL_VARIABLE"),
        (["{src}", "{tmp}/out.zarr", "--chunks", "time"], "DIM=N"),
        (["{src}", "{tmp}/out.zarr", "--time-dim", "when"], "time_dim='when'"),
        (["{empty}", "{tmp}/out.zarr"], "nothing to upscale"),
        (["{bad}", "{tmp}/out.zarr"], "not a readable NetCDF file"),
    ],
)
def test_upscale_faults_are_clear_errors(tmp_path, capsys, args, message):
    src = _low(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    empty = tmp_path / "empty.nc"
    xsr.testing.random_movie(4, 8, 8).isel(time=slice(0, 0)).to_netcdf(empty)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(Path(src).read_bytes()[:3000])
    fill = {"src": src, "tmp": tmp_path, "empty": empty, "bad": bad}
    argv = [a.format(**fill) for a in args]
    assert _up(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xsr upscale: error:"), err
    assert message in err, err


def test_upscale_model_and_scale_faults(tmp_path, capsys):
    src = _low(tmp_path)
    assert main(["upscale", src, str(tmp_path / "o.zarr"), "--model", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main(["upscale", src, str(tmp_path / "o.zarr"), "--scale", "0", "--quiet"]) == 2
    assert "scale" in capsys.readouterr().err


def test_zarr_v2_and_read_only_inputs_work(tmp_path):
    low = xsr.testing.random_movie(4, 8, 8)
    low.to_zarr(tmp_path / "v2.zarr", zarr_format=2)
    assert _up(tmp_path / "v2.zarr", tmp_path / "a.zarr") == 0
    src = _low(tmp_path)
    os.chmod(src, 0o444)
    assert _up(src, tmp_path / "b.nc") == 0
    a, b = xr.open_zarr(tmp_path / "a.zarr"), xr.open_dataset(tmp_path / "b.nc")
    xr.testing.assert_allclose(a["h"].compute(), b["h"])


def test_full_disk_is_explained_and_resumable(tmp_path, capsys, monkeypatch):
    src = _low(tmp_path, nt=6)
    real = xr.Dataset.to_zarr

    def full(self, *args, **kwargs):
        if kwargs.get("region") and kwargs["region"]["time"].start >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", full)
    out = tmp_path / "hi.zarr"
    assert _up(src, out, "--region-size", "2") == 2
    err = capsys.readouterr().err
    assert "no space left while writing store" in err
    assert "run the same command again" in err
    monkeypatch.setattr(xr.Dataset, "to_zarr", real)
    assert _up(src, out, "--region-size", "2") == 0
    assert "resuming" in capsys.readouterr().err


def test_verify_of_a_store_not_written_by_xsr(tmp_path, capsys):
    xsr.testing.random_movie(2, 4, 4).to_zarr(tmp_path / "plain.zarr")
    assert main(["verify", str(tmp_path / "plain.zarr")]) == 2
    assert "no xsr job record" in capsys.readouterr().err


SIGNAL_SCRIPT = r"""
import importlib, sys, time
from xsr.cli import main

module = importlib.import_module("xsr.upscaling")
real_upscale = module.upscale

def slow(block):
    time.sleep(0.4)
    return block

def slow_upscale(*args, **kwargs):
    # Same values, computed slowly enough to be interrupted (a hook of this test only).
    out = real_upscale(*args, **kwargs)
    return out.copy(data={"h": out["h"].data.map_blocks(slow, dtype=out["h"].dtype)})

module.upscale = slow_upscale
sys.exit(main(["upscale", sys.argv[1], sys.argv[2], "--model", "bicubic", "--scale", "2",
               "--region-size", "1"]))
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_with_the_progress_bar_up(tmp_path, signum):
    from xsr.archive import store_status
    from xsr.archive.lock import lock_path

    src = _low(tmp_path, nt=12)
    out = tmp_path / "hi.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_SCRIPT, src, str(out)],
        # Ctrl-C as a terminal delivers it: a test run started in the background (nohup, `&`
        # in a script) ignores SIGINT, and a child would inherit that and never see the signal
        preexec_fn=_default_sigint,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            if len(store_status(out)["completed"]) >= 2:
                break
        except Exception:
            pass
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    text = err.decode()
    assert "xsr: writing" in text  # the progress bar was up
    assert "interrupted" in text
    assert "run the same command again" in text
    assert not lock_path(out).exists()  # released on the way out
    assert not store_status(out)["finished"]
    assert _up(src, out, "--region-size", "1") == 0
    assert store_status(out)["finished"]

"""Baseline rows and temporal ablations (xsr.evaluation)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
import xarray as xr

from xsr.degradation import degrade
from xsr.evaluation import ABLATIONS, BASELINES, baselines, temporal_ablation
from xsr.metrics import score
from xsr.models.base import BicubicUpsample, SRModel
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.train.linear import fit_linear
from xsr.upscaling import upscale


class _Windowed(SRModel):
    """A parameter-free window-3 model: bicubic of the centre frame or of the window's mean."""

    arch: ClassVar[str] = "toy-window"

    def __init__(self, *, use_neighbours: bool) -> None:
        super().__init__(scale=2, channels=1, window=3)
        self.up = BicubicUpsample(2)
        self.use_neighbours = use_neighbours
        self.config = {"use_neighbours": use_neighbours}

    @property
    def receptive_radius(self) -> int:
        return self.up.radius

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        frame = x.mean(dim=2) if self.use_neighbours else x[:, :, 1]
        return self.up(frame)


def _movie() -> tuple[xr.Dataset, xr.Dataset]:
    truth = random_movie(7, 16, 16, dtype="float64", seed=3)
    return truth, degrade(truth, scale=2)


def test_a_model_ignoring_neighbours_scores_the_same_three_ways():
    truth, low = _movie()
    table = temporal_ablation(_Windowed(use_neighbours=False), low, truth, name="centre")
    assert table["candidate"].values.tolist() == [
        "centre",
        "centre centre-repeated",
        "centre time-shuffled",
    ]
    psnr = table["psnr"].sel(variable="h").values
    np.testing.assert_allclose(psnr, psnr[0], rtol=0, atol=1e-9)
    assert table.attrs["window"] == 3


def test_a_model_using_neighbours_scores_differently():
    truth, low = _movie()
    model = _Windowed(use_neighbours=True)
    table = temporal_ablation(model, low, truth, name="mean", seed=1)
    real, centre, shuffled = table["psnr"].sel(variable="h").values
    assert abs(real - centre) > 0.1
    assert abs(real - shuffled) > 0.1
    # centre-repeated is exactly the model fed one frame: bicubic of that frame
    bicubic = score({"b": upscale(low, "bicubic", scale=2)}, truth)
    assert centre == pytest.approx(
        float(bicubic["psnr"].sel(candidate="b", variable="h")), abs=1e-6
    )


def test_shuffle_is_undone_and_seeded():
    truth, low = _movie()
    model = _Windowed(use_neighbours=True)
    a = temporal_ablation(model, low, truth, seed=5)
    b = temporal_ablation(model, low, truth, seed=5)
    c = temporal_ablation(model, low, truth, seed=6)
    xr.testing.assert_equal(a, b)
    shuffled = [f"toy-window {ABLATIONS[1]}"]
    assert not np.allclose(a["mse"].sel(candidate=shuffled), c["mse"].sel(candidate=shuffled))


def test_ablation_lazy_on_dask_input():
    truth, low = _movie()
    model = _Windowed(use_neighbours=True)
    eager = temporal_ablation(model, low, truth)
    with raise_if_dask_computes():
        lazy = temporal_ablation(model, low.chunk({"time": 3}), truth.chunk({"time": 2}))
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_ablation_needs_time():
    truth, low = _movie()
    with pytest.raises(ValueError, match="time dimension"):
        temporal_ablation("bicubic", low.isel(time=0), truth.isel(time=0))


def test_baselines_rows():
    truth = random_movie(6, 32, 32, dtype="float64", variables=("h", "u"))
    low = degrade(truth, scale=2)
    rows = baselines(low, scale=2)
    assert list(rows) == list(BASELINES[:2])
    lin = fit_linear(truth, scale=2, radius=2)
    rows = baselines(low, scale=2, linear=lin)
    assert list(rows) == list(BASELINES)
    table = score(rows, truth)
    # the projection makes the block means exact: never worse than plain bicubic in MSE here
    mse = table["mse"]
    assert (mse.sel(candidate="bicubic+conserve") <= mse.sel(candidate="bicubic")).all()
    np.testing.assert_allclose(
        degrade(rows["bicubic+conserve"], scale=2)["h"].values, low["h"].values, atol=1e-5
    )
    with pytest.raises(ValueError, match="scale"):
        baselines(low, scale=4, linear=lin)


@pytest.mark.slow
def test_baselines_report_script_runs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "baselines_report.py"
    args = ["--nx", "32", "--frames", "4", "--members", "1", "--scales", "2", "--no-shipped"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bicubic+conserve" in out.stdout
    assert "linear" in out.stdout


def test_margin_over_the_strongest_baseline():
    from xsr.evaluation import margin_over_baselines

    truth = random_movie(3, 16, 16, dtype="float64", variables=("h", "u"))
    rows = {
        "bicubic": truth + 0.1,
        "bicubic+conserve": truth.copy(deep=True),
        "mine": truth + 0.01,
    }
    rows["bicubic+conserve"]["h"] = truth["h"] + 0.05  # strongest on h ...
    rows["bicubic+conserve"]["u"] = truth["u"] + 0.2  # ... but not on u
    table = score(rows, truth, data_range=1.0)
    m = margin_over_baselines(table, "mine")
    assert m["strongest"].values.tolist() == ["bicubic+conserve", "bicubic"]
    np.testing.assert_allclose(m["margin"].values, [20 * np.log10(5), 20.0])
    assert m["margin"].attrs["units"] == "dB"
    with pytest.raises(ValueError, match="no row 'nope'"):
        margin_over_baselines(table, "nope")
    with pytest.raises(ValueError, match="metric"):
        margin_over_baselines(table, "mine", metric="mae")
    with pytest.raises(ValueError, match="no baseline row"):
        margin_over_baselines(score({"mine": rows["mine"]}, truth), "mine")

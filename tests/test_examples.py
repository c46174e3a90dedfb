"""Smoke tests: the example scripts run end to end on small sizes (``--quick``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, f"{name} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_demo_example(tmp_path):
    stdout = run_example("demo.py", str(tmp_path / "demo"), "--quick", cwd=tmp_path)
    assert "PSNR" in stdout
    assert (tmp_path / "demo" / "compare_x2.png").stat().st_size > 10_000
    assert list((tmp_path / "demo").glob("upscaled_x2_*.zarr"))


def test_read_mat_example(tmp_path):
    assert "bicubic / H" in run_example("read_mat.py", "--quick", cwd=tmp_path)


def test_y4m_example(tmp_path):
    assert "data range: Y: 1" in run_example("y4m_movie.py", "--quick", cwd=tmp_path)


def test_archive_example(tmp_path):
    stdout = run_example("archive_run.py", str(tmp_path), "--quick", cwd=tmp_path)
    assert "'finished': True" in stdout


@pytest.mark.slow
def test_archive_example_on_a_cluster(tmp_path):
    stdout = run_example("archive_run.py", str(tmp_path), "--quick", "--cluster", cwd=tmp_path)
    assert "'finished': True" in stdout


def test_train_and_finetune_example(tmp_path):
    stdout = run_example("train_and_finetune.py", str(tmp_path), "--quick", cwd=tmp_path)
    assert (tmp_path / "fsrcnn-h-x2.safetensors").exists()
    assert (tmp_path / "fsrcnn-h-x2.json").exists()
    assert "best validation PSNR" in stdout


@pytest.mark.slow
def test_results_report_quick(tmp_path):
    # every row, table, ablation and the shipping path run at tiny budgets (numbers meaningless)
    script = Path(__file__).resolve().parents[1] / "scripts" / "results_report.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    args = ["--quick", "--out", str(tmp_path), "--ship", "--weights-dir", str(tmp_path / "w")]
    out = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    page = (tmp_path / "results.md").read_text()
    for row in ("bicubic+conserve", "linear", "SRCNN fine-tuned", "3D then 2D", "two-in-one"):
        assert f"| {row}" in page
    assert "## The temporal experiment (x2)" in page
    assert "Margin over the strongest classical baseline" in page
    from xsr.models.files import load_model

    model = load_model(tmp_path / "w" / "srnet3d-swe-x2")
    assert model.card.training["script"] == "scripts/results_report.py"
    assert "temporal_ablation" in model.card.metrics["held_out"]

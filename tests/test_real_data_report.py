"""scripts/real_data_report.py: its helpers, and a --quick run on the real-data cache.

The run needs the cached public real data (``python scripts/fetch_real_data.py``) and the shipped
universal x2 field model; it is skipped without them (nothing is downloaded by the tests).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "real_data_report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("real_data_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_patch_plan_fits_small_grids(report):
    budget = {"patch": {2: 16, 4: 8}}
    assert report._patch_plan([36, 72], 2, 4, budget) == {"patch_size": 16, "halo": 4}
    # 9 coarse rows: the halo shrinks so that a patch of at least 4 fits
    assert report._patch_plan([9, 12], 4, 4, budget) == {"patch_size": 5, "halo": 2}
    assert report._patch_plan([4, 108], 4, 4, budget) == {"patch_size": 4, "halo": 0}
    for sizes, scale in (([9, 12], 4), ([4, 108], 4), ([30, 60], 2)):
        plan = report._patch_plan(sizes, scale, 4, budget)
        assert plan["patch_size"] + 2 * plan["halo"] <= min(sizes)


def test_a_static_map_becomes_strips_along_time(report):
    ds = xr.Dataset(
        {"rose": (("lat", "lon"), np.arange(6 * 20.0).reshape(6, 20))},
        coords={"lat": np.arange(6.0), "lon": np.arange(20.0) * 5},
    )
    out = report._strips(ds, "lat", "lon")
    assert dict(out["rose"].sizes) == {"time": 2, "lat": 6, "lon": 8}
    np.testing.assert_array_equal(out["rose"].isel(time=1).values, ds["rose"].values[:, 8:16])
    np.testing.assert_array_equal(out["lon"].values, ds["lon"].values[:8])


def test_predictions_take_the_truths_coordinates_only_when_close(report):
    truth = xr.Dataset(
        {"a": (("y", "x"), np.zeros((2, 3)))}, coords={"y": [0.0, 1], "x": [0.0, 1, 2]}
    )
    near = truth.assign_coords(y=[-0.1, 1.0])  # a pole row's clamped centre, or rounding
    assert report._on_truth_grid(near, truth, ("y", "x"))["y"].values.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="'y'"):
        report._on_truth_grid(truth.assign_coords(y=[1.0, 2.0]), truth, ("y", "x"))


def test_quick_run_writes_a_page(report, tmp_path):
    import xsr

    cached = {e["name"] for e in xsr.data.list_real() if e["cached"]}
    if report.QUICK_DATASET not in cached:
        pytest.skip(f"{report.QUICK_DATASET} is not in the real-data cache")
    if report.UNIVERSAL[2] not in xsr.models.pretrained.PRETRAINED:
        pytest.skip(f"{report.UNIVERSAL[2]} is not shipped yet")
    page = tmp_path / "page.md"
    assert report.main(["--quick", "--page", str(page)]) == 0
    text = page.read_text()
    assert "A `--quick` run" in text
    for row in report.ROWS:
        assert re.search(rf"\| air_temperature \| {re.escape(row)} \| \d+\.\d\d \|", text), row
    assert re.search(r"zero-shot beats bicubic .*: (holds|does not hold)", text)
    assert "fine-tuning: patch" in text

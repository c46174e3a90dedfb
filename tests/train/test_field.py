"""Tests for xsr.train.field: training and fine-tuning field models on frame-normalised data."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xsr
from xsr.models.files import save_model
from xsr.testing import random_movie
from xsr.train import fit
from xsr.train.config import FitConfig
from xsr.train.data import select
from xsr.train.field import FIELD, field_card, field_selection, frame_normalised

SMALL = {"d": 8, "s": 4, "m": 1}
FAST = {"epochs": 1, "patch_size": 4, "batch_size": 4, "patches_per_epoch": 8, "progress": False}


def _field_model(tmp_path):
    """A tiny field model written to disk (trained on a toy movie, then marked ``field``)."""
    net, _ = fit("fsrcnn", random_movie(8, 24, 24, variables=(FIELD,)), scale=2, **FAST, **SMALL)
    return save_model(
        net,
        tmp_path / "tiny-field",
        name="tiny-field",
        kind="field",
        variables=[{"name": FIELD, "units": "1", "long_name": "any field"}],
    )


@settings(max_examples=20, deadline=None)
@given(
    a=st.floats(1e-3, 1e3),
    b=st.floats(-1e4, 1e4),
    seed=st.integers(0, 2**16),
)
def test_frame_normalised_is_invariant_to_units(a, b, seed):
    """Normalising a*x + b gives what normalising x gives: the field's units do not matter."""
    rng = np.random.default_rng(seed)
    hi = xr.DataArray(rng.standard_normal((2, 8, 8)), dims=("time", "y", "x"))

    def norm(x):
        return frame_normalised(x, x.coarsen(y=2, x=2).mean(), ("y", "x"))

    np.testing.assert_allclose(norm(a * hi + b), norm(hi), rtol=1e-4, atol=1e-4)


def test_frame_normalised_low_resolution_has_zero_mean_unit_std():
    hi = random_movie(3, 16, 16)["h"] * 40.0 + 7.0
    z = frame_normalised(hi, hi.coarsen(y=2, x=2).mean(), ("y", "x"))
    low = z.coarsen(y=2, x=2).mean()
    np.testing.assert_allclose(low.mean(("y", "x")), 0.0, atol=1e-5)
    np.testing.assert_allclose(low.std(("y", "x")), 1.0, atol=1e-5)
    assert z.dtype == np.float32


def test_frame_normalised_constant_frame_becomes_zero_and_nan_is_kept():
    hi = xr.DataArray(np.full((1, 4, 4), 5.0), dims=("time", "y", "x"))
    hi[0, 0, 0] = np.nan
    z = frame_normalised(hi, hi.coarsen(y=2, x=2).mean(), ("y", "x"))
    assert np.isnan(z[0, 0, 0])
    assert float(np.nanmax(np.abs(z))) == 0.0


def test_frame_normalised_is_lazy_on_dask_input():
    hi = random_movie(4, 16, 16)["h"].chunk({"time": 2})
    with xsr.testing.raise_if_dask_computes():
        z = frame_normalised(hi, hi.coarsen(y=2, x=2).mean(), ("y", "x"))
    assert z.chunks is not None
    eager = frame_normalised(hi.compute(), hi.compute().coarsen(y=2, x=2).mean(), ("y", "x"))
    np.testing.assert_allclose(z.compute(), eager, rtol=1e-6)


def test_field_selection_lays_variables_and_extra_dims_as_samples():
    ds = random_movie(4, 8, 8, variables=("a", "b"))
    ds["c"] = ds["a"].expand_dims(level=[850, 500]) * 100.0  # an extra dim of its own
    cfg = FitConfig(periodic=False)
    fsel = field_selection(select(ds, cfg), cfg, scale=2)
    assert fsel.variables == (FIELD,)
    assert fsel.data[FIELD].sizes["_xsr_field"] == 4  # a, b, and c at two levels
    assert fsel.data[FIELD].attrs["units"] == "1"
    np.testing.assert_allclose(fsel.data[FIELD][2], fsel.data[FIELD][0], atol=1e-5)


def test_field_card_reads_objects_names_and_files(tmp_path):
    path = _field_model(tmp_path)
    assert field_card(path).kind == "field"
    assert field_card(xsr.load_model(path)).scale == 2
    assert field_card("fsrcnn") is None
    assert field_card("xsrnet-swe-x2") is None
    assert field_card(tmp_path / "missing") is None


def test_fit_fine_tunes_a_field_model_on_any_variables(tmp_path):
    """fit(field model, ds) learns from every variable, whatever its name and units."""
    path = _field_model(tmp_path)
    ds = random_movie(8, 24, 24, variables=("uwnd", "tas"))
    ds["tas"] = ds["tas"] * 30.0 + 280.0
    ds["tas"].attrs["units"] = "K"
    tuned, hist = fit(path, ds, **FAST)
    assert tuned.card.kind == "field"
    assert [v["name"] for v in tuned.card.variables] == [FIELD]
    assert list(hist["variable"].values) == [FIELD]
    out = ds.sr.upscale(model=tuned)
    assert set(out.data_vars) == {"uwnd", "tas"}
    assert 250.0 < float(out["tas"].mean()) < 310.0  # de-normalised back to kelvin


def test_fit_field_model_refuses_a_wrong_scale(tmp_path):
    with pytest.raises(ValueError, match="scale=4"):
        fit(_field_model(tmp_path), random_movie(8, 24, 24), scale=4, **FAST)

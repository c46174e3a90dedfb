"""Tests of xsr.metrics: numpy kernels, per-frame xarray metrics, evaluate/compare/format_table."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

import xsr.accessor  # noqa: F401  (registers .sr)
from xsr.metrics import (
    METRICS,
    band_power_frames,
    compare,
    evaluate,
    format_table,
    mae,
    mae_frames,
    mse,
    mse_frames,
    psnr,
    psnr_frames,
    rmse,
    rmse_frames,
    score,
    spin_up_mask,
    ssim,
    ssim_frames,
)
from xsr.testing import raise_if_dask_computes, random_movie


def _skimage_ssim(pred: np.ndarray, truth: np.ndarray, data_range: float) -> np.ndarray:
    return np.array(
        [
            structural_similarity(
                p,
                t,
                gaussian_weights=True,
                use_sample_covariance=False,
                data_range=data_range,
            )
            for p, t in zip(
                pred.reshape(-1, *pred.shape[-2:]), truth.reshape(-1, *truth.shape[-2:])
            )
        ]
    ).reshape(pred.shape[:-2])


def _pair(nt=4, ny=16, nx=18, seed=0, noise=0.1, dtype="float64"):
    truth = random_movie(nt, ny, nx, seed=seed, dtype=dtype)["h"]
    rng = np.random.default_rng(seed + 1)
    pred = truth + noise * rng.standard_normal(truth.shape).astype(dtype)
    pred.attrs = truth.attrs
    return pred, truth


# ---------------------------------------------------------------- numpy kernels


def test_kernels_match_direct_formulas():
    rng = np.random.default_rng(3)
    t = rng.normal(size=(2, 3, 12, 13))
    p = t + rng.normal(scale=0.2, size=t.shape)
    err = p - t
    np.testing.assert_allclose(mae_frames(p, t), np.abs(err).mean(axis=(-2, -1)))
    np.testing.assert_allclose(mse_frames(p, t), (err**2).mean(axis=(-2, -1)))
    np.testing.assert_allclose(rmse_frames(p, t), np.sqrt((err**2).mean(axis=(-2, -1))))
    expected = 10 * np.log10(4.0**2 / (err**2).mean(axis=(-2, -1)))
    np.testing.assert_allclose(psnr_frames(p, t, 4.0), expected)
    assert mae_frames(p, t).shape == (2, 3)
    assert np.isinf(psnr_frames(t, t, 1.0)).all()


@settings(max_examples=30, deadline=None)
@given(
    ny=st.integers(11, 24),
    nx=st.integers(11, 24),
    data_range=st.floats(0.05, 50.0),
    noise=st.floats(0.0, 2.0),
    offset=st.floats(-5.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_ssim_agrees_with_skimage(ny, nx, data_range, noise, offset, seed):
    rng = np.random.default_rng(seed)
    truth = rng.random((2, ny, nx)) * data_range + offset
    pred = truth + noise * data_range * rng.standard_normal(truth.shape)
    ours = ssim_frames(pred, truth, data_range)
    ref = _skimage_ssim(pred, truth, data_range)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_ssim_per_frame_data_range_and_identity():
    rng = np.random.default_rng(0)
    a = rng.random((3, 12, 12))
    b = a + 0.05 * rng.standard_normal(a.shape)
    ranges = np.array([0.5, 1.0, 2.0])
    ours = ssim_frames(b, a, ranges)
    for i, r in enumerate(ranges):
        assert ours[i] == pytest.approx(_skimage_ssim(b[i], a[i], r), abs=1e-9)
    np.testing.assert_allclose(ssim_frames(a, a, 1.0), 1.0)


def test_nan_masking_in_kernels():
    rng = np.random.default_rng(1)
    t = rng.random((2, 16, 16))
    p = t + 0.1
    p[0, 3, 4] = np.nan
    t[0, 10, 2] = np.nan
    p[1] = np.nan
    out = mae_frames(p, t)
    assert out[0] == pytest.approx(0.1)
    assert np.isnan(out[1])
    assert np.isnan(mse_frames(p, t)[1])
    s = ssim_frames(p, t, 1.0)
    assert np.isfinite(s[0])
    assert -1.0 <= s[0] <= 1.0
    assert np.isnan(s[1])
    # identical frames with holes stay perfectly similar
    tt = t.copy()
    assert ssim_frames(tt, t, 1.0)[0] == pytest.approx(1.0)
    # a masked SSIM is close to the unmasked one when only one pixel is missing
    full = t[0].copy()
    full[10, 2] = 0.5
    clean = ssim_frames(full + 0.1 * np.sin(full * 9), full, 1.0)
    holed = ssim_frames((full + 0.1 * np.sin(full * 9))[None], t[:1], 1.0)
    assert holed[0] == pytest.approx(clean, abs=0.02)


def test_kernel_errors():
    a = np.zeros((2, 12, 12))
    with pytest.raises(ValueError, match="same shape"):
        mae_frames(a, np.zeros((2, 12, 11)))
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim_frames(np.zeros((8, 8)), np.zeros((8, 8)), 1.0)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="data_range must be positive"):
            psnr_frames(a, a + 1, bad)
    with pytest.raises(ValueError, match="broadcast"):
        ssim_frames(a, a, np.ones(3))
    with pytest.raises(TypeError, match="real numeric"):
        mae_frames(np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)))


# ---------------------------------------------------------------- xarray metrics


@pytest.mark.parametrize("name", METRICS)
def test_metric_eager_and_chunked_dataarray(name):
    f = {"mae": mae, "mse": mse, "rmse": rmse, "psnr": psnr, "ssim": ssim}[name]
    pred, truth = _pair()
    eager = f(pred, truth)
    assert isinstance(eager, xr.DataArray)
    assert eager.dims == ("time",)
    assert eager.name == name
    assert eager.dtype == np.float64
    np.testing.assert_array_equal(eager["time"].values, truth["time"].values)
    with raise_if_dask_computes():
        lazy = f(pred.chunk({"time": 1, "y": 5}), truth.chunk({"time": 2}))
    assert lazy.chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_metric_values_match_kernels_and_skimage():
    pred, truth = _pair(nt=3)
    p, t = pred.values, truth.values
    rng = float(t.max() - t.min())
    np.testing.assert_allclose(mae(pred, truth).values, mae_frames(p, t))
    np.testing.assert_allclose(rmse(pred, truth).values, rmse_frames(p, t))
    np.testing.assert_allclose(psnr(pred, truth).values, psnr_frames(p, t, rng))
    np.testing.assert_allclose(ssim(pred, truth).values, _skimage_ssim(p, t, rng), atol=1e-6)


def test_data_range_default_and_explicit_are_stated():
    pred, truth = _pair()
    p = psnr(pred, truth)
    expected = float(truth.max() - truth.min())
    assert p.attrs["data_range"] == pytest.approx(expected)
    assert "truth.max() - truth.min()" in p.attrs["data_range_source"]
    assert float(p["data_range"]) == pytest.approx(expected)
    assert p.attrs["units"] == "dB"
    p2 = ssim(pred, truth, data_range=10.0)
    assert p2.attrs["data_range"] == 10.0
    assert p2.attrs["data_range_source"] == "given (data_range=)"
    np.testing.assert_allclose(p2.values, ssim_frames(pred.values, truth.values, 10.0))
    with raise_if_dask_computes():
        lazy = psnr(pred.chunk({"time": 1}), truth.chunk({"time": 1}))
    assert "lazy" in lazy.attrs["data_range_source"]
    assert "data_range" not in lazy.attrs
    assert float(lazy["data_range"]) == pytest.approx(expected)
    assert mae(pred, truth).attrs["units"] == "m"
    assert mse(pred, truth).attrs["units"] == "(m)2"
    with pytest.raises(ValueError, match="data_range must be a positive"):
        psnr(pred, truth, data_range=-1.0)
    flat = xr.zeros_like(truth)
    with pytest.raises(ValueError, match="constant reference"):
        psnr(flat + 1, flat)


def test_extra_member_dim_and_nan_masking():
    pred, truth = _pair(nt=2)
    t = xr.concat([truth, truth * 2], dim="member")
    p = xr.concat([pred, pred * 2], dim="member")
    p[0, 0, :3, :3] = np.nan
    out = mae(p, t)
    assert out.dims == ("member", "time")
    mask = ~np.isnan(p.values[0, 0])
    manual = np.abs(p.values[0, 0] - t.values[0, 0])[mask].mean()
    assert float(out[0, 0]) == pytest.approx(manual)
    s = ssim(p, t, data_range=4.0)
    assert np.isfinite(s.values).all()
    with raise_if_dask_computes():
        lazy = ssim(p.chunk({"member": 1}), t.chunk({"time": 1}), data_range=4.0)
    xr.testing.assert_allclose(lazy.compute(), s)


def test_dataset_metrics_and_mapping_data_range():
    truth = random_movie(3, 12, 12, variables=("h", "u"), dtype="float64")
    pred = truth + 0.1
    out = psnr(pred, truth, data_range={"h": 1.0, "u": 2.0})
    assert isinstance(out, xr.Dataset)
    np.testing.assert_allclose(out["h"].values, 20.0)
    np.testing.assert_allclose(out["u"].values, 10 * np.log10(4.0 / 0.01))
    assert float(out["data_range_u"]) == 2.0
    assert out["h"].attrs["data_range"] == 1.0
    with pytest.raises(ValueError, match="entry for variable 'u'"):
        psnr(pred, truth, data_range={"h": 1.0})
    with pytest.raises(TypeError, match="two Datasets or two DataArrays"):
        mae(pred["h"], truth)


def test_alignment_errors():
    pred, truth = _pair()
    shifted = pred.assign_coords(x=pred["x"] + 500.0)
    with pytest.raises(ValueError, match="different 'x' coordinates"):
        mae(shifted, truth)
    with pytest.raises(ValueError, match="differ in size along 'y'"):
        mae(pred.isel(y=slice(0, 8)), truth)
    with pytest.raises(ValueError, match=r"non-spatial dimension.*truth.sel"):
        mae(pred.isel(time=slice(1, None)), truth)
    with pytest.raises(ValueError, match="lacks the spatial dimension"):
        mae(pred.rename(x="col"), truth)
    with pytest.raises(ValueError, match="dims="):
        mae(pred, truth, dims=("y", "lon"))
    # float noise in coordinates is tolerated and the truth's coordinates are used
    wobbly = pred.assign_coords(x=pred["x"] * (1 + 1e-12))
    xr.testing.assert_allclose(mae(wobbly, truth), mae(pred, truth))


def test_ssim_small_frames_fail_early_even_when_lazy():
    small = random_movie(2, 8, 16, dtype="float64")["h"].chunk({"time": 1})
    with raise_if_dask_computes(), pytest.raises(ValueError, match=r"11 x 11.*'y' has 8"):
        ssim(small, small)
    with raise_if_dask_computes(), pytest.raises(ValueError, match="11 x 11"):
        evaluate(small, small)


def test_empty_and_non_numeric_inputs():
    empty = xr.DataArray(np.zeros((2, 0, 4)), dims=("time", "y", "x"))
    with pytest.raises(ValueError, match="empty along 'y'"):
        mae(empty, empty)
    strings = xr.DataArray(np.array([["a", "b"], ["c", "d"]]), dims=("y", "x"))
    with pytest.raises(TypeError, match="real numeric"):
        mae(strings, strings)


# ---------------------------------------------------------------- evaluate / compare / table


def test_evaluate_dataarray_and_accessor():
    pred, truth = _pair()
    table = evaluate(pred, truth)
    assert set(table.data_vars) == set(METRICS)
    assert table["ssim"].dims == ("time",)
    assert float(table["data_range"]) == pytest.approx(float(truth.max() - truth.min()))
    xr.testing.assert_allclose(table["psnr"], psnr(pred, truth))
    xr.testing.assert_allclose(pred.sr.evaluate(truth), table)


def test_evaluate_dataset_eager_and_chunked():
    truth = random_movie(4, 12, 14, variables=("h", "u"), dtype="float64")
    pred = truth * 1.05
    eager = evaluate(pred, truth)
    assert eager["mse"].dims == ("variable", "time")
    assert eager["variable"].values.tolist() == ["h", "u"]
    assert eager["data_range"].dims == ("variable",)
    np.testing.assert_allclose(
        eager["mse"].sel(variable="u").values, mse_frames(pred["u"].values, truth["u"].values)
    )
    with raise_if_dask_computes():
        lazy = evaluate(pred.chunk({"time": 1}), truth.chunk({"time": 2}))
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_compare_table_shape_and_order():
    pred, truth = _pair(nt=3)
    bad = truth + 1.0
    table = compare(truth, model=pred, offset=bad)
    assert table["candidate"].values.tolist() == ["model", "offset"]
    assert table["psnr"].dims == ("candidate", "time")
    np.testing.assert_allclose(table["mae"].sel(candidate="offset").values, 1.0)
    assert float(table["data_range"]) == pytest.approx(float(truth.max() - truth.min()))
    summary = table.mean("time")
    assert float(summary["ssim"].sel(candidate="model")) > float(
        summary["ssim"].sel(candidate="offset")
    )
    with raise_if_dask_computes():
        lazy = compare(truth.chunk({"time": 1}), model=pred.chunk({"time": 1}), offset=bad)
    xr.testing.assert_allclose(lazy.compute(), table)
    with pytest.raises(ValueError, match="at least one named candidate"):
        compare(truth)


def test_compare_datasets():
    truth = random_movie(3, 12, 12, variables=("h", "u"), dtype="float64")
    table = compare(truth, a=truth + 0.1, b=truth - 0.2, data_range={"h": 2.0, "u": 3.0})
    assert table["rmse"].dims == ("candidate", "variable", "time")
    np.testing.assert_allclose(table["rmse"].sel(candidate="b").values, 0.2)
    np.testing.assert_allclose(table["data_range"].values, [2.0, 3.0])


def test_format_table_text():
    pred, truth = _pair(nt=3)
    table = compare(truth, model=pred, offset=truth + 1.0, data_range=5.0)
    text = format_table(table)
    lines = text.splitlines()
    assert lines[0].split() == ["candidate", "MAE", "MSE", "RMSE", "PSNR", "(dB)", "SSIM"]
    assert lines[1].startswith("model")
    assert lines[2].split()[:2] == ["offset", "1.0000"]
    assert float(lines[2].split()[4]) == pytest.approx(10 * np.log10(25.0), abs=1e-3)
    assert "data range: 5" in lines[-1]
    assert "mean over time" in lines[-1]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    lazy_table = compare(truth.chunk({"time": 1}), model=pred, offset=truth + 1.0, data_range=5.0)
    assert format_table(lazy_table) == text
    single = format_table(evaluate(pred, truth))
    assert single.splitlines()[1].startswith("prediction")
    assert "truth.max() - truth.min()" in single
    ds_truth = random_movie(2, 12, 12, variables=("h", "u"), dtype="float64")
    multi = format_table(compare(ds_truth, a=ds_truth + 0.1))
    assert "a / h" in multi
    assert "a / u" in multi
    with pytest.raises(ValueError, match="lacks the metric variables"):
        format_table(table[["mae"]])


def test_lazy_metrics_graph_pickles():
    cloudpickle = pytest.importorskip("cloudpickle")
    pred, truth = _pair(nt=4)
    lazy = compare(truth.chunk({"time": 2}), model=pred.chunk({"time": 1}))
    restored = cloudpickle.loads(cloudpickle.dumps(lazy))
    xr.testing.assert_identical(restored.compute(), lazy.compute())


# ---------------------------------------------------------------------------- the protocol


def _rough_movie(nt: int = 5, n: int = 32, *, seed: int = 0, periodic: bool = True) -> xr.Dataset:
    """Periodic random fields with a k^-3 power spectrum (fine scales present)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    amp = np.where(k > 0, k, np.inf) ** -1.5
    fields = np.fft.ifft2(np.fft.fft2(rng.standard_normal((nt, n, n))) * amp).real
    fields /= fields.std()
    attrs = {"period": float(n)} if periodic else {}
    return xr.Dataset(
        {"h": (("time", "y", "x"), fields, {"units": "m"})},
        coords={
            "time": ("time", np.arange(nt) * 10.0, {"units": "s"}),
            "y": ("y", np.arange(n) + 0.5, attrs),
            "x": ("x", np.arange(n) + 0.5, attrs),
        },
    )


def test_score_values_are_the_protocol():
    truth = random_movie(4, 16, 16, dtype="float64", variables=("h", "u"))
    rng = np.random.default_rng(1)
    # errors growing over frames, so pooled and mean-per-frame PSNR differ
    noise = rng.standard_normal(truth["h"].shape) * np.array([0.001, 0.01, 0.1, 0.3])[:, None, None]
    pred = truth + noise
    table = score({"p": pred}, truth)
    for v in ("h", "u"):
        t, p = truth[v].values, pred[v].values
        rng_v = t.max() - t.min()
        mse_pooled = ((p - t) ** 2).mean()
        row = table.sel(candidate="p", variable=v)
        assert float(row["data_range"]) == pytest.approx(rng_v)
        assert float(row["mse"]) == pytest.approx(mse_pooled)
        assert float(row["psnr"]) == pytest.approx(10 * np.log10(rng_v**2 / mse_pooled))
        assert float(row["mae"]) == pytest.approx(np.abs(p - t).mean())
        frames = psnr_frames(p, t, rng_v)
        assert float(row["psnr_frames"]) == pytest.approx(frames.mean())
        assert float(row["ssim"]) == pytest.approx(ssim_frames(p, t, rng_v).mean())
    row = table.sel(candidate="p", variable="h")
    assert float(row["psnr_frames"]) > float(row["psnr"]) + 3  # dB mean != pooled MSE
    assert table["psnr"].attrs["units"] == "dB"
    assert table.attrs["frames"] == 4
    assert table.attrs["frames_excluded_spin_up"] == 0


def test_score_eager_and_chunked_lazily():
    truth = _rough_movie(6, 32)
    low = truth.coarsen(y=2, x=2).mean()
    pred = low.interp(y=truth.y, x=truth.x, kwargs={"fill_value": None})
    eager = score({"interp": pred, "truth": truth}, truth, crop=0)
    with raise_if_dask_computes():
        lazy = score(
            {"interp": pred.chunk({"time": 2}), "truth": truth.chunk({"time": 3})},
            truth.chunk({"time": 4}),
        )
    assert lazy["psnr"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager)
    assert float(eager["spectral"].sel(candidate="truth", variable="h")) == pytest.approx(1.0)


def test_score_spectral_ratio_flags_blur():
    truth = _rough_movie(4, 32, seed=2)
    blurred = truth.rolling(x=3, center=True, min_periods=1).mean()
    blurred = blurred.rolling(y=3, center=True, min_periods=1).mean()
    table = score({"blurred": blurred, "noisy": truth * 1.3}, truth)
    assert float(table["spectral"].sel(candidate="blurred", variable="h")) < 0.3
    assert float(table["spectral"].sel(candidate="noisy", variable="h")) == pytest.approx(1.69)


def test_band_power_sinusoids_and_window():
    _, x = np.mgrid[0:32, 0:32]
    inside = np.cos(2 * np.pi * 12 * x / 32)[None]  # 0.375 cycles per cell
    below = np.cos(2 * np.pi * 3 * x / 32)[None]
    assert band_power_frames(inside, periodic=(True, True))[0] == pytest.approx(2 * 512.0**2)
    assert band_power_frames(below, periodic=(True, True))[0] == pytest.approx(0.0, abs=1e-9)
    ramp = (x / 32.0)[None]  # smooth but not periodic: the wrap jump is not a fine scale
    windowed = band_power_frames(ramp, periodic=(False, False))[0]
    wrapped = band_power_frames(ramp, periodic=(True, True))[0]
    assert windowed < 1e-3 * wrapped
    with pytest.raises(ValueError, match="band"):
        band_power_frames(ramp, band=(0.5, 0.3))


def test_score_excludes_spin_up_frames():
    truth = random_movie(6, 16, 16, dtype="float64")
    truth["time"].attrs["spin_up_end"] = 120.0  # frames at 0 and 60 s are spin-up
    pred = truth.copy(deep=True)
    pred["h"][:2] += 5.0  # large errors only in the spin-up
    pred["h"][2:] += 0.01
    table = score({"p": pred}, truth, data_range=1.0)
    assert float(table["psnr"].sel(candidate="p", variable="h")) == pytest.approx(40.0)
    assert table.attrs["frames"] == 4
    assert table.attrs["frames_excluded_spin_up"] == 2
    assert "spin_up_end = 120.0" in format_table(table)
    kept = score({"p": pred}, truth, data_range=1.0, exclude_spin_up=False)
    assert float(kept["psnr"].sel(candidate="p", variable="h")) < 10
    truth["time"].attrs["spin_up_end"] = 1e9
    with pytest.raises(ValueError, match="before the spin-up"):
        score({"p": pred}, truth)


def test_spin_up_mask_datetime_and_errors():
    times = np.array(["2000-01-01", "2000-01-02", "2000-01-03"], dtype="datetime64[ns]")
    da = xr.DataArray(np.zeros(3), dims="time", coords={"time": times})
    assert spin_up_mask(da) is None
    da["time"].attrs["spin_up_end"] = "2000-01-02"
    np.testing.assert_array_equal(spin_up_mask(da), [False, True, True])
    da["time"].attrs["spin_up_end"] = "soon"
    with pytest.raises(ValueError, match="spin_up_end"):
        spin_up_mask(da)
    lags = xr.DataArray(np.zeros(3), dims="time", coords={"time": times - times[0]})
    lags["time"].attrs["spin_up_end"] = "36 hours"
    np.testing.assert_array_equal(spin_up_mask(lags), [False, False, True])
    lags["time"].attrs["spin_up_end"] = 3600.0  # a bare number has no unit for a timedelta
    with pytest.raises(ValueError, match="spin_up_end"):
        spin_up_mask(lags)


def test_score_crop_leaves_out_edges_of_non_periodic_dims():
    truth = random_movie(3, 20, 20, dtype="float64")
    pred = truth.copy(deep=True)
    pred["h"][:, :2, :] += 1.0  # bad edges only
    pred["h"][:, :, -2:] += 1.0
    full = score({"p": pred}, truth)
    cropped = score({"p": pred}, truth, crop=2)
    assert float(full["mse"].sel(candidate="p", variable="h")) > 0.1
    assert float(cropped["mse"].sel(candidate="p", variable="h")) == 0.0
    assert cropped.attrs["crop"] == "y=2, x=2"
    with pytest.raises(ValueError, match="leaves nothing"):
        score({"p": pred}, truth, crop=10)
    with pytest.raises(ValueError, match="crop must be"):
        score({"p": pred}, truth, crop=-1)


def test_score_periodic_dims_are_not_cropped_nor_reflected():
    truth = _rough_movie(3, 32)
    low = truth.coarsen(y=2, x=2).mean()
    for d in ("y", "x"):
        low[d].attrs["period"] = 32.0
    wrapped = low.sr.upscale(model="bicubic", scale=2)  # reads the period: wraps
    table = score({"bicubic": wrapped}, truth, crop=3)
    assert table.attrs["periodic"] == "y=True, x=True"
    assert table.attrs["crop"] == "y=0, x=0"
    reflected = low.sr.upscale(model="bicubic", scale=2, periodic=False)
    with pytest.raises(ValueError, match="reflected edges along y"):
        score({"bicubic": reflected}, truth)
    # scored as non-periodic with cropped edges, it is accepted
    table = score({"bicubic": reflected}, truth, periodic=False, crop=4)
    assert table.attrs["crop"] == "y=4, x=4"


def test_score_input_errors():
    truth = random_movie(3, 16, 16, dtype="float64", variables=("h", "u"))
    with pytest.raises(ValueError, match="non-empty mapping"):
        score({}, truth)
    with pytest.raises(ValueError, match=r"lacks the variables \['u'\]"):
        score({"p": truth[["h"]]}, truth)
    with pytest.raises(ValueError, match="same grid"):
        score({"p": truth.isel(x=slice(0, 8))}, truth)


def test_score_table_text():
    truth = random_movie(3, 16, 16, dtype="float64", variables=("h", "u"))
    text = format_table(score({"a": truth + 0.1, "b": truth * 1.0}, truth, data_range=2.0))
    lines = text.splitlines()
    assert lines[0].split() == [
        "variable", "candidate", "PSNR", "(dB)", "PSNR/frame", "SSIM", "MAE", "spectral"
    ]  # fmt: skip
    assert lines[1].split()[:3] == ["h", "a", "26.02"]
    assert "PSNR of the pooled MSE; data range h: 2, u: 2" in text
    assert "frames: 3 scored, 0 excluded" in text


@settings(max_examples=8, deadline=None)
@given(t_chunk=st.integers(1, 5), y_chunk=st.sampled_from([4, 8, 16]), data=st.data())
def test_score_is_chunk_invariant(t_chunk, y_chunk, data):
    truth = random_movie(5, 16, 16, dtype="float64", seed=4)
    pred = truth + 0.05 * np.sin(truth)
    eager = score({"p": pred}, truth)
    p_chunk = data.draw(st.integers(1, 5), label="prediction time chunk")
    lazy = score(
        {"p": pred.chunk({"time": p_chunk, "y": y_chunk})},
        truth.chunk({"time": t_chunk, "x": y_chunk}),
    )
    xr.testing.assert_allclose(lazy.compute(), eager, rtol=1e-10)


def test_score_ignores_nan_cells():
    truth = random_movie(3, 16, 16, dtype="float64")
    pred = truth + 0.1
    truth_masked = truth.copy(deep=True)
    truth_masked["h"][:, :3, :3] = np.nan  # land
    table = score({"p": pred}, truth_masked, data_range=1.0)
    row = table.sel(candidate="p", variable="h")
    assert float(row["mse"]) == pytest.approx(0.01)
    assert float(row["psnr"]) == pytest.approx(20.0)
    assert np.isfinite(float(row["spectral"]))


def test_score_dataarrays_whatever_their_names():
    truth = random_movie(3, 16, 16, dtype="float64")["h"]
    table = score({"p": (truth + 0.1).rename("prediction")}, truth.rename(None), data_range=1.0)
    assert float(table["psnr"].sel(candidate="p", variable="data")) == pytest.approx(20.0)

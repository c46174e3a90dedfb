"""The torch training metrics agree with the reference numpy/scikit-image definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from xsr.train._torch_metrics import mae, mse, psnr, ssim


def _pair(seed: int, shape=(3, 2, 20, 23)):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    b = a + 0.3 * rng.standard_normal(shape)
    return a, b


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), data_range=st.floats(0.5, 20.0))
def test_ssim_matches_skimage(seed, data_range):
    a, b = _pair(seed)
    got = ssim(torch.tensor(a), torch.tensor(b), data_range).numpy()
    for n in range(a.shape[0]):
        for c in range(a.shape[1]):
            ref = structural_similarity(
                a[n, c],
                b[n, c],
                data_range=data_range,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            assert got[n, c] == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_ssim_per_channel_range():
    a, b = _pair(1)
    got = ssim(torch.tensor(a), torch.tensor(b), torch.tensor([1.0, 5.0])).numpy()
    for c, rng in enumerate([1.0, 5.0]):
        ref = structural_similarity(
            a[0, c],
            b[0, c],
            data_range=rng,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert got[0, c] == pytest.approx(ref, rel=1e-6)


def test_agrees_with_xsr_metrics_kernels_including_nan_masks():
    from xsr import metrics

    a, b = _pair(2, shape=(4, 2, 24, 24))
    b[1, 0, :3, :5] = np.nan  # a masked corner
    ta, tb = torch.tensor(a), torch.tensor(b)
    mask = torch.isfinite(tb)
    rng = np.array([4.0, 2.0])
    np.testing.assert_allclose(mse(ta, tb, mask).numpy(), metrics.mse_frames(a, b), rtol=1e-12)
    np.testing.assert_allclose(mae(ta, tb, mask).numpy(), metrics.mae_frames(a, b), rtol=1e-12)
    np.testing.assert_allclose(
        psnr(ta, tb, torch.tensor(rng), mask).numpy(),
        metrics.psnr_frames(a, b, rng[None, :]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        ssim(ta, tb, torch.tensor(rng), mask).numpy(),
        metrics.ssim_frames(a, b, rng[None, :]),
        rtol=1e-6,
    )


def test_mse_mae_psnr_definitions():
    a, b = _pair(3)
    ta, tb = torch.tensor(a), torch.tensor(b)
    ref_mse = ((a - b) ** 2).mean(axis=(-2, -1))
    np.testing.assert_allclose(mse(ta, tb).numpy(), ref_mse)
    np.testing.assert_allclose(mae(ta, tb).numpy(), np.abs(a - b).mean(axis=(-2, -1)))
    np.testing.assert_allclose(psnr(ta, tb, 3.0).numpy(), 10 * np.log10(9.0 / ref_mse), rtol=1e-12)
    ranges = torch.tensor([2.0, 4.0], dtype=torch.float64)
    np.testing.assert_allclose(
        psnr(ta, tb, ranges).numpy(), 10 * np.log10(np.array([4.0, 16.0]) / ref_mse), rtol=1e-12
    )


def test_mask_ignores_pixels():
    a, b = _pair(4)
    mask = np.ones(a.shape, bool)
    mask[..., :5] = False
    b_nan = b.copy()
    b_nan[..., :5] = np.nan
    got = mse(torch.tensor(a), torch.tensor(b_nan), torch.tensor(mask)).numpy()
    np.testing.assert_allclose(got, ((a - b)[..., 5:] ** 2).mean(axis=(-2, -1)))
    got = mae(torch.tensor(a), torch.tensor(b_nan), torch.tensor(mask)).numpy()
    np.testing.assert_allclose(got, np.abs(a - b)[..., 5:].mean(axis=(-2, -1)))


def test_shape_errors():
    with pytest.raises(ValueError, match="N, C, H, W"):
        mse(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), 1.0)

"""Tests for xsr.train.batches: normalisation, NaN masking and policy, prefetch order, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xsr.testing import random_movie
from xsr.train.augment import variable_symmetry
from xsr.train.batches import BatchStream, augment, to_tensors
from xsr.train.config import FitConfig
from xsr.train.data import make_patches, select
from xsr.train.patches import Batch, PatchSet, stack_samples

CPU = torch.device("cpu")
NAMES = {"time_dim": "time", "y": "y", "x": "x"}


def _patches(ds, halo=0, window=1):
    hr = stack_samples(ds, ["h"], "time", ("y", "x"))
    return PatchSet(
        hr, hr.coarsen(y=2, x=2).mean(), variables=["h"], scale=2, window=window, patch_size=2,
        blocks=[(0, ds.sizes["time"])], time_dim="time", dims=("y", "x"), halo=halo,
    )  # fmt: skip


def _stream(nan_patches="raise", batch_size=3, window=1, names=NAMES):
    return BatchStream(
        np.array([1.0]), np.array([2.0]), window=window, batch_size=batch_size, device=CPU,
        nan_patches=nan_patches, names=names,
    )  # fmt: skip


def test_to_tensors_normalises_and_masks():
    lr = np.array([1.0, np.nan, np.inf, 5.0]).reshape(1, 1, 1, 2, 2)
    hr = np.array([[3.0, np.nan], [-np.inf, 1.0]]).reshape(1, 1, 2, 2)
    b = Batch(lr=lr, hr=hr, positions=np.zeros((1, 3), dtype=int))
    x, y, mask = to_tensors(b, np.array([1.0], "f4"), np.array([2.0], "f4"), 1, CPU)
    assert x.flatten().tolist() == [0.0, 0.0, 0.0, 2.0]
    assert y.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert mask.flatten().tolist() == [True, False, False, True]
    assert x.dtype == y.dtype == torch.float32


def test_stream_keeps_the_order_and_batch_size():
    ps = _patches(random_movie(2, 8, 8))
    order = np.arange(len(ps))[::-1]
    got = [lr for lr, _, _ in _stream()(ps, order, "training")]
    assert [len(b) for b in got] == [3, 3, 2]
    direct = to_tensors(ps.load(order[:3]), np.ones(1, "f4"), 2 * np.ones(1, "f4"), 1, CPU)[0]
    torch.testing.assert_close(got[0], direct)
    assert list(_stream()(ps, np.arange(0), "training")) == []


def test_window_models_get_the_time_axis():
    ps = _patches(random_movie(5, 8, 8), window=3)
    lr, hr, _ = next(iter(_stream(window=3)(ps, np.arange(2), "training")))
    assert lr.shape == (2, 1, 3, 2, 2)
    assert hr.shape == (2, 1, 4, 4)


def test_all_nan_patches_raise_with_their_place_or_are_skipped():
    ds = random_movie(2, 8, 8)
    ds["h"][:, :4, :4] = np.nan  # the first coarse 2x2 patch of each frame
    ps = _patches(ds)
    with pytest.raises(ValueError, match=r"training patch is entirely NaN.*y=0:4, x=0:4"):
        list(_stream()(ps, np.arange(len(ps)), "training"))
    kept = sum(len(lr) for lr, _, _ in _stream("skip")(ps, np.arange(len(ps)), "training"))
    assert kept == len(ps) - 2


def test_nan_message_gives_the_data_position_on_a_periodic_axis():
    ds = random_movie(10, 24, 24)
    ds["x"].attrs["period"] = 24000.0
    ds["h"][:, 8:12, 0:4] = np.nan  # at the seam of x: wrapped patches reach it from both sides
    cfg = FitConfig(patch_size=2, val_fraction=0.2, periodic="x")
    sel = select(ds, cfg)
    patches = make_patches(sel, cfg, scale=2, window=1, halo=2)
    stream = _stream(names={**NAMES, "periodic": sel.periodic})
    with pytest.raises(ValueError, match=r"y=8:12, x=0:4 of the high-resolution data"):
        list(stream(patches.train, np.arange(len(patches.train)), "training"))


def test_augment_keeps_pairs_aligned_and_skips_rectangles():
    rng = np.random.default_rng(0)
    x = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    sym = variable_symmetry(["h"])
    lr, hr, mask = augment(x, x.clone(), x > 3, rng, sym, True)
    torch.testing.assert_close(lr, hr)  # input and target see the same transform
    assert torch.equal(mask, lr > 3)
    rect = torch.zeros(2, 1, 4, 6)
    out = augment(rect, rect, rect > 0, np.random.default_rng(0), sym, True)
    assert out[0] is rect


def test_masked_inputs_continue_the_field_as_the_engine_does_at_inference():
    # a land strip (NaN) two cells wide beside a sloping sea: with fill_steps the cells next to
    # the sea take its neighbours' means, as xsr.engine.inference.extend_into_mask gives the
    # network at inference; cells beyond the reach stay 0 (the mean); without, all are 0
    from xsr.engine.inference import extend_into_mask

    lr = np.tile(np.arange(6, dtype="float32"), (1, 1, 1, 6, 1))
    lr[..., :, 3:] = np.nan
    b = Batch(lr=lr, hr=np.ones((1, 1, 12, 12)), positions=np.zeros((1, 3), dtype=int))
    zero, one = np.zeros(1, "f4"), np.ones(1, "f4")
    plain, _, _ = to_tensors(b, zero, one, 1, torch.device("cpu"))
    filled, _, _ = to_tensors(b, zero, one, 1, torch.device("cpu"), fill_steps=2)
    assert float(plain[..., 3:].abs().max()) == 0.0
    t = torch.from_numpy(lr[:, :, 0])
    engine = extend_into_mask(t, torch.isnan(t), 2)
    np.testing.assert_array_equal(filled[..., :5].numpy(), engine[..., :5].numpy())
    assert float(filled[..., 3].min()) == 2.0  # continued from the last sea column
    assert float(filled[..., 5].abs().max()) == 0.0  # beyond two steps: the mean

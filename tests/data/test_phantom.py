"""The moving Shepp-Logan phantom core."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.data.phantom import SHEPP_LOGAN, ellipses_at, iter_frames, motion, phantom, render


def test_static_phantom_has_the_modified_shepp_logan_values():
    img = render(SHEPP_LOGAN, 128, 128)
    # pixel values of the modified phantom: background 0, skull 1, brain 0.2, ventricles 0,
    # small features 0.3 (0.2 + 0.1); anti-aliasing adds values in between at edges only
    assert img.min() == 0.0
    assert img.max() == 1.0
    values, counts = np.unique(np.round(img, 6), return_counts=True)
    common = set(values[counts > 50].tolist())
    assert {0.0, 0.2, 0.3, 1.0} <= common
    # centre of the image is brain tissue; a corner is background; the top rim is skull
    assert img[64, 64] == pytest.approx(0.2)
    assert img[0, 0] == 0.0
    assert img[int((0.9 + 1) / 2 * 128), 64] == pytest.approx(1.0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ny=st.integers(4, 40), nx=st.integers(4, 40))
def test_values_in_unit_range_and_seeded(seed, ny, nx):
    a = phantom(ny, nx, frames=3, seed=seed)
    assert a.shape == (3, ny, nx)
    assert a.min() >= 0.0
    assert a.max() <= 1.0
    np.testing.assert_array_equal(a, phantom(ny, nx, frames=3, seed=seed))


def test_different_seeds_differ_and_frames_move():
    a = phantom(64, 64, frames=10, seed=0)
    b = phantom(64, 64, frames=10, seed=1)
    assert not np.array_equal(a, b)
    assert np.abs(a[-1] - a[0]).mean() > 1e-3  # it does move


def test_motion_is_smooth_between_frames():
    movie = phantom(96, 96, frames=40, seed=3)
    step = np.abs(np.diff(movie, axis=0)).mean(axis=(1, 2))
    far = np.abs(movie[20:] - movie[:-20]).mean(axis=(1, 2))
    # consecutive frames are much closer than frames 20 apart, and no frame jumps
    assert step.max() < 0.35 * far.mean()
    assert step.max() < 3 * step.mean()
    # anti-aliased edges: half a frame of motion lands between its neighbours
    track = motion(seed=3)
    mid = render(ellipses_at(track, 10.5), 96, 96)
    lo, hi = np.minimum(movie[10], movie[11]), np.maximum(movie[10], movie[11])
    assert np.mean((mid >= lo - 1e-9) & (mid <= hi + 1e-9)) > 0.99


def test_no_motion_gives_a_still_movie():
    movie = phantom(32, 32, frames=4, drift=0.0, deformation=0.0, rotation=0.0)
    for frame in movie:
        np.testing.assert_array_equal(frame, render(SHEPP_LOGAN, 32, 32))


def test_skull_and_brain_move_together():
    track = motion(seed=7)
    for t in (0.0, 13.0, 29.5):
        e = ellipses_at(track, t)
        np.testing.assert_allclose(e[1, 3:], e[0, 3:] + SHEPP_LOGAN[1, 3:] - SHEPP_LOGAN[0, 3:])
        np.testing.assert_allclose(e[1, 1:3] / SHEPP_LOGAN[1, 1:3], e[0, 1:3] / SHEPP_LOGAN[0, 1:3])


def test_generator_yields_the_same_frames():
    track = motion(seed=2)
    frames = list(iter_frames(16, 24, frames=3, track=track, dtype=np.float32))
    assert len(frames) == 3
    assert frames[0].dtype == np.float32
    np.testing.assert_array_equal(
        np.stack(frames), phantom(16, 24, frames=3, seed=2, dtype="float32")
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ny": 0}, "ny must be a positive integer"),
        ({"nx": 2.5}, "nx must be a positive integer"),
        ({"frames": 0}, "frames must be a positive integer"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"drift": -0.1}, "drift must be finite and >= 0"),
        ({"deformation": 1.0}, "deformation must be < 1"),
        ({"period": 0.0}, "period must be finite and > 0"),
        ({"dtype": "int16"}, "dtype must be 'float32' or 'float64'"),
        ({"dtype": None}, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        phantom(**{"ny": 8, "nx": 8, "frames": 2, **kwargs})

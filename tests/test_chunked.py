"""Tests of the array layer: halos, map_overlap, boundaries, chunk invariance."""

from __future__ import annotations

import warnings

import dask.array as da
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from toys import Toy2D, Toy3D

from xsr._chunked import HaloChunkWarning, halo_depths, upscale_array
from xsr.engine import ModelRef, infer
from xsr.testing import raise_if_dask_computes

TOYS = {"2d": Toy2D(), "3d": Toy3D(), "3d-2ch": Toy3D(channels=2, seed=4)}


def _ref(name: str) -> ModelRef:
    # Toys are not in the registry: from_model puts them in this process's model cache (again,
    # should another test have cleared it).
    return ModelRef.from_model(TOYS[name])


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * float(np.nanmax(np.abs(b))))


def test_halo_depths_from_model() -> None:
    # twice the receptive radius in space: the model's reach plus the fill of masked cells
    assert halo_depths(_ref("2d")) == (0, 4, 4)
    assert halo_depths(_ref("3d")) == (2, 4, 4)


@pytest.mark.parametrize("name", ["2d", "3d", "3d-2ch"])
def test_eager_matches_engine_on_padded_input(name: str) -> None:
    ref = _ref(name)
    c = ref.channels
    x = _data((2, c, 7, 9, 10))
    out = upscale_array(x, ref)
    assert out.shape == (2, c, 7, 18, 20)
    tr, r = ref.time_radius, ref.receptive_radius
    padded = np.pad(x, [(0, 0), (0, 0), (tr, tr), (r, r), (r, r)], mode="symmetric")
    expected = infer(ref, padded)[..., 2 * r : -2 * r, 2 * r : -2 * r]
    _close(out, expected)


@pytest.mark.parametrize("name", ["2d", "3d"])
def test_chunked_is_lazy_and_equal(name: str) -> None:
    ref = _ref(name)
    x = _data((2, 1, 9, 10, 12), seed=1)
    eager = upscale_array(x, ref)
    lazy_in = da.from_array(x, chunks=(1, 1, 3, 5, 6))
    with raise_if_dask_computes():
        lazy = upscale_array(lazy_in, ref)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[2] == (3, 3, 3)
    assert lazy.chunks[3] == (10, 10)
    assert lazy.chunks[4] == (12, 12)
    _close(lazy.compute(), eager)


chunk_sizes = st.integers(1, 12)


@settings(max_examples=12, deadline=None)
@given(
    which=st.sampled_from(["2d", "3d"]),
    ct=chunk_sizes,
    cy=chunk_sizes,
    cx=chunk_sizes,
    cb=st.integers(1, 2),
    periodic=st.tuples(st.booleans(), st.booleans()),
    time_boundary=st.sampled_from(["reflect", "nearest", "periodic"]),
)
def test_chunk_invariance_property(
    which: str,
    ct: int,
    cy: int,
    cx: int,
    cb: int,
    periodic: tuple[bool, bool],
    time_boundary: str,
) -> None:
    ref = _ref(which)
    x = _data((2, 1, 8, 9, 11), seed=2)
    kwargs = {"periodic": periodic, "time_boundary": time_boundary}
    eager = upscale_array(x, ref, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HaloChunkWarning)
        lazy = upscale_array(da.from_array(x, chunks=(cb, 1, ct, cy, cx)), ref, **kwargs)
    _close(lazy.compute(), eager)


def test_small_chunks_are_merged_with_a_warning() -> None:
    x = _data((1, 1, 8, 10, 10))
    with pytest.warns(HaloChunkWarning, match="merged"):
        lazy = upscale_array(da.from_array(x, chunks=(1, 1, 1, 10, 10)), _ref("3d"))
    assert min(lazy.chunks[2]) >= 2
    _close(lazy.compute(), upscale_array(x, _ref("3d")))


def test_axis_shorter_than_halo() -> None:
    x = _data((1, 1, 1, 2, 3))
    eager = upscale_array(x, _ref("3d"))
    assert eager.shape == (1, 1, 1, 4, 6)
    with pytest.warns(HaloChunkWarning):
        lazy = upscale_array(da.from_array(x, chunks=(1, 1, 1, 1, 1)), _ref("3d"))
    _close(lazy.compute(), eager)


@pytest.mark.parametrize("mode", ["reflect", "nearest", "periodic"])
def test_time_boundary_rules(mode: str) -> None:
    x = _data((1, 1, 6, 8, 8), seed=5)
    numpy_mode = {"reflect": "symmetric", "nearest": "edge", "periodic": "wrap"}[mode]
    padded = np.pad(x, [(0, 0), (0, 0), (2, 2), (2, 2), (2, 2)], mode="symmetric")
    padded = np.pad(padded[:, :, 2:-2], [(0, 0), (0, 0), (2, 2), (0, 0), (0, 0)], mode=numpy_mode)
    expected = infer(_ref("3d"), padded)[..., 4:-4, 4:-4]
    _close(upscale_array(x, _ref("3d"), time_boundary=mode), expected)


@pytest.mark.parametrize("chunked", [False, True])
def test_periodic_wrap_has_no_seam(chunked: bool) -> None:
    x = _data((1, 1, 3, 8, 12), seed=6)
    k = 5

    def run(a: np.ndarray) -> np.ndarray:
        arr = da.from_array(a, chunks=(1, 1, 3, 8, 4)) if chunked else a
        out = upscale_array(arr, _ref("2d"), periodic=(False, True))
        return np.asarray(out)

    base = run(x)
    rolled = np.roll(run(np.roll(x, k, axis=-1)), -2 * k, axis=-1)
    _close(rolled, base)
    # without the wrap the two differ near the seam
    plain = upscale_array(np.roll(x, k, axis=-1), _ref("2d"))
    assert np.abs(np.roll(plain, -2 * k, axis=-1) - base).max() > 1e-3


def test_leading_batch_axes_and_int_input() -> None:
    x = (_data((2, 3, 1, 4, 6, 6)) * 10).astype("int32")
    out = upscale_array(x, _ref("2d"))
    assert out.dtype == np.float32
    assert out.shape == (2, 3, 1, 4, 12, 12)
    _close(out[1, 2], upscale_array(x[1, 2].astype("float32"), _ref("2d")))
    lazy = upscale_array(da.from_array(x, chunks=(1, 2, 1, 2, 6, 6)), _ref("2d"))
    assert lazy.dtype == np.float32
    _close(lazy.compute(), out)


def test_conserve_through_the_array_layer() -> None:
    pytest.importorskip("xsr.models.consistency")
    x = _data((1, 1, 6, 8, 8)) + 3.0
    out = upscale_array(
        da.from_array(x, chunks=(1, 1, 3, 4, 4)), _ref("3d"), conserve=True
    ).compute()
    np.testing.assert_allclose(out.reshape(1, 1, 6, 8, 2, 8, 2).mean(axis=(4, 6)), x, atol=1e-5)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((np.zeros((4, 4, 4)), _ref("2d")), {}, ValueError, "expand_dims"),
        ((np.zeros((2, 4, 4, 4)), _ref("2d")), {}, ValueError, "channel"),
        ((np.zeros((1, 4, 4, 4)), Toy2D()), {}, TypeError, "ModelRef"),
        (
            (np.zeros((1, 4, 4, 4)), _ref("2d")),
            {"time_boundary": "wrap"},
            ValueError,
            "time_boundary",
        ),
        ((np.zeros((1, 4, 4, 4)), _ref("2d")), {"periodic": (True,)}, ValueError, "periodic"),
        ((np.zeros((1, 4, 4, 4), dtype=bool), _ref("2d")), {}, ValueError, "numeric"),
    ],
)
def test_errors(args: tuple, kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        upscale_array(*args, **kwargs)


def test_tasks_share_one_model_key_instead_of_copying_weights() -> None:
    import pickle

    from xsr.models import get_model

    ref = ModelRef.from_model(get_model("srnet3d", scale=2, channels=1))
    x = da.from_array(_data((1, 1, 12, 8, 8)), chunks=(1, 1, 3, 8, 8))
    lazy = upscale_array(x, ref)
    graph = dict(lazy.__dask_graph__())
    sizes = [len(pickle.dumps(task)) for task in graph.values()]
    heavy = [s for s in sizes if s > len(ref.weights) // 2]
    assert len(heavy) == 1  # the reference itself, once
    assert len(graph) > 4

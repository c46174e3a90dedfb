"""Tests of :mod:`xsr.engine.inference` and the engine as a whole (numpy + torch only)."""

from __future__ import annotations

import pickle
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn
from toys import Toy2D, Toy3D

from xsr import engine
from xsr.engine import (
    ModelRef,
    cache_info,
    clear_model_cache,
    get_model_cached,
    infer,
    inference,
    planning,
    reference,
    threads,
)
from xsr.models import get_model


def _frames(shape: tuple[int, ...], seed: int = 0, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * float(np.nanmax(np.abs(b))))


def _reference(model: nn.Module, frames: np.ndarray) -> np.ndarray:
    """Naive loop: one sample at a time, no batching, no tiling."""
    b, c, t, h, w = frames.shape
    tr, win, s = model.time_radius, model.window, model.scale
    out = np.empty((b, c, t - 2 * tr, s * h, s * w), dtype="float32")
    with torch.no_grad():
        for i in range(b):
            for k in range(t - 2 * tr):
                x = torch.from_numpy(frames[i, :, k : k + win].astype("float32"))
                x = x[:, 0] if win == 1 else x
                out[i, :, k] = model(x[None])[0].numpy()
    return out


@pytest.mark.parametrize("model_cls", [Toy2D, Toy3D])
def test_infer_matches_naive_loop(model_cls: type[nn.Module]) -> None:
    model = model_cls()
    frames = _frames((2, 1, 7, 9, 11))
    out = infer(model, frames, device="cpu")
    assert out.shape == (2, 1, 7 - 2 * model.time_radius, 18, 22)
    assert out.dtype == np.float32
    _close(out, _reference(model, frames))


def test_infer_from_ref_equals_module() -> None:
    model = Toy3D(channels=2)
    frames = _frames((1, 2, 6, 8, 8))
    ref = ModelRef.from_model(model)
    np.testing.assert_array_equal(infer(ref, frames), infer(model, frames))


@settings(max_examples=8, deadline=None)
@given(
    ty=st.integers(1, 12),
    tx=st.integers(1, 12),
    batch=st.integers(1, 4),
    three_d=st.booleans(),
)
def test_tiling_and_batching_do_not_change_output(
    ty: int, tx: int, batch: int, three_d: bool
) -> None:
    model = Toy3D() if three_d else Toy2D()
    frames = _frames((1, 1, 7, 10, 12), seed=3)
    whole = infer(model, frames, tile=False, batch_size=100)
    tiled = infer(model, frames, tile=(ty, tx), batch_size=batch)
    _close(tiled, whole)


def test_automatic_tiling_beyond_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    model = Toy2D()
    frames = _frames((1, 1, 2, 40, 40))
    whole = infer(model, frames, tile=False)
    monkeypatch.setattr(planning, "MEMORY_BUDGET_BYTES", 4 * 64 * 80 * 80 // 3)
    monkeypatch.setattr(inference, "MEMORY_BUDGET_BYTES", 4 * 64 * 80 * 80 // 3)
    bs, (ty, tx) = planning.plan(model, 2, 40, 40, "auto", None)
    assert (ty, tx) != (40, 40)
    assert bs >= 1
    _close(infer(model, frames), whole)


@pytest.mark.parametrize("model_cls", [Toy2D, Toy3D])
def test_margin_is_input_only(model_cls: type[nn.Module]) -> None:
    model = model_cls()
    frames = _frames((1, 1, 6, 10, 12), seed=4)
    frames[0, 0, 3, 5, 6] = np.nan
    full = infer(model, frames, conserve=True)
    inner = infer(model, frames, conserve=True, margin=(2, 3))
    assert inner.shape[-2:] == (12, 12)
    _close(inner, full[..., 4:-4, 6:-6])
    with pytest.raises(ValueError, match="margin"):
        infer(model, frames, margin=5)
    with pytest.raises(ValueError, match="margin"):
        infer(model, frames, margin=(-1, 0))


def test_dtypes() -> None:
    model = Toy2D()
    x64 = _frames((1, 1, 2, 6, 6), dtype="float64")
    out64 = infer(model, x64)
    assert out64.dtype == np.float64
    _close(out64, infer(model, x64.astype("float32")))
    xi = (x64 * 10).astype("int16")
    outi = infer(model, xi)
    assert outi.dtype == np.float32
    _close(outi, infer(model, xi.astype("float32")))


def test_normalisation_pair_and_card() -> None:
    model = Toy2D(channels=2)
    frames = _frames((1, 2, 3, 6, 6)) * 5.0 + 100.0
    mean, std = np.array([100.0, 99.0]), np.array([5.0, 4.0])
    expected = _reference(model, (frames - mean[:, None, None, None]) / std[:, None, None, None])
    expected = expected * std[:, None, None, None] + mean[:, None, None, None]
    _close(infer(model, frames, normalisation=(mean, std)), expected)
    model.card = {
        "variables": [{"name": "a", "units": "m"}, {"name": "b", "units": "m"}],
        "normalisation": {"b": {"mean": 99.0, "std": 4.0}, "a": {"mean": 100.0, "std": 5.0}},
    }
    _close(infer(model, frames), expected)
    plain = infer(model, frames, normalisation=False)
    assert np.abs(plain - expected).max() > 1e-3


def test_nan_mask_filled_then_reapplied() -> None:
    model = Toy2D()
    frames = _frames((1, 1, 2, 12, 12))
    frames[0, 0, 0, 2:4, 3:5] = np.nan
    frames[0, 0, 1, 9, 9] = np.nan
    out = infer(model, frames)
    fine = np.isnan(out)
    expected = np.isnan(frames).repeat(2, axis=3).repeat(2, axis=4)
    np.testing.assert_array_equal(fine, expected)
    # masked cells near valid ones continue the field, the rest take the frame's mean
    filled = infer(model, grown_fill(frames, model.receptive_radius))
    _close(np.where(expected, filled, out), filled)


def grown_fill(frames: np.ndarray, steps: int) -> np.ndarray:
    """Reference of the engine's fill, by loops: grow the valid cells by neighbour means."""
    out = np.array(frames, dtype="float64")
    for idx in np.ndindex(out.shape[:-2]):
        f = out[idx]
        valid = ~np.isnan(f)
        mean = f[valid].mean()
        for _ in range(steps):
            new = f.copy()
            grown = valid.copy()
            for i, j in zip(*np.nonzero(~valid)):
                nb = f[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
                ok = valid[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
                if ok.any():
                    new[i, j], grown[i, j] = nb[ok].mean(), True
            f, valid = new, grown
        out[idx] = np.where(valid, f, mean)
    return out.astype(frames.dtype)


def test_fill_grows_the_field_into_the_mask() -> None:
    frames = np.tile(np.arange(10, dtype="float32"), (1, 1, 1, 10, 1))  # a ramp along x
    frames[..., :, 6:] = np.nan
    got = inference.extend_into_mask(
        torch.from_numpy(frames), torch.from_numpy(np.isnan(frames)), 2
    ).numpy()
    reached = ~np.isnan(got)
    np.testing.assert_allclose(got[reached], grown_fill(frames, 2)[reached], rtol=1e-6)
    np.testing.assert_array_equal(got[..., 6:8], 5.0)  # the ramp's edge value, carried on
    assert np.isnan(got[..., 8:]).all()  # beyond 2 steps: left to the frame mean


def test_conserve_block_means() -> None:
    pytest.importorskip("xsr.models.consistency")
    model = Toy3D()
    frames = _frames((2, 1, 6, 8, 10)) * 3.0 + 7.0
    frames[0, 0, 3, 1, 1] = np.nan
    out = infer(model, frames, conserve=True)
    block = out.reshape(2, 1, 2, 8, 2, 10, 2).mean(axis=(4, 6))
    centre = frames[:, :, 2:4]
    np.testing.assert_allclose(block, centre, rtol=0, atol=1e-5)
    assert np.isnan(out[0, 0, 1, 2:4, 2:4]).all()


@pytest.mark.parametrize(
    ("shape", "kwargs", "match"),
    [
        ((1, 1, 8, 8), {}, "B, C, T, H, W"),
        ((1, 2, 3, 8, 8), {}, "channel"),
        ((1, 1, 3, 8, 8), {"model": "3d"}, "window of 5"),
        ((1, 1, 3, 8, 8), {"batch_size": 0}, "batch_size"),
        ((1, 1, 3, 8, 8), {"batch_size": "big"}, "batch_size"),
        ((1, 1, 3, 8, 8), {"tile": (0, 3)}, "tile"),
        ((1, 1, 3, 8, 8), {"normalisation": ([0.0], [-1.0])}, "positive"),
        ((1, 1, 3, 8, 8), {"device": "gpu"}, "device"),
    ],
)
def test_infer_errors(shape: tuple[int, ...], kwargs: dict, match: str) -> None:
    model = Toy3D() if kwargs.pop("model", None) == "3d" else Toy2D()
    with pytest.raises(ValueError, match=match):
        infer(model, np.zeros(shape, dtype="float32"), **kwargs)


def test_not_a_model() -> None:
    with pytest.raises(TypeError, match="xsr model"):
        infer(nn.Conv2d(1, 1, 3), np.zeros((1, 1, 1, 4, 4), dtype="float32"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no"):
        engine.resolve_device("cuda")
    monkeypatch.delenv("XSR_DEVICE", raising=False)
    assert engine.resolve_device("auto").type == "cpu"
    monkeypatch.setenv("XSR_DEVICE", "cuda")
    with pytest.raises(ValueError, match=r"XSR_DEVICE='cuda'.*asks for a GPU"):
        engine.resolve_device("auto")


def test_xsr_device_sets_what_auto_means(monkeypatch: pytest.MonkeyPatch) -> None:
    from xsr.train.trainer import resolve_device as train_device

    for value in ("cpu", " cpu "):
        monkeypatch.setenv("XSR_DEVICE", value)
        assert engine.resolve_device("auto") == torch.device("cpu")
        assert train_device("auto") == torch.device("cpu")
    assert engine.resolve_device("cpu") == torch.device("cpu")  # explicit devices win
    monkeypatch.setenv("XSR_DEVICE", "toaster")
    with pytest.raises(ValueError, match="not a torch device"):
        engine.resolve_device("auto")
    with pytest.raises(ValueError, match="not a torch device"):
        train_device("auto")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["fsrcnn-swe-x2", "srnet3d-swe-x2", "xsrnet-swe-x4"])
def test_cuda_matches_cpu(name: str) -> None:
    # full float32 on the GPU (no TF32), the fused FSRCNN tail included; whole frames in one
    # batch there against cache-sized tiles here
    from xsr.models import load_model

    model = load_model(name)
    frames = np.random.default_rng(0).normal(size=(1, model.channels, 7, 40, 36))
    frames = frames.astype("float32")
    conv = torch.backends.cudnn.conv.fp32_precision
    gpu = infer(model, frames, device="cuda")
    assert torch.backends.cudnn.conv.fp32_precision == conv  # restored
    cpu = infer(model, frames, device="cpu")
    span = float(cpu.max() - cpu.min())
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=2e-6 * span)


def test_model_ref_pickles_and_caches() -> None:
    clear_model_cache()
    model = Toy2D(seed=5)
    ref = ModelRef.from_model(model)
    clone = pickle.loads(pickle.dumps(ref))
    assert clone == ref
    assert hash(clone) == hash(ref)
    assert clone.weights == ref.weights
    first = get_model_cached(clone)
    assert get_model_cached(ref) is first
    assert first is not model  # a frozen copy, not the caller's module
    info = cache_info()
    assert info["builds"] == 0
    assert info["hits"] == 2
    # changing the weights changes the key
    with torch.no_grad():
        model.c1.bias.add_(1.0)
    assert ModelRef.from_model(model).key != ref.key
    assert ModelRef.from_model(Toy2D(scale=3, seed=5)).key != ref.key


def test_model_ref_rebuilds_from_registry() -> None:
    from xsr import models

    model = models.get_model("fsrcnn", scale=2, channels=1)
    ref = ModelRef.from_model(model)
    clear_model_cache()
    built = get_model_cached(ref)
    assert cache_info()["builds"] == 1
    get_model_cached(pickle.loads(pickle.dumps(ref)))
    assert cache_info()["builds"] == 1
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model.eval()(x))


def test_cache_is_bounded() -> None:
    clear_model_cache()
    for seed in range(reference._CACHE_SIZE + 3):
        ModelRef.from_model(Toy2D(seed=seed))
    assert cache_info()["size"] == reference._CACHE_SIZE


@pytest.mark.parametrize("name", ["fsrcnn-swe-x2", "xsrnet-swe-x2"])
def test_bfloat16_precision_is_close_but_not_exact(name: str) -> None:
    from xsr.models import load_model

    model = load_model(name)
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(1, model.channels, 4, 24, 20)).astype("float32")
    exact = infer(model, frames)
    rough = infer(model, frames, precision="bfloat16")
    assert rough.dtype == np.float32
    span = float(exact.max() - exact.min())
    err = float(np.abs(rough - exact).max())
    assert 0 < err < 2e-2 * span  # bfloat16 keeps 8 significant bits


def test_bad_precision_names_the_argument() -> None:
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'bfloat16'"):
        infer(Toy2D(), _frames((1, 1, 2, 8, 8)), precision="float16")
    with pytest.raises(ValueError, match="precision"):
        engine.check_options(precision="fp32")


def test_cpu_model_calls_from_many_threads_run_on_one_model_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import concurrent.futures
    import threading

    seen: set[str] = set()
    original = inference._forward

    def spy(module: nn.Module, inp: torch.Tensor, *, pair: bool) -> torch.Tensor:
        seen.add(threading.current_thread().name)
        assert torch.is_inference_mode_enabled()  # the context is entered on the model thread
        return original(module, inp, pair=pair)

    monkeypatch.setattr(inference, "_forward", spy)
    model = Toy3D(channels=2)
    stacks = [_frames((1, 2, 6, 8, 8)) + k for k in range(4)]
    expected = [infer(model, f, device="cpu") for f in stacks]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda f: infer(model, f, device="cpu"), stacks))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert seen
    assert all(name.startswith("xsr-model") for name in seen)
    # errors raised on the model thread reach the caller
    monkeypatch.setattr(inference, "_forward", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        infer(model, stacks[0], device="cpu")


def test_idle_openmp_threads_of_the_caller_are_released() -> None:
    """A thread's idle OpenMP workers exit on release (GNU OpenMP), in a fresh process."""
    import subprocess
    import sys

    code = """
import os, time, torch
from xsr import engine
def count():
    return len(os.listdir('/proc/self/task'))
torch.set_num_threads(2)
before = count()
torch.ones(1 << 22).sum()  # a parallel operation: this thread gets an OpenMP worker
started = count()
released = engine.release_idle_openmp_threads()
time.sleep(0.05)
print(before, started, count(), released, bool(engine.threads._gomp_pause_functions()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    before, started, after, released, found = out.stdout.split()
    torch_libs = Path(torch.__file__).parent / "lib"
    ships_gomp = any(p.name.startswith("libgomp") for p in torch_libs.glob("*"))
    if found == "False" and not ships_gomp:  # e.g. LLVM's or Intel's OpenMP: nothing to release
        pytest.skip("no GNU OpenMP runtime in this torch build (nothing to release)")
    assert found == "True", "torch ships libgomp, but xsr did not find it in /proc/self/maps"
    assert released == "True"
    assert int(started) == int(before) + 1
    assert int(after) == int(before)


def test_infer_and_graph_building_release_the_callers_idle_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from xsr import _chunked

    calls: list[str] = []

    def spy() -> bool:
        calls.append(threading.current_thread().name)
        return True

    monkeypatch.setattr(threads, "release_idle_openmp_threads", spy)
    monkeypatch.setattr(engine, "release_idle_openmp_threads", spy)
    model = Toy3D(channels=2)
    infer(model, _frames((1, 2, 6, 8, 8)), device="cpu")
    assert calls == [threading.current_thread().name]  # the caller's, not the model thread's
    calls.clear()
    _chunked.upscale_array(_frames((2, 6, 8, 8)), ModelRef.from_model(model))
    assert calls[0] == threading.current_thread().name


def test_automatic_tiles_are_wide_against_the_halo() -> None:
    """CPU tiles are cache-sized but at least HALO_TILE_FACTOR receptive radii wide."""
    small = get_model("fsrcnn", scale=2, channels=1)  # radius 4: 128-pixel tiles
    wide = get_model("xsrnet", scale=2, channels=1)  # radius 8: whole 256-pixel frames
    assert planning.plan(small, 8, 256, 256, "auto", None)[1] == (128, 128)
    assert planning.plan(wide, 8, 256, 256, "auto", None)[1] == (256, 256)
    assert planning.plan(wide, 8, 512, 512, "auto", None)[1] == (256, 256)


@pytest.mark.parametrize("margin", [0, 8])
def test_tiles_with_a_full_halo_skip_the_halo_through_forward_core(
    margin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xsr.engine.fast.xsrnet import FastXSRNet

    torch.manual_seed(2)
    model = get_model("xsrnet", scale=2, channels=1, window=3).eval()  # radius 8
    frames = _frames((1, 1, 5, 40 + 2 * margin, 44 + 2 * margin), seed=6)
    calls = []
    core = FastXSRNet.core

    def spy(self: FastXSRNet, x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape[-2:]))
        return core(self, x)

    monkeypatch.setattr(FastXSRNet, "core", spy)
    tiled = infer(model, frames, margin=margin, tile=(10, 11), batch_size=3)
    with torch.no_grad():  # the whole padded forward, cropped
        x = torch.from_numpy(frames[0, 0])
        windows = torch.stack([x[k : k + 3] for k in range(3)])[:, None]
        m2 = 2 * margin
        whole = model(windows)[
            :, :, m2 : windows.shape[-2] * 2 - m2, m2 : windows.shape[-1] * 2 - m2
        ]
    _close(tiled[0, 0], whole[:, 0].numpy())
    # with a margin every tile has its full halo; without, only the tiles inside the frame
    n_tiles = 4 * 4 if margin else 2 * 2
    assert len(calls) == n_tiles
    assert set(calls) == {(10 + 16, 11 + 16)}

"""Tests of :mod:`xsr.engine.fast.fsrcnn` (FSRCNN's tail at low resolution, valid core)."""

from __future__ import annotations

import threading

import pytest
import torch
from torch.nn import functional as F
from toys import assert_first_layer_channels_last, crop_core, fast_form, randomise

from xsr.engine.fast import fsrcnn
from xsr.models.registry import get_model


def _tail(scale: int = 2, channels: int = 2) -> fsrcnn.SubPixelTail:
    fast = fast_form(randomise(get_model("fsrcnn", scale=scale, channels=channels)))
    assert fast.tail is not None
    return fast.tail


def _conv_form(tail: fsrcnn.SubPixelTail, x: torch.Tensor, *, valid: bool = False):
    """The tail as convolutions (the GPU and bfloat16 form)."""
    z = F.prelu(F.conv2d(x, tail.w_up, tail.b_up), tail.slope)
    z = F.conv2d(z, tail.w_low, tail.b_low, padding=0 if valid else tail.radius)
    return F.pixel_shuffle(z, tail.scale)


@pytest.mark.parametrize(
    ("config", "fusable"),
    [({}, True), ({"deconv_kernel": 5}, False), ({"variant": "original"}, False)],
)
def test_only_the_report_variants_tail_is_fused(config: dict, fusable: bool) -> None:
    fast = fast_form(get_model("fsrcnn", scale=2, **config))
    assert (fast.tail is not None) == fusable


def test_the_fused_tail_equals_the_layers_everywhere() -> None:
    model = randomise(get_model("fsrcnn", scale=3, channels=2)).eval()
    tail = fast_form(model).tail
    x = torch.randn(2, 32, 7, 9)
    with torch.no_grad():
        ref = model.reconstruct[1](model.reconstruct[0](model.upsample(x)))
        got = tail(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_a_chain_runs_its_fsrcnn_stage_fused() -> None:
    chain = get_model(
        "chain", stages=[{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]
    )
    assert fast_form(chain).model.stages[0].tail is not None


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("block", [5, 64, 10_000])
def test_cpu_blocked_tail_equals_the_convolution_form(scale: int, block: int) -> None:
    """The CPU form (blocked matrix products, shifted tap sums) against the convolutions."""
    tail = _tail(scale)
    tail.block = block  # several blocks, the last one shorter, or one block
    x = torch.randn(3, 32, 6, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        conv = _conv_form(tail, x)
        blocked = tail(x)
        plain = tail(x.contiguous())  # NCHW input: the same
        valid = tail(x, valid=True)  # the taps' biases are added once, after the blocks
    assert blocked.shape == conv.shape == (3, 2, 6 * scale, 11 * scale)
    torch.testing.assert_close(blocked, conv, rtol=1e-5, atol=1e-5 * float(conv.abs().max()))
    torch.testing.assert_close(plain, blocked)
    n = scale * tail.radius
    inner = conv[..., n:-n, n:-n]
    assert float(tail.g_bias.abs().max()) > 0  # the folded biases are really exercised
    torch.testing.assert_close(valid, inner, rtol=1e-5, atol=1e-5 * float(inner.abs().max()))


def test_cpu_autocast_keeps_the_convolution_form() -> None:
    model = randomise(get_model("fsrcnn", scale=2)).eval()
    fast = fast_form(model)
    x = torch.randn(2, 1, 9, 8)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fast(x)
    assert low.dtype == torch.bfloat16
    assert float((low.float() - ref).abs().max()) < 0.05 * float(ref.abs().max())


def test_fused_tail_gives_input_gradients_and_takes_empty_input() -> None:
    """Inputs that need a gradient, and empty ones, take the convolution form."""
    model = randomise(get_model("fsrcnn", scale=2)).eval()
    fast = fast_form(model)
    x = torch.randn(1, 1, 5, 6, requires_grad=True)
    model(x).square().sum().backward()
    ref = x.grad.clone()
    x.grad = None
    fast(x).square().sum().backward()
    torch.testing.assert_close(x.grad, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    assert fast.tail(torch.zeros(0, 32, 4, 4)).shape == (0, 1, 8, 8)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    "config",
    [{}, {"channels": 2, "residual": True}, {"output_activation": "prelu"}, {"conserve": True}],
)
def test_forward_core_equals_the_cropped_forward(scale: int, config: dict) -> None:
    model = randomise(get_model("fsrcnn", scale=scale, **config)).eval()
    r = model.receptive_radius
    x = torch.randn(2, model.channels, 2 * r + 9, 2 * r + 7)
    with torch.no_grad():
        full = crop_core(model(x), model)
        core = fast_form(model).forward_core(x)
    assert core.shape == full.shape == (2, model.channels, 9 * scale, 7 * scale)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5 * float(full.abs().max()))


@pytest.mark.parametrize("form", ["blocked", "convolution"])
def test_valid_tail_is_the_interior_of_the_padded_tail(form: str) -> None:
    tail, s = _tail(), 2
    x = torch.randn(2, 32, 9, 12).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        padded = tail(x)
        if form == "convolution":  # the GPU and bfloat16 form, reached here via autograd
            x.requires_grad_(True)
            with torch.enable_grad():
                valid = tail(x, valid=True).detach()
        else:
            valid = tail(x, valid=True)
    r = tail.radius
    assert valid.shape == (2, 2, s * (9 - 2 * r), s * (12 - 2 * r))
    inner = padded[..., s * r : -s * r, s * r : -s * r]
    torch.testing.assert_close(valid, inner, rtol=1e-5, atol=1e-5 * float(inner.abs().max()))


def test_blocked_tail_scratch_is_reused_per_thread_and_never_leaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tail's scratch buffers: reused between calls of a thread, private to each thread,
    not kept above the cap, and never carrying one call's values into another's result."""
    tail = _tail()
    tail.block = 40  # several blocks per call
    gen = torch.Generator().manual_seed(3)
    inputs = [torch.randn(n, 32, h, w, generator=gen) for n, h, w in [(2, 12, 9), (1, 5, 6)]]
    with torch.no_grad():
        expected = [tail(x, valid=v) for x in inputs for v in (False, True)]
        conv = [_conv_form(tail, x, valid=v) for x in inputs for v in (False, True)]
        for e, c in zip(expected, conv):
            torch.testing.assert_close(e, c, rtol=1e-5, atol=1e-5 * float(c.abs().max()))
        kept = fsrcnn._SCRATCH.q
        again = [tail(x, valid=v) for x in reversed(inputs) for v in (False, True)]
        assert fsrcnn._SCRATCH.q is kept  # the larger buffer serves the smaller call
        for e, a in zip(expected, again[2:] + again[:2]):
            torch.testing.assert_close(a, e, rtol=0, atol=0)

        results, seen = {}, {}

        def run(k: int) -> None:
            results[k] = [
                tail(x, valid=v) for _ in range(20) for x in inputs for v in (False, True)
            ]
            seen[k] = fsrcnn._SCRATCH.q

        threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(b) for b in seen.values()} | {id(kept)}) == 4  # one set per thread
        for out in results.values():
            for k, y in enumerate(out):
                torch.testing.assert_close(y, expected[k % 4], rtol=0, atol=0)

        monkeypatch.setattr(fsrcnn, "SCRATCH_MAX_BYTES", 1024)  # above the cap: not kept
        big = tail(inputs[0])
        assert fsrcnn._SCRATCH.q is kept
        torch.testing.assert_close(big, expected[0], rtol=0, atol=0)


def test_one_variable_first_layer_runs_channels_last_under_the_engine() -> None:
    """Its output is channels-last, so the next layer copies nothing."""
    config = {"scale": 2, "variant": "report"}
    r = get_model("fsrcnn", **config).receptive_radius
    x = torch.randn(2, 1, 2 * r + 6, 2 * r + 5)
    assert_first_layer_channels_last("fsrcnn", config, "features.1", x, core=True)

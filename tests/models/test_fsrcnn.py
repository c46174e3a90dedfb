"""FSRCNN: the original form and the report's variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from toys import assert_first_layer_channels_last, randomise

from xsr.models.registry import get_model


@pytest.mark.parametrize("variant", ["report", "original", "small"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (8, 3)])
def test_output_shape(checks, variant, scale, h, w):
    checks.output_shape(get_model("fsrcnn", scale=scale, variant=variant), h, w)


def _layers(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]


def test_report_variant_layers():
    model = get_model("fsrcnn", scale=2)
    got = [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [
        ("Conv2d", 1, 32, (5, 5)),
        ("Conv2d", 32, 8, (1, 1)),
        ("Conv2d", 8, 8, (3, 3)),
        ("Conv2d", 8, 32, (1, 1)),
        ("ConvTranspose2d", 32, 32, (2, 2)),
        ("Conv2d", 32, 1, (5, 5)),
    ]
    assert _layers(model)[4].stride == (2, 2)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 5  # every hidden layer, the transposed one included
    assert all(float(p.weight.detach().abs().max()) == 0.0 for p in prelus)
    x4 = _layers(get_model("fsrcnn", scale=4))[4]
    assert x4.kernel_size == (4, 4)
    assert x4.stride == (4, 4)


def test_original_layers():
    model = get_model("fsrcnn", scale=3, variant="original")
    got = [(m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [(1, 56, (5, 5)), (56, 12, (1, 1))] + [(12, 12, (3, 3))] * 4 + [
        (12, 56, (1, 1)),
        (56, 1, (9, 9)),
    ]
    assert _layers(model)[-1].stride == (3, 3)


def test_small_variant_is_fsrcnn_s():
    model = get_model("fsrcnn", scale=2, variant="small")
    got = [(m.in_channels, m.out_channels, m.kernel_size) for m in _layers(model)]
    assert got == [
        (1, 32, (5, 5)),
        (32, 5, (1, 1)),
        (5, 5, (3, 3)),
        (5, 32, (1, 1)),
        (32, 1, (9, 9)),
    ]


def test_gradients(checks):
    for variant in ("report", "original"):
        checks.gradients_reach_every_parameter(
            get_model("fsrcnn", scale=2, variant=variant, prelu_init=0.1)
        )


@pytest.mark.parametrize("variant", ["report", "original"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius(checks, variant, scale):
    checks.receptive_radius_is_tight_bound(get_model("fsrcnn", scale=scale, variant=variant))


@pytest.mark.parametrize("variant", ["report", "original"])
def test_overfits_one_batch(checks, variant):
    first, last = checks.overfit_one_batch(get_model("fsrcnn", scale=2, variant=variant))
    assert last < 0.2 * first


def test_residual_is_bicubic_plus_network(checks):
    model = get_model("fsrcnn", scale=3, residual=True, channels=2)
    checks.output_shape(model, 4, 4)
    with torch.no_grad():
        for p in model.reconstruct.parameters():
            p.zero_()
        x = torch.randn(1, 2, 4, 4)
        torch.testing.assert_close(model(x), model.bicubic(x))


def test_config_rebuilds(checks):
    checks.rebuilds_identically(get_model("fsrcnn", scale=3, variant="original", d=20, m=2))
    checks.rebuilds_identically(get_model("fsrcnn", scale=2, channels=3))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"variant": "keras"}, "variant must be one of"),
        ({"variant": "original", "scale": 10}, "larger than the transposed convolution"),
        ({"scale": 4, "deconv_kernel": 3}, "would leave holes"),
        ({"scale": -2}, "scale must be an integer >= 1"),
        ({"d": 0}, "d, s >= 1"),
        ({"scale": 1, "deconv_kernel": 4}, "needs an odd kernel"),
    ],
)
def test_bad_config(config, match):
    with pytest.raises(ValueError, match=match):
        get_model("fsrcnn", **config)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"channels": 3, "residual": True},
        {"output_activation": "prelu", "conserve": True},
        {"deconv_kernel": 5},  # kernel != stride: nothing to fuse
        {"variant": "original"},
    ],
)
def test_fused_inference_form_equals_layers(checks, scale, config):
    model = randomise(get_model("fsrcnn", scale=scale, **config)).eval()
    x = checks.input(model, 7, 9)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ref = model(x)
        model.fuse_for_inference()
        fused = model(x)
    fusable = config.get("variant", "report") == "report" and config.get("deconv_kernel") in (
        None,
        scale,
    )
    assert (model.fused_tail is not None) == fusable
    # equal everywhere, borders included, to float32 rounding
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    # the state dict (and so the sha256 of the weights) does not change
    assert model.state_dict().keys() == state.keys()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_training_mode_drops_the_fused_form():
    model = get_model("fsrcnn", scale=2).eval().fuse_for_inference()
    assert model.fused_tail is not None
    model.train()
    assert model.fused_tail is None
    # a training step updates the real layers, and a new fusion sees the new weights
    x = torch.randn(2, 1, 6, 6)
    model(x).square().mean().backward()
    assert model.upsample.weight.grad is not None
    with torch.no_grad():
        model.reconstruct[1].weight.add_(0.1)
    model.eval()
    with torch.no_grad():
        ref = model(x)
        fused = model.fuse_for_inference()(x)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)


def test_chain_fuses_its_stages():
    model = get_model(
        "chain", stages=[{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]
    )
    model.eval().fuse_for_inference()
    assert model.stages[0].fused_tail is not None


def test_loading_weights_drops_a_stale_fused_form():
    model = get_model("fsrcnn", scale=2).eval().fuse_for_inference()
    other = randomise(get_model("fsrcnn", scale=2)).eval()
    model.load_state_dict(other.state_dict())
    assert model.fused_tail is None
    x = torch.randn(1, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), other(x))
        ref = other(x)
        fused = model.fuse_for_inference()(x)
        torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("block", [5, 64, 10_000])
def test_cpu_blocked_tail_equals_the_convolution_form(scale, block):
    """The CPU form (blocked matrix products, shifted tap sums) against the convolutions."""
    model = randomise(get_model("fsrcnn", scale=scale, channels=2)).eval().fuse_for_inference()
    tail = model.fused_tail
    tail.block = block  # several blocks, the last one shorter, or one block
    x = torch.randn(3, 32, 6, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        conv = F.pixel_shuffle(
            F.conv2d(
                F.prelu(F.conv2d(x, tail.w_up, tail.b_up), tail.slope),
                tail.w_low,
                tail.b_low,
                padding=tail.radius,
            ),
            scale,
        )
        blocked = tail(x)
        plain = tail(x.contiguous())  # NCHW input: the same
        valid = tail(x, valid=True)  # the taps' biases are added once, after the blocks
    assert blocked.shape == conv.shape == (3, 2, 6 * scale, 11 * scale)
    torch.testing.assert_close(blocked, conv, rtol=1e-5, atol=1e-5 * float(conv.abs().max()))
    torch.testing.assert_close(plain, blocked)
    inner = conv[
        ..., scale * tail.radius : -scale * tail.radius, scale * tail.radius : -scale * tail.radius
    ]
    assert float(tail.g_bias.abs().max()) > 0  # the folded biases are really exercised
    torch.testing.assert_close(valid, inner, rtol=1e-5, atol=1e-5 * float(inner.abs().max()))


def test_cpu_autocast_keeps_the_convolution_form():
    model = randomise(get_model("fsrcnn", scale=2)).eval().fuse_for_inference()
    x = torch.randn(2, 1, 9, 8)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    assert float((low.float() - ref).abs().max()) < 0.05 * float(ref.abs().max())


def test_fused_tail_gives_input_gradients_and_takes_empty_input():
    """Inputs that need a gradient, and empty ones, take the convolution form."""
    model = randomise(get_model("fsrcnn", scale=2)).eval()
    x = torch.randn(1, 1, 5, 6, requires_grad=True)
    model(x).square().sum().backward()
    ref = x.grad.clone()
    x.grad = None
    model.fuse_for_inference()
    model(x).square().sum().backward()
    torch.testing.assert_close(x.grad, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    assert model.fused_tail(torch.zeros(0, 32, 4, 4)).shape == (0, 1, 8, 8)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    "config",
    [{}, {"channels": 2, "residual": True}, {"output_activation": "prelu"}, {"conserve": True}],
)
@pytest.mark.parametrize("fused", [True, False])
def test_forward_core_equals_the_cropped_forward(scale, config, fused):
    model = randomise(get_model("fsrcnn", scale=scale, **config)).eval()
    r, s = model.receptive_radius, scale
    x = torch.randn(2, model.channels, 2 * r + 9, 2 * r + 7)
    with torch.no_grad():
        full = model(x)[..., s * r : -s * r, s * r : -s * r]
        if fused:
            model.fuse_for_inference()
        core = model.forward_core(x)
    assert core.shape == full.shape == (2, model.channels, 9 * s, 7 * s)
    torch.testing.assert_close(core, full, rtol=1e-5, atol=1e-5 * float(full.abs().max()))


@pytest.mark.parametrize("form", ["blocked", "convolution"])
def test_valid_tail_is_the_interior_of_the_padded_tail(form):
    model = randomise(get_model("fsrcnn", scale=2, channels=2)).eval().fuse_for_inference()
    tail, s = model.fused_tail, 2
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


def test_blocked_tail_scratch_is_reused_per_thread_and_never_leaks(monkeypatch):
    """The tail's scratch buffers: reused between calls of a thread, private to each thread,
    not kept above the cap, and never carrying one call's values into another's result."""
    import threading

    from xsr.models import fsrcnn

    model = randomise(get_model("fsrcnn", scale=2, channels=2)).eval().fuse_for_inference()
    tail = model.fused_tail
    tail.block = 40  # several blocks per call
    gen = torch.Generator().manual_seed(3)
    inputs = [torch.randn(n, 32, h, w, generator=gen) for n, h, w in [(2, 12, 9), (1, 5, 6)]]
    with torch.no_grad():
        expected = [tail(x, valid=v) for x in inputs for v in (False, True)]
        conv = [  # the convolution form, which never touches the scratch buffers
            F.pixel_shuffle(
                F.conv2d(
                    F.prelu(F.conv2d(x, tail.w_up, tail.b_up), tail.slope),
                    tail.w_low,
                    tail.b_low,
                    padding=0 if v else tail.radius,
                ),
                2,
            )
            for x in inputs
            for v in (False, True)
        ]
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


def test_one_variable_first_layer_runs_channels_last_under_the_engine():
    """Its output is channels-last, so the next layer copies nothing (oneDNN's convolution on
    that view was about 11 % faster for the whole core than an unfolded matrix product)."""
    config = {"scale": 2, "variant": "report"}
    r = get_model("fsrcnn", **config).receptive_radius
    x = torch.randn(2, 1, 2 * r + 6, 2 * r + 5)
    assert_first_layer_channels_last("fsrcnn", config, "features.1", x, core=True)

"""The registry and the contract every registered architecture obeys."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

from xsr.models import registry
from xsr.models.base import SRModel
from xsr.models.registry import get_model, list_models

DEFAULTS = {"chain": {"stages": [{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]}}


def test_list_models_is_the_explicit_dict():
    assert list_models() == sorted(registry.MODELS)
    assert {"bicubic", "srcnn", "fsrcnn", "srnet3d", "xsrnet", "chain", "linear"} == set(
        list_models()
    )


@pytest.mark.parametrize("name", list_models())
def test_contract_attributes(name):
    model = get_model(name, **DEFAULTS.get(name, {}))
    assert isinstance(model, SRModel)
    assert model.arch == name
    assert json.loads(json.dumps(model.config)) == model.config
    assert model.time_radius == model.window // 2
    assert model.window % 2 == 1
    assert isinstance(model.receptive_radius, int)
    assert model.receptive_radius >= 0
    assert model.channels == 1
    assert model.card is None


@pytest.mark.parametrize("name", list_models())
def test_bad_inputs_give_clear_errors(name):
    model = get_model(name, **DEFAULTS.get(name, {}))
    good = (1, 1, 4, 4) if model.window == 1 else (1, 1, model.window, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        model(torch.zeros((good[0], 2, *good[2:])))
    with pytest.raises(ValueError, match="must be a"):
        model(torch.zeros(good[1:]))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(good, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        model([[0.0]])
    with pytest.raises(ValueError, match="empty axis"):
        model(torch.zeros((0, *good[1:])))


@pytest.mark.parametrize("name", list_models())
def test_models_pickle_for_dask_workers(name):
    import pickle

    model = get_model(name, **DEFAULTS.get(name, {})).eval()
    clone = pickle.loads(pickle.dumps(model))
    shape = (1, 1, 4, 5) if model.window == 1 else (1, 1, model.window, 4, 5)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))


def test_unknown_name():
    with pytest.raises(ValueError, match="Unknown model architecture 'esrgan'; available"):
        get_model("esrgan")
    with pytest.raises(ValueError, match="load_model"):
        get_model("fsrcnn-swe-x2")


def test_unknown_keyword():
    with pytest.raises(ValueError, match=r"srcnn: unknown configuration \['blocks'\]"):
        get_model("srcnn", blocks=3)


@pytest.mark.parametrize("name", ["srcnn", "fsrcnn", "srnet3d", "xsrnet", "bicubic"])
@pytest.mark.parametrize("scale", [0, 1.5, "2", True])
def test_impossible_scale(name, scale):
    with pytest.raises(ValueError, match="scale must be an integer"):
        get_model(name, scale=scale)


def test_flops_match_the_report():
    """The report: the 3D network costs about 360 kFLOP per output pixel, 80x FSRCNN."""
    srnet = get_model("srnet3d", scale=2).flops_per_output_pixel()
    fsrcnn = get_model("fsrcnn", scale=2).flops_per_output_pixel()
    assert srnet == pytest.approx(360e3, rel=0.01)
    assert srnet / fsrcnn == pytest.approx(80, rel=0.05)


def test_flops_hand_count_srcnn():
    # 9x9x64, 1x1 64->32, 5x5 32->1 at high resolution, plus 16 bicubic taps; 2 FLOPs per MAC.
    macs = 81 * 64 + 64 * 32 + 25 * 32 + 16
    for scale in (2, 3):
        assert get_model("srcnn", scale=scale).flops_per_output_pixel() == pytest.approx(2 * macs)
    # fsrcnn (report) at x2: low-resolution layers per fine pixel are divided by 4.
    lr_macs = 25 * 32 + 32 * 8 + 9 * 64 + 8 * 32
    hr_macs = 32 * 32 + 25 * 32  # 2x2 stride-2 transposed conv: one tap per fine pixel
    fsrcnn = get_model("fsrcnn", scale=2).flops_per_output_pixel()
    assert fsrcnn == pytest.approx(2 * (lr_macs / 4 + hr_macs))


def test_flops_scale_with_channels_and_window():
    one = get_model("xsrnet", scale=2, window=1).flops_per_output_pixel()
    three = get_model("xsrnet", scale=2, window=3).flops_per_output_pixel()
    assert three - one == pytest.approx(2 * 9 * 32 * 2 / 4)  # two more input maps in the head


def test_models_layer_imports_torch_only():
    """Layering (DESIGN.md): models never import xarray or dask (nor numpy-heavy I/O)."""
    import ast
    from pathlib import Path

    import xsr.models

    banned = {"xarray", "dask", "numpy", "distributed", "zarr", "netCDF4", "h5py", "pickle"}
    for path in Path(xsr.models.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


TILED = [
    ("bicubic", {"scale": 3}),
    ("srcnn", {"scale": 2}),
    ("fsrcnn", {"scale": 3, "variant": "original"}),
    ("srnet3d", {"scale": 2, "features": 8, "shrink": 4}),
    ("xsrnet", {"scale": 2}),
    ("chain", {"stages": [{"arch": "srnet3d", "scale": 1, "features": 4, "shrink": 2},
                          {"arch": "fsrcnn", "scale": 2}]}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "config"), TILED)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_tiles_with_radius_halos_equal_the_whole_frame(name, config, data):
    """What the engine relies on: a tile plus ``receptive_radius`` of halo reproduces the
    whole-frame output exactly inside the tile, whatever the model pads at the tile edge."""
    torch.manual_seed(0)
    model = get_model(name, **config).double().eval()
    r, s = model.receptive_radius, model.scale
    size = 2 * r + 8
    y0 = data.draw(st.integers(r, size - r - 1), label="y0")
    x0 = data.draw(st.integers(r, size - r - 1), label="x0")
    h = data.draw(st.integers(1, size - r - y0), label="h")
    w = data.draw(st.integers(1, size - r - x0), label="w")
    shape = (1, 1, size, size) if model.window == 1 else (1, 1, model.window, size, size)
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        tile = model(x[..., y0 - r : y0 + h + r, x0 - r : x0 + w + r])
    inner = tile[..., s * r : s * (r + h), s * r : s * (r + w)]
    expected = whole[..., s * y0 : s * (y0 + h), s * x0 : s * (x0 + w)]
    torch.testing.assert_close(inner, expected, rtol=0, atol=1e-10)

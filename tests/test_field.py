"""Field models (one scalar field, normalised per frame), the NaN fill, the scale-only contract
and the units guard of specialised models (issue 16)."""

from __future__ import annotations

import warnings
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings

from xsr._chunked import HaloChunkWarning
from xsr.engine import infer
from xsr.engine.inference import extend_into_mask
from xsr.models import get_model, pretrained, save_model
from xsr.models.files import load_model
from xsr.testing import raise_if_dask_computes, random_movie
from xsr.upscaling import (
    InputRangeWarning,
    NoLearnedModelWarning,
    UnitsConvertedWarning,
    best_pretrained,
    upscale,
)

FIELD_VAR = [{"name": "field", "units": "1", "long_name": "any scalar field"}]
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _net(arch: str = "fsrcnn", scale: int = 2, seed: int = 0, channels: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = get_model(arch, scale=scale, channels=channels)
    with torch.no_grad():  # non-trivial weights and biases: f(0) != 0, f is not affine
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def field_model(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    # a card normalisation that is not the identity: that of a frame-normalised corpus
    path = save_model(
        _net(),
        tmp_path_factory.mktemp("field") / "field-x2",
        kind="field",
        variables=FIELD_VAR,
        normalisation={"field": {"mean": 0.1, "std": 1.3}},
    )
    return load_model(path)


def _frames(seed: int, shape: tuple[int, ...] = (2, 5, 9, 11)) -> xr.DataArray:
    """A smooth random movie (member, time, y, x) with a bump and noise."""
    rng = np.random.default_rng(seed)
    m, t, ny, nx = shape
    y, x = np.meshgrid(np.linspace(0, 3, ny), np.linspace(0, 3, nx), indexing="ij")
    data = np.sin(y + rng.random((m, t, 1, 1)) * 3) * np.cos(2 * x) + 0.3 * rng.random(shape)
    return xr.DataArray(
        data.astype("float32"),
        dims=("member", "time", "y", "x"),
        coords={"y": np.arange(ny) * 1000.0, "x": np.arange(nx) * 1000.0},
        name="anything",
        attrs={"units": "furlong fortnight-1"},
    )


# ------------------------------------------------------------------ field model properties


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    a=st.floats(1e-3, 1e3),
    b_over_a=st.floats(-50.0, 50.0),
)
def test_field_model_is_affine_equivariant(
    field_model: torch.nn.Module, seed: int, a: float, b_over_a: float
) -> None:
    x = _frames(seed)
    b = b_over_a * a
    out = upscale(x, field_model).values.astype("float64")
    moved = (x.astype("float64") * a + b).astype("float32")
    out2 = upscale(moved, field_model).values.astype("float64")
    expected = a * out + b
    np.testing.assert_allclose(out2, expected, rtol=1e-5, atol=1e-5 * a * np.ptp(out))


def test_field_model_is_not_the_identity_or_affine(field_model: torch.nn.Module) -> None:
    # the property above must be able to fail: without per-frame normalisation the same
    # network is not equivariant
    x = _frames(1)
    plain = infer(field_model, x.values[:, None], normalisation=False)
    moved = infer(field_model, 10 * x.values[:, None] + 5, normalisation=False)
    assert np.abs(moved - (10 * plain + 5)).max() > 1e-2


@SETTINGS
@given(value=st.floats(-1e6, 1e6, width=32), nan_cells=st.booleans())
def test_constant_frame_comes_back_exactly(
    field_model: torch.nn.Module, value: float, nan_cells: bool
) -> None:
    x = xr.full_like(_frames(0), value)
    if nan_cells:
        x[..., 2:4, 3:5] = np.nan
    out = upscale(x, field_model)
    valid = out.values[~np.isnan(out.values)]
    assert valid.size
    assert np.all(valid == np.float32(value))
    lazy = upscale(x.chunk({"time": 2, "member": 1}), field_model).values
    np.testing.assert_array_equal(lazy, out.values)


def test_all_nan_frame_is_nan_and_leaves_others_alone(field_model: torch.nn.Module) -> None:
    x = _frames(2)
    clean = upscale(x, field_model)
    x[0, 1] = np.nan
    out = upscale(x, field_model)
    assert np.isnan(out.values[0, 1]).all()
    others = np.ones(out.shape[:2], bool)
    others[0, 1] = False
    np.testing.assert_array_equal(out.values[others], clean.values[others])


def test_nan_mask_is_kept_on_the_fine_grid(field_model: torch.nn.Module) -> None:
    x = _frames(3)
    x[:, :, 0:3, 0:4] = np.nan
    out = upscale(x, field_model).values
    fine = np.isnan(x.values).repeat(2, axis=-2).repeat(2, axis=-1)
    np.testing.assert_array_equal(np.isnan(out), fine)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    t=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    y=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    x=st.lists(st.integers(1, 11), min_size=1, max_size=3),
    masked=st.booleans(),
)
def test_field_model_is_chunk_invariant(
    field_model: torch.nn.Module, seed: int, t: list, y: list, x: list, masked: bool
) -> None:
    data = _frames(seed)
    if masked:
        data[:, :, 4:, 7:] = np.nan

    def chunks(sizes: list[int], n: int) -> tuple[int, ...]:
        out, left = [], n
        for s in sizes:
            if left <= 0:
                break
            out.append(min(s, left))
            left -= out[-1]
        return (*out, left) if left else tuple(out)

    c = {"time": chunks(t, 5), "y": chunks(y, 9), "x": chunks(x, 11), "member": 1}
    eager = upscale(data, field_model)
    with warnings.catch_warnings():  # chunks smaller than the halo are merged, with a warning
        warnings.simplefilter("ignore", HaloChunkWarning)
        lazy = upscale(data.chunk(c), field_model)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-5, atol=1e-5)


def test_field_model_serves_every_variable_independently_and_lazily(
    field_model: torch.nn.Module,
) -> None:
    ds = xr.Dataset(
        {
            "tas": _frames(4).isel(member=0) * 30 + 250,
            "uwnd": _frames(5).isel(member=0) * 0.01,
        }
    )
    ds["tas"].attrs["units"] = "K"
    ds["uwnd"].attrs["units"] = "cm/s"
    out = upscale(ds, field_model)
    for name in ("tas", "uwnd"):
        alone = upscale(ds[name], field_model)
        np.testing.assert_allclose(out[name].values, alone.values, rtol=1e-6)
        assert out[name].attrs["units"] == ds[name].attrs["units"]
    assert "kind=field" in out.attrs["history"]
    with raise_if_dask_computes():
        lazy = upscale(ds.chunk({"time": 2}), field_model)
    xr.testing.assert_allclose(lazy.compute(), out, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ NaN fill (every model kind)


def test_bicubic_next_to_a_mask_stays_in_range_and_far_cells_are_unchanged() -> None:
    # SST-like: 289-304 K with land (NaN) in one corner
    rng = np.random.default_rng(0)
    ny, nx = 24, 32
    y, x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    sst = 296.0 + 7.0 * np.sin(y / 5.0) * np.cos(x / 7.0) + 0.2 * rng.random((ny, nx))
    da_ = xr.DataArray(sst[None].astype("float32"), dims=("time", "y", "x"), name="sst")
    masked = da_.copy()
    masked[:, :8, :10] = np.nan
    for data in (masked, masked.chunk({"y": 12, "x": 16})):
        out = upscale(data, "bicubic", scale=2).values
        valid = out[~np.isnan(out)]
        unmasked = upscale(da_, "bicubic", scale=2).values
        # within the valid input's range up to bicubic's overshoot at a step between the
        # valid data and the fill (its negative lobes sum to < 0.15 of the step in 2-D)
        lo, hi = np.nanmin(masked.values), np.nanmax(masked.values)
        slack = 0.15 * (hi - lo)
        assert lo - slack <= valid.min()
        assert valid.max() <= hi + slack
        # beyond bicubic's receptive radius (2 cells) from the mask nothing changes
        far = np.ones((ny, nx), bool)
        far[: 8 + 3, : 10 + 3] = False
        fine = far.repeat(2, 0).repeat(2, 1)
        np.testing.assert_allclose(out[0][fine], unmasked[0][fine], rtol=1e-6)
    # the old fill (0 in data units) left a dent of hundreds of kelvin: the fill must be
    # the frame's mean, so next to the mask the error is bounded by the field's own spread
    near = (~np.isnan(out[0])) & ~fine
    assert np.abs(out[0][near] - unmasked[0][near]).max() < 10.0


def test_specialised_model_fills_masks_from_the_frame_not_the_card(tmp_path: Path) -> None:
    # card statistics far from the data: the fill must not be the card's mean
    path = save_model(
        _net(seed=1),
        tmp_path / "spec",
        variables=[{"name": "sst", "units": "K", "long_name": "sst"}],
        normalisation={"sst": {"mean": 290.0, "std": 10.0}},
    )
    model = load_model(path)
    da_ = xr.DataArray(
        (np.full((2, 12, 12), 300.0) + np.arange(12) * 0.1).astype("float32"),
        dims=("time", "y", "x"),
        name="sst",
        attrs={"units": "K"},
    )
    frames = da_.values[None, None].copy()
    frames[..., :8, :8] = np.nan  # cells beyond the receptive radius take the frame mean
    out = infer(model, frames)
    r = model.receptive_radius
    grown = extend_into_mask(torch.from_numpy(frames), torch.from_numpy(np.isnan(frames)), r)
    means = np.nanmean(frames, axis=(-2, -1), keepdims=True)
    filled = np.where(np.isnan(grown.numpy()), means, grown.numpy())
    expected = np.where(np.isnan(out), np.nan, infer(model, filled))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert np.isnan(out).sum() == 4 * np.isnan(frames).sum()


# ------------------------------------------------------------------ the scale-only contract


def _ship(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *,
    variables: list[dict] | None = None,
    psnr: float | None = None,
    kind: str = "specialised",
    scale: int = 2,
) -> None:
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    variables = variables or FIELD_VAR
    save_model(
        _net(scale=scale, channels=len(variables)),
        tmp_path / name,
        name=name,
        kind=kind,
        variables=variables,
        metrics={} if psnr is None else {"psnr": psnr},
    )
    monkeypatch.setitem(pretrained.PRETRAINED, name, name)


def test_a_shipped_field_model_becomes_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED", {})
    h = [{"name": "h", "units": "m", "long_name": "h"}]
    hu = [*h, {"name": "u", "units": "m s-1", "long_name": "u"}]
    _ship(tmp_path, monkeypatch, "natural", variables=[{"name": "image", "units": "1"}], psnr=99)
    _ship(tmp_path, monkeypatch, "spec-h", variables=h, psnr=40.0)
    ds = random_movie(3, 8, 8, variables=("tas",))
    # today's case: nothing learned serves 'tas' (the natural-image model is never picked)
    with pytest.warns(NoLearnedModelWarning, match="'tas'"):
        out = ds.sr.upscale(scale=2)
    assert "model=bicubic-x2 weights=none" in out.attrs["history"]
    assert best_pretrained(2, ["h"]) == "spec-h"
    # a field model card appears: it becomes the default for any variable...
    _ship(tmp_path, monkeypatch, "field-x2", kind="field", psnr=35.0)
    assert best_pretrained(2, ["tas"]) == "field-x2"
    assert best_pretrained(2, ["h", "u"]) == "field-x2"  # spec-h does not cover 'u'
    out = ds.sr.upscale(scale=2)
    assert "model=field-x2" in out.attrs["history"]
    assert "kind=field" in out.attrs["history"]
    # ...unless a specialised model covers all the data's variables and scores better
    assert best_pretrained(2, ["h"]) == "spec-h"
    _ship(tmp_path, monkeypatch, "spec-hu", variables=hu, psnr=30.0)
    assert best_pretrained(2, ["h", "u"]) == "field-x2"  # covers them, but scores lower
    with pytest.raises(ValueError, match="no shipped model"):
        best_pretrained(4, ["h"])


def test_shipped_natural_models_are_never_chosen_by_scale() -> None:
    for variables in (["image"], ["tas"], ["uwnd"], ["h"]):
        try:
            name = best_pretrained(2, variables)
        except ValueError:
            continue
        card = pretrained.pretrained_card(name)
        assert card.kind == "field" or {v["name"] for v in card.variables} == set(variables)


# ------------------------------------------------------------------ units of specialised models


def _uv_model(tmp_path: Path) -> torch.nn.Module:
    path = save_model(
        _net(seed=2),
        tmp_path / "u",
        variables=[{"name": "u", "units": "m s-1", "long_name": "u"}],
        normalisation={"u": {"mean": 0.0, "std": 2.0}},
    )
    return load_model(path)


def test_units_are_compared_with_a_units_library(tmp_path: Path) -> None:
    model = _uv_model(tmp_path)
    ds = random_movie(3, 8, 8, variables=("u",))
    ds["u"].attrs["units"] = "m s-1"
    ref = upscale(ds, model)
    ds["u"].attrs["units"] = "m/s"  # same units, another spelling: no conversion
    xr.testing.assert_identical(upscale(ds, model)["u"].drop_attrs(), ref["u"].drop_attrs())
    cms = ds.copy()
    cms["u"] = ds["u"] * 100
    cms["u"].attrs["units"] = "cm/s"
    with raise_if_dask_computes(), pytest.warns(UnitsConvertedWarning, match="cm/s"):
        lazy = upscale(cms.chunk({"time": 1}), model)
    assert lazy["u"].attrs["units"] == "m s-1"
    assert "units_converted='u':'cm/s'->'m s-1'" in lazy.attrs["history"]
    np.testing.assert_allclose(lazy["u"].values, ref["u"].values, rtol=1e-5, atol=1e-6)
    bad = ds.copy()
    bad["u"].attrs["units"] = "K"
    with pytest.raises(ValueError, match="not convertible"):
        upscale(bad, model)


def test_kelvin_spellings_agree_and_celsius_is_converted(tmp_path: Path) -> None:
    path = save_model(
        _net(seed=3),
        tmp_path / "t",
        variables=[{"name": "t", "units": "K", "long_name": "t"}],
        normalisation={"t": {"mean": 280.0, "std": 10.0}},
    )
    model = load_model(path)
    ds = random_movie(3, 8, 8, variables=("t",))
    ds["t"] = ds["t"] * 10 + 280
    ds["t"].attrs["units"] = "kelvin"
    ref = upscale(ds, model)
    celsius = ds.copy()
    celsius["t"] = ds["t"] - 273.15
    celsius["t"].attrs["units"] = "degC"
    with pytest.warns(UnitsConvertedWarning, match="degC"):
        out = upscale(celsius, model)
    np.testing.assert_allclose(out["t"].values, ref["t"].values, rtol=1e-5)
    # a variable in the wrong units but labelled right still meets the range guard
    far = ds.copy()
    far["t"] = ds["t"] * 1000
    with pytest.warns(InputRangeWarning, match="'t'"):
        upscale(far, model)


def test_a_field_model_of_an_affine_network_equals_that_network(tmp_path: Path) -> None:
    # bicubic commutes with affine maps: as a field model (card normalisation not the identity,
    # masks, eager and chunked) it must give bicubic's own result
    path = save_model(
        get_model("bicubic", scale=2, channels=1),
        tmp_path / "bicubic-field",
        kind="field",
        variables=FIELD_VAR,
        normalisation={"field": {"mean": -0.3, "std": 2.5}},
    )
    model = load_model(path)
    x = _frames(7) * 40 + 280
    x[0, :, :3, :3] = np.nan
    plain = upscale(x, "bicubic", scale=2)
    for data in (x, x.chunk({"time": 2, "y": 5})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HaloChunkWarning)
            out = upscale(data, model)
        np.testing.assert_allclose(out.values, plain.values, rtol=1e-6, atol=1e-4)


# ------------------------------------------------------------------ training recipe


def test_a_scalar_field_trains_with_every_flip_and_quarter_turn() -> None:
    from xsr.train.augment import variable_symmetry

    assert len(variable_symmetry(["field"]).allowed) == 8


def _training_script() -> object:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_field_models.py"
    spec = importlib.util.spec_from_file_location("train_field_models", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_field_training_recipe_runs_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import xsr

    module = _training_script()
    # a tiny corpus: one generator run, a phantom and a stand-in for a real dataset's train
    # split (the real data may not be cached; the last stage trains on the real ones alone)
    monkeypatch.setattr(
        module,
        "sources",
        lambda quick: {
            "swe": xsr.data.shallow_water(48, 48, frames=6, seed=3, dtype="float32"),
            "phantom": xsr.data.phantom_movie(48, 48, frames=6, seed=4),
            "real-stand-in": xsr.data.shallow_water(48, 48, frames=6, seed=5, dtype="float32"),
        },
    )
    monkeypatch.setattr(module, "check", lambda path: {})
    with pytest.raises(SystemExit):
        module.main(["--quick"])  # throw-away weights never go to the shipped folder
    assert module.main(["field-xsrnet-x2", "--quick", "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "field-xsrnet-x2.json").read_text())
    assert card["kind"] == "field"
    assert card["training"]["quick"] is True
    assert "linear_base" in card["training"]  # the base was solved in closed form
    model = load_model(tmp_path / "field-xsrnet-x2")
    out = upscale(random_movie(2, 8, 8, variables=("anything",)), model)
    assert np.isfinite(out["anything"].values).all()


def test_corpus_crops_overhang_small_and_masked_frames_mirrored_as_at_inference() -> None:
    module = _training_script()
    frame = np.arange(12 * 16, dtype="float64").reshape(1, 12, 16)
    frame[0, :, :4] = np.nan  # "land" on the left quarter
    rng = np.random.default_rng(0)
    # a frame smaller than the crop gives none without overhang ...
    assert module._crops([frame], 16, 5, rng) == []
    # ... and crops whose centre (16 - 2 * 4 = 8 cells) lies in it with an overhang of 4
    crops = module._crops([frame], 16, 40, rng, overhang=4, align=2)
    assert len(crops) == 40
    padded = np.pad(frame[0], 4, mode="symmetric")  # the engine's "reflect" at grid edges
    for crop in crops:
        assert crop.shape == (16, 16)
        core = crop[4:-4, 4:-4]
        assert np.isfinite(core).mean() >= 0.5
        # the crop is a window of the mirrored frame whose centre starts on a multiple of 2
        hits = [
            (i, j)
            for i in range(0, 12 - 8 + 1, 2)
            for j in range(0, 16 - 8 + 1, 2)
            if np.array_equal(padded[i : i + 16, j : j + 16], crop, equal_nan=True)
        ]
        assert len(hits) == 1
    # fully masked centres are never drawn
    masked = np.full((1, 12, 16), np.nan)
    assert module._crops([masked], 16, 5, rng, overhang=4, align=2) == []

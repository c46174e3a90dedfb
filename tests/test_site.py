"""Site detail of a field model fine-tuned on one grid, as upscaling applies it (xsr.site)."""

from __future__ import annotations

import copy
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings

from xsr.models import get_model, save_model
from xsr.models.files import ModelFileError, load_model
from xsr.site import site_digest
from xsr.testing import raise_if_dask_computes
from xsr.upscaling import upscale

FIELD_VAR = [{"name": "field", "units": "1", "long_name": "any scalar field"}]
SETTINGS = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _frames(seed: int = 0, shape: tuple[int, ...] = (2, 5, 9, 11)) -> xr.DataArray:
    """A smooth random movie (member, time, y, x) named ``t`` on a 1 km grid."""
    rng = np.random.default_rng(seed)
    m, t, ny, nx = shape
    y, x = np.meshgrid(np.linspace(0, 3, ny), np.linspace(0, 3, nx), indexing="ij")
    data = np.sin(y + rng.random((m, t, 1, 1)) * 3) * np.cos(2 * x) + 0.3 * rng.random(shape)
    return xr.DataArray(
        data.astype("float32"),
        dims=("member", "time", "y", "x"),
        coords={"member": [10, 20], "y": np.arange(ny) * 1000.0, "x": np.arange(nx) * 1000.0},
        name="t",
        attrs={"units": "K"},
    )


def _site_model(path: Path, data: xr.DataArray, seed: int = 0) -> torch.nn.Module:
    """A field network with a random site map (member, y, x) on ``data``'s fine grid, saved."""
    torch.manual_seed(seed)
    net = get_model("fsrcnn", scale=2, channels=1).eval()
    fine = upscale(data, "bicubic", scale=2)
    shape = (data.sizes["member"], fine.sizes["y"], fine.sizes["x"])
    net.site = {"t": torch.randn(shape, generator=torch.Generator().manual_seed(seed))}
    site = {
        "method": "test",
        "coords": {
            "member": data["member"].values.tolist(),
            "y": fine["y"].values.tolist(),
            "x": fine["x"].values.tolist(),
        },
        "variables": {"t": {"dims": ["member", "y", "x"], "shape": list(shape)}},
    }
    save_model(net, path, kind="field", variables=FIELD_VAR, site=site)
    return load_model(path)


@pytest.fixture(scope="module")
def sited(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    return _site_model(tmp_path_factory.mktemp("site") / "sited", _frames())


def _without_site(net: torch.nn.Module) -> torch.nn.Module:
    plain = copy.deepcopy(net)
    plain.site = None
    return plain


def test_site_detail_is_the_map_times_each_frames_std(sited: torch.nn.Module) -> None:
    x = _frames(1)
    out = upscale(x, sited)
    plain = upscale(x, _without_site(sited))
    std = x.astype("float64").std(("y", "x")).values[..., None, None]
    site = sited.site["t"].numpy()[:, None]
    np.testing.assert_allclose(out.values - plain.values, std * site, rtol=1e-5, atol=1e-5)
    history = out.attrs.get("history", "")
    assert f"site=t site_sha256={site_digest(sited.site)}" in history
    assert "site=" not in plain.attrs.get("history", "")


def test_a_variable_without_site_detail_gets_the_network_alone(sited: torch.nn.Module) -> None:
    x = _frames(1).rename("other")
    np.testing.assert_array_equal(upscale(x, sited).values, upscale(x, _without_site(sited)).values)


@SETTINGS
@given(seed=st.integers(0, 2**16), a=st.floats(1e-3, 1e3), b_over_a=st.floats(-50.0, 50.0))
def test_site_detail_keeps_the_field_model_affine_equivariant(
    sited: torch.nn.Module, seed: int, a: float, b_over_a: float
) -> None:
    x = _frames(seed)
    b = b_over_a * a
    out = upscale(x, sited).values.astype("float64")
    moved = (x.astype("float64") * a + b).astype("float32")
    out2 = upscale(moved, sited).values.astype("float64")
    np.testing.assert_allclose(out2, a * out + b, rtol=1e-5, atol=1e-5 * a * np.ptp(out))


def test_a_constant_frame_stays_constant_and_nan_stays_nan(sited: torch.nn.Module) -> None:
    x = xr.full_like(_frames(), 273.15)
    x[0, 1, 2:4, 3:5] = np.nan
    out = upscale(x, sited).values
    fine_nan = np.isnan(x.values).repeat(2, axis=-2).repeat(2, axis=-1)
    np.testing.assert_array_equal(np.isnan(out), fine_nan)
    assert np.all(out[~fine_nan] == np.float32(273.15))


def test_an_infinite_cell_is_masked_before_the_frames_std_is_taken(
    sited: torch.nn.Module,
) -> None:
    # the frame's std (which scales the site detail) must not see the inf: the frame stays
    # finite, and equals the frame with a NaN in that cell
    from xsr.upscaling import NonFiniteWarning

    x = _frames(7)
    with_nan = x.copy()
    with_nan[0, 1, 4, 5] = np.nan
    with_inf = x.copy()
    with_inf[0, 1, 4, 5] = np.inf
    with pytest.warns(NonFiniteWarning):
        out = upscale(with_inf, sited)
    np.testing.assert_array_equal(out.values, upscale(with_nan, sited).values)
    assert np.isfinite(out.values[0, 1]).sum() == out.values[0, 1].size - 4


@pytest.mark.filterwarnings("ignore::xsr._chunked.HaloChunkWarning")
@SETTINGS
@given(
    t=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    y=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    x=st.lists(st.integers(1, 11), min_size=1, max_size=3),
)
def test_site_detail_is_lazy_and_chunk_invariant(
    sited: torch.nn.Module, t: list, y: list, x: list
) -> None:
    data = _frames(2)

    def chunks(sizes: list[int], n: int) -> tuple[int, ...]:
        out, left = [], n
        for s in sizes:
            if left > 0:
                out.append(min(s, left))
                left -= out[-1]
        return (*out, left) if left else tuple(out)

    eager = upscale(data, sited)
    lazy_in = data.chunk({"time": chunks(t, 5), "y": chunks(y, 9), "x": chunks(x, 11)})
    with raise_if_dask_computes():
        lazy = upscale(lazy_in, sited)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-5, atol=1e-5)


def test_conserve_adds_only_the_part_with_zero_block_means(sited: torch.nn.Module) -> None:
    x = _frames(3)
    out = upscale(x, sited, conserve=True)
    back = out.coarsen(y=2, x=2).mean()
    np.testing.assert_allclose(back.values, x.values, rtol=1e-5, atol=1e-5)
    plain = upscale(x, _without_site(sited), conserve=True)
    assert np.abs(out.values - plain.values).max() > 1e-2  # the detail is still there


def test_site_detail_follows_coordinates_subsets_flips_and_levels(sited: torch.nn.Module) -> None:
    x = _frames(4)
    full = upscale(x, sited) - upscale(x, _without_site(sited))
    # a descending y axis: the same cells, by coordinate
    flipped = x.isel(y=slice(None, None, -1))
    term = upscale(flipped, sited) - upscale(flipped, _without_site(sited))
    np.testing.assert_allclose(term.values, full.isel(y=slice(None, None, -1)).values, atol=1e-5)
    # a window of the grid, and one member chosen by label (a scalar coordinate)
    sub = x.isel(y=slice(2, 7), x=slice(3, 9)).sel(member=20)
    term = upscale(sub, sited) - upscale(sub, _without_site(sited))
    std_full = x.astype("float64").std(("y", "x")).sel(member=20).values[:, None, None]
    std_sub = sub.astype("float64").std(("y", "x")).values[:, None, None]
    expected = full.sel(member=20).isel(y=slice(4, 14), x=slice(6, 18)).values / std_full * std_sub
    np.testing.assert_allclose(term.values, expected, rtol=1e-4, atol=1e-5)


def test_another_grid_or_level_is_refused_with_the_remedy(sited: torch.nn.Module) -> None:
    x = _frames(5)
    with pytest.raises(ValueError, match=r"'y'.*model.site = None"):
        upscale(x.assign_coords(y=x["y"] + 500.0), sited)
    with pytest.raises(ValueError, match=r"'member'.*model.site = None"):
        upscale(x.assign_coords(member=[10, 30]), sited)
    with pytest.raises(ValueError, match=r"varies along 'member'"):
        upscale(x.isel(member=0, drop=True), sited)


def test_site_detail_survives_a_file_round_trip_and_its_digest_covers_it(
    sited: torch.nn.Module, tmp_path: Path
) -> None:
    x = _frames(6)
    path = save_model(sited, tmp_path / "copy")
    again = load_model(path)
    assert again.card.site == sited.card.site
    np.testing.assert_array_equal(upscale(x, again).values, upscale(x, sited).values)
    # a site map changed in the weights file no longer matches the card's sha256
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    tensors["site.t"] = tensors["site.t"] + 1.0
    save_file(tensors, path)
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(path)


def test_saving_refuses_a_site_its_card_does_not_describe(
    sited: torch.nn.Module, tmp_path: Path
) -> None:
    net = copy.deepcopy(sited)
    net.site = {"other": net.site["t"]}
    with pytest.raises(ValueError, match=r"site detail covers \['other'\]"):
        save_model(net, tmp_path / "bad")
    net.site = None  # the network alone: the card's site is dropped
    path = save_model(net, tmp_path / "plain")
    again = load_model(path)
    assert again.site is None
    assert again.card.site is None


def test_an_archive_job_tells_a_model_with_site_detail_from_its_network_alone(
    sited: torch.nn.Module,
) -> None:
    from xsr.archive.upscaling import _model_identity

    with_site, alone = _model_identity(sited), _model_identity(_without_site(sited))
    assert with_site != alone
    assert with_site["site_sha256"] == site_digest(sited.site)
    assert "site_sha256" not in alone

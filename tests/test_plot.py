"""Tests of xsr.plot: comparison panels and per-frame metric curves."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

import xsr  # noqa: F401  (registers the .sr accessor)
from xsr.degradation import degrade
from xsr.metrics import compare
from xsr.plot import plot_compare, plot_psnr_over_time
from xsr.testing import raise_if_dask_computes, random_movie


def _panels(fig: Figure) -> list:
    """The panel Axes (those holding a QuadMesh), in order; colour bars are left out."""
    return [
        a
        for a in fig.axes
        if a.get_label() != "<colorbar>" and any(isinstance(c, QuadMesh) for c in a.collections)
    ]


def _mesh(axis) -> QuadMesh:
    (mesh,) = [c for c in axis.collections if isinstance(c, QuadMesh)]
    return mesh


@pytest.fixture
def movie():
    truth = random_movie(4, 16, 16, seed=1, dtype="float64")
    lowres = degrade(truth, scale=2)
    return truth, lowres


def test_five_panels_with_values_titles_and_scales(movie):
    from xsr.upscaling import upscale

    truth, lowres = movie
    pred = truth + 0.1
    fig = plot_compare(pred, truth, lowres=lowres, time=2)
    panels = _panels(fig)
    titles = [a.get_title() for a in panels]
    assert [t.split("\n")[0] for t in titles] == [
        "low-res (8x8)",
        "bicubic x2",
        "model",
        "truth",
        "error (model - truth)",
    ]
    frame = truth["h"].isel(time=2).values
    data_range = frame.max() - frame.min()
    assert titles[2].endswith(f"PSNR {10 * np.log10(data_range**2 / 0.01):.2f} dB")
    bicubic = upscale(lowres, "bicubic", scale=2)["h"].isel(time=2).values
    psnr_bicubic = 10 * np.log10(data_range**2 / np.mean((bicubic - frame) ** 2))
    assert titles[1].endswith(f"PSNR {psnr_bicubic:.2f} dB")

    meshes = [_mesh(a) for a in panels]
    np.testing.assert_allclose(meshes[0].get_array().reshape(8, 8), lowres["h"][2].values)
    np.testing.assert_allclose(meshes[1].get_array().reshape(16, 16), bicubic, atol=1e-6)
    np.testing.assert_allclose(meshes[2].get_array().reshape(16, 16), frame + 0.1)
    np.testing.assert_allclose(meshes[3].get_array().reshape(16, 16), frame)
    np.testing.assert_allclose(meshes[4].get_array().reshape(16, 16), 0.1, rtol=1e-9)
    # Field panels share the truth's colour scale; the error scale is symmetric about 0.
    for mesh in meshes[:4]:
        assert mesh.get_clim() == pytest.approx((frame.min(), frame.max()))
    low, high = meshes[4].get_clim()
    assert low == pytest.approx(-high)
    assert high == pytest.approx(0.1)
    assert "range" in fig.get_suptitle()
    # The low-res panel covers the same domain as the fine ones.
    assert panels[0].get_xlim() == pytest.approx(panels[3].get_xlim())


def test_chunked_input_computes_only_the_drawn_frame(movie):
    truth, lowres = movie
    drawn = 1

    def only_frame(block, block_info=None):
        if block_info[0]["chunk-location"][0] != drawn:
            raise AssertionError("a frame that is not drawn was computed")
        return block

    def guarded(ds):
        data = ds["h"].data
        meta = np.array((), dtype=data.dtype)
        return ds.copy(data={"h": data.map_blocks(only_frame, dtype=data.dtype, meta=meta)})

    pred = guarded((truth + 0.1).chunk(time=1))
    lazy_truth = guarded(truth.chunk(time=1))
    lazy_low = guarded(lowres.chunk(time=1))
    with raise_if_dask_computes(max_computes=1):  # every panel in one compute
        fig = plot_compare(pred, lazy_truth, lowres=lazy_low, time=drawn)
    eager = plot_compare(truth + 0.1, truth, lowres=lowres, time=drawn)
    for lazy_axis, eager_axis in zip(_panels(fig), _panels(eager)):
        assert lazy_axis.get_title() == eager_axis.get_title()
        np.testing.assert_allclose(
            _mesh(lazy_axis).get_array(), _mesh(eager_axis).get_array(), atol=1e-6
        )


def test_panels_follow_the_inputs(movie):
    truth, lowres = movie
    pred = truth["h"] + 0.2
    assert len(_panels(plot_compare(pred, truth["h"]))) == 3
    assert len(_panels(plot_compare(pred, truth["h"], lowres=lowres["h"], baseline=False))) == 4
    fig = plot_compare(pred, truth["h"], baseline=truth["h"] - 0.5, label="fsrcnn")
    titles = [a.get_title().split("\n")[0] for a in _panels(fig)]
    assert titles == ["interpolation", "fsrcnn", "truth", "error (fsrcnn - truth)"]


def test_dataset_variable_and_time_label():
    truth = random_movie(3, 12, 12, variables=("h", "u"), dtype="float64")
    pred = truth + 1.0
    fig = plot_compare(pred, truth, variable="u", time=61.0)  # nearest label: the second frame
    truth_mesh = _mesh(_panels(fig)[1])
    np.testing.assert_allclose(
        truth_mesh.get_array().reshape(12, 12), truth["u"].isel(time=1).values
    )
    assert fig.get_suptitle().startswith("u at time=60.0")


def test_nan_cells_are_masked():
    truth = random_movie(2, 12, 12, dtype="float64")
    truth["h"][:, :3, :3] = np.nan
    fig = plot_compare(truth + 0.1, truth)
    error = _mesh(_panels(fig)[2]).get_array().reshape(12, 12)
    assert np.ma.getmaskarray(error)[:3, :3].all()
    assert not np.ma.getmaskarray(error)[3:, 3:].any()


def test_draws_into_given_axes_and_saves_png(tmp_path, movie):
    truth, _ = movie
    fig = Figure()
    axes = fig.subplots(1, 3)
    out = plot_compare(truth + 0.1, truth, ax=axes, path=tmp_path / "cmp.png")
    assert out is fig
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accessor_calls_plot_compare(movie):
    truth, lowres = movie
    fig = (truth + 0.1).sr.plot_compare(truth, lowres=lowres)
    assert len(_panels(fig)) == 5


def test_plot_compare_bad_input(movie):
    truth, lowres = movie
    with pytest.raises(ValueError, match="differ in shape"):
        plot_compare(lowres, truth)
    with pytest.raises(ValueError, match="one integer factor"):
        plot_compare(truth, truth, lowres=truth.isel(x=slice(0, 6), y=slice(0, 6)))
    with pytest.raises(ValueError, match="time=9 is out of range"):
        plot_compare(truth, truth, time=9)
    with pytest.raises(ValueError, match="variable='v' is not a data variable"):
        plot_compare(truth, truth, variable="v")
    member = xr.concat([truth, truth], dim="member")
    with pytest.raises(ValueError, match=r"select one element first, e\.g\. prediction\.isel"):
        plot_compare(member, truth)
    with pytest.raises(ValueError, match="ax must hold 3 Axes"):
        plot_compare(truth, truth, ax=Figure().subplots(1, 2))
    with pytest.raises(ValueError, match="baseline=True is ambiguous"):
        plot_compare(truth, truth, baseline=True)
    with pytest.raises(TypeError, match="truth must be an xarray"):
        plot_compare(truth, np.zeros((16, 16)))


# ---------------------------------------------------------------------------------------------
# plot_psnr_over_time
# ---------------------------------------------------------------------------------------------


def test_psnr_curves_from_a_compare_table(tmp_path):
    truth = random_movie(5, 16, 16, dtype="float64")["h"]
    table = compare(truth, good=truth + 0.01, bad=truth + 0.3)
    fig = plot_psnr_over_time(table, tmp_path / "psnr.png")
    (axis,) = fig.axes
    lines = axis.get_lines()
    assert [line.get_label() for line in lines] == ["good", "bad"]
    np.testing.assert_allclose(lines[0].get_ydata(), table["psnr"].sel(candidate="good").values)
    np.testing.assert_allclose(lines[1].get_xdata(), truth["time"].values)
    assert axis.get_ylabel() == "PSNR (dB)"
    assert axis.get_xlabel() == "time (s)"
    assert "data range" in axis.get_title()
    assert (tmp_path / "psnr.png").stat().st_size > 0


def test_one_panel_per_variable_and_other_metrics():
    truth = random_movie(3, 16, 16, variables=("h", "u"), dtype="float64")
    table = compare(truth, a=truth + 0.1, b=truth + 0.2)
    fig = plot_psnr_over_time(table)
    assert [a.get_title() for a in fig.axes] == [
        f"{v} (data range {float(table['data_range'].sel(variable=v)):.4g})" for v in ("h", "u")
    ]
    fig = plot_psnr_over_time(table, variable="u", metric="rmse")
    (axis,) = fig.axes
    np.testing.assert_allclose(axis.get_lines()[1].get_ydata(), 0.2)
    assert axis.get_ylabel() == "RMSE"
    with pytest.raises(ValueError, match="variable='v' is not in the table"):
        plot_psnr_over_time(table, variable="v")
    with pytest.raises(ValueError, match="ax= draws one panel"):
        plot_psnr_over_time(table, ax=Figure().subplots())


def test_psnr_curves_from_a_dict_with_infinite_values():
    curves = {"x": np.array([30.0, np.inf, 31.0]), "y": xr.DataArray([20.0, 21.0, 22.0])}
    fig = plot_psnr_over_time(curves)
    x_line, y_line = fig.axes[0].get_lines()
    assert np.isnan(x_line.get_ydata()[1])  # identical frame: a gap, not an infinite axis
    np.testing.assert_allclose(y_line.get_ydata(), [20.0, 21.0, 22.0])


def test_plot_psnr_over_time_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plot_psnr_over_time({})
    with pytest.raises(ValueError, match=r"Dataset of xsr\.metrics\.compare"):
        plot_psnr_over_time(xr.Dataset({"psnr": ("time", [1.0, 2.0])}))
    with pytest.raises(TypeError, match="got list"):
        plot_psnr_over_time([1.0, 2.0])
    with pytest.raises(ValueError, match="one value per frame"):
        plot_psnr_over_time({"a": np.zeros((2, 3))})


def test_lazy_table_is_computed_once():
    truth = random_movie(4, 16, 16, dtype="float64").chunk(time=1)
    table = compare(truth, a=truth + 0.1, b=truth + 0.2)  # lazy, with a lazy data range
    with raise_if_dask_computes(max_computes=1):
        fig = plot_psnr_over_time(table)
    eager = compare(truth.compute(), a=truth.compute() + 0.1, b=truth.compute() + 0.2)
    (axis,) = fig.axes
    np.testing.assert_allclose(
        axis.get_lines()[1].get_ydata(), eager["psnr"].sel(variable="h", candidate="b").values
    )
    assert "data range" in axis.get_title()

"""Tests of xsr.coords: spatial dims, coordinate and bounds coarsening/refinement, history."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.coords import (
    append_history,
    check_uniform,
    coarsen_axis,
    coarsen_bounds,
    coarsen_coord,
    is_global_longitude,
    periodic_dims,
    refine_axis,
    refine_axis_bounds,
    refine_bounds,
    refine_coord,
    refine_latlon,
    sanitise_history_text,
    spatial_dims,
)

# ---------------------------------------------------------------- spatial_dims


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        (("time", "y", "x"), ("y", "x")),
        (("member", "time", "lat", "lon"), ("lat", "lon")),
        (("latitude", "longitude"), ("latitude", "longitude")),
        (("time", "rlat", "rlon"), ("rlat", "rlon")),
    ],
)
def test_spatial_dims_by_name(dims, expected):
    da = xr.DataArray(np.zeros((2,) * len(dims)), dims=dims)
    assert spatial_dims(da) == expected
    assert spatial_dims(da.to_dataset(name="v")) == expected


def test_spatial_dims_by_cf_axis_and_standard_name():
    da = xr.DataArray(
        np.zeros((2, 3, 4)),
        dims=("t", "j", "i"),
        coords={"j": ("j", np.arange(3), {"axis": "Y"}), "i": ("i", np.arange(4), {"axis": "X"})},
    )
    assert spatial_dims(da) == ("j", "i")
    da2 = xr.DataArray(
        np.zeros((3, 4)),
        dims=("nj", "ni"),
        coords={
            "nj": ("nj", np.arange(3), {"standard_name": "projection_y_coordinate"}),
            "ni": ("ni", np.arange(4), {"standard_name": "projection_x_coordinate"}),
        },
    )
    assert spatial_dims(da2) == ("nj", "ni")


def test_spatial_dims_nav_lat_is_not_a_dim_name():
    da = xr.DataArray(
        np.zeros((3, 4)),
        dims=("nav_lat", "nav_lon"),
    )
    with pytest.raises(ValueError, match="dims="):
        spatial_dims(da)


def test_spatial_dims_explicit_and_errors():
    da = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "a", "b"))
    assert spatial_dims(da, dims=("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="Cannot tell which dimensions"):
        spatial_dims(da)
    with pytest.raises(ValueError, match=r"dims=.*'c'"):
        spatial_dims(da, dims=("a", "c"))
    with pytest.raises(ValueError, match="pair"):
        spatial_dims(da, dims="ab")
    with pytest.raises(ValueError, match="pair"):
        spatial_dims(da, dims=("a",))
    with pytest.raises(ValueError, match="different"):
        spatial_dims(da, dims=("a", "a"))
    both = xr.DataArray(np.zeros((2, 2, 2, 2)), dims=("y", "x", "lat", "lon"))
    with pytest.raises(ValueError, match="Several"):
        spatial_dims(both)


# ---------------------------------------------------------------- coarsen / refine coords

uniform_coords = st.builds(
    lambda start, step, n, desc: start + (-1 if desc else 1) * step * np.arange(n),
    st.floats(-1e4, 1e4, allow_nan=False),
    st.floats(1e-3, 1e3, allow_nan=False),
    st.integers(2, 40),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(c=uniform_coords, scale=st.integers(1, 7))
def test_refine_then_coarsen_round_trip(c, scale):
    fine = refine_coord(c, scale)
    assert fine.shape == (c.size * scale,)
    back = coarsen_coord(fine, scale)
    step = abs(c[1] - c[0])
    np.testing.assert_allclose(back, c, rtol=0, atol=1e-9 * (np.abs(c).max() + step))
    # fine grid is uniform with spacing d / scale, in the same direction
    d_fine = check_uniform(fine, "fine")
    np.testing.assert_allclose(d_fine, (c[1] - c[0]) / scale, rtol=1e-6)


def test_refine_coord_formula_and_descending():
    np.testing.assert_allclose(refine_coord([1.0, 3.0], 2), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(refine_coord([3.0, 1.0], 2), [3.5, 2.5, 1.5, 0.5])
    # c + (k + 0.5)/s*d - d/2 with d=3, s=3
    np.testing.assert_allclose(refine_coord([0.0, 3.0], 3), [-1, 0, 1, 2, 3, 4])
    np.testing.assert_allclose(refine_coord([5.0], 2, spacing=2.0), [4.5, 5.5])
    assert refine_coord(np.array([1.0, 2.0], dtype="float32"), 2).dtype == np.float32
    assert refine_coord(np.array([1, 2]), 2).dtype == np.float64


def test_coarsen_coord_values_dtypes_datetimes():
    np.testing.assert_allclose(coarsen_coord([0.5, 1.5, 2.5, 3.5], 2), [1.0, 3.0])
    np.testing.assert_allclose(coarsen_coord([4, 3, 2, 1], 2), [3.5, 1.5])
    assert coarsen_coord(np.arange(4, dtype="float32"), 2).dtype == np.float32
    t = np.array(["2000-01-01T00", "2000-01-01T02", "2000-01-01T04", "2000-01-01T06"], "M8[ns]")
    out = coarsen_coord(t, 2)
    assert out.dtype == t.dtype
    np.testing.assert_array_equal(out, np.array(["2000-01-01T01", "2000-01-01T05"], "M8[ns]"))
    fine_t = refine_coord(out, 2)
    np.testing.assert_array_equal(fine_t, t)


def test_coord_errors():
    with pytest.raises(ValueError, match="not a multiple"):
        coarsen_coord(np.arange(5.0), 2)
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="scale must be a positive integer"):
            coarsen_coord(np.arange(4.0), bad)
        with pytest.raises(ValueError, match="scale must be a positive integer"):
            refine_coord(np.arange(4.0), bad)
    with pytest.raises(ValueError, match="empty"):
        coarsen_coord([], 2)
    with pytest.raises(ValueError, match="one-dimensional"):
        refine_coord(np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="spacing="):
        refine_coord([1.0], 2)
    with pytest.raises(ValueError, match="not uniformly spaced"):
        refine_coord([0.0, 1.0, 3.0], 2)
    with pytest.raises(TypeError, match="numeric"):
        coarsen_coord(np.array(["a", "b"]), 2)


def test_check_uniform():
    assert check_uniform([0.5, 1.5, 2.5], "x") == 1.0
    assert check_uniform([10.0, 5.0, 0.0], "lat") == -5.0
    lat32 = np.linspace(-89.5, 89.5, 180, dtype="float32")
    assert check_uniform(lat32, "lat") == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"lat is not uniformly spaced.*interp"):
        check_uniform([0.0, 1.0, 2.5], "lat")
    with pytest.raises(ValueError, match=r"x has repeated values \(x\[0\] == x\[1\]"):
        check_uniform([1.0, 1.0, 1.0], "x")
    with pytest.raises(ValueError, match="x is not uniformly"):
        check_uniform([0.0, 1.0, 0.0], "x")
    with pytest.raises(ValueError, match="single value"):
        check_uniform([1.0], "x")
    with pytest.raises(ValueError, match="NaN"):
        check_uniform([0.0, np.nan, 2.0], "x")


# ---------------------------------------------------------------- bounds


def test_coarsen_bounds_ascending_and_descending():
    b = np.array([[0, 1], [1, 2], [2, 3], [3, 4]], dtype=float)
    np.testing.assert_array_equal(coarsen_bounds(b, 2), [[0, 2], [2, 4]])
    np.testing.assert_array_equal(coarsen_bounds(b[::-1, ::-1], 2), [[4, 2], [2, 0]])
    with pytest.raises(ValueError, match="not a multiple"):
        coarsen_bounds(b[:3], 2)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        coarsen_bounds(np.zeros((4, 3)), 2)


@settings(max_examples=40, deadline=None)
@given(c=uniform_coords, scale=st.integers(1, 5))
def test_refine_bounds_round_trip_and_matches_refined_centres(c, scale):
    d = c[1] - c[0]
    bounds = np.stack([c - d / 2, c + d / 2], axis=1)
    fine_b = refine_bounds(bounds, scale)
    assert fine_b.shape == (c.size * scale, 2)
    np.testing.assert_allclose(coarsen_bounds(fine_b, scale), bounds, rtol=0, atol=1e-12)
    # fine cell centres are the refined coordinate
    atol = 1e-9 * (np.abs(c).max() + abs(d))
    np.testing.assert_allclose(fine_b.mean(axis=1), refine_coord(c, scale), rtol=0, atol=atol)


# ---------------------------------------------------------------- longitude, history


def test_is_global_longitude():
    assert is_global_longitude(np.arange(0.5, 360.0, 1.0))
    assert is_global_longitude(np.arange(-179.75, 180.0, 0.5, dtype="float32"), "degrees_east")
    assert is_global_longitude(np.linspace(0, 2 * np.pi, 64, endpoint=False), units="radians")
    rolled = np.roll(np.arange(0.5, 360.0, 1.0), 180)
    assert is_global_longitude(rolled)
    assert is_global_longitude(rolled[::-1])
    assert not is_global_longitude(np.roll(np.arange(0.5, 359.0, 1.0), 100))
    assert not is_global_longitude(np.arange(0.5, 359.0, 1.0))
    assert not is_global_longitude(np.arange(0.5, 180.0, 1.0))
    assert not is_global_longitude(np.arange(0.5, 360.0, 1.0), units="m")
    assert not is_global_longitude(np.array([0.0, 1.0, 5.0]))
    assert not is_global_longitude(np.array([1.0]))


def test_append_history():
    attrs = {"title": "run"}
    out = append_history(attrs, "first")
    assert attrs == {"title": "run"}
    assert out["title"] == "run"
    stamp, text = out["history"].split(": ", 1)
    assert text == "first"
    assert stamp.endswith("+00:00")
    out2 = append_history(out, "second")
    lines = out2["history"].split("\n")
    assert len(lines) == 2
    assert lines[0] == out["history"]
    assert lines[1].endswith(": second")


def test_periodic_dims_reads_the_period_attribute():
    x = np.arange(8) * 2.0 + 1.0
    y = np.arange(4) * 2.0 + 1.0
    da = xr.DataArray(
        np.zeros((4, 8)),
        dims=("y", "x"),
        coords={"x": ("x", x, {"period": 16.0}), "y": ("y", y, {"period": 8.0})},
    )
    assert periodic_dims(da, ("y", "x")) == (True, True)
    assert periodic_dims(da.isel(x=slice(0, 4)), ("y", "x")) == (True, False)
    assert periodic_dims(da.assign_coords(x=da.x.assign_attrs(period=17.0)), ("x",)) == (False,)
    assert periodic_dims(da.drop_vars("x"), ("y", "x")) == (True, False)
    # a rounded stored step (ETOPO5: 4320 x 0.0833341 = 360.003) still spans the period
    lon = ("lon", np.arange(4320) * 0.0833341, {"period": 360.0})
    etopo = xr.DataArray(np.zeros(4320), dims="lon", coords={"lon": lon})
    assert periodic_dims(etopo, ("lon",)) == (True,)
    assert periodic_dims(etopo[:-1], ("lon",)) == (False,)
    with pytest.raises(ValueError, match=r"'x'.*period"):
        periodic_dims(da.assign_coords(x=da.x.assign_attrs(period="wide")), ("x",))
    with pytest.raises(ValueError, match="positive"):
        periodic_dims(da.assign_coords(x=da.x.assign_attrs(period=-16.0)), ("x",))


def test_periodic_dims_detects_global_longitude_without_attribute():
    lon = xr.DataArray(np.arange(0.5, 360.0, 1.0), dims="lon", attrs={"units": "degrees_east"})
    da = xr.DataArray(np.zeros((2, 360)), dims=("lat", "lon"), coords={"lon": lon})
    assert periodic_dims(da, ("lat", "lon")) == (False, True)


# ---------------------------------------------------------------- the sphere (issue 17 item 8)


def _named(values, name, **attrs):
    return xr.DataArray(np.asarray(values, dtype="float64"), dims=name, name=name, attrs=attrs)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 90),
    scale=st.integers(1, 5),
    north_first=st.booleans(),
    node=st.booleans(),
)
def test_latitudes_never_leave_the_sphere_and_coarsen_back(n, scale, north_first, node):
    step = 180.0 / (n - 1) if node else 180.0 / n
    lat = np.linspace(-90, 90, n) if node else -90 + step / 2 + step * np.arange(n)
    lat = lat[::-1] if north_first else lat
    coord = _named(lat, "lat", units="degrees_north")
    fine = refine_axis(coord, scale)
    assert np.all(np.abs(fine) <= 90.0)
    assert np.unique(fine).size == fine.size
    assert np.all(np.sign(np.diff(fine)) == np.sign(lat[1] - lat[0]))
    back = coarsen_axis(_named(fine, "lat", units="degrees_north"), scale)
    np.testing.assert_allclose(back, lat, atol=1e-9)
    if not node:  # a cell-centre grid is refined exactly as before
        np.testing.assert_allclose(fine, refine_coord(lat, scale))


def test_node_grid_pole_cells_and_their_bounds():
    lat = _named(np.linspace(90, -90, 73), "latitude", standard_name="latitude")
    fine = refine_axis(lat, 2)
    np.testing.assert_allclose(fine[:3], [89.6875, 89.0625, 88.125])
    np.testing.assert_allclose(fine[-2:], [-89.0625, -89.6875])
    naive = np.stack([lat.values + 1.25, lat.values - 1.25], axis=1)  # 91.25 at the pole
    fb = refine_axis_bounds(naive, 2, lat)
    assert np.all(np.abs(fb) <= 90.0)
    np.testing.assert_allclose(fb.mean(axis=1), fine)  # centres are the bounds' midpoints


@pytest.mark.parametrize(
    ("start", "expected_first", "lo", "hi"),
    [(0.0, 359.375, 0.0, 360.0), (-180.0, 179.375, -180.0, 180.0)],
)
def test_global_longitudes_keep_their_range(start, expected_first, lo, hi):
    lon = _named(start + 2.5 * np.arange(144), "lon", units="degrees_east")
    fine = refine_axis(lon, 2)
    assert fine[0] == expected_first
    assert np.all((fine >= lo) & (fine < hi))
    np.testing.assert_allclose(coarsen_axis(_named(fine, "lon"), 2), lon.values)
    bounds = np.stack([lon.values - 1.25, lon.values + 1.25], axis=1)
    fb = refine_axis_bounds(bounds, 2, lon)
    np.testing.assert_allclose(fb.mean(axis=1), fine)
    np.testing.assert_allclose(fb[:, 1] - fb[:, 0], 1.25)


def test_axis_rules_leave_other_coordinates_alone():
    metres = _named(500.0 + 1000.0 * np.arange(8), "rlat")  # named like a latitude, in metres
    np.testing.assert_allclose(refine_axis(metres, 2), refine_coord(metres.values, 2))
    x = _named(np.arange(5.0), "x")
    np.testing.assert_allclose(refine_axis(x, 3), refine_coord(x.values, 3))
    np.testing.assert_allclose(coarsen_axis(_named(refine_axis(x, 3), "x"), 3), x.values)


@pytest.mark.parametrize("bad", ["\n", "\r\n", "\x00", "\x1b[2J", "\u2028", "\u2029", "\x85"])
def test_history_lines_cannot_be_forged(bad):
    line = f"model=x{bad}2020-01-01T00:00:00+00:00: xsr upscale: model=trusted"
    out = append_history({"history": "first"}, line)
    assert out["history"].splitlines()[0] == "first"
    assert len(out["history"].splitlines()) == 2
    assert bad not in out["history"].splitlines()[1]
    assert sanitise_history_text("plain text, ünïcode") == "plain text, ünïcode"


def test_refine_latlon_around_a_pole():
    # a small polar-stereographic-like patch centred on the north pole: longitudes take every
    # value, so interpolating raw longitudes would be meaningless there
    def geo(y, x):
        r = np.hypot(x, y)
        return 90.0 - r, np.rad2deg(np.arctan2(y, x))

    y = np.arange(-3.5, 4.0, 1.0)
    coarse = geo(*np.meshgrid(y, y, indexing="ij"))
    flat, flon = refine_latlon(*coarse, 2)
    fy = refine_coord(y, 2)
    exact_lat, exact_lon = geo(*np.meshgrid(fy, fy, indexing="ij"))
    np.testing.assert_allclose(flat, exact_lat, atol=0.05)
    dlon = (flon - exact_lon + 180.0) % 360.0 - 180.0
    assert np.abs(dlon * np.cos(np.deg2rad(exact_lat))).max() < 0.05
    with pytest.raises(ValueError, match="one shape"):
        refine_latlon(coarse[0], coarse[1][:2], 2)


def test_refine_axis_float32_global_longitude_within_its_rounding() -> None:
    # OSTIA's 432 float32 longitudes (0.8333 degree steps, uneven by float32 rounding)
    lon = xr.DataArray(
        (np.arange(432) * (360.0 / 432)).astype("float32"),
        dims="longitude",
        attrs={"units": "degrees_east", "standard_name": "longitude"},
    )
    fine = refine_axis(lon, 2)
    assert fine.dtype == np.float32
    assert fine.size == 864
    # wrapped into [0, 360): the first fine centre (-0.21) is 359.79
    np.testing.assert_allclose(np.diff(fine) % 360.0, 360.0 / 864, atol=1e-4)
    # and back: the first block mean rounds to 360.0 in float32, which is 0 in [0, 360)
    back = coarsen_axis(xr.DataArray(fine, dims="longitude", attrs=lon.attrs), 2)
    assert back.dtype == np.float32
    assert back[0] == 0.0
    assert np.all((back >= 0.0) & (back < 360.0))
    np.testing.assert_allclose(back, lon.values, atol=1e-4)


@pytest.mark.parametrize("scale", [2, 4])
def test_refine_axis_float32_longitude_from_zero_stays_in_range(scale) -> None:
    # OSTIA's float32 longitudes from 0, coarsened then refined: the first fine centre is 0 up
    # to float32 rounding, never the 360 a rounding error below 0 wraps to
    attrs = {"units": "degrees_east", "standard_name": "longitude"}
    lon = xr.DataArray((np.arange(432) * (360.0 / 432)).astype("float32"), dims="lon", attrs=attrs)
    coarse = xr.DataArray(coarsen_axis(lon, scale).astype("float32"), dims="lon", attrs=attrs)
    fine = refine_axis(coarse, scale)
    assert fine.dtype == np.float32
    assert np.all((fine >= 0.0) & (fine < 360.0))
    np.testing.assert_allclose(fine, lon.values, atol=1e-4)


@pytest.mark.parametrize("n", [73, 181, 217, 433])
def test_float32_node_latitudes_are_uniform_enough(n):
    lat = xr.DataArray(np.linspace(90, -90, n).astype("float32"), dims="lat", name="lat")
    fine = refine_axis(lat, 2)
    assert fine.dtype == np.float32
    assert np.abs(fine).max() <= 90.0
    back = coarsen_axis(xr.DataArray(fine, dims="lat", name="lat"), 2)
    np.testing.assert_allclose(back, lat.values, atol=1e-4)

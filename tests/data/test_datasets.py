"""The labelled Dataset boundary: xsr.data.shallow_water and xsr.data.phantom_movie."""

from __future__ import annotations

import datetime
import subprocess
import sys

import dask
import numpy as np
import pytest
import xarray as xr

from xsr.coords import periodic_dims
from xsr.data import phantom_movie, shallow_water
from xsr.data.datasets import PHANTOM_VARIABLES, SHALLOW_WATER_VARIABLES
from xsr.data.swe import BlowUpError, simulate
from xsr.degradation import degrade
from xsr.testing import raise_if_dask_computes

SMALL = {"nx": 16, "ny": 12, "preset": "turbulent", "frames": 3, "interval": 1800.0}
#: A short spin-up, where the spin-up is not what a test is about.
SHORT = {"spin_up": "2h"}


@pytest.fixture(scope="module")
def swe() -> xr.Dataset:
    return shallow_water(**SMALL, seed=4)


def test_dataset_layout_and_cf_labels(swe):
    assert set(swe.data_vars) == {"h", "u", "v", "vorticity", "tracer"}
    for name, var in swe.data_vars.items():
        assert var.dims == ("time", "y", "x")
        assert var.shape == (3, 12, 16)
        assert var.dtype == np.float64
        assert var.attrs == SHALLOW_WATER_VARIABLES[name]
        assert var.attrs["units"]
        assert var.attrs["long_name"]
    assert swe["h"].attrs["standard_name"] == "sea_floor_depth_below_sea_surface"
    assert swe["u"].attrs["standard_name"] == "sea_water_x_velocity"
    assert swe.x.attrs["axis"] == "X"
    assert swe.y.attrs["axis"] == "Y"
    assert swe.time.attrs["axis"] == "T"
    assert swe.x.attrs["standard_name"] == "projection_x_coordinate"
    assert swe.y.attrs["standard_name"] == "projection_y_coordinate"
    assert swe.x.attrs["units"] == "m"
    assert swe.time.attrs["units"] == "s"
    np.testing.assert_allclose(swe.x, (np.arange(16) + 0.5) * 50e3)
    # the turbulent preset spins up first: time counts from the start of the run
    spin_up = swe.time.attrs["spin_up_end"]
    assert spin_up > 0
    assert spin_up == swe.attrs["spin_up"]
    np.testing.assert_allclose(swe.time, spin_up + np.array([0.0, 1800.0, 3600.0]))


def test_all_parameters_in_attrs(swe):
    attrs = swe.attrs
    for key in ("nx", "ny", "frames", "seed", "init", "interval", "dt", "dx", "dy", "g", "depth"):
        assert key in attrs
    for key in ("f0", "beta", "nu4", "amplitude", "dtype", "backend", "steps_per_frame", "dt_max"):
        assert key in attrs
    for key in ("preset", "drag", "forcing_power", "forcing_wavenumber", "tracer_relax"):
        assert key in attrs
    assert attrs["seed"] == 4
    assert attrs["depth"] == 100.0
    assert attrs["preset"] == "turbulent"
    assert attrs["dt"] * attrs["steps_per_frame"] == pytest.approx(1800.0)
    assert "xsr.data.shallow_water(" in attrs["history"]
    assert attrs["Conventions"].startswith("CF-")


def test_fields_equal_the_array_core(swe):
    run = simulate(16, 12, preset="turbulent", frames=3, interval=1800.0, seed=4)
    for name in swe.data_vars:
        np.testing.assert_array_equal(swe[name].values, run.fields[name])


def test_same_seed_identical_different_seed_different(swe):
    xr.testing.assert_identical(swe.drop_attrs(), shallow_water(**SMALL, seed=4).drop_attrs())
    other = shallow_water(**SMALL, seed=5)
    assert not np.array_equal(other["h"].values, swe["h"].values)


def test_netcdf_roundtrip_keeps_labels(tmp_path, swe):
    path = tmp_path / "swe.nc"
    swe.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_allclose(back, swe)
        assert back["h"].attrs["standard_name"] == swe["h"].attrs["standard_name"]
        assert back.time.dtype == np.float64  # seconds since the start, left as numbers


@pytest.mark.parametrize("init", ["vortices", "bumps", "dam_break"])
def test_inits_and_physical_options(init):
    ds = shallow_water(
        16, 16, preset="turbulent", frames=2, init=init, interval="30min", beta=1e-11, f0=5e-5
    )
    assert ds.attrs["init"] == init
    assert (ds.attrs["f0"], ds.attrs["beta"]) == (5e-5, 1e-11)
    assert ds.attrs["interval"] == 1800.0
    assert bool(np.isfinite(ds["h"]).all())
    total = ds["h"].sum(("y", "x"))
    assert float(abs(total[-1] - total[0]) / total[0]) < 1e-10


def test_time_arguments():
    a = shallow_water(8, 8, frames=3, duration="2h", spin_up=0)
    np.testing.assert_allclose(a.time, [0.0, 3600.0, 7200.0])
    b = shallow_water(8, 8, frames=2, interval=datetime.timedelta(minutes=20), spin_up="1h")
    np.testing.assert_allclose(b.time, [3600.0, 4800.0])
    assert b.time.attrs["spin_up_end"] == 3600.0
    c = shallow_water(8, 8, frames=2, interval=np.timedelta64(600, "s"), spin_up="25min")
    np.testing.assert_allclose(c.time, [1800.0, 2400.0])  # spin-up rounded up to whole frames
    assert bool((c.time >= c.time.attrs["spin_up_end"]).all())


def test_domain_lengths_set_the_spacing():
    ds = shallow_water(8, 10, frames=1, Lx=400e3, Ly=200e3)
    assert ds.attrs["dx"] == 50e3
    assert ds.attrs["dy"] == 20e3
    np.testing.assert_allclose(ds.y[-1], 200e3 - 10e3)


def test_backends_give_the_same_dataset():
    # no spin-up: rounding differences between the backends would grow chaotically over one
    a = shallow_water(12, 12, frames=3, interval=1800.0, spin_up=0, backend="torch")
    b = shallow_water(12, 12, frames=3, interval=1800.0, spin_up=0)
    assert (a.attrs["backend"], b.attrs["backend"]) == ("torch", "numpy")
    for name in a.data_vars:
        scale = float(abs(b[name]).max())
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12 * scale)


def test_float32_output():
    ds = shallow_water(8, 8, frames=2, dtype="float32", **SHORT)
    assert all(v.dtype == np.float32 for v in ds.data_vars.values())


def test_ensemble_is_lazy_one_task_per_member():
    with raise_if_dask_computes():
        ens = shallow_water(**SMALL, **SHORT, seed=9, members=3)
    assert ens["h"].dims == ("member", "time", "y", "x")
    assert ens["h"].shape == (3, 3, 12, 16)
    for var in ens.data_vars.values():
        assert isinstance(var.data, dask.array.Array)
        assert var.data.npartitions == 3
    # the simulations: exactly one task per member, shared by all five variables
    graph = dict(ens.__dask_graph__())
    sim_keys = {k for k in graph if dask.utils.key_split(k) == "shallow_water-member"}
    assert len(sim_keys) == 3
    seeds = ens.seed.values
    assert len(set(seeds.tolist())) == 3
    # deterministic member seeds, and member m equals the single run with its seed
    again = shallow_water(**SMALL, **SHORT, seed=9, members=3)
    np.testing.assert_array_equal(again.seed.values, seeds)
    computed = ens.compute()
    single = shallow_water(**SMALL, **SHORT, seed=int(seeds[1]))
    xr.testing.assert_equal(computed.isel(member=1).drop_vars(["member", "seed"]), single)
    assert not np.array_equal(computed["h"][0].values, computed["h"][2].values)
    assert computed.attrs["members"] == 3


def test_ensemble_validates_eagerly():
    with raise_if_dask_computes(), pytest.raises(ValueError, match="init must be one of"):
        shallow_water(8, 8, frames=2, members=2, init="nope")
    with pytest.raises(ValueError, match="members must be a positive integer"):
        shallow_water(8, 8, frames=2, members=0)


def test_progress_bar_writes_to_stderr(capsys):
    shallow_water(8, 8, frames=3, progress=True, **SHORT)
    assert "shallow water" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nx": 0}, "nx must be finite and > 0"),
        ({"frames": 0}, "frames must be finite and > 0"),
        ({"init": "flood"}, "init must be one of"),
        ({"interval": "soon"}, "interval must be seconds, a string such as '1h'"),
        ({"interval": -60.0}, "interval must be a positive duration"),
        ({"interval": 60.0, "duration": "1h"}, "either interval or duration"),
        ({"duration": "1h", "frames": 1}, "duration needs frames >= 2"),
        ({"dx": 1e3, "Lx": 1e5}, "either dx or Lx"),
        ({"Ly": -1.0}, "Ly must be finite and > 0"),
        ({"dt": 1e6}, "largest stable time step is"),
        ({"depth": 0.0}, "depth must be finite and > 0"),
        ({"preset": "calm"}, "preset must be one of"),
        ({"spin_up": -1.0}, "spin_up must be a duration >= 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"nx": 8, "ny": 8, "frames": 2, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        shallow_water(**args)


def test_blow_up_surfaces_with_the_step():
    # a non-rotating flow at Froude number ~0.9 forms bores and dries out: a clear error, not NaNs
    with pytest.raises(BlowUpError, match=r"blew up at step \d+ .*non-positive layer thickness"):
        shallow_water(16, 16, preset="smooth", frames=20, f0=0.0, amplitude=0.9, interval=3600.0)


def test_periodic_dims_travel_with_the_data_through_degrade():
    ds = shallow_water(16, 12, preset="smooth", frames=2, Lx=800e3, Ly=300e3)
    assert (ds.x.attrs["period"], ds.y.attrs["period"]) == (800e3, 300e3)
    assert periodic_dims(ds, ("y", "x")) == (True, True)
    for data in (ds, ds.chunk({"time": 1})):
        low = degrade(data, scale=2, method="coarsen")
        assert (low.x.attrs["period"], low.y.attrs["period"]) == (800e3, 300e3)
        assert periodic_dims(low, ("y", "x")) == (True, True)
        # the coarse cells tile the same domain
        assert float(low.x[1] - low.x[0]) * low.sizes["x"] == 800e3


def test_spin_up_marker_and_deprecated_depth_name():
    turbulent = shallow_water(16, 16, preset="turbulent", frames=2, seed=3)
    assert turbulent.time.attrs["spin_up_end"] > 0
    assert bool((turbulent.time >= turbulent.time.attrs["spin_up_end"]).all())
    smooth = shallow_water(16, 16, preset="smooth", frames=2)
    assert smooth.time.attrs["spin_up_end"] == 0.0
    assert float(smooth.time[0]) == 0.0
    with pytest.warns(DeprecationWarning, match="pass depth="):
        old = shallow_water(8, 8, preset="smooth", frames=2, H=50.0)
    xr.testing.assert_identical(old, shallow_water(8, 8, preset="smooth", frames=2, depth=50.0))


def test_phantom_movie_dataset():
    ds = phantom_movie(24, 16, frames=5, seed=3, interval="2s")
    var = ds["intensity"]
    assert var.dims == ("time", "y", "x")
    assert var.shape == (5, 16, 24)
    assert var.attrs == PHANTOM_VARIABLES["intensity"]
    assert float(var.min()) >= 0.0
    assert float(var.max()) <= 1.0
    np.testing.assert_allclose(ds.time, [0.0, 2.0, 4.0, 6.0, 8.0])
    assert ds.x.attrs["axis"] == "X"
    assert ds.y.attrs["axis"] == "Y"
    np.testing.assert_allclose([ds.x.min() + ds.x.max(), ds.y.min() + ds.y.max()], 0.0, atol=1e-12)
    assert ds.attrs["seed"] == 3
    xr.testing.assert_identical(
        ds.drop_attrs(), phantom_movie(24, 16, frames=5, seed=3, interval="2s").drop_attrs()
    )
    other = phantom_movie(24, 16, frames=5, seed=4, interval="2s")
    assert not np.array_equal(other["intensity"].values, var.values)
    with pytest.raises(ValueError, match="frames must be a positive integer"):
        phantom_movie(8, 8, frames=0)


def test_package_import_does_not_import_torch():
    code = "import sys, xsr.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

"""Labelled Datasets from the simulation core: the one boundary between arrays and xarray.

:func:`shallow_water` and :func:`phantom_movie` call the array cores
(:mod:`xsr.data.swe`, :mod:`xsr.data.phantom`) and label their output from the tables
below (units, long names, CF standard names), in the manner of pyqg's ``xarray_output.py``. Nothing
else in xsr turns simulator state into a Dataset.

Coordinates: ``x`` and ``y`` are cell centres in metres (``projection_x_coordinate`` /
``projection_y_coordinate``, ``axis`` X / Y) and carry ``period``, the domain length: the domain is
doubly periodic, and :func:`xsr.coords.periodic_dims` reads this mark, so upscaling wraps the
axes with no ``periodic=`` argument. ``time`` is in seconds since the start of the run
(``units="s"``, ``axis="T"``), a plain float coordinate rather than datetimes, because an idealised
run has no calendar date; ``xr.decode_cf`` leaves it alone and it can be turned into datetimes with
``ds.assign_coords(time=start + ds.time.values * np.timedelta64(1, "s"))``. Its attribute
``spin_up_end`` (seconds, like the coordinate) is the end of the spin-up: frames before it are not
statistically steady, and evaluations leave them out.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from xsr._version import __version__
from xsr.coords import append_history
from xsr.data.phantom import phantom as _phantom_array
from xsr.data.swe import (
    DEFAULT_PRESET,
    FIELDS,
    SWConfig,
    choose_backend,
    configure,
    run,
)

__all__ = [
    "PHANTOM_VARIABLES",
    "SHALLOW_WATER_VARIABLES",
    "SPIN_UP_ATTR",
    "phantom_movie",
    "shallow_water",
]

#: Attributes of the shallow-water output variables (one table: the single source of labels).
SHALLOW_WATER_VARIABLES: dict[str, dict[str, str]] = {
    "h": {
        "units": "m",
        "long_name": "layer thickness (total water depth over the flat bottom)",
        "standard_name": "sea_floor_depth_below_sea_surface",
    },
    "u": {
        "units": "m s-1",
        "long_name": "x velocity at cell centres",
        "standard_name": "sea_water_x_velocity",
    },
    "v": {
        "units": "m s-1",
        "long_name": "y velocity at cell centres",
        "standard_name": "sea_water_y_velocity",
    },
    "vorticity": {"units": "s-1", "long_name": "relative vorticity at cell centres"},
    "tracer": {"units": "1", "long_name": "passive tracer concentration"},
}

#: Attributes of the phantom movie's variable.
PHANTOM_VARIABLES: dict[str, dict[str, str]] = {
    "intensity": {"units": "1", "long_name": "moving Shepp-Logan phantom intensity"},
}

_TIME_ATTRS = {
    "units": "s",
    "long_name": "time since the start of the run",
    "standard_name": "time",
    "axis": "T",
}

#: Attribute of the time coordinate holding the end of the spin-up (same units as the time):
#: frames with an earlier time are not statistically steady and evaluations leave them out.
SPIN_UP_ATTR = "spin_up_end"


def _seconds(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Seconds from a number, a pandas-style string ("1h", "2D"), a timedelta or timedelta64."""
    if isinstance(value, bool):
        raise TypeError(
            f"{name} must be seconds, a string such as '1h' or a timedelta, got {value!r}"
        )
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, np.timedelta64
    ):
        seconds = float(value)
    else:
        try:
            seconds = pd.Timedelta(value).total_seconds()
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{name} must be seconds, a string such as '1h' or '2D', or a timedelta; "
                f"got {value!r}"
            ) from err
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "a duration >= 0" if allow_zero else "a positive duration"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return seconds


def _coord_attrs(axis: str, period: float) -> dict[str, Any]:
    # No "spacing" attribute: degrading or upscaling keeps coordinate attributes, and a spacing
    # would then be wrong; the period (the domain length) stays true on every grid of the domain.
    return {
        "units": "m",
        "long_name": f"{axis.lower()} coordinate of cell centres",
        "standard_name": f"projection_{axis.lower()}_coordinate",
        "axis": axis,
        # the domain is periodic along this axis, with this length (xsr.coords.periodic_dims)
        "period": period,
    }


def _run_member(config: SWConfig, device: Any, compile: bool) -> np.ndarray:
    """One ensemble member as ``(variable, time, y, x)``; runs inside a dask task."""
    out = run(config, device=device, compile=compile)
    return np.stack([out.fields[name] for name in FIELDS])


def shallow_water(
    nx: int = 128,
    ny: int = 128,
    *,
    preset: str = DEFAULT_PRESET,
    frames: int = 100,
    seed: int = 0,
    init: str | None = None,
    interval: Any = None,
    duration: Any = None,
    spin_up: Any = None,
    dt: float | None = None,
    dx: float | None = None,
    dy: float | None = None,
    Lx: float | None = None,
    Ly: float | None = None,
    g: float = 9.81,
    depth: float = 100.0,
    f0: float | None = None,
    beta: float | None = None,
    nu4: float | None = None,
    drag: float | None = None,
    drag_wavenumber: float | None = None,
    forcing_power: float | None = None,
    forcing_wavenumber: float | None = None,
    tracer_relax: float | None = None,
    amplitude: float | None = None,
    members: int | None = None,
    dtype: Any = "float64",
    backend: str = "auto",
    device: Any = "cpu",
    compile: bool = False,
    progress: bool = False,
    H: float | None = None,
) -> xr.Dataset:
    """Simulate the nonlinear rotating shallow-water equations into a labelled Dataset.

    A doubly periodic f-plane (optionally a periodic beta-plane) on an Arakawa C-grid, with
    flux-form mass, Sadourny's energy-conserving vector-invariant momentum, biharmonic
    hyperviscosity, a passive tracer (third-order upwind) and SSP-RK3 time stepping; see
    :mod:`xsr.data.swe` for the scheme and docs/explanation/shallow-water.md for the
    presets. Staggered fields are interpolated to cell centres, so every variable shares the
    ``(y, x)`` grid.

    The default preset, ``"turbulent"``, is forced-dissipative geostrophic turbulence: a
    white-in-time random forcing on a ring of wavenumbers, linear drag and hyperviscosity, a
    tracer relaxed towards a large-scale pattern; frames start after a spin-up into the
    statistically steady state, and the default interval moves features by under a cell per
    frame. ``preset="smooth"`` is xsr's earlier configuration (freely decaying balanced
    vortices, hourly frames from the initial state), reproduced exactly. Every argument left at
    ``None`` takes the preset's value for the grid (:func:`xsr.data.swe.preset_values`).

    Parameters
    ----------
    nx, ny : int
        Number of cells along x and y (each >= 4).
    preset : {"turbulent", "rotating", "ageostrophic", "small_forcing", "smooth"}
        The regime (:data:`xsr.data.swe.PRESETS`).
    frames : int
        Number of output frames (>= 1); the first is the state at the end of the spin-up (the
        initial state when there is none).
    seed : int
        Seed of the initial condition and of the forcing; the same seed gives identical output.
    init : {"vortices", "bumps", "dam_break", "turbulence"}, optional
        Random balanced vortices, random Gaussian height bumps at rest, a dam break (a raised
        column with a wavy rim at a random place), or balanced random flow with the spectrum of
        forced turbulence. Default: the preset's.
    interval : float, str or timedelta, optional
        Time between frames: seconds, a pandas string (``"1h"``) or a timedelta. Default: the
        preset's (1 hour for ``"smooth"``; for the forced presets the interval over which the
        rms velocity moves 0.75 cells).
    duration : float, str or timedelta, optional
        Alternative to ``interval``: time from the first to the last frame, so ``interval =
        duration / (frames - 1)`` (needs ``frames >= 2``).
    spin_up : float, str or timedelta, optional
        Time integrated before the first frame, rounded up to whole intervals (``0``: none).
        Default: the preset's (10 eddy turnover times of the forcing scale for the forced
        presets, none for ``"smooth"``). The time coordinate counts from the start of the run
        and its attribute ``spin_up_end`` holds the end of the spin-up.
    dt : float, optional
        Time step in seconds; it must divide ``interval``, and one above the CFL limit raises a
        ``ValueError`` naming the largest stable value. Default: chosen from the CFL condition.
    dx, dy : float, optional
        Grid spacing in metres (default 50 km; ``dy`` defaults to ``dx``).
    Lx, Ly : float, optional
        Domain lengths in metres, instead of ``dx`` / ``dy``.
    g : float
        Gravitational acceleration in m s-2.
    depth : float
        Mean layer thickness in metres.
    f0 : float, optional
        Coriolis parameter in s-1 (0 for a non-rotating run).
    beta : float, optional
        Coriolis gradient in m-1 s-1 at mid-domain (periodic beta-plane; 0 for an f-plane).
    nu4 : float, optional
        Biharmonic hyperviscosity in m4 s-1.
    drag : float, optional
        Linear drag rate on the velocity, s-1.
    drag_wavenumber : float, optional
        The drag acts on the Fourier modes up to this wavenumber (cycles per shortest domain
        side) only: the large scales (the forced presets: up to the forcing wavenumber); 0 for a
        drag on every scale.
    forcing_power : float, optional
        Kinetic-energy injection rate of the random momentum forcing, m2 s-3 (0: unforced).
    forcing_wavenumber : float, optional
        Centre of the forced ring of wavenumbers, cycles per shortest domain side.
    tracer_relax : float, optional
        Relaxation rate (s-1) of the tracer towards its initial large-scale pattern.
    amplitude : float, optional
        Largest initial thickness anomaly as a fraction of ``depth``, in ``(0, 1)``; also the
        margin of the signal speed bound from which ``dt`` is chosen.
    members : int, optional
        Ensemble size. If given, the result has a leading ``member`` dimension and is **lazy**:
        one dask task per member, nothing runs until computed. Member ``m`` uses the seed
        ``ds.seed[m]`` (derived deterministically from ``seed`` by ``numpy.random.SeedSequence``)
        and equals ``shallow_water(..., seed=int(ds.seed[m]))``.
    dtype : {"float64", "float32"}
        Precision of the integration and output.
    backend : {"auto", "torch", "numpy"}
        The torch fast path or the plain-numpy reference implementation of the same scheme.
        ``"auto"`` (default) takes torch on an accelerator or with ``compile=True`` and numpy
        otherwise (eager torch is no faster than numpy on a CPU for this stencil).
    device : str or torch.device
        Torch device (``"cpu"``, ``"cuda"``...).
    compile : bool
        Opt in to ``torch.compile`` of the step: several times faster on large grids and long runs,
        but the first call per process and grid size pays a compile warm-up (tens of seconds on a
        CPU). Falls back to eager torch with a ``RuntimeWarning`` if compilation fails.
    progress : bool
        Show a tqdm progress bar over the output frames (eager runs only).
    H : float, optional
        Deprecated name of ``depth`` (``DeprecationWarning``).

    Returns
    -------
    xarray.Dataset
        Variables ``h``, ``u``, ``v``, ``vorticity``, ``tracer`` with dims ``(time, y, x)`` (or
        ``(member, time, y, x)``), CF attributes, and every parameter of the run in ``attrs``.
        ``x`` and ``y`` carry ``period`` (the domain length: the data are periodic there, see
        :func:`xsr.coords.periodic_dims`); ``time`` carries ``spin_up_end``.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument and the fix).
    xsr.data.swe.BlowUpError
        If the integration produces NaN/Inf or a non-positive thickness (names the step).

    Examples
    --------
    >>> ds = shallow_water(32, 32, preset="smooth", frames=3, interval="2h", seed=1)
    >>> ds["h"].dims, ds["h"].attrs["units"], ds.time.values.tolist()
    (('time', 'y', 'x'), 'm', [0.0, 7200.0, 14400.0])
    >>> ds.x.attrs["period"], ds.time.attrs["spin_up_end"]
    (1600000.0, 0.0)
    >>> turb = shallow_water(16, 16, frames=2, seed=1)
    >>> bool(turb.time[0] >= turb.time.attrs["spin_up_end"] > 0)
    True
    >>> ens = shallow_water(16, 16, preset="smooth", frames=2, members=3)
    >>> ens["vorticity"].dims, ens["vorticity"].data.npartitions
    (('member', 'time', 'y', 'x'), 3)
    """
    if H is not None:
        warnings.warn(
            "shallow_water(H=...) is deprecated; pass depth=... (the same mean layer thickness)",
            DeprecationWarning,
            stacklevel=2,
        )
        depth = H
    if interval is not None and duration is not None:
        raise ValueError("pass either interval or duration, not both")
    interval_s: float | None = None
    if duration is not None:
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool) and frames < 2:
            raise ValueError(f"duration needs frames >= 2 (got frames={frames}); pass interval")
        interval_s = _seconds(duration, "duration") / (frames - 1)
    elif interval is not None:
        interval_s = _seconds(interval, "interval")
    spin_up_s = None if spin_up is None else _seconds(spin_up, "spin_up", allow_zero=True)
    if members is not None and (
        isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1
    ):
        raise ValueError(f"members must be a positive integer or None, got {members!r}")
    backend = choose_backend(backend, device, compile)
    config = configure(
        nx,
        ny,
        preset=preset,
        frames=frames,
        seed=seed,
        init=init,
        interval=interval_s,
        spin_up=spin_up_s,
        dt=dt,
        dx=dx,
        dy=dy,
        Lx=Lx,
        Ly=Ly,
        g=g,
        depth=depth,
        f0=f0,
        beta=beta,
        nu4=nu4,
        drag=drag,
        drag_wavenumber=drag_wavenumber,
        forcing_power=forcing_power,
        forcing_wavenumber=forcing_wavenumber,
        tracer_relax=tracer_relax,
        amplitude=amplitude,
        dtype=dtype,
        backend=backend,
    )
    nt = config.frames
    time_attrs = dict(_TIME_ATTRS, **{SPIN_UP_ATTR: config.spin_up})
    coords: dict[str, Any] = {
        "time": (
            "time",
            config.spin_up + np.arange(nt, dtype=np.float64) * config.interval,
            time_attrs,
        ),
        "y": (
            "y",
            (np.arange(ny) + 0.5) * config.dy,
            _coord_attrs("Y", ny * config.dy),
        ),
        "x": (
            "x",
            (np.arange(nx) + 0.5) * config.dx,
            _coord_attrs("X", nx * config.dx),
        ),
    }
    if members is None:
        out = run(config, device=device, compile=compile, progress=progress)
        data = {name: (("time", "y", "x"), out.fields[name]) for name in FIELDS}
    else:
        seeds = np.random.SeedSequence(seed).generate_state(members, dtype=np.uint32)
        blocks = []
        for member_seed in seeds:
            member = dataclasses.replace(config, seed=int(member_seed))
            token = dask.base.tokenize(member.as_dict(), str(device), compile)
            key = f"shallow_water-member-{token}"
            task = dask.delayed(_run_member)(member, str(device), compile, dask_key_name=key)
            shape = (len(FIELDS), nt, ny, nx)
            blocks.append(da.from_delayed(task, shape=shape, dtype=config.dtype))
        stacked = da.stack(blocks)
        data = {
            name: (("member", "time", "y", "x"), stacked[:, k]) for k, name in enumerate(FIELDS)
        }
        coords["member"] = ("member", np.arange(members), {"long_name": "ensemble member"})
        coords["seed"] = (
            "member",
            seeds.astype(np.int64),
            {"long_name": "seed of the member's initial condition and forcing"},
        )
    ds = xr.Dataset(data, coords=coords)
    for name in FIELDS:
        ds[name].attrs.update(SHALLOW_WATER_VARIABLES[name])
    attrs: dict[str, Any] = {
        "title": f"xsr shallow-water simulation ({config.preset}, {config.init})",
        "Conventions": "CF-1.10",
        "source": "xsr.data.shallow_water: nonlinear rotating shallow-water equations, doubly "
        "periodic C-grid, Sadourny energy-conserving scheme, SSP-RK3"
        + (", ring-forced, linear drag" if config.forced else ""),
        "xsr_version": __version__,
    }
    attrs.update(config.as_dict())
    if members is not None:
        attrs["members"] = int(members)
    args = ", ".join(f"{k}={v!r}" for k, v in attrs.items() if k in _HISTORY_KEYS)
    ds.attrs = append_history(attrs, f"xsr.data.shallow_water({args})")
    return ds


_HISTORY_KEYS = (
    "nx",
    "ny",
    "preset",
    "frames",
    "seed",
    "init",
    "interval",
    "spin_up",
    "dt",
    "members",
)


def phantom_movie(
    nx: int = 128,
    ny: int = 128,
    *,
    frames: int = 50,
    seed: int = 0,
    drift: float = 0.03,
    deformation: float = 0.08,
    rotation: float = 10.0,
    period: float = 60.0,
    interval: Any = 1.0,
    dtype: Any = "float64",
) -> xr.Dataset:
    """A moving Shepp-Logan head phantom as a labelled Dataset.

    The ellipses of the modified Shepp-Logan phantom drift, stretch and turn along smooth seeded
    tracks (see :mod:`xsr.data.phantom`), as in the report xsr starts from. Edges are
    anti-aliased, so motion is smooth between frames; values lie in ``[0, 1]``.

    Parameters
    ----------
    nx, ny : int
        Image size in pixels.
    frames : int
        Number of frames (>= 1).
    seed : int
        Seed of the motion; the same seed gives identical output.
    drift : float
        Largest centre displacement of an inner ellipse, in image half-widths.
    deformation : float
        Largest relative change of a semi-axis, in ``[0, 1)``.
    rotation : float
        Largest change of an ellipse's angle, in degrees.
    period : float
        Typical period of the motions, in frames.
    interval : float, str or timedelta
        Time between frames (seconds, ``"1s"``, a timedelta), for the ``time`` coordinate.
    dtype : {"float64", "float32"}
        Output dtype.

    Returns
    -------
    xarray.Dataset
        Variable ``intensity`` with dims ``(time, y, x)``; ``x`` and ``y`` span ``[-1, 1]`` in
        phantom units (pixel centres), ``time`` is in seconds since the first frame.

    Examples
    --------
    >>> ds = phantom_movie(32, 32, frames=4, seed=2)
    >>> ds["intensity"].dims, float(ds["intensity"].max()) <= 1.0
    (('time', 'y', 'x'), True)
    """
    interval_s = _seconds(interval, "interval")
    movie = _phantom_array(
        ny,
        nx,
        frames=frames,
        seed=seed,
        drift=drift,
        deformation=deformation,
        rotation=rotation,
        period=period,
        dtype=dtype,
    )

    def axis_attrs(axis: str) -> dict[str, str]:
        return {
            "units": "1",
            "long_name": f"{axis.lower()} position in phantom units ([-1, 1] spans the image)",
            "axis": axis,
        }

    coords = {
        "time": ("time", np.arange(frames, dtype=np.float64) * interval_s, dict(_TIME_ATTRS)),
        "y": ("y", -1.0 + (np.arange(ny) + 0.5) * 2.0 / ny, axis_attrs("Y")),
        "x": ("x", -1.0 + (np.arange(nx) + 0.5) * 2.0 / nx, axis_attrs("X")),
    }
    ds = xr.Dataset({"intensity": (("time", "y", "x"), movie)}, coords=coords)
    ds["intensity"].attrs.update(PHANTOM_VARIABLES["intensity"])
    attrs = {
        "title": "xsr moving Shepp-Logan phantom",
        "Conventions": "CF-1.10",
        "source": "xsr.data.phantom: modified Shepp-Logan ellipses on smooth seeded tracks",
        "xsr_version": __version__,
        "seed": int(seed),
        "frames": int(frames),
        "drift": float(drift),
        "deformation": float(deformation),
        "rotation": float(rotation),
        "period": float(period),
        "interval": interval_s,
        "dtype": str(np.dtype(dtype)),
    }
    ds.attrs = append_history(
        attrs, f"xsr.data.phantom_movie(nx={nx}, ny={ny}, frames={frames}, seed={seed})"
    )
    return ds

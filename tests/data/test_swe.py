"""Physics and numerics of the shallow-water core (arrays only, no xarray)."""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.data.swe import (
    DEFAULT_PRESET,
    FIELDS,
    INITS,
    PRESETS,
    BlowUpError,
    LargeScaleDrag,
    RingForcing,
    SWForcing,
    SWParams,
    SWState,
    _apply_kernel,
    _band_of,
    _rk3_torch,
    _SpectralMomentum,
    _spun_up,
    _start,
    _torch_fq,
    centred_fields,
    choose_backend,
    configure,
    coriolis,
    initial_state,
    integrate,
    isotropic_spectrum,
    max_stable_dt,
    preset_values,
    run,
    simulate,
    speed_bound,
    step_numpy,
    step_torch,
)
from xsr.digest import sha256_array

G, DEPTH = 9.81, 100.0


def _params(dx: float = 50e3, dy: float | None = None, **kw: float) -> SWParams:
    base = {"g": G, "f0": 1e-4, "beta": 0.0, "nu4": 0.0, "dt": 0.0}
    base.update(kw)
    return SWParams(dx=dx, dy=dx if dy is None else dy, **base)


def _stable(p: SWParams, ny: int, speed: float, fraction: float = 0.5) -> SWParams:
    return p._replace(dt=fraction * max_stable_dt(p, ny, speed))


def _to_torch(state: SWState, device: str = "cpu") -> SWState:
    return SWState(*(torch.as_tensor(a, device=device) for a in state[:4]), step=state.step)


# ---------------------------------------------------------------- conservation


@pytest.mark.parametrize("init", INITS)
def test_mass_and_tracer_conserved_to_1e10(init):
    p = _params(nu4=1e13, beta=2e-11)
    p = _stable(p, 32, speed_bound(G, DEPTH, 0.2))
    s0 = initial_state(p, 32, 32, init=init, depth=DEPTH, amplitude=0.2, seed=3)
    *_, last = integrate(s0, p, frames=2, steps_per_frame=200, backend="torch")
    assert last.step == 200
    mass0, mass1 = s0.h.sum(), last.h.sum()
    assert abs(mass1 - mass0) / mass0 < 1e-10
    tracer0, tracer1 = s0.hc.sum(), last.hc.sum()
    assert abs(tracer1 - tracer0) / tracer0 < 1e-10
    # the run did something: the flow moved the thickness field
    assert np.abs(last.h - s0.h).max() > 1e-3 * DEPTH


@settings(max_examples=12, deadline=None)
@given(
    init=st.sampled_from(INITS),
    seed=st.integers(0, 2**16),
    aspect=st.floats(0.5, 2.0),
    amplitude=st.floats(0.01, 0.5),
)
def test_uniform_tracer_stays_uniform_and_mass_conserved(init, seed, aspect, amplitude):
    """Property: the tracer flux is consistent with the mass flux (c = 1 stays 1)."""
    p = _params(dx=40e3, dy=40e3 * aspect, nu4=1e12)
    p = _stable(p, 12, speed_bound(G, DEPTH, amplitude))
    s0 = initial_state(p, 12, 16, init=init, depth=DEPTH, amplitude=amplitude, seed=seed)
    s0 = s0._replace(hc=s0.h.copy())
    s = s0
    for _ in range(15):
        s = step_numpy(s, p)
    np.testing.assert_allclose(s.hc / s.h, 1.0, rtol=0, atol=1e-12)
    assert abs(s.h.sum() - s0.h.sum()) / s0.h.sum() < 1e-12


# ---------------------------------------------------------------- gravity waves


def _travelling_wave_speed(g: float, depth: float, axis: str) -> float:
    """Phase speed of a small-amplitude, long (one wavelength per domain) gravity wave."""
    n, dx = 64, 10e3
    ny, nx = (4, n) if axis == "x" else (n, 4)
    p = _params(dx=dx, g=g, f0=0.0)
    c = math.sqrt(g * depth)
    p = _stable(p, ny, c)
    length = n * dx
    k = 2 * np.pi / length
    centres = (np.arange(n) + 0.5) * dx
    faces = np.arange(n) * dx
    amp = 1e-4 * depth
    if axis == "x":
        h = depth + amp * np.broadcast_to(np.cos(k * centres), (ny, nx))
        u = (c / depth) * amp * np.broadcast_to(np.cos(k * faces), (ny, nx))
        v = np.zeros((ny, nx))
    else:
        h = depth + amp * np.broadcast_to(np.cos(k * centres)[:, None], (ny, nx))
        v = (c / depth) * amp * np.broadcast_to(np.cos(k * faces)[:, None], (ny, nx))
        u = np.zeros((ny, nx))
    s0 = SWState(h=h.copy(), u=u.copy(), v=v, hc=h.copy(), step=0)
    per_frame = max(1, int(0.25 * length / c / p.dt) // 4)
    phases, times = [], []
    for frame in integrate(s0, p, frames=5, steps_per_frame=per_frame, backend="numpy"):
        profile = frame.h.mean(axis=0 if axis == "x" else 1) - depth
        phases.append(np.angle(np.fft.fft(profile)[1]))
        times.append(frame.step * p.dt)
    slope = np.polyfit(times, np.unwrap(phases), 1)[0]
    return -slope / k


@pytest.mark.parametrize("axis", ["x", "y"])
def test_gravity_waves_travel_at_sqrt_gh(axis):
    speed = _travelling_wave_speed(G, DEPTH, axis)
    assert speed == pytest.approx(math.sqrt(G * DEPTH), rel=0.02)
    # and not trivially: a wave at rest would give zero
    assert speed > 0.5 * math.sqrt(G * DEPTH)


@settings(max_examples=6, deadline=None)
@given(g=st.floats(0.5, 20.0), depth=st.floats(5.0, 4000.0))
def test_gravity_wave_speed_property(g, depth):
    assert _travelling_wave_speed(g, depth, "x") == pytest.approx(math.sqrt(g * depth), rel=0.02)


# ---------------------------------------------------------------- balance


def _zonal_jet(balanced: bool) -> tuple[SWState, SWParams, float]:
    nx, ny, u0, f0 = 8, 32, 5.0, 1e-4
    p = _params(dx=50e3, f0=f0)
    p = _stable(p, ny, math.sqrt(G * DEPTH) + u0)
    length = ny * p.dy
    y = (np.arange(ny) + 0.5) * p.dy  # u and h share the rows of cell centres
    u = u0 * np.sin(2 * np.pi * y / length)[:, None] * np.ones((1, nx))
    h = DEPTH + f0 * u0 * length / (2 * np.pi * G) * np.cos(2 * np.pi * y / length)[
        :, None
    ] * np.ones((1, nx))
    state = SWState(h=h, u=u if balanced else np.zeros_like(u), v=np.zeros_like(h), hc=h, step=0)
    return state, p, u0


def _largest_departure(state: SWState, p: SWParams, u0: float) -> float:
    period = 2 * np.pi / p.f0
    per_frame = max(1, int(period / p.dt) // 20)
    anomaly = np.abs(state.h - DEPTH).max()
    worst = 0.0
    for frame in integrate(state, p, frames=21, steps_per_frame=per_frame, backend="numpy"):
        worst = max(
            worst,
            np.abs(frame.h - state.h).max() / anomaly,
            np.abs(frame.u - state.u).max() / u0,
            np.abs(frame.v).max() / u0,
        )
    return worst


def test_geostrophic_zonal_jet_stays_steady():
    """u(y) with f u = -g dh/dy is an exact steady state of the nonlinear f-plane equations."""
    state, p, u0 = _zonal_jet(balanced=True)
    assert _largest_departure(state, p, u0) < 0.01  # discretisation error only
    control, p, u0 = _zonal_jet(balanced=False)  # same h, fluid at rest: adjusts, oscillates
    assert _largest_departure(control, p, u0) > 0.3


def test_vortices_start_in_geostrophic_balance():
    """The imbalance of the initial vortices is O(Rossby number), far below a flat-h control."""

    def imbalance(amplitude: float) -> float:
        p = _params(nu4=0.0)
        s0 = initial_state(p, 32, 32, init="vortices", depth=DEPTH, amplitude=amplitude, seed=0)
        p = _stable(p, 32, speed_bound(G, DEPTH, amplitude))
        flat = s0._replace(h=np.full_like(s0.h, DEPTH), hc=np.full_like(s0.h, DEPTH))

        def accel(s: SWState) -> float:
            return float(np.abs(step_numpy(s, p).u - s.u).max() / p.dt)

        return accel(s0) / accel(flat)

    assert imbalance(0.05) < 0.2
    assert imbalance(0.025) < 0.6 * imbalance(0.05)
    p = _params()
    bumps = initial_state(p, 32, 32, init="bumps", depth=DEPTH, amplitude=0.1, seed=0)
    assert np.abs(bumps.u).max() == 0
    assert np.abs(bumps.v).max() == 0


# ---------------------------------------------------------------- determinism and backends


def test_same_seed_identical_different_seed_different():
    a = simulate(16, 16, frames=3, seed=5, interval=1800.0, spin_up=3600.0)
    b = simulate(16, 16, frames=3, seed=5, interval=1800.0, spin_up=3600.0)
    c = simulate(16, 16, frames=3, seed=6, interval=1800.0, spin_up=3600.0)
    for name in FIELDS:
        np.testing.assert_array_equal(a.fields[name], b.fields[name])
    assert not np.array_equal(a.fields["h"], c.fields["h"])


@pytest.mark.parametrize("init", INITS)
def test_torch_matches_numpy_reference(init):
    p = _params(dx=50e3, dy=40e3, nu4=1e13, beta=1.5e-11)
    p = _stable(p, 12, speed_bound(G, DEPTH, 0.3))
    s0 = initial_state(p, 12, 16, init=init, depth=DEPTH, amplitude=0.3, seed=11)
    ref, fast = s0, _to_torch(s0)
    for _ in range(25):
        ref, fast = step_numpy(ref, p), step_torch(fast, p)
    assert fast.step == ref.step == 25
    for a, b in zip(ref[:4], fast[:4]):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    # the runs are not trivially equal to the start
    assert np.abs(ref.h - s0.h).max() > 1e-6


def test_float32_tracks_float64():
    # the smooth preset: no spin-up, over which rounding differences grow chaotically
    a = simulate(16, 16, preset="smooth", frames=3, interval=1800.0, dtype="float64")
    b = simulate(16, 16, preset="smooth", frames=3, interval=1800.0, dtype="float32")
    assert b.fields["h"].dtype == np.float32
    np.testing.assert_allclose(b.fields["h"], a.fields["h"], rtol=1e-5)


def test_run_backends_agree_and_driver_yields_frames():
    cfg = configure(12, 12, preset="smooth", frames=3, interval=1800.0, seed=2)
    a = run(dataclasses.replace(cfg, backend="torch"))
    b = run(cfg)
    assert (a.config.backend, b.config.backend) == ("torch", "numpy")
    for name in FIELDS:
        scale = np.abs(b.fields[name]).max()
        np.testing.assert_allclose(a.fields[name], b.fields[name], rtol=1e-12, atol=1e-12 * scale)
    p = _stable(_params(), 8, speed_bound(G, DEPTH, 0.2))
    s0 = initial_state(p, 8, 8)
    steps = [s.step for s in integrate(s0, p, frames=4, steps_per_frame=3, backend="numpy")]
    assert steps == [0, 3, 6, 9]
    assert isinstance(next(integrate(s0, p, frames=1, steps_per_frame=1)).h, np.ndarray)


def test_centred_fields_interpolate_the_c_grid():
    p = _params(dx=2.0, dy=3.0)
    ny, nx = 6, 8
    x_face = np.arange(nx) * p.dx
    y_face = np.arange(ny) * p.dy
    u = np.broadcast_to(x_face, (ny, nx)).astype(float)  # u = x at west faces
    v = np.broadcast_to(y_face[:, None], (ny, nx)).astype(float)
    h = np.full((ny, nx), 2.0)
    out = centred_fields(SWState(h=h, u=u, v=v, hc=h * 0.25, step=0), p)
    # interior centres: the average of the two faces, i.e. x (or y) of the centre
    np.testing.assert_allclose(out["u"][:, :-1], np.tile((np.arange(nx - 1) + 0.5) * p.dx, (ny, 1)))
    np.testing.assert_allclose(
        out["v"][:-1, :], np.tile(((np.arange(ny - 1) + 0.5) * p.dy)[:, None], (1, nx))
    )
    np.testing.assert_allclose(out["tracer"], 0.25)
    # solid-body-like shear u = -y: vorticity +1 away from the periodic seam
    shear = SWState(
        h=h,
        u=-np.broadcast_to((np.arange(ny) + 0.5)[:, None] * p.dy, (ny, nx)),
        v=0 * h,
        hc=h,
        step=0,
    )
    np.testing.assert_allclose(centred_fields(shear, p)["vorticity"][1:-1], 1.0)


def test_periodic_beta_plane():
    p = _params(dy=10e3, f0=1e-4, beta=2e-11)
    ny = 64
    f = coriolis(p, ny, at="centre").ravel()
    centre = coriolis(p, ny, at="corner").ravel()
    # gradient beta at mid-domain, continuous across the periodic seam
    assert (centre[ny // 2 + 1] - centre[ny // 2 - 1]) / (2 * p.dy) == pytest.approx(
        2e-11, rel=1e-3
    )
    assert abs(f[0] - f[-1]) < 2 * abs(f[ny // 2] - f[ny // 2 - 1])
    assert f.mean() == pytest.approx(1e-4, rel=1e-9)


@pytest.mark.slow
def test_compiled_step_matches_eager(monkeypatch):
    p = _stable(_params(nu4=1e13), 16, speed_bound(G, DEPTH, 0.2))
    s0 = _to_torch(initial_state(p, 16, 16, seed=4))
    a, b = s0, s0
    for _ in range(5):
        a, b = step_torch(a, p), step_torch(b, p, compile=True)
    for x, y in zip(a[:4], b[:4]):
        torch.testing.assert_close(y, x, rtol=1e-12, atol=1e-12 * float(x.abs().max()))
    # the compiled CPU step by bands of rows (cache blocking): 40 rows in bands of 36
    core_mod = importlib.import_module("xsr.data.swe")
    monkeypatch.setattr(core_mod, "_BAND_CELLS", 16 * 16)
    p = _stable(_params(nu4=1e13, tracer_relax=1e-6), 40, speed_bound(G, DEPTH, 0.2))
    s0 = _to_torch(initial_state(p, 40, 16, seed=4))
    assert core_mod._band_rows(s0.h, compile=True) == 36
    forcing = SWForcing(s0.v * 1e-9, s0.u * 1e-9, s0.hc / s0.h)
    a, b = s0, s0
    for _ in range(3):
        a, b = step_torch(a, p, forcing), step_torch(b, p, forcing, compile=True)
    for x, y in zip(a[:4], b[:4]):
        torch.testing.assert_close(y, x, rtol=1e-12, atol=1e-12 * float(x.abs().max()))


def test_compile_failure_falls_back_with_warning(monkeypatch):
    # the package attribute ``xsr.data.shallow_water`` is the Dataset function: fetch the module
    core_mod = importlib.import_module("xsr.data.swe")

    def broken(*args, **kwargs):
        raise RuntimeError("no C compiler\nmore detail")

    monkeypatch.setattr(core_mod, "_compiled_rk3", lambda: broken)
    monkeypatch.setattr(core_mod, "_compile_failed", set())
    p = _stable(_params(), 8, speed_bound(G, DEPTH, 0.2))
    s0 = _to_torch(initial_state(p, 8, 8))
    with pytest.warns(RuntimeWarning, match="torch.compile of the shallow-water step failed"):
        b = step_torch(s0, p, compile=True)
    a = step_torch(s0, p)
    for x, y in zip(a[:4], b[:4]):
        torch.testing.assert_close(y, x, rtol=0, atol=0)
    step_torch(b, p, compile=True)  # no second warning: failure remembered (warnings are errors)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_numpy_reference():
    p = _stable(_params(nu4=1e13, beta=1e-11), 16, speed_bound(G, DEPTH, 0.2))
    s0 = initial_state(p, 16, 16, seed=1)
    ref, fast = s0, _to_torch(s0, "cuda")
    for _ in range(10):
        ref, fast = step_numpy(ref, p), step_torch(fast, p)
    assert fast.h.device.type == "cuda"
    for a, b in zip(ref[:4], fast[:4]):
        np.testing.assert_allclose(b.cpu().numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    out = simulate(16, 16, preset="smooth", frames=2, interval=1800.0, device="cuda")
    ref_out = simulate(16, 16, preset="smooth", frames=2, interval=1800.0, backend="numpy")
    np.testing.assert_allclose(out.fields["h"], ref_out.fields["h"], rtol=1e-12)
    # the forced step (ring forcing, drag, tracer relaxation) too
    p = p._replace(drag=1e-6, tracer_relax=2e-6)
    forcing = RingForcing(16, 16, p.dx, p.dy, wavenumber=2.0, power=1e-4, dt=p.dt, seed=1)
    cref = np.linspace(0.0, 1.0, 256).reshape(16, 16)
    ref, fast = s0, _to_torch(s0, "cuda")
    for n in range(10):
        f = SWForcing(*forcing(n), tracer_ref=cref)
        ref, fast = step_numpy(ref, p, f), step_torch(fast, p, f)
    for a, b in zip(ref[:4], fast[:4]):
        np.testing.assert_allclose(b.cpu().numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())


# ---------------------------------------------------------------- stability and errors


def test_cfl_violation_names_largest_stable_dt():
    cfg = configure(16, 16, interval=3600.0)
    dt_max = cfg.dt_max
    assert cfg.dt <= 0.7 * dt_max + 1e-9
    with pytest.raises(ValueError, match=rf"largest stable time step is {dt_max:.6g} s"):
        configure(16, 16, interval=3600.0, dt=1.01 * dt_max)
    ok = configure(16, 16, interval=10 * 0.9 * dt_max, dt=0.9 * dt_max)
    assert ok.steps_per_frame == 10


def test_max_stable_dt_is_sharp_for_gravity_waves():
    """Twice the limit blows up, the limit itself does not (hyperviscosity off)."""
    p = _params(f0=0.0)
    speed = speed_bound(G, DEPTH, 0.05)
    dt_max = max_stable_dt(p, 16, speed)
    s0 = initial_state(p, 16, 16, init="bumps", depth=DEPTH, amplitude=0.05, seed=0)
    for frame in integrate(
        s0, p._replace(dt=0.95 * dt_max), frames=2, steps_per_frame=300, backend="numpy"
    ):
        assert np.isfinite(frame.h).all()
    with pytest.raises(BlowUpError):
        list(
            integrate(
                s0, p._replace(dt=2.0 * dt_max), frames=2, steps_per_frame=300, backend="numpy"
            )
        )


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_blow_up_names_the_first_bad_step(backend):
    p = _params(f0=0.0)
    s0 = initial_state(p, 16, 16, init="bumps", depth=DEPTH, amplitude=0.2, seed=1)
    p = p._replace(dt=3.0 * max_stable_dt(p, 16, speed_bound(G, DEPTH, 0.2)))
    # find the first bad step independently
    s, first = s0, None
    for n in range(1, 400):
        s = step_numpy(s, p)
        if not (np.isfinite(np.stack(s[:4])).all() and s.h.min() > 0):
            first = n
            break
    assert first is not None
    with pytest.raises(BlowUpError, match=rf"blew up at step {first} ") as info:
        list(integrate(s0, p, frames=40, steps_per_frame=10, backend=backend))
    assert info.value.step == first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nx": 0}, "nx must be finite and > 0"),
        ({"ny": 3}, "nx and ny must be >= 4"),
        ({"nx": 8.0}, "nx must be an integer"),
        ({"frames": 0}, "frames must be finite and > 0"),
        ({"init": "tsunami"}, "init must be one of"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"interval": -5.0}, "interval must be finite and > 0"),
        ({"dx": 0.0}, "dx must be finite and > 0"),
        ({"depth": float("nan")}, "depth must be finite"),
        ({"amplitude": 1.5}, "amplitude must be < 1"),
        ({"nu4": -1.0}, "nu4 must be finite and >= 0"),
        ({"f0": float("inf")}, "f0 must be a finite number"),
        ({"dtype": "int32"}, "dtype must be 'float32' or 'float64'"),
        ({"dtype": "nonsense"}, "dtype must be 'float32' or 'float64'"),
        ({"backend": "jax"}, "backend must be one of"),
        ({"dt": 7.0, "interval": 100.0}, "interval=100 s must be a whole multiple of dt=7 s"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"nx": 16, "ny": 16, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        configure(kwargs.pop("nx"), kwargs.pop("ny"), **kwargs)


def test_backend_choice():
    assert choose_backend("auto") == "numpy"
    assert choose_backend("auto", device="cuda") == "torch"
    assert choose_backend("auto", compile=True) == "torch"
    assert choose_backend("torch") == "torch"
    with pytest.raises(ValueError, match="backend='numpy' runs on the CPU only"):
        choose_backend("numpy", device="cuda")
    with pytest.raises(ValueError, match="compile=True needs backend='torch'"):
        choose_backend("numpy", compile=True)
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_backend("numba")


def test_driver_argument_errors():
    p = _stable(_params(), 8, 40.0)
    s0 = initial_state(p, 8, 8)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        next(integrate(s0, p, frames=0, steps_per_frame=1))
    with pytest.raises(ValueError, match="steps_per_frame must be >= 1"):
        next(integrate(s0, p, frames=1, steps_per_frame=0))
    with pytest.raises(ValueError, match="backend must be"):
        next(integrate(s0, p, frames=1, steps_per_frame=1, backend="cupy"))
    with pytest.raises(ValueError, match="init must be one of"):
        initial_state(p, 8, 8, init="flat")
    tiny = SWState(*(torch.ones(2, 5, dtype=torch.float64) for _ in range(4)), step=0)
    with pytest.raises(ValueError, match="at least 3 x 3 cells"):
        step_torch(tiny, p)


# ---------------------------------------------------------------- presets and forcing

#: sha256 (xsr.digest.sha256_array) of each field of
#: ``simulate(24, 20, frames=4, seed=3, interval=1800.0)`` computed by the generator of xsr before
#: the presets existed (main at 9be4a7b): the "smooth" preset must reproduce it bit for bit.
SMOOTH_DIGESTS = {
    "h": "eee9694fd6b8794bf360e44ccfa65af8fe2a0ea7c4affd838baf0989a3f3320f",
    "u": "54586ba53328dda5b00b0597112c7de3ff84cb9d7d84d839be02e5adbbbbc584",
    "v": "64c1675659f4db5d1b6e2bfc648337c7f8b367c9934e943b739c462e6050d6be",
    "vorticity": "4eef5a452a2809513baa14c80d1a182dffa97db4e84d90c2073a00ef769652d9",
    "tracer": "a7c6c4ad9f4b5c3b0d4f13d2fac257a12dc0f15150aaffc938051825ac480f80",
}


def test_smooth_preset_reproduces_the_previous_generator_bit_for_bit():
    out = simulate(24, 20, preset="smooth", frames=4, seed=3, interval=1800.0, backend="numpy")
    assert {name: sha256_array(out.fields[name]) for name in FIELDS} == SMOOTH_DIGESTS
    assert out.time.tolist() == [0.0, 1800.0, 3600.0, 5400.0]
    assert out.config.spin_up == 0.0
    assert not out.config.forced


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_configures_and_runs(preset):
    cfg = configure(24, 24, preset=preset, frames=2, seed=1)
    assert cfg.preset == preset
    assert cfg.dt <= cfg.dt_max
    assert cfg.steps_per_frame * cfg.dt == pytest.approx(cfg.interval)
    assert cfg.spin_up == cfg.spin_up_frames * cfg.interval
    if preset == "smooth":
        assert (cfg.forcing_power, cfg.drag, cfg.spin_up, cfg.init) == (0.0, 0.0, 0.0, "vortices")
    else:
        assert cfg.forced
        assert cfg.drag > 0
        assert cfg.spin_up > 0
        assert cfg.tracer_relax > 0
    out = run(cfg)
    assert all(np.isfinite(out.fields[name]).all() for name in FIELDS)
    assert out.time[0] == cfg.spin_up


def test_turbulent_is_the_default_preset():
    assert DEFAULT_PRESET == "turbulent"
    assert configure(16, 16) == configure(16, 16, preset="turbulent")


def test_preset_values_follow_the_grid_and_can_be_overridden():
    small = preset_values("turbulent", 24, 24, 50e3, 50e3, G, DEPTH)
    large = preset_values("turbulent", 256, 256, 50e3, 50e3, G, DEPTH)
    assert small["forcing_wavenumber"] == 2.0  # capped: the forcing scale is >= 12 cells
    assert large["forcing_wavenumber"] == 8.0
    # the deformation radius is the preset's fraction of the forcing wavelength
    wavelength = 256 * 50e3 / 8.0
    assert math.sqrt(G * DEPTH) / large["f0"] == pytest.approx(0.25 * wavelength)
    cfg = configure(24, 24, preset="turbulent", drag=1e-6, f0=0.0, spin_up=0.0, interval=3000.0)
    assert (cfg.drag, cfg.f0, cfg.spin_up, cfg.interval) == (1e-6, 0.0, 0.0, 3000.0)


def test_ring_forcing_is_nondivergent_powered_seeded_and_on_the_ring():
    ny, nx, dx, dy = 32, 48, 20e3, 30e3
    forcing = RingForcing(ny, nx, dx, dy, wavenumber=4.0, power=2e-5, dt=100.0, seed=7)
    fu, fv = forcing(12)
    # the discrete divergence on the C-grid vanishes: no mass source
    div = (np.roll(fu, -1, 1) - fu) / dx + (np.roll(fv, -1, 0) - fv) / dy
    assert np.abs(div).max() < 1e-12 * np.abs(fu).max() / dx
    # the mean energy injection of one step is the requested power
    assert (fu**2 + fv**2).mean() * 100.0 / 2 == pytest.approx(2e-5, rel=1e-12)
    # a pure function of (seed, step)
    np.testing.assert_array_equal(forcing(12)[0], fu)
    assert not np.array_equal(forcing(13)[0], fu)
    other = RingForcing(ny, nx, dx, dy, wavenumber=4.0, power=2e-5, dt=100.0, seed=8)
    assert not np.array_equal(other(12)[0], fu)
    # its power lies on the ring |k| in [3, 5] (cycles per shortest side, here the y side)
    spec = np.abs(np.fft.fft2(fv)) ** 2
    ky = np.fft.fftfreq(ny, 1 / ny)[:, None]
    kx = np.fft.fftfreq(nx, 1 / nx)[None, :] * (ny * dy) / (nx * dx)
    k = np.hypot(kx, ky)
    assert spec[(k < 2.9) | (k > 5.1)].sum() < 1e-20 * spec.sum()
    with pytest.raises(ValueError, match="no Fourier mode"):
        RingForcing(8, 8, 1.0, 1.0, wavenumber=20.0, power=1.0, dt=1.0, seed=0)


def test_forced_torch_step_matches_numpy_reference():
    p = _params(dx=50e3, dy=40e3, nu4=1e13, beta=1.5e-11, drag=1e-6, tracer_relax=2e-6)
    p = _stable(p, 12, speed_bound(G, DEPTH, 0.3))
    s0 = initial_state(p, 12, 16, init="turbulence", depth=DEPTH, seed=11, wavenumber=2.0)
    forcing = RingForcing(12, 16, p.dx, p.dy, wavenumber=2.0, power=1e-4, dt=p.dt, seed=1)
    cref = np.linspace(0.0, 1.0, 12 * 16).reshape(12, 16)
    ref, fast = s0, _to_torch(s0)
    for n in range(25):
        f = SWForcing(*forcing(n), tracer_ref=cref)
        ref, fast = step_numpy(ref, p, f), step_torch(fast, p, f)
    for a, b in zip(ref[:4], fast[:4]):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    unforced = s0
    for _ in range(25):
        unforced = step_numpy(unforced, p._replace(drag=0.0, tracer_relax=0.0))
    assert np.abs(unforced.u - ref.u).max() > 1e-3 * np.abs(ref.u).max()  # the terms act


def test_large_scale_drag_is_a_fourier_projection_on_both_backends():
    ny, nx = 16, 24
    drag = LargeScaleDrag(ny, nx, 3e4, 2e4, rate=2e-6, wavenumber=3.0)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, ny, nx))
    du, dv = drag(u, v)
    # reference: the full FFT, masked to |k| <= 3 cycles per shortest side (y: 16 * 2e4 m)
    ky = np.fft.fftfreq(ny, 1 / ny)[:, None]
    kx = np.fft.fftfreq(nx, 1 / nx)[None, :] * (ny * 2e4) / (nx * 3e4)
    keep = np.hypot(kx, ky) <= 3.0
    for got, a in ((du, u), (dv, v)):
        ref = -2e-6 * np.fft.ifft2(np.fft.fft2(a) * keep).real
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    tu, tv = (
        _band_of(f, 0, ny)
        for f in _SpectralMomentum(None, drag, torch.as_tensor(u))(0, *map(torch.as_tensor, (u, v)))
    )
    np.testing.assert_allclose(tu.numpy(), du, rtol=0, atol=1e-14 * np.abs(du).max())
    np.testing.assert_allclose(tv.numpy(), dv, rtol=0, atol=1e-14 * np.abs(dv).max())
    # small scales are untouched
    x = np.arange(nx) * 2 * np.pi / nx
    fine = np.broadcast_to(np.cos(8 * x), (ny, nx))
    assert np.abs(drag(fine, fine)[0]).max() < 1e-18


def test_spectral_momentum_is_the_ring_forcing_plus_the_drag():
    ny, nx, dx, dy = 20, 28, 3e4, 2e4
    forcing = RingForcing(ny, nx, dx, dy, wavenumber=4.0, power=1e-4, dt=50.0, seed=3)
    drag = LargeScaleDrag(ny, nx, dx, dy, rate=2e-6, wavenumber=3.0)
    assert not np.array_equal(forcing.kx, drag.kx)  # two different blocks, summed on their union
    u, v = np.random.default_rng(1).standard_normal((2, ny, nx))
    tu, tv = map(torch.as_tensor, (u, v))
    spectral = _SpectralMomentum(forcing, drag, tu)
    (fu, fv), (du, dv) = forcing(7), drag(u, v)
    for got, ref in zip(spectral(7, tu, tv), (fu + du, fv + dv)):
        np.testing.assert_allclose(
            _band_of(got, 0, ny).numpy(), ref, rtol=0, atol=1e-13 * np.abs(ref).max()
        )
        # a band of rows across the periodic seam: the rows of the whole field
        np.testing.assert_allclose(
            _band_of(got, -5, ny + 3).numpy(),
            ref[np.arange(-5, ny + 3) % ny],
            rtol=0,
            atol=1e-13 * np.abs(ref).max(),
        )
    # the forcing alone, and a float32 run's dtype
    alone = _SpectralMomentum(forcing, None, tu.float())(7, tu.float(), tv.float())
    assert alone[0].left.dtype == torch.float32
    np.testing.assert_allclose(
        _band_of(alone[1], 0, ny).numpy(), fv, rtol=1e-5, atol=1e-6 * np.abs(fv).max()
    )


@pytest.mark.parametrize("rows", [4, 5, 12])
def test_step_by_bands_of_rows_equals_the_whole_grid(rows):
    # bands of `rows` rows (5: the last band overlaps the one before) against one band
    p = _params(dx=50e3, dy=40e3, nu4=1e13, beta=1.5e-11, drag=1e-6, tracer_relax=2e-6)
    p = _stable(p, 12, speed_bound(G, DEPTH, 0.3))
    s = _to_torch(initial_state(p, 12, 16, init="turbulence", depth=DEPTH, seed=3, wavenumber=2.0))
    forcing = RingForcing(12, 16, p.dx, p.dy, wavenumber=2.0, power=1e-4, dt=p.dt, seed=1)
    fu, fv = map(torch.as_tensor, forcing(0))
    cref = torch.linspace(0.0, 1.0, 12 * 16, dtype=torch.float64).reshape(12, 16)
    fq = _torch_fq(p, s.h)
    whole = _apply_kernel(_rk3_torch, s, p, fq, fu, fv, cref, 12)
    banded = _apply_kernel(_rk3_torch, s, p, fq, fu, fv, cref, rows)
    for a, b in zip(whole[:4], banded[:4]):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    ref = step_numpy(
        SWState(*(a.numpy() for a in s[:4]), step=0),
        p,
        SWForcing(forcing(0)[0], forcing(0)[1], cref.numpy()),
    )
    for a, b in zip(ref[:4], banded[:4]):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())


def test_forced_driver_backends_agree():
    cfg = configure(16, 16, preset="turbulent", frames=3, seed=4, spin_up=0.0)
    assert cfg.drag_wavenumber > 0  # the drag on the large scales is exercised
    a = run(dataclasses.replace(cfg, backend="torch"))
    b = run(dataclasses.replace(cfg, backend="numpy"))
    for name in FIELDS:
        scale = np.abs(b.fields[name]).max()
        np.testing.assert_allclose(a.fields[name], b.fields[name], rtol=0, atol=1e-10 * scale)


def test_forced_run_conserves_mass_and_is_deterministic_by_seed():
    # a short spin-up (four frames) keeps the three runs cheap
    cfg = configure(24, 24, preset="turbulent", frames=6, seed=2, spin_up=4 * 8000.0)
    a = run(cfg)
    state0, _ = _start(cfg)
    mass0 = float(state0.h.sum())
    mass = a.fields["h"].sum(axis=(1, 2))
    np.testing.assert_allclose(mass, mass0, rtol=1e-13)
    _spun_up.cache_clear()  # recomputed from scratch, not taken from the cache
    b = run(cfg)
    for name in FIELDS:
        np.testing.assert_array_equal(a.fields[name], b.fields[name])
    c = run(dataclasses.replace(cfg, seed=3))
    assert not np.array_equal(a.fields["h"], c.fields["h"])


def test_spin_up_runs_once_per_configuration():
    cfg = configure(20, 20, preset="turbulent", frames=2, seed=5, spin_up=3 * 8000.0)
    _spun_up.cache_clear()
    first = run(cfg)
    longer = run(dataclasses.replace(cfg, frames=4))
    info = _spun_up.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    for name in FIELDS:  # the same run, two more frames
        np.testing.assert_array_equal(longer.fields[name][:2], first.fields[name])
    # the spin-up is the part of the run before the first frame: the same as integrating on
    no_spin = run(dataclasses.replace(cfg, spin_up=0.0, frames=cfg.spin_up_frames + 2))
    np.testing.assert_allclose(no_spin.fields["h"][-2:], first.fields["h"], rtol=0, atol=0)


def test_turbulent_preset_is_statistically_steady_and_moves_under_two_cells_per_frame():
    # 64 x 64: on smaller grids a handful of forced modes make the energy fluctuate widely
    cfg = configure(64, 64, preset="turbulent", frames=40, seed=0)
    out = run(cfg)
    ke = 0.5 * (out.fields["u"] ** 2 + out.fields["v"] ** 2).mean(axis=(1, 2))
    first, second = ke[:20].mean(), ke[20:].mean()
    assert abs(second - first) / first < 0.15
    # typical displacement per frame: rms speed * interval / dx
    displacement = np.sqrt(2 * ke.mean()) * cfg.interval / cfg.dx
    assert 0.25 <= displacement <= 2.0
    # and the flow is turbulent, not decaying: the rms speed is near the preset's target
    target = cfg.froude * math.sqrt(cfg.g * cfg.depth)
    assert 0.5 * target < np.sqrt(2 * ke.mean()) < 2 * target


def _slope(k: np.ndarray, power: np.ndarray, lo: float, hi: float) -> float:
    keep = (k >= lo) & (k <= hi)
    return float(np.polyfit(np.log(k[keep]), np.log(power[keep]), 1)[0])


@pytest.mark.slow
def test_turbulent_spectra_at_256():
    """KE spectrum k^-3 (within [-3.5, -2.5]) between forcing and dissipation; tracer shallower."""
    cfg = configure(256, 256, preset="turbulent", frames=6, seed=1)
    out = run(cfg)
    k, pu = isotropic_spectrum(out.fields["u"])
    _, pv = isotropic_spectrum(out.fields["v"])
    _, pc = isotropic_spectrum(out.fields["tracer"])
    ke = 0.5 * (pu + pv)
    lo, hi = 2 * cfg.forcing_wavenumber, 48
    ke_slope = _slope(k, ke, lo, hi)
    assert -3.5 <= ke_slope <= -2.5
    assert _slope(k, pc, lo, hi) > ke_slope + 0.5

"""Nonlinear rotating shallow-water equations on a doubly periodic C-grid (array core).

This module is the simulation core behind :func:`xsr.data.shallow_water`. It knows arrays only
(numpy, and torch for the fast path, imported lazily) and never imports xarray: the one module that
turns its output into a labelled Dataset is :mod:`xsr.data.datasets`.

Scheme
------
Arakawa C-grid on a doubly periodic domain with ``ny`` rows and ``nx`` columns:

* ``h[j, i]`` (layer thickness) at cell centres ``((i + 1/2) dx, (j + 1/2) dy)``;
* ``u[j, i]`` at west faces ``(i dx, (j + 1/2) dy)``; ``v[j, i]`` at south faces
  ``((i + 1/2) dx, j dy)``; relative vorticity and potential vorticity at south-west corners
  ``(i dx, j dy)``.

Mass is in flux form (``dh/dt = -div(h u)``, conserved to round-off); momentum is in vector-invariant
form with Sadourny's (1975) energy-conserving potential-vorticity flux and the Bernoulli function
``g h + |u|^2 / 2``; a biharmonic hyperviscosity ``-nu4 del^4`` acts on ``u`` and ``v``. A passive
tracer ``c`` is carried as tracer content ``h c`` with the same mass fluxes and third-order upwind
(UP3) face values, so it is conserved, keeps constants constant, and forms sharp filaments without
explicit diffusion. Time stepping is the three-stage strong-stability-preserving Runge-Kutta
scheme SSP-RK3 (Shu & Osher 1988). The Coriolis parameter is ``f0`` (f-plane) plus, optionally, a
*periodic* beta-plane ``beta * Ly / (2 pi) * sin(2 pi (y - Ly/2) / Ly)``: its gradient is ``beta``
at mid-domain and it stays continuous across the periodic boundary.

Design (pyqg / the mpi4jax shallow-water example): the state is immutable (:class:`SWState`), one
step is a pure function (:func:`step_numpy`, :func:`step_torch`) and :func:`integrate` is a generator
that yields output frames. :func:`step_numpy` is the plain-numpy reference of the scheme (test
oracle and benchmark baseline); :func:`step_torch` is the fast path (any ``device``, optionally
``torch.compile``-d).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "BACKENDS",
    "DEFAULT_PRESET",
    "FIELDS",
    "INITS",
    "PRESETS",
    "BlowUpError",
    "LargeScaleDrag",
    "RingForcing",
    "SWConfig",
    "SWForcing",
    "SWParams",
    "SWRun",
    "SWState",
    "centred_fields",
    "choose_backend",
    "configure",
    "coriolis",
    "initial_state",
    "integrate",
    "isotropic_spectrum",
    "max_stable_dt",
    "params_from",
    "preset_values",
    "run",
    "simulate",
    "speed_bound",
    "step_numpy",
    "step_torch",
]

#: Names of the initial conditions understood by :func:`initial_state`.
INITS: tuple[str, ...] = ("vortices", "bumps", "dam_break", "turbulence")

#: Stability limits of SSP-RK3 on the imaginary and on the negative real axis.
_RK3_IMAG = math.sqrt(3.0)
_RK3_REAL = 2.5127453266183286
#: Fraction of the largest stable step used when ``dt`` is chosen automatically.
_SAFETY = 0.7


class BlowUpError(FloatingPointError):
    """The integration produced non-finite values or a non-positive layer thickness.

    Attributes
    ----------
    step : int
        Number of the first time step whose result is bad (1 = the first step taken).

    Examples
    --------
    >>> p = SWParams(dx=5e4, dy=5e4, g=9.81, f0=0.0, beta=0.0, nu4=0.0, dt=2000.0)
    >>> s0 = initial_state(p, 16, 16, init="bumps")
    >>> try:
    ...     _ = list(integrate(s0, p, frames=10, steps_per_frame=10, backend="numpy"))
    ... except BlowUpError as err:
    ...     print(err.step > 0)
    True
    """

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class SWParams(NamedTuple):
    """Physical and numerical parameters of one run (immutable).

    Attributes
    ----------
    dx, dy : float
        Grid spacing in metres.
    g : float
        Gravitational acceleration in m s-2.
    f0 : float
        Coriolis parameter at mid-domain in s-1.
    beta : float
        Gradient of the Coriolis parameter at mid-domain in m-1 s-1 (periodic beta-plane).
    nu4 : float
        Biharmonic hyperviscosity in m4 s-1.
    dt : float
        Time step in seconds.
    drag : float
        Linear (Rayleigh) drag rate on ``u`` and ``v`` in s-1 (0: none); removes energy at the
        large scales of a forced run.
    tracer_relax : float
        Relaxation rate in s-1 of the tracer towards its reference pattern (0: none), the
        tracer's source in a forced run (see :class:`SWForcing`).

    Examples
    --------
    >>> p = SWParams(dx=1e3, dy=1e3, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=10.0)
    >>> p.dt, p.drag
    (10.0, 0.0)
    """

    dx: float
    dy: float
    g: float
    f0: float
    beta: float
    nu4: float
    dt: float
    drag: float = 0.0
    tracer_relax: float = 0.0


class SWForcing(NamedTuple):
    """External forcing held constant over one time step (immutable).

    Attributes
    ----------
    fu, fv : array or None
        Momentum forcing (acceleration, m s-2) on the ``u`` and ``v`` faces; ``None`` for none.
    tracer_ref : array or None
        Reference tracer concentration at cell centres: the tracer relaxes towards it at the
        rate ``SWParams.tracer_relax`` (``d(hc)/dt += tracer_relax * (h * tracer_ref - hc)``);
        ``None`` for none.

    Examples
    --------
    >>> import numpy as np
    >>> SWForcing(fu=np.zeros((4, 4)), fv=np.zeros((4, 4)), tracer_ref=None).fu.shape
    (4, 4)
    """

    fu: Any
    fv: Any
    tracer_ref: Any


class SWState(NamedTuple):
    """Model state on the C-grid (immutable; arrays are never modified in place).

    Attributes
    ----------
    h : array, shape (ny, nx)
        Layer thickness at cell centres, in metres.
    u : array, shape (ny, nx)
        Eastward velocity on west cell faces, in m s-1.
    v : array, shape (ny, nx)
        Northward velocity on south cell faces, in m s-1.
    hc : array, shape (ny, nx)
        Tracer content ``h * c`` at cell centres.
    step : int
        Number of time steps taken since the start.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((4, 4))
    >>> SWState(h=z + 1.0, u=z, v=z, hc=z, step=0).h.shape
    (4, 4)
    """

    h: Any
    u: Any
    v: Any
    hc: Any
    step: int


class SWRun(NamedTuple):
    """Output of :func:`simulate`: cell-centred frames and everything needed to label them.

    Attributes
    ----------
    fields : dict of str to numpy.ndarray
        ``h``, ``u``, ``v``, ``vorticity`` and ``tracer``, each ``(frames, ny, nx)``.
    time : numpy.ndarray
        Time of each frame in seconds since the start.
    x, y : numpy.ndarray
        Cell-centre coordinates in metres.
    params : SWParams
        The parameters that were integrated.
    config : SWConfig
        The resolved run (for provenance attributes).

    Examples
    --------
    >>> run = simulate(8, 8, frames=2, interval=600.0)
    >>> run.fields["h"].shape
    (2, 8, 8)
    """

    fields: dict[str, np.ndarray]
    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    params: SWParams
    config: SWConfig


# --------------------------------------------------------------------------------------------
# Grid helpers
# --------------------------------------------------------------------------------------------


def coriolis(params: SWParams, ny: int, *, at: str = "corner") -> np.ndarray:
    """Coriolis parameter on the rows of the grid, as a ``(ny, 1)`` column.

    Parameters
    ----------
    params : SWParams
        Run parameters (``f0``, ``beta``, ``dy`` are used).
    ny : int
        Number of grid rows.
    at : {"corner", "centre"}
        ``"corner"`` for the vorticity points ``y = j dy``, ``"centre"`` for ``y = (j + 1/2) dy``.

    Returns
    -------
    numpy.ndarray
        Float64 array of shape ``(ny, 1)``.

    Examples
    --------
    >>> p = SWParams(dx=1.0, dy=1.0, g=1.0, f0=2.0, beta=0.0, nu4=0.0, dt=0.1)
    >>> coriolis(p, 3).ravel().tolist()
    [2.0, 2.0, 2.0]
    """
    if at not in ("corner", "centre"):
        raise ValueError(f"at must be 'corner' or 'centre', got {at!r}")
    offset = 0.0 if at == "corner" else 0.5
    length = ny * params.dy
    y = (np.arange(ny, dtype=np.float64) + offset) * params.dy
    f = params.f0 + params.beta * length / (2.0 * np.pi) * np.sin(
        2.0 * np.pi * (y - length / 2) / length
    )
    return f[:, None]


def speed_bound(g: float, depth: float, amplitude: float) -> float:
    """Upper bound of wave plus flow speed used for the CFL condition.

    The initial conditions of :func:`initial_state` keep the thickness anomaly below
    ``amplitude * depth`` and the flow speed below ``amplitude * sqrt(g * depth * (1 + amplitude))``,
    so that ``(1 + amplitude) * sqrt(g * depth * (1 + amplitude))`` bounds the signal speed.

    Parameters
    ----------
    g : float
        Gravitational acceleration in m s-2.
    depth : float
        Mean layer thickness ``H`` in metres.
    amplitude : float
        Relative amplitude of the initial anomaly.

    Returns
    -------
    float
        Speed in m s-1.

    Examples
    --------
    >>> round(speed_bound(10.0, 10.0, 0.0), 6)
    10.0
    """
    wave = math.sqrt(g * depth * (1.0 + amplitude))
    return (1.0 + amplitude) * wave


def max_stable_dt(params: SWParams, ny: int, speed: float) -> float:
    """Largest stable SSP-RK3 time step for signals of speed ``speed`` on this grid.

    Linear stability: the centred C-grid operator has eigenvalues up to
    ``2 * speed * sqrt(1/dx**2 + 1/dy**2) + max|f|`` on the imaginary axis and
    ``nu4 * (4/dx**2 + 4/dy**2)**2`` plus the larger of the drag and tracer relaxation rates
    on the negative real axis; SSP-RK3 is stable up to
    ``sqrt(3)`` and ``2.5127`` there, and the two limits are combined conservatively.

    Parameters
    ----------
    params : SWParams
        Run parameters (``dt`` is ignored).
    ny : int
        Number of grid rows (for the range of the Coriolis parameter).
    speed : float
        Largest wave plus flow speed in m s-1, e.g. from :func:`speed_bound`.

    Returns
    -------
    float
        Time step in seconds.

    Examples
    --------
    >>> p = SWParams(dx=1e3, dy=1e3, g=9.81, f0=0.0, beta=0.0, nu4=0.0, dt=0.0)
    >>> round(max_stable_dt(p, 8, 10.0), 3)
    61.237
    """
    imag = 2.0 * speed * math.sqrt(1.0 / params.dx**2 + 1.0 / params.dy**2)
    imag += float(np.abs(coriolis(params, ny)).max())
    real = params.nu4 * (4.0 / params.dx**2 + 4.0 / params.dy**2) ** 2
    real += max(params.drag, params.tracer_relax)
    return 1.0 / (imag / _RK3_IMAG + real / _RK3_REAL)


# --------------------------------------------------------------------------------------------
# Initial conditions
# --------------------------------------------------------------------------------------------


def _periodic_distance(x: np.ndarray, x0: float, length: float) -> np.ndarray:
    d = x - x0
    return d - length * np.round(d / length)


def _smooth_random_field(
    rng: np.random.Generator, ny: int, nx: int, dx: float, dy: float, wavelength: float
) -> np.ndarray:
    """Zero-mean random field with a spectrum peaked at ``wavelength`` (metres)."""
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=dy)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(nx, d=dx)[None, :]
    k = np.sqrt(kx**2 + ky**2)
    k0 = 2 * np.pi / wavelength
    envelope = (k / k0) ** 2 * np.exp(-((k / k0) ** 2))
    spectrum = envelope * (
        rng.standard_normal((ny, nx // 2 + 1)) + 1j * rng.standard_normal((ny, nx // 2 + 1))
    )
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(ny, nx))
    scale = np.abs(field).max()
    return field / scale if scale > 0 else field


def _turbulent_streamfunction(
    rng: np.random.Generator, ny: int, nx: int, dx: float, dy: float, wavelength: float
) -> np.ndarray:
    """Random-phase streamfunction whose kinetic-energy spectrum goes as ``k**-3`` beyond
    ``2 pi / wavelength`` and as ``k`` below it (the shape of forced two-dimensional turbulence
    in its enstrophy range), at unit rms speed."""
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=dy)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(nx, d=dx)[None, :]
    k = np.sqrt(kx**2 + ky**2)
    k0 = 2 * np.pi / wavelength
    with np.errstate(divide="ignore"):
        envelope = 1.0 / (k * (k**2 + k0**2))
    envelope[0, 0] = 0.0
    spectrum = envelope * (
        rng.standard_normal((ny, nx // 2 + 1)) + 1j * rng.standard_normal((ny, nx // 2 + 1))
    )
    psi = np.fft.irfft2(spectrum, s=(ny, nx))
    u = -(np.roll(psi, -1, axis=0) - psi) / dy
    v = (np.roll(psi, -1, axis=1) - psi) / dx
    rms = math.sqrt(float(np.mean(u**2 + v**2)))
    return psi / rms if rms > 0 else psi


def initial_state(
    params: SWParams,
    ny: int,
    nx: int,
    *,
    init: str = "vortices",
    depth: float = 100.0,
    amplitude: float = 0.2,
    seed: int = 0,
    dtype: Any = np.float64,
    froude: float = 0.1,
    wavenumber: float = 8.0,
) -> SWState:
    """A seeded, deterministic initial state.

    Parameters
    ----------
    params : SWParams
        Run parameters (grid spacing, ``g`` and the Coriolis parameter are used).
    ny, nx : int
        Grid size.
    init : {"vortices", "bumps", "dam_break"}
        ``"vortices"``: a random field of geostrophically balanced vortices (spectrum peaked at a
        wavelength of an eighth of the domain, or 12 cells if that is longer; streamfunction at
        the corners, so the flow is exactly non-divergent, and ``h = depth + f psi / g``);
        ``"bumps"``: a dozen random Gaussian height bumps and dips, at rest; ``"dam_break"``: a
        column of water of height ``depth * (1 + amplitude)`` with a slightly wavy rim at a random
        place, at rest; ``"turbulence"``: balanced random flow with the spectrum of forced
        two-dimensional turbulence (kinetic energy ``k**-3`` beyond ``wavenumber``, ``k``
        below) at the rms speed ``froude * sqrt(g * depth)``, a start close to the
        statistically steady state of the forced presets.
    depth : float
        Mean layer thickness ``H`` in metres.
    amplitude : float
        Largest thickness anomaly as a fraction of ``depth`` (also caps the initial flow speed at
        ``amplitude * sqrt(g * depth * (1 + amplitude))``, see :func:`speed_bound`).
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    dtype : numpy dtype
        Floating dtype of the arrays.
    froude : float
        rms speed over ``sqrt(g * depth)`` of the ``"turbulence"`` start (other starts ignore it).
    wavenumber : float
        Spectral knee of the ``"turbulence"`` start, in cycles per (shortest) domain side.

    Returns
    -------
    SWState
        Numpy state at step 0. The tracer is a smooth random field in ``[0, 1]``.

    Examples
    --------
    >>> p = SWParams(dx=1e4, dy=1e4, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=60.0)
    >>> s = initial_state(p, 16, 16, init="bumps", depth=50.0, seed=1)
    >>> bool(abs(s.h.mean() - 50.0) < 1e-9)
    True
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    rng = np.random.default_rng(seed)
    dx, dy = params.dx, params.dy
    lx, ly = nx * dx, ny * dy
    xc = (np.arange(nx) + 0.5) * dx
    yc = (np.arange(ny) + 0.5) * dy
    max_anomaly = amplitude * depth
    max_speed = amplitude * math.sqrt(params.g * depth * (1.0 + amplitude))
    zeros = np.zeros((ny, nx))

    # eddies of an eighth of the domain, but at least 12 cells per wavelength
    eddy = max(min(lx, ly) / 8, 12 * max(dx, dy))
    if init == "vortices":
        psi = _smooth_random_field(rng, ny, nx, dx, dy, wavelength=eddy)
        u = -(np.roll(psi, -1, axis=0) - psi) / dy
        v = (np.roll(psi, -1, axis=1) - psi) / dx
        f_c = coriolis(params, ny, at="centre")
        psi_c = 0.25 * (
            psi + np.roll(psi, -1, 0) + np.roll(psi, -1, 1) + np.roll(psi, (-1, -1), (0, 1))
        )
        eta = f_c * psi_c / params.g
        speed = max(np.abs(u).max(), np.abs(v).max())
        factors = [max_speed / speed] if speed > 0 else [0.0]
        if np.abs(eta).max() > 0:
            factors.append(max_anomaly / np.abs(eta).max())
        scale = min(factors)
        h, u, v = depth + scale * eta, scale * u, scale * v
    elif init == "bumps":
        eta = zeros.copy()
        radius = min(lx, ly) / 20
        for _ in range(12):
            x0, y0 = rng.uniform(0, lx), rng.uniform(0, ly)
            r = radius * rng.uniform(0.5, 1.5)
            dxs = _periodic_distance(xc[None, :], x0, lx)
            dys = _periodic_distance(yc[:, None], y0, ly)
            eta += rng.choice([-1.0, 1.0]) * np.exp(-(dxs**2 + dys**2) / (2 * r**2))
        eta -= eta.mean()
        peak = np.abs(eta).max()
        h = depth + (max_anomaly * eta / peak if peak > 0 else eta)
        u, v = zeros, zeros
    elif init == "turbulence":
        wavelength = min(lx, ly) / wavenumber
        psi = (
            froude
            * math.sqrt(params.g * depth)
            * _turbulent_streamfunction(rng, ny, nx, dx, dy, wavelength)
        )
        u = -(np.roll(psi, -1, axis=0) - psi) / dy
        v = (np.roll(psi, -1, axis=1) - psi) / dx
        f_c = coriolis(params, ny, at="centre")
        psi_c = 0.25 * (
            psi + np.roll(psi, -1, 0) + np.roll(psi, -1, 1) + np.roll(psi, (-1, -1), (0, 1))
        )
        h = depth + f_c * psi_c / params.g
    else:  # dam_break
        x0, y0 = rng.uniform(0, lx), rng.uniform(0, ly)
        dxs = _periodic_distance(xc[None, :], x0, lx)
        dys = _periodic_distance(yc[:, None], y0, ly)
        r = np.hypot(dxs, dys)
        theta = np.arctan2(dys, dxs)
        wobble = sum(
            0.03 * rng.standard_normal() * np.cos(m * theta + rng.uniform(0, 2 * np.pi))
            for m in range(2, 7)
        )
        rim = min(lx, ly) / 6 * (1.0 + wobble)
        width = 1.0 * max(dx, dy)
        h = depth + max_anomaly * 0.5 * (1.0 - np.tanh((r - rim) / width))
        u, v = zeros, zeros

    tracer = _smooth_random_field(rng, ny, nx, dx, dy, wavelength=min(lx, ly) / 2)
    tracer = 0.5 * (tracer + 1.0)
    dt_ = np.dtype(dtype)
    h = np.ascontiguousarray(h, dtype=dt_)
    return SWState(
        h=h,
        u=np.ascontiguousarray(u, dtype=dt_),
        v=np.ascontiguousarray(v, dtype=dt_),
        hc=np.ascontiguousarray(h * tracer, dtype=dt_),
        step=0,
    )


# --------------------------------------------------------------------------------------------
# Forcing
# --------------------------------------------------------------------------------------------


def _exponentials(n: int, k: np.ndarray) -> np.ndarray:
    """``exp(2 pi i j k / n)`` for the grid index ``j`` (rows) and integer wavenumbers ``k``
    (columns), ``(n, len(k))``: the Fourier modes ``k`` along an axis of ``n`` cells."""
    return np.exp(2j * np.pi * np.outer(np.arange(n), k) / n)


#: Stream of :class:`numpy.random.SeedSequence` reserved for the forcing (the initial condition
#: uses the bare seed), so forcing and initial condition are independent.
_FORCING_STREAM = 0x5F0C


class RingForcing:
    """White-in-time, random-phase momentum forcing on a ring of wavenumbers (seeded).

    At step ``n`` a streamfunction ``psi_n`` is drawn with independent random complex amplitudes
    on the Fourier modes whose wavenumber lies in ``[wavenumber - width, wavenumber + width]``
    (cycles per shortest domain side), each weighted by ``1 / |k|`` so every mode forces the
    velocity equally; the forcing is its exactly non-divergent velocity on the C-grid,
    ``(fu, fv) = (-d psi / dy, d psi / dx)``, a pure vorticity (geostrophic-momentum) forcing
    that leaves the mass untouched. Each draw is scaled so that ``mean(fu**2 + fv**2) =
    2 * power / dt``: held over one step of ``dt``, it injects kinetic energy per unit mass at
    the rate ``power`` (W kg-1 = m2 s-3) on average, whatever the flow. ``psi_n`` depends on
    ``(seed, n)`` only, so the forcing is reproducible and any step can be replayed.

    Parameters
    ----------
    ny, nx : int
        Grid size.
    dx, dy : float
        Grid spacing in metres.
    wavenumber : float
        Centre of the forced ring, cycles per shortest domain side (>= 1).
    power : float
        Mean kinetic-energy injection rate per unit mass, m2 s-3.
    dt : float
        Time step in seconds (the forcing is white in time at this step).
    seed : int
        Seed of the forcing sequence.
    width : float
        Half-width of the ring in the same units as ``wavenumber``.
    dtype : numpy dtype
        Dtype of the returned arrays.

    Examples
    --------
    >>> f = RingForcing(16, 16, 1e4, 1e4, wavenumber=3.0, power=1e-6, dt=60.0, seed=0)
    >>> fu, fv = f(0)
    >>> round(float((fu**2 + fv**2).mean() * 60.0 / 2), 12)
    1e-06
    >>> bool((f(0)[0] == fu).all()), bool((f(1)[0] == fu).all())
    (True, False)
    """

    def __init__(
        self,
        ny: int,
        nx: int,
        dx: float,
        dy: float,
        *,
        wavenumber: float,
        power: float,
        dt: float,
        seed: int,
        width: float = 1.0,
        dtype: Any = np.float64,
    ) -> None:
        lx, ly = nx * dx, ny * dy
        lmin = min(lx, ly)
        ky = np.fft.fftfreq(ny, d=1.0 / ny)[:, None]
        kx = np.arange(nx // 2 + 1, dtype=np.float64)[None, :]
        k = np.hypot(kx * lmin / lx, ky * lmin / ly)
        # one mode of each pair +-k (a real field), none on a Nyquist row or column: the modes
        # are then orthogonal on the grid and the forcing's mean square is known exactly
        half_plane = (kx > 0) | ((kx == 0) & (ky > 0))
        no_nyquist = (kx < nx / 2) & (np.abs(ky) < ny / 2)
        ring = half_plane & no_nyquist & (np.abs(k - wavenumber) <= width)
        if not ring.any():
            raise ValueError(
                f"no Fourier mode of a {ny} x {nx} grid lies within {width} of wavenumber="
                f"{wavenumber:g} (cycles per domain side); choose a wavenumber between 1 and "
                f"{min(nx, ny) // 2 - 1}"
            )
        self.shape = (ny, nx)
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        # The ring touches few rows and columns of the Fourier plane: each field is the product
        # of a (ny, rows) and a (columns, nx) matrix of complex exponentials around a small
        # coefficient block, much cheaper than an inverse FFT of the whole plane.
        rows = np.nonzero(ring.any(axis=1))[0]
        cols = np.nonzero(ring.any(axis=0))[0]
        self._block = ring[np.ix_(rows, cols)]
        self._weight = 1.0 / k[np.ix_(rows, cols)][self._block]
        #: integer wavenumbers of the block's rows (y) and columns (x)
        self.ky, self.kx = ky_int, kx_int = ky[rows, 0], kx[0, cols]
        self._ey = _exponentials(ny, ky_int)
        ex = _exponentials(nx, kx_int).T
        # real and imaginary parts stacked: Re(L @ E_x) = [Re L, -Im L] @ [Re E_x; Im E_x]
        self._ex = np.ascontiguousarray(np.concatenate([ex.real, ex.imag]))
        # C-grid differences of the corner streamfunction, per Fourier mode:
        # fu = -(psi[j + 1] - psi[j]) / dy on u faces, fv = (psi[:, i + 1] - psi[:, i]) / dx
        self._du = -(np.exp(2j * np.pi * ky_int / ny) - 1.0)[:, None] / dy
        self._dv = (np.exp(2j * np.pi * kx_int / nx) - 1.0)[None, :] / dx
        self._scale = math.sqrt(2.0 * power / dt)

    def coefficients(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Complex Fourier coefficients of ``fu`` and ``fv`` at ``step``, on the ring's block
        (rows: the wavenumbers ``self.ky``, columns: ``self.kx``).

        Each field is ``Re(E_y @ c @ E_x)`` with the complex exponentials of the ring's rows and
        columns; the coefficients are scaled so that ``mean(fu**2 + fv**2) = 2 * power / dt``
        exactly (the modes are orthogonal on the grid, each contributing ``|c|**2 / 2``).
        """
        rng = np.random.default_rng([self.seed, _FORCING_STREAM, int(step)])
        n = self._weight.size
        coef = np.zeros(self._block.shape, dtype=np.complex128)
        coef[self._block] = self._weight * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        cu, cv = coef * self._du, coef * self._dv
        mean_square = 0.5 * float(np.sum(np.abs(cu) ** 2 + np.abs(cv) ** 2))
        factor = self._scale / math.sqrt(mean_square) if mean_square > 0 else 0.0
        return cu * factor, cv * factor

    def _left(self, step: int) -> list[np.ndarray]:
        """Per field, the ``(ny, 2 * columns)`` real left factor ``[Re L, -Im L]``."""
        left = []
        for c in self.coefficients(step):
            rows = self._ey @ c
            left.append(np.concatenate([rows.real, -rows.imag], axis=1))
        return left

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The forcing ``(fu, fv)`` held over the step from ``step`` to ``step + 1`` (numpy)."""
        fu, fv = ((left @ self._ex).astype(self.dtype, copy=False) for left in self._left(step))
        return fu, fv


class LargeScaleDrag:
    """Linear drag on the large scales only: ``-rate * (u_L, v_L)``, where ``u_L`` keeps the
    Fourier modes of ``u`` with wavenumber ``<= wavenumber`` (cycles per shortest domain side).

    A drag on every scale also damps the enstrophy cascade below the forcing scale and steepens
    its spectrum; restricted to the scales above the forcing it removes the energy of the
    inverse cascade only. The projection is exact (a discrete Fourier projection on the grid of
    each velocity component), computed with small matrices of complex exponentials as in
    :class:`RingForcing`, in numpy or on the state's torch device.

    Parameters
    ----------
    ny, nx : int
        Grid size.
    dx, dy : float
        Grid spacing in metres (only their ratio matters, for non-square domains).
    rate : float
        Drag rate in s-1.
    wavenumber : float
        Largest damped wavenumber, cycles per shortest domain side (the mean flow, k = 0, is
        damped too).

    Examples
    --------
    >>> drag = LargeScaleDrag(16, 16, 1.0, 1.0, rate=2.0, wavenumber=2.0)
    >>> x = np.arange(16) * 2 * np.pi / 16
    >>> u = np.cos(x)[None, :] + np.cos(5 * x)[None, :] + np.zeros((16, 1))
    >>> du, _ = drag(u, u)
    >>> bool(np.allclose(du, -2.0 * np.cos(x)[None, :]))
    True
    """

    def __init__(
        self, ny: int, nx: int, dx: float, dy: float, *, rate: float, wavenumber: float
    ) -> None:
        lx, ly = nx * dx, ny * dy
        lmin = min(lx, ly)
        ky = np.fft.fftfreq(ny, d=1.0 / ny)[:, None]
        kx = np.arange(nx // 2 + 1, dtype=np.float64)[None, :]
        k = np.hypot(kx * lmin / lx, ky * lmin / ly)
        half_plane = (kx > 0) | ((kx == 0) & (ky >= 0))
        no_nyquist = (kx < nx / 2) & (np.abs(ky) < ny / 2)
        disk = half_plane & no_nyquist & (k <= wavenumber)
        rows = np.nonzero(disk.any(axis=1))[0]
        cols = np.nonzero(disk.any(axis=0))[0]
        # weight 2 for a mode standing for itself and its conjugate, 1 for the mean
        weight = np.where(disk, 2.0, 0.0)
        weight[0, 0] = 1.0 if disk[0, 0] else 0.0
        self.rate = float(rate)
        self.shape = (ny, nx)
        self._weight = weight[np.ix_(rows, cols)] * (-self.rate / (nx * ny))
        #: integer wavenumbers of the damped block's rows (y) and columns (x)
        self.ky, self.kx = ky[rows, 0], kx[0, cols]
        ey = _exponentials(ny, self.ky)  # (ny, rows)
        ex = _exponentials(nx, self.kx).T  # (cols, nx)
        # Real matrices only for the large products: a @ conj(E_x).T = a @ [Re E_x; -Im E_x].T
        # (forward) and Re(L @ E_x) = [Re L, -Im L] @ [Re E_x; Im E_x] (backward); the complex
        # products are the small (rows, cols) ones.
        self._eyh = np.ascontiguousarray(ey.conj().T)  # (rows, ny)
        self._ey = ey
        self._ex_fwd = np.ascontiguousarray(np.concatenate([ex.real, -ex.imag]).T)  # (nx, 2c)
        self._ex_back = np.ascontiguousarray(np.concatenate([ex.real, ex.imag]))  # (2c, nx)
        self._ncols = len(cols)
        self._torch: dict[tuple[str, str], tuple[Any, ...]] = {}

    def _middle(self, right: np.ndarray) -> np.ndarray:
        """From ``a @ ex_fwd`` (ny, 2c) to the backward left factor ``[Re L, -Im L]`` (ny, 2c)."""
        c = self._ncols
        coef = self._eyh @ (right[:, :c] + 1j * right[:, c:])  # (rows, cols)
        left = self._ey @ (coef * self._weight)
        return np.concatenate([left.real, -left.imag], axis=1)

    def __call__(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The drag acceleration ``(du, dv)`` of numpy velocities."""
        du, dv = (
            (self._middle(a @ self._ex_fwd) @ self._ex_back).astype(a.dtype, copy=False)
            for a in (u, v)
        )
        return du, dv

    def torch_coefficients(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Complex Fourier coefficients of the drag of torch velocities on the damped block
        (rows: ``self.ky``, columns: ``self.kx``), ``(2, rows, columns)`` for ``(du, dv)``,
        computed on their device; each field is ``Re(E_y @ c @ E_x)`` as in
        :meth:`RingForcing.coefficients`."""
        import torch

        key = (str(u.device), str(u.dtype))
        if key not in self._torch:
            cdtype = torch.complex128 if u.dtype == torch.float64 else torch.complex64
            self._torch[key] = (
                torch.as_tensor(self._ex_fwd.T.copy(), dtype=u.dtype, device=u.device),
                torch.as_tensor(self._weight, dtype=u.dtype, device=u.device),
                torch.as_tensor(self._eyh, dtype=cdtype, device=u.device),
            )
        fwd_t, weight, eyh = self._torch[key]
        c = self._ncols
        # the large products are real, a @ ex_fwd = (ex_fwd.T @ a.T).T (BLAS is faster with the
        # long dimension last); the complex ones are small
        right = torch.stack([(fwd_t @ a.mT).mT for a in (u, v)])  # (2, ny, 2c)
        return eyh @ torch.complex(right[..., :c], right[..., c:]) * weight


# --------------------------------------------------------------------------------------------
# Plain-numpy reference of the scheme
# --------------------------------------------------------------------------------------------


def _tendencies_numpy(
    h: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    hc: np.ndarray,
    fq: np.ndarray,
    p: SWParams,
    forcing: SWForcing | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time derivatives of (h, u, v, hc); plain numpy with ``np.roll`` (the reference)."""

    def xm(a: np.ndarray) -> np.ndarray:  # value at i - 1
        return np.roll(a, 1, axis=-1)

    def xp(a: np.ndarray) -> np.ndarray:  # value at i + 1
        return np.roll(a, -1, axis=-1)

    def ym(a: np.ndarray) -> np.ndarray:  # value at j - 1
        return np.roll(a, 1, axis=-2)

    def yp(a: np.ndarray) -> np.ndarray:  # value at j + 1
        return np.roll(a, -1, axis=-2)

    dx, dy = p.dx, p.dy
    # mass fluxes on the faces
    U = 0.5 * (h + xm(h)) * u
    V = 0.5 * (h + ym(h)) * v
    dh = -((xp(U) - U) / dx + (yp(V) - V) / dy)
    # potential vorticity at the corners, Bernoulli function at the centres
    zeta = (v - xm(v)) / dx - (u - ym(u)) / dy
    hq = 0.25 * (h + xm(h) + ym(h) + xm(ym(h)))
    q = (fq + zeta) / hq
    u2, v2 = u * u, v * v
    bern = p.g * h + 0.25 * (u2 + xp(u2) + v2 + yp(v2))
    qv = q * 0.5 * (V + xm(V))
    qu = q * 0.5 * (U + ym(U))
    du = 0.5 * (qv + yp(qv)) - (bern - xm(bern)) / dx
    dv = -0.5 * (qu + xp(qu)) - (bern - ym(bern)) / dy
    if p.nu4 != 0.0:

        def lap(a: np.ndarray) -> np.ndarray:
            return (xp(a) - 2 * a + xm(a)) / dx**2 + (yp(a) - 2 * a + ym(a)) / dy**2

        du = du - p.nu4 * lap(lap(u))
        dv = dv - p.nu4 * lap(lap(v))
    # every term below is skipped when absent, so an unforced run's arithmetic is unchanged
    if p.drag != 0.0:
        du = du - p.drag * u
        dv = dv - p.drag * v
    if forcing is not None and forcing.fu is not None:
        du = du + forcing.fu
        dv = dv + forcing.fv
    # tracer content: mass flux times third-order upwind face value
    c = hc / h
    cxm = xm(c)
    cxmm = xm(cxm)
    cxp = xp(c)
    fx = (
        U * (7.0 * (c + cxm) - (cxp + cxmm)) / 12.0
        + np.abs(U) * ((cxp - cxmm) - 3.0 * (c - cxm)) / 12.0
    )
    cym = ym(c)
    cymm = ym(cym)
    cyp = yp(c)
    fy = (
        V * (7.0 * (c + cym) - (cyp + cymm)) / 12.0
        + np.abs(V) * ((cyp - cymm) - 3.0 * (c - cym)) / 12.0
    )
    dhc = -((xp(fx) - fx) / dx + (yp(fy) - fy) / dy)
    if p.tracer_relax != 0.0 and forcing is not None and forcing.tracer_ref is not None:
        dhc = dhc + p.tracer_relax * (h * forcing.tracer_ref - hc)
    return dh, du, dv, dhc


def step_numpy(state: SWState, params: SWParams, forcing: SWForcing | None = None) -> SWState:
    """One SSP-RK3 step of the plain-numpy reference implementation (pure).

    Parameters
    ----------
    state : SWState
        State with numpy arrays.
    params : SWParams
        Run parameters.
    forcing : SWForcing, optional
        Forcing held constant over the step (numpy arrays); ``None`` for an unforced step.

    Returns
    -------
    SWState
        The state one time step ``params.dt`` later.

    Examples
    --------
    >>> p = SWParams(dx=1e4, dy=1e4, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=60.0)
    >>> s = initial_state(p, 8, 8, init="bumps")
    >>> step_numpy(s, p).step
    1
    """
    fq = coriolis(params, state.h.shape[-2]).astype(state.h.dtype)
    dt = params.dt
    y0 = (state.h, state.u, state.v, state.hc)
    # an unstable run overflows; the driver reports that as BlowUpError, not as warnings
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        k = _tendencies_numpy(*y0, fq, params, forcing)
        y1 = tuple(a + dt * b for a, b in zip(y0, k))
        k = _tendencies_numpy(*y1, fq, params, forcing)
        y2 = tuple(0.75 * a + 0.25 * (b + dt * c) for a, b, c in zip(y0, y1, k))
        k = _tendencies_numpy(*y2, fq, params, forcing)
        y3 = tuple(a / 3.0 + 2.0 / 3.0 * (b + dt * c) for a, b, c in zip(y0, y2, k))
    return SWState(*y3, step=state.step + 1)


# --------------------------------------------------------------------------------------------
# Torch fast path
# --------------------------------------------------------------------------------------------


#: Periodic halo, in cells, that one tendency evaluation reads on each side of its region.
_HALO = 3
#: Extra rows on each side of a band that the three stages of one SSP-RK3 step consume.
_STEP_HALO = 3 * _HALO


def _rk3_torch(
    h: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    hc: torch.Tensor,
    fq: torch.Tensor,
    dx: float,
    dy: float,
    g: float,
    nu4: float,
    dt: float,
    fu: torch.Tensor | None = None,
    fv: torch.Tensor | None = None,
    cref: torch.Tensor | None = None,
    drag: float = 0.0,
    relax: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SSP-RK3 step of a band of whole rows: the arithmetic of the numpy reference, without
    rolls; returns the new ``(h, u, v, hc)`` on the band's rows.

    Every row input (the state, ``fq``, ``fu``, ``fv``, ``cref``) carries ``_STEP_HALO`` extra
    rows on each side, its periodic neighbours: each stage evaluates the tendencies on
    ``_HALO`` rows fewer on each side than its input, so three stages end on the band itself and
    the band needs no exchange with its neighbours during the step (halo rows are computed
    again by the neighbouring band, with the same arithmetic). Columns are whole and periodic:
    each stage pads them with a halo of ``_HALO`` cells and evaluates every intermediate on the
    smallest region its consumers need, with plain slices (views at constant offsets).
    Compilers fuse and vectorise this; ``torch.roll`` along the last axis becomes a modular
    gather that neither eager torch nor inductor vectorises. ``fq`` is the Coriolis column at the
    corners, ``(rows, 1)``; ``fu``, ``fv`` (momentum forcing), ``cref`` (tracer reference),
    ``drag`` and ``relax`` (``tracer_relax``) are the terms of :class:`SWForcing` and
    :class:`SWParams`, skipped when ``None`` or zero.
    """
    import torch

    m0 = _HALO
    nx = h.shape[-1]
    # reciprocals: vector division is several times slower than multiplication (results differ
    # from the numpy reference by rounding only)
    rdx, rdy, r12 = 1.0 / dx, 1.0 / dy, 1.0 / 12.0
    rdx2, rdy2 = rdx * rdx, rdy * rdy

    def band(a: torch.Tensor, k: int) -> torch.Tensor:
        # ``a`` holds a row input (halo ``_STEP_HALO``); return its rows of halo ``k``
        cut = _STEP_HALO - k
        return a[..., cut : a.shape[-2] - cut, :]

    def inner(a: torch.Tensor) -> torch.Tensor:
        # a tendency's input (rows of halo k + m0) on the tendency's rows (halo k)
        return a[..., m0 : a.shape[-2] - m0, :]

    def at(a: torch.Tensor, m: int, k: int, dj: int = 0, di: int = 0) -> torch.Tensor:
        # ``a`` holds a field on the region extended by ``m`` cells on every side; return the
        # field shifted by (dj, di) on the region extended by ``k`` cells.
        ny = a.shape[-2] - 2 * m
        return a[..., m - k + dj : m + ny + k + dj, m - k + di : m + nx + k + di]

    def lap(a: torch.Tensor, m: int) -> torch.Tensor:  # margin m -> margin m - 1
        k = m - 1
        return (at(a, m, k, 0, 1) - 2 * at(a, m, k) + at(a, m, k, 0, -1)) * rdx2 + (
            at(a, m, k, 1, 0) - 2 * at(a, m, k) + at(a, m, k, -1, 0)
        ) * rdy2

    def tend(
        h: torch.Tensor, u: torch.Tensor, v: torch.Tensor, hc: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # inputs on rows of halo k + m0, tendencies on rows of halo k; one periodic pad of the
        # columns of the four fields together (fewer, larger copy loops)
        a = torch.stack([h, u, v, hc / h])
        hp, up, vp, cp = torch.cat([a[..., -m0:], a, a[..., :m0]], dim=-1).unbind(0)
        # mass fluxes on margin 2
        U = 0.5 * (at(hp, m0, 2) + at(hp, m0, 2, 0, -1)) * at(up, m0, 2)
        V = 0.5 * (at(hp, m0, 2) + at(hp, m0, 2, -1, 0)) * at(vp, m0, 2)
        dh = -((at(U, 2, 0, 0, 1) - at(U, 2, 0)) * rdx + (at(V, 2, 0, 1, 0) - at(V, 2, 0)) * rdy)
        # potential vorticity and Bernoulli function on margin 1
        zeta = (at(vp, m0, 1) - at(vp, m0, 1, 0, -1)) * rdx - (
            at(up, m0, 1) - at(up, m0, 1, -1, 0)
        ) * rdy
        hq = 0.25 * (
            at(hp, m0, 1) + at(hp, m0, 1, 0, -1) + at(hp, m0, 1, -1, 0) + at(hp, m0, 1, -1, -1)
        )
        q = (band(fq, k + 1) + zeta) / hq
        u2 = at(up, m0, 2) * at(up, m0, 2)
        v2 = at(vp, m0, 2) * at(vp, m0, 2)
        bern = g * at(hp, m0, 1) + 0.25 * (
            at(u2, 2, 1) + at(u2, 2, 1, 0, 1) + at(v2, 2, 1) + at(v2, 2, 1, 1, 0)
        )
        qv = q * 0.5 * (at(V, 2, 1) + at(V, 2, 1, 0, -1))
        qu = q * 0.5 * (at(U, 2, 1) + at(U, 2, 1, -1, 0))
        du = (
            0.5 * (at(qv, 1, 0) + at(qv, 1, 0, 1, 0))
            - (at(bern, 1, 0) - at(bern, 1, 0, 0, -1)) * rdx
        )
        dv = (
            -0.5 * (at(qu, 1, 0) + at(qu, 1, 0, 0, 1))
            - (at(bern, 1, 0) - at(bern, 1, 0, -1, 0)) * rdy
        )
        if nu4 != 0.0:
            du = du - nu4 * lap(lap(at(up, m0, 2), 2), 1)
            dv = dv - nu4 * lap(lap(at(vp, m0, 2), 2), 1)
        if drag != 0.0:
            du = du - drag * inner(u)
            dv = dv - drag * inner(v)
        if fu is not None and fv is not None:
            du = du + band(fu, k)
            dv = dv + band(fv, k)
        # tracer fluxes on margin 1 (third-order upwind face values)
        U1, V1 = at(U, 2, 1), at(V, 2, 1)
        c = at(cp, m0, 1)
        cxm = at(cp, m0, 1, 0, -1)
        cxmm = at(cp, m0, 1, 0, -2)
        cxp = at(cp, m0, 1, 0, 1)
        fx = (
            U1 * (7.0 * (c + cxm) - (cxp + cxmm)) * r12
            + torch.abs(U1) * ((cxp - cxmm) - 3.0 * (c - cxm)) * r12
        )
        cym = at(cp, m0, 1, -1, 0)
        cymm = at(cp, m0, 1, -2, 0)
        cyp = at(cp, m0, 1, 1, 0)
        fy = (
            V1 * (7.0 * (c + cym) - (cyp + cymm)) * r12
            + torch.abs(V1) * ((cyp - cymm) - 3.0 * (c - cym)) * r12
        )
        dhc = -(
            (at(fx, 1, 0, 0, 1) - at(fx, 1, 0)) * rdx + (at(fy, 1, 0, 1, 0) - at(fy, 1, 0)) * rdy
        )
        if relax != 0.0 and cref is not None:
            dhc = dhc + relax * (inner(h) * band(cref, k) - inner(hc))
        return dh, du, dv, dhc

    y0 = (h, u, v, hc)
    k = tend(*y0, 2 * m0)
    y1 = tuple(band(a, 2 * m0) + dt * b for a, b in zip(y0, k))
    k = tend(*y1, m0)
    y2 = tuple(0.75 * band(a, m0) + 0.25 * (inner(b) + dt * c) for a, b, c in zip(y0, y1, k))
    k = tend(*y2, 0)
    y3 = tuple(
        band(a, 0) * (1.0 / 3.0) + 2.0 / 3.0 * (inner(b) + dt * c) for a, b, c in zip(y0, y2, k)
    )
    return y3[0], y3[1], y3[2], y3[3]


@functools.cache
def _compiled_rk3() -> Callable[..., Any]:
    """``torch.compile`` of :func:`_rk3_torch`, built once per process (compiles lazily)."""
    import torch

    return torch.compile(_rk3_torch, dynamic=False, fullgraph=True)


def _torch_fq(params: SWParams, like: torch.Tensor) -> torch.Tensor:
    import torch

    fq = torch.as_tensor(coriolis(params, like.shape[-2]), dtype=like.dtype, device=like.device)
    # the standard strides of a (ny, 1) column, like the bands cut from it by index_select: the
    # compiled step then serves every band with one graph
    return fq.clone(memory_format=torch.contiguous_format)


def step_torch(
    state: SWState, params: SWParams, forcing: SWForcing | None = None, *, compile: bool = False
) -> SWState:
    """One SSP-RK3 step on torch tensors, on their device (pure; the fast path).

    Parameters
    ----------
    state : SWState
        State whose arrays are torch tensors on one device.
    params : SWParams
        Run parameters.
    forcing : SWForcing, optional
        Forcing held constant over the step (tensors on the state's device, or numpy arrays,
        which are copied there); ``None`` for an unforced step.
    compile : bool
        Use the ``torch.compile``-d kernel (compiled on first use per shape, dtype and parameter
        set; falls back to eager with a ``RuntimeWarning`` if compilation fails).

    Returns
    -------
    SWState
        The state one time step later, on the same device.

    Examples
    --------
    >>> import torch
    >>> p = SWParams(dx=1e4, dy=1e4, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=60.0)
    >>> s = initial_state(p, 8, 8, init="bumps")
    >>> t = SWState(*(torch.from_numpy(a) for a in s[:4]), step=0)
    >>> step_torch(t, p).step
    1
    """
    fq = _torch_fq(params, state.h)
    kernel = _torch_kernel(compile)
    fu, fv, cref = _torch_forcing(forcing, state.h)
    return _apply_kernel(kernel, state, params, fq, fu, fv, cref, _band_rows(state.h, compile))


def _apply_kernel(
    kernel: Any,
    state: SWState,
    params: SWParams,
    fq: Any,
    fu: Any,
    fv: Any,
    cref: Any,
    rows: int,
) -> SWState:
    """One step of the torch ``kernel`` (eager or compiled) from ``state``, forcing included,
    computed band by band of ``rows`` whole rows (:func:`_band_rows`)."""
    ny, nx = state.h.shape[-2], state.h.shape[-1]
    if ny < _HALO or nx < _HALO:
        raise ValueError(f"the torch step needs at least {_HALO} x {_HALO} cells, got {ny} x {nx}")
    fields = (state.h, state.u, state.v, state.hc, fq, fu, fv, cref)
    out = None
    for start in sorted({min(j, ny - rows) for j in range(0, ny, rows)}):
        h, u, v, hc, fq_, fu_, fv_, cref_ = (
            None if a is None else _band_of(a, start - _STEP_HALO, start + rows + _STEP_HALO)
            for a in fields
        )
        new = kernel(
            h,
            u,
            v,
            hc,
            fq_,
            params.dx,
            params.dy,
            params.g,
            params.nu4,
            params.dt,
            fu_,
            fv_,
            cref_,
            params.drag,
            params.tracer_relax,
        )
        if rows == ny:
            out = new
        else:
            # four fields, not one (4, ny, nx) block: the C allocator maps a block that large
            # afresh from the system at every step, and first writes to fresh pages are slow
            out = out or [new[0].new_empty(state.h.shape) for _ in range(4)]
            for field, band in zip(out, new):
                # the last band may overlap the one before: both computed the same values there
                field[start : start + rows] = band
    return SWState(*out, step=state.step + 1)


#: Cells of one band of rows in the compiled step on a CPU: a band's intermediates then stay in
#: the processor's caches, where the whole grid's would stream through main memory.
_BAND_CELLS = 1 << 16


def _band_rows(like: torch.Tensor, compile: bool) -> int:
    """Rows per band of one step (:func:`_apply_kernel`): bands of about ``_BAND_CELLS`` cells
    for the compiled step on a CPU (cache blocking; the three stages' halo of ``2 * _STEP_HALO``
    rows per band is computed twice, so bands are kept several times taller), the whole grid
    otherwise (eager torch pays per operation, an accelerator prefers few large kernels)."""
    ny, nx = like.shape[-2], like.shape[-1]
    if not compile or like.device.type != "cpu":
        return ny
    return min(ny, max(4 * _STEP_HALO, _BAND_CELLS // nx))


def _periodic_rows(a: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start`` to ``stop - 1`` of ``a`` (rows on axis -2), periodic in the row index:
    a view where they do not wrap around, else a copy."""
    import torch

    ny = a.shape[-2]
    if start >= 0 and stop <= ny:
        return a[..., start:stop, :]
    return a.index_select(-2, torch.arange(start, stop, device=a.device) % ny)


class _Factored(NamedTuple):
    """A real field ``left @ right`` on a torch device kept as its factors, ``left`` ``(ny, r)``
    and ``right`` ``(r, nx)`` with ``r`` small (a few Fourier columns): a band of its rows costs
    one small product (:func:`_band_of`), made when the band is stepped, so the field is not
    written to and read back from main memory as a whole."""

    left: torch.Tensor
    right: torch.Tensor


def _band_of(a: Any, start: int, stop: int) -> torch.Tensor:
    """Rows ``start`` to ``stop - 1`` (periodic) of a row input of the step: a tensor or a
    :class:`_Factored` field."""
    if isinstance(a, _Factored):
        return _periodic_rows(a.left, start, stop) @ a.right
    return _periodic_rows(a, start, stop)


class _SpectralMomentum:
    """The momentum source of a forced torch step: the ring forcing plus the drag on the large
    scales, as :class:`_Factored` fields ``(fu, fv)``.

    Both terms are a few Fourier modes (a :class:`RingForcing` block, a :class:`LargeScaleDrag`
    block); their coefficients are summed on the union of the two blocks and synthesised
    together, ``Re(E_y @ c @ E_x)`` with ``Re(L @ E_x) = [Re L, -Im L] @ [Re E_x; Im E_x]``: one
    factored field per component instead of a full field per term and component.
    """

    def __init__(
        self, forcing: RingForcing | None, drag: LargeScaleDrag | None, like: torch.Tensor
    ) -> None:
        import torch

        self.forcing, self.drag = forcing, drag
        terms = [t for t in (forcing, drag) if t is not None]
        ky = np.unique(np.concatenate([t.ky for t in terms]))
        kx = np.unique(np.concatenate([t.kx for t in terms]))
        device = like.device
        self._cdtype = torch.complex128 if like.dtype == torch.float64 else torch.complex64
        self._shape = (2, len(ky), len(kx))
        # where each term's block lies in the union (row and column indices, broadcasting)
        self._at = [
            None
            if t is None
            else (
                torch.as_tensor(np.searchsorted(ky, t.ky), device=device)[:, None],
                torch.as_tensor(np.searchsorted(kx, t.kx), device=device)[None, :],
            )
            for t in (forcing, drag)
        ]
        self._ey = torch.as_tensor(
            _exponentials(like.shape[-2], ky), dtype=self._cdtype, device=device
        )
        ex = _exponentials(like.shape[-1], kx).T
        self._right = torch.as_tensor(
            np.concatenate([ex.real, ex.imag]), dtype=like.dtype, device=device
        )

    def __call__(self, step: int, u: torch.Tensor, v: torch.Tensor) -> tuple[_Factored, _Factored]:
        """``(fu, fv)`` held over the step from ``step`` (the drag of the velocities ``u``, ``v``
        at its start)."""
        import torch

        coef = torch.zeros(self._shape, dtype=self._cdtype, device=u.device)
        if self.forcing is not None:
            rows, cols = self._at[0]
            block = np.stack(self.forcing.coefficients(step))
            coef[:, rows, cols] += torch.as_tensor(block, dtype=self._cdtype, device=u.device)
        if self.drag is not None:
            rows, cols = self._at[1]
            coef[:, rows, cols] += self.drag.torch_coefficients(u, v)
        left = self._ey @ coef  # (2, ny, columns)
        left = torch.cat([left.real, -left.imag], dim=-1)
        return _Factored(left[0], self._right), _Factored(left[1], self._right)


def _torch_forcing(forcing: SWForcing | None, like: torch.Tensor) -> tuple[Any, Any, Any]:
    """The forcing's arrays as tensors of ``like``'s dtype and device (``None`` stays ``None``)."""
    import torch

    if forcing is None:
        return None, None, None
    return tuple(
        None
        if a is None
        else torch.as_tensor(np.require(a, requirements="W"), dtype=like.dtype, device=like.device)
        if isinstance(a, np.ndarray)
        else torch.as_tensor(a, dtype=like.dtype, device=like.device)
        for a in forcing
    )


def _torch_kernel(compile: bool) -> Callable[..., Any]:
    if not compile:
        return _rk3_torch
    compiled = _compiled_rk3()

    def guarded(*args: Any) -> Any:
        try:
            return compiled(*args)
        except Exception as err:  # compilation failures surface on the first call
            warnings.warn(
                f"torch.compile of the shallow-water step failed ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); running the eager torch step "
                "instead (pass compile=False to silence this)",
                RuntimeWarning,
                stacklevel=3,
            )
            _compile_failed.add(True)
            return _rk3_torch(*args)

    if _compile_failed:
        return _rk3_torch
    return guarded


#: Set to a non-empty set once compilation failed in this process, so it is not retried.
_compile_failed: set[bool] = set()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _is_bad(state: SWState) -> list[str]:
    """Names of the problems of a state: non-finite fields or non-positive thickness."""
    problems = []
    for name in ("h", "u", "v", "hc"):
        arr = getattr(state, name)
        finite = (
            bool(arr.isfinite().all()) if hasattr(arr, "isfinite") else bool(np.isfinite(arr).all())
        )
        if not finite:
            problems.append(f"non-finite values in {name}")
    if not problems and float(state.h.min()) <= 0.0:
        problems.append("non-positive layer thickness h")
    return problems


def _to_numpy(state: SWState) -> SWState:
    arrays = [
        a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a) for a in state[:4]
    ]
    return SWState(*arrays, step=state.step)


def integrate(
    state: SWState,
    params: SWParams,
    *,
    frames: int,
    steps_per_frame: int,
    backend: str = "torch",
    device: Any = "cpu",
    compile: bool = False,
    progress: bool = False,
    forcing: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
    tracer_ref: np.ndarray | None = None,
    drag: LargeScaleDrag | None = None,
) -> Iterator[SWState]:
    """Generator driver: yield ``frames`` output states, ``steps_per_frame`` steps apart.

    The first frame is ``state`` itself. After every frame the state is checked; if a field is
    non-finite or the thickness is not positive, the steps since the last good frame are replayed
    one by one to find the first bad step, and :class:`BlowUpError` names it.

    Parameters
    ----------
    state : SWState
        Initial state with numpy arrays.
    params : SWParams
        Run parameters.
    frames : int
        Number of states to yield (>= 1).
    steps_per_frame : int
        Time steps between consecutive frames (>= 1).
    backend : {"torch", "numpy"}
        ``"torch"``: :func:`step_torch` on ``device``; ``"numpy"``: :func:`step_numpy`.
    device : str or torch.device
        Torch device (ignored by the numpy backend).
    compile : bool
        Use ``torch.compile`` for the torch backend.
    progress : bool
        Show a tqdm bar over the output frames.
    forcing : callable, optional
        ``forcing(n)`` returns the momentum forcing ``(fu, fv)`` (numpy arrays, m s-2) held over
        the step from step ``n`` to ``n + 1``, e.g. a :class:`RingForcing`; a pure function of
        ``n``, so a replayed or restarted run sees the same forcing.
    tracer_ref : numpy.ndarray, optional
        Reference tracer pattern the tracer relaxes towards at the rate ``params.tracer_relax``.
    drag : LargeScaleDrag, optional
        Drag on the large scales, evaluated on the state at the start of each step and held
        over the step like the forcing.

    Yields
    ------
    SWState
        States with numpy arrays (copied to the host).

    Raises
    ------
    BlowUpError
        When the integration produces non-finite values or a non-positive thickness.

    Examples
    --------
    >>> p = SWParams(dx=1e4, dy=1e4, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=60.0)
    >>> s0 = initial_state(p, 8, 8, init="bumps")
    >>> [s.step for s in integrate(s0, p, frames=3, steps_per_frame=2)]
    [0, 2, 4]
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if steps_per_frame < 1:
        raise ValueError(f"steps_per_frame must be >= 1, got {steps_per_frame}")
    forced = forcing is not None or tracer_ref is not None or drag is not None

    def forcing_at(s: SWState) -> SWForcing | None:
        if not forced:
            return None
        fu, fv = forcing(s.step) if forcing is not None else (None, None)
        if drag is not None:
            du, dv = drag(s.u, s.v)
            fu, fv = (du, dv) if fu is None else (fu + du, fv + dv)
        return SWForcing(fu=fu, fv=fv, tracer_ref=tracer_ref)

    if backend == "numpy":
        current = _to_numpy(state)

        def step(s: SWState) -> SWState:
            return step_numpy(s, params, forcing_at(s))
    elif backend == "torch":
        import torch

        current = SWState(
            # a writable copy: the state's arrays may be read-only (the spin-up cache)
            *(torch.as_tensor(np.array(a), device=device) for a in state[:4]),
            step=state.step,
        )
        fq = _torch_fq(params, current.h)
        kernel = _torch_kernel(compile)
        rows = _band_rows(current.h, compile)
        cref = _torch_forcing(SWForcing(None, None, tracer_ref), current.h)[2]
        ring = forcing if isinstance(forcing, RingForcing) else None
        spectral = (
            _SpectralMomentum(ring, drag, current.h)
            if ring is not None or drag is not None
            else None
        )

        def step(s: SWState) -> SWState:
            fu, fv = spectral(s.step, s.u, s.v) if spectral is not None else (None, None)
            if forcing is not None and ring is None:
                gu, gv, _ = _torch_forcing(SWForcing(*forcing(s.step), None), s.h)
                ny = s.h.shape[-2]
                fu, fv = (
                    (gu, gv) if fu is None else (gu + _band_of(fu, 0, ny), gv + _band_of(fv, 0, ny))
                )
            return _apply_kernel(kernel, s, params, fq, fu, fv, cref, rows)
    else:
        raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")

    from tqdm.auto import tqdm

    with tqdm(total=frames, disable=not progress, desc="shallow water", unit="frame") as bar:
        yield _to_numpy(current)
        bar.update(1)
        for _ in range(frames - 1):
            good = current
            for _ in range(steps_per_frame):
                current = step(current)
            if _is_bad(current):
                _raise_blow_up(good, step, steps_per_frame, params)
            yield _to_numpy(current)
            bar.update(1)


def _raise_blow_up(
    good: SWState, step: Callable[[SWState], SWState], max_steps: int, params: SWParams
) -> None:
    current = good
    for _ in range(max_steps):
        current = step(current)
        problems = _is_bad(current)
        if problems:
            raise BlowUpError(
                f"the shallow-water integration blew up at step {current.step} "
                f"(t = {current.step * params.dt:g} s): {', '.join(problems)}; reduce dt "
                f"(it was {params.dt:g} s), lower the amplitude or raise nu4",
                step=current.step,
            )
    raise AssertionError("blow-up detected but not reproduced step by step")  # pragma: no cover


def centred_fields(state: SWState, params: SWParams) -> dict[str, np.ndarray]:
    """Interpolate a (numpy) state to cell centres for output.

    Parameters
    ----------
    state : SWState
        State with numpy arrays.
    params : SWParams
        Run parameters (grid spacing).

    Returns
    -------
    dict of str to numpy.ndarray
        ``h`` (thickness), ``u`` and ``v`` (two-point face averages), ``vorticity`` (relative
        vorticity, four-point corner average) and ``tracer`` (``hc / h``), all ``(ny, nx)``.

    Examples
    --------
    >>> p = SWParams(dx=1e4, dy=1e4, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=60.0)
    >>> sorted(centred_fields(initial_state(p, 8, 8), p))
    ['h', 'tracer', 'u', 'v', 'vorticity']
    """
    h, u, v, hc = (np.asarray(a) for a in state[:4])
    zeta = (v - np.roll(v, 1, -1)) / params.dx - (u - np.roll(u, 1, -2)) / params.dy
    zeta_c = 0.25 * (
        zeta + np.roll(zeta, -1, -1) + np.roll(zeta, -1, -2) + np.roll(zeta, (-1, -1), (-2, -1))
    )
    return {
        "h": h,
        "u": 0.5 * (u + np.roll(u, -1, -1)),
        "v": 0.5 * (v + np.roll(v, -1, -2)),
        "vorticity": zeta_c,
        "tracer": hc / h,
    }


def isotropic_spectrum(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic power spectrum of a doubly periodic field, by integer wavenumber shells.

    Parameters
    ----------
    field : numpy.ndarray
        Array ``(..., ny, nx)``; leading dimensions (e.g. frames) are averaged.

    Returns
    -------
    k : numpy.ndarray
        Wavenumbers ``1 .. min(ny, nx) // 2``, in cycles per domain side.
    power : numpy.ndarray
        Sum of ``|FFT|**2`` over each shell ``k - 1/2 <= |k| < k + 1/2`` (Parseval-normalised:
        the shells sum to about the field's variance), mean over leading dimensions. For the
        velocity components, ``0.5 * (power(u) + power(v))`` is the kinetic-energy spectrum
        per unit mass.

    Examples
    --------
    >>> x = np.arange(32) * 2 * np.pi / 32
    >>> k, p = isotropic_spectrum(np.cos(3 * x)[None, :] * np.ones((32, 1)))
    >>> int(k[np.argmax(p)]), round(float(p.sum()), 6)
    (3, 0.5)
    """
    arr = np.asarray(field, dtype=np.float64)
    ny, nx = arr.shape[-2:]
    arr = arr.reshape(-1, ny, nx)
    arr = arr - arr.mean(axis=(-2, -1), keepdims=True)
    power2d = (np.abs(np.fft.fft2(arr)) ** 2).mean(axis=0) / (nx * ny) ** 2
    ky = np.fft.fftfreq(ny, d=1.0 / ny)[:, None]
    kx = np.fft.fftfreq(nx, d=1.0 / nx)[None, :]
    shell = np.rint(np.hypot(kx, ky)).astype(int)
    kmax = min(nx, ny) // 2
    power = np.bincount(shell.ravel(), weights=power2d.ravel(), minlength=kmax + 1)
    return np.arange(1, kmax + 1, dtype=np.float64), power[1 : kmax + 1]


# --------------------------------------------------------------------------------------------
# One call: validate, initialise, integrate, collect
# --------------------------------------------------------------------------------------------


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok_type = (
        isinstance(value, (int, np.integer))
        if integer
        else isinstance(value, (int, float, np.number))
    )
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(float(value)) or (value < 0 if allow_zero else value <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")


#: Names of the backends understood by :func:`configure` and :func:`choose_backend`.
BACKENDS: tuple[str, ...] = ("auto", "torch", "numpy")


def choose_backend(backend: str, device: Any = "cpu", compile: bool = False) -> str:
    """Resolve ``backend="auto"`` and check that backend, device and compile fit together.

    ``"auto"`` picks torch where it is faster: on an accelerator or when compiling. On a CPU
    without compilation eager torch is no faster than numpy for this stencil (about equal at
    256 x 256, slower below: per-operation overhead), so ``"auto"`` picks the numpy reference.

    Parameters
    ----------
    backend : {"auto", "torch", "numpy"}
        Requested backend.
    device : str or torch.device
        Requested torch device.
    compile : bool
        Whether ``torch.compile`` was requested.

    Returns
    -------
    str
        ``"torch"`` or ``"numpy"``.

    Examples
    --------
    >>> choose_backend("auto"), choose_backend("auto", "cuda"), choose_backend("auto", compile=True)
    ('numpy', 'torch', 'torch')
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    on_cpu = str(device) == "cpu"
    if backend == "auto":
        return "numpy" if on_cpu and not compile else "torch"
    if backend == "numpy" and not on_cpu:
        raise ValueError(
            f"backend='numpy' runs on the CPU only, got device={device!r}; pass backend='torch'"
        )
    if backend == "numpy" and compile:
        raise ValueError("compile=True needs backend='torch' (or 'auto'), got backend='numpy'")
    return backend


#: Names of the cell-centred output fields, in output order.
FIELDS: tuple[str, ...] = ("h", "u", "v", "vorticity", "tracer")

#: Named regimes of :func:`configure`. ``"smooth"`` is the unforced configuration of xsr up to
#: version 0.x (freely decaying balanced vortices, hourly frames, no spin-up); its entries are
#: physical values. The forced presets give dimensionless numbers from which :func:`configure`
#: derives the physical values for the grid at hand (see :func:`preset_values`):
#:
#: * ``forcing_wavenumber``: centre of the forced ring, cycles per shortest domain side (capped
#:   at a twelfth of the grid, so that small grids force at 12 cells or more);
#: * ``froude``: target rms speed over the gravity-wave speed ``sqrt(g depth)``;
#: * ``deformation``: deformation radius ``sqrt(g depth) / f0`` over the forcing wavelength
#:   (sets ``f0``; the Rossby number at the forcing scale is ``2 pi froude deformation``);
#: * ``drag``, ``tracer_relax``: rates times the eddy turnover time
#:   ``tau = 1 / (U k_f)`` (``U = froude sqrt(g depth)``, ``k_f`` the forcing wavenumber in rad/m);
#: * ``drag_scale``: the drag acts on wavenumbers up to ``drag_scale`` times the forcing
#:   wavenumber only (the large scales: a drag in the enstrophy cascade would steepen it);
#: * ``power``: energy injection rate over ``drag U**2`` (the drag's dissipation at rms speed U);
#: * ``hyperviscosity``: ``nu4 / (U dx**3)``;
#: * ``displacement``: rms displacement per frame in cells (sets the default ``interval``);
#: * ``spin_up``: spin-up length in eddy turnover times;
#: * ``amplitude``: margin of the signal speed bound used for the time step (:func:`speed_bound`).
PRESETS: dict[str, dict[str, Any]] = {
    "turbulent": {
        "init": "turbulence",
        "forcing_wavenumber": 8.0,
        "froude": 0.15,
        "deformation": 0.25,
        "drag": 0.1,
        "drag_scale": 1.0,
        "tracer_relax": 0.1,
        "power": 0.5,
        "hyperviscosity": 0.002,
        "displacement": 0.75,
        "spin_up": 10.0,
        "amplitude": 0.4,
    },
    "rotating": {
        "init": "turbulence",
        "forcing_wavenumber": 8.0,
        "froude": 0.06,
        "deformation": 0.1,
        "drag": 0.1,
        "drag_scale": 1.0,
        "tracer_relax": 0.1,
        "power": 0.5,
        "hyperviscosity": 0.002,
        "displacement": 0.75,
        "spin_up": 10.0,
        "amplitude": 0.4,
    },
    "ageostrophic": {
        "init": "turbulence",
        "forcing_wavenumber": 8.0,
        "froude": 0.15,
        "deformation": 1.0,
        "drag": 0.1,
        "drag_scale": 1.0,
        "tracer_relax": 0.1,
        "power": 0.5,
        "hyperviscosity": 0.002,
        "displacement": 0.75,
        "spin_up": 10.0,
        "amplitude": 0.4,
    },
    "small_forcing": {
        "init": "turbulence",
        "forcing_wavenumber": 16.0,
        "froude": 0.15,
        "deformation": 0.5,
        "drag": 0.1,
        "drag_scale": 0.5,
        "tracer_relax": 0.1,
        "power": 0.5,
        "hyperviscosity": 0.002,
        "displacement": 0.75,
        "spin_up": 10.0,
        "amplitude": 0.4,
    },
    "smooth": {
        "init": "vortices",
        "interval": 3600.0,
        "f0": 1e-4,
        "beta": 0.0,
        "drag": 0.0,
        "forcing_power": 0.0,
        "forcing_wavenumber": 0.0,
        "tracer_relax": 0.0,
        "spin_up": 0.0,
        "amplitude": 0.2,
    },
}

#: The preset used when none is named.
DEFAULT_PRESET = "turbulent"


def _nice(value: float) -> float:
    """``value`` rounded to two significant digits (for default intervals)."""
    digits = 1 - math.floor(math.log10(abs(value)))
    return float(round(value, digits))


def preset_values(
    preset: str, nx: int, ny: int, dx: float, dy: float, g: float, depth: float
) -> dict[str, Any]:
    """The physical defaults of a named preset for one grid.

    Parameters
    ----------
    preset : str
        A key of :data:`PRESETS`.
    nx, ny : int
        Grid size.
    dx, dy : float
        Grid spacing in metres.
    g, depth : float
        Gravity (m s-2) and mean layer thickness (m).

    Returns
    -------
    dict
        ``init``, ``interval`` (s), ``f0``, ``beta``, ``nu4``, ``drag``, ``drag_wavenumber``,
        ``forcing_power``, ``forcing_wavenumber``, ``tracer_relax``, ``froude``, ``spin_up`` (s)
        and ``amplitude``.

    Examples
    --------
    >>> v = preset_values("turbulent", 256, 256, 50e3, 50e3, 9.81, 100.0)
    >>> v["forcing_wavenumber"], v["init"]
    (8.0, 'turbulence')
    >>> preset_values("smooth", 64, 64, 50e3, 50e3, 9.81, 100.0)["spin_up"]
    0.0
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    table = PRESETS[preset]
    c = math.sqrt(g * depth)
    if preset == "smooth":
        return dict(table, nu4=0.005 * c * max(dx, dy) ** 3, froude=0.0, drag_wavenumber=0.0)
    lmin = min(nx * dx, ny * dy)
    kf = max(1.0, min(float(table["forcing_wavenumber"]), min(nx, ny) / 12.0))
    wavelength = lmin / kf
    speed = table["froude"] * c
    tau = wavelength / (2.0 * math.pi * speed)
    drag = table["drag"] / tau
    return {
        "init": table["init"],
        "interval": _nice(table["displacement"] * min(dx, dy) / speed),
        "f0": c / (table["deformation"] * wavelength),
        "beta": 0.0,
        "nu4": table["hyperviscosity"] * speed * max(dx, dy) ** 3,
        "drag": drag,
        "drag_wavenumber": kf * table["drag_scale"],
        "forcing_power": table["power"] * drag * speed**2,
        "forcing_wavenumber": kf,
        "tracer_relax": table["tracer_relax"] / tau,
        "froude": float(table["froude"]),
        "spin_up": table["spin_up"] * tau,
        "amplitude": float(table["amplitude"]),
    }


@dataclasses.dataclass(frozen=True)
class SWConfig:
    """A fully resolved, validated run (immutable; built by :func:`configure`).

    Every field is a plain Python value, so a configuration is hashable, can be compared, and is
    written to the output's attributes as it is (:meth:`as_dict`). Field names are the keyword
    names of :func:`configure` and :func:`xsr.data.shallow_water`.

    Attributes
    ----------
    nx, ny : int
        Grid size.
    frames : int
        Number of output frames.
    seed : int
        Seed of the initial condition and of the forcing.
    preset : str
        Name of the preset the defaults came from (a key of :data:`PRESETS`).
    init : str
        Initial condition (:data:`INITS`).
    interval : float
        Seconds between output frames.
    dt : float
        Time step in seconds.
    steps_per_frame : int
        Time steps per output interval.
    dt_max : float
        The CFL limit of the time step, in seconds.
    spin_up : float
        Seconds integrated before the first output frame (a whole number of intervals); the first
        frame is at this time, the time coordinate counting from the start of the run.
    dx, dy : float
        Grid spacing in metres.
    g : float
        Gravity in m s-2.
    depth : float
        Mean layer thickness in metres.
    f0, beta : float
        Coriolis parameter (s-1) and its gradient (m-1 s-1).
    nu4 : float
        Biharmonic hyperviscosity in m4 s-1.
    drag : float
        Linear drag rate in s-1.
    drag_wavenumber : float
        The drag acts on the Fourier modes up to this wavenumber (cycles per shortest domain
        side) only; 0: on every scale.
    forcing_power : float
        Kinetic-energy injection rate of the ring forcing, m2 s-3 (0: unforced).
    forcing_wavenumber : float
        Centre of the forced ring, cycles per shortest domain side (0 when unforced).
    tracer_relax : float
        Relaxation rate of the tracer towards its initial pattern, s-1.
    froude : float
        rms Froude number of the ``"turbulence"`` initial condition.
    amplitude : float
        Relative amplitude of the initial anomaly and margin of the speed bound for ``dt``.
    dtype : str
        ``"float64"`` or ``"float32"``.
    backend : str
        ``"auto"``, ``"torch"`` or ``"numpy"``.

    Examples
    --------
    >>> cfg = configure(16, 16, preset="smooth", frames=2)
    >>> cfg.depth, cfg.params.dt == cfg.dt
    (100.0, True)
    >>> dataclasses.replace(cfg, frames=3).frames
    3
    """

    nx: int
    ny: int
    frames: int
    seed: int
    preset: str
    init: str
    interval: float
    dt: float
    steps_per_frame: int
    dt_max: float
    spin_up: float
    dx: float
    dy: float
    g: float
    depth: float
    f0: float
    beta: float
    nu4: float
    drag: float
    drag_wavenumber: float
    forcing_power: float
    forcing_wavenumber: float
    tracer_relax: float
    froude: float
    amplitude: float
    dtype: str
    backend: str

    @property
    def params(self) -> SWParams:
        """The :class:`SWParams` of the pure step (grid, physics, time step); a drag on the
        large scales only is not in them but in :class:`LargeScaleDrag`, applied by the driver."""
        params = SWParams(*(getattr(self, name) for name in SWParams._fields))
        return params._replace(drag=0.0) if self.drag_wavenumber > 0 else params

    @property
    def spin_up_frames(self) -> int:
        """Number of output intervals integrated before the first frame."""
        return round(self.spin_up / self.interval)

    @property
    def forced(self) -> bool:
        """Whether the run has momentum forcing."""
        return self.forcing_power > 0.0

    def as_dict(self) -> dict[str, Any]:
        """Every field, by name (plain values: for attributes and provenance)."""
        return dataclasses.asdict(self)


def _finite(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def configure(
    nx: int = 128,
    ny: int = 128,
    *,
    preset: str = DEFAULT_PRESET,
    frames: int = 100,
    seed: int = 0,
    init: str | None = None,
    interval: float | None = None,
    spin_up: float | None = None,
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
    dtype: Any = "float64",
    backend: str = "auto",
) -> SWConfig:
    """Validate the arguments of a run and resolve its defaults from a preset.

    Nothing is integrated: the result fully describes a run, so that the labelled output can be
    built before (or without) running it, and :func:`run` can execute it later, e.g. in a dask task.
    Every argument left at ``None`` takes the preset's value for this grid
    (:func:`preset_values`).

    Parameters
    ----------
    nx, ny : int
        Grid size (columns, rows), each >= 4.
    preset : str
        A regime of :data:`PRESETS`: ``"turbulent"`` (default; forced-dissipative geostrophic
        turbulence), ``"rotating"`` (small deformation radius), ``"ageostrophic"`` (deformation
        radius at the forcing scale, Rossby number near 1), ``"small_forcing"`` (forcing at half
        the scale, with an inverse cascade), or ``"smooth"`` (xsr's earlier unforced
        configuration, reproduced exactly).
    frames : int
        Number of output frames (>= 1); the first is the state after the spin-up.
    seed : int
        Seed of the initial condition and of the forcing (>= 0).
    init : {"vortices", "bumps", "dam_break", "turbulence"}, optional
        Initial condition, see :func:`initial_state`.
    interval : float, optional
        Seconds between output frames.
    spin_up : float, optional
        Seconds integrated before the first output frame, rounded up to whole intervals (0: the
        first frame is the initial state).
    dt : float, optional
        Time step in seconds; must divide ``interval`` and not exceed the CFL limit
        (``ValueError`` names the largest stable value). Default: the largest step not above
        0.7 times that limit which divides ``interval``.
    dx, dy : float, optional
        Grid spacing in metres (default 50 km; ``dy`` defaults to ``dx``).
    Lx, Ly : float, optional
        Domain lengths in metres, instead of ``dx`` / ``dy``.
    g : float
        Gravitational acceleration in m s-2.
    depth : float
        Mean layer thickness in metres.
    f0, beta : float, optional
        Coriolis parameter (s-1) and its gradient (m-1 s-1, periodic beta-plane).
    nu4 : float, optional
        Biharmonic hyperviscosity in m4 s-1.
    drag : float, optional
        Linear drag rate on the velocity in s-1.
    drag_wavenumber : float, optional
        Restrict the drag to the Fourier modes up to this wavenumber (cycles per shortest domain
        side); 0 for a drag on every scale.
    forcing_power : float, optional
        Energy injection rate per unit mass of the momentum forcing in m2 s-3 (0: unforced).
    forcing_wavenumber : float, optional
        Centre of the forced ring of wavenumbers (width +-1), cycles per shortest domain side.
    tracer_relax : float, optional
        Rate (s-1) at which the tracer relaxes towards its initial large-scale pattern (its
        source in a forced run).
    amplitude : float, optional
        Relative amplitude of the initial anomaly, in ``(0, 1)``; also the margin of the speed
        bound from which ``dt`` is chosen (:func:`speed_bound`).
    dtype : {"float64", "float32"}
        Floating dtype of the integration and of the output.
    backend : {"auto", "torch", "numpy"}
        Torch fast path or the plain-numpy reference; ``"auto"`` is resolved by :func:`run` with
        :func:`choose_backend`.

    Returns
    -------
    SWConfig
        The resolved run.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments; the message names the argument and the fix.

    Examples
    --------
    >>> cfg = configure(32, 32, interval=600.0)
    >>> cfg.steps_per_frame * cfg.dt == 600.0 and cfg.dt <= cfg.dt_max
    True
    >>> cfg.preset, cfg.forced, configure(32, 32, preset="smooth").forced
    ('turbulent', True, False)
    """
    _positive("nx", nx, integer=True)
    _positive("ny", ny, integer=True)
    if nx < 4 or ny < 4:
        raise ValueError(
            f"nx and ny must be >= 4 (the tracer stencil is 4 wide), got nx={nx}, ny={ny}"
        )
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    _positive("frames", frames, integer=True)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if Lx is not None:
        if dx is not None:
            raise ValueError("pass either dx or Lx, not both")
        _positive("Lx", Lx)
        dx = Lx / nx
    if Ly is not None:
        if dy is not None:
            raise ValueError("pass either dy or Ly, not both")
        _positive("Ly", Ly)
        dy = Ly / ny
    dx = 50e3 if dx is None else dx
    for name, value in (("dx", dx), ("g", g), ("depth", depth)):
        _positive(name, value)
    dy = dx if dy is None else dy
    _positive("dy", dy)
    defaults = preset_values(preset, nx, ny, dx, dy, g, depth)
    init = defaults["init"] if init is None else init
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    interval = defaults["interval"] if interval is None else interval
    _positive("interval", interval)
    spin_up = defaults["spin_up"] if spin_up is None else spin_up
    _positive("spin_up", spin_up, allow_zero=True)
    f0 = defaults["f0"] if f0 is None else f0
    beta = defaults["beta"] if beta is None else beta
    for name, value in (("f0", f0), ("beta", beta)):
        _finite(name, value)
    amplitude = defaults["amplitude"] if amplitude is None else amplitude
    _positive("amplitude", amplitude)
    if amplitude >= 1.0:
        raise ValueError(f"amplitude must be < 1 (a fraction of depth), got {amplitude!r}")
    nu4 = defaults["nu4"] if nu4 is None else nu4
    _positive("nu4", nu4, allow_zero=True)
    drag = defaults["drag"] if drag is None else drag
    _positive("drag", drag, allow_zero=True)
    if drag_wavenumber is None:
        drag_wavenumber = defaults["drag_wavenumber"]
    _positive("drag_wavenumber", drag_wavenumber, allow_zero=True)
    forcing_power = defaults["forcing_power"] if forcing_power is None else forcing_power
    _positive("forcing_power", forcing_power, allow_zero=True)
    if forcing_wavenumber is None:
        forcing_wavenumber = defaults["forcing_wavenumber"]
        if forcing_power > 0 and forcing_wavenumber == 0:
            forcing_wavenumber = max(1.0, min(8.0, min(nx, ny) / 12.0))
    _positive("forcing_wavenumber", forcing_wavenumber, allow_zero=True)
    if forcing_power > 0 and not 1.0 <= forcing_wavenumber <= min(nx, ny) / 2:
        raise ValueError(
            f"forcing_wavenumber must lie in [1, {min(nx, ny) // 2}] (cycles per domain side on "
            f"this {ny} x {nx} grid), got {forcing_wavenumber!r}"
        )
    tracer_relax = defaults["tracer_relax"] if tracer_relax is None else tracer_relax
    _positive("tracer_relax", tracer_relax, allow_zero=True)
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = np.dtype("O")
    if dtype is None or np_dtype.name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")

    params = SWParams(
        dx=float(dx),
        dy=float(dy),
        g=float(g),
        f0=float(f0),
        beta=float(beta),
        nu4=float(nu4),
        dt=0.0,
        drag=float(drag),
        tracer_relax=float(tracer_relax),
    )
    speed = speed_bound(g, depth, amplitude)
    dt_max = max_stable_dt(params, ny, speed)
    if dt is None:
        steps_per_frame = max(1, math.ceil(interval / (_SAFETY * dt_max)))
        dt = interval / steps_per_frame
    else:
        _positive("dt", dt)
        if dt > dt_max:
            raise ValueError(
                f"dt={dt:g} s exceeds the CFL limit: the largest stable time step is {dt_max:.6g} s "
                f"for this grid and signal speed {speed:.4g} m/s; pass dt <= {dt_max:.6g} or "
                "dt=None to choose it automatically"
            )
        steps_per_frame = round(interval / dt)
        if steps_per_frame < 1 or abs(steps_per_frame * dt - interval) > 1e-9 * interval:
            raise ValueError(
                f"interval={interval:g} s must be a whole multiple of dt={dt:g} s "
                f"(e.g. dt={interval / max(1, math.ceil(interval / dt)):.6g})"
            )
    spin_up_frames = math.ceil(spin_up / interval - 1e-9) if spin_up > 0 else 0
    return SWConfig(
        nx=int(nx),
        ny=int(ny),
        frames=int(frames),
        seed=int(seed),
        preset=preset,
        init=init,
        interval=float(interval),
        dt=float(dt),
        steps_per_frame=int(steps_per_frame),
        dt_max=float(dt_max),
        spin_up=float(spin_up_frames * interval),
        dx=float(dx),
        dy=float(dy),
        g=float(g),
        depth=float(depth),
        f0=float(f0),
        beta=float(beta),
        nu4=float(nu4),
        drag=float(drag),
        drag_wavenumber=float(drag_wavenumber) if drag > 0 else 0.0,
        forcing_power=float(forcing_power),
        forcing_wavenumber=float(forcing_wavenumber) if forcing_power > 0 else 0.0,
        tracer_relax=float(tracer_relax),
        froude=float(defaults["froude"]),
        amplitude=float(amplitude),
        dtype=np_dtype.name,
        backend=backend,
    )


def params_from(config: SWConfig) -> SWParams:
    """The :class:`SWParams` of a :func:`configure` result (same as ``config.params``).

    Parameters
    ----------
    config : SWConfig
        Output of :func:`configure`.

    Returns
    -------
    SWParams
        Grid spacing, physics and time step.

    Examples
    --------
    >>> params_from(configure(8, 8, preset="smooth", dt=60.0, interval=600.0)).dt
    60.0
    """
    return config.params


def _drag_of(config: SWConfig) -> LargeScaleDrag | None:
    if config.drag == 0 or config.drag_wavenumber == 0:
        return None  # none, or on every scale: a term of the step itself (SWParams.drag)
    return LargeScaleDrag(
        config.ny,
        config.nx,
        config.dx,
        config.dy,
        rate=config.drag,
        wavenumber=config.drag_wavenumber,
    )


def _forcing_of(config: SWConfig) -> RingForcing | None:
    if not config.forced:
        return None
    return RingForcing(
        config.ny,
        config.nx,
        config.dx,
        config.dy,
        wavenumber=config.forcing_wavenumber,
        power=config.forcing_power,
        dt=config.dt,
        seed=config.seed,
        dtype=config.dtype,
    )


def _start(config: SWConfig) -> tuple[SWState, np.ndarray | None]:
    """Initial state and the tracer reference pattern (its initial concentration)."""
    state = initial_state(
        config.params,
        config.ny,
        config.nx,
        init=config.init,
        depth=config.depth,
        amplitude=config.amplitude,
        seed=config.seed,
        dtype=np.dtype(config.dtype),
        froude=config.froude if config.froude > 0 else 0.1,
        wavenumber=config.forcing_wavenumber if config.forcing_wavenumber > 0 else 8.0,
    )
    tracer_ref = None
    if config.tracer_relax > 0:
        tracer_ref = state.hc / state.h
        tracer_ref.flags.writeable = False
    return state, tracer_ref


@functools.lru_cache(maxsize=16)
def _spun_up(key: SWConfig, device: str, compile: bool) -> SWState:
    """The state after the spin-up of ``key`` (a configuration with ``frames=1``), cached.

    Many calls in one process share a configuration but for the number of frames (tests, the
    demo, notebooks); the spin-up, their common and most expensive part, runs once. The cached
    arrays are read-only.
    """
    state, tracer_ref = _start(key)
    *_, last = integrate(
        state,
        key.params,
        frames=key.spin_up_frames + 1,
        steps_per_frame=key.steps_per_frame,
        backend=key.backend,
        device=device,
        compile=compile,
        forcing=_forcing_of(key),
        tracer_ref=tracer_ref,
        drag=_drag_of(key),
    )
    for a in last[:4]:
        a.flags.writeable = False
    return last


def run(
    config: SWConfig,
    *,
    device: Any = "cpu",
    compile: bool = False,
    progress: bool = False,
) -> SWRun:
    """Execute a configured run: spin up, then collect its cell-centred frames.

    Parameters
    ----------
    config : SWConfig
        Output of :func:`configure`.
    device : str or torch.device
        Torch device for the torch backend.
    compile : bool
        ``torch.compile`` the step (opt-in: faster for long or large runs, costs a warm-up of tens
        of seconds once per process and shape; falls back to eager with a ``RuntimeWarning`` if
        compilation fails).
    progress : bool
        Show a tqdm progress bar over output frames.

    Returns
    -------
    SWRun
        Frames ``(frames, ny, nx)`` for each name of :data:`FIELDS`, coordinates, parameters.
        ``time`` counts from the start of the run: the first frame is at ``config.spin_up``.

    Raises
    ------
    BlowUpError
        When the integration blows up (the message names the step).

    Notes
    -----
    The state after the spin-up is cached in the process (keyed by the full configuration but
    the number of frames, the device and ``compile``), so runs differing only in ``frames``
    spin up once.

    Examples
    --------
    >>> out = run(configure(8, 8, preset="smooth", frames=2, interval=600.0))
    >>> out.fields["tracer"].shape
    (2, 8, 8)
    """
    if not isinstance(config, SWConfig):
        raise TypeError(f"config must be an SWConfig (from configure()), got {type(config)!r}")
    config = dataclasses.replace(config, backend=choose_backend(config.backend, device, compile))
    params = config.params
    ny, nx, frames = config.ny, config.nx, config.frames
    dtype = np.dtype(config.dtype)
    state, tracer_ref = _start(config)
    if config.spin_up_frames > 0:
        state = _spun_up(dataclasses.replace(config, frames=1), str(device), compile)
    fields = {name: np.empty((frames, ny, nx), dtype=dtype) for name in FIELDS}
    frame_iter = integrate(
        state,
        params,
        frames=frames,
        steps_per_frame=config.steps_per_frame,
        backend=config.backend,
        device=device,
        compile=compile,
        progress=progress,
        forcing=_forcing_of(config),
        tracer_ref=tracer_ref,
        drag=_drag_of(config),
    )
    for k, frame in enumerate(frame_iter):
        for name, value in centred_fields(frame, params).items():
            fields[name][k] = value
    return SWRun(
        fields=fields,
        time=config.spin_up + np.arange(frames, dtype=np.float64) * config.interval,
        x=(np.arange(nx, dtype=np.float64) + 0.5) * config.dx,
        y=(np.arange(ny, dtype=np.float64) + 0.5) * config.dy,
        params=params,
        config=config,
    )


def simulate(
    nx: int = 128,
    ny: int = 128,
    *,
    device: Any = "cpu",
    compile: bool = False,
    progress: bool = False,
    **kwargs: Any,
) -> SWRun:
    """Configure and run in one call: ``run(configure(nx, ny, **kwargs), ...)``.

    Parameters
    ----------
    nx, ny : int
        Grid size.
    device, compile, progress
        As in :func:`run`.
    **kwargs
        Keyword arguments of :func:`configure`.

    Returns
    -------
    SWRun
        Frames, coordinates, parameters and the resolved configuration.

    Examples
    --------
    >>> out = simulate(16, 16, preset="smooth", frames=3, interval=600.0, seed=2)
    >>> out.fields["vorticity"].shape, out.time.tolist()
    ((3, 16, 16), [0.0, 600.0, 1200.0])
    """
    return run(configure(nx, ny, **kwargs), device=device, compile=compile, progress=progress)

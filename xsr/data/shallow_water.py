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
    "FIELDS",
    "INITS",
    "BlowUpError",
    "SWParams",
    "SWRun",
    "SWState",
    "centred_fields",
    "choose_backend",
    "configure",
    "coriolis",
    "initial_state",
    "integrate",
    "max_stable_dt",
    "params_from",
    "run",
    "simulate",
    "speed_bound",
    "step_numpy",
    "step_torch",
]

#: Names of the initial conditions understood by :func:`initial_state`.
INITS: tuple[str, ...] = ("vortices", "bumps", "dam_break")

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

    Examples
    --------
    >>> p = SWParams(dx=1e3, dy=1e3, g=9.81, f0=1e-4, beta=0.0, nu4=0.0, dt=10.0)
    >>> p.dt
    10.0
    """

    dx: float
    dy: float
    g: float
    f0: float
    beta: float
    nu4: float
    dt: float


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
    settings : dict
        Every argument of the run, resolved (for provenance attributes).

    Examples
    --------
    >>> run = simulate(8, 8, frames=2, interval=60.0)
    >>> run.fields["h"].shape
    (2, 8, 8)
    """

    fields: dict[str, np.ndarray]
    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    params: SWParams
    settings: dict[str, Any]


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
    ``nu4 * (4/dx**2 + 4/dy**2)**2`` on the negative real axis; SSP-RK3 is stable up to
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
        the corners, so the flow is exactly non-divergent, and ``h = depth + f psi / g``); ``"bumps"``: a dozen random Gaussian height bumps and
        dips, at rest; ``"dam_break"``: a column of water of height ``depth * (1 + amplitude)``
        with a slightly wavy rim at a random place, at rest.
    depth : float
        Mean layer thickness ``H`` in metres.
    amplitude : float
        Largest thickness anomaly as a fraction of ``depth`` (also caps the initial flow speed at
        ``amplitude * sqrt(g * depth * (1 + amplitude))``, see :func:`speed_bound`).
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    dtype : numpy dtype
        Floating dtype of the arrays.

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
# Plain-numpy reference of the scheme
# --------------------------------------------------------------------------------------------


def _tendencies_numpy(
    h: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    hc: np.ndarray,
    fq: np.ndarray,
    p: SWParams,
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
    return dh, du, dv, dhc


def step_numpy(state: SWState, params: SWParams) -> SWState:
    """One SSP-RK3 step of the plain-numpy reference implementation (pure).

    Parameters
    ----------
    state : SWState
        State with numpy arrays.
    params : SWParams
        Run parameters.

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
        k = _tendencies_numpy(*y0, fq, params)
        y1 = tuple(a + dt * b for a, b in zip(y0, k))
        k = _tendencies_numpy(*y1, fq, params)
        y2 = tuple(0.75 * a + 0.25 * (b + dt * c) for a, b, c in zip(y0, y1, k))
        k = _tendencies_numpy(*y2, fq, params)
        y3 = tuple(a / 3.0 + 2.0 / 3.0 * (b + dt * c) for a, b, c in zip(y0, y2, k))
    return SWState(*y3, step=state.step + 1)


# --------------------------------------------------------------------------------------------
# Torch fast path
# --------------------------------------------------------------------------------------------


_HALO = 3


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SSP-RK3 step on tensors: the arithmetic of the numpy reference, without rolls.

    Every stage pads its inputs once with a periodic halo of ``_HALO`` cells and then evaluates
    each intermediate on the smallest region its consumers need, with plain slices (views at
    constant offsets). Compilers fuse and vectorise this; ``torch.roll`` along the last axis
    becomes a modular gather that neither eager torch nor inductor vectorises. ``fq`` is the
    Coriolis column at the corners, ``(ny, 1)``.
    """
    import torch

    m0 = _HALO
    ny, nx = h.shape[-2], h.shape[-1]
    if ny < m0 or nx < m0:
        raise ValueError(f"the torch step needs at least {m0} x {m0} cells, got {ny} x {nx}")
    # reciprocals: vector division is several times slower than multiplication (results differ
    # from the numpy reference by rounding only)
    rdx, rdy, r12 = 1.0 / dx, 1.0 / dy, 1.0 / 12.0
    rdx2, rdy2 = rdx * rdx, rdy * rdy

    def pad(a: torch.Tensor) -> torch.Tensor:
        a = torch.cat([a[..., -m0:, :], a, a[..., :m0, :]], dim=-2)
        return torch.cat([a[..., -m0:], a, a[..., :m0]], dim=-1)

    def at(a: torch.Tensor, m: int, k: int, dj: int = 0, di: int = 0) -> torch.Tensor:
        # ``a`` holds a field on the region extended by ``m`` cells on every side; return the
        # field shifted by (dj, di) on the region extended by ``k`` cells.
        return a[..., m - k + dj : m + ny + k + dj, m - k + di : m + nx + k + di]

    def lap(a: torch.Tensor, m: int) -> torch.Tensor:  # margin m -> margin m - 1
        k = m - 1
        return (at(a, m, k, 0, 1) - 2 * at(a, m, k) + at(a, m, k, 0, -1)) * rdx2 + (
            at(a, m, k, 1, 0) - 2 * at(a, m, k) + at(a, m, k, -1, 0)
        ) * rdy2

    # Coriolis column on the rows of margin 1
    fq1 = torch.cat([fq[-1:], fq, fq[:1]], dim=-2)

    def tend(
        h: torch.Tensor, u: torch.Tensor, v: torch.Tensor, hc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # one periodic pad of the four fields together (fewer, larger copy loops)
        hp, up, vp, cp = pad(torch.stack([h, u, v, hc / h])).unbind(0)
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
        q = (fq1 + zeta) / hq
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
        return dh, du, dv, dhc

    y0 = (h, u, v, hc)
    k = tend(*y0)
    y1 = tuple(a + dt * b for a, b in zip(y0, k))
    k = tend(*y1)
    y2 = tuple(0.75 * a + 0.25 * (b + dt * c) for a, b, c in zip(y0, y1, k))
    k = tend(*y2)
    y3 = tuple(a * (1.0 / 3.0) + 2.0 / 3.0 * (b + dt * c) for a, b, c in zip(y0, y2, k))
    return y3[0], y3[1], y3[2], y3[3]


@functools.cache
def _compiled_rk3() -> Callable[..., Any]:
    """``torch.compile`` of :func:`_rk3_torch`, built once per process (compiles lazily)."""
    import torch

    return torch.compile(_rk3_torch, dynamic=False, fullgraph=True)


def _torch_fq(params: SWParams, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.as_tensor(coriolis(params, like.shape[-2]), dtype=like.dtype, device=like.device)


def step_torch(state: SWState, params: SWParams, *, compile: bool = False) -> SWState:
    """One SSP-RK3 step on torch tensors, on their device (pure; the fast path).

    Parameters
    ----------
    state : SWState
        State whose arrays are torch tensors on one device.
    params : SWParams
        Run parameters.
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
    out = kernel(
        state.h,
        state.u,
        state.v,
        state.hc,
        fq,
        params.dx,
        params.dy,
        params.g,
        params.nu4,
        params.dt,
    )
    return SWState(*out, step=state.step + 1)


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
    if backend == "numpy":
        current = _to_numpy(state)

        def step(s: SWState) -> SWState:
            return step_numpy(s, params)
    elif backend == "torch":
        import torch

        current = SWState(
            *(torch.as_tensor(np.asarray(a), device=device) for a in state[:4]), step=state.step
        )
        fq = _torch_fq(params, current.h)
        kernel = _torch_kernel(compile)

        def step(s: SWState) -> SWState:
            out = kernel(
                s.h, s.u, s.v, s.hc, fq, params.dx, params.dy, params.g, params.nu4, params.dt
            )
            return SWState(*out, step=s.step + 1)
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


def configure(
    nx: int = 128,
    ny: int = 128,
    *,
    frames: int = 100,
    seed: int = 0,
    init: str = "vortices",
    interval: float = 3600.0,
    dt: float | None = None,
    dx: float = 50e3,
    dy: float | None = None,
    g: float = 9.81,
    depth: float = 100.0,
    f0: float = 1e-4,
    beta: float = 0.0,
    nu4: float | None = None,
    amplitude: float = 0.2,
    dtype: Any = "float64",
    backend: str = "auto",
) -> dict[str, Any]:
    """Validate the arguments of a run and resolve its defaults (time step, hyperviscosity).

    Nothing is integrated: the result fully describes a run, so that the labelled output can be
    built before (or without) running it, and :func:`run` can execute it later, e.g. in a dask task.

    Parameters
    ----------
    nx, ny : int
        Grid size (columns, rows), each >= 4.
    frames : int
        Number of output frames, the first being the initial state (>= 1).
    seed : int
        Seed of the initial condition (>= 0).
    init : {"vortices", "bumps", "dam_break"}
        Initial condition, see :func:`initial_state`.
    interval : float
        Seconds between output frames.
    dt : float, optional
        Time step in seconds; must divide ``interval`` and not exceed the CFL limit
        (``ValueError`` names the largest stable value). Default: the largest step not above
        0.7 times that limit which divides ``interval``.
    dx, dy : float
        Grid spacing in metres (``dy`` defaults to ``dx``).
    g : float
        Gravitational acceleration in m s-2.
    depth : float
        Mean layer thickness ``H`` in metres.
    f0, beta : float
        Coriolis parameter (s-1) and its gradient (m-1 s-1, periodic beta-plane).
    nu4 : float, optional
        Biharmonic hyperviscosity in m4 s-1. Default ``0.005 * sqrt(g * depth) * max(dx, dy)**3``
        (damps grid-scale noise in about ten steps, 4-cell waves ~16 times slower).
    amplitude : float
        Relative amplitude of the initial anomaly, in ``(0, 1)``.
    dtype : {"float64", "float32"}
        Floating dtype of the integration and of the output.
    backend : {"auto", "torch", "numpy"}
        Torch fast path or the plain-numpy reference; ``"auto"`` is resolved by :func:`run` with
        :func:`choose_backend`.

    Returns
    -------
    dict
        Every argument, resolved, plus ``steps_per_frame`` and ``dt_max`` (the CFL limit).

    Raises
    ------
    ValueError, TypeError
        For invalid arguments; the message names the argument and the fix.

    Examples
    --------
    >>> cfg = configure(32, 32, interval=600.0)
    >>> cfg["steps_per_frame"] * cfg["dt"] == 600.0 and cfg["dt"] <= cfg["dt_max"]
    True
    """
    _positive("nx", nx, integer=True)
    _positive("ny", ny, integer=True)
    if nx < 4 or ny < 4:
        raise ValueError(
            f"nx and ny must be >= 4 (the tracer stencil is 4 wide), got nx={nx}, ny={ny}"
        )
    _positive("frames", frames, integer=True)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    dy = dx if dy is None else dy
    for name, value in (("interval", interval), ("dx", dx), ("dy", dy), ("g", g), ("depth", depth)):
        _positive(name, value)
    for name, value in (("f0", f0), ("beta", beta)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.number))
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    _positive("amplitude", amplitude)
    if amplitude >= 1.0:
        raise ValueError(f"amplitude must be < 1 (a fraction of depth), got {amplitude!r}")
    if nu4 is None:
        nu4 = 0.005 * math.sqrt(g * depth) * max(dx, dy) ** 3
    _positive("nu4", nu4, allow_zero=True)
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
    return {
        "nx": int(nx),
        "ny": int(ny),
        "frames": int(frames),
        "seed": int(seed),
        "init": init,
        "interval": float(interval),
        "dt": float(dt),
        "steps_per_frame": int(steps_per_frame),
        "dt_max": float(dt_max),
        "dx": float(dx),
        "dy": float(dy),
        "g": float(g),
        "depth": float(depth),
        "f0": float(f0),
        "beta": float(beta),
        "nu4": float(nu4),
        "amplitude": float(amplitude),
        "dtype": np_dtype.name,
        "backend": backend,
    }


def params_from(settings: dict[str, Any]) -> SWParams:
    """The :class:`SWParams` of a :func:`configure` result.

    Parameters
    ----------
    settings : dict
        Output of :func:`configure`.

    Returns
    -------
    SWParams
        Grid spacing, physics and time step.

    Examples
    --------
    >>> params_from(configure(8, 8, dt=60.0, interval=600.0)).dt
    60.0
    """
    return SWParams(*(settings[name] for name in SWParams._fields))


def run(
    settings: dict[str, Any],
    *,
    device: Any = "cpu",
    compile: bool = False,
    progress: bool = False,
) -> SWRun:
    """Execute a configured run and collect its cell-centred frames.

    Parameters
    ----------
    settings : dict
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

    Raises
    ------
    BlowUpError
        When the integration blows up (the message names the step).

    Examples
    --------
    >>> out = run(configure(8, 8, frames=2, interval=600.0))
    >>> out.fields["tracer"].shape
    (2, 8, 8)
    """
    settings = dict(settings, backend=choose_backend(settings["backend"], device, compile))
    params = params_from(settings)
    ny, nx, frames = settings["ny"], settings["nx"], settings["frames"]
    dtype = np.dtype(settings["dtype"])
    state = initial_state(
        params,
        ny,
        nx,
        init=settings["init"],
        depth=settings["depth"],
        amplitude=settings["amplitude"],
        seed=settings["seed"],
        dtype=dtype,
    )
    fields = {name: np.empty((frames, ny, nx), dtype=dtype) for name in FIELDS}
    frame_iter = integrate(
        state,
        params,
        frames=frames,
        steps_per_frame=settings["steps_per_frame"],
        backend=settings["backend"],
        device=device,
        compile=compile,
        progress=progress,
    )
    for k, frame in enumerate(frame_iter):
        for name, value in centred_fields(frame, params).items():
            fields[name][k] = value
    return SWRun(
        fields=fields,
        time=np.arange(frames, dtype=np.float64) * settings["interval"],
        x=(np.arange(nx, dtype=np.float64) + 0.5) * settings["dx"],
        y=(np.arange(ny, dtype=np.float64) + 0.5) * settings["dy"],
        params=params,
        settings=settings,
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
        Frames, coordinates, parameters and resolved settings.

    Examples
    --------
    >>> out = simulate(16, 16, frames=3, interval=600.0, seed=2)
    >>> out.fields["vorticity"].shape, out.time.tolist()
    ((3, 16, 16), [0.0, 600.0, 1200.0])
    """
    return run(configure(nx, ny, **kwargs), device=device, compile=compile, progress=progress)

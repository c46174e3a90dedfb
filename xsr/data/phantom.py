"""Shepp-Logan phantom movies whose ellipses drift and deform smoothly (array core, numpy only).

The research report xsr starts from trains on "Shepp-Logan phantom" movies: the head phantom of
Shepp & Logan (1974), a sum of ellipses of constant intensity, whose ellipses change shape and
place slightly from frame to frame. This module renders such movies; :mod:`xsr.data.datasets`
labels them (:func:`xsr.data.phantom_movie`). It never imports xarray.

Every ellipse follows a seeded, smooth (sinusoidal) track in centre, semi-axes and angle. Edges are
anti-aliased (pixel coverage from the distance to the rim), so a sub-pixel motion changes the image
continuously, and the intensities are those of the *modified* Shepp-Logan phantom (Toft 1996),
which lie in ``[0, 1]``; each frame is clipped to that range in case moving ellipses overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SHEPP_LOGAN",
    "EllipseMotion",
    "ellipses_at",
    "iter_frames",
    "motion",
    "phantom",
    "render",
]

#: Modified Shepp-Logan phantom (Toft): intensity, semi-axis a (x), semi-axis b (y), centre x,
#: centre y, angle in degrees; the image spans ``[-1, 1]`` on both axes.
SHEPP_LOGAN: np.ndarray = np.array(
    [
        [1.0, 0.69, 0.92, 0.0, 0.0, 0.0],
        [-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0],
        [-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0],
        [-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0],
        [0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0],
        [0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0],
        [0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0],
        [0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0],
    ]
)


class EllipseMotion(NamedTuple):
    """Seeded smooth tracks of the phantom's ellipses (immutable).

    Parameter ``p`` of ellipse ``k`` at time ``t`` (in frames) is
    ``base[k, p] + amplitude[k, p] * sin(omega[k, p] * t + phase[k, p])``.

    Attributes
    ----------
    base, amplitude, omega, phase : numpy.ndarray
        Arrays of shape ``(n_ellipses, 6)`` in the column order of :data:`SHEPP_LOGAN`
        (the intensity column has zero amplitude).

    Examples
    --------
    >>> m = motion(seed=0)
    >>> m.base.shape
    (10, 6)
    """

    base: np.ndarray
    amplitude: np.ndarray
    omega: np.ndarray
    phase: np.ndarray


def motion(
    *,
    seed: int = 0,
    drift: float = 0.03,
    deformation: float = 0.08,
    rotation: float = 10.0,
    period: float = 60.0,
) -> EllipseMotion:
    """Draw the smooth tracks of the ellipses.

    Parameters
    ----------
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    drift : float
        Largest displacement of an inner ellipse's centre, in image half-widths (the image spans
        ``[-1, 1]``). The skull and the brain (ellipses 0 and 1) move together, a quarter as much,
        so the shell between them stays closed.
    deformation : float
        Largest relative change of a semi-axis.
    rotation : float
        Largest change of an ellipse's angle, in degrees.
    period : float
        Typical period of the motions, in frames (each motion draws its own period between half
        and one and a half times this).

    Returns
    -------
    EllipseMotion
        The tracks.

    Examples
    --------
    >>> m = motion(seed=1, drift=0.0, deformation=0.0, rotation=0.0)
    >>> bool((m.amplitude == 0).all())
    True
    """
    for name, value in (("drift", drift), ("deformation", deformation), ("rotation", rotation)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    if not deformation < 1:
        raise ValueError(f"deformation must be < 1 (a relative change), got {deformation!r}")
    if not np.isfinite(period) or period <= 0:
        raise ValueError(f"period must be finite and > 0 (frames), got {period!r}")
    rng = np.random.default_rng(seed)
    base = SHEPP_LOGAN.copy()
    n = len(base)
    amplitude = np.zeros_like(base)
    weight = np.where(np.arange(n) < 2, 0.25, 1.0)
    amplitude[:, 1:3] = deformation * base[:, 1:3] * rng.uniform(0.5, 1.0, (n, 2))
    amplitude[:, 3:5] = drift * weight[:, None] * rng.uniform(0.5, 1.0, (n, 2))
    amplitude[:, 5] = rotation * weight * rng.uniform(0.5, 1.0, n)
    omega = 2 * np.pi / (period * rng.uniform(0.5, 1.5, base.shape))
    phase = rng.uniform(0, 2 * np.pi, base.shape)
    # the brain (ellipse 1) moves with the skull (ellipse 0) so the shell stays closed
    amplitude[1, 1:3] = amplitude[0, 1:3] / base[0, 1:3] * base[1, 1:3]
    amplitude[1, 3:] = amplitude[0, 3:]
    omega[1], phase[1] = omega[0], phase[0]
    return EllipseMotion(base=base, amplitude=amplitude, omega=omega, phase=phase)


def ellipses_at(track: EllipseMotion, t: float) -> np.ndarray:
    """Ellipse parameters at time ``t`` (in frames).

    Parameters
    ----------
    track : EllipseMotion
        Output of :func:`motion`.
    t : float
        Time in frames (need not be an integer).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_ellipses, 6)``, columns as in :data:`SHEPP_LOGAN`.

    Examples
    --------
    >>> m = motion(seed=0, drift=0.0, deformation=0.0, rotation=0.0)
    >>> bool(np.array_equal(ellipses_at(m, 3.5), SHEPP_LOGAN))
    True
    """
    return track.base + track.amplitude * np.sin(track.omega * t + track.phase)


def render(ellipses: np.ndarray, ny: int, nx: int, *, dtype: Any = np.float64) -> np.ndarray:
    """Rasterise a sum of ellipses on ``[-1, 1]^2`` with anti-aliased edges.

    Pixel ``(j, i)`` has its centre at ``x = -1 + (i + 1/2) * 2 / nx``, ``y = -1 + (j + 1/2) * 2 /
    ny`` (row 0 at the bottom). Each ellipse contributes its intensity times the pixel's coverage,
    ``clip(1/2 - d / pixel, 0, 1)`` with ``d`` the first-order signed distance to the rim.

    Parameters
    ----------
    ellipses : numpy.ndarray
        ``(n, 6)``: intensity, semi-axes a and b, centre x and y, angle in degrees.
    ny, nx : int
        Image size.
    dtype : numpy dtype
        Output dtype.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` image clipped to ``[0, 1]``.

    Examples
    --------
    >>> img = render(SHEPP_LOGAN, 64, 64)
    >>> img.shape, float(img.min()) >= 0.0, float(img.max()) <= 1.0
    ((64, 64), True, True)
    """
    x = -1.0 + (np.arange(nx) + 0.5) * 2.0 / nx
    y = -1.0 + (np.arange(ny) + 0.5) * 2.0 / ny
    pixel = 2.0 / max(nx, ny)
    image = np.zeros((ny, nx))
    for intensity, a, b, x0, y0, angle in ellipses:
        theta = np.deg2rad(angle)
        cos, sin = np.cos(theta), np.sin(theta)
        xr = (x[None, :] - x0) * cos + (y[:, None] - y0) * sin
        yr = -(x[None, :] - x0) * sin + (y[:, None] - y0) * cos
        r = np.sqrt((xr / a) ** 2 + (yr / b) ** 2)
        grad = np.sqrt((xr / a**2) ** 2 + (yr / b**2) ** 2) / np.maximum(r, 1e-12)
        distance = (r - 1.0) / np.maximum(grad, 1e-12)
        image += intensity * np.clip(0.5 - distance / pixel, 0.0, 1.0)
    return np.clip(image, 0.0, 1.0).astype(dtype)


def iter_frames(
    ny: int, nx: int, *, frames: int, track: EllipseMotion, dtype: Any = np.float64
) -> Iterator[np.ndarray]:
    """Generator of the phantom movie's frames, one ``(ny, nx)`` image per time ``0, 1, ...``.

    Parameters
    ----------
    ny, nx : int
        Image size.
    frames : int
        Number of frames.
    track : EllipseMotion
        The ellipses' tracks.
    dtype : numpy dtype
        Output dtype.

    Yields
    ------
    numpy.ndarray
        One image per frame.

    Examples
    --------
    >>> len(list(iter_frames(8, 8, frames=3, track=motion())))
    3
    """
    for t in range(frames):
        yield render(ellipses_at(track, float(t)), ny, nx, dtype=dtype)


def phantom(
    ny: int = 128,
    nx: int = 128,
    *,
    frames: int = 50,
    seed: int = 0,
    drift: float = 0.03,
    deformation: float = 0.08,
    rotation: float = 10.0,
    period: float = 60.0,
    dtype: Any = "float64",
) -> np.ndarray:
    """A moving Shepp-Logan phantom movie as one array.

    Parameters
    ----------
    ny, nx : int
        Image size (each >= 1).
    frames : int
        Number of frames (>= 1).
    seed : int
        Seed of the motion.
    drift, deformation, rotation, period : float
        See :func:`motion`.
    dtype : {"float64", "float32"}
        Output dtype.

    Returns
    -------
    numpy.ndarray
        ``(frames, ny, nx)`` in ``[0, 1]``.

    Examples
    --------
    >>> phantom(32, 32, frames=4).shape
    (4, 32, 32)
    """
    for name, value in (("ny", ny), ("nx", nx), ("frames", frames)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = np.dtype("O")
    if dtype is None or np_dtype.name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    track = motion(
        seed=seed, drift=drift, deformation=deformation, rotation=rotation, period=period
    )
    out = np.empty((frames, ny, nx), dtype=np_dtype)
    for k, image in enumerate(iter_frames(ny, nx, frames=frames, track=track, dtype=np_dtype)):
        out[k] = image
    return out

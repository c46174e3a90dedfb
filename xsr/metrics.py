"""Per-frame image-quality metrics: MAE, MSE, RMSE, PSNR and SSIM.

Two levels:

* numpy kernels over the last two axes (``mae_frames``, ``mse_frames``, ``rmse_frames``,
  ``psnr_frames``, ``ssim_frames``): no xarray, reused by training;
* xarray functions ``f(prediction, truth, *, dims=None, ...)`` that reduce the two spatial dims
  and keep every other dim (time, member, ...), lazily on dask input, plus
  :func:`evaluate` (all metrics for one prediction), :func:`compare` (all metrics for several
  candidates, the report's tables) and :func:`format_table` (the mean table as text).

Masking: a pixel is used only where both prediction and truth are finite-or-infinite numbers
(not NaN); a frame with no valid pixel gives NaN.

PSNR and SSIM need a data range ``L``. The default is ``truth.max() - truth.min()`` over the whole
reference (per variable, NaN ignored; lazy on dask); it is stated on every result as the
``data_range`` coordinate and in the ``data_range_source`` attribute (and ``data_range`` attribute
whenever its value is known without computing).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsr.coords import spatial_dims

__all__ = [
    "METRICS",
    "SCORES",
    "SPECTRAL_BAND",
    "band_power_frames",
    "compare",
    "evaluate",
    "format_table",
    "mae",
    "mae_frames",
    "mse",
    "mse_frames",
    "psnr",
    "psnr_frames",
    "rmse",
    "rmse_frames",
    "score",
    "spin_up_mask",
    "ssim",
    "ssim_frames",
]

#: Metric names, in table order.
METRICS: tuple[str, ...] = ("mae", "mse", "rmse", "psnr", "ssim")

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Side of the Gaussian SSIM window (11 for sigma 1.5, as in Wang et al. 2004).
SSIM_WIN = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1

_DEFAULT_SOURCE = "truth.max() - truth.min() over the whole reference (NaN ignored)"

# ---------------------------------------------------------------------------- numpy kernels


def _pair(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred)
    t = np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(
            f"prediction and truth must have the same shape, got {p.shape} and {t.shape}."
        )
    if p.ndim < 2:
        raise ValueError(f"Frames need at least two (y, x) axes, got shape {p.shape}.")
    for name, a in (("prediction", p), ("truth", t)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real numeric, got dtype {a.dtype}.")
    return p.astype("float64", copy=False), t.astype("float64", copy=False)


def _masked_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    count = valid.sum(axis=(-2, -1))
    total = np.where(valid, values, 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mae_frames(pred: Any, truth: Any) -> np.ndarray:
    """Mean absolute error of each frame over the last two axes (NaN-masked).

    Parameters
    ----------
    pred, truth : array_like
        Same shape ``(..., H, W)``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``.

    Examples
    --------
    >>> mae_frames(np.ones((2, 3, 3)), np.zeros((2, 3, 3)))
    array([1., 1.])
    """
    p, t = _pair(pred, truth)
    valid = ~(np.isnan(p) | np.isnan(t))
    return _masked_mean(np.abs(p - t), valid)


def mse_frames(pred: Any, truth: Any) -> np.ndarray:
    """Mean squared error of each frame over the last two axes (NaN-masked).

    Parameters
    ----------
    pred, truth : array_like
        Same shape ``(..., H, W)``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``.

    Examples
    --------
    >>> mse_frames(np.full((1, 2, 2), 3.0), np.ones((1, 2, 2)))
    array([4.])
    """
    p, t = _pair(pred, truth)
    valid = ~(np.isnan(p) | np.isnan(t))
    return _masked_mean((p - t) ** 2, valid)


def rmse_frames(pred: Any, truth: Any) -> np.ndarray:
    """Root mean squared error of each frame over the last two axes (NaN-masked).

    Parameters
    ----------
    pred, truth : array_like
        Same shape ``(..., H, W)``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``.

    Examples
    --------
    >>> rmse_frames(np.full((1, 2, 2), 3.0), np.ones((1, 2, 2)))
    array([2.])
    """
    return np.sqrt(mse_frames(pred, truth))


def _range_array(data_range: Any, lead: tuple[int, ...]) -> np.ndarray:
    r = np.asarray(data_range, dtype="float64")
    try:
        r = np.broadcast_to(r, lead)
    except ValueError:
        raise ValueError(
            f"data_range must be a scalar or broadcast to the frame dims {lead}, got shape "
            f"{r.shape}."
        ) from None
    if np.any(~np.isfinite(r) | (r <= 0)):
        raise ValueError(
            f"data_range must be positive and finite, got {data_range!r}; a constant reference "
            "has no range, so pass data_range= explicitly."
        )
    return r


def psnr_frames(pred: Any, truth: Any, data_range: Any) -> np.ndarray:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` of each frame, in dB.

    Parameters
    ----------
    pred, truth : array_like
        Same shape ``(..., H, W)``.
    data_range : float or array_like
        ``L``, positive; a scalar or an array broadcasting to the frame dims ``(...)``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``; ``inf`` where the frames are identical.

    Examples
    --------
    >>> psnr_frames(np.full((1, 2, 2), 0.1), np.zeros((1, 2, 2)), data_range=1.0)
    array([20.])
    """
    err = mse_frames(pred, truth)
    r = _range_array(data_range, err.shape)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(r**2 / err)


def ssim_frames(
    pred: Any,
    truth: Any,
    data_range: Any,
    *,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """Mean structural similarity of each frame (Wang et al. 2004, Gaussian window).

    The local statistics use a Gaussian window of ``sigma`` (11 x 11 for the default 1.5,
    truncated at 3.5 sigma, reflected at the edges), population covariances,
    ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2``; the SSIM map is averaged over the frame without a
    border of half a window. This is scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False,
    data_range=L)``, computed in float64. NaN pixels (in either input) are left out: the local
    statistics become mask-normalised Gaussian averages over the valid pixels and the map is
    averaged over the valid pixels only.

    Parameters
    ----------
    pred, truth : array_like
        Same shape ``(..., H, W)`` with ``H, W >= 2 * int(3.5 * sigma + 0.5) + 1`` (11).
    data_range : float or array_like
        ``L``, positive; a scalar or an array broadcasting to the frame dims.
    sigma, k1, k2 : float
        Window width and stabilising constants.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``.

    Raises
    ------
    ValueError
        Frames smaller than the window, mismatched shapes, or a bad ``data_range``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((2, 16, 16))
    >>> ssim_frames(a, a, data_range=1.0)
    array([1., 1.])
    """
    p, t = _pair(pred, truth)
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    win = 2 * radius + 1
    h, w = p.shape[-2:]
    if h < win or w < win:
        raise ValueError(
            f"SSIM needs frames of at least {win} x {win} pixels (its Gaussian window), got "
            f"{h} x {w}."
        )
    lead = p.shape[:-2]
    r = _range_array(data_range, lead)[..., None, None]
    c1 = (k1 * r) ** 2
    c2 = (k2 * r) ** 2
    axes = (p.ndim - 2, p.ndim - 1)

    from scipy import ndimage

    def gauss(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(
            a, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect", axes=axes
        )

    valid = ~(np.isnan(p) | np.isnan(t))
    masked = not bool(valid.all())
    if masked:
        p = np.where(valid, p, 0.0)
        t = np.where(valid, t, 0.0)
        weight = gauss(valid.astype("float64"))
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(weight > 1e-12, 1.0 / weight, np.nan)
    else:
        norm = 1.0
    ux = gauss(p) * norm
    uy = gauss(t) * norm
    vx = gauss(p * p) * norm - ux * ux
    vy = gauss(t * t) * norm - uy * uy
    vxy = gauss(p * t) * norm - ux * uy
    smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    crop = (Ellipsis, slice(radius, h - radius), slice(radius, w - radius))
    if not masked:
        return smap[crop].mean(axis=(-2, -1), dtype="float64")
    return _masked_mean(smap[crop], valid[crop] & np.isfinite(smap[crop]))


#: The spectral score's band, in cycles per cell of the evaluated grid: the top third of the
#: wavenumbers below the Nyquist wavenumber (1/2).
SPECTRAL_BAND: tuple[float, float] = (1.0 / 3.0, 0.5)


def band_power_frames(
    frames: Any,
    *,
    periodic: Sequence[bool] = (False, False),
    band: Sequence[float] = SPECTRAL_BAND,
) -> np.ndarray:
    """Power of each frame in a radial wavenumber band, from its 2-D FFT.

    Each frame (NaN cells set to its mean) has its mean removed; along a non-periodic axis it
    is then multiplied by a Hann window (so the jump between the two edges of a non-periodic
    field does not leak power into every wavenumber), along a periodic axis it is left as it is
    (the FFT's own periodicity is the field's). The power ``|FFT|^2`` is summed over the
    wavenumbers ``k = sqrt(ky^2 + kx^2)`` (cycles per cell, ``numpy.fft.fftfreq``) with
    ``band[0] <= k <= band[1]``.

    Parameters
    ----------
    frames : array_like
        Real frames ``(..., H, W)``.
    periodic : (bool, bool)
        Whether the ``(y, x)`` axes wrap around.
    band : (float, float)
        Lower and upper radial wavenumber, cycles per cell (Nyquist is 0.5).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(...)``.

    Examples
    --------
    >>> y, x = np.mgrid[0:16, 0:16]
    >>> fine = np.cos(2 * np.pi * 6 * x / 16)[None]     # 6/16 cycles per cell: in the band
    >>> smooth = np.cos(2 * np.pi * 2 * x / 16)[None]   # 2/16: below it
    >>> band_power_frames(fine, periodic=(True, True)).round(3)
    array([32768.])
    >>> band_power_frames(smooth, periodic=(True, True)).round(3)
    array([0.])
    """
    a = np.asarray(frames)
    if a.ndim < 2 or a.dtype.kind not in "biuf":
        raise ValueError(f"frames must be real numeric with (y, x) axes, got {a.dtype} {a.shape}.")
    lo, hi = (float(b) for b in band)
    if not 0 <= lo < hi:
        raise ValueError(f"band must be (low, high) with 0 <= low < high, got {band!r}.")
    a = a.astype("float64", copy=True)
    nan = np.isnan(a)
    if nan.any():
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames: mean NaN -> 0
            fill = np.nan_to_num(np.nanmean(a, axis=(-2, -1), keepdims=True))
        a = np.where(nan, fill, a)
    a -= a.mean(axis=(-2, -1), keepdims=True)
    h, w = a.shape[-2:]
    if not periodic[0]:
        a *= np.hanning(h)[:, None]
    if not periodic[1]:
        a *= np.hanning(w)[None, :]
    power = np.abs(np.fft.fft2(a, axes=(-2, -1))) ** 2
    k = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    mask = (k >= lo) & (k <= hi)
    return (power * mask).sum(axis=(-2, -1))


_KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "mae": mae_frames,
    "mse": mse_frames,
    "rmse": rmse_frames,
    "psnr": psnr_frames,
    "ssim": ssim_frames,
}
_LONG_NAMES = {
    "mae": "mean absolute error",
    "mse": "mean squared error",
    "rmse": "root mean squared error",
    "psnr": "peak signal-to-noise ratio",
    "ssim": "structural similarity (Gaussian 11x11, sigma 1.5)",
}

# ---------------------------------------------------------------------------- xarray layer


def _spatial_coords_check(
    prediction: xr.DataArray, truth: xr.DataArray, ydim: Hashable, xdim: Hashable
) -> xr.DataArray:
    """Check that the spatial grids agree; return ``prediction`` on the truth's exact coords."""
    for dim in (ydim, xdim):
        if dim not in prediction.dims or dim not in truth.dims:
            where = "prediction" if dim not in prediction.dims else "truth"
            raise ValueError(f"The {where} lacks the spatial dimension {dim!r}.")
        np_, nt = prediction.sizes[dim], truth.sizes[dim]
        if np_ != nt:
            raise ValueError(
                f"prediction and truth differ in size along {dim!r} ({np_} vs {nt}); they must "
                "be on the same grid (upscale or degrade one of them first)."
            )
        if dim in prediction.coords and dim in truth.coords:
            a = np.asarray(prediction[dim].values)
            b = np.asarray(truth[dim].values)
            if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
                scale = np.abs(np.diff(b)).min() if b.size > 1 else max(abs(float(b[0])), 1.0)
                same = np.allclose(a, b, rtol=0, atol=1e-6 * scale)
            else:
                same = np.array_equal(a, b)
            if not same:
                raise ValueError(
                    f"prediction and truth have different {dim!r} coordinates (e.g. {a[0]!r} vs "
                    f"{b[0]!r}); they must be on the same grid, or results would be NaN. "
                    "Select or interpolate one onto the other first."
                )
    if ydim in truth.coords and xdim in truth.coords:
        prediction = prediction.assign_coords({ydim: truth[ydim], xdim: truth[xdim]})
    return prediction


def _default_range(truth: xr.DataArray) -> xr.DataArray:
    return (truth.max() - truth.min()).astype("float64")


def _resolve_range(truth: xr.DataArray, data_range: Any) -> tuple[xr.DataArray, str]:
    if data_range is None:
        return _default_range(truth), _DEFAULT_SOURCE
    if isinstance(data_range, xr.DataArray):
        return data_range.astype("float64"), "given (data_range=)"
    value = np.asarray(data_range, dtype="float64")
    if value.ndim != 0 or not np.isfinite(value) or value <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}.")
    return xr.DataArray(value), "given (data_range=)"


def _metric_dataarray(
    name: str,
    prediction: xr.DataArray,
    truth: xr.DataArray,
    dims: Sequence[Hashable] | None,
    data_range: Any,
    range_coord: str = "data_range",
) -> xr.DataArray:
    if not isinstance(prediction, xr.DataArray) or not isinstance(truth, xr.DataArray):
        raise TypeError(
            f"{name}() takes two DataArrays (or two Datasets), got {type(prediction).__name__} "
            f"and {type(truth).__name__}."
        )
    ydim, xdim = spatial_dims(truth, dims)
    prediction = _spatial_coords_check(prediction, truth, ydim, xdim)
    try:
        prediction, truth = xr.align(prediction, truth, join="exact")
    except ValueError as err:
        raise ValueError(
            "prediction and truth have different coordinates along a non-spatial dimension "
            f"({err}); select matching frames first, e.g. truth.sel(time=prediction.time)."
        ) from None
    for dim in (ydim, xdim):
        if prediction.sizes[dim] == 0:
            raise ValueError(f"prediction and truth are empty along {dim!r}.")
        if name == "ssim" and prediction.sizes[dim] < SSIM_WIN:
            raise ValueError(
                f"SSIM needs frames of at least {SSIM_WIN} x {SSIM_WIN} pixels (its Gaussian "
                f"window); {dim!r} has {prediction.sizes[dim]}."
            )

    def prep(a: xr.DataArray) -> xr.DataArray:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}() needs real numeric data, got dtype {a.dtype}.")
        return a.chunk({ydim: -1, xdim: -1}) if a.chunks is not None else a

    prediction, truth = prep(prediction), prep(truth)
    kernel = _KERNELS[name]
    core = [[ydim, xdim], [ydim, xdim]]
    args: list[Any] = [prediction, truth]
    attrs: dict[str, Any] = {"long_name": _LONG_NAMES[name], "reduced_dims": f"{ydim} {xdim}"}
    rng: xr.DataArray | None = None
    if name in ("psnr", "ssim"):
        rng, source = _resolve_range(truth, data_range)
        rng = rng.reset_coords(drop=True) if rng.coords else rng
        args.append(rng)
        core.append([])
        attrs["data_range_source"] = source
        if rng.chunks is None:
            attrs["data_range"] = float(rng.values) if rng.ndim == 0 else "per frame"
        else:
            attrs["data_range_source"] = f"{source}; lazy: see the {range_coord} coordinate"
    out = xr.apply_ufunc(
        kernel,
        *args,
        input_core_dims=core,
        output_core_dims=[[]],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    units = truth.attrs.get("units")
    if name == "psnr":
        attrs["units"] = "dB"
    elif name == "ssim":
        attrs["units"] = "1"
    elif units is not None:
        attrs["units"] = f"({units})2" if name == "mse" else units
    out.attrs = attrs
    out.name = name
    if rng is not None and rng.ndim == 0:
        out = out.assign_coords({range_coord: rng})
    return out


def _metric(
    name: str,
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    dims: Sequence[Hashable] | None,
    data_range: Any = None,
) -> xr.DataArray | xr.Dataset:
    if isinstance(truth, xr.Dataset) or isinstance(prediction, xr.Dataset):
        if not (isinstance(truth, xr.Dataset) and isinstance(prediction, xr.Dataset)):
            raise TypeError(
                f"{name}() got a {type(prediction).__name__} prediction and a "
                f"{type(truth).__name__} truth; pass two Datasets or two DataArrays."
            )
        out = {}
        for v in _common_variables(prediction, truth, dims):
            rng = _range_for(data_range, v) if name in ("psnr", "ssim") else None
            out[v] = _metric_dataarray(
                name, prediction[v], truth[v], dims, rng, range_coord=f"data_range_{v}"
            )
        return xr.Dataset(out)
    return _metric_dataarray(name, prediction, truth, dims, data_range)


def _common_variables(
    prediction: xr.Dataset, truth: xr.Dataset, dims: Sequence[Hashable] | None
) -> list[Hashable]:
    ydim, xdim = spatial_dims(truth, dims)
    names = [
        v
        for v in truth.data_vars
        if ydim in truth[v].dims and xdim in truth[v].dims and v in prediction.data_vars
    ]
    if not names:
        raise ValueError(
            f"prediction and truth share no data variable on the spatial dims {(ydim, xdim)!r}; "
            f"prediction has {list(prediction.data_vars)!r}, truth has {list(truth.data_vars)!r}."
        )
    return names


def _range_for(data_range: Any, variable: Hashable) -> Any:
    if isinstance(data_range, Mapping):
        if variable not in data_range:
            raise ValueError(
                f"data_range is a mapping without an entry for variable {variable!r}; "
                f"give one for each of the compared variables."
            )
        return data_range[variable]
    return data_range


def mae(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Mean absolute error per frame, over the spatial dims.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid (a differing grid raises); other dims are aligned exactly.
        Two Datasets give one result per shared spatial variable.
    dims : pair of str, optional
        Spatial ``(y, x)`` dims reduced; found with :func:`xsr.coords.spatial_dims` if omitted.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        float64 over the remaining dims (time, member, ...); lazy on dask input.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 8, 8, dtype="float64")["h"]
    >>> mae(truth + 0.5, truth).values
    array([0.5, 0.5, 0.5])
    """
    return _metric("mae", prediction, truth, dims)


def mse(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Mean squared error per frame, over the spatial dims.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid; see :func:`mae`.
    dims : pair of str, optional
        Spatial dims reduced.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        float64 per frame; lazy on dask input.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(2, 8, 8, dtype="float64")["h"]
    >>> mse(truth + 2.0, truth).values
    array([4., 4.])
    """
    return _metric("mse", prediction, truth, dims)


def rmse(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Root mean squared error per frame, over the spatial dims.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid; see :func:`mae`.
    dims : pair of str, optional
        Spatial dims reduced.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        float64 per frame; lazy on dask input.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(2, 8, 8, dtype="float64")["h"]
    >>> rmse(truth - 3.0, truth).values
    array([3., 3.])
    """
    return _metric("rmse", prediction, truth, dims)


def psnr(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
    data_range: float | xr.DataArray | Mapping[Hashable, float] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` per frame, in dB.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid; see :func:`mae`.
    dims : pair of str, optional
        Spatial dims reduced.
    data_range : float, optional
        ``L``. Default: ``truth.max() - truth.min()`` over the whole reference (per variable,
        NaN ignored; lazy on dask). For Datasets, a mapping ``{variable: L}`` is accepted.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        dB per frame (``inf`` for identical frames); lazy on dask input. A DataArray result
        carries the range as its ``data_range`` coordinate (``data_range_<variable>`` for each
        variable of a Dataset result) and says how it was obtained in
        ``attrs["data_range_source"]`` (and ``attrs["data_range"]`` when known eagerly).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(2, 8, 8, dtype="float64")["h"]
    >>> p = psnr(truth + 0.1, truth, data_range=1.0)
    >>> np.round(p.values, 6)
    array([20., 20.])
    >>> p.attrs["data_range"]
    1.0
    """
    return _metric("psnr", prediction, truth, dims, data_range)


def ssim(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
    data_range: float | xr.DataArray | Mapping[Hashable, float] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Structural similarity per frame (Gaussian 11 x 11, sigma 1.5; Wang et al. 2004).

    Agrees with scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=L)`` on float64 frames; NaN pixels are masked (see
    :func:`ssim_frames`). Frames must be at least 11 x 11.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid; see :func:`mae`.
    dims : pair of str, optional
        Spatial dims reduced.
    data_range : float, optional
        ``L``; default as in :func:`psnr`.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        SSIM per frame, with the data range stated as in :func:`psnr`.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(2, 16, 16, dtype="float64")["h"]
    >>> ssim(truth, truth).values
    array([1., 1.])
    """
    return _metric("ssim", prediction, truth, dims, data_range)


def _evaluate_dataarray(
    prediction: xr.DataArray,
    truth: xr.DataArray,
    dims: Sequence[Hashable] | None,
    rng: xr.DataArray,
    source: str,
) -> xr.Dataset:
    out = {}
    for name in METRICS:
        da = _metric_dataarray(
            name, prediction, truth, dims, rng if name in ("psnr", "ssim") else None
        )
        da.attrs.pop("data_range_source", None)
        da.attrs.pop("data_range", None)
        out[name] = da.reset_coords("data_range", drop=True) if "data_range" in da.coords else da
    ds = xr.Dataset(out)
    ds = ds.assign_coords(data_range=rng)
    ds.attrs["data_range_source"] = source
    return ds


def evaluate(
    prediction: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
    data_range: float | Mapping[Hashable, float] | None = None,
) -> xr.Dataset:
    """Every metric, per frame, for one prediction against the truth.

    Parameters
    ----------
    prediction, truth : xarray.DataArray or xarray.Dataset
        On the same spatial grid. Two Datasets are compared on every shared data variable
        with the spatial dims.
    dims : pair of str, optional
        Spatial dims reduced.
    data_range : float or mapping, optional
        ``L`` for PSNR and SSIM (a mapping ``{variable: L}`` for Datasets); default
        ``truth.max() - truth.min()`` per variable.

    Returns
    -------
    xarray.Dataset
        Data variables ``mae, mse, rmse, psnr, ssim`` over the frame dims. For Dataset input
        they gain a leading ``variable`` dimension (the variable names as coordinate). The data
        range is the ``data_range`` coordinate (per variable), and
        ``attrs["data_range_source"]`` says how it was obtained. Lazy on dask input.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 16, 16, dtype="float64")
    >>> table = evaluate(truth + 0.1, truth, data_range=1.0)
    >>> sorted(table.data_vars)
    ['mae', 'mse', 'psnr', 'rmse', 'ssim']
    >>> table["psnr"].dims
    ('variable', 'time')
    """
    if isinstance(truth, xr.Dataset) or isinstance(prediction, xr.Dataset):
        if not (isinstance(truth, xr.Dataset) and isinstance(prediction, xr.Dataset)):
            raise TypeError(
                f"evaluate() got a {type(prediction).__name__} prediction and a "
                f"{type(truth).__name__} truth; pass two Datasets or two DataArrays."
            )
        names = _common_variables(prediction, truth, dims)
        parts, ranges, sources = [], [], set()
        for v in names:
            rng, source = _resolve_range(truth[v], _range_for(data_range, v))
            sources.add(source)
            ranges.append(rng)
            part = _evaluate_dataarray(prediction[v], truth[v], dims, rng, source)
            parts.append(part.drop_vars("data_range"))
        labels = [str(v) for v in names]
        ds = xr.concat(parts, dim="variable", coords="minimal", compat="override", join="outer")
        ds = ds.assign_coords(
            variable=labels,
            data_range=xr.concat(ranges, dim="variable").assign_coords(variable=labels),
        )
        ds.attrs["data_range_source"] = "; ".join(sorted(sources))
        return ds
    rng, source = _resolve_range(truth, data_range)
    return _evaluate_dataarray(prediction, truth, dims, rng, source)


def compare(
    truth: xr.DataArray | xr.Dataset,
    *,
    dims: Sequence[Hashable] | None = None,
    data_range: float | Mapping[Hashable, float] | None = None,
    **candidates: xr.DataArray | xr.Dataset,
) -> xr.Dataset:
    """Every metric for every candidate against one truth: the report's tables.

    Parameters
    ----------
    truth : xarray.DataArray or xarray.Dataset
        The reference.
    dims : pair of str, optional
        Spatial dims reduced.
    data_range : float or mapping, optional
        As in :func:`evaluate`; the same range is used for every candidate.
    **candidates : xarray.DataArray or xarray.Dataset
        Named predictions on the truth's grid, e.g. ``bicubic=..., fsrcnn=...``.

    Returns
    -------
    xarray.Dataset
        Data variables ``mae, mse, rmse, psnr, ssim`` with a leading ``candidate`` dimension
        (the candidate names, in the order given) and the frame dims (plus ``variable`` for
        Datasets); ``table.mean("time")`` is the summary table (see :func:`format_table`).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 16, 16, dtype="float64")["h"]
    >>> table = compare(truth, good=truth + 0.01, bad=truth + 0.5)
    >>> table["candidate"].values.tolist()
    ['good', 'bad']
    >>> bool(table["psnr"].sel(candidate="good").mean() > table["psnr"].sel(candidate="bad").mean())
    True
    """
    if not candidates:
        raise ValueError(
            "compare() needs at least one named candidate, e.g. compare(truth, a=pred)."
        )
    if isinstance(truth, xr.Dataset) and data_range is None:
        names = [
            v for v in truth.data_vars if all(d in truth[v].dims for d in spatial_dims(truth, dims))
        ]
        data_range = {v: _default_range(truth[v]) for v in names}
        source = _DEFAULT_SOURCE
    elif isinstance(truth, xr.DataArray) and data_range is None:
        data_range = _default_range(truth)
        source = _DEFAULT_SOURCE
    else:
        source = "given (data_range=)"
    tables = [
        evaluate(pred, truth, dims=dims, data_range=data_range) for pred in candidates.values()
    ]
    table = xr.concat(tables, dim="candidate", coords="minimal", compat="override", join="outer")
    table = table.assign_coords(candidate=list(candidates))
    table.attrs["data_range_source"] = source
    return table


# ---------------------------------------------------------------------------- the protocol

#: Columns of a :func:`score` table, in order.
SCORES: tuple[str, ...] = ("psnr", "psnr_frames", "ssim", "mae", "mse", "spectral")
_SCORE_LONG_NAMES = {
    "psnr": "PSNR of the pooled MSE (all evaluated frames and cells)",
    "psnr_frames": "mean over frames of the per-frame PSNR",
    "ssim": "mean over frames of SSIM (Gaussian 11x11, sigma 1.5)",
    "mae": "pooled mean absolute error",
    "mse": "pooled mean squared error",
    "spectral": "predicted / true power in the spectral band",
}
_SCORE_DEFAULT_SOURCE = (
    "truth.max() - truth.min() over the evaluated frames and cells (per variable, NaN ignored)"
)


def _as_dataset(obj: Any, what: str) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "data")
    raise TypeError(f"{what} must be an xarray Dataset or DataArray, got {type(obj).__name__}.")


def spin_up_mask(obj: xr.Dataset | xr.DataArray, time_dim: Hashable = "time") -> np.ndarray | None:
    """Which frames come after the spin-up marked on the time coordinate.

    A generator marks its spin-up with the attribute ``spin_up_end`` on the time coordinate, in
    the coordinate's own units (a number for numeric times, an ISO date string for datetimes, a
    duration string such as ``"2 days"`` for timedeltas); frames with ``time < spin_up_end`` are
    spin-up.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Data with (or without) a time coordinate.
    time_dim : str
        Name of the time dimension.

    Returns
    -------
    numpy.ndarray of bool or None
        ``True`` for the frames to keep; ``None`` when nothing is marked (no time coordinate
        or no ``spin_up_end`` attribute).

    Examples
    --------
    >>> t = xr.DataArray(np.arange(5.0), dims="time", attrs={"spin_up_end": 2.0})
    >>> da = xr.DataArray(np.zeros(5), dims="time", coords={"time": t})
    >>> spin_up_mask(da)
    array([False, False,  True,  True,  True])
    """
    if time_dim not in obj.coords or time_dim not in obj.dims:
        return None
    coord = obj.coords[time_dim]
    end = coord.attrs.get("spin_up_end")
    if end is None:
        return None
    values = np.asarray(coord.values)
    try:
        if values.dtype.kind == "M":
            end = np.datetime64(str(end)) if not isinstance(end, np.datetime64) else end
        elif values.dtype.kind == "m" and isinstance(end, str):
            import pandas as pd

            end = pd.Timedelta(end).to_timedelta64()
        elif values.dtype.kind in "fiu":
            end = float(end)
        return np.asarray(values >= end)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"The {time_dim!r} coordinate's spin_up_end attribute {end!r} cannot be compared "
            f"with its values ({values.dtype}): {err}. Give it in the coordinate's units (a "
            "number, or an ISO date for datetimes), or pass exclude_spin_up=False."
        ) from None


def _upscale_periodic(obj: xr.Dataset) -> dict[str, bool]:
    """``periodic_<d>`` flags of the last ``xsr ... upscale`` line of ``history``, if any."""
    history = str(obj.attrs.get("history", ""))
    for line in reversed(history.splitlines()):
        if " upscale: " in line and "periodic_y=" in line:
            flags = {}
            for axis in ("y", "x"):
                key = f"periodic_{axis}="
                value = line.split(key, 1)[1].split()[0] if key in line else ""
                flags[axis] = value == "True"
            return flags
    return {}


def _check_edges(name: str, pred: xr.Dataset, periodic: Sequence[bool]) -> None:
    """Refuse a candidate upscaled with reflected edges along a periodic dim of the truth."""
    made = _upscale_periodic(pred)
    for axis, per in zip(("y", "x"), periodic):
        if per and axis in made and not made[axis]:
            raise ValueError(
                f"Candidate {name!r} was upscaled with reflected edges along {axis} "
                f"(its history says periodic_{axis}=False) but the truth is periodic there, so "
                "its edges would be scored as errors of the model. Upscale it with periodic= "
                "(or from data carrying the 'period' attribute), or pass periodic=False and "
                "crop= cells to leave the edges out."
            )


def _score_frames(obj: xr.Dataset, time_dim: Hashable, keep: np.ndarray | None) -> xr.Dataset:
    if keep is None or time_dim not in obj.dims:
        return obj
    return obj.isel({time_dim: np.flatnonzero(keep)})


def score(
    candidates: Mapping[str, xr.Dataset | xr.DataArray],
    truth: xr.Dataset | xr.DataArray,
    *,
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    data_range: float | Mapping[Hashable, float] | None = None,
    periodic: Any = None,
    crop: int = 0,
    exclude_spin_up: bool = True,
    band: Sequence[float] = SPECTRAL_BAND,
) -> xr.Dataset:
    """Score candidates against the truth with the evaluation protocol (every table uses it).

    Per candidate and variable: ``psnr``, the PSNR of the pooled MSE (all evaluated frames and
    cells at once; the primary score), ``psnr_frames``, the mean of the per-frame PSNR,
    ``ssim``, the mean per-frame SSIM (:func:`ssim`), ``mae`` and ``mse``, pooled, and
    ``spectral``, the predicted over the true power in the band of the highest resolved
    wavenumbers (:func:`band_power_frames`, summed over frames): about 1 when the fine scales
    are there, far below 1 for interpolation and blurry networks. See
    ``docs/explanation/metrics.md``.

    Frames before the spin-up (``time < spin_up_end``, an attribute of the truth's time
    coordinate) are left out. Periodic dims (read from the truth with
    :func:`xsr.coords.periodic_dims` unless ``periodic=`` is given) have no edges: they are
    never cropped, their spectra need no window, and a candidate whose ``history`` says it was
    upscaled with reflected edges along one of them is refused. Along non-periodic dims,
    ``crop`` cells are left out at each edge.

    Parameters
    ----------
    candidates : mapping of str to xarray.Dataset or xarray.DataArray
        Named predictions on the truth's grid, e.g. ``{"bicubic": ..., "linear": ...}``;
        every one must hold every scored variable.
    truth : xarray.Dataset or xarray.DataArray
        The reference; its data variables on the spatial dims are scored.
    dims : (str, str), optional
        Spatial dims; found with :func:`xsr.coords.spatial_dims` otherwise.
    time_dim : str
        The time dimension (for the spin-up).
    data_range : float or mapping, optional
        ``L`` for PSNR and SSIM (a mapping ``{variable: L}``); default, per variable, the
        truth's ``max - min`` over the evaluated frames and cells (after spin-up exclusion and
        cropping), the same for every candidate.
    periodic : None, False, "x", "y" or ("y", "x")
        Periodic dims; ``None`` reads them from the truth.
    crop : int, default 0
        Cells of the truth's grid left out at each edge of every non-periodic spatial dim.
    exclude_spin_up : bool, default True
        Leave out the frames before ``spin_up_end``.
    band : (float, float)
        The spectral band in cycles per cell; default the top third of the wavenumbers below
        Nyquist, ``(1/3, 1/2)``.

    Returns
    -------
    xarray.Dataset
        Data variables :data:`SCORES` over ``(candidate, variable)``; the ``data_range``
        coordinate per variable; attributes saying how the range was chosen, how many 2-D
        frames (time steps times members, levels, ...) were scored and excluded as spin-up, the
        periodic dims, the crop and the band. Lazy on dask input
        (``.compute()`` runs one pass over the data); :func:`format_table` prints it.

    Raises
    ------
    ValueError
        No candidate, a candidate missing a variable or on another grid or time axis, a crop
        leaving nothing, every frame in the spin-up, or a candidate upscaled with reflected
        edges on periodic data.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(4, 16, 16, dtype="float64")
    >>> table = score({"good": truth + 0.01, "bad": truth * 0.5}, truth, data_range=1.0)
    >>> table["psnr"].sel(variable="h").values.round(2)
    array([40.  ,  5.82])
    >>> sorted(table.data_vars)
    ['mae', 'mse', 'psnr', 'psnr_frames', 'spectral', 'ssim']
    """
    from xsr.coords import periodic_dims

    if not isinstance(candidates, Mapping) or not candidates:
        raise ValueError(
            "score() needs a non-empty mapping of candidates, e.g. score({'bicubic': pred}, truth)."
        )
    if isinstance(crop, bool) or not isinstance(crop, int | np.integer) or crop < 0:
        raise ValueError(f"crop must be an integer >= 0 (cells at each edge), got {crop!r}.")
    truth_ds = _as_dataset(truth, "truth")
    if isinstance(truth, xr.DataArray):  # DataArrays are compared whatever their names
        name = next(iter(truth_ds.data_vars))
        candidates = {
            k: v.rename(name) if isinstance(v, xr.DataArray) else v for k, v in candidates.items()
        }
    preds = {str(k): _as_dataset(v, f"candidate {k!r}") for k, v in candidates.items()}
    ydim, xdim = spatial_dims(truth_ds, dims)
    if periodic is None:
        per = periodic_dims(truth_ds, (ydim, xdim))
    else:
        from xsr.coords import resolve_periodic

        per = resolve_periodic(periodic, truth_ds, (ydim, xdim))
    names = [v for v in truth_ds.data_vars if {ydim, xdim} <= set(truth_ds[v].dims)]
    if not names:
        raise ValueError(f"The truth has no data variable on the spatial dims {(ydim, xdim)!r}.")
    for cname, pred in preds.items():
        missing = [str(v) for v in names if v not in pred.data_vars]
        if missing:
            raise ValueError(
                f"Candidate {cname!r} lacks the variables {missing} of the truth; give every "
                "candidate every scored variable, or score fewer: select them on the truth, "
                "e.g. truth[['h']]."
            )
        _check_edges(cname, pred, per)

    n_all = truth_ds.sizes.get(time_dim, 1)
    keep = spin_up_mask(truth_ds, time_dim) if exclude_spin_up else None
    if keep is not None and not keep.any():
        raise ValueError(
            f"Every frame is before the spin-up (time < {truth_ds[time_dim].attrs['spin_up_end']}"
            f" along {time_dim!r}); give later frames or pass exclude_spin_up=False."
        )
    truth_ds = _score_frames(truth_ds, time_dim, keep)
    cut: dict[Hashable, slice] = {}
    crops = {}
    for dim, p in zip((ydim, xdim), per):
        n = truth_ds.sizes[dim]
        c = 0 if p else int(crop)
        if 2 * c >= n:
            raise ValueError(f"crop={crop} leaves nothing of {dim!r} ({n} cells).")
        crops[str(dim)] = c
        if c:
            cut[dim] = slice(c, n - c)
    truth_ds = truth_ds.isel(cut)

    rows = []
    ranges = []
    sources = set()
    for v in names:
        t = truth_ds[v]
        rng, source = _resolve_range(t, _range_for(data_range, v))
        rng = rng.reset_coords(drop=True) if rng.coords else rng
        sources.add(source if data_range is not None else _SCORE_DEFAULT_SOURCE)
        ranges.append(rng)
        true_power = _band_power(t, ydim, xdim, per, band).sum()
        per_candidate = []
        for cname, pred in preds.items():
            p = pred[v]
            if keep is not None and time_dim in p.dims:
                if p.sizes[time_dim] != n_all:
                    raise ValueError(
                        f"Candidate {cname!r} has {p.sizes[time_dim]} frames along "
                        f"{time_dim!r} but the truth has {n_all}; score the same frames."
                    )
                p = p.isel({time_dim: np.flatnonzero(keep)})
            p = _spatial_coords_check(p.isel(cut), t, ydim, xdim)
            try:
                p, tt = xr.align(p, t, join="exact")
            except ValueError as err:
                raise ValueError(
                    f"Candidate {cname!r} and the truth differ along a non-spatial dimension "
                    f"({err}); select matching frames first."
                ) from None
            diff = p.astype("float64") - tt.astype("float64")
            mse_all = (diff**2).mean()
            cells = {
                "mse": mse_all,
                "psnr": xr.apply_ufunc(
                    _psnr_of_mse, mse_all, rng, dask="parallelized", output_dtypes=[np.float64]
                ),
                "mae": abs(diff).mean(),
                "psnr_frames": psnr(p, tt, dims=(ydim, xdim), data_range=rng)
                .reset_coords(drop=True)
                .mean(),
                "spectral": _band_power(p, ydim, xdim, per, band).sum() / true_power,
            }
            if min(tt.sizes[ydim], tt.sizes[xdim]) >= SSIM_WIN:
                cells["ssim"] = (
                    ssim(p, tt, dims=(ydim, xdim), data_range=rng).reset_coords(drop=True).mean()
                )
            else:
                cells["ssim"] = xr.DataArray(np.nan)
            per_candidate.append(
                xr.Dataset({k: cells[k].reset_coords(drop=True).variable for k in SCORES})
            )
        rows.append(xr.concat(per_candidate, dim="candidate"))
    table = xr.concat(rows, dim="variable")
    labels = [str(v) for v in names]
    table = table.transpose("candidate", "variable").assign_coords(
        candidate=list(preds),
        variable=labels,
        data_range=("variable", _stack(ranges)),
    )
    for k in SCORES:
        table[k].attrs["long_name"] = _SCORE_LONG_NAMES[k]
    table["psnr"].attrs["units"] = table["psnr_frames"].attrs["units"] = "dB"
    n_kept = int(keep.sum()) if keep is not None else n_all
    # 2-D frames: every non-spatial dim counts (time steps x members x ...)
    per_step = int(
        np.prod([n for d, n in truth_ds[names[0]].sizes.items() if d not in (ydim, xdim, time_dim)])
    )
    table.attrs.update(
        {
            "protocol": "xsr.metrics.score",
            "data_range_source": "; ".join(sorted(sources)),
            "frames": n_kept * per_step,
            "frames_excluded_spin_up": (n_all - n_kept) * per_step,
            "spin_up_end": str(truth[time_dim].attrs.get("spin_up_end", ""))
            if time_dim in truth.coords
            else "",
            "periodic": ", ".join(f"{d}={p}" for d, p in zip((ydim, xdim), per)),
            "crop": ", ".join(f"{d}={c}" for d, c in crops.items()),
            "spectral_band": f"{float(band[0]):.4g}-{float(band[1]):.4g} cycles per cell",
        }
    )
    return table


def _psnr_of_mse(mse: Any, data_range: Any) -> np.ndarray:
    """``10 log10(L^2 / MSE)``; ``inf`` for a perfect match (without a warning)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(data_range, "float64") ** 2 / np.asarray(mse))


def _stack(ranges: Sequence[xr.DataArray]) -> Any:
    """The per-variable ranges as one 1-D array (dask when any is lazy)."""
    if any(r.chunks is not None for r in ranges):
        import dask.array as da

        return da.stack([da.asarray(r.data) for r in ranges])
    return np.array([float(r.values) for r in ranges])


def _band_power(
    da_: xr.DataArray,
    ydim: Hashable,
    xdim: Hashable,
    periodic: Sequence[bool],
    band: Sequence[float],
) -> xr.DataArray:
    """Per-frame band power of a DataArray (lazy on dask input)."""
    if da_.chunks is not None:
        da_ = da_.chunk({ydim: -1, xdim: -1})
    return xr.apply_ufunc(
        band_power_frames,
        da_,
        input_core_dims=[[ydim, xdim]],
        dask="parallelized",
        output_dtypes=[np.float64],
        kwargs={"periodic": tuple(bool(p) for p in periodic), "band": tuple(band)},
    )


def _fmt(value: float) -> str:
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"


def format_table(table: xr.Dataset, *, reduce_dim: Hashable = "time") -> str:
    """Render the mean of a metrics table as aligned text, stating the data range.

    A :func:`score` table is printed as it is (one row per variable and candidate: pooled PSNR,
    mean per-frame PSNR, SSIM, MAE, spectral score), with a footer stating the data range, the
    frames scored and excluded by the spin-up, the periodic dims, the crop and the band.

    Parameters
    ----------
    table : xarray.Dataset
        Output of :func:`compare`, :func:`evaluate` or :func:`score`.
    reduce_dim : str
        Dimension averaged over (NaN ignored); any further dims other than ``candidate`` and
        ``variable`` are averaged too, and the footer says so.

    Returns
    -------
    str
        One row per candidate (and variable), columns MAE, MSE, RMSE, PSNR (dB), SSIM.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> truth = random_movie(3, 16, 16, dtype="float64")["h"]
    >>> print(format_table(compare(truth, shifted=truth + 0.1, data_range=2.0)))  # doctest: +NORMALIZE_WHITESPACE
    candidate     MAE     MSE    RMSE  PSNR (dB)    SSIM
    shifted    0.1000  0.0100  0.1000     26.021  0.9426
    data range: 2 (given (data_range=)); mean over time
    """
    if table.attrs.get("protocol") == "xsr.metrics.score":
        return _format_score(table)
    missing = [m for m in METRICS if m not in table.data_vars]
    if missing:
        raise ValueError(
            f"table lacks the metric variables {missing!r}; pass the output of compare() or "
            "evaluate()."
        )
    keep = {"candidate", "variable"}
    averaged = [d for d in table[METRICS[0]].dims if d not in keep]
    if reduce_dim not in averaged and reduce_dim in table.dims:
        averaged.append(reduce_dim)
    mean = table[list(METRICS)].mean(averaged, skipna=True).compute()
    if "candidate" not in mean.dims:
        mean = mean.expand_dims(candidate=["prediction"])
    if "variable" not in mean.dims:
        mean = mean.expand_dims(variable=[""])
    headers = ["MAE", "MSE", "RMSE", "PSNR (dB)", "SSIM"]
    has_var = mean.sizes["variable"] > 1 or str(mean["variable"].values[0]) != ""
    label_head = "candidate" + (" / variable" if has_var else "")
    rows = []
    for cand in mean["candidate"].values:
        for var in mean["variable"].values:
            sel = mean.sel(candidate=cand, variable=var)
            label = f"{cand} / {var}" if has_var else str(cand)
            cells = [_fmt(float(sel[m])) for m in ("mae", "mse", "rmse")]
            cells += [f"{float(sel['psnr']):.3f}", f"{float(sel['ssim']):.4f}"]
            rows.append((label, cells))
    width0 = max(len(label_head), *(len(r[0]) for r in rows))
    widths = [max(len(h), *(len(r[1][i]) for r in rows)) + 2 for i, h in enumerate(headers)]
    lines = [label_head.ljust(width0) + "".join(h.rjust(w) for h, w in zip(headers, widths))]
    for label, cells in rows:
        lines.append(label.ljust(width0) + "".join(c.rjust(w) for c, w in zip(cells, widths)))
    rng = table.coords.get("data_range")
    if rng is None:
        rng_text = "unknown"
    else:
        values = np.atleast_1d(np.asarray(rng.values, dtype="float64"))
        if "variable" in rng.dims:
            rng_text = ", ".join(f"{v}: {x:.6g}" for v, x in zip(rng["variable"].values, values))
        else:
            rng_text = ", ".join(f"{x:.6g}" for x in np.unique(values))
    source = table.attrs.get("data_range_source", "")
    footer = f"data range: {rng_text}" + (f" ({source})" if source else "")
    if averaged:
        footer += "; mean over " + ", ".join(str(d) for d in averaged)
    lines.append(footer)
    return "\n".join(lines)


def _format_score(table: xr.Dataset) -> str:
    """The text of a :func:`score` table (see :func:`format_table`)."""
    t = table.compute()
    headers = ["PSNR (dB)", "PSNR/frame", "SSIM", "MAE", "spectral"]
    rows = []
    for var in t["variable"].values:
        for cand in t["candidate"].values:
            sel = t.sel(variable=var, candidate=cand)
            cells = [
                f"{float(sel['psnr']):.2f}",
                f"{float(sel['psnr_frames']):.2f}",
                f"{float(sel['ssim']):.4f}",
                _fmt(float(sel["mae"])),
                f"{float(sel['spectral']):.3f}",
            ]
            rows.append((str(var), str(cand), cells))
    w0 = max(len("variable"), *(len(r[0]) for r in rows))
    w1 = max(len("candidate"), *(len(r[1]) for r in rows))
    widths = [max(len(h), *(len(r[2][i]) for r in rows)) + 2 for i, h in enumerate(headers)]
    lines = ["variable".ljust(w0) + "  " + "candidate".ljust(w1)]
    lines[0] += "".join(h.rjust(w) for h, w in zip(headers, widths))
    for var, cand, cells in rows:
        line = var.ljust(w0) + "  " + cand.ljust(w1)
        lines.append(line + "".join(c.rjust(w) for c, w in zip(cells, widths)))
    ranges = ", ".join(
        f"{v}: {float(r):.6g}" for v, r in zip(t["variable"].values, t["data_range"].values)
    )
    a = t.attrs
    lines.append(f"PSNR of the pooled MSE; data range {ranges} ({a.get('data_range_source', '')})")
    spin = ""
    if a.get("frames_excluded_spin_up"):
        spin = f" (time < spin_up_end = {a.get('spin_up_end')})"
    lines.append(
        f"frames: {a.get('frames')} scored, {a.get('frames_excluded_spin_up', 0)} excluded as "
        f"spin-up{spin}; periodic: {a.get('periodic')}; crop: {a.get('crop')}; spectral band: "
        f"{a.get('spectral_band')}"
    )
    return "\n".join(lines)

"""Normalisation statistics: per channel (from the model card, explicit, or none) and per frame.

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["frame_arrays", "frame_statistics", "normalisation_arrays"]


def normalisation_arrays(
    normalisation: Any, card: Mapping[str, Any] | None, channels: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``(mean, std)`` float64 arrays, or ``None`` for no normalisation.

    Parameters
    ----------
    normalisation : None, False, (means, stds) or mapping
        ``None`` takes the card's ``normalisation`` (in the card's variable order), ``False``
        disables it, a pair or a ``{variable: {"mean", "std"}}`` mapping sets it.
    card : mapping or None
        The model card as a dict.
    channels : int
        The model's channel count.

    Returns
    -------
    tuple of numpy.ndarray or None

    Raises
    ------
    ValueError
        For a malformed value, a wrong channel count, non-finite means or non-positive stds.

    Examples
    --------
    >>> normalisation_arrays((1.0, 2.0), None, 2)
    (array([1., 1.]), array([2., 2.]))
    """
    if normalisation is False:
        return None
    if normalisation is None:
        normalisation = (card or {}).get("normalisation")
        if not normalisation:
            return None
        names = [v["name"] for v in (card or {}).get("variables") or []]
        if names and all(n in normalisation for n in names):
            normalisation = {n: normalisation[n] for n in names}
    if isinstance(normalisation, Mapping):
        try:
            mean = [float(v["mean"]) for v in normalisation.values()]
            std = [float(v["std"]) for v in normalisation.values()]
        except (KeyError, TypeError) as err:
            raise ValueError(
                "normalisation must map each variable to {'mean': ..., 'std': ...}; got "
                f"{normalisation!r}."
            ) from err
    elif isinstance(normalisation, Sequence) and len(normalisation) == 2:
        mean = np.atleast_1d(np.asarray(normalisation[0], dtype="float64")).tolist()
        std = np.atleast_1d(np.asarray(normalisation[1], dtype="float64")).tolist()
    else:
        raise ValueError(
            "normalisation must be None, False, a (means, stds) pair or a mapping "
            f"{{variable: {{'mean', 'std'}}}}; got {normalisation!r}."
        )
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"normalisation has {len(mean)} channel(s) but the model has {channels}; give one "
            "(mean, std) per variable."
        )
    m, s = np.asarray(mean), np.asarray(std)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"normalisation needs finite means and positive stds, got {m}, {s}.")
    return m, s


def frame_statistics(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every frame's finite cells, in float64.

    Two passes (the mean, then the mean squared deviation from it), so that a large offset
    does not cost precision; a constant frame has a standard deviation of exactly 0, an
    all-NaN frame NaN for both. No warning is raised for empty frames.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(..., H, W)``; NaN cells are left out.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Means and standard deviations (population, ``ddof=0``) of shape ``frames.shape[:-2]``.

    Examples
    --------
    >>> x = np.array([[[1.0, 3.0], [np.nan, 2.0]], [[np.nan, np.nan], [np.nan, np.nan]]])
    >>> mean, std = frame_statistics(x)
    >>> mean.tolist(), bool(np.isnan(std[1]))
    ([2.0, nan], True)
    """
    x = np.asarray(frames, dtype="float64")
    valid = ~np.isnan(x)
    n = valid.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, x, 0.0).sum(axis=(-2, -1)) / n
        dev = np.where(valid, x - mean[..., None, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=(-2, -1)) / n)
    return mean, std


def frame_arrays(frame_stats: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(mean, std)`` arrays of shape ``(B, C, T)`` for ``(B, C, T, H, W)`` frames.

    Parameters
    ----------
    frame_stats : None or (means, stds)
        Given statistics (arrays broadcastable to ``(B, C, T)``); ``None`` computes them from
        ``frames`` (:func:`frame_statistics`).
    frames : numpy.ndarray
        ``(B, C, T, H, W)``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float64 means and standard deviations, ``(B, C, T)`` each.

    Raises
    ------
    ValueError
        For statistics of the wrong shape, a negative or infinite standard deviation, or an
        infinite mean.

    Examples
    --------
    >>> x = np.zeros((1, 1, 2, 3, 3))
    >>> [a.shape for a in frame_arrays(None, x)]
    [(1, 1, 2), (1, 1, 2)]
    >>> frame_arrays((np.ones((1, 1, 2)), np.ones((1, 1, 2))), x)[0].tolist()
    [[[1.0, 1.0]]]
    """
    shape = tuple(frames.shape[:3])
    if frame_stats is None:
        return frame_statistics(frames)
    try:
        mean, std = frame_stats
        mean = np.broadcast_to(np.asarray(mean, dtype="float64"), shape)
        std = np.broadcast_to(np.asarray(std, dtype="float64"), shape)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"frame_stats must be a (means, stds) pair of arrays of shape (B, C, T) = {shape}; "
            f"got {frame_stats!r:.200}."
        ) from err
    with np.errstate(invalid="ignore"):
        bad = np.isinf(mean).any() or np.isinf(std).any() or (std < 0).any()
    if bad:
        raise ValueError(
            "frame_stats needs finite means and standard deviations >= 0 (NaN only for an "
            "all-NaN frame)."
        )
    return mean, std

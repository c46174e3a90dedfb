"""Per-channel normalisation statistics: from the model card, explicit, or none.

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["normalisation_arrays"]


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

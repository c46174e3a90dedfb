"""Shipped pretrained models: an explicit dict ``name -> file stem`` in ``weights/``.

The dict is empty until training scripts produce the weights; :func:`list_pretrained` reads the
cards of the listed models. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["PRETRAINED", "WEIGHTS_DIR", "list_pretrained", "pretrained_path"]

#: Folder of the shipped ``.safetensors`` + ``.json`` model files.
WEIGHTS_DIR = Path(__file__).with_name("weights")

#: Pretrained name -> file stem inside :data:`WEIGHTS_DIR`.
PRETRAINED: dict[str, str] = {}


def pretrained_path(name: str) -> Path:
    """Path (without suffix) of a pretrained model's files.

    Parameters
    ----------
    name : str
        A key of :data:`PRETRAINED`.

    Returns
    -------
    pathlib.Path
        ``WEIGHTS_DIR / stem``; add ``.safetensors`` or ``.json``.

    Raises
    ------
    KeyError
        If ``name`` is not a pretrained name.

    Examples
    --------
    >>> try:
    ...     pretrained_path("no-such-model")
    ... except KeyError as err:
    ...     print("unknown")
    unknown
    """
    if name not in PRETRAINED:
        known = ", ".join(sorted(PRETRAINED)) or "none shipped yet"
        raise KeyError(f"{name!r} is not a pretrained model name (known: {known}).")
    return WEIGHTS_DIR / PRETRAINED[name]


def list_pretrained() -> dict[str, dict[str, Any]]:
    """Pretrained model names with their cards' summaries.

    Returns
    -------
    dict
        ``name -> summary`` (arch, scale, window, variables, degradation, metrics, parameters,
        description), read from each card.

    Examples
    --------
    >>> isinstance(list_pretrained(), dict)
    True
    """
    from xsr.models.card import ModelCard

    out = {}
    for name in sorted(PRETRAINED):
        card_path = pretrained_path(name).with_suffix(".json")
        card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
        out[name] = card.summary()
    return out

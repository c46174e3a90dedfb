"""Shipped pretrained models: an explicit dict ``name -> file stem`` in ``weights/``.

The dict is empty until training scripts produce the weights; :func:`list_pretrained` reads the
cards of the listed models. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "PRETRAINED",
    "WEIGHTS_DIR",
    "format_pretrained_table",
    "list_pretrained",
    "pretrained_path",
]

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


def _headline_psnr(metrics: dict[str, Any]) -> str:
    """A PSNR to show: ``metrics["psnr"]`` or the mean of per-variable ``best`` PSNRs."""
    psnr = metrics.get("psnr")
    if isinstance(psnr, int | float) and not isinstance(psnr, bool):
        return f"{psnr:.2f}"
    best = metrics.get("best")
    if isinstance(best, dict):
        values = [v.get("psnr") for v in best.values() if isinstance(v, dict)]
        values = [v for v in values if isinstance(v, int | float)]
        if values:
            return f"{sum(values) / len(values):.2f}"
    return "-"


def format_pretrained_table() -> str:
    """A plain-text table of the shipped models (for ``xsr models``).

    Returns
    -------
    str
        One line per pretrained model (name, arch, scale, window, variables, validation PSNR,
        parameters), or a note that none is shipped yet.

    Examples
    --------
    >>> print(format_pretrained_table().splitlines()[0])  # doctest: +ELLIPSIS
    name...
    """
    header = ("name", "arch", "scale", "window", "variables", "psnr", "parameters")
    rows = [header]
    for name, info in list_pretrained().items():
        rows.append(
            (
                name,
                str(info["arch"]),
                str(info["scale"]),
                str(info["window"]),
                ",".join(info["variables"]),
                _headline_psnr(info["metrics"]),
                str(info["parameters"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if len(rows) == 1:
        lines.append("(no pretrained models shipped yet; train one with xsr.train.fit)")
    return "\n".join(lines)

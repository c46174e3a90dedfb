"""Shipped pretrained models: an explicit dict ``name -> file stem`` in ``weights/``.

The dict is empty until training scripts produce the weights; :func:`list_pretrained` reads the
cards of the listed models. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xsr.models.card import ModelCard

__all__ = [
    "PRETRAINED",
    "WEIGHTS_DIR",
    "format_pretrained_table",
    "headline_psnr",
    "list_pretrained",
    "pretrained_markdown",
    "pretrained_path",
]

#: Folder of the shipped ``.safetensors`` + ``.json`` model files.
WEIGHTS_DIR = Path(__file__).with_name("weights")

#: Pretrained name -> file stem inside :data:`WEIGHTS_DIR`.
PRETRAINED: dict[str, str] = {
    # Trained by scripts/train_shipped_weights.py (fixed seeds; see each card's "training").
    "fsrcnn-swe-x2": "fsrcnn-swe-x2",
    "fsrcnn-swe-x4": "fsrcnn-swe-x4",
    "srnet3d-swe-x2": "srnet3d-swe-x2",
    "fsrcnn-srnet3d-swe-x2": "fsrcnn-srnet3d-swe-x2",
    "xsrnet-swe-x2": "xsrnet-swe-x2",
    "xsrnet-swe-x4": "xsrnet-swe-x4",
    # Universal field models: any one scalar field (each variable alone, normalised per frame),
    # trained by scripts/train_field_models.py; the default of ds.sr.upscale(scale=...).
    "field-xsrnet-x2": "field-xsrnet-x2",
    "field-xsrnet-x4": "field-xsrnet-x4",
    # Natural photographs (scikit-image's bundled images), for transfer learning.
    "fsrcnn-natural-x2": "fsrcnn-natural-x2",
    "srcnn-natural-x2": "srcnn-natural-x2",
}


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


def pretrained_card(name: str) -> ModelCard:
    """A shipped model's card, read without loading its weights.

    Parameters
    ----------
    name : str
        A key of :data:`PRETRAINED`.

    Returns
    -------
    xsr.models.card.ModelCard

    Raises
    ------
    KeyError
        If ``name`` is not a pretrained name.

    Examples
    --------
    >>> names = sorted(PRETRAINED)
    >>> all(pretrained_card(n).name == n for n in names)
    True
    """
    from xsr.models.card import ModelCard

    card_path = pretrained_path(name).with_suffix(".json")
    return ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))


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
    return {name: pretrained_card(name).summary() for name in sorted(PRETRAINED)}


def headline_psnr(metrics: dict[str, Any], *, held_out: bool = True) -> float | None:
    """A model card's summary PSNR (dB).

    ``metrics["psnr"]`` (the held-out mean over variables, written by
    ``scripts/train_shipped_weights.py``), else the mean over variables of the ``best``
    validation PSNRs (top level or under ``"validation"``); with ``held_out=False`` always the
    latter, so that cards with and without held-out scores compare on the same footing.

    Parameters
    ----------
    metrics : dict
        A card's ``metrics``.
    held_out : bool, default True
        Prefer the held-out PSNR where the card has one.

    Returns
    -------
    float or None
        None when the card has neither.

    Examples
    --------
    >>> headline_psnr({"psnr": 40.0, "validation": {"best": {"h": {"psnr": 41.0}}}})
    40.0
    >>> headline_psnr({"psnr": 40.0, "validation": {"best": {"h": {"psnr": 41.0}}}},
    ...               held_out=False)
    41.0
    >>> headline_psnr({}) is None
    True
    """
    psnr = metrics.get("psnr")
    if held_out and isinstance(psnr, int | float) and not isinstance(psnr, bool):
        return float(psnr)
    if isinstance(metrics.get("validation"), dict) and "best" not in metrics:
        metrics = metrics["validation"]
    best = metrics.get("best")
    if isinstance(best, dict):
        values = [v.get("psnr") for v in best.values() if isinstance(v, dict)]
        values = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if values:
            return float(sum(values) / len(values))
    return None


def _headline_psnr(metrics: dict[str, Any]) -> str:
    """:func:`headline_psnr` formatted for the tables (``"-"`` when the card has none)."""
    psnr = headline_psnr(metrics)
    return "-" if psnr is None else f"{psnr:.2f}"


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


def pretrained_markdown() -> str:
    """The shipped-models page of the documentation, generated from the model cards.

    The cards are the single source of truth: ``docs/reference/models.md`` is this text, and a
    test checks that it is up to date (regenerate it with
    ``python -c "from xsr.models.pretrained import pretrained_markdown as m; print(m(), end='')"
    > docs/reference/models.md``).

    Returns
    -------
    str
        A Markdown page with one table row per shipped model.

    Examples
    --------
    >>> pretrained_markdown().splitlines()[0]
    '# Shipped models'
    """
    lines = [
        "# Shipped models",
        "",
        "Generated from the model cards in `xsr/models/weights/` by "
        "`xsr.models.pretrained.pretrained_markdown()`; do not edit by hand. Held-out PSNR is the "
        "mean over variables of the pooled-MSE PSNR (`xsr.metrics.score`: spin-up excluded, "
        "periodic edges wrapped) on turbulent shallow-water runs no training script used (data "
        "range: max - min of the held-out truth, per variable; margins over the strongest "
        "classical baseline are on the [results page](../results.md)); for natural-image models "
        "it is the validation PSNR on held-out photograph patches (data range: their max - min).",
        "",
        "| name | architecture | scale | window | variables | degradation | parameters "
        "| PSNR (dB) | bicubic PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, info in list_pretrained().items():
        metrics = info["metrics"]
        bicubic = metrics.get("bicubic_psnr")
        if bicubic is None:
            values = [
                v.get("psnr") for v in (metrics.get("validation", {}).get("bicubic") or {}).values()
            ]
            bicubic = sum(values) / len(values) if values else None
        headline = _headline_psnr(metrics)
        degradation = info.get("degradation") or {}
        lines.append(
            f"| `{name}` | {info['arch']} | {info['scale']} | {info['window']} | "
            f"{', '.join(info['variables'])} | {degradation.get('method', '-')} | "
            f"{info['parameters']:,} | {headline} | "
            f"{'-' if bicubic is None else f'{bicubic:.2f}'} |"
        )
    per_variable = [
        (name, info["metrics"]["held_out"])
        for name, info in list_pretrained().items()
        if (info["metrics"].get("held_out") or {}).get("per_variable")
    ]
    if per_variable:
        names = list(per_variable[0][1]["per_variable"])
        rows, behind = [], []
        for name, held_out in per_variable:
            cells = []
            for v in names:
                model = (held_out["per_variable"].get(v) or {}).get("psnr")
                base = (held_out.get("bicubic_per_variable", {}).get(v) or {}).get("psnr")
                cells.append("-" if model is None or base is None else f"{model:.2f} / {base:.2f}")
                if model is not None and base is not None and model <= base:
                    behind.append(f"`{name}` on `{v}` ({model - base:+.2f} dB)")
            rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
        note = (
            "Every model beats bicubic interpolation on every variable."
            if not behind
            else "Not above bicubic interpolation: "
            + ", ".join(behind)
            + ". Single-variable models do beat it there (see the Results page): for such a "
            "variable, train a model on it alone, on your data."
        )
        lines += [
            "",
            "## Held-out PSNR per variable",
            "",
            f"Model / bicubic interpolation, in dB. {note}",
            "",
            "| name | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
            *rows,
        ]
    return "\n".join(lines) + "\n"

"""Score the universal field models on every cached public real dataset's held-out part.

For each dataset of :func:`xsr.data.list_real` in the cache, at x2 and x4: the TEST split (the
held-out period or sector, never seen by any fit here) is degraded by block means (``coarsen``)
and upscaled back by

- ``bicubic`` and ``bicubic+conserve`` (:func:`xsr.evaluation.baselines`);
- ``linear``: the per-phase least-squares filter (:func:`xsr.train.fit_linear`, 7 x 7 window)
  fitted on the dataset's TRAIN split;
- ``zero-shot``: the universal field model as given (the shipped ``field-xsrnet-x<scale>``, or
  the files in ``--models``);
- ``fine-tuned``: that model fine-tuned on the TRAIN split (:func:`xsr.train.fit` with
  ``keep_start=True``, a small fixed, seeded budget: :data:`FINETUNE`), so it never ends worse
  than its start on the validation frames (the end of the train split).

Every row is scored with :func:`xsr.metrics.score` against the test split: pooled-MSE PSNR per
variable (the primary score, each variable's data range being its test truth's max - min), mean
per-frame SSIM and the spectral score; periodic longitudes (global grids) are read from the
data. A dataset's score is the mean over its variables. The page (``--page``) states the
command, the budgets, the machine time, one table per dataset and the summary against the
acceptance lines of issue 16.

Grids are cut to a multiple of ``scale`` (the last rows or columns go). ETOPO5 has no time axis:
its test split is one 2160 x 1296 frame; its train split is cut into two strips along the
longitude, which ``fit`` sees as two frames (the second is its validation frame). The ERA5 sample
has two train times (one validates) and scores its two test times x 10 members x 2 levels. The
A1B and E1 runs are the same data up to 1999 (140 of their 168 training years); both are shown,
E1 marked, and the means count A1B only.

Usage::

    python scripts/real_data_report.py                       # the page (15-25 min on 2 cores)
    python scripts/real_data_report.py --models /tmp/fq      # other field-xsrnet-x2/x4 files
    python scripts/real_data_report.py --quick               # one small dataset, x2, seconds

``--quick`` prints the page to stdout (or writes ``--page``), never the docs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import xsr
from xsr.coords import spatial_dims
from xsr.degradation import degrade
from xsr.evaluation import baselines
from xsr.metrics import score
from xsr.models.pretrained import PRETRAINED
from xsr.site import site_term
from xsr.train import fit
from xsr.train.config import FitConfig
from xsr.train.data import make_patches, select
from xsr.train.history import Checkpoint
from xsr.train.linear import fit_linear
from xsr.train.site import fit_site
from xsr.upscaling import upscale

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "explanation" / "real-data-results.md"
#: The universal models, by scale (shipped names; ``--models DIR`` reads ``DIR/<name>``).
UNIVERSAL = {2: "field-xsrnet-x2", 4: "field-xsrnet-x4"}
#: Datasets shown but left out of the means: they share their training record with another.
SAME_DATA = {"iris-e1-air-temperature": "iris-a1b-air-temperature"}
#: Rows of every table, in order.
ROWS = (
    "bicubic",
    "bicubic+conserve",
    "linear",
    "linear+site",
    "zero-shot",
    "fine-tuned network",
    "fine-tuned",
)
#: The fine-tuning budget, the same for every dataset, counted in single-field patches: ``fit``
#: stacks a dataset's variables and extra dims (members, levels) as samples of every patch, so
#: patches per epoch and the batch are divided by that number of samples (at least 1).
#: ``patch`` is in low-resolution cells, made smaller where the grid is too small (the halo too).
FINETUNE: dict[str, Any] = {
    "epochs": 8,
    "field_patches_per_epoch": 384,
    "batch_fields": 16,
    "patch": {2: 16, 4: 8},
    "lr": 2e-4,
    "lr_schedule": "cosine",
    "seed": 0,
    "loss": "mse",
}
QUICK_FINETUNE: dict[str, Any] = {**FINETUNE, "epochs": 1, "field_patches_per_epoch": 16}
QUICK_DATASET = "iris-a1b-air-temperature"
#: Smallest training patch side (low-resolution cells) worth fine-tuning with.
MIN_PATCH = 4


@dataclass
class Result:
    """One dataset at one scale: its score table and the facts the page states."""

    name: str
    scale: int
    table: xr.Dataset | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    finetune: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def mean(self, row: str, metric: str = "psnr") -> float:
        """The row's metric averaged over the dataset's variables (NaN if the row is missing)."""
        if self.table is None or row not in self.table["candidate"].values:
            return float("nan")
        return float(self.table[metric].sel(candidate=row).mean("variable"))


def _trim(ds: xr.Dataset, dims: Sequence[str], scale: int) -> xr.Dataset:
    """Cut the spatial dims to a multiple of ``scale`` (the last rows/columns go)."""
    return ds.isel({d: slice(0, ds.sizes[d] // scale * scale) for d in dims})


def _strips(ds: xr.Dataset, ydim: str, xdim: str, n: int = 2) -> xr.Dataset:
    """A static field cut into ``n`` equal strips along ``xdim``, stacked along a ``time`` dim.

    ``fit`` trains on frames along time and validates on the last ones; a single map becomes
    ``n`` frames on the first strip's coordinates (not periodic: a strip does not wrap).
    """
    width = ds.sizes[xdim] // n // 4 * 4  # a multiple of every scale here
    parts = [
        ds.isel({xdim: slice(i * width, (i + 1) * width)}).drop_vars(xdim, errors="ignore")
        for i in range(n)
    ]
    out = xr.concat(parts, dim="time").assign_coords(time=np.arange(n))
    return out.assign_coords({xdim: ds[xdim].values[:width]})


def _variables(name: str) -> list[str]:
    return list(xsr.data.real.REAL_DATASETS[name].variables)


def _on_truth_grid(pred: xr.Dataset, truth: xr.Dataset, dims: Sequence[str]) -> xr.Dataset:
    """``pred`` labelled with the truth's spatial coordinates (the same cells, by construction).

    ``upscale`` rebuilds fine coordinates from the coarse ones: on float32 coordinates that is
    off by rounding, and a latitude row on a pole (ETOPO5) gets the centre of its clamped cell.
    Refuse anything further off than a quarter of a cell.
    """
    for d in dims:
        p, t = np.asarray(pred[d].values, "float64"), np.asarray(truth[d].values, "float64")
        step = float(np.median(np.abs(np.diff(t)))) if t.size > 1 else 1.0
        if p.shape != t.shape or np.max(np.abs(p - t)) > 0.5 * step:
            raise ValueError(f"prediction and truth grids differ along {d!r}")
    return pred.assign_coords({d: truth[d] for d in dims})


def _patch_plan(low_sizes: Sequence[int], scale: int, radius: int, budget: dict) -> dict:
    """Patch side and halo that fit the low-resolution grid (bounded patches must fit inside)."""
    room = min(low_sizes)
    halo = radius
    if room - 2 * halo < MIN_PATCH:
        halo = max(0, (room - MIN_PATCH) // 2)
    patch = min(budget["patch"][scale], room - 2 * halo)
    return {"patch_size": int(patch), "halo": int(halo)}


def _val_fraction(n_time: int) -> float:
    """The validation share of a train split: its last quarter, half when it has under 4."""
    return 0.5 if n_time < 4 else 0.25


def linear_site(
    linear: Any, train: xr.Dataset, low: xr.Dataset, ydim: str, xdim: str
) -> xr.Dataset:
    """The linear filter's upscaling of ``low`` plus site detail learnt on ``train``.

    The site detail is estimated as ``fit(..., site=True)`` estimates it for the fine-tuned
    field model (:func:`xsr.train.site.fit_site`: the same frames validate), on the linear
    filter's own error: a classical baseline with the same knowledge of the grid.
    """
    cfg = FitConfig(val_fraction=_val_fraction(train.sizes["time"]), patch_size=1,
                    dims=(ydim, xdim), progress=False)  # fmt: skip
    sel = select(train, cfg)
    patches = make_patches(sel, cfg, scale=linear.scale, window=1, halo=0)
    maps, described = fit_site(linear, sel, cfg, patches)
    pred = upscale(low, linear, dims=(ydim, xdim)).compute()
    fine = {ydim: pred[ydim], xdim: pred[xdim]}
    for v in pred.data_vars:
        term = site_term(maps, described, str(v), low[v], fine, scale=linear.scale,
                         conserve=False, model_name="linear")  # fmt: skip
        pred[v] = pred[v] + term.transpose(*pred[v].dims).values
    return pred


def finetune(
    model_ref: str,
    train: xr.Dataset,
    scale: int,
    budget: dict,
    ydim: str,
    xdim: str,
    *,
    site: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the universal model on the train split; the model and what the page states.

    ``site=True`` also learns the grid's site detail (``fit(..., site=True)``): for datasets
    whose test part is on the train part's grid (later times), not another region.
    """
    n_time = train.sizes.get("time", 1)
    radius = int(xsr.models.load_model(model_ref).receptive_radius)
    plan = _patch_plan(
        [train.sizes[ydim] // scale, train.sizes[xdim] // scale], scale, radius, budget
    )
    val_fraction = _val_fraction(n_time)
    # every patch holds one sample per variable and extra-dimension index
    samples = len(train.data_vars) * int(
        np.prod([n for d, n in train.sizes.items() if d not in ("time", ydim, xdim)])
    )
    per_epoch = max(1, round(budget["field_patches_per_epoch"] / samples))
    batch = max(1, round(budget["batch_fields"] / samples))
    start = time.perf_counter()
    checkpoint = tempfile.TemporaryDirectory(prefix="xsr-real-")
    with checkpoint, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the page states what matters; keep the log readable
        model, hist = fit(
            model_ref,
            train,
            epochs=budget["epochs"],
            patches_per_epoch=per_epoch,
            batch_size=batch,
            lr=budget["lr"],
            lr_schedule=budget["lr_schedule"],
            loss=budget["loss"],
            seed=budget["seed"],
            val_fraction=val_fraction,
            keep_start=True,
            site=site,
            patience=None,
            nan_patches="skip",
            progress=False,
            checkpoint=checkpoint.name,
            **plan,
        )
        # the starting weights' validation score (epoch 0) is in the run state, not the history
        start_record = Checkpoint(checkpoint.name).load_last()[2].get("start_record") or {}
    seconds = time.perf_counter() - start
    facts = {
        **plan,
        "val_fraction": val_fraction,
        "train_frames": int(n_time),
        "samples": samples,
        "patches_per_epoch": per_epoch,
        "batch_size": batch,
        "best_epoch": int(hist.attrs["best_epoch"]),
        "seconds": seconds,
        "site": {
            v: round(float(d["shrinkage"]), 3)
            for v, d in ((model.card.site or {}).get("variables") or {}).items()
        },
        "val_psnr": [
            round(float(v), 3)
            for v in [*np.ravel(start_record.get("val_psnr", [])), *hist["val_psnr"].values.ravel()]
        ],
    }
    return model, facts


def evaluate(
    name: str, scale: int, model_ref: str, budget: dict, cache: Path | None, log: Any
) -> Result:
    """Every row for one dataset at one scale, scored on its test split."""
    res = Result(name, scale)
    variables = _variables(name)
    test = xsr.data.open_real(name, split="test", cache=cache)[variables]
    train = xsr.data.open_real(name, split="train", cache=cache)[variables]
    ydim, xdim = (str(d) for d in spatial_dims(test))
    truth = _trim(test, (ydim, xdim), scale).load()
    train = _trim(train, (ydim, xdim), scale).load()
    if truth.sizes[ydim] != test.sizes[ydim] or truth.sizes[xdim] != test.sizes[xdim]:
        res.notes.append(
            f"grid cut from {test.sizes[ydim]} x {test.sizes[xdim]} to "
            f"{truth.sizes[ydim]} x {truth.sizes[xdim]} (a multiple of {scale})"
        )
    low = degrade(truth, scale=scale, method="coarsen", dims=(ydim, xdim))

    t0 = time.perf_counter()
    linear = fit_linear(train, scale=scale, dims=(ydim, xdim))
    rows = baselines(low, scale=scale, linear=linear, dims=(ydim, xdim))
    if "time" in train.dims:  # site detail needs later times of the same grid (not ETOPO5)
        rows["linear+site"] = linear_site(linear, train, low, ydim, xdim)
    res.seconds["linear fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows["zero-shot"] = upscale(low, model_ref, dims=(ydim, xdim))
    res.seconds["zero-shot"] = time.perf_counter() - t0

    fit_data = train
    # site detail is learnt on the train part's grid: only where the test part is that grid
    site = "time" in train.dims
    if "time" not in train.dims:
        fit_data = _strips(train, ydim, xdim)
        res.notes.append(
            "no time axis: the train split is cut into 2 strips along "
            f"{xdim} ({fit_data.sizes[ydim]} x {fit_data.sizes[xdim]}), the 2nd validates; "
            "no site detail (the test part is another region)"
        )
    try:
        tuned, res.finetune = finetune(model_ref, fit_data, scale, budget, ydim, xdim, site=site)
    except ValueError as err:  # a grid too small to cut a training patch from
        res.notes.append(f"not fine-tuned: {err}")
        print(f"  {name} x{scale}: not fine-tuned: {err}", file=log, flush=True)
    else:
        res.seconds["fine-tuning"] = res.finetune["seconds"]
        rows["fine-tuned"] = upscale(low, tuned, dims=(ydim, xdim)).compute()
        learnt, tuned.site = tuned.site, None  # the network alone, for the site's share
        rows["fine-tuned network"] = upscale(low, tuned, dims=(ydim, xdim)).compute()
        tuned.site = learnt

    t0 = time.perf_counter()
    rows = {k: _on_truth_grid(v.compute(), truth, (ydim, xdim)) for k, v in rows.items()}
    res.table = score(rows, truth, dims=(ydim, xdim)).compute()
    res.seconds["score"] = time.perf_counter() - t0
    res.notes.append(
        f"scored: {res.table.attrs['frames']} frames of {truth.sizes[ydim]} x {truth.sizes[xdim]};"
        f" {res.table.attrs['periodic']}"
    )
    return res


# ------------------------------------------------------------------------------------- page


def _f(x: float, digits: int = 2, sign: bool = False) -> str:
    if not np.isfinite(x):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _dataset_table(res: Result) -> list[str]:
    t = res.table
    assert t is not None
    lines = [
        "| variable | row | PSNR (dB) | SSIM | spectral |",
        "|---|---|---:|---:|---:|",
    ]
    for v in t["variable"].values:
        for c in t["candidate"].values:
            s = t.sel(variable=v, candidate=c)
            lines.append(
                f"| {v} | {c} | {_f(float(s['psnr']))} | {_f(float(s['ssim']), 4)} | "
                f"{_f(float(s['spectral']), 3)} |"
            )
    rng = ", ".join(
        f"{v}: {float(r):.4g}" for v, r in zip(t["variable"].values, t["data_range"].values)
    )
    lines.append("")
    lines.append(f"Data range (test truth max - min): {rng}.")
    return lines


def _label(name: str) -> str:
    return f"{name} (same data as {SAME_DATA[name]} to 1999)" if name in SAME_DATA else name


def _summary(results: list[Result], scales: Sequence[int]) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    verdict: dict[str, Any] = {}
    for scale in scales:
        rs = [r for r in results if r.scale == scale and r.table is not None]
        lines += [
            f"### x{scale}",
            "",
            "| dataset | bicubic | best baseline | zero-shot | linear+site | fine-tuned "
            "| zero-shot − bicubic | fine-tuned − zero-shot | of which site detail "
            "| fine-tuned − linear+site |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        zs_gain, ft_gain, vs_site = [], [], []
        for r in rs:
            bic, zs, ft = r.mean("bicubic"), r.mean("zero-shot"), r.mean("fine-tuned")
            base = {b: r.mean(b) for b in ("bicubic", "bicubic+conserve", "linear")}
            best = max(base, key=lambda b: base[b] if np.isfinite(base[b]) else -np.inf)
            lines.append(
                f"| {_label(r.name)} | {_f(bic)} | {_f(base[best])} ({best}) | {_f(zs)} | "
                f"{_f(r.mean('linear+site'))} | {_f(ft)} | {_f(zs - bic, sign=True)} | "
                f"{_f(ft - zs, sign=True)} | {_f(ft - r.mean('fine-tuned network'), sign=True)} | "
                f"{_f(ft - r.mean('linear+site'), sign=True)} |"
            )
            if r.name not in SAME_DATA:
                zs_gain.append(zs - bic)
                ft_gain.append(ft - zs)
                vs_site.append(ft - r.mean("linear+site"))
        zs_mean = float(np.mean(zs_gain)) if zs_gain else float("nan")
        ft_mean = float(np.nanmean(ft_gain)) if ft_gain else float("nan")
        finite = [g for g in vs_site if np.isfinite(g)]
        site_mean = float(np.mean(finite)) if finite else float("nan")
        lines.append(
            f"| **mean of {len(zs_gain)} datasets** | | | | | | **{_f(zs_mean, sign=True)}** | "
            f"**{_f(ft_mean, sign=True)}** | | {_f(site_mean, sign=True)} ({len(finite)}) |"
        )
        lines.append("")
        verdict[scale] = {
            "zs_all_positive": bool(zs_gain) and all(g > 0 for g in zs_gain),
            "zs_mean": zs_mean,
            "ft_mean": ft_mean,
            "vs_site_mean": site_mean,
            "vs_site_n": len(finite),
            "zs_negative": [r.name for r in rs if r.mean("zero-shot") - r.mean("bicubic") <= 0],
            "ft_below": [
                r.name
                for r in rs
                if r.name not in SAME_DATA and not r.mean("fine-tuned") - r.mean("zero-shot") >= 1
            ],
        }
    return lines, verdict


def _acceptance(verdict: dict[str, Any]) -> list[str]:
    lines = ["## Against the acceptance lines of issue 16", ""]
    for scale, v in verdict.items():
        holds = v["zs_all_positive"] and v["zs_mean"] >= 1.0
        neg = ", ".join(v["zs_negative"]) or "none"
        lines.append(
            f"- **x{scale}, zero-shot beats bicubic on every dataset and by >= +1 dB on the "
            f"mean: {'holds' if holds else 'does not hold'}** (mean {_f(v['zs_mean'], sign=True)}"
            f" dB; datasets at or below bicubic: {neg})."
        )
        ft_holds = np.isfinite(v["ft_mean"]) and v["ft_mean"] >= 1.0
        below = ", ".join(v["ft_below"]) or "none"
        lines.append(
            f"- **x{scale}, fine-tuned beats zero-shot by >= +1 dB: "
            f"{'holds' if ft_holds else 'does not hold'}** on the mean "
            f"({_f(v['ft_mean'], sign=True)} dB); datasets under +1 dB: {below}. Against the "
            f"linear filter with the same site detail (`linear+site`, the {v['vs_site_n']} "
            f"datasets with later times of their grid) the fine-tuned model is "
            f"{_f(v['vs_site_mean'], sign=True)} dB on the mean (what the network adds over a "
            "classical filter that knows the grid as well)."
        )
    lines.append("")
    return lines


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _model_lines(refs: dict[int, str], shipped: bool) -> list[str]:
    out = []
    for scale, ref in refs.items():
        card = xsr.models.load_model(ref).card
        origin = "shipped" if shipped else f"**not the shipped weights**: file `{ref}`"
        out.append(
            f"- x{scale}: `{card.name}` ({origin}; {card.arch}, {card.parameters} parameters, "
            f"weights sha256 `{str(card.sha256)[:12]}…`)"
        )
    return out


def render(
    results: list[Result],
    *,
    command: str,
    scales: Sequence[int],
    budget: dict,
    refs: dict[int, str],
    shipped: bool,
    wall: float,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    quick: bool,
) -> str:
    """The page, from the run's results."""
    summary, verdict = _summary(results, scales)
    lines = [
        "# Results on public real data",
        "",
        "<!-- generated by scripts/real_data_report.py: do not edit by hand -->",
        "",
        "How the universal field models do on the held-out part of every public real dataset "
        "(see [Public real data](real-data.md) for the sources, licences and splits), against "
        "the classical baselines, before and after a short fine-tuning on the dataset's "
        "training part. Every number below comes from one run of",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    if quick:
        lines += ["!!! warning", "    A `--quick` run: tiny budgets, one dataset. Not results.", ""]
    lines += ["Models:", "", *_model_lines(refs, shipped), ""]
    lines += [
        "## Protocol",
        "",
        '- **Held out only.** Every row is scored on the dataset\'s `split="test"` part (the '
        "last years, months or sector); the linear filter and the fine-tuning use "
        '`split="train"` only. The universal models\' training corpus '
        "(`scripts/train_field_models.py`) holds crops of the train splits of these datasets, "
        'never their test splits: *zero-shot* means "as shipped", not "never saw this '
        'kind of field".',
        "- **Degradation**: block means (`coarsen`) by 2 or 4; the grid is first cut to a "
        "multiple of the scale (the last rows or columns go). Predictions are scored on the "
        "truth's cells (their coordinates are the truth's).",
        "- **Scores** (`xsr.metrics.score`): PSNR of the pooled MSE per variable (primary; the "
        "data range is the test truth's max − min), mean per-frame SSIM, and the spectral score "
        "(predicted over true power at the top third of the resolved wavenumbers: 1 is right, "
        "interpolation is far below 1). Global longitudes wrap. A dataset's figure is the mean "
        "over its variables.",
        "- **Rows**: `bicubic` and `bicubic+conserve` (`xsr.evaluation.baselines`), `linear` "
        "(`xsr.train.fit_linear`, 7 x 7 window per sub-pixel phase, fitted on the train split), "
        "`linear+site` (that filter plus site detail learnt on the train split as "
        "`fit(..., site=True)` learns it: `xsr.train.site.fit_site` on the filter's own error, "
        "the same validation frames; not for ETOPO5, whose test part is another region), "
        "`zero-shot` (the universal model), `fine-tuned` (the universal model after "
        "`xsr.train.fit(<model>, train split, keep_start=True, site=True)`: its network "
        "fine-tuned, then the grid's *site detail* learnt, the stationary sub-grid pattern the "
        "network leaves out, shrunk by a factor in [0, 1] chosen on the validation frames; "
        "see `xsr.train.site`), `fine-tuned network` (the same fine-tuned network without its "
        "site detail: the summary's *of which site detail* column is the site detail's share).",
        f"- **Fine-tuning budget** (every dataset, seeded): {budget['epochs']} epochs x "
        f"{budget['field_patches_per_epoch']} single-field patches, batches of "
        f"{budget['batch_fields']}, Adam lr "
        f"{budget['lr']} ({budget['lr_schedule']}), {budget['loss']} loss, seed "
        f"{budget['seed']}; patches of "
        + ", ".join(f"{p} (x{s})" for s, p in budget["patch"].items())
        + " low-resolution cells with the model's receptive radius as halo (smaller where "
        "the grid is smaller: stated per dataset). `fit` stacks a dataset's variables and "
        "extra dims (members, levels) as samples of each patch, so its patches per epoch and "
        "batch are these divided by the samples per patch (stated per dataset). Validation: the last quarter of the train "
        "split's frames (half when it has under 4). `keep_start=True`: when no epoch beats "
        "the starting weights on validation, the starting weights are returned (best epoch 0).",
        "- **ETOPO5** has one frame and no time: its test part is one 2160 x 1296 map (the "
        "Americas and the eastern Pacific); the fine-tuning sees its train part as two "
        "strips along the longitude (the second validates). **ERA5** has four times: two "
        "train times (one validates), two test times x 10 members x 2 levels scored. "
        "**E1** is shown but left out of the means: its training years share 1860-1999 "
        "with A1B (its test years 2028-2099 are its own scenario).",
        "",
        "## Summary",
        "",
        "Mean PSNR over each dataset's variables (dB); differences in dB. The means are over "
        "the datasets other than E1.",
        "",
        *summary,
        *_acceptance(verdict),
        "## Machine time",
        "",
        f"Total wall time {wall / 60:.1f} min on {os.cpu_count()} CPU cores "
        f"({platform.machine()}, Python {platform.python_version()}, torch threads "
        f"{_torch_threads()}), a machine shared with other jobs: load average (1, 5, 15 min) "
        f"{_load(load[0])} at the start, {_load(load[1])} at the end. Per dataset and scale "
        "(seconds): linear fit, zero-shot upscaling, fine-tuning, scoring.",
        "",
        "| dataset | scale | linear fit | zero-shot | fine-tuning | score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.seconds
        lines.append(
            f"| {r.name} | x{r.scale} | {_f(s.get('linear fit', np.nan), 1)} | "
            f"{_f(s.get('zero-shot', np.nan), 1)} | {_f(s.get('fine-tuning', np.nan), 1)} | "
            f"{_f(s.get('score', np.nan), 1)} |"
        )
    lines += ["", "## Per dataset", ""]
    for r in results:
        lines += [f"### {_label(r.name)}, x{r.scale}", ""]
        if r.error:
            lines += [f"Not scored: {r.error}", ""]
            continue
        lines += [f"- {n}" for n in r.notes]
        if r.finetune:
            ft = r.finetune
            lines.append(
                f"- fine-tuning: patch {ft['patch_size']}, halo {ft['halo']}, "
                f"{ft['samples']} samples per patch, {ft['patches_per_epoch']} patches per "
                f"epoch in batches of {ft['batch_size']}, "
                f"{ft['train_frames']} train frames (validation fraction {ft['val_fraction']}), "
                f"{ft['seconds']:.0f} s; validation PSNR from the start (epoch 0) per epoch "
                f"{', '.join(_f(v) for v in ft['val_psnr'])} dB (normalised field); best epoch "
                f"{ft['best_epoch']}" + (" (the starting weights)" if ft["best_epoch"] == 0 else "")
            )
            if ft.get("site"):
                lines.append(
                    "- site detail shrinkage (0: none kept, 1: all) per variable: "
                    + ", ".join(f"{v} {k:.2f}" for v, k in ft["site"].items())
                )
        lines += ["", *_dataset_table(r), ""]
    lines.append(f"Generated at commit `{_git_commit()}` on {time.strftime('%Y-%m-%d %H:%M')}.")
    return "\n".join(lines) + "\n"


def _load(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _refs(models: Path | None, scales: Sequence[int]) -> dict[int, str]:
    refs = {}
    for s in scales:
        name = UNIVERSAL[s]
        if models is None:
            if name not in PRETRAINED:
                raise SystemExit(
                    f"{name} is not shipped (xsr.models.pretrained.PRETRAINED); give --models DIR "
                    "holding field-xsrnet-x2/x4 files (e.g. from scripts/train_field_models.py "
                    "--quick --out DIR)"
                )
            refs[s] = name
        else:
            refs[s] = str(models / name)
    return refs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="folder of field-xsrnet-x2/x4")
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every cached one")
    parser.add_argument("--scales", nargs="*", type=int, default=None, help="default: 2 4")
    parser.add_argument(
        "--page", type=Path, default=None, help=f"default: {PAGE.relative_to(ROOT)}"
    )
    parser.add_argument("--cache", type=Path, default=None, help="real-data cache")
    parser.add_argument("--quick", action="store_true", help="one small dataset, x2, tiny budget")
    parser.add_argument("--epochs", type=int, default=None, help="override the budget's epochs")
    parser.add_argument(
        "--patches", type=int, default=None, help="override single-field patches per epoch"
    )
    args = parser.parse_args(argv)

    scales = args.scales or ([2] if args.quick else [2, 4])
    bad = [s for s in scales if s not in UNIVERSAL]
    if bad:
        parser.error(f"--scales {bad}: the universal models exist for {sorted(UNIVERSAL)}")
    cached = [e["name"] for e in xsr.data.list_real(cache=args.cache) if e["cached"]]
    names = args.datasets or ([QUICK_DATASET] if args.quick else cached)
    missing = [n for n in names if n not in cached]
    if missing or not names:
        parser.error(
            f"not in the cache: {missing or 'every dataset'}; fetch them with "
            f"`{xsr.data.real.FETCH_COMMAND}`"
        )
    refs = _refs(args.models, scales)
    budget = dict(QUICK_FINETUNE if args.quick else FINETUNE)
    if args.epochs is not None:
        budget["epochs"] = args.epochs
    if args.patches is not None:
        budget["field_patches_per_epoch"] = args.patches
    command = "python scripts/real_data_report.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    load0 = os.getloadavg()
    start = time.perf_counter()
    results = []
    for name in names:
        for scale in scales:
            print(f"{name} x{scale} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            res = evaluate(name, scale, refs[scale], budget, args.cache, sys.stderr)
            results.append(res)
            print(
                f"  {time.perf_counter() - t0:.0f} s: bicubic {_f(res.mean('bicubic'))}, "
                f"zero-shot {_f(res.mean('zero-shot'))}, fine-tuned {_f(res.mean('fine-tuned'))}",
                file=sys.stderr,
                flush=True,
            )
    page = render(
        results,
        command=command.strip(),
        scales=scales,
        budget=budget,
        refs=refs,
        shipped=args.models is None,
        wall=time.perf_counter() - start,
        load=(load0, os.getloadavg()),
        quick=args.quick,
    )
    target = args.page or (None if args.quick else PAGE)
    if target is None:
        sys.stdout.write(page)
    else:
        target.write_text(page, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

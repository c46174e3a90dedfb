"""Write docs/results.md (and, with ``--ship``, the shipped shallow-water weights) from one run.

Every number on the results page comes from one run of this script on turbulent runs of
:func:`xsr.data.shallow_water` (its default preset): the networks train on generator runs with
seed ``TRAIN_SEED`` and are scored on held-out runs with seed ``HELD_OUT_SEED``, which no script
trains on, with :func:`xsr.metrics.score` (pooled-MSE PSNR per variable, the primary score; mean
per-frame PSNR, SSIM, MAE and the spectral score too), frames before the generator's spin-up
left out, the doubly periodic grid wrapped (the generator marks it with the ``period``
attribute), and block-mean (``coarsen``) degradation, at x2 and x4 on the same runs.

Rows: the classical baselines (:func:`xsr.evaluation.baselines`: bicubic, bicubic + the
consistency projection, and the least-squares linear filter of :func:`xsr.train.fit_linear`), the
report's networks (SRCNN, FSRCNN, the 3D network on raw input), its combinations (2D then 3D,
3D then 2D, two-in-one), transfer learning (SRCNN and FSRCNN fine-tuned from the shipped
natural-image weights), and xsr's ``xsrnet`` (window 1 and its temporal twin, window 3), with
and without ``conserve=True``. Every learned row is trained with the same budget: the same
optimiser steps, batch and high-resolution patch side, so the same high-resolution pixels seen
(:func:`budget`). Each model with a time window also gets its ablations
(:func:`xsr.evaluation.temporal_ablation`). The temporal experiment trains xsrnet with window 3
and its window-1 twin with three seeds each.

Usage::

    python scripts/results_report.py                 # the full run, writes docs/results.md
    python scripts/results_report.py --ship          # ... and the shipped shallow-water weights
    python scripts/results_report.py --quick --out /tmp/r   # tiny budgets: every row runs

``--quick`` uses a tiny grid and budget (seconds per row): it checks that every row, every
table and the shipping path run, and its numbers mean nothing.
"""

# No ``from __future__ import annotations``: the dataclasses below must build when this file is
# loaded with importlib without a sys.modules entry (as scripts/train_field_models.py and the
# tests load it).
import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

import xsr
from xsr.degradation import degrade
from xsr.evaluation import baselines, margin_over_baselines, temporal_ablation
from xsr.metrics import score
from xsr.models import get_model
from xsr.models.files import save_model
from xsr.train import fit, fit_linear
from xsr.upscaling import upscale

VARIABLES = ["h", "u", "v", "vorticity", "tracer"]
#: Generator seeds: the training runs and the held-out runs (no script trains on the latter).
TRAIN_SEED, HELD_OUT_SEED = 2019, 2020
SCALES = (2, 4)
#: Seeds of the temporal experiment (weights, patch sampling, augmentation).
TEMPORAL_SEEDS = (0, 1, 2)
#: Time windows of the temporal experiment, each against the window-1 twin: the table's
#: 3-frame stack, and more frames (5), one of the issue's known routes. Frame differences as
#: inputs are no separate route for xsrnet: its first layer is linear in the stacked frames, so
#: it already forms any difference of them.
TEMPORAL_WINDOWS = (3, 5)
#: The temporal experiment's bar: gain over the window-1 twin on every variable (dB).
TEMPORAL_BAR_DB = 0.5
#: The acceptance bar: the best shipped model over the strongest baseline (dB).
MARGIN_BAR_DB = 1.0
SCRIPT = "scripts/results_report.py"


@dataclass(frozen=True)
class Budget:
    """Data sizes and the training budget shared by every learned row."""

    nx: int  # fine grid side
    train_members: int
    train_frames: int
    held_out_members: int
    held_out_frames: int
    steps: int  # optimiser steps per learned row
    epochs: int
    batch_size: int
    hr_patch: int  # high-resolution patch side (the low-resolution side is hr_patch // scale)
    lr: float
    features_3d: int  # feature maps of the 3D network's wide layers (the report: 32)

    @property
    def patches_per_epoch(self) -> int:
        return self.steps * self.batch_size // self.epochs

    @property
    def hr_pixels(self) -> int:
        """High-resolution target pixels seen by one learned row."""
        return self.steps * self.batch_size * self.hr_patch**2


def budget(quick: bool) -> Budget:
    """The budget: tiny with ``quick``, else sized for about half an hour on 2 CPU cores."""
    if quick:
        return Budget(
            nx=32,
            train_members=1,
            train_frames=12,
            held_out_members=1,
            held_out_frames=6,
            steps=2,
            epochs=1,
            batch_size=2,
            hr_patch=16,
            lr=1e-3,
            features_3d=4,
        )
    return Budget(
        nx=96,
        train_members=3,
        # more frames, not more members: members are stacked as samples of every patch, so
        # each one multiplies the cost of a step, where frames add training diversity at no
        # cost per step (the x4 tracer needed it; with 32 frames it stayed under the margin)
        train_frames=256,
        held_out_members=2,
        held_out_frames=12,
        steps=48,
        epochs=2,
        batch_size=4,
        hr_patch=48,
        lr=1e-3,
        features_3d=8,
    )


def generator_runs(b: Budget, seed: int, members: int, frames: int) -> xr.Dataset:
    """Turbulent generator runs (the default preset), float32, loaded."""
    ds = xsr.data.shallow_water(b.nx, b.nx, frames=frames, seed=seed, members=members)
    return ds[VARIABLES].astype("float32").load()


# ---------------------------------------------------------------------------- training


@dataclass
class Trained:
    """A learned row: the model, its training seconds (its own fit only) and its fit history."""

    model: Any
    seconds: float
    history: xr.Dataset | None
    start: str | None = None  # the row it starts from (combinations)
    improved: bool = True  # False: fit(keep_start=True) returned its starting weights
    note: str = ""


#: xsrnet's configuration in every xsrnet row: its global residual over a learned linear filter
#: per sub-pixel phase, which fit solves in closed form before the gradient steps (so an xsrnet
#: row starts where the ``linear`` baseline is and learns what a linear filter misses).
XSRNET = {"base": "linear"}


#: The shipped xsrnet models train this many times the common budget's steps (same batch and
#: patches); their row is shown beside the equal-budget rows, never in their place.
SHIP_FACTOR = 96
SHIP_ROW = f"xsrnet, {SHIP_FACTOR}x steps"


def fit_kwargs(b: Budget, scale: int, seed: int = 0, factor: int = 1) -> dict[str, Any]:
    """The budget every learned row trains with (same steps, batch, patch: same pixels).

    ``factor`` multiplies the epochs (so the steps): only the shipped xsrnet rows use it.
    """
    return {
        "variables": VARIABLES,
        "scale": scale,
        "degrade": "coarsen",
        "epochs": b.epochs * factor,
        "patches_per_epoch": b.patches_per_epoch,
        "batch_size": b.batch_size,
        "patch_size": b.hr_patch // scale,
        "lr": b.lr,
        "lr_schedule": "cosine",
        "patience": None,  # a fixed budget: every row takes every step
        "loss": "psnr",  # per variable and per patch normalised: no variable is left behind
        "seed": seed,
        "progress": False,
        "device": "auto",
    }


def timed_fit(model: Any, data: xr.Dataset, **kwargs: Any) -> Trained:
    """``fit`` with its wall time; a diverged run (NaN loss) is redone once at half the rate."""
    t0 = time.perf_counter()
    note = ""
    try:
        net, history = fit(model, data, **kwargs)
    except FloatingPointError:
        kwargs = {**kwargs, "lr": kwargs["lr"] / 2}
        note = f"diverged at the common learning rate; trained at {kwargs['lr']:g}"
        net, history = fit(model, data, **kwargs)
    return Trained(net, time.perf_counter() - t0, history, note=note)


def refiner(b: Budget) -> dict[str, Any]:
    """The 3D network at scale 1 (a refiner), starting from the identity (residual)."""
    return {
        "arch": "srnet3d",
        "scale": 1,
        "channels": len(VARIABLES),
        "residual": True,
        "features": b.features_3d,
    }


#: Scales of the transfer-learning rows: the scales of the shipped natural-image weights.
SCALES_TRANSFER = (2,)
#: Scales at which the rows with the report's 3D network (3D, 2D then 3D, 3D then 2D,
#: two-in-one) are trained (they cost 5 to 10 times a 2D row per step); the shipped 3D models
#: are x2 only.
SCALES_3D = (2, 4)


def train_rows(
    train: xr.Dataset, scale: int, b: Budget, log: Any, with_3d: bool = True
) -> dict[str, Trained]:
    """Every learned row of one scale, in table order (seed 0)."""
    kw = fit_kwargs(b, scale)
    out: dict[str, Trained] = {}

    def add(name: str, row: Trained) -> Trained:
        out[name] = row
        log(f"  x{scale} {name}: {row.seconds:.0f} s" + (f" ({row.note})" if row.note else ""))
        return row

    add("SRCNN", timed_fit("srcnn", train, residual=True, **kw))
    fsrcnn = add("FSRCNN", timed_fit("fsrcnn", train, residual=True, **kw)).model
    for arch, label in (
        (("srcnn", "SRCNN"), ("fsrcnn", "FSRCNN")) if scale in SCALES_TRANSFER else ()
    ):
        source = f"{arch}-natural-x{scale}"
        row = timed_fit(arch, train, residual=True, init_from=source, **kw)
        copied = [c for c in str(row.history.attrs.get("transferred", "")).split(", ") if c]
        row.note = (
            (row.note + "; " if row.note else "")
            + f"from `{source}`: {len(copied)} tensors copied"
            + (f" ({', '.join(copied)})" if copied else "")
        )
        add(f"{label} fine-tuned", row)
    if not with_3d:
        add_xsrnet(add, train, scale, b)
        return out
    add("3D", timed_fit("srnet3d", train, residual=True, features=b.features_3d, **kw))

    # 2D then 3D (the report's two-stage method): a 3D refiner trained on the fixed FSRCNN's
    # output; the chain starts as FSRCNN followed by the identity.
    stages = [{"arch": "fsrcnn", **fsrcnn.config}, refiner(b)]
    chain = get_model("chain", stages=stages)
    chain.stages[0].load_state_dict(fsrcnn.state_dict())
    row = timed_fit(chain, train, stage=1, keep_start=True, **kw)
    row.start, row.improved = "FSRCNN + untrained refiner", _improved(row)
    two_stage = add("2D then 3D", row).model

    # 3D then 2D: a 3D refiner at low resolution before the FSRCNN, trained end to end.
    chain = get_model("chain", stages=[refiner(b), {"arch": "fsrcnn", **fsrcnn.config}])
    chain.stages[1].load_state_dict(fsrcnn.state_dict())
    row = timed_fit(chain, train, keep_start=True, **kw)
    row.start, row.improved = "FSRCNN + untrained refiner", _improved(row)
    add("3D then 2D", row)

    # Two-in-one: the 2D then 3D network trained end to end from the two-stage weights.
    chain = get_model("chain", stages=stages)
    chain.load_state_dict(two_stage.state_dict())
    row = timed_fit(chain, train, keep_start=True, **kw)
    row.start, row.improved = "the 2D then 3D weights", _improved(row)
    add("two-in-one", row)

    add_xsrnet(add, train, scale, b)
    return out


def add_xsrnet(add: Any, train: xr.Dataset, scale: int, b: Budget) -> None:
    """The xsrnet rows: window 1 and 3 at the common budget, then window 1 at the shipping one."""
    kw = fit_kwargs(b, scale)
    add("xsrnet", timed_fit("xsrnet", train, window=1, **XSRNET, **kw))
    add("xsrnet temporal", timed_fit("xsrnet", train, window=3, **XSRNET, **kw))
    long = fit_kwargs(b, scale, factor=SHIP_FACTOR)
    add(SHIP_ROW, timed_fit("xsrnet", train, window=1, **XSRNET, **long))


def _improved(row: Trained) -> bool:
    """False when ``fit(keep_start=True)`` kept the starting weights (best epoch 0)."""
    return int(row.history.attrs["best_epoch"]) != 0


# ---------------------------------------------------------------------------- scoring

#: Row label -> (trained row, conserve)
TABLE_ORDER = (
    "SRCNN",
    "FSRCNN",
    "SRCNN fine-tuned",
    "FSRCNN fine-tuned",
    "3D",
    "2D then 3D",
    "3D then 2D",
    "two-in-one",
    "xsrnet",
    "xsrnet + conserve",
    "xsrnet temporal",
    "xsrnet temporal + conserve",
    SHIP_ROW,
    f"{SHIP_ROW} + conserve",
)


def predictions(
    rows: dict[str, Trained], low: xr.Dataset, scale: int, linear: Any
) -> dict[str, xr.Dataset]:
    """Every row's prediction (baselines first), lazy."""
    preds = dict(baselines(low, scale=scale, linear=linear))
    for label in TABLE_ORDER:
        base = label.removesuffix(" + conserve")
        if base in rows:
            preds[label] = upscale(low, rows[base].model, conserve=label.endswith("conserve"))
    return preds


def table_dict(table: xr.Dataset) -> dict[str, dict[str, dict[str, float]]]:
    """``{candidate: {variable: {metric: value}}}`` of a computed score table."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for cand in table["candidate"].values:
        out[str(cand)] = {
            str(v): {m: float(table[m].sel(candidate=cand, variable=v)) for m in table.data_vars}
            for v in table["variable"].values
        }
    return out


def margins(table: xr.Dataset, names: list[str]) -> dict[str, dict[str, tuple[float, str]]]:
    """Each row's pooled-PSNR margin over the strongest baseline, per variable."""
    out = {}
    for name in names:
        m = margin_over_baselines(table, name)
        out[name] = {
            str(v): (float(m["margin"].sel(variable=v)), str(m["strongest"].sel(variable=v).values))
            for v in m["variable"].values
        }
    return out


def ablations(
    rows: dict[str, Trained], low: xr.Dataset, truth: xr.Dataset
) -> dict[str, dict[str, dict[str, float]]]:
    """Pooled PSNR of every windowed row: real, centre repeated, time shuffled."""
    out = {}
    for name, row in rows.items():
        if int(getattr(row.model, "window", 1)) == 1:
            continue
        table = temporal_ablation(row.model, low, truth, name=name).compute()
        out[name] = {
            kind: {
                str(v): float(table["psnr"].sel(candidate=label, variable=v))
                for v in table["variable"].values
            }
            for kind, label in (
                ("real", name),
                ("centre-repeated", f"{name} centre-repeated"),
                ("time-shuffled", f"{name} time-shuffled"),
            )
        }
    return out


def temporal_experiment(
    train: xr.Dataset,
    low: xr.Dataset,
    truth: xr.Dataset,
    b: Budget,
    seed0: dict[str, Trained],
    log: Any,
) -> dict[str, Any]:
    """xsrnet with each window of ``TEMPORAL_WINDOWS`` against its window-1 twin at x2.

    Equal budget, several seeds; seed 0 reuses the table's rows where it has them (window 1
    and 3). Returns the scores per window and seed (real, centre frame repeated, time
    shuffled), and per window the gains over window 1 and the verdict.
    """
    table_rows = {1: "xsrnet", 3: "xsrnet temporal"}
    runs: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
    for window in (1, *TEMPORAL_WINDOWS):
        label = f"window {window}"
        runs[label] = {}
        for seed in TEMPORAL_SEEDS:
            if seed == 0 and window in table_rows:
                model = seed0[table_rows[window]].model
            else:
                t0 = time.perf_counter()
                model, _ = fit("xsrnet", train, window=window, **XSRNET, **fit_kwargs(b, 2, seed))
                log(
                    f"  temporal experiment, {label}, seed {seed}: {time.perf_counter() - t0:.0f} s"
                )
            table = temporal_ablation(model, low, truth, name=label).compute()
            runs[label][seed] = {
                kind: {
                    str(v): float(table["psnr"].sel(candidate=cand, variable=v))
                    for v in table["variable"].values
                }
                for kind, cand in (
                    ("real", label),
                    ("centre-repeated", f"{label} centre-repeated"),
                    ("time-shuffled", f"{label} time-shuffled"),
                )
                if window > 1 or kind == "real"
            }
    windows = {w: _temporal_verdict(runs, w) for w in TEMPORAL_WINDOWS}
    holds = any(w["holds"] and w["vanishes"] for w in windows.values())
    return {"runs": runs, "windows": windows, "holds": holds}


def _temporal_verdict(runs: dict[str, Any], window: int) -> dict[str, Any]:
    """Gains of ``window`` over window 1 per variable and seed, real and centre repeated."""
    one, many = runs["window 1"], runs[f"window {window}"]
    gain = {v: [many[s]["real"][v] - one[s]["real"][v] for s in TEMPORAL_SEEDS] for v in VARIABLES}
    kept = {
        v: [many[s]["centre-repeated"][v] - one[s]["real"][v] for s in TEMPORAL_SEEDS]
        for v in VARIABLES
    }
    return {
        "gain": gain,
        "kept": kept,
        "holds": all(np.mean(gain[v]) >= TEMPORAL_BAR_DB for v in VARIABLES),
        # a gain is temporal when it goes with the neighbours: under centre repetition what is
        # left of it stays below the bar
        "vanishes": all(np.mean(kept[v]) < TEMPORAL_BAR_DB for v in VARIABLES),
    }


# ---------------------------------------------------------------------------- shipping

#: Shipped name -> (scale, table row).
SHIPPED: dict[str, tuple[int, str]] = {
    "fsrcnn-swe-x2": (2, "FSRCNN"),
    "fsrcnn-swe-x4": (4, "FSRCNN"),
    "srnet3d-swe-x2": (2, "3D"),
    "fsrcnn-srnet3d-swe-x2": (2, "2D then 3D"),
    "xsrnet-swe-x2": (2, SHIP_ROW),
    "xsrnet-swe-x4": (4, SHIP_ROW),
}


def recipe(name: str, b: Budget) -> dict[str, Any]:
    """The recipe recorded on a shipped card (the test suite checks it against this script)."""
    scale, row = SHIPPED[name]
    return {
        "row": row,
        "scale": scale,
        "generator": "xsr.data.shallow_water",
        "train_seed": TRAIN_SEED,
        "budget": asdict(b),
    }


def ship(
    name: str,
    row: Trained,
    b: Budget,
    tab: dict[str, dict[str, dict[str, float]]],
    label: str,
    margin: dict[str, tuple[float, str]],
    ablation: dict[str, dict[str, float]] | None,
    weights_dir: Path,
    quick: bool,
) -> Path:
    """Save one shipped model with its held-out metrics and ablations on the card."""
    model = row.model
    model.card.name = name
    model.card.training = {
        **model.card.training,
        "script": SCRIPT,
        "recipe": recipe(name, b),
        "quick": quick,
        "train_seconds": round(row.seconds, 1),
    }
    per_var = tab[label]
    base = tab["bicubic"]
    held: dict[str, Any] = {
        "generator": "xsr.data.shallow_water",
        "seed": HELD_OUT_SEED,
        "members": b.held_out_members,
        "frames": b.held_out_frames,
        "degradation": "coarsen",
        "protocol": "xsr.metrics.score (pooled-MSE PSNR; spin-up excluded; periodic)",
        "per_variable": per_var,
        "bicubic_per_variable": base,
        "strongest_baseline": {v: {"name": s, "margin_db": m} for v, (m, s) in margin.items()},
    }
    if ablation is not None:
        held["temporal_ablation"] = ablation
    validation = {
        **model.card.metrics,
        "data_range": dict(zip(VARIABLES, row.history.attrs["data_range"], strict=True)),
    }
    model.card.metrics = {
        "validation": validation,
        "psnr": float(np.mean([per_var[v]["psnr"] for v in VARIABLES])),
        "bicubic_psnr": float(np.mean([base[v]["psnr"] for v in VARIABLES])),
        "summary": "means over variables of the held-out pooled-MSE PSNR (xsr.metrics.score); "
        "data range per variable: max - min of the held-out truth",
        "held_out": held,
    }
    kind = f"did not improve on its start ({row.start})" if not row.improved else ""
    model.card.description = (
        f"{model.arch} x{model.scale} trained by {SCRIPT} on turbulent xsr.data.shallow_water "
        f"runs (seed {TRAIN_SEED}, {b.train_members} members, {b.nx}x{b.nx}), variables "
        f"{', '.join(VARIABLES)} as channels of one model" + (f"; {kind}" if kind else "") + "."
    )
    return save_model(model, weights_dir / name)


# ---------------------------------------------------------------------------- the page


def fmt_margin(m: float) -> str:
    return f"{m:+.2f}"


def write_page(path: Path, r: dict[str, Any]) -> None:
    b: Budget = r["budget"]
    lines = [
        "# Results: the report's comparison on turbulent shallow water",
        "",
        f"Generated by `{' '.join(['python', SCRIPT, *r['argv']])}` (xsr {xsr.__version__}, {r['seconds'] / 60:.0f} min on {r['machine']}); "
        "every number on this page comes from that run; do not edit by hand.",
        "",
        "## Protocol",
        "",
        f"- Data: turbulent runs of `xsr.data.shallow_water({b.nx}, {b.nx})` (the default "
        f"preset). Training: seed {TRAIN_SEED}, {b.train_members} members x "
        f"{b.train_frames} frames (fit validates on the last fifth of each). Held out: seed "
        f"{HELD_OUT_SEED}, {b.held_out_members} members x {b.held_out_frames} frames; no script "
        "trains on it. Frames start after the generator's spin-up (its `spin_up_end`), "
        "every held-out frame is scored.",
        "- Degradation: block mean (`coarsen`), x2 and x4 from the same runs.",
        "- Score: `xsr.metrics.score`: PSNR of the pooled MSE per variable (primary), mean "
        "per-frame PSNR, SSIM, MAE and the spectral score (predicted / true power at the highest "
        "resolved wavenumbers); data range per variable = max - min of the held-out truth; "
        "periodic in x and y (read from the data's `period` attributes): no edge is reflected.",
        "- Baselines: `bicubic`, `bicubic+conserve` (bicubic then the consistency projection) and "
        "`linear` (`xsr.train.fit_linear`, a 7 x 7 least-squares filter per sub-pixel phase, fit "
        "in closed form on the training runs). The strongest of the three, per variable, is the "
        "bar.",
        f"- Equal budget for every learned row: {b.steps} Adam steps of {b.batch_size} patches "
        f"of {b.hr_patch} x {b.hr_patch} high-resolution pixels ({b.hr_pixels:,} target pixels "
        f"seen), {b.epochs} epochs, learning rate {b.lr:g} with cosine decay, no early stop "
        '(the best validation epoch is kept), `loss="psnr"` (the mean per patch and per '
        "variable of `10 log10(MSE)` on normalised values, so that every variable counts "
        "equally), seed 0. The report's 2D and 3D networks learn the residual over bicubic "
        f"(`residual=True`); the 3D network uses {b.features_3d} feature maps in its wide "
        "layers instead of the report's 32 (the CPU budget).",
        "- Combinations start from what the table trained before them, then get the same budget "
        "again: 2D then 3D trains a 3D refiner on the fixed FSRCNN's output; 3D then 2D (a 3D "
        "refiner at low resolution before that FSRCNN) and the two-in-one network (starting from "
        "the two-stage weights) train end to end. They keep their starting weights when no "
        "epoch beats them on validation (`fit(keep_start=True)`); such a row is printed as "
        '"did not improve on its start" with the start\'s numbers.',
        "- Transfer learning: SRCNN and FSRCNN fine-tuned from the shipped natural-image weights "
        "(`srcnn-natural-x2`, `fsrcnn-natural-x2`, one-channel photographs) at the same budget as "
        "from scratch; every tensor whose name and shape match is copied (the five-variable "
        "first and last layers do not match). No natural-image x4 weights exist, so there is no "
        "transfer row at x4 (it was not run).",
        *(
            []
            if set(SCALES) <= set(SCALES_3D)
            else [
                "- The rows with the report's 3D network (3D, 2D then 3D, 3D then 2D, two-in-one) "
                f"are trained at x{', x'.join(map(str, SCALES_3D))} only: per step they cost 5 to "
                "10 times a 2D row."
            ]
        ),
        "- `xsrnet` is window 1 (single frame); `xsrnet temporal` is the same network with a "
        "window of 3 frames stacked as channels. Both add their detail to a learned linear "
        'filter per sub-pixel phase (`base="linear"`), which `fit` solves in closed form '
        "before the gradient steps and keeps fixed during them, so an xsrnet row starts from "
        "the `linear` baseline's filter.",
        f"- `{SHIP_ROW}` is the shipped single-frame xsrnet: the same network trained "
        f"{SHIP_FACTOR} times the common budget's steps ({SHIP_FACTOR * b.steps} steps, same "
        "batch and patches). It is shown beside the equal-budget rows, not in their place: "
        "the comparison between the report's networks is the equal-budget one.",
        "- Temporal ablations (`xsr.evaluation.temporal_ablation`): every model with a time "
        "window is scored with its real neighbours, with the centre frame repeated and with "
        "time shuffled.",
        "",
    ]
    lines += acceptance_lines(r)
    for scale in SCALES:
        if scale not in r["tables"]:
            continue
        lines += scale_section(r, scale)
    lines += temporal_section(r)
    lines += [
        "## Time",
        "",
        f"Training seconds per row are in the tables (on {r['machine']}, shared with other "
        "work, so they are indicative). Data generation, fitting, scoring and ablations: "
        f"{r['seconds'] / 60:.1f} min in all.",
        "",
    ]
    path.write_text("\n".join(lines))


def best_shipped(r: dict[str, Any], scale: int) -> tuple[str, str] | None:
    """The shipped model of this scale with the highest mean pooled PSNR (name, row)."""
    tab = r["tables"][scale]
    cands = [(n, row) for n, (s, row) in SHIPPED.items() if s == scale and row in tab]
    if not cands:
        return None
    return max(cands, key=lambda c: np.mean([tab[c[1]][v]["psnr"] for v in VARIABLES]))


def _acceptance_line(r: dict[str, Any], scale: int, name: str, row: str, how: str) -> str:
    m = r["margins"][scale][row]
    misses = [f"`{v}` ({m[v][0]:+.2f} dB)" for v in VARIABLES if m[v][0] < MARGIN_BAR_DB]
    verdict = (
        f"holds on every variable (smallest margin {min(x[0] for x in m.values()):+.2f} dB)"
        if not misses
        else "**does not hold** on " + ", ".join(misses)
    )
    return (
        f"- x{scale}: the best shipped model, `{name}`{how} (row {row}), beats the strongest "
        f"classical baseline by at least {MARGIN_BAR_DB:g} dB pooled PSNR on every variable: "
        f"{verdict}. Margins: "
        + ", ".join(f"{v} {m[v][0]:+.2f} dB (over {m[v][1]})" for v in VARIABLES)
        + "."
    )


def acceptance_lines(r: dict[str, Any]) -> list[str]:
    lines = ["## Acceptance", ""]
    for scale in SCALES:
        if scale not in r["tables"]:
            continue
        best = best_shipped(r, scale)
        if best is None:
            continue
        name, row = best
        lines += [_acceptance_line(r, scale, name, row, "")]
        if f"{row} + conserve" in r["margins"][scale]:
            lines += [_acceptance_line(r, scale, name, f"{row} + conserve", " with conserve=True")]
    t = r.get("temporal")

    if t:
        for window, w in t["windows"].items():
            gain = ", ".join(
                f"{v} {np.mean(w['gain'][v]):+.2f} ± {np.std(w['gain'][v]):.2f}" for v in VARIABLES
            )
            kept = ", ".join(f"{v} {np.mean(w['kept'][v]):+.2f}" for v in VARIABLES)
            lines.append(
                f"- Temporal (x2, xsrnet window {window} against window 1, equal budget, seeds "
                f"{', '.join(map(str, TEMPORAL_SEEDS))}): gain of at least {TEMPORAL_BAR_DB} dB "
                f"on every variable, gone with the centre frame repeated: "
                f"{'holds' if w['holds'] and w['vanishes'] else '**does not hold**'} (gain, mean "
                f"± standard deviation over seeds: {gain} dB; with the centre frame repeated "
                f"instead of the neighbours, against window 1: {kept} dB)."
            )
        lines.append(
            "- "
            + (
                "A temporal model counts as better than its window-1 twin here."
                if t["holds"]
                else "No temporal model earns a place by default: the shipped `xsrnet-swe-x2` "
                "and `xsrnet-swe-x4` are single-frame (window 1), and `upscale(scale=...)` "
                f"picks {', '.join(f'`{n}`' for n in r.get('defaults', {}).values())} by "
                "default."
            )
        )
    lines.append("")
    return lines


def scale_section(r: dict[str, Any], scale: int) -> list[str]:
    tab = r["tables"][scale]
    rows = r["rows"][scale]
    margin = r["margins"][scale]
    abl = r["ablations"][scale]
    info = r["row_info"][scale]
    rng = r["ranges"][scale]
    lines = [
        f"## x{scale}",
        "",
        "Data range per variable: " + ", ".join(f"{v} {rng[v]:.4g}" for v in VARIABLES) + ".",
        "",
        "### Pooled PSNR (dB) per variable",
        "",
        "| row | " + " | ".join(VARIABLES) + " | mean | train (s) | parameters | note |",
        "|---|" + "---|" * (len(VARIABLES) + 4),
    ]
    for cand in tab:
        base = cand.removesuffix(" + conserve")
        inf = info.get(base, {})
        label = cand
        note = inf.get("note", "")
        if inf.get("improved") is False:
            label = f"{cand}: did not improve on its start"
            note = (
                f"fit(keep_start=True) returned its starting weights ({inf['start']}): these "
                "are the start's numbers, not a separate result"
            )
        cells = " | ".join(f"{tab[cand][v]['psnr']:.2f}" for v in VARIABLES)
        mean = np.mean([tab[cand][v]["psnr"] for v in VARIABLES])
        secs = f"{inf['seconds']:.0f}" if "seconds" in inf else "–"
        params = f"{inf['parameters']:,}" if "parameters" in inf else "0"
        lines.append(f"| {label} | {cells} | {mean:.2f} | {secs} | {params} | {note} |")
    lines += [
        "",
        "### Margin over the strongest classical baseline (pooled PSNR, dB)",
        "",
        "Strongest baseline per variable: "
        + ", ".join(f"{v}: {next(iter(margin.values()))[v][1]}" for v in VARIABLES)
        + ".",
        "",
        "| row | " + " | ".join(VARIABLES) + " | every variable ≥ +1 dB |",
        "|---|" + "---|" * (len(VARIABLES) + 1),
    ]
    for name, m in margin.items():
        ok = all(m[v][0] >= MARGIN_BAR_DB for v in VARIABLES)
        cells = " | ".join(fmt_margin(m[v][0]) for v in VARIABLES)
        lines.append(f"| {name} | {cells} | {'yes' if ok else 'no'} |")
    lines += [
        "",
        "### Every score",
        "",
        "Pooled PSNR / mean per-frame PSNR (dB), SSIM, MAE, spectral score (1 is the truth's "
        "power in the top third of the resolved wavenumbers).",
        "",
        "| variable | row | PSNR | PSNR/frame | SSIM | MAE | spectral |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in VARIABLES:
        for cand in tab:
            s = tab[cand][v]
            lines.append(
                f"| {v} | {cand} | {s['psnr']:.2f} | {s['psnr_frames']:.2f} | {s['ssim']:.4f} "
                f"| {s['mae']:.4g} | {s['spectral']:.3f} |"
            )
    if abl:
        lines += [
            "",
            "### Temporal ablations (pooled PSNR, dB)",
            "",
            "Real neighbours / centre frame repeated / time shuffled. A gain counts as temporal "
            "only when it disappears without the real neighbours.",
            "",
            "| row | " + " | ".join(VARIABLES) + " |",
            "|---|" + "---|" * len(VARIABLES),
        ]
        for name, a in abl.items():
            cells = " | ".join(
                f"{a['real'][v]:.2f} / {a['centre-repeated'][v]:.2f} / {a['time-shuffled'][v]:.2f}"
                for v in VARIABLES
            )
            lines.append(f"| {name} | {cells} |")
    lines.append("")
    del rows
    return lines


def temporal_section(r: dict[str, Any]) -> list[str]:
    t = r.get("temporal")
    if not t:
        return []
    windows = ", ".join(map(str, TEMPORAL_WINDOWS))
    lines = [
        "## The temporal experiment (x2)",
        "",
        f"xsrnet with windows of {windows} frames (stacked as channels) against its window-1 "
        f"twin, same budget, seeds {', '.join(map(str, TEMPORAL_SEEDS))} (seed 0 of windows 1 "
        "and 3 is the table's pair). Pooled PSNR (dB) per seed; then each window's gain over "
        "window 1 (mean ± standard deviation over the seeds, and the range), and its score "
        "against window 1 when it sees its centre frame repeated instead of its neighbours. "
        "Frame differences as inputs are no separate route for this network: its first layer is "
        "linear in the stacked frames, so it already forms any difference of them.",
        "",
        "| model | seed | " + " | ".join(VARIABLES) + " |",
        "|---|---|" + "---|" * len(VARIABLES),
    ]
    for label, per_seed in t["runs"].items():
        for seed in TEMPORAL_SEEDS:
            for kind, vals in per_seed[seed].items():
                name = label if kind == "real" else f"{label}, {kind}"
                lines.append(
                    f"| {name} | {seed} | " + " | ".join(f"{vals[v]:.2f}" for v in VARIABLES) + " |"
                )
    lines += ["", "| | " + " | ".join(VARIABLES) + " |", "|---|" + "---|" * len(VARIABLES)]
    for window, w in t["windows"].items():
        lines += [
            f"| gain, window {window} - window 1 | "
            + " | ".join(
                f"{np.mean(w['gain'][v]):+.2f} ± {np.std(w['gain'][v]):.2f} "
                f"[{min(w['gain'][v]):+.2f}, {max(w['gain'][v]):+.2f}]"
                for v in VARIABLES
            )
            + " |",
            f"| window {window} with the centre frame repeated - window 1 | "
            + " | ".join(
                f"{np.mean(w['kept'][v]):+.2f} ± {np.std(w['kept'][v]):.2f}" for v in VARIABLES
            )
            + " |",
        ]
    verdicts = "; ".join(
        f"window {window}: gain on every variable {'yes' if w['holds'] else '**no**'}, gone "
        f"under centre repetition {'yes' if w['vanishes'] else '**no**'}"
        for window, w in t["windows"].items()
    )
    lines += [
        "",
        f"The bar: at least +{TEMPORAL_BAR_DB} dB (mean over seeds) on every variable, and the "
        f"gain gone (below +{TEMPORAL_BAR_DB} dB) with the centre frame repeated. {verdicts}.",
        "",
    ]
    return lines


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks every row runs")
    parser.add_argument("--out", default="docs", help="folder for results.md (default docs)")
    parser.add_argument("--ship", action="store_true", help="save the shipped weights too")
    parser.add_argument(
        "--weights-dir", default=None, help="where --ship writes (default: the package's)"
    )
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES))
    parser.add_argument("--no-temporal", action="store_true", help="skip the seed experiment")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    b = budget(args.quick)

    def log(msg: str) -> None:
        print(f"[{(time.perf_counter() - start) / 60:5.1f} min] {msg}", flush=True)

    log(f"budget: {asdict(b)}")
    train = generator_runs(b, TRAIN_SEED, b.train_members, b.train_frames)
    truth = generator_runs(b, HELD_OUT_SEED, b.held_out_members, b.held_out_frames)
    overlap = set(np.atleast_1d(train["seed"].values)) & set(np.atleast_1d(truth["seed"].values))
    if overlap:
        raise RuntimeError(f"training and held-out runs share generator seeds {overlap}")
    log("data generated")
    r: dict[str, Any] = {
        "budget": b,
        "argv": argv,
        "tables": {},
        "rows": {},
        "margins": {},
        "ablations": {},
        "row_info": {},
        "ranges": {},
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})"
        if not torch.cuda.is_available()
        else torch.cuda.get_device_name(0),
    }
    trained_all: dict[int, dict[str, Trained]] = {}
    for scale in args.scales:
        log(f"x{scale}: linear baseline")
        linear = fit_linear(train, scale=scale, variables=VARIABLES, radius=3)
        rows = train_rows(train, scale, b, log, with_3d=scale in SCALES_3D)
        trained_all[scale] = rows
        low = degrade(truth, scale=scale)
        table = score(predictions(rows, low, scale, linear), truth).compute()
        tab = table_dict(table)
        learned = [c for c in tab if c not in ("bicubic", "bicubic+conserve", "linear")]
        r["tables"][scale] = tab
        r["rows"][scale] = list(tab)
        r["margins"][scale] = margins(table, learned)
        r["ranges"][scale] = dict(
            zip(table["variable"].values.tolist(), map(float, table["data_range"].values))
        )
        info = {}
        for name, row in rows.items():
            info[name] = {
                "seconds": row.seconds,
                "parameters": row.model.parameter_count(),
                "note": row.note,
                "improved": row.improved,
                "start": row.start,
            }
        r["row_info"][scale] = info
        log(f"x{scale}: scored; ablations")
        r["ablations"][scale] = ablations(rows, low, truth)
        for name in learned:
            m = r["margins"][scale][name]
            log(f"  x{scale} {name}: " + ", ".join(f"{v} {m[v][0]:+.2f}" for v in VARIABLES))
        if scale == 2 and not args.no_temporal:
            log("temporal experiment")
            r["temporal"] = temporal_experiment(train, low, truth, b, rows, log)
            for window, w in r["temporal"]["windows"].items():
                log(
                    f"  window {window} gain: "
                    + ", ".join(f"{v} {np.mean(w['gain'][v]):+.2f}" for v in VARIABLES)
                    + f"; holds {w['holds']}, vanishes {w['vanishes']}"
                )
    if args.ship:
        from xsr.models.pretrained import WEIGHTS_DIR

        weights_dir = Path(args.weights_dir) if args.weights_dir else WEIGHTS_DIR
        weights_dir.mkdir(parents=True, exist_ok=True)
        for name, (scale, row_name) in SHIPPED.items():
            if scale not in trained_all:
                continue
            path = ship(
                name,
                trained_all[scale][row_name],
                b,
                r["tables"][scale],
                row_name,
                r["margins"][scale][row_name],
                r["ablations"][scale].get(row_name),
                weights_dir,
                args.quick,
            )
            log(f"shipped {path}")
    if not args.weights_dir:
        from xsr.upscaling import best_pretrained

        r["defaults"] = {s: best_pretrained(s, VARIABLES) for s in args.scales}
    r["seconds"] = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_page(out / "results.md", r)
    summary = {
        "margins": {str(s): r["margins"][s] for s in r["margins"]},
        "temporal": {"windows": r["temporal"]["windows"], "holds": r["temporal"]["holds"]}
        if "temporal" in r
        else None,
    }
    print(json.dumps(summary, default=str), flush=True)
    log(f"wrote {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

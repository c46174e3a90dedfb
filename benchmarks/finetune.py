"""How long fine-tuning the universal x2 field model takes to settle on a real dataset.

``xsr.train.fit("field-xsrnet-x2", <train split>, keep_start=True, site=True)`` runs a fixed
number of epochs (no early stopping) on one cached public real dataset, then learns the grid's
site detail (timed apart: what follows the last epoch's callback); ``fit``'s callback records, after
every epoch, the wall time since ``fit`` was called and the validation PSNR (the last
``--val-fraction`` of the train split's frames, frame-normalised field, as ``fit`` reports it).
``fit`` stacks the dataset's variables (and members, levels) as samples of every patch: the
navy winds' patches hold ``uwnd`` and ``vwnd``, so the defaults (192 patches in batches of 8)
train on 384 single-field patches per epoch in batches of 16, the budget of
``scripts/real_data_report.py``.
The starting point's validation PSNR (epoch 0: the shipped network over its linear base, which
``fit`` first solves again in closed form on the training frames) is read from the run state
``fit`` writes to its checkpoint folder.

Printed: one line per epoch, then the best validation PSNR and its epoch, the start,
and the first epoch (and its wall time) whose validation PSNR is within ``--within`` dB (0.5)
of the best: how long fine-tuning takes to come within that of its best.

Usage::

    python benchmarks/finetune.py                               # navy winds, 2 threads
    python benchmarks/finetune.py --dataset iris-ostia-monthly --epochs 10
    python benchmarks/finetune.py --models /tmp/field            # other field-xsrnet-x2 weights

The real data must be cached (``python scripts/fetch_real_data.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xsr
from xsr.train import fit
from xsr.train.history import Checkpoint

MODEL = "field-xsrnet-x2"


def run(
    model: str,
    dataset: str,
    *,
    epochs: int,
    patches: int,
    patch_size: int,
    batch_size: int,
    lr: float,
    val_fraction: float,
    seed: int,
) -> dict[str, Any]:
    """Fine-tune once; the per-epoch validation PSNR and wall time, and the start's."""
    variables = list(xsr.data.real.REAL_DATASETS[dataset].variables)
    train = xsr.data.open_real(dataset, split="train")[variables].load()
    records: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="xsr-finetune-") as ck:
        start = time.perf_counter()

        def callback(epoch: int, record: dict[str, Any]) -> None:
            seconds = time.perf_counter() - start
            records.append((epoch, seconds, float(np.mean(record["val_psnr"]))))
            print(
                f"epoch {epoch:3d}  {seconds:7.1f} s  val PSNR {records[-1][2]:.3f} dB", flush=True
            )

        net, _ = fit(
            model,
            train,
            epochs=epochs,
            patches_per_epoch=patches,
            patch_size=patch_size,
            batch_size=batch_size,
            lr=lr,
            val_fraction=val_fraction,
            patience=None,
            keep_start=True,
            checkpoint=ck,
            seed=seed,
            progress=False,
            callback=callback,
            site=True,
        )
        total = time.perf_counter() - start
        start_record = Checkpoint(ck).load_last()[2].get("start_record") or {}
    zero_shot = float(np.mean(start_record["val_psnr"]))
    site = {v: d["shrinkage"] for v, d in net.card.site["variables"].items()}
    # fit learns the site detail after the last epoch: what follows its callback
    return {
        "records": records,
        "zero_shot": zero_shot,
        "total": total,
        "site_seconds": total - records[-1][1],
        "site": site,
    }


def settle(records: list[tuple[int, float, float]], zero_shot: float, within: float) -> dict:
    """The best validation PSNR (start included) and the first epoch within ``within`` dB of it.

    Examples
    --------
    >>> out = settle([(1, 10.0, 40.2), (2, 20.0, 40.9), (3, 30.0, 41.0)], 40.0, 0.5)
    >>> out["best"], out["best_epoch"], out["epoch"], out["seconds"]
    (41.0, 3, 2, 20.0)
    >>> settle([(1, 10.0, 39.0)], 40.0, 0.5)["epoch"]  # the start was the best
    0
    """
    points = [(0, 0.0, zero_shot), *records]
    best_epoch, _, best = max(points, key=lambda p: p[2])
    epoch, seconds, _ = next(p for p in points if p[2] >= best - within)
    return {"best": best, "best_epoch": best_epoch, "epoch": epoch, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help=f"folder holding {MODEL}")
    parser.add_argument("--dataset", default="navy-winds", help="a cached real dataset")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--patches", type=int, default=192, help="training patches per epoch")
    parser.add_argument("--patch-size", type=int, default=16, help="low-resolution cells")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--within", type=float, default=0.5, help="dB below the best")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = MODEL if args.models is None else str(args.models / MODEL)
    if args.models is None and MODEL not in xsr.models.pretrained.PRETRAINED:
        parser.error(f"{MODEL} is not shipped; give --models DIR holding a {MODEL} file")
    print(
        f"fine-tuning {model} on {args.dataset} (train split): {args.epochs} epochs x "
        f"{args.patches} patches of {args.patch_size} (batch {args.batch_size}, lr {args.lr}, "
        f"cosine), validation: the last {args.val_fraction:g} of the frames; "
        f"{args.threads} torch threads, {os.cpu_count()} cores, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}",
        flush=True,
    )
    out = run(
        model,
        args.dataset,
        epochs=args.epochs,
        patches=args.patches,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        seed=args.seed,
    )
    s = settle(out["records"], out["zero_shot"], args.within)
    print(
        f"start (epoch 0: the shipped network over its linear base, re-solved in closed form on "
        f"the training months): val PSNR {out['zero_shot']:.3f} dB"
    )
    print(f"best: val PSNR {s['best']:.3f} dB at epoch {s['best_epoch']}")
    when = (
        f"{s['seconds']:.1f} s after calling fit"
        if s["epoch"]
        else f"reached inside fit before epoch 1 ended ({out['records'][0][1]:.1f} s)"
    )
    print(
        f"within {args.within} dB of the best: epoch {s['epoch']}, {when} "
        f"({s['best'] - out['zero_shot']:+.2f} dB from the start to the best)"
    )
    print(
        f"site detail (fit(..., site=True), after the last epoch): {out['site_seconds']:.1f} s; "
        "shrinkage kept per variable: " + ", ".join(f"{v} {k:.2f}" for v, k in out["site"].items())
    )
    print(
        f"total: {out['total']:.1f} s for {args.epochs} epochs and the site detail; load average now "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score the classical baselines (and the shipped xsrnet models) on held-out generator runs.

The linear baseline (:func:`xsr.train.fit_linear`, 7 x 7 window) is fit on one generator run
(seed ``FIT_SEED``); every row is scored with :func:`xsr.metrics.score` on held-out runs (seed
``HELD_OUT_SEED``, which no fit uses): pooled-MSE PSNR per variable (primary), mean per-frame
PSNR, SSIM, MAE and the spectral score, frames before the generator's spin-up left out, periodic
dims wrapped. Degradation: ``coarsen`` (block mean), as the shipped shallow-water models use.

Usage::

    python scripts/baselines_report.py                    # x2 and x4, 128 x 128, shipped rows
    python scripts/baselines_report.py --ablation         # + the shipped models' temporal ablations
    python scripts/baselines_report.py --nx 64 --frames 12 --no-shipped   # a quick check

It uses the current default generator (:func:`xsr.data.shallow_water`). Where the generator does
not mark its doubly periodic grid yet, the ``period`` attribute (the domain length) is added
here, so that upscaling wraps and no metric sees reflected edges.
"""

from __future__ import annotations

import argparse
import time

import xarray as xr

import xsr
from xsr.degradation import degrade
from xsr.evaluation import baselines, margin_over_baselines, temporal_ablation
from xsr.metrics import format_table, score
from xsr.models.pretrained import PRETRAINED
from xsr.train.linear import fit_linear
from xsr.upscaling import upscale

VARIABLES = ["h", "u", "v", "vorticity", "tracer"]
#: The fit's run; the held-out runs' seed (no script trains on it).
FIT_SEED, HELD_OUT_SEED = 101, 7101


def generator_runs(nx: int, frames: int, seed: int, members: int | None) -> xr.Dataset:
    """Generator output with its periodic grid marked (the domain length as ``period``)."""
    ds = xsr.data.shallow_water(nx, nx, frames=frames, seed=seed, members=members)[VARIABLES]
    for dim in ("y", "x"):
        coord = ds[dim]
        if "period" not in coord.attrs:
            step = float(coord[1] - coord[0])
            ds[dim].attrs["period"] = step * ds.sizes[dim]
    return ds


def margins(table: xr.Dataset, model: str) -> str:
    """One line: ``model``'s pooled-PSNR margin over the strongest baseline, per variable."""
    m = margin_over_baselines(table, model)
    parts = [
        f"{v} {float(m['margin'].sel(variable=v)):+.2f} dB (vs {m['strongest'].sel(variable=v).item()})"
        for v in m["variable"].values
    ]
    return f"{model} over the strongest baseline: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nx", type=int, default=128, help="grid side (fine)")
    parser.add_argument("--frames", type=int, default=24, help="frames per run")
    parser.add_argument("--members", type=int, default=2, help="held-out runs")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--no-shipped", action="store_true", help="baselines only")
    parser.add_argument("--ablation", action="store_true", help="temporal ablations too")
    args = parser.parse_args()

    start = time.perf_counter()
    train = generator_runs(args.nx, args.frames, FIT_SEED, None)
    truth = generator_runs(args.nx, args.frames, HELD_OUT_SEED, args.members)
    print(
        f"fit: seed {FIT_SEED}, 1 run; held out: seed {HELD_OUT_SEED}, {args.members} runs; "
        f"{args.nx} x {args.nx}, {args.frames} frames each; degradation: coarsen"
    )
    for scale in args.scales:
        model = fit_linear(train, scale=scale, variables=VARIABLES, radius=3)
        low = degrade(truth, scale=scale)
        rows = baselines(low, scale=scale, linear=model)
        shipped = f"xsrnet-swe-x{scale}"
        if not args.no_shipped and shipped in PRETRAINED:
            rows[shipped] = upscale(low, shipped)
        table = score(rows, truth).compute()
        print(f"\n== x{scale} ==")
        print(format_table(table))
        if shipped in rows:
            print(margins(table, shipped))
            if args.ablation:
                print(format_table(temporal_ablation(shipped, low, truth).compute()))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""Grid-cell updates per second of the shallow-water step: xsr's fast path vs plain numpy.

All columns run the same forced steps of the default ``"turbulent"`` preset (C-grid, Sadourny
energy-conserving momentum, UP3 tracer, biharmonic hyperviscosity, tracer relaxation, SSP-RK3,
plus drawing each step's random ring forcing and the drag on the large scales) in float64 in this
one process, through the run driver ``xsr.data.swe.integrate`` that ``xsr.data.shallow_water``
uses: ``backend="numpy"`` is the plain-numpy reference (``step_numpy`` with the numpy forcing and
drag: ``np.roll`` stencils, single-threaded like all numpy element-wise code); the fast path is
``backend="torch", compile=True`` (the ``torch.compile``-d step, on a CPU by bands of rows, with
the forcing and the drag synthesised together by torch on the step's device); eager torch is
shown for information. A cell update is one full SSP-RK3 step of one grid cell. Each timed block
starts from the same state and yields two frames (the start and the end state, copied to the
host).

Timings are interleaved (numpy, eager, compiled with each thread count, then again, ``--repeats``
rounds) so that all columns see the same machine load, and each column reports its best round.
The compiled path is timed with every torch thread count in ``--threads`` (default 1 and 2, what
a 2-core machine offers) and the best is reported with the count that gave it.

Usage::

    python benchmarks/shallow_water.py                  # 256x256 and 1024x1024
    python benchmarks/shallow_water.py --sizes 256 --threads 2 --device cuda
"""

from __future__ import annotations

import os

# On a shared, oversubscribed machine OpenMP's default busy-waiting makes 2 torch threads many
# times slower than 1; passive waiting removes that (no effect on an idle machine, none on numpy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from xsr.data.swe import LargeScaleDrag, RingForcing, configure, initial_state, integrate


def _time_block(run_block: Callable[[int], None], steps: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    run_block(steps)
    sync()
    return time.perf_counter() - t0


def _forced_run(n: int) -> dict[str, Any]:
    """Arguments of :func:`integrate` for an ``n`` x ``n`` run of the default, forced preset."""
    cfg = configure(n, n)
    params = cfg.params
    s0 = initial_state(
        params,
        n,
        n,
        init=cfg.init,
        depth=cfg.depth,
        seed=0,
        froude=cfg.froude,
        wavenumber=cfg.forcing_wavenumber,
    )
    forcing = RingForcing(
        n,
        n,
        cfg.dx,
        cfg.dy,
        wavenumber=cfg.forcing_wavenumber,
        power=cfg.forcing_power,
        dt=cfg.dt,
        seed=0,
    )
    drag = LargeScaleDrag(n, n, cfg.dx, cfg.dy, rate=cfg.drag, wavenumber=cfg.drag_wavenumber)
    return {
        "state": s0,
        "params": params,
        "forcing": forcing,
        "tracer_ref": s0.hc / s0.h,
        "drag": drag,
    }


def _block(steps: int, *, run: dict[str, Any], **options: Any) -> None:
    """``steps`` forced steps of the driver (forcing, drag and tracer relaxation each step)."""
    for _ in integrate(frames=2, steps_per_frame=steps, **run, **options):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({1, min(2, os.cpu_count() or 1)})
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.0, help="per timing block")
    parser.add_argument("--repeats", type=int, default=4, help="interleaved rounds")
    args = parser.parse_args()
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def no_sync() -> None:
        return None

    print(
        f"forced shallow-water SSP-RK3 step (preset 'turbulent'), float64, torch {torch.__version__}, numpy {np.__version__}, "
        f"device {device}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )
    header = (
        f"{'grid':>11} {'numpy':>10} {'torch eager':>12} {'xsr compiled':>13} {'threads':>8} "
        f"{'ratio':>6} {'compile s':>10}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        run = _forced_run(n)
        cells = n * n
        blocks: dict[str, tuple[Callable[[int], None], Callable[[], None]]] = {
            "numpy": (functools.partial(_block, run=run, backend="numpy"), no_sync),
            "eager": (functools.partial(_block, run=run, backend="torch", device=device), sync),
            **{
                f"compiled/{t}": (
                    functools.partial(
                        _block, run=run, backend="torch", device=device, compile=True
                    ),
                    sync,
                )
                for t in args.threads
            },
        }
        fast_block = blocks[f"compiled/{max(args.threads)}"][0]

        torch.set_num_threads(max(args.threads))
        t0 = time.perf_counter()
        fast_block(1)  # compile (or fetch from inductor's on-disk cache)
        sync()
        warmup = time.perf_counter() - t0

        # steps per timing block, from one untimed step each
        steps = {}
        for name, (run_block, sync_fn) in blocks.items():
            if name.startswith("compiled/"):
                torch.set_num_threads(int(name.split("/")[1]))
            one = _time_block(run_block, 1, sync_fn)
            steps[name] = max(1, int(args.seconds / max(one, 1e-9)))
        best = dict.fromkeys(blocks, 0.0)
        for _ in range(args.repeats):
            for name, (run_block, sync_fn) in blocks.items():
                if name.startswith("compiled/"):
                    torch.set_num_threads(int(name.split("/")[1]))
                elif name == "eager":
                    torch.set_num_threads(max(args.threads))
                wall = _time_block(run_block, steps[name], sync_fn)
                best[name] = max(best[name], steps[name] * cells / wall)
        fast_name = max((k for k in best if k.startswith("compiled/")), key=best.__getitem__)
        fast, threads = best[fast_name], fast_name.split("/")[1]
        print(
            f"{n:>5}x{n:<5} {best['numpy'] / 1e6:>8.2f} M {best['eager'] / 1e6:>10.2f} M "
            f"{fast / 1e6:>11.2f} M {threads:>8} {fast / best['numpy']:>5.1f}x {warmup:>10.1f}"
        )
    print(
        "cell-updates/s = grid cells x SSP-RK3 steps / wall time (best of interleaved rounds); "
        "ratio = compiled / numpy; compile s = first compiled call (inductor caches on disk)"
    )


if __name__ == "__main__":
    main()

"""Grid-cell updates per second of the shallow-water step: xsr's fast path vs plain numpy.

Both run the same scheme (C-grid, Sadourny energy-conserving momentum, UP3 tracer, biharmonic
hyperviscosity, SSP-RK3) in float64 in this one process: ``step_numpy`` is the plain-numpy
reference (``np.roll`` stencils), the fast path is ``step_torch`` (periodic halo + slices) under
``torch.compile``; eager torch is shown for information. A cell update is one full SSP-RK3 step of
one grid cell. Each figure is the best of ``--repeats`` timings of ``--seconds`` worth of steps.

Usage::

    python benchmarks/shallow_water.py                  # 256x256 and 1024x1024, 2 torch threads
    python benchmarks/shallow_water.py --sizes 256 --threads 1 --device cuda
"""

from __future__ import annotations

import os

# On a shared, oversubscribed machine OpenMP's default busy-waiting makes 2 torch threads many
# times slower than 1; passive waiting removes that (no effect on an idle machine, none on numpy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from xsr.data.shallow_water import (
    SWParams,
    SWState,
    initial_state,
    max_stable_dt,
    speed_bound,
    step_numpy,
    step_torch,
)


def _rate(
    step: Callable[[SWState], SWState],
    state: SWState,
    cells: int,
    seconds: float,
    repeats: int,
    sync: Callable[[], None],
) -> float:
    """Best cell-updates/s over ``repeats`` timings of about ``seconds`` each."""
    state = step(state)  # warm-up (and compilation for the compiled path)
    sync()
    t0 = time.perf_counter()
    state = step(state)
    sync()
    n = max(1, int(seconds / max(time.perf_counter() - t0, 1e-9)))
    best = 0.0
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            state = step(state)
        sync()
        best = max(best, n * cells / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=2.0, help="per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-eager", action="store_true", help="skip the eager torch column")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(
        f"shallow-water step, float64, torch {torch.__version__}, {args.threads} torch thread(s), "
        f"device {device}, numpy {np.__version__}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )
    header = f"{'grid':>11} {'numpy':>12} {'torch eager':>12} {'xsr compiled':>13} {'ratio':>7} {'compile s':>10}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        params = SWParams(dx=50e3, dy=50e3, g=9.81, f0=1e-4, beta=0.0, nu4=2e13, dt=0.0)
        speed = speed_bound(9.81, 100.0, 0.2)
        params = params._replace(dt=0.7 * max_stable_dt(params, n, speed))
        s0 = initial_state(params, n, n, init="vortices", depth=100.0, amplitude=0.2, seed=0)
        ts0 = SWState(*(torch.as_tensor(a, device=device) for a in s0[:4]), step=0)
        cells = n * n

        def ref_step(s: SWState, p: SWParams = params) -> SWState:
            return step_numpy(s, p)

        def eager_step(s: SWState, p: SWParams = params) -> SWState:
            return step_torch(s, p)

        def fast_step(s: SWState, p: SWParams = params) -> SWState:
            return step_torch(s, p, compile=True)

        ref = _rate(ref_step, s0, cells, args.seconds, args.repeats, lambda: None)
        eager = float("nan")
        if not args.no_eager:
            eager = _rate(eager_step, ts0, cells, args.seconds, args.repeats, sync)
        t0 = time.perf_counter()
        fast_step(ts0)
        sync()
        warmup = time.perf_counter() - t0
        fast = _rate(fast_step, ts0, cells, args.seconds, args.repeats, sync)
        print(
            f"{n:>5}x{n:<5} {ref / 1e6:>10.2f} M {eager / 1e6:>10.2f} M {fast / 1e6:>11.2f} M "
            f"{fast / ref:>6.1f}x {warmup:>10.1f}"
        )
    print("cell-updates/s = (grid cells x SSP-RK3 steps) / wall time; ratio = compiled / numpy")


if __name__ == "__main__":
    main()

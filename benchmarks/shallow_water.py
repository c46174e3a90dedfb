"""Grid-cell updates per second of the shallow-water step: xsr's fast path vs plain numpy.

Both run the same forced step of the default ``"turbulent"`` preset (C-grid, Sadourny
energy-conserving momentum, UP3 tracer, biharmonic hyperviscosity, tracer relaxation, SSP-RK3,
plus drawing the step's random ring forcing and the drag on the large scales) in float64 in this
one process: ``step_numpy`` with the numpy forcing is the plain-numpy reference (``np.roll`` stencils,
single-threaded like all numpy element-wise code), the fast path is ``step_torch`` (periodic halo
+ slices) under ``torch.compile`` with the forcing computed by torch on the same device; eager
torch is shown for information. A cell update is one full SSP-RK3 step of one grid cell.

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
import time
from collections.abc import Callable

import numpy as np
import torch

from xsr.data.swe import (
    LargeScaleDrag,
    RingForcing,
    SWForcing,
    SWParams,
    SWState,
    configure,
    initial_state,
    step_numpy,
    step_torch,
)


def _time_steps(
    step: Callable[[SWState], SWState], state: SWState, steps: int, sync: Callable[[], None]
) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        state = step(state)
    sync()
    return time.perf_counter() - t0


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
        cfg = configure(n, n)  # the default, forced preset
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
        cref = s0.hc / s0.h
        ts0 = SWState(*(torch.as_tensor(a, device=device) for a in s0[:4]), step=0)
        tcref = torch.as_tensor(cref, device=device)
        cells = n * n

        def ref_step(
            s: SWState,
            p: SWParams = params,
            f: RingForcing = forcing,
            c: np.ndarray = cref,
            d: LargeScaleDrag = drag,
        ) -> SWState:
            (fu, fv), (du, dv) = f(s.step), d(s.u, s.v)
            return step_numpy(s, p, SWForcing(fu + du, fv + dv, c))

        def torch_forcing(
            s: SWState, f: RingForcing, c: torch.Tensor, d: LargeScaleDrag = drag
        ) -> SWForcing:
            (fu, fv), (du, dv) = f.torch_fields(s.step, s.h), d.torch_fields(s.u, s.v)
            return SWForcing(fu + du, fv + dv, c)

        def eager_step(
            s: SWState, p: SWParams = params, f: RingForcing = forcing, c: torch.Tensor = tcref
        ) -> SWState:
            return step_torch(s, p, torch_forcing(s, f, c))

        def fast_step(
            s: SWState, p: SWParams = params, f: RingForcing = forcing, c: torch.Tensor = tcref
        ) -> SWState:
            return step_torch(s, p, torch_forcing(s, f, c), compile=True)

        torch.set_num_threads(max(args.threads))
        t0 = time.perf_counter()
        fast_step(ts0)  # compile (or fetch from inductor's on-disk cache)
        sync()
        warmup = time.perf_counter() - t0

        # steps per timing block, from one untimed step each
        blocks: dict[str, tuple[Callable[[SWState], SWState], SWState, Callable[[], None]]] = {
            "numpy": (ref_step, s0, no_sync),
            "eager": (eager_step, ts0, sync),
            **{f"compiled/{t}": (fast_step, ts0, sync) for t in args.threads},
        }
        steps = {}
        for name, (step, state, sync_fn) in blocks.items():
            if name.startswith("compiled/"):
                torch.set_num_threads(int(name.split("/")[1]))
            one = _time_steps(step, state, 1, sync_fn)
            steps[name] = max(1, int(args.seconds / max(one, 1e-9)))
        best = dict.fromkeys(blocks, 0.0)
        for _ in range(args.repeats):
            for name, (step, state, sync_fn) in blocks.items():
                if name.startswith("compiled/"):
                    torch.set_num_threads(int(name.split("/")[1]))
                elif name == "eager":
                    torch.set_num_threads(max(args.threads))
                wall = _time_steps(step, state, steps[name], sync_fn)
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

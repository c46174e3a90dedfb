"""Throughput of ``ds.sr.upscale`` against the bare engine, a naive torch forward and interp.

For each model (FSRCNN x2 in the report's variant, the report's 3D network, xsr's own xsrnet)
on the same ``frames x size x size`` movie, in one run:

- ``naive``: an eager NCHW torch forward with autograd on (how a first script would do it:
  windows stacked with a Python loop for windowed models, one call per batch of frames);
- ``engine``: :func:`xsr.engine.infer` on the numpy array (inference mode, channels-last,
  batched, preallocated output);
- ``accessor``: ``ds.sr.upscale(model).compute()`` on a dask-chunked Dataset (time chunks of
  ``--chunk`` frames, threaded scheduler), which adds the time/space halos and labels;
- ``interp``: ``DataArray.interp(method="cubic")`` to the same fine grid (once).

Speeds are output megapixels per second (``frames * (2*size)**2 / seconds``), best of
``--repeat`` runs. The targets checked at the end: engine >= 3.5x naive, accessor >= 0.85x
engine, FSRCNN accessor >= 0.75x interp.

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/upscale.py            # the full 200 frames
    .venv/bin/python benchmarks/upscale.py --frames 16 --models fsrcnn  # a quick look
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault(
    "THP_MEM_ALLOC_ENABLE", "1"
)  # transparent huge pages for torch's CPU allocator

import dask
import numpy as np
import torch

import xsr.accessor  # noqa: F401  (registers .sr)
from xsr.engine import infer
from xsr.models import get_model
from xsr.testing import random_movie

MODELS = {
    "fsrcnn": {"arch": "fsrcnn", "scale": 2, "channels": 1, "variant": "report"},
    "srnet3d": {"arch": "srnet3d", "scale": 2, "channels": 1},
    "xsrnet": {"arch": "xsrnet", "scale": 2, "channels": 1},
}


def _best(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def naive_forward(model: torch.nn.Module, frames: np.ndarray, batch: int = 8) -> np.ndarray:
    """Eager NCHW forward with autograd on, windows built with a Python loop."""
    x = torch.from_numpy(frames)  # (T, H, W)
    w, tr = model.window, model.time_radius
    outs = []
    for t0 in range(tr, x.shape[0] - tr, batch):
        t1 = min(x.shape[0] - tr, t0 + batch)
        if w == 1:
            inp = x[t0:t1, None]
        else:
            inp = torch.stack([x[t - tr : t + tr + 1] for t in range(t0, t1)])[:, None]
        outs.append(model(inp).detach().numpy())
    return np.concatenate(outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=50, help="dask time chunk of the accessor")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--models", default="fsrcnn,srnet3d,xsrnet")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive forward")
    args = parser.parse_args()

    torch.manual_seed(0)
    ds = random_movie(args.frames, args.size, args.size)
    frames = np.ascontiguousarray(ds["h"].values)
    out_px = args.frames * (2 * args.size) ** 2
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}; "
        f"{args.frames} frames {args.size}x{args.size} -> x2; best of {args.repeat}"
    )

    da = ds["h"]
    fine = ds.sr.upscale("bicubic", scale=2)
    t_interp = _best(
        lambda: da.interp(y=fine["y"], x=fine["x"], method="cubic", kwargs={"fill_value": None}),
        args.repeat,
    )
    mpx_interp = out_px / t_interp / 1e6
    print(f"{'interp(cubic)':>22}: {mpx_interp:8.2f} Mpx/s")

    rows = []
    for name in args.models.split(","):
        cfg = dict(MODELS[name])
        model = get_model(cfg.pop("arch"), **cfg).eval()
        tr = model.time_radius
        n_out = (args.frames - 2 * tr) * (2 * args.size) ** 2
        if args.skip_naive:
            mpx_naive = float("nan")
        else:
            t_naive = _best(lambda m=model: naive_forward(m, frames), 1)
            mpx_naive = n_out / t_naive / 1e6
        t_engine = _best(lambda m=model: infer(m, frames[None, None]), args.repeat)
        mpx_engine = n_out / t_engine / 1e6
        chunked = ds.chunk({"time": args.chunk})
        with dask.config.set(scheduler="threads"):
            t_acc = _best(lambda m=model, c=chunked: c.sr.upscale(m).compute(), args.repeat)
        mpx_acc = out_px / t_acc / 1e6
        rows.append((name, mpx_naive, mpx_engine, mpx_acc))
        print(
            f"{name:>22}: naive {mpx_naive:7.2f}  engine {mpx_engine:7.2f}  "
            f"accessor {mpx_acc:7.2f} Mpx/s  |  engine/naive {mpx_engine / mpx_naive:5.2f}x  "
            f"accessor/engine {mpx_acc / mpx_engine:5.2f}x  accessor/interp "
            f"{mpx_acc / mpx_interp:5.2f}x",
            flush=True,
        )

    print("\ntargets:")
    for name, naive, eng, acc in rows:
        print(f"  {name}: engine >= 3.5x naive: {eng / naive >= 3.5} ({eng / naive:.2f}x)")
        print(f"  {name}: accessor >= 0.85x engine: {acc / eng >= 0.85} ({acc / eng:.2f}x)")
        if name == "fsrcnn":
            ok = acc / mpx_interp >= 0.75
            print(f"  {name}: accessor >= 0.75x interp(cubic): {ok} ({acc / mpx_interp:.2f}x)")


if __name__ == "__main__":
    main()

"""Benchmark: streaming archives of growing length from Zarr to Zarr with bounded memory.

For each length (200 and 2,000 frames of 256 x 256 by default) a fresh subprocess writes a
low-resolution input store, and another fresh subprocess streams it through
``xsr.archive.upscale_to_zarr(..., model="bicubic", scale=2)`` into an output store, region by
region, as ``xsr upscale`` runs it: the input opened with ``xsr.io.open_dataset`` (so its content
is fingerprinted and checked before each region is marked), the store locked, a checksum recorded
per region. The peak resident memory of the streaming process (``ru_maxrss`` of that child alone,
from ``os.wait4``) must not grow with the archive's length (at most 1.2x from the shortest to the
longest run), and the time per frame must not grow either (time no worse than linear).

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/archive.py            # 200 and 2000 frames
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/archive.py --quick    # 20 and 200 of 64x64

It prints one row per length and the ratios, and exits with status 1 if a bound is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKE_INPUT = r"""
import sys
import dask.array as da
import numpy as np
import xarray as xr

path, frames, size, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
y = (np.arange(size) + 0.5) * 1000.0
x = (np.arange(size) + 0.5) * 1000.0
empty = da.zeros((frames, size, size), chunks=(chunk, size, size), dtype="float32")
template = xr.Dataset(
    {"h": (("time", "y", "x"), empty, {"units": "m", "long_name": "surface height"})},
    coords={
        "time": ("time", np.arange(frames) * 60.0, {"units": "s"}),
        "y": ("y", y, {"units": "m"}),
        "x": ("x", x, {"units": "m"}),
    },
)
template.to_zarr(path, mode="w", compute=False, consolidated=False)
yy, xx = np.meshgrid(y / y[-1], x / x[-1], indexing="ij")
rng = np.random.default_rng(0)
for start in range(0, frames, chunk):
    t = np.arange(start, min(start + chunk, frames))[:, None, None]
    waves = np.sin(2 * np.pi * (3 * xx + 0.01 * t)) * np.cos(2 * np.pi * (2 * yy - 0.007 * t))
    block = (waves + 0.05 * rng.standard_normal(waves.shape)).astype("float32")
    part = xr.Dataset({"h": (("time", "y", "x"), block)})
    region = {"time": slice(start, start + block.shape[0])}
    part.to_zarr(path, region=region, mode="r+", consolidated=False)
"""

STREAM = r"""
import json, resource, sys, time
from xsr.archive import upscale_to_zarr
from xsr.io import open_dataset

src, dst, scale, region = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ds = open_dataset(src, consolidated=False)  # as `xsr upscale` opens it: the input fingerprinted
start = time.perf_counter()
out = upscale_to_zarr(ds, dst, model="bicubic", scale=scale, region_size=region, progress=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "shape": list(out["h"].shape),
                  "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _run_child(code: str, args: list[str]) -> tuple[str, float]:
    """Run ``code`` in a fresh interpreter; return its stdout and its peak RSS in MiB.

    The peak is ``ru_maxrss`` of that child alone, from ``os.wait4`` (``RUSAGE_CHILDREN`` would
    be the maximum over every child reaped so far).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=err
        )
        stdout = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"child failed ({proc.returncode}):\n{err.read().decode()}")
    return stdout.decode(), usage.ru_maxrss / 1024  # kilobytes on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--size", type=int, default=256, help="low-resolution frame size")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--region-size", type=int, default=20, help="frames per region")
    parser.add_argument("--quick", action="store_true", help="20 and 200 frames of 64 x 64")
    parser.add_argument("--workdir", default=None, help="folder for the stores (default: tmp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.size = [20, 200], 64

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="xsr-bench-archive-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for frames in args.frames:
            src = workdir / f"in-{frames}.zarr"
            dst = workdir / f"out-{frames}.zarr"
            for path in (src, dst):
                shutil.rmtree(path, ignore_errors=True)
            _run_child(MAKE_INPUT, [str(src), str(frames), str(args.size), str(args.region_size)])
            wall = time.perf_counter()
            out, peak_mib = _run_child(
                STREAM, [str(src), str(dst), str(args.scale), str(args.region_size)]
            )
            wall = time.perf_counter() - wall
            result = json.loads(out.strip().splitlines()[-1])
            rows.append(
                {
                    "frames": frames,
                    "seconds": result["seconds"],
                    "process_seconds": wall,
                    "peak_rss_mib": peak_mib,
                    "self_peak_rss_mib": result["self_maxrss_kib"] / 1024,
                    "shape": result["shape"],
                }
            )
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(dst, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"xsr.archive streaming benchmark: {args.size}x{args.size} -> x{args.scale} bicubic, "
        f"region {args.region_size} frames, Zarr -> Zarr, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs"
    )
    print(f"{'frames':>8} {'write s':>9} {'ms/frame':>9} {'process s':>10} {'peak RSS MiB':>13}")
    for row in rows:
        print(
            f"{row['frames']:>8} {row['seconds']:>9.2f} "
            f"{1000 * row['seconds'] / row['frames']:>9.2f} {row['process_seconds']:>10.2f} "
            f"{row['peak_rss_mib']:>13.1f}"
        )
    first, last = rows[0], rows[-1]
    memory_ratio = last["peak_rss_mib"] / first["peak_rss_mib"]
    length_ratio = last["frames"] / first["frames"]
    time_ratio = last["seconds"] / first["seconds"]
    per_frame_ratio = time_ratio / length_ratio
    memory_ok = memory_ratio <= 1.2
    # "No worse than linear": the time per frame of the long run may not exceed the short
    # run's (20% allowance for noise on a shared machine; fixed start-up costs only help).
    time_ok = per_frame_ratio <= 1.2
    print(
        f"peak RSS ratio {last['frames']}/{first['frames']} frames: {memory_ratio:.3f} "
        f"(bound 1.2: {'ok' if memory_ok else 'BROKEN'})"
    )
    print(
        f"time ratio: {time_ratio:.2f} for {length_ratio:.0f}x the frames; time per frame ratio "
        f"{per_frame_ratio:.3f} (bound 1.2: {'ok' if time_ok else 'BROKEN'})"
    )
    return 0 if memory_ok and time_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Upscale an archive: Zarr in, dask chunks, a resumable Zarr write, optionally on a cluster.

Writes a chunked Zarr "archive" from the built-in generator, then streams its x2 super-resolution
into another Zarr store region by region with :func:`xsr.upscale_to_zarr` (bounded memory, a
progress bar). Run it twice: the second run finds the store finished and refuses to overwrite it;
kill it half-way and run it again, and it computes only the missing regions::

    python examples/archive_run.py [WORK_DIR] [--model NAME] [--cluster] [--quick]

``--cluster`` runs the same call on a ``dask.distributed.LocalCluster`` (2 workers, 1 thread
each); on an HPC system, start a ``dask_jobqueue`` cluster instead and nothing else changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import xarray as xr

import xsr
from xsr.archive import store_status


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    model = argv[argv.index("--model") + 1] if "--model" in argv else "bicubic"
    work = Path(
        next(
            (
                a
                for i, a in enumerate(argv)
                if not a.startswith("--") and (i == 0 or argv[i - 1] != "--model")
            ),
            "examples-out",
        )
    )
    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive.zarr"
    if not archive.exists():
        n, frames = (32, 12) if quick else (128, 96)
        run = xsr.data.shallow_water(n, n, frames=frames, seed=21, progress=True)
        low = xsr.degrade(run.astype("float32"), scale=2)
        low.chunk({"time": 4 if quick else 24}).to_zarr(archive, mode="w")
    ds = xr.open_zarr(archive)
    print(ds)

    client = None
    if "--cluster" in argv:
        from dask.distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
        print(client)
    out = work / f"archive_x2_{model}.zarr"
    kwargs = {"model": model, "overwrite": True}
    if model == "bicubic":
        kwargs["scale"] = 2
    hi = xsr.upscale_to_zarr(ds, out, **kwargs)
    print(hi)
    print({k: v for k, v in store_status(out).items() if k in ("n_regions", "finished")})
    if client is not None:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

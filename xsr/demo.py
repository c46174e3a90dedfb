"""The main job (``xsr demo`` / ``make demo``): simulate, degrade, upscale, evaluate, write, plot.

On built-in data only: a held-out shallow-water run (a seed no training script uses, the
default turbulent preset the shipped weights were trained on) is degraded by block means at x2
and x4, upscaled with bicubic interpolation and with every shipped
model of that scale (xsr's own model also with ``conserve=True``), and scored per frame with
:func:`xsr.metrics.compare`. The best x2 result is streamed to a Zarr store with
:func:`xsr.upscale_to_zarr`, and a comparison figure is saved.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import xarray as xr

from xsr.archive import upscale_to_zarr
from xsr.data import shallow_water
from xsr.degradation import degrade
from xsr.metrics import compare, format_table
from xsr.upscaling import upscale

#: Generator seed of the demo's held-out run (never used for training).
DEMO_SEED = 424242


def _shipped_for(scale: int, variables: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Shipped models of ``scale`` whose variables all exist in the data, best card PSNR first."""
    from xsr.models.pretrained import list_pretrained

    found = []
    for name, summary in list_pretrained().items():
        names = [v["name"] if isinstance(v, dict) else v for v in summary.get("variables", [])]
        if summary.get("scale") == scale and names and set(names) <= set(variables):
            found.append((name, summary))
    return sorted(found, key=lambda item: -float((item[1].get("metrics") or {}).get("psnr", 0)))


def run_demo(
    output_dir: str | Path = "xsr-demo-output",
    *,
    quick: bool = False,
    scales: tuple[int, ...] = (2, 4),
    seed: int = DEMO_SEED,
) -> dict[int, xr.Dataset]:
    """Run the demo and print what it did and where its outputs are.

    Parameters
    ----------
    output_dir : str or path, default "xsr-demo-output"
        Folder for the Zarr store and the figure (created).
    quick : bool, default False
        Small sizes (64 x 64, 12 frames) for smoke tests.
    scales : tuple of int, default (2, 4)
        Upscaling factors to evaluate.
    seed : int
        Seed of the held-out simulation.

    Returns
    -------
    dict
        ``scale -> metrics table`` (the Dataset of :func:`xsr.metrics.compare`, per frame).

    Examples
    --------
    >>> tables = run_demo("/tmp/xsr-demo", quick=True)  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    n, frames = (64, 12) if quick else (128, 40)
    print(
        f"[xsr demo] simulating a held-out shallow-water run ({n}x{n}, {frames} frames, "
        f"seed {seed}) ...",
        flush=True,
    )
    # The shipped shallow-water weights were trained on the default (turbulent) preset.
    truth = shallow_water(n, n, frames=frames, seed=seed, progress=True).astype("float32")
    variables = [str(v) for v in truth.data_vars]
    # The generator's x and y carry their period (a doubly periodic domain), and degrade keeps
    # it: upscale wraps both axes by itself (no artificial edges).
    tables: dict[int, xr.Dataset] = {}
    best: dict[int, tuple[str, dict[str, Any]]] = {}
    for scale in scales:
        low = degrade(truth, scale=scale, method="coarsen").persist()
        candidates: dict[str, xr.Dataset] = {
            "bicubic": upscale(low, "bicubic", scale=scale),
        }
        shipped = _shipped_for(scale, variables)
        for name, summary in shipped:
            names = [v["name"] if isinstance(v, dict) else v for v in summary["variables"]]
            candidates[name] = upscale(low[names], name)
            if summary.get("arch") == "xsrnet":
                candidates[f"{name}+conserve"] = upscale(low[names], name, conserve=True)
        if shipped:
            best[scale] = shipped[0]
        # Score the variables every candidate has.
        common = set(variables)
        for cand in candidates.values():
            common &= set(map(str, cand.data_vars))
        keep = [v for v in variables if v in common]
        table = compare(truth[keep], **{k: v[keep] for k, v in candidates.items()}).compute()
        tables[scale] = table
        print(
            f"\n[xsr demo] x{scale}: held-out frames, block-mean degradation "
            f"({len(candidates)} candidates, variables {', '.join(keep)})"
        )
        print(format_table(table))
        if not shipped:
            print(f"(no shipped model for x{scale} yet: only interpolation is shown)")

    scale = scales[0]
    low = degrade(truth, scale=scale, method="coarsen")
    if scale in best:
        name, summary = best[scale]
        names = [v["name"] if isinstance(v, dict) else v for v in summary["variables"]]
        store = out / f"upscaled_x{scale}_{name}.zarr"
        result = upscale_to_zarr(low[names], store, model=name, overwrite=True)
        label = name
    else:
        store = out / f"upscaled_x{scale}_bicubic.zarr"
        result = upscale_to_zarr(low, store, model="bicubic", scale=scale, overwrite=True)
        label = "bicubic"
    print(f"\n[xsr demo] wrote the x{scale} {label} result to {store}")

    figure = out / f"compare_x{scale}.png"
    _figure(result, truth, low, tables[scale], label=label, variable="h", path=figure)
    print(f"[xsr demo] saved the comparison figure to {figure}")
    print(f"[xsr demo] done in {time.perf_counter() - t0:.0f} s; outputs in {out.resolve()}")
    return tables


def _figure(
    result: xr.Dataset,
    truth: xr.Dataset,
    low: xr.Dataset,
    table: xr.Dataset,
    *,
    label: str,
    variable: str,
    path: Path,
) -> None:
    """Panels for one frame above the per-frame PSNR curves, in one PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from xsr.plot import plot_compare, plot_psnr_over_time

    fig = plt.figure(figsize=(17, 7.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    axes_top = top.subplots(1, 5)
    frame = result.sizes["time"] // 2
    plot_compare(
        result[variable],
        truth[variable],
        lowres=low[variable],
        time=frame,
        label=label,
        baseline=False if label == "bicubic" else None,
        ax=axes_top[: 4 if label == "bicubic" else 5],
    )
    if label == "bicubic":
        axes_top[4].set_visible(False)
    ax = bottom.subplots(1, 1)
    plot_psnr_over_time(table, variable=variable, ax=ax)
    fig.savefig(path, dpi=110)
    plt.close(fig)

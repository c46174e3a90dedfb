"""Train universal field models (``kind: "field"``): one scalar field in, the same field out.

A field model is applied to every data variable independently and normalised by each frame's
own statistics at inference (``xsr.engine.infer(normalisation="frame")``), so it must be trained
on frames normalised the same way. The corpus:

- the shallow-water generator's variables (h, u, v, vorticity, tracer) in each of its regimes
  (``xsr.data.swe.PRESETS``: forced turbulence in several settings, and the smooth
  decaying vortices);
- natural greyscale photographs (``xsr.train.natural_images``, needs scikit-image);
- phantom movies (``xsr.data.phantom_movie``);
- the TRAIN splits of the public real datasets in the local cache (``xsr.data.open_real``;
  fetch them first with ``python scripts/fetch_real_data.py``); their test splits are never
  read here.

Every variable of every source becomes frames of one scalar field, and each frame is normalised
by the mean and standard deviation of its block-mean (``coarsen``) low-resolution version
(:func:`xsr.train.field.frame_normalised`), exactly as inference normalises the low-resolution
input, so a crop keeps the amplitude it has within its frame (a calm region stays calm). Every
source gives the same number of squares without NaN cells (a source too small for one gives
none), so that the large grids do not dominate; a recipe with ``"overhang"`` lets a square's
halo of context reach past its frame's edges, mirrored as the engine pads a grid at inference,
and lets land-masked cells in (``fit`` masks them), so that small and masked grids count too.
The A1B and E1 temperature runs share their history, so only A1B is read. Crops are shuffled
(so that ``fit``'s validation split, the last fraction of frames, samples every source) and
trained with ``xsr.train.fit`` with flips and quarter turns as augmentation (a scalar field has
the grid's full symmetry). The card is written with ``kind="field"``.

Usage::

    python scripts/train_field_models.py field-xsrnet-x2 field-xsrnet-x4   # the shipped ones
    python scripts/train_field_models.py --quick --out /tmp/field            # tiny: checks it runs
    python scripts/train_field_models.py field-xsrnet-x2 --rescore  # only the cards' held-out scores

``--quick`` trains for seconds on a small corpus and writes to ``--out`` (never ship its
weights). After training, each card gets the model's held-out score on the shallow-water
models' held-out runs (``scripts/results_report.py``'s), which ``best_pretrained`` compares with
the specialised models' cards; ``--rescore`` redoes only that. Without ``--out`` the models go to ``xsr/models/weights``; add the names to
``xsr.models.pretrained.PRETRAINED`` to ship them, and they become the default of
``ds.sr.upscale(scale=...)`` for every variable (see docs/how-to/choose-model.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import xsr
from xsr.degradation import degrade
from xsr.metrics import score
from xsr.models.files import save_model
from xsr.models.pretrained import WEIGHTS_DIR
from xsr.train import fit
from xsr.train.field import FIELD, FIELD_ATTRS, frame_normalised

FIELD_VARIABLE = {"name": FIELD, **FIELD_ATTRS}
#: Real datasets left out of the corpus because another one holds the same frames (the A1B and
#: E1 runs share their 1860-1999 history).
DUPLICATES = ("iris-e1-air-temperature",)
SEED = 20261203

# name -> recipe. Training runs in stages, each from the previous stage's weights: the first on
# a corpus with an equal share per source, the next ones with each real dataset's train split
# given ``real_share`` shares and every other source ``other_share`` (default 1), at a lower
# learning rate, so that the model leans towards real fields (the shipped models end on the
# real train splits alone: over a linear base, detail learnt on the generator's and the
# photographs' fields did not carry over to the real ones). --quick runs every stage at a tiny
# budget.
RECIPES: dict[str, dict[str, Any]] = {
    # not shipped since field-xsrnet-x2: the report variant's layout with 24 features, which
    # scored +0.76 dB over bicubic on the real datasets' held-out mean (real_data_report.py's
    # page at commit 80f83a3; field-xsrnet-x2's is in docs/explanation/real-data-results.md)
    # and ran at 0.71x cubic interpolation (docs/benchmarks.md)
    "field-fsrcnn-x2": {
        "arch": "fsrcnn",
        "scale": 2,
        "config": {"variant": "report", "d": 24, "residual": True},
        "stages": [
            {"epochs": 30, "patches": 2048, "lr": 1e-3, "real_share": 1},
            {"epochs": 16, "patches": 4096, "lr": 3e-4, "real_share": 3},
        ],
    },
    # x2: xsr's network over a learned linear base (solved in closed form by fit, so the
    # network learns only what the best linear filter misses), kept small for the speed bar
    # (no slower than cubic interpolation: benchmarks/upscale.py --universal)
    "field-xsrnet-x2": {
        "arch": "xsrnet",
        "scale": 2,
        "config": {"window": 1, "features": 16, "blocks": 1, "base": "linear"},
        "stages": [
            {"epochs": 40, "patches": 4096, "lr": 1e-3, "real_share": 1},
            {"epochs": 16, "patches": 4096, "lr": 3e-4, "real_share": 1, "other_share": 0},
        ],
    },
    # not shipped: field-xsrnet-x4's earlier recipe (over bicubic) already beat it on every
    # real dataset's held-out part
    "field-fsrcnn-x4": {
        "arch": "fsrcnn",
        "scale": 4,
        "config": {"variant": "report", "d": 32, "residual": True},
        "stages": [
            {"epochs": 30, "patches": 2048, "lr": 1e-3, "real_share": 1},
            {"epochs": 8, "patches": 2048, "lr": 3e-4, "real_share": 3},
        ],
    },
    # x4 has no speed bar: xsr's own network (single frame, its default size) over a learned
    # linear base, as x2, ending on the real train splits alone. Its receptive radius (8
    # coarse cells) would need 88 x 88 crops, larger than several real grids, so it trains
    # with a halo of 4 (the edge cells of a core see zero padding beyond it during training
    # only) and patches of 4; the halo may overhang a frame's edges (mirrored, as the engine
    # pads at inference), so the small A1B and OSTIA grids and the land-masked COADS one give
    # crops too
    "field-xsrnet-x4": {
        "arch": "xsrnet",
        "scale": 4,
        "halo": 4,
        "patch": 4,
        "overhang": True,
        "config": {"window": 1, "base": "linear"},
        "stages": [
            {"epochs": 40, "patches": 8192, "lr": 1e-3, "real_share": 1},
            {"epochs": 16, "patches": 4096, "lr": 3e-4, "real_share": 1, "other_share": 0},
        ],
    },
}


def _spatial(da: xr.DataArray) -> tuple[str, str] | None:
    """The last two dims, if both are longer than 1 (a frame)."""
    if da.ndim < 2 or min(da.shape[-2:]) < 2:
        return None
    return str(da.dims[-2]), str(da.dims[-1])


def _normalised_frames(ds: xr.Dataset, scale: int) -> list[np.ndarray]:
    """Every numeric variable as ``(frames, y, x)`` float32, each frame normalised as inference will.

    :func:`xsr.train.field.frame_normalised` divides each frame by the statistics of its
    block-mean (``coarsen``) low-resolution version, the frame the engine normalises at
    inference; the grid is cut to a multiple of ``scale`` first.
    """
    out = []
    for da in ds.data_vars.values():
        if not np.issubdtype(da.dtype, np.number) or _spatial(da) is None:
            continue
        y, x = _spatial(da)
        da = da.isel({y: slice(0, da.sizes[y] // scale * scale)})
        da = da.isel({x: slice(0, da.sizes[x] // scale * scale)})
        da = da.astype("float64").load()
        z = frame_normalised(da, degrade(da, scale=scale, dims=(y, x)), (y, x))
        z = z.transpose(..., y, x)
        out.append(z.values.reshape(-1, z.shape[-2], z.shape[-1]))
    return out


def _mirror(start: int, size: int, n: int) -> np.ndarray:
    """Indices ``start .. start + size - 1`` of an axis of length ``n`` mirrored past its ends.

    numpy's ``symmetric`` padding (the edge cell repeated), as the inference engine pads a
    grid's edges; valid for an overhang of at most ``n`` cells.

    Examples
    --------
    >>> _mirror(-2, 6, 3).tolist()
    [1, 0, 0, 1, 2, 2]
    """
    i = np.arange(start, start + size)
    return np.where(i < 0, -i - 1, np.where(i >= n, 2 * n - i - 1, i))


def _crops(
    stacks: list[np.ndarray],
    size: int,
    count: int,
    rng: np.random.Generator,
    overhang: int = 0,
    align: int = 1,
) -> list[np.ndarray]:
    """``count`` random ``size`` squares from random frames of random variables.

    Without ``overhang`` a square lies inside its frame and has no NaN. With it, a square may
    reach ``overhang`` cells past the frame's edges, mirrored there as the engine pads a grid
    at inference, so a frame only needs to hold the square's centre (``size - 2 * overhang``,
    the patch whose output is trained); the centre must then be at least half finite, and
    NaN cells (land) stay NaN (``fit`` masks them). Corners are multiples of ``align`` cells
    from the frame's origin (the scale, so that block means of the mirrored cells are the
    mirrored block means).
    """
    inner = size - 2 * overhang
    usable = [f for f in stacks if min(f.shape[-2:]) >= max(inner, overhang)]
    out: list[np.ndarray] = []
    for _ in range(20 * count):  # tries: masked fields (land) reject some positions
        if not usable or len(out) == count:
            break
        frames = usable[rng.integers(len(usable))]
        t = rng.integers(frames.shape[0])
        if not overhang:
            y0 = rng.integers(frames.shape[1] - size + 1)
            x0 = rng.integers(frames.shape[2] - size + 1)
            crop = frames[t, y0 : y0 + size, x0 : x0 + size]
            if np.all(np.isfinite(crop)):
                out.append(crop)
            continue
        y0 = align * rng.integers((frames.shape[1] - inner) // align + 1)
        x0 = align * rng.integers((frames.shape[2] - inner) // align + 1)
        core = frames[t, y0 : y0 + inner, x0 : x0 + inner]
        if np.isfinite(core).mean() >= 0.5:
            rows = _mirror(y0 - overhang, size, frames.shape[1])
            cols = _mirror(x0 - overhang, size, frames.shape[2])
            out.append(frames[t][np.ix_(rows, cols)])
    return out


def sources(quick: bool) -> dict[str, xr.Dataset]:
    """The corpus' source datasets (train data only)."""
    out: dict[str, xr.Dataset] = {}
    n, frames = (48, 12) if quick else (128, 60)
    from xsr.data.swe import PRESETS

    for k, preset in enumerate(PRESETS):
        out[f"swe-{preset}"] = xsr.data.shallow_water(
            n, n, preset=preset, frames=frames, seed=900 + k, dtype="float32"
        )
    out["phantom"] = xsr.data.phantom_movie(n, n, frames=frames, seed=901)
    try:
        out["natural"] = xsr.train.natural_images(n=16 if quick else 512, patch_size=64, seed=902)
    except ImportError as err:  # scikit-image is an optional extra
        print(f"natural images skipped: {err}", file=sys.stderr)
    for entry in xsr.data.list_real():
        if entry.get("cached") and entry["name"] not in DUPLICATES:
            out[f"real-{entry['name']}"] = xsr.data.open_real(entry["name"], split="train")
    return out


def corpus(
    frames: dict[str, list[np.ndarray]],
    crop: int,
    quick: bool,
    real_share: int,
    seed: int,
    other_share: int = 1,
    overhang: int = 0,
    align: int = 1,
) -> tuple[xr.Dataset, dict]:
    """The shuffled corpus of frame-normalised crops, as one ``field`` variable.

    Every source gives the same number of crops times its share: ``real_share`` for a real
    dataset, ``other_share`` for the others (sources too small for a crop give none), so that
    no source dominates by its size. ``overhang`` and ``align`` are :func:`_crops`'.
    """
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    counts: dict[str, int] = {}
    per_source = 64 if quick else 3000
    for name, stacks in frames.items():
        share = real_share if name.startswith("real-") else other_share
        got = _crops(stacks, crop, per_source * share, rng, overhang, align)
        crops.extend(got)
        counts[name] = len(got)
    if not crops:
        raise SystemExit(
            f"the corpus is empty (crops per source: {counts}); a stage with other_share=0 "
            "trains on the real datasets' train splits alone: fetch them first with "
            f"`{xsr.data.real.FETCH_COMMAND}`"
        )
    data = np.stack(crops)[rng.permutation(len(crops))]
    ds = xr.Dataset(
        {"field": (("time", "y", "x"), data, dict(FIELD_ATTRS))},
        attrs={"title": "xsr field-model corpus (frame-normalised crops)", "seed": seed},
    )
    return ds, counts


def train(name: str, recipe: dict[str, Any], out_dir: Path, quick: bool) -> Path:
    """Train one field model, stage by stage, and write it with a ``kind="field"`` card.

    Each finished stage is written as ``NAME-stageK`` in ``out_dir``; a stage whose file is
    already there (from an interrupted or earlier run with the same recipe) is loaded, not
    trained again.
    """
    scale, config = recipe["scale"], recipe.get("config", {})
    halo = (
        recipe.get("halo")
        or xsr.models.get_model(recipe["arch"], scale=scale, **config).receptive_radius
    )
    # low-resolution cells; a crop is one patch with its halo
    patch = recipe.get("patch", 8 if scale <= 2 else 6)
    crop = scale * (patch + 2 * halo)
    # "overhang": the halo may reach past a frame's edges (mirrored, as at inference), so grids
    # that hold a patch but not its halo (small regional and masked real grids) give crops too
    overhang = scale * halo if recipe.get("overhang") else 0
    frames = {k: _normalised_frames(ds, scale) for k, ds in sources(quick).items()}
    model, stages = None, []
    for k, stage in enumerate(recipe["stages"], start=1):
        ds, counts = corpus(
            frames, crop, quick, stage["real_share"], SEED + k - 1, stage.get("other_share", 1),
            overhang=overhang, align=scale if overhang else 1,
        )  # fmt: skip
        print(f"{name} stage {k}: {ds.sizes['time']} crops of {crop}x{crop}: {counts}", flush=True)
        stage_path = out_dir / f"{name}-stage{k}"
        start = time.perf_counter()
        if stage_path.with_suffix(".safetensors").exists() and not quick:
            model = xsr.models.load_model(stage_path)
            print(f"{name} stage {k}: loaded {stage_path} (already trained)", flush=True)
        else:
            model = _fit_stage(recipe, stage, ds, model, patch, halo, quick)
            save_model(model, stage_path, name=f"{name}-stage{k}", kind="field",
                       variables=[FIELD_VARIABLE])  # fmt: skip
        done = model.card.training  # a loaded stage keeps its own training time
        seconds = done.get("stage_seconds", done.get("train_seconds", time.perf_counter() - start))
        model.card.training["stage_seconds"] = round(seconds, 1)
        stages.append({**stage, "corpus_crops": counts, "train_seconds": round(seconds, 1)})
    training = dict(model.card.training)
    training.update(
        {
            "script": "scripts/train_field_models.py",
            "recipe": {k: v for k, v in recipe.items() if k != "stages"},
            "stages": stages,
            "quick": quick,
            "crop": crop,
            "normalised": "each frame by the mean and std of its coarsened version",
            "train_seconds": round(sum(s["train_seconds"] for s in stages), 1),
        }
    )
    path = save_model(
        model,
        out_dir / name,
        name=name,
        kind="field",
        variables=[FIELD_VARIABLE],
        training=training,
        description=(
            f"{recipe['arch']} x{scale} field model: any scalar field, normalised per frame; "
            "trained by scripts/train_field_models.py on generator, phantom, natural-image and "
            "real (train split) fields." + (" QUICK RUN: not for use." if quick else "")
        ),
    )
    print(f"{name}: {training['train_seconds']:.0f} s -> {path}", flush=True)
    return path


def _fit_stage(
    recipe: dict[str, Any],
    stage: dict[str, Any],
    ds: xr.Dataset,
    start: Any,
    patch: int,
    halo: int,
    quick: bool,
) -> Any:
    """One stage of ``fit`` on the corpus ``ds``, from ``start``'s weights when given."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        model, history = fit(
            recipe["arch"],
            ds,
            variables=["field"],
            scale=recipe["scale"],
            degrade="coarsen",
            epochs=2 if quick else stage["epochs"],
            patches_per_epoch=64 if quick else stage["patches"],
            patch_size=patch,
            halo=halo,
            lr=stage["lr"],
            loss="mse",
            augment=True,
            periodic=False,
            progress=not quick,
            batch_size=32,
            init_from=start,
            keep_start=start is not None,
            seed=0,
            **recipe.get("config", {}),
        )
    model.card.training["stage_seconds"] = round(time.perf_counter() - t0, 1)
    val = history["val_loss"].values if "val_loss" in history else []
    print(f"  validation loss {list(np.round(val, 5))}", flush=True)
    return model


def _results_report() -> Any:
    """``scripts/results_report.py`` as a module: its held-out shallow-water runs and budget."""
    import importlib.util

    path = Path(__file__).with_name("results_report.py")
    spec = importlib.util.spec_from_file_location("results_report", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while they are built
    spec.loader.exec_module(module)
    return module


def held_out_metrics(model: Any, quick: bool) -> dict[str, Any]:
    """The field model on the shipped shallow-water models' held-out runs, as they are scored.

    The same runs, degradation and protocol (``xsr.metrics.score``: pooled-MSE PSNR, spin-up
    left out, periodic) as the specialised cards written by ``scripts/results_report.py``, so
    that ``best_pretrained`` compares the field model and a specialised model on the same data
    (the specialised model is used for its variables only when its held-out PSNR is higher).
    """
    report = _results_report()
    b = report.budget(quick)
    truth = report.generator_runs(b, report.HELD_OUT_SEED, b.held_out_members, b.held_out_frames)
    low = xsr.degrade(truth, scale=model.scale)
    rows = {
        "field": xsr.upscale(low, model),
        "bicubic": xsr.upscale(low, "bicubic", scale=model.scale),
    }
    table = score(rows, truth).compute()
    per_var = {
        c: {str(v): {"psnr": float(table["psnr"].sel(candidate=c, variable=v))}
            for v in table["variable"].values}
        for c in rows
    }  # fmt: skip
    return {
        "psnr": float(np.mean([m["psnr"] for m in per_var["field"].values()])),
        "bicubic_psnr": float(np.mean([m["psnr"] for m in per_var["bicubic"].values()])),
        "summary": "means over the shallow-water variables of the held-out pooled-MSE PSNR "
        "(xsr.metrics.score), on the held-out runs of scripts/results_report.py: comparable "
        "with the specialised shallow-water cards",
        "held_out": {
            "generator": "xsr.data.shallow_water",
            "seed": report.HELD_OUT_SEED,
            "members": b.held_out_members,
            "frames": b.held_out_frames,
            "nx": b.nx,
            "degradation": "coarsen",
            "protocol": "xsr.metrics.score (pooled-MSE PSNR; spin-up excluded; periodic)",
            "per_variable": per_var["field"],
            "bicubic_per_variable": per_var["bicubic"],
        },
    }


def rescore(path: Path, quick: bool) -> dict[str, Any]:
    """Write the held-out metrics into a field model's card (the weights are not touched)."""
    model = xsr.models.load_model(path)
    metrics = {"validation": model.card.metrics, **held_out_metrics(model, quick)}
    if "validation" in model.card.metrics:
        metrics["validation"] = model.card.metrics["validation"]
    out = save_model(model, path, metrics=metrics)
    return {"model": model.card.name, "psnr": metrics["psnr"], "path": str(out)}


def check(path: Path) -> dict[str, Any]:
    """Upscale one real test split with the trained model: it runs, is lazy and finite."""
    model = xsr.models.load_model(path)
    entries = [e for e in xsr.data.list_real() if e.get("cached") and e.get("time_span")]
    if not entries:
        return {}
    ds = xsr.data.open_real(entries[0]["name"], split="test")
    names = [
        n
        for n, v in ds.data_vars.items()
        if len(v.dims) >= 2 and np.issubdtype(v.dtype, np.floating)
    ]
    hi = ds[names].isel(time=slice(0, 2)).sr.upscale(model)
    return {
        "dataset": entries[0]["name"],
        "variables": names,
        "finite": bool(np.isfinite(hi[names[0]]).any()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(RECIPES), help="recipes to train")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: check the recipe runs")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: shipped)")
    parser.add_argument(
        "--rescore", action="store_true", help="only rewrite the held-out metrics of the cards"
    )
    args = parser.parse_args(argv)
    out_dir = args.out or WEIGHTS_DIR
    if args.quick and args.out is None:
        parser.error("--quick writes throw-away weights: give --out (never the shipped folder).")
    for name in args.names:
        if name not in RECIPES:
            parser.error(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
        path = out_dir / name
        if not args.rescore:
            path = train(name, RECIPES[name], out_dir, args.quick)
        print(json.dumps(rescore(path, args.quick)), flush=True)
        print(json.dumps({"model": name, "check": check(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

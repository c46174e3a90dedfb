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
none), so that the large grids do not dominate; the A1B and E1 temperature runs share their
history, so only A1B is read. Crops are shuffled (so that ``fit``'s validation split, the last
fraction of frames, samples every source) and trained with ``xsr.train.fit`` with flips and
quarter turns as augmentation (a scalar field has the grid's full symmetry). The card is
written with ``kind="field"``.

Usage::

    python scripts/train_field_models.py field-fsrcnn-x2 field-fsrcnn-x4   # full budgets
    python scripts/train_field_models.py --quick --out /tmp/field            # tiny: checks it runs

``--quick`` trains for seconds on a small corpus and writes to ``--out`` (never ship its
weights). Without ``--out`` the models go to ``xsr/models/weights``; add the names to
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
from xsr.models.files import save_model
from xsr.models.pretrained import WEIGHTS_DIR
from xsr.train import fit
from xsr.train.field import FIELD, FIELD_ATTRS, frame_normalised

FIELD_VARIABLE = {"name": FIELD, **FIELD_ATTRS}
#: Real datasets left out of the corpus because another one holds the same frames (the A1B and
#: E1 runs share their 1860-1999 history).
DUPLICATES = ("iris-e1-air-temperature",)
SEED = 20261203

# name -> recipe (full budgets; --quick divides them)
RECIPES: dict[str, dict[str, Any]] = {
    # x2 keeps the report variant's layout with 24 features (32 in the report): the universal x2
    # model is what ``ds.sr.upscale(scale=2)`` runs on any file, so it must not be slower than
    # cubic interpolation (benchmarks/upscale.py)
    "field-fsrcnn-x2": {
        "arch": "fsrcnn",
        "scale": 2,
        "epochs": 30,
        "patches": 2048,
        "lr": 1e-3,
        "config": {"variant": "report", "d": 24, "residual": True},
    },
    "field-fsrcnn-x4": {
        "arch": "fsrcnn",
        "scale": 4,
        "epochs": 30,
        "patches": 2048,
        "lr": 1e-3,
        "config": {"variant": "report", "d": 32, "residual": True},
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


def _crops(
    stacks: list[np.ndarray], size: int, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` random ``size`` squares without NaN, from random frames of random variables."""
    usable = [f for f in stacks if min(f.shape[-2:]) >= size]
    out: list[np.ndarray] = []
    for _ in range(20 * count):  # tries: masked fields (land) reject some positions
        if not usable or len(out) == count:
            break
        frames = usable[rng.integers(len(usable))]
        t = rng.integers(frames.shape[0])
        y0 = rng.integers(frames.shape[1] - size + 1)
        x0 = rng.integers(frames.shape[2] - size + 1)
        crop = frames[t, y0 : y0 + size, x0 : x0 + size]
        if np.all(np.isfinite(crop)):
            out.append(crop)
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


def corpus(scale: int, crop: int, quick: bool, seed: int = SEED) -> tuple[xr.Dataset, dict]:
    """The shuffled corpus of frame-normalised crops, as one ``field`` variable.

    Every source gives the same number of crops (those too small for a crop give none), so
    that no source dominates by its size.
    """
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    counts: dict[str, int] = {}
    per_source = 64 if quick else 3000
    for name, ds in sources(quick).items():
        got = _crops(_normalised_frames(ds, scale), crop, per_source, rng)
        crops.extend(got)
        counts[name] = len(got)
    data = np.stack(crops)[rng.permutation(len(crops))]
    ds = xr.Dataset(
        {"field": (("time", "y", "x"), data, dict(FIELD_ATTRS))},
        attrs={"title": "xsr field-model corpus (frame-normalised crops)", "seed": seed},
    )
    return ds, counts


def train(name: str, recipe: dict[str, Any], out_dir: Path, quick: bool) -> Path:
    """Train one field model and write it with a ``kind="field"`` card."""
    scale = recipe["scale"]
    config = recipe.get("config", {})
    halo = xsr.models.get_model(recipe["arch"], scale=scale, **config).receptive_radius
    patch = 8 if scale <= 2 else 6  # low-resolution cells; a crop is one patch with its halo
    crop = scale * (patch + 2 * halo)
    ds, counts = corpus(scale, crop, quick)
    print(f"{name}: corpus of {ds.sizes['time']} crops of {crop}x{crop}: {counts}", flush=True)
    epochs = 2 if quick else recipe["epochs"]
    patches = 64 if quick else recipe["patches"]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        model, history = fit(
            recipe["arch"],
            ds,
            variables=["field"],
            scale=scale,
            degrade="coarsen",
            epochs=epochs,
            patches_per_epoch=patches,
            patch_size=patch,
            halo=halo,
            lr=recipe["lr"],
            loss="mse",
            augment=True,
            periodic=False,
            progress=not quick,
            batch_size=32,
            seed=0,
            **config,
        )
    seconds = time.perf_counter() - start
    training = dict(model.card.training)
    training.update(
        {
            "script": "scripts/train_field_models.py",
            "recipe": recipe,
            "quick": quick,
            "corpus_crops": counts,
            "crop": crop,
            "normalised": "each frame by the mean and std of its coarsened version",
            "train_seconds": round(seconds, 1),
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
    val = history["val_loss"].values if "val_loss" in history else []
    print(
        f"{name}: {seconds:.0f} s, validation loss {list(np.round(val, 5))} -> {path}", flush=True
    )
    return path


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
    args = parser.parse_args(argv)
    out_dir = args.out or WEIGHTS_DIR
    if args.quick and args.out is None:
        parser.error("--quick writes throw-away weights: give --out (never the shipped folder).")
    for name in args.names:
        if name not in RECIPES:
            parser.error(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
        path = train(name, RECIPES[name], out_dir, args.quick)
        print(json.dumps({"model": name, "check": check(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

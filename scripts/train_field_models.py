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

Every variable of every source becomes frames of one scalar field; each frame is cut into
``--crop`` squares without NaN cells, and each square is normalised by the mean and standard
deviation of its block-mean (``coarsen``) low-resolution version, exactly as inference will
normalise the low-resolution input (block means preserve the mean, so the normalised
low-resolution crop has mean 0 and standard deviation 1). Constant crops are dropped. Crops are
shuffled (so that ``fit``'s validation split, the last fraction of frames, samples every
source) and trained with ``xsr.train.fit`` with flips and quarter turns as augmentation (a scalar
field has the grid's full symmetry). The card is written with ``kind="field"``.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import xsr
from xsr.models.files import save_model
from xsr.models.pretrained import WEIGHTS_DIR
from xsr.train import fit

FIELD_VARIABLE = {
    "name": "field",
    "units": "1",
    "long_name": "any scalar field (per-frame normalised)",
}
SEED = 20261203

# name -> recipe (full budgets; --quick divides them)
RECIPES: dict[str, dict[str, Any]] = {
    "field-fsrcnn-x2": {"arch": "fsrcnn", "scale": 2, "epochs": 40, "patches": 2048, "lr": 5e-4},
    "field-fsrcnn-x4": {"arch": "fsrcnn", "scale": 4, "epochs": 40, "patches": 2048, "lr": 5e-4},
}


def _spatial(da: xr.DataArray) -> tuple[str, str] | None:
    """The last two dims, if both are longer than 1 (a frame)."""
    if da.ndim < 2 or min(da.shape[-2:]) < 2:
        return None
    return str(da.dims[-2]), str(da.dims[-1])


def _frames(ds: xr.Dataset, max_frames: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Every variable's 2-D frames (float64), at most ``max_frames`` per variable."""
    for name, da in ds.data_vars.items():
        if not np.issubdtype(da.dtype, np.number) or _spatial(da) is None:
            continue
        y, x = _spatial(da)
        stacked = da.transpose(..., y, x)
        flat = stacked.values.reshape(-1, stacked.shape[-2], stacked.shape[-1])
        take = rng.permutation(flat.shape[0])[:max_frames]
        for i in take:
            yield np.asarray(flat[i], dtype="float64")
        del name


def _crops(frame: np.ndarray, size: int, scale: int, per_frame: int, rng: np.random.Generator):
    """Random ``size`` squares without NaN, normalised by their low-resolution statistics."""
    ny, nx = frame.shape
    if min(ny, nx) < size:
        return
    for _ in range(per_frame):
        y0, x0 = rng.integers(0, ny - size + 1), rng.integers(0, nx - size + 1)
        crop = frame[y0 : y0 + size, x0 : x0 + size]
        if not np.all(np.isfinite(crop)):
            continue
        low = crop.reshape(size // scale, scale, size // scale, scale).mean(axis=(1, 3))
        mean, std = low.mean(), low.std()
        if not std > 1e-12 * max(1.0, abs(mean)):
            continue  # constant: a field model returns it exactly, nothing to learn
        yield ((crop - mean) / std).astype("float32")


def sources(quick: bool) -> dict[str, xr.Dataset]:
    """The corpus' source datasets (train data only)."""
    out: dict[str, xr.Dataset] = {}
    n, frames = (48, 12) if quick else (128, 80)
    from xsr.data.swe import PRESETS

    for k, preset in enumerate(PRESETS):
        out[f"swe-{preset}"] = xsr.data.shallow_water(
            n, n, preset=preset, frames=frames, seed=900 + k, dtype="float32"
        )
    out["phantom"] = xsr.data.phantom_movie(n, n, frames=frames, seed=901)
    try:
        out["natural"] = xsr.train.natural_images(n=16 if quick else 256, patch_size=64, seed=902)
    except ImportError as err:  # scikit-image is an optional extra
        print(f"natural images skipped: {err}", file=sys.stderr)
    for entry in xsr.data.list_real():
        if entry.get("cached"):
            out[f"real-{entry['name']}"] = xsr.data.open_real(entry["name"], split="train")
    return out


def corpus(scale: int, crop: int, quick: bool, seed: int = SEED) -> tuple[xr.Dataset, dict]:
    """The shuffled, per-crop normalised training corpus as one ``field`` variable."""
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    counts: dict[str, int] = {}
    max_frames, per_frame = (8, 2) if quick else (200, 4)
    for name, ds in sources(quick).items():
        before = len(crops)
        for frame in _frames(ds, max_frames, rng):
            crops.extend(_crops(frame, crop, scale, per_frame, rng))
        counts[name] = len(crops) - before
    data = np.stack(crops)[rng.permutation(len(crops))]
    ds = xr.Dataset(
        {
            "field": (
                ("time", "y", "x"),
                data,
                {"units": "1", "long_name": FIELD_VARIABLE["long_name"]},
            )
        },
        attrs={"title": "xsr field-model corpus (per-crop normalised)", "seed": seed},
    )
    return ds, counts


def train(name: str, recipe: dict[str, Any], out_dir: Path, quick: bool) -> Path:
    """Train one field model and write it with a ``kind="field"`` card."""
    scale = recipe["scale"]
    halo = xsr.models.get_model(recipe["arch"], scale=scale).receptive_radius
    patch = 8 if quick else 16  # low-resolution cells; each crop is one patch with its halo
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
            seed=0,
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
            "normalised": "each crop by the mean and std of its coarsened version",
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

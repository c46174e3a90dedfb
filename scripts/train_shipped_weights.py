"""Train the natural-image models shipped inside the xsr package, reproducibly.

The natural-image models (``srcnn-natural-x2``, ``fsrcnn-natural-x2``, the sources of transfer
learning) are trained here on scikit-image's bundled photographs with fixed seeds and written to
``xsr/models/weights/NAME.safetensors`` + ``NAME.json`` (the model card carries the recipe and the
validation metrics). Then add the name to ``xsr.models.pretrained.PRETRAINED`` if it is new.

The shipped shallow-water models (``*-swe-x2``, ``*-swe-x4``) are written by
``python scripts/results_report.py --ship``, in the same run that produces docs/results.md, so
that their cards carry the held-out scores and ablations of that page.

Usage::

    python scripts/train_shipped_weights.py                   # both models
    python scripts/train_shipped_weights.py fsrcnn-natural-x2 # one model
    python scripts/train_shipped_weights.py --quick           # tiny budgets: checks the recipe
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import xarray as xr

from xsr.models.files import save_model
from xsr.models.pretrained import WEIGHTS_DIR
from xsr.train import fit, natural_images

# name -> recipe. ``epochs`` and ``patches`` are the full budgets; --quick divides them.
RECIPES: dict[str, dict[str, Any]] = {
    "srcnn-natural-x2": {
        "arch": "srcnn",
        "scale": 2,
        "degrade": "bicubic",
        "data": "natural",
        "epochs": 15,
        "patches": 1024,
        "patch_size": 16,
        "lr": 3e-4,
        "config": {"residual": True},
    },
    "fsrcnn-natural-x2": {
        "arch": "fsrcnn",
        "scale": 2,
        "degrade": "bicubic",
        "data": "natural",
        "epochs": 20,
        "patches": 1024,
        "patch_size": 16,
        "lr": 3e-4,
        "config": {"residual": True},
    },
}


def train_one(
    name: str, recipe: dict[str, Any], *, quick: bool, natural: xr.Dataset
) -> dict[str, Any]:
    div = 8 if quick else 1
    epochs = max(2, recipe["epochs"] // div)
    patches = max(64, recipe["patches"] // div)
    common = {
        "scale": recipe["scale"],
        "degrade": recipe.get("degrade", "coarsen"),
        "epochs": epochs,
        "batch_size": 16,
        "patch_size": recipe["patch_size"],
        "patches_per_epoch": patches,
        "lr": recipe["lr"],
        "loss": recipe.get("loss", "mse"),
        "patience": 8,
        "seed": 0,
        "progress": True,
        "device": "auto",
    }
    t0 = time.perf_counter()
    model, history = fit(
        recipe["arch"], natural, variables=["image"], **common, **recipe.get("config", {})
    )
    seconds = time.perf_counter() - t0
    model.card.name = name
    model.card.training = {
        **model.card.training,
        "script": "scripts/train_shipped_weights.py",
        "recipe": dict(recipe.items()),
        "quick": quick,
        "train_seconds": round(seconds, 1),
    }
    variables = [v["name"] for v in model.card.variables]
    validation = {
        **model.card.metrics,
        "data_range": dict(zip(variables, history.attrs["data_range"])),
    }
    model.card.metrics = {"validation": validation}
    model.card.description = (
        f"{recipe['arch']} x{recipe['scale']} trained by scripts/train_shipped_weights.py on "
        "scikit-image's bundled photographs (greyscale patches), for transfer learning."
    )
    path = save_model(model, WEIGHTS_DIR / name)
    summary = {
        "name": name,
        "path": str(path),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(RECIPES)}")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (checks the recipe)")
    args = parser.parse_args(argv)
    names = args.names or list(RECIPES)
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown model names {unknown}; choose from {list(RECIPES)}")
    if not names:
        return 0
    natural = natural_images(2000 if not args.quick else 256, 64, seed=0)
    results = [train_one(n, RECIPES[n], quick=args.quick, natural=natural) for n in names]
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

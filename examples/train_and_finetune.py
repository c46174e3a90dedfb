"""Train a model on your own movie, and fine-tune one from pretrained weights (transfer learning).

Uses a built-in shallow-water run as "your data". Trains the report's FSRCNN variant from scratch
and again starting from the natural-image weights shipped with xsr (``fsrcnn-natural-x2``, the
report's transfer learning), with the first layer frozen in a third run, then saves the best
model as a ``.safetensors`` file with its JSON model card::

    python examples/train_and_finetune.py [OUTPUT_DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import xsr
from xsr.models.pretrained import PRETRAINED


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    out = Path(next((a for a in argv if not a.startswith("--")), "examples-out"))
    out.mkdir(parents=True, exist_ok=True)
    n, frames = (48, 16) if quick else (128, 120)
    data = xsr.data.shallow_water(n, n, frames=frames, seed=5, progress=True).astype("float32")
    budget = {
        "epochs": 2 if quick else 15,
        "patches_per_epoch": 32 if quick else 384,
        "batch_size": 8 if quick else 16,
        "patch_size": 8 if quick else 16,
    }
    common = {
        "variables": ["h"],
        "scale": 2,
        "degrade": "bicubic",
        "seed": 0,
        "residual": True,
        "lr": 1e-3,
        **budget,
    }

    runs = {"from scratch": {}}
    if "fsrcnn-natural-x2" in PRETRAINED:
        runs["init_from=fsrcnn-natural-x2"] = {"init_from": "fsrcnn-natural-x2"}
        runs["... and first layer frozen"] = {
            "init_from": "fsrcnn-natural-x2",
            "freeze": ["features.0"],
        }
    best = None
    for label, extra in runs.items():
        model, history = xsr.train.fit("fsrcnn", data, **common, **extra)
        psnr = float(history["val_psnr"].sel(variable="h").max())
        print(
            f"{label:32s} best validation PSNR {psnr:.2f} dB "
            f"(bicubic {history.attrs['bicubic_val_psnr'][0]:.2f} dB)"
        )
        if best is None or psnr > best[0]:
            best = (psnr, model, label)
    path = xsr.save_model(best[1], out / "fsrcnn-h-x2")
    print(f"saved the best model ({best[2]}) to {path} and its card beside it")
    print(xsr.load_model(path).card.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A tiny seeded fit gives the loss history recorded before ``fit`` was split into stages.

The numbers were recorded with the single-function trainer (main at 9be4a7b) and were
reproduced bit for bit by the staged one on the machine that recorded them; the tolerance
only allows for other CPUs' float32 kernels. A change of seeding, patch order, augmentation,
normalisation or loss moves them far beyond it.
"""

from __future__ import annotations

import numpy as np

from xsr.testing import random_movie
from xsr.train.trainer import fit

FAST = {"epochs": 3, "batch_size": 8, "patch_size": 4, "patches_per_epoch": 16, "progress": False}


def _check(hist, expected):
    for name in ("loss", "val_loss", "lr"):
        np.testing.assert_allclose(hist[name].values, expected[name], rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(hist.attrs["bicubic_val_psnr"], expected["bicubic"], rtol=1e-6)
    assert hist.attrs["best_epoch"] == expected["best_epoch"]


def test_fsrcnn_history_is_as_before():
    ds = random_movie(8, 32, 32, seed=0)
    _, hist = fit("fsrcnn", ds, seed=3, scale=2, device="cpu", d=8, s=4, m=1, **FAST)
    _check(
        hist,
        {
            "loss": [1.0345709323883057, 0.9939743280410767, 0.7735068202018738],
            "val_loss": [1.130270004272461, 1.107328176498413, 1.10225248336792],
            "lr": [0.001, 0.00075, 0.0002500000000000001],
            "bicubic": [33.442262556303774],
            "best_epoch": 3,
        },
    )


def test_vector_bicubic_plateau_mae_history_is_as_before():
    ds = random_movie(10, 30, 31, seed=5, variables=("u", "v"))
    ds["u"].attrs["standard_name"] = "eastward_wind"
    ds["v"].attrs["standard_name"] = "northward_wind"
    _, hist = fit(
        "srcnn",
        ds,
        seed=1,
        scale=2,
        degrade="bicubic",
        lr_schedule="plateau",
        loss="mae",
        features=[4, 4],
        val_blocks=2,
        val_fraction=0.3,
        device="cpu",
        **FAST,
    )
    _check(
        hist,
        {
            "loss": [1.0770794749259949, 1.0162073969841003, 0.8971559703350067],
            "val_loss": [1.0237749814987183, 1.004681944847107, 0.991500198841095],
            "lr": [0.001, 0.001, 0.001],
            "bicubic": [31.845573093774806, 32.49686587070541],
            "best_epoch": 3,
        },
    )

"""Read a MATLAB file laid out like the report's climate data, then degrade, upscale, evaluate.

The report's ``H_Field_NI5.mat`` holds one float32 array ``(y, x, time)`` with values in
(-10, 10). Without that file (nothing is downloaded), this script writes one of the same layout
from the built-in shallow-water generator, then reads it with :func:`xsr.io.open_mat`::

    python examples/read_mat.py [PATH.mat] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.io

import xsr


def make_report_like_mat(path: Path, *, n: int = 64, frames: int = 12) -> Path:
    """Write ``H`` as float32 ``(y, x, time)`` in (-10, 10), as in the report's file."""
    h = xsr.data.shallow_water(n, n, frames=frames, seed=11)["h"].values  # (time, y, x)
    anomaly = h - h.mean()
    field = (9.9 * anomaly / np.abs(anomaly).max()).astype("float32")
    scipy.io.savemat(path, {"H": np.moveaxis(field, 0, -1)})
    return path


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if paths:
        path = Path(paths[0])
    else:
        path = make_report_like_mat(
            Path(tempfile.mkdtemp()) / "H_Field_NI5.mat",
            n=32 if quick else 64,
            frames=6 if quick else 12,
        )
    ds = xsr.io.open_mat(path)  # time axis detected (the odd one out, else the last)
    print(ds)
    truth = ds[["H"]]
    low = xsr.degrade(truth, scale=2, method="bicubic")  # the report's protocol
    hi = low.sr.upscale("bicubic", scale=2)
    print(xsr.metrics.format_table(xsr.metrics.compare(truth, bicubic=hi)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

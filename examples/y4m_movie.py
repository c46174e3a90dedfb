"""Super-resolve a YUV4MPEG2 movie (like the Xiph clips the report used) and score it.

Without a clip of yours (nothing is downloaded), the script writes a moving Shepp-Logan phantom
as an 8-bit greyscale ``.y4m``, reads it back with :func:`xsr.io.open_y4m` (luma ``Y`` as a
``(time, y, x)`` movie in [0, 1], the frame rate as the time coordinate), degrades it by x2,
upscales it and prints the metrics table with the data range 1::

    python examples/y4m_movie.py [CLIP.y4m] [--model NAME] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import xsr


def write_phantom_y4m(path: Path, *, n: int = 64, frames: int = 10, fps: int = 25) -> Path:
    """An 8-bit mono YUV4MPEG2 file of a moving phantom."""
    movie = xsr.data.phantom_movie(n, n, frames=frames, seed=3)["intensity"].values
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{n} H{n} F{fps}:1 Ip A1:1 Cmono\n".encode("ascii"))
        for frame in movie:
            fh.write(b"FRAME\n")
            fh.write(np.clip(np.rint(frame * 255), 0, 255).astype("uint8").tobytes())
    return path


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    model = argv[argv.index("--model") + 1] if "--model" in argv else "bicubic"
    paths = [
        a
        for i, a in enumerate(argv)
        if not a.startswith("--") and (i == 0 or argv[i - 1] != "--model")
    ]
    if paths:
        path = Path(paths[0])
    else:
        path = write_phantom_y4m(
            Path(tempfile.mkdtemp()) / "phantom.y4m",
            n=32 if quick else 64,
            frames=6 if quick else 10,
        )
    truth = xsr.io.open_y4m(path)[["Y"]]
    low = xsr.degrade(truth, scale=2, method="bicubic")
    hi = low.sr.upscale(model, scale=2) if model == "bicubic" else low.sr.upscale(model)
    table = xsr.metrics.compare(truth, data_range=1.0, **{model: hi})
    print(xsr.metrics.format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The main job on built-in data: what ``make demo`` and ``xsr demo`` run.

Simulates a held-out shallow-water run, degrades it (x2, x4), upscales it with bicubic
interpolation and every shipped model, prints the metrics table, writes the best x2 result to a
Zarr store and saves a comparison figure::

    python examples/demo.py [OUTPUT_DIR] [--quick]
"""

from __future__ import annotations

import sys

from xsr.demo import run_demo

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    run_demo(args[0] if args else "xsr-demo-output", quick="--quick" in sys.argv)

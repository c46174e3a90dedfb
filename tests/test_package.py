"""The package's import-time behaviour (``xsr/__init__.py``): importing xsr changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_import_leaves_the_environment_unchanged():
    """``import xsr`` (and its engine) sets no environment variable and does not import torch."""
    code = (
        "import json, os, sys; before = dict(os.environ); import xsr; "
        "no_torch = 'torch' not in sys.modules; import xsr.engine, xsr.models; "
        "print(json.dumps([no_torch, before == dict(os.environ)]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, True]

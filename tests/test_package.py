"""The package's import-time behaviour (``xsr/__init__.py``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("0", "0"), ("1", "1")])
def test_import_enables_huge_pages_for_torch_unless_the_user_chose(preset, expected):
    """``import xsr`` sets THP_MEM_ALLOC_ENABLE=1 before torch is imported; a user's value wins."""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    code = (
        "import os, sys, xsr; assert 'torch' not in sys.modules; "
        "print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected

"""The xsr.train namespace: light import, every public name reachable and documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xsr.train


def test_import_is_light():
    code = "import sys, xsr.train; print('torch' in sys.modules, 'xbatcher' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("name", xsr.train.__all__)
def test_public_names_resolve_and_have_examples(name):
    obj = getattr(xsr.train, name)
    assert obj.__doc__
    assert "Examples" in obj.__doc__
    assert name in dir(xsr.train)


def test_fit_is_the_function_even_after_importing_its_module():
    import xsr.train.trainer

    assert callable(xsr.train.fit)
    assert xsr.train.fit is xsr.train.trainer.fit


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = xsr.train.nope

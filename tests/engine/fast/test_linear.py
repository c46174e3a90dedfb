"""Tests of :mod:`xsr.engine.fast.linear` (valid convolution on tiles)."""

from __future__ import annotations

import pytest
import torch
from toys import crop_core, fast_form, randomise

from xsr.models.registry import get_model


def test_forward_core_equals_cropped_forward() -> None:
    model = randomise(get_model("linear", scale=3, radius=2)).eval()
    fast = fast_form(model)
    x = torch.randn(2, 1, 11, 9)
    with torch.no_grad():
        torch.testing.assert_close(fast.forward_core(x), crop_core(model(x), model))
    with pytest.raises(ValueError, match="larger than twice"):
        fast.forward_core(torch.randn(1, 1, 4, 4))

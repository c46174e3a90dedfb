"""Tests of :mod:`xsr.engine.fast.srcnn` (channels-last first layer)."""

from __future__ import annotations

import pytest
import torch
from toys import assert_first_layer_channels_last

from xsr.models.registry import get_model


@pytest.mark.parametrize("core", [False, True])
def test_one_variable_runs_channels_last_under_the_engine(core: bool) -> None:
    config = {"scale": 2}
    r = get_model("srcnn", **config).receptive_radius
    x = torch.randn(2, 1, 2 * r + 4, 2 * r + 5)
    assert_first_layer_channels_last("srcnn", config, "body.1", x, core=core)

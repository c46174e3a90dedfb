"""Shared pytest configuration."""

from __future__ import annotations

import os

# Two xdist workers share two cores: one intra-op thread each keeps torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# device="auto" means the CPU in the tests, also on a GPU machine: the properties checked here
# (chunk invariance to 1e-6, bit-exact resumes) are the CPU's; the tests marked ``gpu`` ask for
# device="cuda" and compare it with the CPU.
os.environ.setdefault("XSR_DEVICE", "cpu")

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# CI draws the same hypothesis examples every run (a failure is reproducible, never flaky);
# locally, HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same torch random state (random weights, random inputs)."""
    torch.manual_seed(0)

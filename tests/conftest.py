"""Shared pytest configuration."""

from __future__ import annotations

import os

# Two xdist workers share two cores: one intra-op thread each keeps torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

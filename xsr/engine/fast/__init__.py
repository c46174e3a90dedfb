"""Fast forms: the engine's inference rewrites of models, one registry keyed by architecture."""

from __future__ import annotations

import torch

__all__ = ["prepare"]


def prepare(module: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no gradients, fused inference layers, convolution weights in channels-last."""
    module.eval()
    fuse = getattr(module, "fuse_for_inference", None)
    if callable(fuse):
        fuse()
    for p in module.parameters():
        p.requires_grad_(False)
        if p.device.type != "cpu":
            continue
        if p.ndim == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.ndim == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return module

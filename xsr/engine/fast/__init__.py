"""Fast forms: every inference rewrite of a model, in one engine-owned place, by architecture.

Models are written as their papers draw them (:mod:`xsr.models`). The engine runs a private,
prepared copy of each (:func:`prepare`): eval mode, channels-last weights, PReLUs with a bfloat16
guard, and, where the architecture has one, its *fast form* from :data:`FAST_FORMS`, which runs
the same layers and weights faster and whose :meth:`~FastForm.forward_core` skips the halo's
outputs on tiles. Each fast form is tested equal to the model's own forward (float32 to
rounding; bfloat16 close to float32). The split follows torch.ao's fusion and torchvision's
quantised models: the definition stays the paper's, the rewrite is a separate function applied
to a copy.

=============  ======================================================================
``fsrcnn``     the report variant's tail at low resolution (:mod:`~xsr.engine.fast.fsrcnn`)
``xsrnet``     valid convolutions on tiles (:mod:`~xsr.engine.fast.xsrnet`)
``srnet3d``    valid spatial convolutions, float32 first layer under bfloat16
``srcnn``      channels-last first layer
``linear``     valid convolution on tiles
``chain``      each stage as its fast form
=============  ======================================================================

An architecture without an entry needs nothing: it runs its own forward, and tiles are cropped
from it (correct, only slower). To add one, write a :class:`FastForm` subclass and register its
builder with :func:`register` (see docs/how-to/new-architecture.md).

This package imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

from xsr.engine.fast import chain, fsrcnn, linear, srcnn, srnet3d, xsrnet
from xsr.engine.fast.registry import FAST_FORMS, FastForm, prepare, register

__all__ = [
    "FAST_FORMS",
    "FastForm",
    "chain",
    "fsrcnn",
    "linear",
    "prepare",
    "register",
    "srcnn",
    "srnet3d",
    "xsrnet",
]

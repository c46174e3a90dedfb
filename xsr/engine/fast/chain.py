"""A chain's fast form: each stage replaced by its own fast form.

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

from xsr.engine.fast.registry import FastForm, prepare, register
from xsr.models.chain import Chain

__all__ = ["fast_chain"]


@register("chain")
def fast_chain(model: Chain) -> FastForm:
    """The fast form of a chain: its stages run as their fast forms (in the engine's copy).

    Parameters
    ----------
    model : xsr.models.chain.Chain
        The engine's prepared copy; its stages are replaced in place.

    Returns
    -------
    FastForm
        Running the chain's own stage logic over the fast stages.

    Examples
    --------
    >>> from xsr.models import get_model
    >>> chain = get_model("chain", stages=[{"arch": "fsrcnn", "scale": 2},
    ...                                    {"arch": "srnet3d", "scale": 1}]).eval()
    >>> [type(s).__name__ for s in fast_chain(chain).model.stages]
    ['FastFSRCNN', 'FastSRNet3D']
    """
    for i, stage in enumerate(model.stages):
        model.stages[i] = prepare(stage)
    return FastForm(model)

"""SRCNN's fast form: a one-variable input writes the first layer's output channels-last.

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

import torch

from xsr.engine.fast.layers import like_weight_layout
from xsr.engine.fast.registry import FastForm, register
from xsr.models.srcnn import SRCNN

__all__ = ["FastSRCNN"]


class FastSRCNN(FastForm):
    """SRCNN as the engine runs it: the upsampled one-variable input viewed channels-last.

    Parameters
    ----------
    model : xsr.models.srcnn.SRCNN
        The engine's prepared copy.

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> model = get_model("srcnn", scale=2).eval()
    >>> x = torch.randn(1, 1, 6, 6)
    >>> with torch.no_grad():
    ...     bool(torch.allclose(FastSRCNN(model)(x), model(x), atol=1e-5))
    True
    """

    def run(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        up = m.upsample(x)
        y = m.body(like_weight_layout(up, m.body[4].weight))  # one variable: no layout copy
        return y + up if m.residual else y


@register("srcnn")
def fast_srcnn(model: SRCNN) -> FastSRCNN:
    """The fast form of an SRCNN (see :class:`FastSRCNN`).

    Parameters
    ----------
    model : xsr.models.srcnn.SRCNN
        The engine's prepared copy.

    Returns
    -------
    FastSRCNN

    Examples
    --------
    >>> from xsr.models import get_model
    >>> fast_srcnn(get_model("srcnn", scale=3).eval()).scale
    3
    """
    return FastSRCNN(model)

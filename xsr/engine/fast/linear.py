"""The linear baseline's fast form: on tiles with a full halo the convolution runs "valid".

This module imports torch and :mod:`xsr.models` only.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from xsr.engine.fast.registry import FastForm, register
from xsr.models.linear import Linear

__all__ = ["FastLinear"]


class FastLinear(FastForm):
    """The linear filter with a "valid" core: no output of the halo is computed.

    Parameters
    ----------
    model : xsr.models.linear.Linear
        The engine's prepared copy.

    Examples
    --------
    >>> import torch
    >>> from xsr.models import get_model
    >>> model = get_model("linear", scale=2, radius=2).eval()
    >>> x = torch.randn(1, 1, 9, 10)
    >>> with torch.no_grad():
    ...     core = FastLinear(model).forward_core(x)
    ...     full = model(x)[..., 4:-4, 4:-4]
    >>> core.shape, bool(torch.allclose(core, full, atol=1e-5))
    (torch.Size([1, 1, 10, 12]), True)
    """

    def core(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.shuffle(F.conv2d(x, m.conv.weight, m.conv.bias, groups=m.channels))


@register("linear")
def fast_linear(model: Linear) -> FastLinear:
    """The fast form of the linear baseline (see :class:`FastLinear`).

    Parameters
    ----------
    model : xsr.models.linear.Linear
        The engine's prepared copy.

    Returns
    -------
    FastLinear

    Examples
    --------
    >>> from xsr.models import get_model
    >>> fast_linear(get_model("linear", scale=2).eval()).arch
    'linear'
    """
    return FastLinear(model)

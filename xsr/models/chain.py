"""``chain``: combinations of networks built by composing stages, not one class per combination.

``get_model("chain", stages=[{"arch": ..., **config}, ...])`` runs the stages one after the
other; each stage sees the previous stage's output. A stage with ``window == 1`` (2D) is applied
to every frame of its input, the time axis folded into the batch; a windowed stage (3D) is
applied to every window of ``window`` consecutive frames, built with ``unfold`` (vectorised: no
Python loop over frames or over the batch). The chain's window is ``1 + sum(window_i - 1)`` and
its output is the centre frame, like any model.

The report's combinations:

* **2D then 3D** (section 4, the two-stage method; trained stage by stage):
  ``[{"arch": "fsrcnn", "scale": 2}, {"arch": "srnet3d", "scale": 1}]``.
* **3D then 2D** (the report's proposed "3D+2D"): ``[{"arch": "srnet3d", "scale": 1},
  {"arch": "fsrcnn", "scale": 2}]``, the 3D stage refining at low resolution.
* **Two-in-one** (the end-to-end network the report could not build in Keras): the same
  ``2D then 3D`` chain trained jointly; the window packing is the vectorised ``unfold`` above.

:attr:`Chain.stages` is a :class:`torch.nn.ModuleList`, so a trainer can train one stage at a
time (freeze the others) or all together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from xsr.models.base import SRModel, hr_to_lr_radius

__all__ = ["COMBINATIONS", "Chain", "combination"]


#: The report's combinations, by name (see :func:`combination`).
COMBINATIONS = ("2d+3d", "3d+2d")


def combination(
    kind: str, *, scale: int = 2, channels: int = 1, two_d: str = "fsrcnn", **two_d_config: Any
) -> list[dict[str, Any]]:
    """Stage list of one of the report's combinations, for ``get_model("chain", stages=...)``.

    ``"2d+3d"`` is the report's two-stage method and, trained jointly, its two-in-one network:
    the 2D model upscales every frame, then the 3D network (``scale=1``) refines the window at
    high resolution. ``"3d+2d"`` is the report's proposed alternative: the 3D network refines
    the window at low resolution, then the 2D model upscales the result.

    Parameters
    ----------
    kind : {"2d+3d", "3d+2d"}
        Which combination.
    scale : int, default 2
        Overall upscaling factor (done by the 2D stage).
    channels : int, default 1
        Number of variables.
    two_d : str, default "fsrcnn"
        Architecture of the 2D stage (``"fsrcnn"``, ``"srcnn"``, ``"xsrnet"`` with ``window=1``).
    **two_d_config
        Further configuration of the 2D stage.

    Returns
    -------
    list of dict
        The stages.

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    Examples
    --------
    >>> combination("3d+2d", scale=4)
    [{'arch': 'srnet3d', 'scale': 1, 'channels': 1}, {'arch': 'fsrcnn', 'scale': 4, 'channels': 1}]
    """
    if kind not in COMBINATIONS:
        raise ValueError(f"combination: kind must be one of {COMBINATIONS}, got {kind!r}.")
    flat = {"arch": two_d, "scale": scale, "channels": channels, **two_d_config}
    refine = {"arch": "srnet3d", "scale": 1, "channels": channels}
    return [flat, refine] if kind == "2d+3d" else [refine, flat]


class Chain(SRModel):
    """A sequence of :class:`SRModel` stages applied one after the other.

    Parameters
    ----------
    stages : sequence of SRModel
        The built stage models, at least one, all with the same ``channels``. To build a chain
        from ``{"arch": name, **config}`` dicts, call
        ``xsr.models.get_model("chain", stages=[...])``, which builds each stage by name.
    conserve : bool, default False
        Project the final output so that its block means equal the centre input frame.

    Attributes
    ----------
    stages : torch.nn.ModuleList
        The stage models, in order.

    Examples
    --------
    >>> import torch
    >>> from xsr.models.fsrcnn import FSRCNN
    >>> from xsr.models.srnet3d import SRNet3D
    >>> chain = Chain(stages=[FSRCNN(scale=2), SRNet3D(scale=1)])
    >>> chain.scale, chain.window, chain(torch.zeros(1, 1, 5, 6, 6)).shape
    (2, 5, torch.Size([1, 1, 12, 12]))
    """

    arch: ClassVar[str] = "chain"

    def __init__(
        self, *, stages: Sequence[Mapping[str, Any] | SRModel], conserve: bool = False
    ) -> None:
        if isinstance(stages, str | bytes | Mapping) or not isinstance(stages, Sequence):
            raise ValueError(
                "chain: stages must be a list of {'arch': name, **config} dicts or models, got "
                f"{type(stages).__name__}."
            )
        if not stages:
            raise ValueError("chain: stages must hold at least one stage.")
        built = list(stages)
        for i, stage in enumerate(built):
            if not isinstance(stage, SRModel):
                raise ValueError(
                    f"chain: stage {i} must be a built model, got {stage!r}; build a chain from "
                    "{'arch': name, **config} dicts with xsr.models.get_model('chain', "
                    "stages=[...])."
                )
        channels = {m.channels for m in built}
        if len(channels) != 1:
            raise ValueError(
                f"chain: all stages must have the same channels, got {[m.channels for m in built]}."
            )
        scale = 1
        for m in built:
            scale *= m.scale
        window = 1 + sum(m.window - 1 for m in built)
        super().__init__(scale=scale, channels=built[0].channels, window=window, conserve=conserve)
        self.stages = nn.ModuleList(built)
        self.config = {
            "stages": [{"arch": m.arch, **m.config} for m in built],
            "conserve": conserve,
        }

    @property
    def receptive_radius(self) -> int:
        """Walk back from the last stage: ``r = r_i + ceil(r_after / scale_i)``."""
        radius = 0
        for stage in reversed(self.stages):
            radius = stage.receptive_radius + hr_to_lr_radius(radius, stage.scale)
        return radius

    def run_stages(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """The movie after the first ``stop`` stages: what stage ``stop`` is fed.

        For the report's two-stage method, compute ``run_stages(x, 1)`` once (under
        ``torch.no_grad()``) with the trained first stage and train ``stages[1]`` on it.

        Parameters
        ----------
        x : torch.Tensor
            A valid chain input (``(N, C, H, W)`` when ``window == 1``, else
            ``(N, C, window, H, W)``).
        stop : int
            Number of stages to run, ``0 <= stop <= len(stages)``.

        Returns
        -------
        torch.Tensor
            ``(N, C, T, H', W')`` with ``T = window - sum(window_i - 1)`` over the stages run.

        Examples
        --------
        >>> import torch
        >>> from xsr.models.fsrcnn import FSRCNN
        >>> from xsr.models.srnet3d import SRNet3D
        >>> chain = Chain(stages=[FSRCNN(scale=2), SRNet3D(scale=1)])
        >>> chain.run_stages(torch.zeros(1, 1, 5, 4, 4), 1).shape
        torch.Size([1, 1, 5, 8, 8])
        """
        if isinstance(stop, bool) or not isinstance(stop, int) or not 0 <= stop <= len(self.stages):
            raise ValueError(
                f"chain: stop must be an integer in [0, {len(self.stages)}], got {stop!r}."
            )
        self.check_input(x)
        movie = x if self.window > 1 else x[:, :, None]  # (N, C, T, H, W)
        for stage in self.stages[:stop]:
            movie = _apply_stage(stage, movie)
        return movie

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(x, len(self.stages))[:, :, 0]


def _apply_stage(stage: SRModel, movie: torch.Tensor) -> torch.Tensor:
    """Apply ``stage`` to every frame (2D) or every window (3D) of ``movie``, vectorised."""
    n, c, t, h, w = movie.shape
    if stage.window == 1:
        frames = movie.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
        out = stage(frames)
        return out.reshape(n, t, c, *out.shape[-2:]).permute(0, 2, 1, 3, 4)
    k = stage.window
    t_out = t - k + 1
    # (N, C, T', H, W, k) -> (N, T', C, k, H, W) -> (N*T', C, k, H, W)
    windows = movie.unfold(2, k, 1).permute(0, 2, 1, 5, 3, 4).reshape(n * t_out, c, k, h, w)
    out = stage(windows)
    return out.reshape(n, t_out, c, *out.shape[-2:]).permute(0, 2, 1, 3, 4)

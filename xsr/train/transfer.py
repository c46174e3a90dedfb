"""Transfer learning: copy matching layers, freeze layers, per-layer learning rates.

The report initialised the first layer of its SRCNN/FSRCNN from weights trained by the original
authors on photographs, fine-tuned it and trained the other layers from scratch. Here any source
(a model, a model file, a shipped pretrained name or a plain state dict) gives its tensors to a
target model wherever the *name and shape* agree; everything else is reported as skipped with
the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["TransferResult", "freeze", "layer_names", "param_groups", "transfer_weights"]


class TransferResult(list):
    """Names of the copied tensors (a ``list[str]``), with ``skipped`` name -> reason.

    Examples
    --------
    >>> r = TransferResult(["conv.weight"], skipped={"conv.bias": "not in source"})
    >>> list(r), r.skipped
    (['conv.weight'], {'conv.bias': 'not in source'})
    """

    def __init__(self, copied: Iterable[str] = (), skipped: Mapping[str, str] | None = None):
        super().__init__(copied)
        self.skipped: dict[str, str] = dict(skipped or {})

    def summary(self) -> str:
        """One line per tensor: copied or skipped and why.

        Examples
        --------
        >>> print(TransferResult(["a"], skipped={"b": "shape (1,) != (2,)"}).summary())
        copied  a
        skipped b: shape (1,) != (2,)
        """
        lines = [f"copied  {n}" for n in self]
        lines += [f"skipped {n}: {why}" for n, why in self.skipped.items()]
        return "\n".join(lines)


def _resolve_source(source: Any) -> Mapping[str, torch.Tensor]:
    """A state dict from a module, a mapping, a model file path or a pretrained name."""
    if isinstance(source, nn.Module):
        return source.state_dict()
    if isinstance(source, Mapping):
        return source
    if isinstance(source, (str, os.PathLike)):
        from xsr.models.files import load_model

        return load_model(source).state_dict()
    raise TypeError(
        f"init_from/source must be a model, a state dict, a model file path or a pretrained "
        f"name, got {type(source).__name__}"
    )


def _selected(name: str, prefixes: Sequence[str] | None) -> bool:
    if prefixes is None:
        return True
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def transfer_weights(
    target: nn.Module,
    source: Any,
    *,
    layers: Sequence[str] | None = None,
    source_prefix: str = "",
    target_prefix: str = "",
) -> TransferResult:
    """Copy the source tensors whose name and shape match into ``target`` (in place).

    Parameters
    ----------
    target : torch.nn.Module
        The model to initialise.
    source : torch.nn.Module, mapping, str or path
        A model, a state dict, a model file (``.safetensors`` with its card) or a pretrained
        name understood by :func:`xsr.models.files.load_model`.
    layers : sequence of str, optional
        Only copy these target tensors or layers (a name, or a prefix such as ``"body.0"``);
        default every match. The report's recipe is the first layer only.
    source_prefix, target_prefix : str
        Map source name ``source_prefix + rest`` to target name ``target_prefix + rest``, e.g.
        ``target_prefix="stages.0."`` to initialise the first stage of a chain from a 2D model.

    Returns
    -------
    TransferResult
        The list of copied target names; ``.skipped`` maps every other target tensor (and
        every unused source tensor, as ``"source:<name>"``) to the reason.

    Raises
    ------
    ValueError
        ``layers`` names something the target does not have, or nothing at all was copied.

    Examples
    --------
    >>> from torch import nn
    >>> a, b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)
    >>> transfer_weights(a, b)
    ['weight', 'bias']
    >>> bool((a.weight == b.weight).all())
    True
    """
    src = _resolve_source(source)
    tgt = target.state_dict()
    if layers is not None:
        missing = [p for p in layers if not any(_selected(n, [p]) for n in tgt)]
        if missing:
            raise ValueError(
                f"layers {missing} are not in the target model; its layers are "
                f"{layer_names(target)}"
            )
    mapped: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in src:
        if source_prefix and not name.startswith(source_prefix):
            skipped[f"source:{name}"] = f"outside source_prefix {source_prefix!r}"
            continue
        mapped[target_prefix + name[len(source_prefix) :]] = name
    copied: list[str] = []
    new_state: dict[str, torch.Tensor] = {}
    for name, tensor in tgt.items():
        if not _selected(name, layers):
            skipped[name] = "not in layers="
            continue
        if name not in mapped:
            skipped[name] = "no tensor of that name in the source"
            continue
        value = src[mapped.pop(name)]
        if tuple(value.shape) != tuple(tensor.shape):
            skipped[name] = f"shape {tuple(value.shape)} in source != {tuple(tensor.shape)}"
            continue
        new_state[name] = value.detach().to(dtype=tensor.dtype, device=tensor.device)
        copied.append(name)
    for name in mapped.values():
        skipped.setdefault(f"source:{name}", "no tensor of that name in the target")
    if not copied:
        raise ValueError(
            "no layer could be copied: names and shapes of source and target disagree "
            f"everywhere ({len(skipped)} tensors skipped, e.g. "
            f"{dict(list(skipped.items())[:3])}); check the architecture, channels and scale, "
            "or map names with source_prefix=/target_prefix="
        )
    with torch.no_grad():
        state = target.state_dict()
        for name, value in new_state.items():
            state[name].copy_(value)
    return TransferResult(copied, skipped)


def layer_names(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters (what ``freeze`` and ``layer_lr`` accept).

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    list of str

    Examples
    --------
    >>> from torch import nn
    >>> layer_names(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 1, 3)))
    ['0', '2']
    """
    return list(dict.fromkeys(n.rpartition(".")[0] for n, _ in model.named_parameters()))


def _match_params(model: nn.Module, names: Sequence[str], what: str) -> dict[str, list[str]]:
    params = [n for n, _ in model.named_parameters()]
    found = {p: [n for n in params if _selected(n, [p])] for p in names}
    unknown = [p for p, hits in found.items() if not hits]
    if unknown:
        raise ValueError(
            f"{what} names {unknown} match no parameter; use layer names such as "
            f"{layer_names(model)} or parameter names such as {params[:4]}"
        )
    return found


def freeze(model: nn.Module, names: str | Sequence[str]) -> list[str]:
    """Stop gradients for the named layers or parameters (``requires_grad = False``).

    Parameters
    ----------
    model : torch.nn.Module
    names : str or sequence of str
        Layer names (module prefixes such as ``"body.0"``) or full parameter names.

    Returns
    -------
    list of str
        The frozen parameter names.

    Raises
    ------
    ValueError
        A name matches no parameter (the message lists the layer names).

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 1, 3))
    >>> freeze(m, ["0"])
    ['0.weight', '0.bias']
    >>> m[0].weight.requires_grad
    False
    """
    if isinstance(names, str):
        names = [names]
    found = _match_params(model, list(names), "freeze=")
    frozen = sorted({n for hits in found.values() for n in hits}, key=_order(model))
    params = dict(model.named_parameters())
    for n in frozen:
        params[n].requires_grad_(False)
    return frozen


def _order(model: nn.Module):
    index = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    return index.__getitem__


def param_groups(
    model: nn.Module, lr: float, layer_lr: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with per-layer learning rates, frozen parameters left out.

    Parameters
    ----------
    model : torch.nn.Module
    lr : float
        Learning rate of every trainable parameter not named in ``layer_lr``.
    layer_lr : mapping of str to float, optional
        Layer (or parameter) name -> learning rate, e.g. ``{"body.0": 1e-4}`` to fine-tune a
        transferred first layer slowly. The longest matching name wins.

    Returns
    -------
    list of dict
        ``[{"params": [...], "lr": float, "names": [...]}, ...]`` for ``torch.optim``.

    Raises
    ------
    ValueError
        A name in ``layer_lr`` matches no parameter, a rate is not positive, or every
        parameter is frozen.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 1, 3))
    >>> [(g["names"], g["lr"]) for g in param_groups(m, 1e-3, {"0": 1e-4})]
    [(['0.weight', '0.bias'], 0.0001), (['1.weight', '1.bias'], 0.001)]
    """
    layer_lr = dict(layer_lr or {})
    bad = {k: v for k, v in layer_lr.items() if not float(v) > 0}
    if bad:
        raise ValueError(f"layer_lr rates must be positive, got {bad}")
    _match_params(model, list(layer_lr), "layer_lr=")
    groups: dict[float, dict[str, Any]] = {}
    order: list[float] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hits = [k for k in layer_lr if _selected(name, [k])]
        rate = float(layer_lr[max(hits, key=len)]) if hits else float(lr)
        if rate not in groups:
            groups[rate] = {"params": [], "lr": rate, "names": []}
            order.append(rate)
        groups[rate]["params"].append(p)
        groups[rate]["names"].append(name)
    if not groups:
        raise ValueError("every parameter is frozen: nothing to train (check freeze= and stage=)")
    return [groups[r] for r in order]

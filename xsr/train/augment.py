"""Flips and 90-degree rotations that respect vector and pseudo-scalar variables.

A square patch of a physical field may be flipped or rotated to make new training samples, but the
*values* of some variables change with the frame: the components ``(u, v)`` of a horizontal
vector (velocity, wind, stress) change sign and swap, and pseudo-scalars such as vorticity change
sign under a reflection. The eight symmetries of the square (the dihedral group D4) are written
here as ``(k, flip)``: first mirror ``x`` if ``flip``, then rotate by ``k`` quarter turns
counter-clockwise in the physical ``(x, y)`` plane. Tensors are ``(N, C, H, W)`` or
``(N, C, T, H, W)`` with rows along ``y``; ``y_ascending`` says whether row index grows with
``y`` (the usual case) so that "counter-clockwise" is physical, not on-screen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "SYMMETRIES",
    "VariableSymmetry",
    "apply_symmetry",
    "random_symmetry",
    "variable_symmetry",
]

#: The eight symmetries of the square as ``(quarter_turns, mirror_x)``.
SYMMETRIES: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


@dataclass(frozen=True)
class VariableSymmetry:
    """How each channel transforms under flips and rotations.

    Attributes
    ----------
    pairs : list of (int, int)
        Channel indices ``(i_u, i_v)`` of horizontal vector pairs.
    pseudo : list of int
        Channels that change sign under a reflection (vorticity, stream function).
    unpaired_u, unpaired_v : list of int
        ``x`` (``y``) vector components whose partner is missing: rotations would be wrong for
        them, so only flips are allowed.

    Examples
    --------
    >>> VariableSymmetry(pairs=[(1, 2)]).rotations_allowed
    True
    """

    pairs: list[tuple[int, int]] = field(default_factory=list)
    pseudo: list[int] = field(default_factory=list)
    unpaired_u: list[int] = field(default_factory=list)
    unpaired_v: list[int] = field(default_factory=list)

    @property
    def unpaired(self) -> list[int]:
        """All vector components without a partner."""
        return sorted(self.unpaired_u + self.unpaired_v)

    @property
    def rotations_allowed(self) -> bool:
        """Whether 90-degree rotations are safe (no lone vector component)."""
        return not self.unpaired

    @property
    def allowed(self) -> tuple[tuple[int, bool], ...]:
        """The symmetries that are safe for these variables."""
        if self.rotations_allowed:
            return SYMMETRIES
        # mirror x, mirror y (= rotate by 2 after mirror x), and both (= rotate by 2)
        return ((0, False), (0, True), (2, True), (2, False))


def _component(name: str, standard_name: str | None) -> tuple[str, str] | None:
    """``("u"|"v", key)`` where ``key`` identifies the vector the component belongs to."""
    if standard_name:
        sn = standard_name.lower()
        for word, comp in (("eastward_", "u"), ("northward_", "v"), ("x_", "u"), ("y_", "v")):
            if sn.startswith(word):
                return comp, "sn:" + sn[len(word) :]
            if f"_{word}" in sn:
                return comp, "sn:" + sn.replace(f"_{word}", "_", 1)
    m = re.fullmatch(r"(?P<pre>[A-Za-z]*?_?)(?P<c>[uUvV])(?P<post>[_0-9a-z]*)", name)
    if m and (m["pre"] == "" or m["pre"].endswith("_")) and not m["post"][:1].isalpha():
        return m["c"].lower(), "nm:" + m["pre"] + "?" + m["post"]
    m = re.fullmatch(r"(?P<c>[uUvV])(?P<post>[a-z]{1,2}[0-9]*)", name)  # ua/va, uo/vo, uas/vas
    if m and m["post"][:1] in "aosw":
        return m["c"].lower(), "nm:?" + m["post"]
    return None


def variable_symmetry(
    names: Sequence[str], standard_names: Sequence[str | None] | None = None
) -> VariableSymmetry:
    """Recognise vector pairs and pseudo-scalars among variables.

    Components are recognised from CF ``standard_name`` (``eastward_*``/``northward_*``,
    ``x_*``/``y_*``) or from names that differ only in the letter ``u``/``v`` (``u``/``v``,
    ``u10``/``v10``, ``ua``/``va``, ``uo``/``vo``, ``uas``/``vas``, ``ocean_u``/``ocean_v``).
    Names or standard names containing ``vorticity`` or ``streamfunction``/``stream_function``
    are pseudo-scalars.

    Parameters
    ----------
    names : sequence of str
        Variable names, in channel order.
    standard_names : sequence of str or None, optional
        CF standard names, in the same order (``None`` where absent).

    Returns
    -------
    VariableSymmetry

    Examples
    --------
    >>> variable_symmetry(["h", "u", "v"])
    VariableSymmetry(pairs=[(1, 2)], pseudo=[], unpaired_u=[], unpaired_v=[])
    >>> variable_symmetry(["u10"]).unpaired
    [0]
    """
    names = list(names)
    sns = list(standard_names) if standard_names is not None else [None] * len(names)
    if len(sns) != len(names):
        raise ValueError("standard_names must have one entry per name")
    found: dict[str, dict[str, int]] = {}
    pseudo: list[int] = []
    for i, (name, sn) in enumerate(zip(names, sns)):
        text = f"{name} {sn or ''}".lower()
        if "vorticity" in text or "streamfunction" in text or "stream_function" in text:
            pseudo.append(i)
            continue
        comp = _component(name, sn)
        if comp is not None:
            found.setdefault(comp[1], {})[comp[0]] = i
    pairs: list[tuple[int, int]] = []
    lone: dict[str, list[int]] = {"u": [], "v": []}
    for comps in found.values():
        if "u" in comps and "v" in comps:
            pairs.append((comps["u"], comps["v"]))
        else:
            for comp, i in comps.items():
                lone[comp].append(i)
    return VariableSymmetry(
        pairs=sorted(pairs),
        pseudo=pseudo,
        unpaired_u=sorted(lone["u"]),
        unpaired_v=sorted(lone["v"]),
    )


def apply_symmetry(
    x: torch.Tensor,
    k: int,
    flip: bool,
    symmetry: VariableSymmetry | None = None,
    *,
    y_ascending: bool = True,
) -> torch.Tensor:
    """Mirror ``x`` (if ``flip``) then rotate by ``k`` quarter turns, transforming the values.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` or ``(N, C, T, H, W)``, rows along ``y`` and columns along ``x``.
        Rotations need ``H == W``.
    k : int
        Counter-clockwise quarter turns in the physical ``(x, y)`` plane.
    flip : bool
        Mirror ``x -> -x`` first.
    symmetry : VariableSymmetry, optional
        Vector pairs and pseudo-scalars among the channels; ``None`` treats every channel as a
        scalar.
    y_ascending : bool, default True
        Whether the row index grows with ``y``. With descending ``y`` (latitude from north to
        south) a counter-clockwise turn is the opposite array rotation.

    Returns
    -------
    torch.Tensor
        The transformed tensor (a new tensor; ``x`` is not changed).

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 2, 2, 2)
    >>> x[0, 0] = 1.0                    # u = 1 (eastward), v = 0
    >>> s = variable_symmetry(["u", "v"])
    >>> y = apply_symmetry(x, 1, False, s)   # a quarter turn: the flow now points north
    >>> y[0, :, 0, 0].tolist()
    [-0.0, 1.0]
    """
    k = int(k) % 4
    symmetry = symmetry or VariableSymmetry()
    if k % 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotations need square patches, got H={x.shape[-2]}, W={x.shape[-1]}")
    if symmetry.unpaired and k % 2:
        raise ValueError(
            f"channels {symmetry.unpaired} are vector components without a partner; "
            "rotate only with both components present (flips are fine)"
        )
    out = x
    if flip:
        out = torch.flip(out, dims=(-1,))
        sign = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
        for i in [iu for iu, _ in symmetry.pairs] + symmetry.unpaired_u + symmetry.pseudo:
            sign[i] = -1
        out = out * sign.reshape((1, -1) + (1,) * (x.ndim - 2))
    if k:
        # physical CCW with y up: A'[i, j] = A[n-1-j, i] == torch.rot90(A, 1, dims=(-1, -2))
        dims = (-1, -2) if y_ascending else (-2, -1)
        out = torch.rot90(out, k, dims=dims)
        if symmetry.pairs:
            out = out.clone()
            for iu, iv in symmetry.pairs:
                u, v = out[:, iu].clone(), out[:, iv].clone()
                for _ in range(k):
                    u, v = -v, u
                out[:, iu], out[:, iv] = u, v
        if k == 2 and symmetry.unpaired:
            out = out.clone()
            out[:, symmetry.unpaired] = -out[:, symmetry.unpaired]
    return out


def random_symmetry(rng: np.random.Generator, symmetry: VariableSymmetry) -> tuple[int, bool]:
    """Draw one of the symmetries allowed for these variables.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (seeded for reproducible training).
    symmetry : VariableSymmetry
        Which symmetries are safe.

    Returns
    -------
    (int, bool)
        ``(quarter_turns, mirror_x)``.

    Examples
    --------
    >>> import numpy as np
    >>> random_symmetry(np.random.default_rng(0), variable_symmetry(["h"])) in SYMMETRIES
    True
    """
    allowed = symmetry.allowed
    return allowed[int(rng.integers(len(allowed)))]

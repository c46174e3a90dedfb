"""Tests for variable-aware flips and rotations (xsr.train.augment)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr.train.augment import (
    SYMMETRIES,
    VariableSymmetry,
    apply_symmetry,
    random_symmetry,
    variable_symmetry,
)


def _velocity(n: int = 24, seed: int = 0) -> torch.Tensor:
    """A smooth periodic (u, v) field (1, 2, n, n) on a grid with y ascending along rows."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n)
    damp = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) * 60)
    fields = [np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * damp).real for _ in "uv"]
    return torch.tensor(np.stack(fields)[None], dtype=torch.float64)


def _ddx(f: torch.Tensor) -> torch.Tensor:  # centred, periodic, columns = x
    return (torch.roll(f, -1, -1) - torch.roll(f, 1, -1)) / 2


def _ddy(f: torch.Tensor, y_ascending: bool = True) -> torch.Tensor:  # rows = y
    d = (torch.roll(f, -1, -2) - torch.roll(f, 1, -2)) / 2
    return d if y_ascending else -d


def _vorticity(uv: torch.Tensor, y_ascending: bool = True) -> torch.Tensor:
    return _ddx(uv[:, 1:2]) - _ddy(uv[:, 0:1], y_ascending)


def _divergence(uv: torch.Tensor, y_ascending: bool = True) -> torch.Tensor:
    return _ddx(uv[:, 0:1]) + _ddy(uv[:, 1:2], y_ascending)


@pytest.mark.parametrize(("k", "flip"), SYMMETRIES)
@pytest.mark.parametrize("y_ascending", [True, False])
def test_vorticity_and_divergence_transform_like_physics(k, flip, y_ascending):
    uv = _velocity()
    sym = variable_symmetry(["u", "v"])
    out = apply_symmetry(uv, k, flip, sym, y_ascending=y_ascending)
    scalar = VariableSymmetry()
    zeta = _vorticity(uv, y_ascending)
    div = _divergence(uv, y_ascending)
    # vorticity is a pseudo-scalar: rotated with the field, sign flipped by a mirror
    expected_zeta = apply_symmetry(zeta, k, flip, scalar, y_ascending=y_ascending)
    expected_zeta = -expected_zeta if flip else expected_zeta
    torch.testing.assert_close(_vorticity(out, y_ascending), expected_zeta)
    # divergence is a true scalar
    expected_div = apply_symmetry(div, k, flip, scalar, y_ascending=y_ascending)
    torch.testing.assert_close(_divergence(out, y_ascending), expected_div)
    # and a declared pseudo-scalar channel follows the same rule
    zsym = variable_symmetry(["relative_vorticity"])
    torch.testing.assert_close(
        apply_symmetry(zeta, k, flip, zsym, y_ascending=y_ascending), expected_zeta
    )


def test_quarter_turn_of_eastward_flow_points_north():
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1] = 1.0  # u = 1, v = 0, h = 0
    out = apply_symmetry(x, 1, False, variable_symmetry(["h", "u", "v"]))
    assert torch.all(out[0, 1] == 0)
    assert torch.all(out[0, 2] == 1)


def test_mirror_x_negates_u_only():
    x = torch.ones(2, 2, 3, 4, 4)  # movie layout (N, C, T, H, W)
    out = apply_symmetry(x, 0, True, variable_symmetry(["u", "v"]))
    assert torch.all(out[:, 0] == -1)
    assert torch.all(out[:, 1] == 1)


@pytest.mark.parametrize(
    ("names", "standard_names", "pairs", "lone"),
    [
        (["u", "v", "h"], None, [(0, 1)], []),
        (["h", "u10", "v10", "t2m"], None, [(1, 2)], []),
        (["uo", "vo"], None, [(0, 1)], []),
        (["uas", "vas", "tas"], None, [(0, 1)], []),
        (["a", "b"], ["eastward_wind", "northward_wind"], [(0, 1)], []),
        (
            ["ss", "tt"],
            ["surface_downward_eastward_stress", "surface_downward_northward_stress"],
            [(0, 1)],
            [],
        ),
        (["uu", "vv"], ["sea_water_x_velocity", "sea_water_y_velocity"], [(0, 1)], []),
        (["h"], ["sea_floor_depth_below_sea_surface"], [], []),
        (["u"], None, [], [0]),
        (["h", "sst", "value"], None, [], []),
    ],
)
def test_variable_symmetry_recognises_vectors(names, standard_names, pairs, lone):
    sym = variable_symmetry(names, standard_names)
    assert sym.pairs == pairs
    assert sym.unpaired == lone


def test_lone_component_allows_only_flips():
    sym = variable_symmetry(["h", "u"])
    assert not sym.rotations_allowed
    assert all(k % 2 == 0 for k, _ in sym.allowed)
    x = torch.ones(1, 2, 4, 4)
    with pytest.raises(ValueError, match="without a partner"):
        apply_symmetry(x, 1, False, sym)
    # a y-mirror (mirror x then half turn) leaves u unchanged
    out = apply_symmetry(x, 2, True, sym)
    assert torch.all(out == 1)
    # a half turn negates u
    out = apply_symmetry(x, 2, False, sym)
    assert torch.all(out[:, 1] == -1)
    assert torch.all(out[:, 0] == 1)


def test_rotation_of_non_square_patch_is_refused():
    with pytest.raises(ValueError, match="square"):
        apply_symmetry(torch.zeros(1, 1, 4, 6), 1, False)


def test_standard_names_length_checked():
    with pytest.raises(ValueError, match="one entry per name"):
        variable_symmetry(["u", "v"], ["eastward_wind"])


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(0, 3),
    flip=st.booleans(),
    seed=st.integers(0, 2**16),
    y_ascending=st.booleans(),
)
def test_symmetry_is_invertible_and_norm_preserving(k, flip, seed, y_ascending):
    sym = variable_symmetry(["h", "u", "v"])
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = apply_symmetry(x, k, flip, sym, y_ascending=y_ascending)
    # speed |(u, v)| is a scalar field: it is moved, never changed
    speed = torch.sqrt(x[:, 1] ** 2 + x[:, 2] ** 2)[:, None]
    moved = apply_symmetry(speed, k, flip, None, y_ascending=y_ascending)
    torch.testing.assert_close(torch.sqrt(y[:, 1] ** 2 + y[:, 2] ** 2)[:, None], moved)
    # undo: rotate back, then mirror back
    back = apply_symmetry(y, -k, False, sym, y_ascending=y_ascending)
    back = apply_symmetry(back, 0, flip, sym, y_ascending=y_ascending)
    torch.testing.assert_close(back, x)


def test_random_symmetry_is_seeded_and_allowed():
    sym = variable_symmetry(["u"])
    draws = [random_symmetry(np.random.default_rng(3), sym) for _ in range(3)]
    assert len(set(draws)) == 1
    rng = np.random.default_rng(0)
    assert {random_symmetry(rng, sym) for _ in range(50)} == set(sym.allowed)

"""Tests for xsr.train.config: FitConfig is frozen, canonical and checks every option."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest

from xsr.train.config import FitConfig, normalise_periodic


def test_defaults_match_fit():
    import inspect

    from xsr.train.trainer import fit

    params = inspect.signature(fit).parameters
    for f in dataclasses.fields(FitConfig):
        if f.name == "model_config":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert params[f.name].default == default or (
            f.name in ("freeze", "layer_lr") and not params[f.name].default and not default
        ), f.name
    # every keyword of fit is a field (the architecture options as model_config)
    assert set(params) - {f.name for f in dataclasses.fields(FitConfig)} == {"model", "data"}


def test_frozen_and_canonical():
    cfg = FitConfig(
        variables="h",
        freeze="body",
        layer_lr={"body.0": 1e-4},
        dims=["lat", "lon"],
        epochs=np.int64(3),
        model_config={"d": 8},
    )
    assert cfg.variables == ("h",)
    assert cfg.freeze == ("body",)
    assert cfg.dims == ("lat", "lon")
    assert cfg.epochs == 3
    assert type(cfg.epochs) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.layer_lr["body.0"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.model_config["d"] = 4  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degrade": "nearest"}, "degrade must be one of"),
        ({"loss": "huber"}, "loss must be one of"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"nan_patches": "drop"}, "nan_patches must be one of"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"patch_size": True}, "patch_size must be a positive integer"),
        ({"val_blocks": 0}, "val_blocks must be a positive integer"),
        ({"patches_per_epoch": 0}, "patches_per_epoch must be a positive integer or None"),
        ({"patience": -1}, "patience must be a positive integer or None"),
        ({"scale": 0}, r"scale must be a positive integer \(e.g. 2\) or None"),
        ({"scale": 2.5}, "scale must be a positive integer"),
        ({"halo": -1}, "halo must be a non-negative integer or None"),
        ({"stage": -1}, "stage must be a non-negative integer"),
        ({"seed": "a"}, "seed must be an integer"),
        ({"lr": 0}, "lr must be a positive number"),
        ({"lr": float("nan")}, "lr must be a positive number"),
        ({"layer_lr": {"body": -1.0}}, r"layer_lr\['body'\] must be a positive number"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
        ({"val_fraction": "a"}, r"val_fraction must be in \[0, 1\)"),
        ({"resume": True}, "resume=True needs checkpoint="),
        ({"variables": []}, "variables= is empty"),
        ({"dims": "y"}, r"dims must be a \(y, x\) pair"),
        ({"periodic": "z"}, r"periodic must be None .* got 'z'"),
    ],
)
def test_bad_values_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FitConfig(**kwargs)


def test_callback_must_be_callable():
    with pytest.raises(TypeError, match="callback must be callable"):
        FitConfig(callback=3)


def test_resume_with_checkpoint(tmp_path: pathlib.Path):
    assert FitConfig(resume=True, checkpoint=tmp_path).resume is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (False, ()),
        ("none", ()),
        (True, ("x",)),
        ("x", ("x",)),
        ("y", ("y",)),
        ("xy", ("y", "x")),
        (("x", "y"), ("y", "x")),
        (["y"], ("y",)),
    ],
)
def test_periodic_has_the_meaning_of_upscale(value, expected):
    assert normalise_periodic(value) == expected
    assert FitConfig(periodic=value).periodic == expected


def test_fingerprint_fields_change_with_training_options():
    a, b = FitConfig(lr=1e-3), FitConfig(lr=2e-3)
    assert a.fingerprint_fields() != b.fingerprint_fields()
    assert FitConfig(progress=False).fingerprint_fields() == FitConfig().fingerprint_fields()

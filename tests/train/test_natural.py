"""Tests for natural-image pretraining data (xsr.train.natural)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from numpy.lib.stride_tricks import sliding_window_view

from xsr.train.natural import available_images, natural_image_patches, natural_images


def test_bundled_images_load_offline():
    names = available_images()
    assert {"camera", "moon", "coins"} <= set(names)
    assert "eagle" not in names  # needs a download: never listed


def test_patches_are_crops_of_the_photograph():
    p = natural_image_patches(3, 8, seed=5, images=["camera"])
    camera = skimage.data.camera().astype(np.float32) / 255
    windows = sliding_window_view(camera, (8, 8))
    for patch in p:
        hits = [
            np.argwhere(np.all(windows == np.rot90(patch, -k), axis=(-2, -1))) for k in range(4)
        ]
        assert any(len(h) for h in hits)


def test_colour_photograph_becomes_grey_in_unit_range():
    p = natural_image_patches(5, 32, seed=0, images=["astronaut", "coffee"])
    assert p.shape == (5, 32, 32)
    assert p.dtype == np.float32
    assert p.min() >= 0.0
    assert p.max() <= 1.0
    assert p.std() > 0


def test_seed_reproducible_and_varies():
    a = natural_image_patches(6, 16, seed=1)
    b = natural_image_patches(6, 16, seed=1)
    c = natural_image_patches(6, 16, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dataset_layout():
    ds = natural_images(4, 12, seed=3, images=["moon"])
    assert ds["image"].dims == ("time", "y", "x")
    assert ds["image"].shape == (4, 12, 12)
    assert ds.attrs["seed"] == 3
    assert "moon" in ds.attrs["source"]
    np.testing.assert_array_equal(
        ds["image"].values, natural_image_patches(4, 12, seed=3, images=["moon"])
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="not bundled"):
        natural_image_patches(2, 8, images=["eagle"])
    with pytest.raises(ValueError, match="larger than photographs"):
        natural_image_patches(2, 200, images=["microaneurysms"])
    with pytest.raises(ValueError, match="positive number"):
        natural_image_patches(0, 8)
    with pytest.raises(ValueError, match="patch_size"):
        natural_image_patches(2, 1)


def test_pretrain_on_natural_images_then_transfer(tmp_path):
    from xsr.models.files import save_model
    from xsr.testing import random_movie
    from xsr.train.trainer import fit

    photos = natural_images(24, 32, seed=0)
    natural, hist = fit(
        "fsrcnn",
        photos,
        variables=["image"],
        scale=2,
        epochs=2,
        batch_size=8,
        patch_size=4,
        patches_per_epoch=16,
        progress=False,
        d=8,
        s=4,
        m=1,
    )
    assert hist.sizes["epoch"] == 2
    assert natural.card.training["data_attrs"]["generator"] == "xsr.train.natural_images"
    path = save_model(natural, tmp_path / "fsrcnn-natural-x2")
    movie = random_movie(8, 32, 32, seed=1)
    model, hist = fit(
        "fsrcnn",
        movie,
        scale=2,
        init_from=path,
        freeze=["features.0"],
        epochs=1,
        batch_size=8,
        patch_size=4,
        patches_per_epoch=8,
        progress=False,
        d=8,
        s=4,
        m=1,
    )
    np.testing.assert_array_equal(
        model.features[0].weight.detach().numpy(), natural.features[0].weight.detach().numpy()
    )

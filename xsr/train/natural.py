"""Natural-image pretraining data from the photographs bundled with scikit-image.

The report initialised its networks from weights trained on everyday photographs. Nothing can be
downloaded here, so the photographs that ship *inside* the scikit-image wheel are used: each is
converted to greyscale in ``[0, 1]`` and random square patches are cut from them. The patches are
returned as an ``xr.Dataset`` with dims ``(time, y, x)`` (``time`` indexes samples) and one
variable ``"image"``, so :func:`xsr.train.fit` trains on them exactly as on a movie.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["BUNDLED_IMAGES", "available_images", "natural_image_patches", "natural_images"]

#: ``skimage.data`` function name -> file shipped in the scikit-image package (no download).
BUNDLED_IMAGES: dict[str, str] = {
    "camera": "camera.png",
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "moon": "moon.png",
    "text": "text.png",
    "page": "page.png",
    "coins": "coins.png",
    "clock": "clock_motion.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "microaneurysms": "microaneurysms.png",
}


def _skimage_data():
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is a test dependency
        raise ImportError(
            "natural-image pretraining needs scikit-image: pip install 'xsr[natural]'"
        ) from err
    return skimage.data


def available_images() -> list[str]:
    """Names of the bundled photographs present in the installed scikit-image.

    Only files that ship inside the package are listed, so loading them never downloads.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "camera" in available_images()
    True
    """
    data = _skimage_data()
    folder = os.path.dirname(data.__file__)
    return [n for n, f in BUNDLED_IMAGES.items() if os.path.exists(os.path.join(folder, f))]


def _grey(name: str) -> np.ndarray:
    """Load one bundled photograph as float32 greyscale in [0, 1]."""
    img = np.asarray(getattr(_skimage_data(), name)())
    if img.dtype == bool:
        img = img.astype(np.float32)
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / np.iinfo(img.dtype).max
    else:
        img = img.astype(np.float32)
    if img.ndim == 3:
        rgb = img[..., :3]
        img = rgb @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)  # skimage rgb2gray
    return np.ascontiguousarray(img, dtype=np.float32)


def natural_image_patches(
    n: int,
    patch_size: int,
    *,
    seed: int = 0,
    images: Sequence[str] | None = None,
) -> np.ndarray:
    """Random greyscale patches cut from scikit-image's bundled photographs.

    Parameters
    ----------
    n : int
        Number of patches.
    patch_size : int
        Side of the square patches, in pixels.
    seed : int, default 0
        Seed of the numpy generator that picks photographs, positions and 90-degree turns.
    images : sequence of str, optional
        Names from :data:`BUNDLED_IMAGES`; default all that are installed.

    Returns
    -------
    numpy.ndarray
        ``(n, patch_size, patch_size)`` float32 in ``[0, 1]``.

    Examples
    --------
    >>> p = natural_image_patches(4, 16, seed=0, images=["camera"])
    >>> p.shape, p.dtype
    ((4, 16, 16), dtype('float32'))
    """
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of patches, got {n}")
    if int(patch_size) < 2:
        raise ValueError(f"patch_size must be at least 2 pixels, got {patch_size}")
    present = available_images()
    names = list(images) if images is not None else present
    unknown = [m for m in names if m not in present]
    if unknown or not names:
        raise ValueError(
            f"images {unknown or names} are not bundled photographs of this scikit-image; "
            f"choose from {present}"
        )
    photos = [_grey(m) for m in names]
    small = [m for m, p in zip(names, photos) if min(p.shape) < patch_size]
    if small:
        raise ValueError(
            f"patch_size={patch_size} is larger than photographs {small}; "
            "use a smaller patch_size or leave them out of images="
        )
    rng = np.random.default_rng(seed)
    out = np.empty((int(n), patch_size, patch_size), dtype=np.float32)
    which = rng.integers(len(photos), size=int(n))
    for i, w in enumerate(which):
        photo = photos[w]
        y0 = int(rng.integers(photo.shape[0] - patch_size + 1))
        x0 = int(rng.integers(photo.shape[1] - patch_size + 1))
        out[i] = np.rot90(photo[y0 : y0 + patch_size, x0 : x0 + patch_size], int(rng.integers(4)))
    return out


def natural_images(
    n: int = 256,
    patch_size: int = 64,
    *,
    seed: int = 0,
    images: Sequence[str] | None = None,
) -> xr.Dataset:
    """A Dataset of natural-image patches that :func:`xsr.train.fit` trains on like a movie.

    Parameters
    ----------
    n : int, default 256
        Number of patches (the ``time`` dimension indexes them).
    patch_size : int, default 64
        Side of each patch in pixels.
    seed : int, default 0
        Seed for the choice of photographs and positions.
    images : sequence of str, optional
        Which bundled photographs to use (default all that are installed).

    Returns
    -------
    xarray.Dataset
        Variable ``"image"`` (``time``, ``y``, ``x``), float32 greyscale in ``[0, 1]``, with
        pixel-index coordinates and attributes recording the source and seed. Neighbouring
        ``time`` entries are unrelated photographs: use it with 2D models (window 1).

    Examples
    --------
    >>> ds = natural_images(8, 16, seed=1)
    >>> ds["image"].dims, ds.sizes["time"]
    (('time', 'y', 'x'), 8)
    """
    names = list(images) if images is not None else available_images()
    data = natural_image_patches(n, patch_size, seed=seed, images=names)
    coords = {
        "time": ("time", np.arange(n), {"long_name": "sample index"}),
        "y": ("y", np.arange(patch_size, dtype="float64") + 0.5, {"units": "1", "axis": "Y"}),
        "x": ("x", np.arange(patch_size, dtype="float64") + 0.5, {"units": "1", "axis": "X"}),
    }
    attrs = {
        "title": "natural-image patches for pretraining",
        "source": "scikit-image bundled photographs (greyscale): " + ", ".join(names),
        "generator": "xsr.train.natural_images",
        "seed": int(seed),
        "patch_size": int(patch_size),
    }
    var_attrs = {"units": "1", "long_name": "greyscale intensity"}
    return xr.Dataset({"image": (("time", "y", "x"), data, var_attrs)}, coords=coords, attrs=attrs)

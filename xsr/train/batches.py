"""Patches to tensors for :func:`xsr.train.fit`: normalise, mask NaN, prefetch, augment.

:class:`BatchStream` reads the patches of a :class:`~xsr.train.patches.PatchSet` a batch at a
time (the next batch is read from dask or disk while the model works on this one), normalises
them with the training statistics, replaces missing inputs by 0 (the mean) and returns the
finite-target mask with them; a patch whose target is entirely NaN for a variable is an error
or skipped (``nan_patches=``). :func:`augment` applies random flips and quarter turns that
respect vector pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from xsr.engine.inference import extend_into_mask
from xsr.train.augment import apply_symmetry
from xsr.train.patches import Batch, PatchSet

__all__ = ["BatchStream", "augment", "to_tensors"]

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def to_tensors(
    batch: Batch,
    mean: np.ndarray,
    std: np.ndarray,
    window: int,
    device: torch.device,
    fill_steps: int = 0,
) -> Tensors:
    """Normalise a batch, fill masked inputs as inference does; return ``(lr, hr, finite-mask)``.

    Masked (NaN or infinite) input cells within ``fill_steps`` cells of valid ones continue the
    field (:func:`xsr.engine.inference.extend_into_mask`, what the engine does with a model's
    receptive radius before every forward), the others are 0 (the mean), so that a network
    learns near a coast from the inputs it will be given there.

    Parameters
    ----------
    batch : Batch
    mean, std : numpy.ndarray
        Per-variable float32 statistics.
    window : int
        Frames per sample; with 1 the time axis of ``lr`` is dropped.
    device : torch.device
    fill_steps : int, default 0
        How far masked input cells are filled from valid neighbours (0: all are 0).

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)

    Examples
    --------
    >>> b = Batch(lr=np.full((1, 1, 1, 2, 2), np.nan), hr=np.ones((1, 1, 4, 4)),
    ...           positions=np.zeros((1, 3), dtype=int))
    >>> lr, hr, mask = to_tensors(b, np.zeros(1, "f4"), np.ones(1, "f4"), 1, torch.device("cpu"))
    >>> lr.shape, float(lr.abs().sum()), bool(mask.all())
    (torch.Size([1, 1, 2, 2]), 0.0, True)
    """
    shape_lr = (1, -1, 1, 1, 1)
    lr = (batch.lr.astype(np.float32) - mean.reshape(shape_lr)) / std.reshape(shape_lr)
    hr = (batch.hr.astype(np.float32) - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
    mask = np.isfinite(hr)
    if fill_steps > 0 and not np.isfinite(lr).all():
        lr_t = torch.from_numpy(np.where(np.isfinite(lr), lr, np.nan).astype(np.float32))
        lr = extend_into_mask(lr_t, torch.isnan(lr_t), fill_steps).numpy()
    lr = np.nan_to_num(lr, nan=0.0, posinf=0.0, neginf=0.0)
    hr = np.where(mask, hr, 0.0).astype(np.float32)
    if window == 1:
        lr = lr[:, :, 0]
    return (
        torch.from_numpy(np.ascontiguousarray(lr)).to(device),
        torch.from_numpy(np.ascontiguousarray(hr)).to(device),
        torch.from_numpy(mask).to(device),
    )


class BatchStream:
    """Batches of normalised tensors from patch sets.

    Parameters
    ----------
    mean, std : numpy.ndarray
        Per-variable statistics (physical units).
    window, batch_size : int
    device : torch.device
    nan_patches : {"raise", "skip"}
    names : dict
        ``time_dim``, ``y``, ``x`` (dimension names) and ``periodic`` ((bool, bool)), for
        messages.
    fill_steps : int, default 0
        Passed to :func:`to_tensors` (``fit`` gives the model's receptive radius).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> from xsr.train.patches import stack_samples
    >>> hr = stack_samples(random_movie(2, 8, 8), ["h"], "time", ("y", "x"))
    >>> ps = PatchSet(hr, hr.coarsen(y=2, x=2).mean(), variables=["h"], scale=2, window=1,
    ...               patch_size=2, blocks=[(0, 2)], time_dim="time", dims=("y", "x"))
    >>> stream = BatchStream(np.zeros(1), np.ones(1), window=1, batch_size=4,
    ...                      device=torch.device("cpu"), nan_patches="raise",
    ...                      names={"time_dim": "time", "y": "y", "x": "x"})
    >>> [lr.shape[0] for lr, hr, mask in stream(ps, np.arange(len(ps)), "training")]
    [4, 4]
    """

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        window: int,
        batch_size: int,
        device: torch.device,
        nan_patches: str,
        names: dict[str, Hashable],
        fill_steps: int = 0,
    ) -> None:
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.fill_steps = fill_steps
        self.window, self.batch_size, self.device = window, batch_size, device
        self.nan_patches, self.names = nan_patches, names

    def __call__(self, pset: PatchSet, order: np.ndarray, split: str) -> Iterator[Tensors]:
        """Yield ``(lr, hr, mask)`` for the patches ``order`` of ``pset``, in that order."""
        size = self.batch_size
        chunks = [order[i : i + size] for i in range(0, len(order), size)]
        if not chunks:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsr-fit-io") as pool:
            pending = pool.submit(pset.load, chunks[0])
            for k in range(len(chunks)):
                batch = pending.result()
                if k + 1 < len(chunks):
                    pending = pool.submit(pset.load, chunks[k + 1])
                lr, hr, mask = to_tensors(
                    batch, self.mean, self.std, self.window, self.device, self.fill_steps
                )
                bad = ~mask.flatten(2).any(dim=-1).all(dim=-1)  # some channel has no target
                if bool(bad.any()):
                    if self.nan_patches == "raise":
                        raise self._nan_error(pset, batch, bad.cpu().numpy(), split)
                    keep = ~bad
                    lr, hr, mask = lr[keep], hr[keep], mask[keep]
                    if lr.shape[0] == 0:
                        continue
                yield lr, hr, mask

    def _nan_error(self, pset: PatchSet, batch: Batch, bad: np.ndarray, split: str) -> ValueError:
        t0, i0, j0 = (int(v) for v in batch.positions[int(np.flatnonzero(bad)[0])])
        # on a periodic axis the patch set's data are padded by its halo, wrapping around
        periodic = self.names.get("periodic", (False, False))
        i0, j0 = i0 - pset.halo * periodic[0], j0 - pset.halo * periodic[1]
        p, s, r, names = pset.patch_size, pset.scale, pset.radius, self.names
        return ValueError(
            f"a {split} patch is entirely NaN for some variable (target frame "
            f"{names['time_dim']}={t0 + r}, {names['y']}={s * i0}:{s * (i0 + p)}, "
            f"{names['x']}={s * j0}:{s * (j0 + p)} of the high-resolution data); pass "
            "nan_patches='skip' to drop such patches (e.g. land-masked data), or select a region "
            "or variables with data"
        )


def augment(
    lr: torch.Tensor,
    hr: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    symmetry: Any,
    y_ascending: bool,
) -> Tensors:
    """Apply a random allowed flip/quarter turn to each sample (square patches only).

    Parameters
    ----------
    lr, hr, mask : torch.Tensor
        A batch as from :class:`BatchStream`.
    rng : numpy.random.Generator
        Draws one symmetry per sample (drawn even when the patches are not square).
    symmetry : VariableSymmetry
        From :func:`xsr.train.augment.variable_symmetry`.
    y_ascending : bool
        Whether the y coordinate increases with the index (a descending one flips ``v``).

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)

    Examples
    --------
    >>> from xsr.train.augment import variable_symmetry
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> out = augment(x, x, x > -1, np.random.default_rng(0), variable_symmetry(["h"]), True)
    >>> out[0].shape
    torch.Size([1, 1, 2, 2])
    """
    allowed = symmetry.allowed
    draws = rng.integers(len(allowed), size=lr.shape[0])
    if lr.shape[-1] != lr.shape[-2]:
        return lr, hr, mask
    lr, hr, mask = lr.clone(), hr.clone(), mask.clone()
    for d in np.unique(draws):
        k, flip = allowed[int(d)]
        if k == 0 and not flip:
            continue
        idx = torch.from_numpy(np.flatnonzero(draws == d)).to(lr.device)
        lr[idx] = apply_symmetry(lr[idx], k, flip, symmetry, y_ascending=y_ascending)
        hr[idx] = apply_symmetry(hr[idx], k, flip, symmetry, y_ascending=y_ascending)
        mask[idx] = (
            apply_symmetry(mask[idx].to(lr.dtype), k, flip, None, y_ascending=y_ascending) > 0
        )
    return lr, hr, mask

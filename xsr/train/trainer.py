"""``fit``: train a super-resolution model on an xarray movie, streaming patches from dask.

The recipe is the report's: Adam, a learning-rate schedule, early stopping on the validation loss
with patience, best-checkpoint saving, transfer learning by copying matched layers and freezing
some of them, and the two-stage method for chains (train one stage with the others fixed).

:func:`fit` checks its options into a frozen :class:`~xsr.train.config.FitConfig` and runs the
stages, each in its module: data (:mod:`xsr.train.data`), model (:mod:`xsr.train.model`),
checkpoint (:mod:`xsr.train.resume`), loop (:mod:`xsr.train.loop`), history and model card
(:mod:`xsr.train.card`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import torch
import xarray as xr

from xsr.engine import resolve_device
from xsr.train.base import fit_linear_base
from xsr.train.batches import BatchStream
from xsr.train.card import finish_model, history, model_card
from xsr.train.config import FitConfig
from xsr.train.data import make_patches, select, statistics, symmetry
from xsr.train.field import field_card, field_selection
from xsr.train.loop import LoopState, Predictor, Validation, make_optimizer, run_epochs, start
from xsr.train.model import kept_normalisation, prepare_model
from xsr.train.resume import RunSaver, resume, run_fingerprint
from xsr.train.site import fit_site

__all__ = ["fit"]


def fit(
    model: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    variables: Sequence[str] | str | None = None,
    scale: int | None = None,
    degrade: str = "coarsen",
    dims: Sequence[Hashable] | None = None,
    time_dim: Hashable = "time",
    periodic: Any = None,
    epochs: int = 50,
    batch_size: int = 16,
    patch_size: int = 32,
    halo: int | None = None,
    patches_per_epoch: int | None = None,
    val_fraction: float = 0.2,
    val_blocks: int = 1,
    lr: float = 1e-3,
    lr_schedule: str | None = "cosine",
    patience: int | None = 5,
    augment: bool = True,
    init_from: Any = None,
    freeze: str | Sequence[str] = (),
    layer_lr: Mapping[str, float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    loss: str = "mse",
    stage: int | None = None,
    nan_patches: str = "raise",
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    keep_start: bool = False,
    site: bool = False,
    **model_config: Any,
) -> tuple[torch.nn.Module, xr.Dataset]:
    """Train a super-resolution model on a movie; return it with its per-epoch history.

    Low-resolution inputs are made from ``data`` by :func:`xsr.degradation.degrade` (the operator
    used at evaluation), normalised with the per-variable mean and standard deviation of the
    training split (computed lazily), and cut with :mod:`xbatcher` into aligned
    ``(time=window, y=patch_size, x=patch_size)`` windows (plus a ``halo`` of context) whose
    target is the high-resolution centre frame. The last ``val_fraction`` of the time axis (in
    ``val_blocks`` contiguous blocks) is held out; no window crosses a split. Patches are
    loaded one batch at a time, so a dask/Zarr-backed archive is streamed, never loaded whole.

    The options are checked and frozen into a :class:`~xsr.train.config.FitConfig`, then the
    stages run in order: data (:mod:`xsr.train.data`), model (:mod:`xsr.train.model`),
    checkpoint and resume (:mod:`xsr.train.resume`), the training loop
    (:mod:`xsr.train.loop`), history and model card (:mod:`xsr.train.card`).

    Parameters
    ----------
    model : str, path or SRModel
        An architecture name (built with ``get_model(model, scale=scale,
        channels=len(variables), **model_config)``), a pretrained name or model file (fine-tuning)
        or an :class:`~xsr.models.base.SRModel` (a copy is trained). Fine-tuning keeps the
        loaded card's normalisation when its variables are the ones learnt. A *field* model
        (card ``kind: "field"``, e.g. ``"field-xsrnet-x2"``) learns from every selected
        variable at once: each variable's frames (and those of its extra dims) become samples
        of one field, normalised by their low-resolution frame's mean and standard deviation
        as at inference (:mod:`xsr.train.field`), and the result is a field model again. A
        network with a learned linear base (xsrnet's ``base="linear"``, the universal models)
        first has that base solved in closed form on the training split, given the rest of the
        network (:mod:`xsr.train.base`); the gradient steps then train the rest, the base kept
        fixed.
    data : xarray.Dataset or xarray.DataArray
        High-resolution movie with a time and two spatial dims (extra dims become samples).
        Eager or dask-backed.
    variables : str or sequence of str, optional
        Variables to learn (the model's channels, in order); default every variable on the time
        and spatial dims.
    scale : int, optional
        Upscaling factor; required with an architecture name, checked against a given model.
    degrade : {"coarsen", "bicubic"}, default "coarsen"
        Degradation that makes the low-resolution inputs.
    dims : (str, str), optional
        Spatial ``(y, x)`` dims; found from names or CF attributes by default.
    time_dim : str, default "time"
    periodic : None, False, "x", "y" or ("y", "x"), default None
        Spatial axes that wrap around, with the meaning of :func:`xsr.upscaling.upscale`:
        ``None`` reads them from the data (:func:`xsr.coords.periodic_dims`: a dimension
        coordinate with a ``period`` attribute, or a global longitude). On a periodic axis the
        degradation, the patches' halo of context and the validation (and its bicubic baseline)
        wrap across the seam, so every cell can be a target; its size must be a multiple of
        ``scale``. Other axes are bounded: patches stay inside the data.
    epochs : int, default 50
    batch_size : int, default 16
    patch_size : int, default 32
        Low-resolution patch side (the target is ``scale * patch_size``).
    halo : int, optional
        Low-resolution context cells added around every patch, whose output is cropped away
        before the loss, as the engine does at inference. Default: the model's
        ``receptive_radius``, so no target pixel sees the model's zero padding; 0 trains on
        bare patches.
    patches_per_epoch : int, optional
        Training patches drawn (seeded) per epoch; default all of them (half-overlapping grid).
        Also caps the validation set at a proportional number of patches.
    val_fraction : float, default 0.2
        Fraction of frames held out for validation; 0 trains on everything (no early stopping).
    val_blocks : int, default 1
        Number of contiguous validation blocks (1: the end of the record).
    lr : float, default 1e-3
        Adam learning rate.
    lr_schedule : {"cosine", "plateau", None}, default "cosine"
        Cosine annealing over ``epochs``, halving on a validation plateau, or constant.
    patience : int or None, default 5
        Stop after this many epochs without a better validation loss (the report used 5).
    augment : bool, default True
        Random flips and quarter turns that respect vector pairs (u, v) and pseudo-scalars.
    init_from : str, path, SRModel or state dict, optional
        Copy every tensor whose name and shape match (transfer learning).
    freeze : str or sequence of str
        Layers or parameters kept fixed.
    layer_lr : mapping of str to float, optional
        Per-layer learning rates, e.g. ``{"body.0": 1e-4}``.
    checkpoint : str or path, optional
        Folder for the best weights, the last epoch's weights and optimizer state and the run
        state (safetensors + JSON).
    resume : bool, default False
        Continue from ``checkpoint`` when it holds a finished epoch of the same run.
    device : str or torch.device, default "auto"
        Resolved by :func:`xsr.engine.resolve_device`, as for inference: ``"auto"`` is CUDA
        when torch sees a GPU, else the CPU (``XSR_DEVICE`` in the environment, when set, is
        what ``"auto"`` means); Apple ``"mps"`` only when asked for.
    seed : int, default 0
        Seeds weight initialisation, patch sampling and augmentation: same seed, same history.
    progress : bool, default True
        A tqdm bar over epochs with the loss and validation PSNR.
    loss : {"mse", "mae", "psnr"}, default "mse"
        Training loss, on normalised values, ignoring NaN targets; the validation loss (which
        picks the best epoch) is the same. ``"psnr"`` is the mean over patches of
        ``10 * log10(MSE)`` (the negative mean per-patch PSNR, up to a constant): use it when
        the error varies by orders of magnitude between patches or frames and the mean
        per-frame PSNR is what counts (it keeps a refiner from trading easy frames for hard
        ones).
    stage : int, optional
        For a ``"chain"`` model, the report's two-stage method: train only
        ``model.stages[stage]`` on the output of the earlier (fixed) stages; the loss and the
        metrics are on the output of ``stages[:stage + 1]`` (its centre frame), so the later
        stages are ignored. ``stages[:stage + 1]`` must already upscale by the chain's
        ``scale`` (e.g. a 2D x2 stage then a 3D x1 refiner). Train ``stage=0`` first, then
        ``stage=1`` from the returned model.
    nan_patches : {"raise", "skip"}, default "raise"
        What to do with a patch whose target is entirely NaN for a variable. NaN cells are
        masked everywhere: left out of the loss, the statistics and the metrics; in the
        inputs, those within the model's receptive radius of valid cells continue the field
        as inference continues it (:func:`xsr.engine.inference.extend_into_mask`), the others
        are 0 (the mean). Infinite cells (+inf, -inf) are treated exactly like
        NaN, with an :class:`~xsr.train.data.InfiniteValuesWarning` naming the variable and
        the count.
    callback : callable, optional
        ``callback(epoch, record)`` after every epoch (after the checkpoint is written).
    keep_start : bool, default False
        Score the starting weights on the validation patches first (as epoch 0): when no epoch
        beats them, they are what is returned (``best_epoch`` 0), and patience counts from
        them. For fine-tuning and refinement (``init_from=``, a chain's later ``stage``), so
        that training never returns a model worse on validation than the one it started from.
    site : bool, default False
        For a field model fine-tuned on one grid: after the epochs, learn each variable's *site
        detail* (:mod:`xsr.train.site`), the stationary sub-grid pattern the network leaves out
        (orography, coastlines), kept only as far as it holds on the validation frames. The
        returned model adds it when upscaling data on this grid (a subset or a selection of its
        levels too) and refuses other grids; it is saved in the model file. Without it (the
        default) the model stays grid-free. Not for data whose held-out part is another region.
    **model_config
        Extra architecture options when ``model`` is a name.

    Returns
    -------
    (SRModel, xarray.Dataset)
        The model with the best validation loss, in eval mode, with a complete ``card``; and the
        history: per-epoch ``loss``, ``val_loss``, ``lr`` and ``train_``/``val_`` MSE, MAE, PSNR
        and SSIM per variable in physical units. Attributes hold the bicubic baseline on the same
        validation patches (``bicubic_val_psnr`` ...), the PSNR ``data_range`` per variable and
        ``best_epoch``.

    Raises
    ------
    ValueError
        Unknown model name, missing variables, fewer frames than the window, patches larger
        than the data, a periodic axis that is not a multiple of ``scale``, an all-NaN patch
        or variable, an unusable checkpoint, or bad arguments (the message names the argument).
    FloatingPointError
        The training loss became NaN or infinite (the learning rate is too high).

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> ds = random_movie(12, 32, 32, seed=0)
    >>> model, hist = fit("fsrcnn", ds, variables=["h"], scale=2, epochs=2, patch_size=4,
    ...                   batch_size=4, patches_per_epoch=8, progress=False)
    >>> hist.sizes["epoch"], model.card.scale
    (2, 2)
    """
    cfg = FitConfig(
        variables=variables,
        scale=scale,
        degrade=degrade,
        dims=dims,
        time_dim=time_dim,
        periodic=periodic,
        epochs=epochs,
        batch_size=batch_size,
        patch_size=patch_size,
        halo=halo,
        patches_per_epoch=patches_per_epoch,
        val_fraction=val_fraction,
        val_blocks=val_blocks,
        lr=lr,
        lr_schedule=lr_schedule,
        patience=patience,
        augment=augment,
        init_from=init_from,
        freeze=freeze,
        layer_lr=layer_lr,
        checkpoint=checkpoint,
        resume=resume,
        device=device,
        seed=seed,
        progress=progress,
        loss=loss,
        stage=stage,
        nan_patches=nan_patches,
        callback=callback,
        keep_start=keep_start,
        site=site,
        model_config=model_config,
    )
    dev = resolve_device(cfg.device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    # seeding inside fork_rng: a seeded fit leaves the caller's global torch RNG untouched
    with torch.random.fork_rng(devices=cuda), _flush_denormals():
        return fit_config(model, data, cfg, dev)


@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while training, then restore the default.

    Small weights (PReLU slopes that start at 0, a residual output scaled down at start) make
    denormal activations and gradients, on which CPU arithmetic is many times slower; flushing
    them changes values only below float32's normal range (about 1e-38).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def fit_config(
    model: Any, data: xr.Dataset | xr.DataArray, cfg: FitConfig, device: torch.device
) -> tuple[torch.nn.Module, xr.Dataset]:
    """Run the stages of :func:`fit` with a checked configuration, on a resolved device.

    Seeds torch's global generator (call it inside :func:`torch.random.fork_rng`, as
    :func:`fit` does, to leave the caller's state alone).

    Parameters
    ----------
    model : str, path or SRModel
    data : xarray.Dataset or xarray.DataArray
    cfg : FitConfig
    device : torch.device

    Returns
    -------
    (SRModel, xarray.Dataset)
        As :func:`fit`.

    Examples
    --------
    >>> from xsr.testing import random_movie
    >>> cfg = FitConfig(scale=2, epochs=1, patch_size=4, batch_size=4, patches_per_epoch=4,
    ...                 progress=False, model_config={"d": 8, "s": 4, "m": 1})
    >>> model, hist = fit_config("fsrcnn", random_movie(6, 32, 32), cfg, torch.device("cpu"))
    >>> int(hist.sizes["epoch"])
    1
    """
    sel = select(data, cfg)
    field = field_card(model)
    if cfg.site and field is None:
        raise ValueError(
            "site=True learns the site detail of a field model (card kind 'field', e.g. "
            "'field-xsrnet-x2'); this model is not one. Drop site= or fine-tune a field model."
        )
    if cfg.site and cfg.val_fraction == 0:
        raise ValueError(
            "site=True chooses how much site detail to keep on the validation frames; give "
            "val_fraction > 0."
        )
    grid = sel
    if field is not None:  # the variables become samples of one frame-normalised field
        sel = field_selection(sel, cfg, field.scale)
    prepared = prepare_model(model, cfg, variables=sel.variables, device=device)
    optimiser = make_optimizer(prepared.net, cfg)
    patches = make_patches(
        sel, cfg, scale=prepared.scale, window=prepared.window, halo=prepared.halo
    )
    fingerprint = run_fingerprint(cfg, sel, prepared)
    resumed = resume(cfg, fingerprint, prepared, optimiser)
    base_mse = None
    if resumed is not None:
        state, stats = resumed
    else:
        state, stats = (
            LoopState(),
            kept_normalisation(prepared.net, sel.variables, statistics(sel, patches)),
        )
        # a learned linear base is solved in closed form first (a resumed run already has it)
        base_mse = fit_linear_base(prepared.net, sel, cfg, patches, stats)

    names = {"time_dim": sel.time_dim, "y": sel.ydim, "x": sel.xdim, "periodic": sel.periodic}
    stream = BatchStream(
        stats.mean,
        stats.std,
        window=prepared.window,
        batch_size=cfg.batch_size,
        device=device,
        nan_patches=cfg.nan_patches,
        names=names,
        # masked inputs continue the field as the engine continues it at inference
        fill_steps=int(prepared.net.receptive_radius),
    )
    moments = tuple(
        torch.tensor(a, dtype=torch.float64, device=device)
        for a in (stats.std, stats.mean, stats.data_range)
    )
    validate = Validation(stream, patches.val, patches.val_idx, moments, cfg.loss, patches.val_halo)
    predictor = Predictor(
        prepared.net, prepared.scale, prepared.window, prepared.halo, cfg.patch_size, cfg.stage
    )
    saver = RunSaver(cfg, fingerprint, prepared, optimiser, stats)
    if resumed is None:
        start(state, validate, predictor, cfg)
        saver.save_best(state)
    run_epochs(
        state,
        cfg=cfg,
        train=patches.train,
        stream=stream,
        validate=validate,
        predictor=predictor,
        optimiser=optimiser,
        symmetry=symmetry(sel),
        save=saver,
    )
    net = finish_model(prepared, state)
    hist = history(cfg, sel, patches, stats, prepared, state, device)
    net.card = model_card(cfg, sel, patches, stats, prepared, state)
    if base_mse is not None:
        net.card.training["linear_base"] = {
            "method": "closed-form ridge least squares per sub-pixel phase of the target minus "
            "the network's detail, on the training split, before the gradient steps",
            "mse_normalised": base_mse,
        }
    if field is not None:
        net.card.kind = "field"
        net.site = None  # a started model's site detail was learnt for its old network
        if cfg.site:
            net.site, net.card.site = fit_site(net, grid, cfg, patches)
    return net, hist

"""Upscaling to archives: :func:`upscale_to_zarr` (any Dataset) and :func:`upscale_file` (files)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr.archive.encoding import is_packed, packing_for
from xsr.archive.errors import OVERWRITE_HINT as _OVERWRITE_HINT
from xsr.archive.errors import StoreExistsError
from xsr.archive.inputs import fingerprint_inputs, input_files
from xsr.archive.lock import DEFAULT_LOCK_TIMEOUT, store_lock
from xsr.archive.record import _dataset_identity, _is_dask, _plain, _read_state
from xsr.archive.regions import (
    DEFAULT_REGION_BYTES,
    _check_region_size,
    _default_region_size,
    _frame_bytes,
    _input_chunks,
    _time_dim,
)
from xsr.archive.stores import _check_writable, _explain_os_errors
from xsr.archive.write import (
    _UNNAMED,
    _as_dataset,
    _to_netcdf_streamed,
    write_zarr_resumable,
)
from xsr.digest import sha256_array, sha256_file, sha256_json
from xsr.io import ZARR_SUFFIXES, open_dataset
from xsr.site import site_digest

__all__ = ["upscale_file", "upscale_to_zarr"]

logger = logging.getLogger("xsr.archive")

#: Arguments that choose *where* or *how fast* to compute, not *what*: left out of fingerprints.
_NON_IDENTITY_ARGUMENTS = frozenset({"device", "batch_size", "progress"})
#: Output suffixes written as NetCDF (netCDF4 files).
_NETCDF_OUT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")


def _model_identity(model: Any) -> Any:
    """A JSON-able identity of ``model``: the sha256 of its weights wherever one can be found."""
    if model is None:
        return None
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        path = Path(text).expanduser()
        for candidate in (path, path.with_suffix(".safetensors")):
            if candidate.is_file():
                return {"file": candidate.name, "sha256": sha256_file(candidate)}
        shipped = _shipped_weights(text)
        if shipped is not None:
            return {"name": text, "sha256": sha256_file(shipped)}
        return {"name": text}
    state_dict = getattr(model, "state_dict", None)
    if callable(state_dict):
        # The weights themselves, not the card's hash: a model fine-tuned in memory after
        # loading keeps its card but is another job.
        tensors = {}
        for key, tensor in state_dict().items():
            values = tensor.detach().cpu()
            if str(values.dtype) == "torch.bfloat16":  # a dtype numpy lacks
                values = values.double()
            tensors[key] = sha256_array(values.numpy())
        identity = {
            "arch": getattr(model, "arch", type(model).__name__),
            "config": _plain(getattr(model, "config", None)),
            "state_sha256": sha256_json(tensors),
        }
        site = getattr(model, "site", None)
        if site:  # a field model's site detail changes the output as much as its weights
            identity["site_sha256"] = site_digest(site)
        return identity
    card = getattr(model, "card", None)
    sha = getattr(card, "sha256", None) if card is not None else None
    if sha is None and isinstance(card, Mapping):
        sha = card.get("sha256")
    if sha:
        return {"arch": getattr(model, "arch", type(model).__name__), "sha256": str(sha)}
    return {"repr": repr(model)}


def _shipped_weights(name: str) -> Path | None:
    """The ``.safetensors`` file of a shipped pretrained model called ``name``, if any."""
    try:
        from xsr.models.pretrained import PRETRAINED, pretrained_path
    except ImportError:
        return None
    if name not in PRETRAINED:
        return None
    path = Path(f"{pretrained_path(name)}.safetensors")
    return path if path.is_file() else None


def upscale_to_zarr(
    obj: xr.Dataset | xr.DataArray,
    store: Any,
    *,
    model: Any = None,
    scale: int | None = None,
    region_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    pack: bool = False,
    verify: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    **upscale_kwargs: Any,
) -> xr.Dataset | xr.DataArray:
    """Super-resolve ``obj`` into a Zarr store, streaming region by region, resumably.

    Equivalent to ``xsr.upscaling.upscale(obj, model, scale=scale, **upscale_kwargs)`` written with
    :func:`write_zarr_resumable` along the time dimension: memory is bounded by one region
    (plus the model's time halo), and a killed run called again with the same arguments computes
    only the missing regions. The job fingerprint holds the identity of ``obj`` (variables,
    shapes, dtypes, hashes of its coordinates, attributes and in-memory data; for variables as
    opened from a file, the sha256 of the file's content, so that a touched or copied input
    resumes; the dask names of other lazy variables), the model's weights sha256, ``scale``,
    ``region_size`` and the other arguments (but ``device`` and ``batch_size``, which choose how
    to compute, not what). The input files are checked unchanged before each region is marked
    complete (:class:`~xsr.archive.errors.InputChangedError` otherwise).

    Output variables keep the ``_FillValue``/``missing_value`` of floating-point inputs and are
    compressed with zarr's default compressor.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Low-resolution data with a time dimension (eager or dask-backed).
    store : str, path or zarr store
        Output Zarr store.
    model : str, path or model, optional
        What :func:`xsr.upscaling.upscale` accepts: a shipped model name, a model file, an
        ``SRModel``, or an interpolation method such as ``"bicubic"``.
    scale : int, optional
        Upscaling factor (passed on to ``upscale`` when given).
    region_size : int, optional
        Time steps per region. Default: the input's time chunk when it is chunked along time,
        capped so that one region of output is at most about 64 MiB.
    overwrite : bool, default False
        Replace an existing store (see :func:`write_zarr_resumable`).
    progress : bool, default True
        Show a progress bar over the regions.
    pack : bool, default False
        Store upscaled variables as ``int16`` with ``scale_factor``/``add_offset`` (CF
        packing; lossy: steps of 1/43690 of the data range). The input's packing is carried
        when its range holds the input's data range widened by a quarter on each side; else a
        packing is computed from that widened range (one pass over the input). Values that
        would not fit are refused, never wrapped.
    verify : bool, default False
        Check complete regions against their checksums before resuming; recompute bad ones.
    lock_timeout : float, default 10
        Seconds to wait for another process writing the same store before refusing.
    **upscale_kwargs
        Passed on to :func:`xsr.upscaling.upscale` (``dims``, ``time_dim``, ``conserve``,
        ``device``, ...).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The written store opened lazily.

    Raises
    ------
    StoreExistsError, JobMismatchError, ReadOnlyStoreError, StoreLockedError
        See :func:`write_zarr_resumable`.
    InputChangedError, CorruptStoreError
        See :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "x2.zarr")
    >>> hi = upscale_to_zarr(random_movie(4, 8, 8), path, model="bicubic", scale=2, progress=False)
    >>> hi["h"].shape
    (4, 16, 16)
    """
    job, lazy, dim, region_size, files = _plan(
        obj, store, model, scale, region_size, pack, upscale_kwargs
    )
    return write_zarr_resumable(
        lazy,
        store,
        regions_along=dim,
        region_size=region_size,
        job_id=job,
        overwrite=overwrite,
        progress=progress,
        verify=verify,
        inputs=files,
        lock_timeout=lock_timeout,
    )


def _plan(
    obj: xr.Dataset | xr.DataArray,
    store: Any,
    model: Any,
    scale: int | None,
    region_size: int | None,
    pack: bool,
    upscale_kwargs: Mapping[str, Any],
) -> tuple[dict[str, Any], xr.Dataset | xr.DataArray, Hashable, int, list[Path]]:
    """``(job, lazy result, region dimension, region size, input files)`` of an upscaling job."""
    from xsr.upscaling import upscale

    ds, _ = _as_dataset(obj, "obj")
    if model is None and scale is None:
        raise ValueError("pass model=<name, file or model> or scale=<int> (or both)")
    dim = _time_dim(ds, upscale_kwargs.get("time_dim"))
    if int(ds.sizes[dim]) == 0:
        raise ValueError(f"the data have no steps along {dim!r} (length 0): nothing to upscale")
    call_kwargs = dict(upscale_kwargs)
    call_kwargs.setdefault("time_dim", dim)
    if scale is not None:
        call_kwargs["scale"] = scale

    if region_size is None:
        lazy_input = any(_is_dask(v) for v in ds.data_vars.values())
        probe = upscale(obj if lazy_input else obj.chunk(), model, **call_kwargs)
        probe_ds = probe if isinstance(probe, xr.Dataset) else probe.to_dataset(name=_UNNAMED)
        region_size = _default_region_size(
            ds if lazy_input else ds.chunk(), dim, DEFAULT_REGION_BYTES
        )
        region_size = min(
            region_size,
            max(1, DEFAULT_REGION_BYTES // max(1, _frame_bytes(probe_ds, dim))),
        )
    region_size = min(_check_region_size(region_size), int(ds.sizes[dim]))

    files = input_files(ds)
    records = fingerprint_inputs(files, _known_inputs(store))
    job = {
        "kind": "xsr.archive.upscale_to_zarr",
        "input": _dataset_identity(ds, chunks=False, inputs=records),
        "model": _model_identity(model),
        "arguments": {
            "scale": scale,
            "region_size": region_size,
            **({"pack": True} if pack else {}),
            **{k: v for k, v in upscale_kwargs.items() if k not in _NON_IDENTITY_ARGUMENTS},
        },
    }
    lazy = upscale(
        obj.chunk({dim: _input_chunks(int(ds.sizes[dim]), region_size)}), model, **call_kwargs
    )
    _set_output_encoding(lazy, ds, pack)
    return job, lazy, dim, region_size, files


def _known_inputs(store: Any) -> dict[str, Any] | None:
    """The input records of an existing store (spares hashing unchanged inputs), if any."""
    try:
        state = _read_state(store)
    except Exception:  # a damaged store is reported by the writer, with its remedy
        return None
    if state is None or not state.get("xsr"):
        return None
    return state["attrs"].get("inputs")


def _set_output_encoding(lazy: xr.Dataset | xr.DataArray, ds: xr.Dataset, pack: bool) -> None:
    """Carry ``_FillValue``/``missing_value`` of float inputs; pack when asked."""
    outputs = lazy.data_vars if isinstance(lazy, xr.Dataset) else {None: lazy}
    pairs = []
    for name, var in outputs.items():
        source = ds[name] if name in ds.data_vars else next(iter(ds.data_vars.values()), None)
        if source is None or var.dtype.kind != "f" or source.sizes == var.sizes:
            continue  # not upscaled: keeps its own encoding
        pairs.append((var, source))
        if source.dtype.kind == "f" and not is_packed(source.encoding):
            for key in ("_FillValue", "missing_value"):
                if key in source.encoding:
                    var.encoding[key] = source.encoding[key]
    if not pack or not pairs:
        return
    import dask

    ranges = dask.compute(*[(src.min(), src.max()) for _, src in pairs])
    for (var, src), (low, high) in zip(pairs, ranges):
        low, high = float(low), float(high)
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(
                f"pack=True: variable {src.name!r} has no finite values (or infinite ones): "
                "its packing range cannot be chosen; write it without packing"
            )
        var.encoding.update(packing_for(low, high, src.encoding))


def _output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if suffix in _NETCDF_OUT_SUFFIXES:
        return "netcdf"
    raise ValueError(
        f"unsupported output suffix {path.suffix!r} for output_path {str(path)!r}: use .zarr "
        f"(resumable) or one of {', '.join(_NETCDF_OUT_SUFFIXES)}"
    )


def upscale_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    model: Any = None,
    scale: int | None = None,
    overwrite: bool = False,
    variables: Sequence[str] | Mapping[str, str] | None = None,
    region_size: int | None = None,
    progress: bool = True,
    pack: bool = False,
    verify: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    chunks: Mapping[str, int] | None = None,
    **kwargs: Any,
) -> Path:
    """Super-resolve a NetCDF file or Zarr store into a Zarr store or NetCDF file.

    The input is opened lazily with :func:`xsr.io.open_dataset` (NetCDF, Zarr, ``.mat``,
    ``.y4m``) and streamed with :func:`upscale_to_zarr`. A ``.zarr`` output is written directly
    and is resumable. A NetCDF output (``.nc``, ``.nc4``, ``.netcdf``, ``.cdf``) is computed into
    a resumable temporary store ``OUTPUT.xsr-partial.zarr`` beside it, then copied chunk by chunk
    (zlib-compressed) to ``OUTPUT.part`` and renamed to ``OUTPUT``, which records the job's
    digest in its ``xsr_job`` attribute; the temporary store is removed at the end. A killed
    NetCDF job run again resumes the temporary store; a finished one run again does nothing.

    Parameters
    ----------
    input_path : str or path
        NetCDF file or Zarr store (low resolution).
    output_path : str or path
        Output ``.zarr`` store or NetCDF file; the suffix chooses the format.
    model : str, path or model, optional
        Model name, model file or interpolation method (see :func:`upscale_to_zarr`).
    scale : int, optional
        Upscaling factor.
    overwrite : bool, default False
        Replace an existing output. Without it, an output of the same job is resumed (or left
        as it is when finished), any other is an error.
    variables : list of str or mapping, optional
        Data variables to upscale (default: all); a mapping ``{data name: model variable}``
        also tells the model which of its variables each one is.
    region_size : int, optional
        Time steps per region.
    progress : bool, default True
        Show progress bars.
    pack, verify, lock_timeout
        See :func:`upscale_to_zarr`.
    chunks : mapping, optional
        Dask chunks for reading the input (``{"lat": 360}``); default the file's own.
    **kwargs
        Passed on to :func:`xsr.upscaling.upscale`.

    Returns
    -------
    pathlib.Path
        ``output_path``.

    Raises
    ------
    FileNotFoundError
        ``input_path`` does not exist.
    FileFormatError
        The input is damaged, truncated or of an unknown format.
    ValueError
        Unsupported output suffix, output equal to the input, or unknown ``variables``.
    StoreExistsError, JobMismatchError, ReadOnlyStoreError, StoreLockedError
        See :func:`write_zarr_resumable`.
    InputChangedError, CorruptStoreError
        See :func:`write_zarr_resumable`.

    Examples
    --------
    >>> import tempfile, os
    >>> from xsr.testing import random_movie
    >>> folder = tempfile.mkdtemp()
    >>> random_movie(4, 8, 8).to_netcdf(os.path.join(folder, "run.nc"))
    >>> out = upscale_file(os.path.join(folder, "run.nc"), os.path.join(folder, "run_x2.zarr"),
    ...                    model="bicubic", scale=2, progress=False)
    >>> out.name
    'run_x2.zarr'
    """
    src = Path(os.fspath(input_path)).expanduser()
    dst = Path(os.fspath(output_path)).expanduser()
    kind = _output_kind(dst)
    if not src.exists() and "://" not in os.fspath(input_path):
        raise FileNotFoundError(f"input_path {str(src)!r} does not exist")
    if src.exists() and (src.resolve() == dst.resolve() or src.resolve() in dst.resolve().parents):
        raise ValueError(
            f"output_path {str(dst)!r} would overwrite (or lie inside) input_path "
            f"{str(src)!r}; choose another output path"
        )
    with open_dataset(input_path, **({"chunks": dict(chunks)} if chunks else {})) as ds:
        if variables is not None:
            names = list(variables)
            missing = [v for v in names if v not in ds.data_vars]
            if missing:
                raise ValueError(
                    f"variables {missing} are not in {str(src)!r} (data variables: "
                    f"{list(ds.data_vars)}); pass names from that list"
                )
            ds = ds[names]
            if isinstance(variables, Mapping):
                kwargs["variables"] = dict(variables)
        options = {"overwrite": overwrite, "progress": progress, "verify": verify}
        options["lock_timeout"] = lock_timeout
        if kind == "zarr":
            upscale_to_zarr(
                ds,
                dst,
                model=model,
                scale=scale,
                region_size=region_size,
                pack=pack,
                **options,
                **kwargs,
            )
            return dst
        _check_writable(dst.parent)
        with _explain_os_errors(dst), store_lock(dst, timeout=lock_timeout):
            _upscale_to_netcdf(ds, dst, model, scale, region_size, pack, options, kwargs)
    return dst


def _upscale_to_netcdf(
    ds: xr.Dataset,
    dst: Path,
    model: Any,
    scale: int | None,
    region_size: int | None,
    pack: bool,
    options: dict[str, Any],
    kwargs: dict[str, Any],
) -> None:
    """Upscale into a temporary resumable store beside ``dst``, then copy it into ``dst``."""
    tmp = dst.with_name(dst.name + ".xsr-partial.zarr")
    job, lazy, dim, size, files = _plan(ds, tmp, model, scale, region_size, pack, kwargs)
    digest = sha256_json(job)
    if dst.exists():
        if options["overwrite"]:
            pass
        elif _netcdf_job(dst) == digest:
            logger.info("%s is complete for this job: nothing to do", dst)
            return
        else:
            raise StoreExistsError(
                f"output_path {str(dst)!r} exists (and was not written by this job); "
                f"{_OVERWRITE_HINT} to replace it"
            )
    write_zarr_resumable(
        lazy,
        tmp,
        regions_along=dim,
        region_size=size,
        job_id=job,
        inputs=files,
        **options,
    )
    _to_netcdf_streamed(str(tmp), dst, progress=options["progress"], attrs={"xsr_job": digest})
    shutil.rmtree(tmp)


def _netcdf_job(path: Path) -> str | None:
    """The ``xsr_job`` attribute of an existing NetCDF output (``None`` when unreadable)."""
    try:
        with xr.open_dataset(path) as old:
            return old.attrs.get("xsr_job")
    except Exception:  # not NetCDF, damaged: not this job's output
        return None

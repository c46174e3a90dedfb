"""Upscaling to archives: :func:`upscale_to_zarr` (any Dataset) and :func:`upscale_file` (files)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from xsr.archive.errors import OVERWRITE_HINT as _OVERWRITE_HINT
from xsr.archive.errors import JobMismatchError, StoreExistsError
from xsr.archive.record import _dataset_identity, _is_dask, _plain, store_status
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
    _NOT_A_DATAARRAY,
    _UNNAMED,
    _as_dataset,
    _restore_kind,
    _to_netcdf_streamed,
    write_zarr_resumable,
)
from xsr.digest import sha256_array, sha256_file, sha256_json
from xsr.io import ZARR_SUFFIXES, open_dataset

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
        return {
            "arch": getattr(model, "arch", type(model).__name__),
            "config": _plain(getattr(model, "config", None)),
            "state_sha256": sha256_json(tensors),
        }
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
    **upscale_kwargs: Any,
) -> xr.Dataset | xr.DataArray:
    """Super-resolve ``obj`` into a Zarr store, streaming region by region, resumably.

    Equivalent to ``xsr.upscale.upscale(obj, model, scale=scale, **upscale_kwargs)`` written with
    :func:`write_zarr_resumable` along the time dimension: memory is bounded by one region
    (plus the model's time halo), and a killed run called again with the same arguments computes
    only the missing regions. The job fingerprint holds the identity of ``obj`` (variables,
    shapes, dtypes, hashes of its coordinates, attributes and in-memory data, and the dask names
    of lazy variables: for an opened file, its path, modification time and chunks), the model's
    weights sha256, ``scale``, ``region_size`` and the other arguments (but ``device`` and
    ``batch_size``, which choose how to compute, not what).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Low-resolution data with a time dimension (eager or dask-backed).
    store : str, path or zarr store
        Output Zarr store.
    model : str, path or model, optional
        What :func:`xsr.upscale.upscale` accepts: a shipped model name, a model file, an
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
    **upscale_kwargs
        Passed on to :func:`xsr.upscale.upscale` (``dims``, ``time_dim``, ``conserve``,
        ``device``, ...).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The written store opened lazily.

    Raises
    ------
    StoreExistsError, JobMismatchError, ReadOnlyStoreError
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
    from xsr.upscale import upscale

    ds, name = _as_dataset(obj, "obj")
    if model is None and scale is None:
        raise ValueError("pass model=<name, file or model> or scale=<int> (or both)")
    dim = _time_dim(ds, upscale_kwargs.get("time_dim"))
    call_kwargs = dict(upscale_kwargs)
    call_kwargs.setdefault("time_dim", dim)
    if scale is not None:
        call_kwargs["scale"] = scale

    if region_size is None:
        probe_input = ds if any(_is_dask(v) for v in ds.data_vars.values()) else ds.chunk()
        probe = upscale(probe_input, model, **call_kwargs)
        probe_ds = probe if isinstance(probe, xr.Dataset) else probe.to_dataset(name=_UNNAMED)
        region_size = _default_region_size(probe_input, dim, DEFAULT_REGION_BYTES)
        region_size = min(
            region_size,
            max(1, DEFAULT_REGION_BYTES // max(1, _frame_bytes(probe_ds, dim))),
        )
    region_size = min(_check_region_size(region_size), int(ds.sizes[dim]))

    job = {
        "kind": "xsr.archive.upscale_to_zarr",
        "input": _dataset_identity(ds, chunks=False),
        "model": _model_identity(model),
        "arguments": {
            "scale": scale,
            "region_size": region_size,
            **{k: v for k, v in upscale_kwargs.items() if k not in _NON_IDENTITY_ARGUMENTS},
        },
    }
    lazy = upscale(
        ds.chunk({dim: _input_chunks(int(ds.sizes[dim]), region_size)}), model, **call_kwargs
    )
    result = write_zarr_resumable(
        lazy,
        store,
        regions_along=dim,
        region_size=region_size,
        job_id=job,
        overwrite=overwrite,
        progress=progress,
    )
    if name is _NOT_A_DATAARRAY or isinstance(result, xr.DataArray):
        return result
    return _restore_kind(result, name)


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
    variables: list[str] | None = None,
    region_size: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Super-resolve a NetCDF file or Zarr store into a Zarr store or NetCDF file.

    The input is opened lazily (``xr.open_dataset(path, chunks={})`` or ``xr.open_zarr``) and
    streamed with :func:`upscale_to_zarr`. A ``.zarr`` output is written directly and is
    resumable. A NetCDF output (``.nc``, ``.nc4``, ``.netcdf``, ``.cdf``) is computed into a
    resumable temporary store ``OUTPUT.xsr-partial.zarr`` beside it, then copied chunk by chunk
    to ``OUTPUT.part`` and renamed to ``OUTPUT``; the temporary store is removed at the end. A
    killed NetCDF job run again resumes the temporary store.

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
        Replace an existing finished output.
    variables : list of str, optional
        Data variables to upscale (default: all).
    region_size : int, optional
        Time steps per region.
    progress : bool, default True
        Show progress bars.
    **kwargs
        Passed on to :func:`xsr.upscale.upscale`.

    Returns
    -------
    pathlib.Path
        ``output_path``.

    Raises
    ------
    FileNotFoundError
        ``input_path`` does not exist.
    ValueError
        Unsupported output suffix, or unknown ``variables``.
    StoreExistsError, JobMismatchError, ReadOnlyStoreError
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
    if not src.exists():
        raise FileNotFoundError(f"input_path {str(src)!r} does not exist")
    if src.resolve() == dst.resolve():
        raise ValueError("output_path must differ from input_path")
    if kind == "netcdf" and dst.exists() and not overwrite:
        raise StoreExistsError(f"output_path {str(dst)!r} exists; {_OVERWRITE_HINT} to replace it")
    with open_dataset(src) as ds:
        if variables is not None:
            missing = [v for v in variables if v not in ds.data_vars]
            if missing:
                raise ValueError(
                    f"variables {missing} are not in {str(src)!r} (data variables: "
                    f"{list(ds.data_vars)})"
                )
            ds = ds[list(variables)]
        common = {
            "model": model,
            "scale": scale,
            "region_size": region_size,
            "progress": progress,
            **kwargs,
        }
        if kind == "zarr":
            upscale_to_zarr(ds, dst, overwrite=overwrite, **common)
            return dst
        _check_writable(dst.parent)
        tmp = dst.with_name(dst.name + ".xsr-partial.zarr")
        try:
            upscale_to_zarr(ds, tmp, overwrite=overwrite, **common)
        except StoreExistsError as err:
            if isinstance(err, JobMismatchError) or not store_status(tmp)["finished"]:
                raise
            logger.info("xsr.archive: %s already complete; converting to NetCDF", tmp)
    with _explain_os_errors(dst):
        _to_netcdf_streamed(str(tmp), dst, progress=progress)
    shutil.rmtree(tmp)
    return dst

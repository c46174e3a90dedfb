"""Public real gridded data fetched from package registries: a table, a cache and a reader.

Every dataset here ships inside a package on a public registry (Debian's ``ferret-datasets``,
the source distribution of ``cfgrib`` on PyPI, ``iris-sample-data`` on PyPI). Nothing is
downloaded at import or run time: ``python scripts/fetch_real_data.py`` fetches each package by
name, converts each gridded file to one tidy CF NetCDF file per dataset in the cache, and writes
``manifest.json`` there (sha256, source package and version, variables, dimensions, time span,
licence). :func:`open_real` only opens what that script left; :func:`list_real` describes what
is known, from the table :data:`REAL_DATASETS`.

The cache is, in order of precedence: the ``cache=`` argument, the ``XSR_DATA_DIR`` environment
variable, ``~/.cache/xsr/real``.

Every dataset has a held-out part: a contiguous block at the end of one dimension (the last
years of a record, the last months of a climatology, the eastern sector of a static map), read
with ``split="test"``. ``split="train"`` is the rest; training must only ever use that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import xarray as xr

__all__ = [
    "FETCH_COMMAND",
    "REAL_DATASETS",
    "RealDataset",
    "default_cache",
    "list_real",
    "open_real",
    "real_path",
    "split_index",
    "time_decoding",
]

#: The one command that fills the cache (run from a checkout of xsr).
FETCH_COMMAND = "python scripts/fetch_real_data.py"

#: Name of the manifest the fetch script writes beside the NetCDF files.
MANIFEST = "manifest.json"

_FERRET_LICENCE = (
    "Ferret License Agreement (Debian copyright file of ferret-datasets: "
    '"Copyright: 2010 NOAA, US.gov"; "THIS SOFTWARE AND ITS DOCUMENTATION ARE IN THE '
    'PUBLIC DOMAIN")'
)
_CFGRIB_LICENCE = (
    "Apache License Version 2.0 (cfgrib's licence, \"Copyright 2017-2021 European Centre for "
    'Medium-Range Weather Forecasts (ECMWF)"; the package states no separate licence for its '
    "sample GRIB file, whose data are ERA5 from the Copernicus Climate Change Service)"
)
_IRIS_LICENCE = (
    'UK Open Government Licence (iris-sample-data: "Data found in this repository are licensed '
    "under the UK's Open Government Licence\", (c) British Crown copyright)"
)


@dataclass(frozen=True)
class RealDataset:
    """One public real dataset: where it comes from, what it holds, and its held-out part.

    Attributes
    ----------
    name : str
        Short name, also the cached file's stem (``<name>.nc``).
    title : str
        One line saying what the data are.
    source : str
        Registry and package, e.g. ``"debian:ferret-datasets"`` or ``"pypi:iris-sample-data"``.
    member : str
        Path of the original file inside the package.
    variables : tuple of str
        Data variables of the tidy file.
    dims : tuple of str
        Dimensions of those variables, in order.
    time_span : tuple of str or None
        First and last time stamps (ISO 8601), or None for a field without time.
    licence : str
        The licence, quoted from the package's metadata or copyright file.
    split_dim : str
        Dimension along which the held-out block is cut.
    test_from : str or float
        Label on ``split_dim`` where the held-out block starts (inclusive); the coordinate must
        increase along ``split_dim``.
    split_note : str
        The split in words.
    use_cftime : bool
        Decode time to cftime objects (for dates numpy cannot hold, e.g. a climatology in year 0).
    """

    name: str
    title: str
    source: str
    member: str
    variables: tuple[str, ...]
    dims: tuple[str, ...]
    time_span: tuple[str, str] | None
    licence: str
    split_dim: str
    test_from: str | float
    split_note: str
    use_cftime: bool = False

    @property
    def filename(self) -> str:
        """Name of the tidy NetCDF file in the cache."""
        return f"{self.name}.nc"


#: Everything :func:`open_real` knows about, keyed by name (the one table; the fetch script and
#: the docs page read it).
REAL_DATASETS: dict[str, RealDataset] = {
    d.name: d
    for d in (
        RealDataset(
            name="navy-winds",
            title="US Navy (FNOC) monthly mean surface winds, global 2.5 degree grid",
            source="debian:ferret-datasets",
            member="usr/share/ferret-vis/data/monthly_navy_winds.cdf",
            variables=("uwnd", "vwnd"),
            dims=("time", "lat", "lon"),
            time_span=("1982-01-16", "1992-12-17"),
            licence=_FERRET_LICENCE,
            split_dim="time",
            test_from="1990-01-01",
            split_note="test: the years 1990-1992 (36 of 132 months); train: 1982-1989",
        ),
        RealDataset(
            name="coads-climatology",
            title="COADS monthly marine surface climatology, global 2 degree grid, land masked",
            source="debian:ferret-datasets",
            member="usr/share/ferret-vis/data/coads_climatology.cdf",
            variables=("sst", "airt", "speh", "wspd", "uwnd", "vwnd", "slp"),
            dims=("time", "lat", "lon"),
            time_span=("0000-01-16", "0000-12-16"),
            licence=_FERRET_LICENCE,
            split_dim="time",
            test_from="0000-09-01",
            split_note="test: the climatological months September-December (4 of 12); "
            "train: January-August",
            use_cftime=True,
        ),
        RealDataset(
            name="etopo5",
            title="ETOPO5 relief of the surface of the Earth (land and sea floor), 5 minute grid",
            source="debian:ferret-datasets",
            member="usr/share/ferret-vis/data/etopo5.cdf",
            variables=("rose",),
            dims=("lat", "lon"),
            time_span=None,
            licence=_FERRET_LICENCE,
            split_dim="lon",
            test_from=252.0,
            split_note="no time axis: test is the sector east of 252 degrees E (30 % of the "
            "longitudes, the Americas and the eastern Pacific); train: 0-252 degrees E",
        ),
        RealDataset(
            name="era5-levels-members",
            title="ERA5 ensemble sample: geopotential and temperature at 850 and 500 hPa, "
            "10 members, 3 degree grid",
            source="pypi:cfgrib (source distribution)",
            member="era5-levels-members.grib",
            variables=("z", "t"),
            dims=("number", "time", "isobaricInhPa", "latitude", "longitude"),
            time_span=("2017-01-01T00:00", "2017-01-02T12:00"),
            licence=_CFGRIB_LICENCE,
            split_dim="time",
            test_from="2017-01-02",
            split_note="test: 2017-01-02 00 and 12 UTC (2 of 4 times, all members); "
            "train: 2017-01-01",
        ),
        RealDataset(
            name="iris-a1b-air-temperature",
            title="Met Office Unified Model, scenario A1B: yearly 1.5 m air temperature "
            "over North America",
            source="pypi:iris-sample-data",
            member="iris_sample_data/sample_data/A1B_north_america.nc",
            variables=("air_temperature",),
            dims=("time", "latitude", "longitude"),
            time_span=("1860-06-01", "2099-06-01"),
            licence=_IRIS_LICENCE,
            split_dim="time",
            test_from="2028-01-01",
            split_note="test: the years 2028-2099 (72 of 240); train: 1860-2027",
        ),
        RealDataset(
            name="iris-e1-air-temperature",
            title="Met Office model, scenario E1: yearly 1.5 m air temperature over North America",
            source="pypi:iris-sample-data",
            member="iris_sample_data/sample_data/E1_north_america.nc",
            variables=("air_temperature",),
            dims=("time", "latitude", "longitude"),
            time_span=("1860-06-01", "2099-06-01"),
            licence=_IRIS_LICENCE,
            split_dim="time",
            test_from="2028-01-01",
            split_note="test: the years 2028-2099 (72 of 240); train: 1860-2027",
        ),
        RealDataset(
            name="iris-ostia-monthly",
            title="OSTIA monthly surface temperature, tropical band 5S-5N, global longitudes",
            source="pypi:iris-sample-data",
            member="iris_sample_data/sample_data/ostia_monthly.nc",
            variables=("surface_temperature",),
            dims=("time", "latitude", "longitude"),
            time_span=("2006-04-16", "2010-09-16"),
            licence=_IRIS_LICENCE,
            split_dim="time",
            test_from="2009-06-01",
            split_note="test: June 2009 - September 2010 (16 of 54 months); "
            "train: April 2006 - May 2009",
        ),
    )
}

Split = Literal["all", "train", "test"]


def default_cache() -> Path:
    """The cache directory used when none is given.

    Returns
    -------
    pathlib.Path
        ``$XSR_DATA_DIR`` when that variable is set and not empty, else ``~/.cache/xsr/real``.

    Examples
    --------
    >>> saved = os.environ.pop("XSR_DATA_DIR", None)
    >>> default_cache() == Path.home() / ".cache" / "xsr" / "real"
    True
    >>> os.environ["XSR_DATA_DIR"] = "/data/xsr"
    >>> default_cache().as_posix()
    '/data/xsr'
    >>> if saved is None:
    ...     del os.environ["XSR_DATA_DIR"]
    ... else:
    ...     os.environ["XSR_DATA_DIR"] = saved
    """
    env = os.environ.get("XSR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/xsr/real").expanduser()


def _dataset(name: str) -> RealDataset:
    if not isinstance(name, str) or name not in REAL_DATASETS:
        known = ", ".join(sorted(REAL_DATASETS))
        raise KeyError(f"Unknown real dataset name={name!r}; known names: {known}")
    return REAL_DATASETS[name]


def real_path(name: str, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where the tidy NetCDF file of dataset ``name`` lies (or would lie) in the cache.

    Parameters
    ----------
    name : str
        A key of :data:`REAL_DATASETS`.
    cache : path-like, optional
        Cache directory; default :func:`default_cache`.

    Returns
    -------
    pathlib.Path
        ``<cache>/<name>.nc``, whether or not it exists.

    Raises
    ------
    KeyError
        If ``name`` is not a known dataset.

    Examples
    --------
    >>> real_path("navy-winds", cache="/data/xsr").as_posix()
    '/data/xsr/navy-winds.nc'
    """
    entry = _dataset(name)
    root = default_cache() if cache is None else Path(cache).expanduser()
    return root / entry.filename


def split_index(index: Any, entry: RealDataset) -> int:
    """Position where the held-out block of ``entry`` starts along its split dimension.

    Parameters
    ----------
    index : pandas.Index or xarray.CFTimeIndex
        The index of ``entry.split_dim`` (``ds.indexes[entry.split_dim]``).
    entry : RealDataset
        The dataset's table row.

    Returns
    -------
    int
        ``k`` such that positions ``[0, k)`` are train and ``[k, n)`` are test.

    Raises
    ------
    ValueError
        If the index does not increase, or if the split leaves either part empty.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.Index([250.0, 251.0, 252.0, 253.0])
    >>> split_index(idx, REAL_DATASETS["etopo5"])
    2
    """
    if not index.is_monotonic_increasing:
        raise ValueError(
            f"Dataset {entry.name!r}: coordinate {entry.split_dim!r} does not increase, so the "
            f"held-out block (from {entry.test_from!r}) is undefined; re-create the cache with "
            f"`{FETCH_COMMAND} --force`"
        )
    k = int(index.get_slice_bound(entry.test_from, side="left"))
    if not 0 < k < len(index):
        raise ValueError(
            f"Dataset {entry.name!r}: the held-out block from {entry.test_from!r} leaves "
            f"{k} of {len(index)} positions of {entry.split_dim!r} for training; the cached "
            f"file does not match the table; re-create it with `{FETCH_COMMAND} --force`"
        )
    return k


def open_real(
    name: str,
    *,
    cache: str | os.PathLike[str] | None = None,
    split: Split = "all",
    chunks: Any = None,
) -> xr.Dataset:
    """Open a cached public real dataset by name; never downloads anything.

    Parameters
    ----------
    name : str
        A key of :data:`REAL_DATASETS` (see :func:`list_real`).
    cache : path-like, optional
        Cache directory; default :func:`default_cache` (``$XSR_DATA_DIR`` or
        ``~/.cache/xsr/real``).
    split : {"all", "train", "test"}
        ``"train"`` drops the held-out block, ``"test"`` keeps only it, ``"all"`` returns the
        whole record. Training must use ``"train"``.
    chunks : optional
        Passed to :func:`xarray.open_dataset` (e.g. ``{"time": 12}`` for dask arrays).

    Returns
    -------
    xarray.Dataset
        The tidy dataset as the fetch script wrote it (CF attributes, decoded time, coordinates in
        their original orientation), with ``attrs["xsr_split"]`` set to ``split``.

    Raises
    ------
    KeyError
        If ``name`` is unknown.
    ValueError
        If ``split`` is not one of the three values.
    FileNotFoundError
        If the dataset is not in the cache; the message names the fetch command.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     open_real("navy-winds", cache=tempfile.mkdtemp())
    ... except FileNotFoundError as err:
    ...     print(str(err).splitlines()[0])  # doctest: +ELLIPSIS
    Real dataset 'navy-winds' is not in the cache: no file .../navy-winds.nc.
    """
    entry = _dataset(name)
    if split not in ("all", "train", "test"):
        raise ValueError(f"split={split!r} is not one of 'all', 'train', 'test'")
    path = real_path(name, cache=cache)
    if not path.is_file():
        raise FileNotFoundError(
            f"Real dataset {name!r} is not in the cache: no file {path}.\n"
            f"xsr never downloads at run time; fetch it once with `{FETCH_COMMAND}` "
            f"(add `--cache {path.parent}` for this directory, or set XSR_DATA_DIR)."
        )
    ds = xr.open_dataset(path, chunks=chunks, **time_decoding(entry))
    if split != "all":
        k = split_index(ds.indexes[entry.split_dim], entry)
        part = slice(None, k) if split == "train" else slice(k, None)
        ds = ds.isel({entry.split_dim: part})
    ds.attrs["xsr_split"] = split
    return ds


def time_decoding(entry: RealDataset) -> dict[str, Any]:
    """Keyword arguments of :func:`xarray.open_dataset` that decode a dataset's time axis.

    Parameters
    ----------
    entry : RealDataset
        The dataset's table row.

    Returns
    -------
    dict
        Empty for the default decoding; for ``entry.use_cftime`` the arguments that decode to
        cftime objects (the COADS climatology is dated in year 0, which numpy cannot hold).

    Examples
    --------
    >>> time_decoding(REAL_DATASETS["navy-winds"])
    {}
    >>> sorted(time_decoding(REAL_DATASETS["coads-climatology"]))[0] in {"decode_times", "use_cftime"}
    True
    """
    if not entry.use_cftime:
        return {}
    coders = getattr(xr, "coders", None)
    if coders is not None and hasattr(coders, "CFDatetimeCoder"):
        return {"decode_times": coders.CFDatetimeCoder(use_cftime=True)}
    return {"use_cftime": True}  # pragma: no cover - xarray before 2025.01


def list_real(*, cache: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Describe every known public real dataset, and whether it is in the cache.

    Parameters
    ----------
    cache : path-like, optional
        Cache directory checked for each file; default :func:`default_cache`.

    Returns
    -------
    list of dict
        One dict per dataset: ``name``, ``title``, ``source``, ``member``, ``variables``,
        ``dims``, ``time_span``, ``licence``, ``split`` (the held-out block in words),
        ``split_dim``, ``test_from``, ``path`` and ``cached`` (bool).

    Examples
    --------
    >>> rows = list_real(cache="/nonexistent")
    >>> [r["name"] for r in rows][:2]
    ['navy-winds', 'coads-climatology']
    >>> rows[0]["cached"]
    False
    """
    rows = []
    for entry in REAL_DATASETS.values():
        path = real_path(entry.name, cache=cache)
        rows.append(
            {
                "name": entry.name,
                "title": entry.title,
                "source": entry.source,
                "member": entry.member,
                "variables": list(entry.variables),
                "dims": list(entry.dims),
                "time_span": list(entry.time_span) if entry.time_span else None,
                "licence": entry.licence,
                "split": entry.split_note,
                "split_dim": entry.split_dim,
                "test_from": entry.test_from,
                "path": str(path),
                "cached": path.is_file(),
            }
        )
    return rows

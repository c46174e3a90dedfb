"""Fetch the public real gridded datasets of :mod:`xsr.data.real` into the xsr cache.

Each source is a package on a public registry, fetched by its name with the registry's own client:

* Debian's ``ferret-datasets`` (``apt-get download ferret-datasets``, unpacked with
  ``dpkg-deb -x``; nothing is installed): US Navy monthly surface winds 1982-1992, the COADS
  monthly marine climatology, ETOPO5 relief.
* the source distribution of ``cfgrib`` on PyPI (``pip download --no-binary :all: --no-deps``):
  the ERA5 ensemble sample ``era5-levels-members.grib``. Reading GRIB needs ``cfgrib`` and
  ``eccodes`` importable (``pip install cfgrib eccodes``; the eccodes wheels bring the ecCodes
  library); without them this dataset is skipped with that advice.
* ``iris-sample-data`` on PyPI (``pip download --no-deps``): Met Office A1B and E1 yearly air
  temperature over North America, OSTIA monthly surface temperature (the NetCDF members; the
  ``.pp`` members would need iris and are not converted).

Each gridded file becomes one tidy CF NetCDF file ``<cache>/<name>.nc`` (CF names and units,
decoded time, latitude/longitude in their original order and values, original dtypes and fill
values); ``<cache>/manifest.json`` records, per dataset, the file's sha256
(:func:`xsr.digest.sha256_file`), source package and version, variables, dimensions, time span,
licence and the held-out split. The packages' licence files are kept in ``<cache>/licences/`` and
the downloaded packages in ``<cache>/packages/``.

Idempotent: a dataset whose file is in the cache and matches the manifest's sha256 is skipped, and a
package already downloaded is not downloaded again. Never run at import or by the tests.

Usage::

    python scripts/fetch_real_data.py                       # all datasets, default cache
    python scripts/fetch_real_data.py --cache /data/xsr     # or XSR_DATA_DIR=/data/xsr
    python scripts/fetch_real_data.py navy-winds etopo5     # some datasets
    python scripts/fetch_real_data.py --list                # what is known and what is cached
    python scripts/fetch_real_data.py --force               # convert again, even if verified
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr._version import __version__
from xsr.data.real import (
    MANIFEST,
    REAL_DATASETS,
    RealDataset,
    default_cache,
    split_index,
    time_decoding,
)
from xsr.digest import sha256_file

#: Versions fetched from PyPI (pinned so that a cache is the same everywhere). The Debian package
#: is whatever the machine's apt sources offer; its version is recorded in the manifest.
PYPI_PINS = {"cfgrib": "0.9.15.1", "iris-sample-data": "2.5.2"}


# --------------------------------------------------------------------------------------------
# Fetching packages by name
# --------------------------------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path) -> None:
    """Run a command, raising with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


def _package_of(entry: RealDataset) -> str:
    """``"debian:ferret-datasets"`` -> ``"ferret-datasets"``."""
    return entry.source.split(":", 1)[1].split()[0]


def fetch_package(package: str, packages_dir: Path) -> tuple[Path, str]:
    """Download ``package`` by name into ``packages_dir`` (unless there already); its file and version."""
    packages_dir.mkdir(parents=True, exist_ok=True)
    if package == "ferret-datasets":
        found = sorted(packages_dir.glob("ferret-datasets_*.deb"))
        if not found:
            if shutil.which("apt-get") is None:
                raise RuntimeError(
                    "ferret-datasets comes from Debian's archive: `apt-get` is needed "
                    "(on Debian/Ubuntu run `apt-get update` once first)"
                )
            _run(["apt-get", "download", "ferret-datasets"], packages_dir)
            found = sorted(packages_dir.glob("ferret-datasets_*.deb"))
        deb = found[-1]
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return deb, version
    version = PYPI_PINS[package]
    stem = package.replace("-", "_")
    pattern = f"{package}-{version}.tar.gz" if package == "cfgrib" else f"{stem}-{version}-*.whl"
    found = sorted(packages_dir.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(packages_dir)]
        if package == "cfgrib":
            cmd += ["--no-binary", ":all:"]
        _run([*cmd, f"{package}=={version}"], packages_dir)
        found = sorted(packages_dir.glob(pattern))
    if not found:
        raise RuntimeError(f"pip download of {package}=={version} left no {pattern}")
    return found[-1], version


def extract(package: str, path: Path, members: list[str], dest: Path) -> dict[str, Path]:
    """Extract ``members`` (paths inside the package) from the package file into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    if path.suffix == ".deb":
        _run(["dpkg-deb", "-x", str(path), str(dest)], dest)
        out = {m: dest / m for m in members}
    elif path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            for m in members:
                zf.extract(m, dest)
                out[m] = dest / m
    else:  # an sdist: members are relative to its top folder
        import tarfile

        top = path.name[: -len(".tar.gz")]
        with tarfile.open(path) as tf:
            for m in members:
                # The "data" filter refuses links and paths outside dest (Python >= 3.10.12).
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extract(f"{top}/{m}", dest, **safe)
                out[m] = dest / top / m
    missing = [m for m, p in out.items() if not p.is_file()]
    if missing:
        raise RuntimeError(f"{path.name} holds no {missing}")
    return out


#: Licence files kept beside the data, per package: path inside the package.
LICENCE_MEMBERS = {
    "ferret-datasets": "usr/share/doc/ferret-datasets/copyright",
    "cfgrib": "LICENSE",
    "iris-sample-data": "iris_sample_data-{version}.dist-info/METADATA",
}


# --------------------------------------------------------------------------------------------
# Conversion to tidy CF NetCDF
# --------------------------------------------------------------------------------------------

_LAT = {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}
_LON = {
    "standard_name": "longitude",
    "long_name": "longitude",
    "units": "degrees_east",
    "axis": "X",
}

#: Ferret's variables: new name, CF units, CF standard name (units spelled as Ferret wrote them are
#: kept in ``original_units``).
_FERRET_VARIABLES: dict[str, tuple[str, str, str | None]] = {
    "UWND": ("uwnd", "m s-1", "eastward_wind"),
    "VWND": ("vwnd", "m s-1", "northward_wind"),
    "SST": ("sst", "degC", "sea_surface_temperature"),
    "AIRT": ("airt", "degC", "air_temperature"),
    "SPEH": ("speh", "g kg-1", "specific_humidity"),
    "WSPD": ("wspd", "m s-1", "wind_speed"),
    "SLP": ("slp", "hPa", "air_pressure_at_sea_level"),
    "ROSE": ("rose", "m", None),
}


def _tidy_ferret(
    path: Path, dims: dict[str, str], climatology: bool = False, **decode: Any
) -> xr.Dataset:
    """A Ferret file with CF names: lowercase variables, ``time``/``lat``/``lon`` dimensions.

    Values, dtypes, fill values and coordinate order are those of the file. Ferret marks a
    periodic longitude with a ``modulo`` attribute; it becomes xsr's ``period = 360``.
    """
    raw = xr.open_dataset(path, decode_times=False)
    if climatology:
        # Ferret's climatological year is year 0, which the default (standard) calendar lacks;
        # the proleptic Gregorian calendar has it and gives the same dates.
        raw["TIME"].attrs["calendar"] = "proleptic_gregorian"
    ds = xr.decode_cf(raw, **decode).rename(dims)
    unlimited = raw.encoding.get("unlimited_dims", set())
    ds.encoding["unlimited_dims"] = {dims.get(d, d) for d in unlimited}
    ds = ds.rename({v: _FERRET_VARIABLES[str(v)][0] for v in ds.data_vars})
    for old, (new, units, standard_name) in _FERRET_VARIABLES.items():
        if new not in ds or ds[new].attrs.get("original_name"):
            continue
        attrs = dict(ds[new].attrs)
        attrs["original_name"] = old
        attrs["original_units"] = attrs.get("units", "")
        attrs["units"] = units
        if standard_name:
            attrs["standard_name"] = standard_name
        ds[new].attrs = attrs
    if "lat" in ds.dims:
        ds["lat"].attrs = {**_LAT, **{k: v for k, v in ds["lat"].attrs.items() if k != "units"}}
    if "lon" in ds.dims:
        attrs = {k: v for k, v in ds["lon"].attrs.items() if k not in ("units", "modulo")}
        ds["lon"].attrs = {**_LON, **attrs, "period": 360.0}
    if "time" in ds.dims:
        ds["time"].attrs = {"standard_name": "time", "axis": "T", **ds["time"].attrs}
        ds["time"].attrs.pop("modulo", None)
        if climatology:
            ds["time"].attrs["long_name"] = "climatological month (the year is a placeholder)"
    return ds


def convert_navy_winds(path: Path) -> xr.Dataset:
    """US Navy monthly winds from ``monthly_navy_winds.cdf``."""
    return _tidy_ferret(path, {"TIME": "time", "FNOCY": "lat", "FNOCX": "lon"})


def convert_coads(path: Path) -> xr.Dataset:
    """COADS monthly climatology from ``coads_climatology.cdf``."""
    dims = {"TIME": "time", "COADSY": "lat", "COADSX": "lon"}
    return _tidy_ferret(
        path, dims, climatology=True, **time_decoding(REAL_DATASETS["coads-climatology"])
    )


def convert_etopo5(path: Path) -> xr.Dataset:
    """ETOPO5 relief from ``etopo5.cdf``."""
    return _tidy_ferret(path, {"ETOPO05_Y": "lat", "ETOPO05_X": "lon"})


def convert_era5(path: Path) -> xr.Dataset:
    """The ERA5 sample GRIB file, read with cfgrib (which needs eccodes)."""
    try:
        import cfgrib  # noqa: F401
    except ImportError as err:
        raise ModuleNotFoundError(
            "reading GRIB needs cfgrib and eccodes: `pip install cfgrib eccodes` "
            f"(the eccodes wheels bring the ecCodes library) [{err}]"
        ) from err
    # indexpath="" keeps cfgrib from writing an index file beside the GRIB file.
    ds = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}).load()
    for var in ds.variables.values():
        dtype = var.encoding.get("dtype")
        var.encoding = {"dtype": dtype} if dtype is not None else {}
    # cfgrib's history carries the time of reading; the converter's own line replaces it.
    ds.attrs.pop("history", None)
    return ds


def convert_iris_netcdf(path: Path) -> xr.Dataset:
    """An iris-sample-data NetCDF file: already CF; kept as it is."""
    return xr.open_dataset(path)


CONVERTERS: dict[str, Callable[[Path], xr.Dataset]] = {
    "navy-winds": convert_navy_winds,
    "coads-climatology": convert_coads,
    "etopo5": convert_etopo5,
    "era5-levels-members": convert_era5,
    "iris-a1b-air-temperature": convert_iris_netcdf,
    "iris-e1-air-temperature": convert_iris_netcdf,
    "iris-ostia-monthly": convert_iris_netcdf,
}


# --------------------------------------------------------------------------------------------
# Verification and the manifest
# --------------------------------------------------------------------------------------------


def _iso(value: Any) -> str:
    """ISO 8601 text of a time value (numpy datetime64 or cftime)."""
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="s"))
    return value.isoformat()


def describe(ds: xr.Dataset, entry: RealDataset) -> dict[str, Any]:
    """Check ``ds`` against the table row and describe it for the manifest.

    Raises ValueError when the file does not hold what the table says (variables, dimensions,
    time span, a split leaving both parts non-empty): the table and the data must agree.
    """
    problems = []
    for v in entry.variables:
        if v not in ds.data_vars:
            problems.append(f"no variable {v!r}")
        elif ds[v].dims != entry.dims:
            problems.append(f"{v!r} has dims {ds[v].dims}, the table says {entry.dims}")
    span = None
    if "time" in ds.dims:
        span = [_iso(ds["time"].values[0]), _iso(ds["time"].values[-1])]
        if entry.time_span is None or not all(
            s.startswith(t) for s, t in zip(span, entry.time_span, strict=True)
        ):
            problems.append(f"time span {span}, the table says {entry.time_span}")
    k = split_index(ds.indexes[entry.split_dim], entry)
    if problems:
        raise ValueError(f"{entry.name}: " + "; ".join(problems))
    n = ds.sizes[entry.split_dim]
    return {
        "variables": {
            str(v): {
                "dims": list(ds[v].dims),
                "shape": list(ds[v].shape),
                "dtype": str(ds[v].encoding.get("dtype", ds[v].dtype)),
                "units": ds[v].attrs.get("units"),
                "long_name": ds[v].attrs.get("long_name"),
                "standard_name": ds[v].attrs.get("standard_name"),
            }
            for v in entry.variables
        },
        "dims": {str(d): int(s) for d, s in ds.sizes.items()},
        "time_span": span,
        "split": {
            "dim": entry.split_dim,
            "test_from": entry.test_from,
            "train": k,
            "test": n - k,
            "note": entry.split_note,
        },
    }


def load_manifest(cache: Path) -> dict[str, Any]:
    path = cache / MANIFEST
    if path.is_file():
        return json.loads(path.read_text())
    return {"datasets": {}}


def save_manifest(cache: Path, manifest: dict[str, Any]) -> None:
    manifest["xsr_version"] = __version__
    tmp = cache / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(cache / MANIFEST)


def verified(cache: Path, manifest: dict[str, Any], entry: RealDataset) -> bool:
    """Whether the dataset's file is in the cache and matches the manifest's sha256."""
    record = manifest["datasets"].get(entry.name)
    path = cache / entry.filename
    return bool(record) and path.is_file() and sha256_file(path) == record["sha256"]


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def fetch(names: list[str], cache: Path, force: bool = False) -> dict[str, str]:
    """Fetch and convert ``names`` into ``cache``; the outcome per name."""
    cache.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(cache)
    outcome: dict[str, str] = {}
    todo = []
    for name in names:
        entry = REAL_DATASETS[name]
        if not force and verified(cache, manifest, entry):
            outcome[name] = "cached (sha256 verified)"
        else:
            todo.append(entry)
    by_package: dict[str, list[RealDataset]] = {}
    for entry in todo:
        by_package.setdefault(_package_of(entry), []).append(entry)
    for package, entries in by_package.items():
        t0 = time.perf_counter()
        try:
            pkg_file, version = fetch_package(package, cache / "packages")
        except Exception as err:
            for entry in entries:
                outcome[entry.name] = f"FAILED to fetch {package}: {err}"
            continue
        licence_member = LICENCE_MEMBERS[package].format(version=version)
        with tempfile.TemporaryDirectory(prefix="xsr-fetch-") as tmp:
            members = [e.member for e in entries] + [licence_member]
            try:
                files = extract(package, pkg_file, members, Path(tmp))
            except Exception as err:
                for entry in entries:
                    outcome[entry.name] = f"FAILED to extract from {pkg_file.name}: {err}"
                continue
            licences = cache / "licences"
            licences.mkdir(exist_ok=True)
            licence_file = licences / f"{package}-{version}-{Path(licence_member).name}"
            shutil.copyfile(files[licence_member], licence_file)
            for entry in entries:
                try:
                    record = convert_one(entry, files[entry.member], cache)
                except ModuleNotFoundError as err:
                    outcome[entry.name] = f"SKIPPED: {err}"
                    continue
                except Exception as err:
                    outcome[entry.name] = f"FAILED to convert: {type(err).__name__}: {err}"
                    continue
                record["source"] = {
                    "registry": entry.source.split(":", 1)[0],
                    "package": package,
                    "version": version,
                    "package_file": pkg_file.name,
                    "package_sha256": sha256_file(pkg_file),
                    "member": entry.member,
                    "member_sha256": sha256_file(files[entry.member]),
                }
                record["licence"] = entry.licence
                record["licence_file"] = str(licence_file.relative_to(cache))
                manifest["datasets"][entry.name] = record
                save_manifest(cache, manifest)
                outcome[entry.name] = f"fetched from {package} {version}"
        print(f"{package} {version}: {time.perf_counter() - t0:.1f} s", flush=True)
    return outcome


def convert_one(entry: RealDataset, raw: Path, cache: Path) -> dict[str, Any]:
    """Convert one raw file to ``<cache>/<name>.nc``, verify it, and return its manifest record."""
    ds = CONVERTERS[entry.name](raw)
    ds.attrs.update(
        {
            "title": entry.title,
            "source": f"{entry.source}: {entry.member}",
            "license": entry.licence,
            "xsr_dataset": entry.name,
        }
    )
    history = ds.attrs.get("history", "")
    line = f"converted to tidy CF NetCDF by xsr {__version__} scripts/fetch_real_data.py"
    ds.attrs["history"] = f"{history}\n{line}" if history else line
    ds.attrs.setdefault("Conventions", "CF-1.8")
    out = cache / entry.filename
    tmp = out.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp)
    ds.close()
    with xr.open_dataset(tmp, **time_decoding(entry)) as back:
        record = describe(back, entry)
    tmp.replace(out)
    record["file"] = entry.filename
    record["bytes"] = out.stat().st_size
    record["sha256"] = sha256_file(out)
    record["converted"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"datasets (default: all of {list(REAL_DATASETS)})"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache directory (default: $XSR_DATA_DIR or ~/.cache/xsr/real)",
    )
    parser.add_argument("--force", action="store_true", help="convert again even if verified")
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    args = parser.parse_args(argv)
    cache = (args.cache or default_cache()).expanduser()
    names = args.names or list(REAL_DATASETS)
    unknown = [n for n in names if n not in REAL_DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; known: {list(REAL_DATASETS)}")
    if args.list:
        manifest = load_manifest(cache)
        for name in names:
            entry = REAL_DATASETS[name]
            state = "cached" if (cache / entry.filename).is_file() else "missing"
            rec = manifest["datasets"].get(name, {})
            dims = rec.get("dims", "")
            print(f"{name:26s} {state:8s} {entry.source:34s} {dims}")
        return 0
    t0 = time.perf_counter()
    outcome = fetch(names, cache, force=args.force)
    for name in names:
        print(f"{name:26s} {outcome[name]}")
    print(f"cache: {cache} ({time.perf_counter() - t0:.1f} s)")
    failed = [n for n, o in outcome.items() if o.startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

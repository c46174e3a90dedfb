"""Tests of xsr.archive: resumable region-by-region Zarr writes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xsr.archive as archive
from xsr.archive import (
    ArchiveError,
    JobMismatchError,
    ReadOnlyStoreError,
    StoreExistsError,
    store_status,
    write_zarr_resumable,
)
from xsr.digest import sha256_file
from xsr.testing import raise_if_dask_computes, random_movie

# ---------------------------------------------------------------------------------------------
# a lazy movie whose blocks record that they were computed (and can be told to fail)
# ---------------------------------------------------------------------------------------------

CALLS: list[int] = []
FAIL_AT: dict[str, int] = {}


def _traced(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    index = block_info[0]["chunk-location"][0]
    CALLS.append(index)
    if FAIL_AT.get("region") == index:
        raise RuntimeError(f"injected failure in block {index}")
    return block * 2.0 + 1.0


def lazy_movie(nt: int = 12, chunk: int = 1, n: int = 16) -> xr.Dataset:
    """``2 h + 1`` of a random movie, lazily, one traced dask block per ``chunk`` frames."""
    ds = random_movie(nt, n, n).chunk(time=chunk)
    data = ds["h"].data
    traced = data.map_blocks(_traced, dtype=data.dtype, meta=np.array((), dtype=data.dtype))
    return ds.copy(data={"h": traced})


def expected_movie(nt: int = 12, n: int = 16) -> xr.Dataset:
    ds = random_movie(nt, n, n)
    return ds.copy(data={"h": ds["h"].values * 2.0 + 1.0})


@pytest.fixture(autouse=True)
def _reset_trace():
    CALLS.clear()
    FAIL_AT.clear()
    yield
    CALLS.clear()
    FAIL_AT.clear()


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file of a folder, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def test_eager_input_roundtrip(tmp_path):
    ds = random_movie(7, 8, 10, variables=("h", "u"))
    out = write_zarr_resumable(ds, tmp_path / "eager.zarr", region_size=3, progress=False)
    xr.testing.assert_identical(out.compute(), ds)
    assert out["h"].chunks[0] == (3, 3, 1)
    status = store_status(tmp_path / "eager.zarr")
    assert status["n_regions"] == 3
    assert status["completed"] == [0, 1, 2]
    assert status["missing"] == []
    assert status["finished"]


def test_chunked_input_streams_one_compute_per_region(tmp_path):
    lazy = lazy_movie(12, chunk=3)
    with raise_if_dask_computes(max_computes=4) as sched:
        out = write_zarr_resumable(lazy, tmp_path / "lazy.zarr", progress=False)
        assert isinstance(out["h"].data, dask.array.Array)  # returned lazily
    assert sched.total_computes == 4  # one per region, never the whole array at once
    assert sorted(CALLS) == [0, 1, 2, 3]
    xr.testing.assert_identical(out.compute(), expected_movie(12))
    # Zarr chunks along time are the regions: no chunk is shared by two regions.
    group = zarr.open_group(str(tmp_path / "lazy.zarr"), mode="r")
    assert group["h"].chunks[0] == 3


def test_static_lazy_variables_are_written_with_the_metadata(tmp_path):
    ds = random_movie(6, 8, 8).chunk(time=2)
    ds["mask"] = (ds["h"].isel(time=0, drop=True) > 0).astype("int8")
    ds = ds.assign_coords(area=(("y", "x"), np.full((8, 8), 1.0e6)))
    with raise_if_dask_computes(max_computes=4):  # the static variable once, then 3 regions
        out = write_zarr_resumable(ds, tmp_path / "static.zarr", progress=False)
    xr.testing.assert_identical(out.compute(), ds.compute())


def test_dataarray_roundtrip_keeps_name_and_kind(tmp_path):
    da = random_movie(5, 6, 6)["h"].chunk(time=2)
    out = write_zarr_resumable(da, tmp_path / "da.zarr", progress=False)
    assert isinstance(out, xr.DataArray)
    xr.testing.assert_identical(out.compute(), da.compute())
    unnamed = da.rename(None)
    out = write_zarr_resumable(unnamed, tmp_path / "unnamed.zarr", progress=False)
    assert out.name is None
    np.testing.assert_array_equal(out.values, da.values)


def test_other_region_dimension_and_region_size_rechunks(tmp_path):
    ds = random_movie(4, 10, 6).chunk(y=4)
    out = write_zarr_resumable(
        ds, tmp_path / "y.zarr", regions_along="y", region_size=3, progress=False
    )
    assert out["h"].chunks[1] == (3, 3, 3, 1)
    xr.testing.assert_identical(out.compute(), ds.compute())


def test_default_region_size_is_capped_by_bytes(tmp_path, monkeypatch):
    three_frames = 3 * 8 * 8 * 4  # bytes of three float32 frames
    monkeypatch.setattr(archive.write, "DEFAULT_REGION_BYTES", three_frames)
    ds = random_movie(10, 8, 8)  # eager: one chunk of 10 frames would be the whole array
    out = write_zarr_resumable(ds, tmp_path / "cap.zarr", progress=False)
    assert store_status(tmp_path / "cap.zarr")["region_size"] == 3
    assert out["h"].chunks[0] == (3, 3, 3, 1)


def test_progress_bar_counts_regions(tmp_path, capsys):
    write_zarr_resumable(lazy_movie(4, chunk=1), tmp_path / "p.zarr", progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err
    assert "region" in err


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    nt=st.integers(1, 9),
    chunk=st.integers(1, 9),
    region_size=st.one_of(st.none(), st.integers(1, 10)),
)
def test_any_chunking_and_region_size_roundtrips(nt, chunk, region_size):
    ds = random_movie(nt, 4, 5, seed=nt).chunk(time=chunk)
    with tempfile.TemporaryDirectory() as tmp:
        out = write_zarr_resumable(
            ds, Path(tmp) / "h.zarr", region_size=region_size, progress=False
        )
        xr.testing.assert_identical(out.compute(), ds.compute())
        status = store_status(Path(tmp) / "h.zarr")
        size = min(region_size or chunk, nt)
        assert status["region_size"] == size
        assert status["n_regions"] == math.ceil(nt / size)
        assert set(out["h"].chunks[0][:-1]) <= {size}


# ---------------------------------------------------------------------------------------------
# resuming
# ---------------------------------------------------------------------------------------------


def test_failed_run_leaves_a_resumable_store(tmp_path):
    reference = tmp_path / "reference.zarr"
    write_zarr_resumable(lazy_movie(), reference, job_id="job", progress=False)

    store = tmp_path / "failed.zarr"
    CALLS.clear()
    FAIL_AT["region"] = 5
    with pytest.raises(RuntimeError, match="injected failure") as info:
        write_zarr_resumable(lazy_movie(), store, job_id="job", progress=False)
    assert any("resumable" in note for note in getattr(info.value, "__notes__", ["resumable"]))
    status = store_status(store)
    assert status["completed"] == [0, 1, 2, 3, 4]
    assert not status["finished"]
    # Not corrupt: it opens, and the complete regions hold their values.
    partial = xr.open_zarr(store, consolidated=False)
    np.testing.assert_array_equal(
        partial["h"].isel(time=slice(0, 5)).values,
        expected_movie()["h"].isel(time=slice(0, 5)).values,
    )

    FAIL_AT.clear()
    CALLS.clear()
    out = write_zarr_resumable(lazy_movie(), store, job_id="job", progress=False)
    assert sorted(CALLS) == list(range(5, 12))  # only the missing regions were computed
    xr.testing.assert_identical(out.compute(), expected_movie())
    assert tree_bytes(store) == tree_bytes(reference)


def test_region_written_but_not_marked_is_recomputed(tmp_path, monkeypatch):
    """Killed between a region's data and its marker: the region counts as missing."""
    store = tmp_path / "between.zarr"
    real_open_array = zarr.open_array

    class Interrupted(Exception):
        pass

    class MarkerThatDies:
        def __init__(self, array):
            self.array = array

        def __setitem__(self, index, value):
            if index == 2:
                raise Interrupted("killed after the data of region 2 was written")
            self.array[index] = value

    def open_array(*args, **kwargs):
        return MarkerThatDies(real_open_array(*args, **kwargs))

    monkeypatch.setattr(zarr, "open_array", open_array)
    with pytest.raises(Interrupted):
        write_zarr_resumable(lazy_movie(6), store, job_id="job", progress=False)
    assert CALLS == [0, 1, 2]
    monkeypatch.setattr(zarr, "open_array", real_open_array)
    # The data of region 2 is on disk, yet the region is not taken for complete.
    on_disk = xr.open_zarr(store, consolidated=False)["h"].isel(time=2).values
    np.testing.assert_array_equal(on_disk, expected_movie(6)["h"].isel(time=2).values)
    assert store_status(store)["missing"] == [2, 3, 4, 5]
    CALLS.clear()
    write_zarr_resumable(lazy_movie(6), store, job_id="job", progress=False)
    assert sorted(CALLS) == [2, 3, 4, 5]
    assert store_status(store)["finished"]


KILL_SCRIPT = r"""
import sys, time
import numpy as np
from xsr.archive import write_zarr_resumable
from xsr.testing import random_movie

def slow(block, block_info=None):
    time.sleep(float(sys.argv[2]))
    return block * 2.0 + 1.0

ds = random_movie(12, 16, 16).chunk(time=1)
data = ds["h"].data
lazy = ds.copy(data={"h": data.map_blocks(slow, dtype=data.dtype,
                                          meta=np.array((), dtype=data.dtype))})
write_zarr_resumable(lazy, sys.argv[1], job_id="job", progress=False)
"""


def _completed(store: Path) -> list[int]:
    try:
        return store_status(store)["completed"]
    except (FileNotFoundError, ArchiveError, KeyError):
        return []


def test_killed_subprocess_resumes_to_identical_store(tmp_path):
    store = tmp_path / "killed.zarr"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(store), "0.25"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_completed(store)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never recorded 3 regions"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    status = store_status(store)
    assert not status["finished"]
    assert 3 <= len(status["completed"]) < 12
    missing = status["missing"]

    out = write_zarr_resumable(lazy_movie(), store, job_id="job", progress=False)
    assert sorted(CALLS) == missing  # the resumed run computed only the missing regions

    reference = tmp_path / "uninterrupted.zarr"
    write_zarr_resumable(lazy_movie(), reference, job_id="job", progress=False)
    assert tree_bytes(store) == tree_bytes(reference)  # identical bytes, metadata included
    xr.testing.assert_identical(out.compute(), expected_movie())


# ---------------------------------------------------------------------------------------------
# existing stores and bad input
# ---------------------------------------------------------------------------------------------


def test_finished_store_of_the_same_job_is_nothing_to_do(tmp_path, caplog):
    store = tmp_path / "done.zarr"
    write_zarr_resumable(lazy_movie(4), store, job_id="job", progress=False)
    CALLS.clear()
    with caplog.at_level("INFO", logger="xsr.archive"):
        out = write_zarr_resumable(lazy_movie(4), store, job_id="job", progress=False)
    assert CALLS == []
    assert "nothing to do" in caplog.text
    xr.testing.assert_identical(out.compute(), expected_movie(4))
    with pytest.raises(StoreExistsError, match=r"different fingerprint.*overwrite=True"):
        write_zarr_resumable(lazy_movie(4), store, job_id="other job", progress=False)
    CALLS.clear()
    out = write_zarr_resumable(lazy_movie(4), store, job_id="job", overwrite=True, progress=False)
    assert sorted(CALLS) == [0, 1, 2, 3]
    xr.testing.assert_identical(out.compute(), expected_movie(4))


def test_unfinished_store_of_another_job_is_refused(tmp_path):
    store = tmp_path / "other.zarr"
    FAIL_AT["region"] = 1
    with pytest.raises(RuntimeError):
        write_zarr_resumable(lazy_movie(4), store, job_id="first", progress=False)
    FAIL_AT.clear()
    with pytest.raises(JobMismatchError, match=r"unfinished.*differs in: job.*overwrite=True"):
        write_zarr_resumable(lazy_movie(4), store, job_id="second", progress=False)
    # A different shape is another job too, even with the default job_id.
    with pytest.raises(JobMismatchError, match="different fingerprint"):
        write_zarr_resumable(lazy_movie(5), store, job_id="first", progress=False)
    out = write_zarr_resumable(
        lazy_movie(4), store, job_id="second", overwrite=True, progress=False
    )
    xr.testing.assert_identical(out.compute(), expected_movie(4))


def test_default_job_id_tells_inputs_apart(tmp_path):
    store = tmp_path / "default.zarr"
    FAIL_AT["region"] = 2
    with pytest.raises(RuntimeError):
        write_zarr_resumable(lazy_movie(4), store, progress=False)
    FAIL_AT.clear()
    other = lazy_movie(4).assign_attrs(title="another movie")
    with pytest.raises(JobMismatchError, match="attrs"):
        write_zarr_resumable(other, store, progress=False)
    CALLS.clear()
    write_zarr_resumable(lazy_movie(4), store, progress=False)  # same input: resumed
    assert sorted(CALLS) == [2, 3]


def test_store_not_written_by_xsr_is_refused(tmp_path):
    store = tmp_path / "plain.zarr"
    random_movie(3, 4, 4).to_zarr(store, consolidated=False)
    with pytest.raises(StoreExistsError, match=r"no resumable xsr job.*overwrite=True"):
        write_zarr_resumable(random_movie(3, 4, 4), store, progress=False)
    with pytest.raises(ArchiveError, match="no xsr job record"):
        store_status(store)
    out = write_zarr_resumable(random_movie(3, 4, 4), store, overwrite=True, progress=False)
    assert store_status(store)["finished"]
    xr.testing.assert_identical(out.compute(), random_movie(3, 4, 4))


def test_overwrite_never_deletes_a_folder_that_is_not_zarr(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(StoreExistsError, match="not a Zarr store"):
        write_zarr_resumable(random_movie(3, 4, 4), folder, overwrite=True, progress=False)
    assert (folder / "thesis.txt").read_text() == "precious"


def test_store_path_that_is_a_file(tmp_path):
    path = tmp_path / "file.zarr"
    path.write_text("x")
    with pytest.raises(StoreExistsError, match="is a file"):
        write_zarr_resumable(random_movie(3, 4, 4), path, progress=False)


def test_read_only_store_object(tmp_path):
    from zarr.storage import LocalStore

    store = LocalStore(str(tmp_path / "ro.zarr"), read_only=True)
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        write_zarr_resumable(random_movie(3, 4, 4), store, progress=False)


def test_store_under_a_file_is_not_writable(tmp_path):
    (tmp_path / "not_a_folder").write_text("x")
    with pytest.raises(ReadOnlyStoreError, match="writable folder"):
        write_zarr_resumable(
            random_movie(3, 4, 4), tmp_path / "not_a_folder" / "out.zarr", progress=False
        )


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ReadOnlyStoreError, match="not writable"):
            write_zarr_resumable(random_movie(3, 4, 4), folder / "out.zarr", progress=False)
    finally:
        folder.chmod(0o755)


def test_permission_error_while_writing_is_explained(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "zarr.json")

    monkeypatch.setattr(archive.write, "_init_store", denied)
    with pytest.raises(ReadOnlyStoreError, match="choose a writable path for `store`"):
        write_zarr_resumable(random_movie(3, 4, 4), tmp_path / "x.zarr", progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"regions_along": "level"}, ValueError, "regions_along='level' is not a dimension"),
        ({"region_size": 0}, ValueError, "region_size must be a positive integer"),
        ({"region_size": 2.5}, TypeError, "region_size must be a positive integer"),
        ({"job_id": 3}, TypeError, "job_id must be"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_zarr_resumable(random_movie(3, 4, 4), tmp_path / "bad.zarr", progress=False, **kwargs)


def test_bad_object(tmp_path):
    with pytest.raises(TypeError, match=r"obj must be an xarray\.Dataset"):
        write_zarr_resumable(np.zeros((3, 4, 4)), tmp_path / "bad.zarr")


def test_store_status_of_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store_status(tmp_path / "nothing.zarr")


# ---------------------------------------------------------------------------------------------
# upscale_to_zarr and upscale_file (through xsr.upscaling.upscale with bicubic interpolation)
# ---------------------------------------------------------------------------------------------


def _bicubic(ds, scale=2):
    from xsr.upscaling import upscale

    return upscale(ds, "bicubic", scale=scale)


def test_upscale_to_zarr_eager_input(tmp_path):
    from xsr.archive import upscale_to_zarr

    ds = random_movie(6, 8, 8)
    out = upscale_to_zarr(
        ds, tmp_path / "eager.zarr", model="bicubic", scale=2, region_size=4, progress=False
    )
    assert out["h"].chunks[0] == (4, 2)
    expected = _bicubic(ds)
    xr.testing.assert_allclose(out.compute(), expected, rtol=0, atol=1e-6)
    assert "upscale" in out.attrs["history"]
    fingerprint = store_status(tmp_path / "eager.zarr")["fingerprint"]
    assert fingerprint["job"]["model"] == {"name": "bicubic"}
    assert fingerprint["job"]["arguments"]["scale"] == 2


def test_upscale_to_zarr_chunked_input_streams_by_region(tmp_path):
    from xsr.archive import upscale_to_zarr

    ds = random_movie(9, 8, 8).chunk(time=3)
    with raise_if_dask_computes(max_computes=3):  # the three regions, each on its own
        out = upscale_to_zarr(ds, tmp_path / "lazy.zarr", model="bicubic", scale=2, progress=False)
    assert out["h"].chunks[0] == (3, 3, 3)
    xr.testing.assert_allclose(out.compute(), _bicubic(ds.compute()), rtol=0, atol=1e-6)


def test_upscale_to_zarr_dataarray_and_default_region_size(tmp_path, monkeypatch):
    from xsr.archive import upscale_to_zarr

    two_frames = 2 * 16 * 16 * 4  # bytes of two float32 output frames
    monkeypatch.setattr(archive.upscaling, "DEFAULT_REGION_BYTES", two_frames)
    da = random_movie(5, 8, 8)["h"]
    out = upscale_to_zarr(da, tmp_path / "da.zarr", model="bicubic", scale=2, progress=False)
    assert isinstance(out, xr.DataArray)
    assert out.name == "h"
    assert out.shape == (5, 16, 16)
    assert store_status(tmp_path / "da.zarr")["region_size"] == 2


def _interrupt(store: Path, regions: list[int]) -> None:
    """Make a finished store look like a run killed before ``regions`` were written."""
    group = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    markers = group["_xsr/completed"]
    size = store_status(store)["region_size"]
    for i in regions:
        markers[i] = 0
        group["h"][i * size : (i + 1) * size] = np.nan


def test_upscale_to_zarr_resume_computes_only_missing_regions(tmp_path):
    from xsr.archive import upscale_to_zarr

    ds = random_movie(8, 8, 8).chunk(time=2)
    kwargs = {"model": "bicubic", "scale": 2, "progress": False}
    reference = upscale_to_zarr(ds, tmp_path / "ref.zarr", **kwargs)
    store = tmp_path / "resumed.zarr"
    upscale_to_zarr(ds, store, **kwargs)
    _interrupt(store, [1, 3])
    assert store_status(store)["missing"] == [1, 3]
    with raise_if_dask_computes(max_computes=2) as sched:
        out = upscale_to_zarr(ds, store, **kwargs)
    assert sched.total_computes == 2
    # Identical but for the timestamp of the provenance line of each run.
    assert "upscale" in out.attrs.pop("history")
    assert "upscale" in reference.attrs.pop("history")
    xr.testing.assert_identical(out.compute(), reference.compute())


def test_upscale_to_zarr_fingerprint_sees_arguments_and_input(tmp_path):
    from xsr.archive import upscale_to_zarr

    ds = random_movie(4, 8, 8).chunk(time=2)
    store = tmp_path / "job.zarr"
    upscale_to_zarr(ds, store, model="bicubic", scale=2, progress=False)
    _interrupt(store, [1])
    with pytest.raises(JobMismatchError, match=r"arguments\.conserve"):
        upscale_to_zarr(ds, store, model="bicubic", scale=2, conserve=True, progress=False)
    with pytest.raises(JobMismatchError, match="input"):
        upscale_to_zarr(ds + 1, store, model="bicubic", scale=2, progress=False)
    # device= chooses where to compute, not what: the job still resumes.
    upscale_to_zarr(ds, store, model="bicubic", scale=2, device="cpu", progress=False)
    assert store_status(store)["finished"]


def test_upscale_to_zarr_needs_model_or_scale(tmp_path):
    from xsr.archive import upscale_to_zarr

    with pytest.raises(ValueError, match="pass model="):
        upscale_to_zarr(random_movie(3, 4, 4), tmp_path / "x.zarr")


def test_upscale_file_netcdf_to_zarr_and_zarr_to_netcdf(tmp_path):
    from xsr.archive import upscale_file

    ds = random_movie(4, 8, 8, variables=("h", "u"))
    src = tmp_path / "in.nc"
    ds.to_netcdf(src)
    out = upscale_file(src, tmp_path / "out.zarr", model="bicubic", scale=2, progress=False)
    assert out == tmp_path / "out.zarr"
    hi = xr.open_zarr(out)
    xr.testing.assert_allclose(hi.compute(), _bicubic(ds), rtol=0, atol=1e-6)

    nc = upscale_file(
        tmp_path / "out.zarr",
        tmp_path / "x4.nc",
        model="bicubic",
        scale=2,
        variables=["h"],
        progress=False,
    )
    with xr.open_dataset(nc) as result:
        assert list(result.data_vars) == ["h"]
        xr.testing.assert_allclose(result["h"], _bicubic(hi[["h"]].compute())["h"], atol=1e-6)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["in.nc", "out.zarr", "x4.nc"]  # no temporary store or .part file


def test_upscale_file_netcdf_resumes_its_temporary_store(tmp_path):
    from xsr.archive import upscale_file

    src = tmp_path / "in.nc"
    random_movie(4, 8, 8).to_netcdf(src)
    dst = tmp_path / "out.nc"
    upscale_file(src, tmp_path / "ref.nc", model="bicubic", scale=2, region_size=1, progress=False)
    # A job killed during the conversion left a finished temporary store and a .part file.
    tmp = tmp_path / "out.nc.xsr-partial.zarr"
    with xr.open_dataset(src, chunks={}) as ds:
        archive.upscale_to_zarr(ds, tmp, model="bicubic", scale=2, region_size=1, progress=False)
    (tmp_path / "out.nc.part").write_bytes(b"half a file")
    with raise_if_dask_computes(max_computes=1):  # the copy only: no region is recomputed
        upscale_file(src, dst, model="bicubic", scale=2, region_size=1, progress=False)
    assert not tmp.exists()
    assert not (tmp_path / "out.nc.part").exists()
    with xr.open_dataset(dst) as a, xr.open_dataset(tmp_path / "ref.nc") as b:
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_upscale_file_errors(tmp_path):
    from xsr.archive import upscale_file

    src = tmp_path / "in.nc"
    random_movie(3, 4, 4).to_netcdf(src)
    with pytest.raises(ValueError, match=r"unsupported output suffix '\.tif'.*\.zarr"):
        upscale_file(src, tmp_path / "out.tif", model="bicubic", scale=2)
    with pytest.raises(FileNotFoundError, match=r"input_path .*missing\.nc.* does not exist"):
        upscale_file(tmp_path / "missing.nc", tmp_path / "out.zarr", model="bicubic", scale=2)
    with pytest.raises(ValueError, match=r"variables \['v'\] are not in"):
        upscale_file(src, tmp_path / "out.zarr", model="bicubic", scale=2, variables=["v"])
    (tmp_path / "exists.nc").write_bytes(b"")
    with pytest.raises(StoreExistsError, match="--overwrite"):
        upscale_file(src, tmp_path / "exists.nc", model="bicubic", scale=2)
    upscale_file(src, tmp_path / "done.zarr", model="bicubic", scale=2, progress=False)
    with pytest.raises(StoreExistsError, match="--overwrite"):
        upscale_file(src, tmp_path / "done.zarr", model="bicubic", scale=3, progress=False)


def test_file_backed_input_without_dask_is_never_loaded_whole(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(6, 8, 8).to_netcdf(src)
    with xr.open_dataset(src) as ds:  # lazily indexed file variables, no dask
        out = write_zarr_resumable(ds, tmp_path / "out.zarr", region_size=2, progress=False)
        assert not ds["h"].variable._in_memory
    identity = store_status(tmp_path / "out.zarr")["fingerprint"]["job"]["dataset"]
    # identified by the file's content, not its path or modification time
    assert identity["variables"]["h"]["source_sha256"] == sha256_file(src)
    assert out["h"].chunks[0] == (2, 2, 2)
    xr.testing.assert_identical(out.compute(), random_movie(6, 8, 8))


def test_upscale_to_zarr_fingerprint_hashes_model_weights(tmp_path):
    import torch

    from xsr.archive import upscale_to_zarr
    from xsr.models import get_model

    torch.manual_seed(0)
    model = get_model("fsrcnn", scale=2, channels=1).eval()
    ds = random_movie(4, 8, 8).chunk(time=2)
    store = tmp_path / "net.zarr"
    upscale_to_zarr(ds, store, model=model, progress=False)
    identity = store_status(store)["fingerprint"]["job"]["model"]
    assert identity["arch"] == "fsrcnn"
    assert len(identity["state_sha256"]) == 64
    _interrupt(store, [0])
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # fine-tuned in memory: another job
    with pytest.raises(JobMismatchError, match=r"job\.model\.state_sha256"):
        upscale_to_zarr(ds, store, model=model, progress=False)


def test_writes_through_a_distributed_client(tmp_path):
    distributed = pytest.importorskip("distributed")

    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ):
        out = write_zarr_resumable(lazy_movie(4, chunk=2), tmp_path / "d.zarr", progress=False)
        xr.testing.assert_identical(out.compute(), expected_movie(4))
    assert store_status(tmp_path / "d.zarr")["finished"]


KILL_UPSCALE_SCRIPT = r"""
import importlib, sys, time
import numpy as np
from xsr.archive import upscale_file

module = importlib.import_module("xsr.upscaling")
real_upscale = module.upscale

def slow(block):
    time.sleep(float(sys.argv[3]))
    return block

def slow_upscale(*args, **kwargs):
    # Same values, written slowly enough to be killed mid-run (a hook of this test only).
    out = real_upscale(*args, **kwargs)
    data = out["h"].data
    return out.copy(data={"h": data.map_blocks(slow, dtype=data.dtype,
                                               meta=np.array((), dtype=data.dtype))})

module.upscale = slow_upscale
upscale_file(sys.argv[1], sys.argv[2], model="bicubic", scale=2, region_size=1, progress=False)
"""


@pytest.mark.slow
def test_killed_upscale_file_resumes_to_identical_store(tmp_path):
    from xsr.archive import upscale_file

    src = tmp_path / "in.nc"
    random_movie(10, 8, 8).to_netcdf(src)
    store = tmp_path / "killed.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_UPSCALE_SCRIPT, str(src), str(store), "0.3"],
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while len(_completed(store)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never recorded 2 regions"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    status = store_status(store)
    assert 2 <= len(status["completed"]) < 10
    with raise_if_dask_computes(max_computes=len(status["missing"])):
        upscale_file(src, store, model="bicubic", scale=2, region_size=1, progress=False)
    reference = tmp_path / "reference.zarr"
    upscale_file(src, reference, model="bicubic", scale=2, region_size=1, progress=False)
    assert tree_bytes(store / "h") == tree_bytes(reference / "h")
    a, b = xr.open_zarr(store), xr.open_zarr(reference)
    assert a.attrs.pop("history") != b.attrs.pop("history")  # the runs' own timestamps
    xr.testing.assert_identical(a, b)


def test_windowed_model_regions_match_a_direct_upscale(tmp_path):
    """A 5-frame model reads across region edges: each region pulls its time halo."""
    import torch

    from xsr._chunked import HaloChunkWarning
    from xsr.archive import upscale_to_zarr
    from xsr.models import get_model
    from xsr.upscaling import upscale

    torch.manual_seed(0)
    model = get_model("srnet3d", channels=1).eval()
    assert model.window == 5
    ds = random_movie(7, 6, 6)
    with warnings.catch_warnings():
        # The short last region is not made a chunk shorter than the halo.
        warnings.simplefilter("error", HaloChunkWarning)
        out = upscale_to_zarr(ds, tmp_path / "3d.zarr", model=model, region_size=2, progress=False)
    assert out["h"].chunks[0] == (2, 2, 2, 1)
    direct = upscale(ds, model)
    np.testing.assert_allclose(out["h"].values, direct["h"].values, rtol=0, atol=1e-5)


@given(length=st.integers(1, 60), region_size=st.integers(1, 20))
def test_input_chunks_follow_regions(length, region_size):
    chunks = archive.regions._input_chunks(length, region_size)
    assert sum(chunks) == length
    edges = np.cumsum(chunks)[:-1]
    assert all(edge % region_size == 0 for edge in edges)  # chunk edges are region edges
    if len(chunks) > 1:
        assert 2 * chunks[-1] > region_size  # no short last chunk next to a full one

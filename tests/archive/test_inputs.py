"""Tests of the input fingerprint (issue 17, items 5 and 12): identity by content, and an input
changed under a running job stops it before anything computed from it is marked complete."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from xsr.archive import (
    InputChangedError,
    JobMismatchError,
    store_status,
    upscale_file,
    upscale_to_zarr,
)
from xsr.archive.inputs import check_inputs, fingerprint_inputs, input_files
from xsr.archive.verify import unmark
from xsr.digest import sha256_file
from xsr.testing import random_movie

SLOW_UPSCALE = r"""
import importlib, sys, time
from xsr.archive import upscale_file

module = importlib.import_module("xsr.upscaling")
real_upscale = module.upscale

def slow(block):
    time.sleep(float(sys.argv[3]))
    return block

def slow_upscale(*args, **kwargs):
    # Same values, computed slowly enough to act on the input meanwhile (a hook of this test).
    out = real_upscale(*args, **kwargs)
    return out.copy(data={"h": out["h"].data.map_blocks(slow, dtype=out["h"].dtype)})

module.upscale = slow_upscale
upscale_file(sys.argv[1], sys.argv[2], model="bicubic", scale=2, region_size=1, progress=False)
"""


def _start(src: Path, store: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_UPSCALE, str(src), str(store), str(delay)],
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _done(store: Path) -> int:
    try:
        return len(store_status(store)["completed"])
    except Exception:
        return 0


def _wait_regions(store: Path, proc: subprocess.Popen, n: int) -> None:
    deadline = time.monotonic() + 180
    while _done(store) < n:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"the writer never recorded {n} regions"
        time.sleep(0.02)


def _unfinish(store: Path, regions: list[int]) -> None:
    """Leave a finished store as a killed run would: some regions not marked complete."""
    unmark(store, regions)


def test_input_files_are_the_sources_as_opened(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(4, 8, 8).to_netcdf(src)
    with xr.open_dataset(src, chunks={}) as ds:
        assert input_files(ds) == [src.resolve()]
        assert input_files(ds * 2) == [src.resolve()]  # still read from the file
        assert input_files(ds * 2, as_opened=True) == [src.resolve()]  # its in-memory coords
        assert input_files((ds * 2)[["h"]].drop_vars(list(ds.coords)), as_opened=True) == []
    record = fingerprint_inputs([src])[str(src.resolve())]
    assert record["sha256"] == sha256_file(src)
    check_inputs({str(src.resolve()): record}, when="now")  # unchanged: no error


def test_touched_or_copied_input_resumes(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(6, 8, 8).to_netcdf(src)
    store = tmp_path / "out.zarr"
    upscale_file(src, store, model="bicubic", scale=2, region_size=2, progress=False)
    reference = xr.open_zarr(store).compute()
    _unfinish(store, [1, 2])
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched
    upscale_file(src, store, model="bicubic", scale=2, region_size=2, progress=False)
    assert store_status(store)["finished"]
    _unfinish(store, [2])
    copy = tmp_path / "elsewhere" / "copy.nc"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    upscale_file(copy, store, model="bicubic", scale=2, region_size=2, progress=False)
    assert store_status(store)["finished"]
    recorded = zarr.open_group(store, mode="r")["_xsr"].attrs["inputs"]
    assert list(recorded) == [str(copy.resolve())]  # the record follows the input's new path
    out = xr.open_zarr(store).compute()
    xr.testing.assert_identical(out.drop_attrs(), reference.drop_attrs())


def test_input_with_other_content_is_refused(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(6, 8, 8).to_netcdf(src)
    store = tmp_path / "out.zarr"
    upscale_file(src, store, model="bicubic", scale=2, region_size=2, progress=False)
    _unfinish(store, [2])
    changed = random_movie(6, 8, 8)
    changed["h"][3, 4, 4] += 1.0
    changed.to_netcdf(src)  # same size, one value differs
    with pytest.raises(JobMismatchError, match="content of an input file differs"):
        upscale_file(src, store, model="bicubic", scale=2, region_size=2, progress=False)


def test_check_inputs_names_a_truncated_or_modified_file(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(6, 8, 8).to_netcdf(src)
    record = fingerprint_inputs([src])
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputChangedError, match=r"in\.nc.*changed size.*truncated.*resume"):
        check_inputs(record, when="marking region 3 complete")
    src.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(InputChangedError, match=r"in\.nc' was modified"):
        check_inputs(record, when="marking region 3 complete")
    src.unlink()
    with pytest.raises(InputChangedError, match="was removed"):
        check_inputs(record, when="marking region 3 complete")


def test_input_changed_between_regions_stops_before_marking(tmp_path, monkeypatch):
    """In one process: the file is rewritten after the first region; nothing later is marked."""
    import xsr.archive.write as write

    src = tmp_path / "in.nc"
    random_movie(6, 8, 8).to_netcdf(src)
    real = write.region_checksum
    calls = []

    def rewrite_after_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            with open(src, "r+b") as fh:
                fh.truncate(os.path.getsize(src) - 100)
        return real(*args, **kwargs)

    monkeypatch.setattr(write, "region_checksum", rewrite_after_first)
    store = tmp_path / "out.zarr"
    with pytest.raises(InputChangedError, match=rf"{src.name}.*marking region 0"):
        upscale_file(src, store, model="bicubic", scale=2, region_size=2, progress=False)
    assert store_status(store)["completed"] == []


@pytest.mark.slow
def test_input_truncated_while_a_real_run_reads_it(tmp_path):
    src = tmp_path / "in.nc"
    movie = random_movie(12, 8, 8)
    movie.to_netcdf(src)
    store = tmp_path / "out.zarr"
    proc = _start(src, store, 0.4)
    try:
        _wait_regions(store, proc, 2)
        with open(src, "r+b") as fh:  # truncated under the job's open handle
            fh.truncate(os.path.getsize(src) // 2)
        proc.wait(timeout=180)
        err = proc.stderr.read().decode()
    finally:
        proc.stderr.close()
    assert proc.returncode != 0
    assert "InputChangedError" in err
    assert "in.nc" in err
    assert "truncated" in err
    status = store_status(store)
    assert not status["finished"]
    assert len(status["completed"]) < 12
    # Every region marked complete holds right values (computed before the truncation).
    movie.to_netcdf(tmp_path / "intact.nc")
    reference = tmp_path / "reference.zarr"
    upscale_file(
        tmp_path / "intact.nc", reference, model="bicubic", scale=2, region_size=1, progress=False
    )
    got, want = xr.open_zarr(store, consolidated=False), xr.open_zarr(reference)
    for i in status["completed"]:
        np.testing.assert_array_equal(got["h"][i].values, want["h"][i].values)


@pytest.mark.slow
def test_killed_run_resumes_from_a_copied_input(tmp_path):
    src = tmp_path / "in.nc"
    random_movie(10, 8, 8).to_netcdf(src)
    store = tmp_path / "out.zarr"
    proc = _start(src, store, 0.4)
    try:
        _wait_regions(store, proc, 2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    missing = store_status(store)["missing"]
    assert missing
    copy = tmp_path / "moved" / "in.nc"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    src.unlink()
    out = upscale_to_zarr(
        xr.open_dataset(copy, chunks={}),
        store,
        model="bicubic",
        scale=2,
        region_size=1,
        progress=False,
    )
    assert store_status(store)["finished"]
    assert out["h"].shape == (10, 16, 16)

"""Tests of xsr.archive.lock: one writer per store, stale locks taken over (issue 17, item 9)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from xsr.archive import StoreLockedError, store_status, write_zarr_resumable
from xsr.archive.lock import lock_path, store_lock
from xsr.testing import random_movie

SLOW_WRITER = r"""
import sys, time
import numpy as np
from xsr.archive import write_zarr_resumable
from xsr.testing import random_movie

def slow(block):
    time.sleep(float(sys.argv[2]))
    return block * 2.0

ds = random_movie(8, 8, 8).chunk(time=1)
data = ds["h"].data
lazy = ds.copy(data={"h": data.map_blocks(slow, dtype=data.dtype)})
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
write_zarr_resumable(lazy, sys.argv[1], job_id="job", progress=False, lock_timeout=timeout)
"""


def _doubled(n: int = 8) -> xr.Dataset:
    ds = random_movie(n, 8, 8).chunk(time=1)
    return ds.copy(data={"h": ds["h"].data * 2.0})


def _start_writer(store: Path, delay: float, lock_timeout: float = 10.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(store), str(delay), str(lock_timeout)],
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"the writer never {what}"
        time.sleep(0.02)


def _regions_done(store: Path) -> int:
    try:
        return len(store_status(store)["completed"])
    except Exception:
        return 0


def test_lock_file_names_its_owner_and_goes_away(tmp_path):
    store = tmp_path / "out.zarr"
    with store_lock(store):
        info = json.loads(lock_path(store).read_text())
        assert info["pid"] == os.getpid()
        assert info["host"] == socket.gethostname()
        assert info["time"]
    assert not lock_path(store).exists()
    assert store_lock.__module__ == "xsr.archive.lock"


def test_second_writer_waits_then_refuses_naming_the_owner(tmp_path):
    store = tmp_path / "out.zarr"
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(store).write_text(
            json.dumps({"pid": owner.pid, "host": socket.gethostname(), "time": "t", "argv": "a"})
        )
        start = time.monotonic()
        with pytest.raises(StoreLockedError, match=rf"process {owner.pid}.*xsr-lock"):
            write_zarr_resumable(_doubled(), store, progress=False, lock_timeout=0.5)
        assert time.monotonic() - start >= 0.5  # waited before refusing
        assert not store.exists()  # nothing was touched
    finally:
        owner.kill()
        owner.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = tmp_path / "out.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(store).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "time": "t", "argv": "a"})
    )
    out = write_zarr_resumable(_doubled(4), store, progress=False, lock_timeout=0)
    assert store_status(store)["finished"]
    assert not lock_path(store).exists()
    xr.testing.assert_identical(out.compute(), _doubled(4).compute())


def test_unreadable_lock_is_refused_with_the_file_to_delete(tmp_path):
    store = tmp_path / "out.zarr"
    lock_path(store).write_text("")
    with pytest.raises(StoreLockedError, match=r"unknown process.*delete the lock file"):
        write_zarr_resumable(_doubled(4), store, progress=False, lock_timeout=0)


@pytest.mark.slow
def test_concurrent_writers_one_refused_record_kept(tmp_path):
    store = tmp_path / "shared.zarr"
    first = _start_writer(store, 1.5)  # 8 regions: outlives the others' start-up
    try:
        _wait_for(lambda: _regions_done(store) >= 1, first, "began")
        with pytest.raises(StoreLockedError, match="being written by process"):
            write_zarr_resumable(_doubled(), store, job_id="job", progress=False, lock_timeout=0.2)
        refused = _start_writer(store, 0.0, lock_timeout=0.2)  # a real second process
        patient = _start_writer(store, 0.0, lock_timeout=120)  # waits for the first to end
        refused.wait(timeout=120)
        assert refused.returncode != 0
        assert b"StoreLockedError" in refused.stderr.read()
        refused.stderr.close()
    finally:
        first.wait(timeout=180)
        first.stderr.close()
    assert first.returncode == 0
    patient.wait(timeout=120)
    assert patient.returncode == 0, patient.stderr.read().decode()  # then: nothing to do
    patient.stderr.close()
    status = store_status(store)  # the job record survived both
    assert status["finished"]
    assert status["job_id"]
    out = write_zarr_resumable(_doubled(), store, job_id="job", progress=False)  # nothing to do
    xr.testing.assert_identical(out.compute(), _doubled().compute())


def test_killed_writer_leaves_a_stale_lock_that_the_next_run_takes(tmp_path):
    store = tmp_path / "killed.zarr"
    proc = _start_writer(store, 0.3)
    try:
        _wait_for(lambda: _regions_done(store) >= 2, proc, "recorded 2 regions")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert lock_path(store).exists()  # left behind by the kill
    out = write_zarr_resumable(_doubled(), store, job_id="job", progress=False, lock_timeout=0)
    assert store_status(store)["finished"]
    xr.testing.assert_identical(out.compute(), _doubled().compute())

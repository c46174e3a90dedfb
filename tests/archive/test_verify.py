"""Tests of region checksums and verification (issue 17, items 6, 10 and 11)."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
import zarr

from xsr.archive import CorruptStoreError, store_status, verify_store, write_zarr_resumable
from xsr.cli import main
from xsr.testing import random_movie

CALLS: list[int] = []


def _traced(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    if block_info is not None:
        CALLS.append(block_info[None]["chunk-location"][0])
    return block * 2.0 + 1.0


def lazy(nt: int = 6) -> xr.Dataset:
    ds = random_movie(nt, 8, 8).chunk(time=1)
    data = ds["h"].data
    return ds.copy(data={"h": data.map_blocks(_traced, dtype=data.dtype)})


def expected(nt: int = 6) -> xr.Dataset:
    ds = random_movie(nt, 8, 8)
    return ds.copy(data={"h": ds["h"].values * 2.0 + 1.0})


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture
def finished(tmp_path):
    store = tmp_path / "done.zarr"
    write_zarr_resumable(lazy(), store, job_id="job", progress=False)
    CALLS.clear()
    return store


def _chunk(store, region: int):
    return store / "h" / "c" / str(region) / "0" / "0"


def test_finished_store_verifies(finished, capsys):
    report = verify_store(finished)
    assert report == {"checked": 6, "bad": {}, "messages": [], "ok": True}
    assert main(["verify", str(finished)]) == 0
    assert "6 complete regions, all intact" in capsys.readouterr().out


def test_flipped_byte_is_found_named_and_recomputed(finished, capsys):
    chunk = _chunk(finished, 3)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x40
    chunk.write_bytes(bytes(data))
    report = verify_store(finished)
    assert list(report["bad"]) == [3]
    assert report["messages"][0].startswith("region 3 (time 3:4): ")
    assert main(["verify", str(finished)]) == 1
    out = capsys.readouterr().out
    assert "bad region 3 (time 3:4)" in out
    assert "--verify" in out
    # Without --verify a rerun trusts the finished store; with it, region 3 is recomputed.
    write_zarr_resumable(lazy(), finished, job_id="job", progress=False)
    assert CALLS == []
    out = write_zarr_resumable(lazy(), finished, job_id="job", progress=False, verify=True)
    assert CALLS == [3]
    xr.testing.assert_identical(out.compute(), expected())
    assert verify_store(finished)["ok"]


def test_truncated_chunk_is_named_and_repair_marks_it(finished, capsys):
    chunk = _chunk(finished, 1)
    chunk.write_bytes(chunk.read_bytes()[:10])
    report = verify_store(finished)
    assert report["bad"][1].startswith("checksum differs")
    assert main(["verify", str(finished), "--repair"]) == 1
    assert "marked incomplete" in capsys.readouterr().out
    status = store_status(finished)
    assert status["missing"] == [1]
    assert not status["finished"]
    out = write_zarr_resumable(lazy(), finished, job_id="job", progress=False)
    assert CALLS == [1]
    xr.testing.assert_identical(out.compute(), expected())


def test_marker_set_for_a_region_never_written_is_never_finished(tmp_path):
    store = tmp_path / "lying.zarr"

    def failing(block, block_info=None):
        if block_info[None]["chunk-location"][0] >= 2:
            raise RuntimeError("stop")
        return block * 2.0 + 1.0

    ds = random_movie(6, 8, 8).chunk(time=1)
    bad = ds.copy(data={"h": ds["h"].data.map_blocks(failing, dtype="float32")})
    with pytest.raises(RuntimeError, match="stop"):
        write_zarr_resumable(bad, store, job_id="job", progress=False)
    markers = zarr.open_array(store, path="_xsr/completed", mode="r+")
    markers[4] = 1  # a completion marker for a region whose chunks were never written
    status = store_status(store)
    assert status["damaged"] == {4: "chunk files missing: h/c/4/0/0"}
    out = write_zarr_resumable(lazy(), store, job_id="job", progress=False)
    assert sorted(CALLS) == [2, 3, 4, 5]
    xr.testing.assert_identical(out.compute(), expected())
    assert store_status(store)["finished"]


def test_lost_chunk_of_a_finished_store_is_not_finished(finished):
    _chunk(finished, 5).unlink()
    status = store_status(finished)
    assert not status["finished"]
    assert 5 in status["damaged"]
    assert verify_store(finished)["bad"] == {5: "chunk files missing: h/c/5/0/0"}
    write_zarr_resumable(lazy(), finished, job_id="job", progress=False)
    assert CALLS == [5]
    assert store_status(finished)["finished"]


def test_corrupt_chunk_in_an_unfinished_store_is_recomputed_on_verify(tmp_path):
    store = tmp_path / "part.zarr"

    def failing(block, block_info=None):
        if block_info[None]["chunk-location"][0] == 4:
            raise RuntimeError("stop")
        return block * 2.0 + 1.0

    ds = random_movie(6, 8, 8).chunk(time=1)
    bad = ds.copy(data={"h": ds["h"].data.map_blocks(failing, dtype="float32")})
    with pytest.raises(RuntimeError, match="stop"):
        write_zarr_resumable(bad, store, job_id="job", progress=False)
    chunk = _chunk(store, 0)
    data = bytearray(chunk.read_bytes())
    data[-3] ^= 0x01
    chunk.write_bytes(bytes(data))
    out = write_zarr_resumable(lazy(), store, job_id="job", progress=False, verify=True)
    assert sorted(CALLS) == [0, 4, 5]
    xr.testing.assert_identical(out.compute(), expected())


@pytest.mark.parametrize("damage", ["job record", "root metadata", "array metadata"])
def test_damaged_metadata_names_the_file_and_the_way_out(finished, damage, capsys):
    target = {
        "job record": finished / "_xsr" / "zarr.json",
        "root metadata": finished / "zarr.json",
        "array metadata": finished / "h" / "zarr.json",
    }[damage]
    if damage == "job record":
        target.write_text('{"zarr_format": 3, "node_type"\x01: garbage')
    else:
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    pattern = rf"{target.name}.*not valid JSON.*overwrite=True \(--overwrite"
    with pytest.raises(CorruptStoreError, match=pattern):
        write_zarr_resumable(lazy(), finished, job_id="job", progress=False)
    with pytest.raises(CorruptStoreError, match=str(target.parent.name)):
        verify_store(finished)
    assert main(["verify", str(finished)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    out = write_zarr_resumable(lazy(), finished, job_id="job", progress=False, overwrite=True)
    xr.testing.assert_identical(out.compute(), expected())


def test_store_without_xsr_record_is_not_verified(tmp_path):
    random_movie(2, 4, 4).to_zarr(tmp_path / "plain.zarr")
    with pytest.raises(ValueError, match="no xsr job record"):
        verify_store(tmp_path / "plain.zarr")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        verify_store(tmp_path / "absent.zarr")


def test_stores_that_are_not_local_folders_are_checksummed_by_values():
    store = zarr.storage.MemoryStore()
    out = write_zarr_resumable(lazy(), store, job_id="job", progress=False)
    xr.testing.assert_identical(out.compute(), expected())
    assert verify_store(store)["ok"]
    # a changed value in region 2 is found by reading the values back
    zarr.open_array(store, path="h", mode="r+")[2, 0, 0] = -1.0
    assert list(verify_store(store)["bad"]) == [2]

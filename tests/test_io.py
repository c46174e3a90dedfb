"""Tests of xsr.io: MATLAB (v4, v5, v7.3) and YUV4MPEG2 readers on small files written here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import xarray as xr

from xsr.degradation import degrade
from xsr.io import FileFormatError, is_zarr_store, open_dataset, open_mat, open_y4m
from xsr.testing import raise_if_dask_computes, random_movie

# ---------------------------------------------------------------- writers


def _matlab_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2026 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ")
    header += b"\x00" * 8  # subsystem data offset
    header += (0x0200).to_bytes(2, "little") + b"IM"  # version 0x0200, little-endian marker
    return header.ljust(512, b"\x00")


def write_mat73(path, arrays: dict[str, np.ndarray], *, extras: bool = True) -> None:
    """Write a MATLAB 7.3 file as MATLAB does: HDF5 with a 512-byte userblock, transposed arrays."""
    import h5py

    classes = {
        np.dtype("float64"): "double",
        np.dtype("float32"): "single",
        np.dtype("int16"): "int16",
        np.dtype("uint8"): "uint8",
        np.dtype("bool"): "logical",
    }
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            data = arr.astype("uint8") if arr.dtype == bool else arr
            ds = f.create_dataset(name, data=np.ascontiguousarray(data.T))
            ds.attrs["MATLAB_class"] = np.bytes_(classes[arr.dtype])
        if extras:
            text = f.create_dataset("label", data=np.frombuffer(b"h\x00i\x00", "<u2")[:, None])
            text.attrs["MATLAB_class"] = np.bytes_("char")
            grp = f.create_group("params")
            grp.attrs["MATLAB_class"] = np.bytes_("struct")
            grp.create_dataset("dt", data=np.array([[0.5]]))
    with open(path, "r+b") as fh:
        fh.write(_matlab_header())


def write_y4m(path, planes_per_frame, header: str, frame_params: str = "") -> None:
    """Write a YUV4MPEG2 file byte by byte: header line, then per frame 'FRAME' + planes."""
    with open(path, "wb") as fh:
        fh.write(b"YUV4MPEG2 " + header.encode("ascii") + b"\n")
        for planes in planes_per_frame:
            fh.write(b"FRAME" + frame_params.encode("ascii") + b"\n")
            for plane in planes:
                fh.write(np.ascontiguousarray(plane).tobytes())


def _h_field(ny=12, nx=12, nt=5, seed=0) -> np.ndarray:
    """A small stand-in for the report's H_Field_NI5.mat: float32 frames in (-10, 10)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-9.99, 9.99, size=(ny, nx, nt)).astype("float32")


# ---------------------------------------------------------------- open_mat


def test_open_mat_v5_time_last_axis(tmp_path):
    h = _h_field()
    path = tmp_path / "H_Field_NI5.mat"
    scipy.io.savemat(path, {"H": h, "mask": np.ones((12, 12)), "name": "swe", "v": np.arange(3.0)})
    ds = open_mat(path)
    assert set(ds.data_vars) == {"H", "mask"}
    assert ds["H"].dims == ("time", "y", "x")
    assert ds["H"].dtype == np.float32
    np.testing.assert_array_equal(ds["H"].isel(time=2).values, h[:, :, 2])
    assert ds["mask"].dims == ("y", "x")
    assert ds.attrs["mat_version"] == "5"
    assert ds.attrs["mat_header"].startswith("MATLAB 5.0 MAT-file")
    assert ds.attrs["source"] == str(path)
    assert float(abs(ds["H"]).max()) < 10


def test_open_mat_v73_transposed_like_matlab(tmp_path):
    h = _h_field(ny=10, nx=14, nt=4)
    path = tmp_path / "h73.mat"
    write_mat73(path, {"H": h, "land": np.zeros((10, 14), dtype=bool)})
    ds = open_mat(path)
    assert set(ds.data_vars) == {"H", "land"}
    assert ds.attrs["mat_version"] == "7.3"
    assert ds.attrs["mat_header"].startswith("MATLAB 7.3 MAT-file")
    # equal sizes rule does not apply (10, 14, 4 all differ): time is the last MATLAB axis
    assert ds["H"].dims == ("time", "y", "x")
    assert ds["H"].shape == (4, 10, 14)
    np.testing.assert_array_equal(ds["H"].values, np.moveaxis(h, 2, 0))
    assert ds["land"].dtype == bool
    assert ds["land"].dims == ("y", "x")
    # same content through both readers
    v5 = tmp_path / "h5.mat"
    scipy.io.savemat(v5, {"H": h})
    xr.testing.assert_equal(open_mat(v5)["H"], ds["H"])


def test_open_mat_v4(tmp_path):
    path = tmp_path / "old.mat"
    frames = np.arange(12.0 * 8).reshape(12, 8)
    scipy.io.savemat(path, {"F": frames}, format="4")
    ds = open_mat(path)
    assert ds.attrs["mat_version"] == "4"
    np.testing.assert_array_equal(ds["F"].values, frames)


def test_open_mat_time_axis_rules(tmp_path):
    path = tmp_path / "first.mat"
    frames_first = np.random.default_rng(1).random((7, 16, 16)).astype("float32")
    scipy.io.savemat(path, {"H": frames_first})
    # two equal axes (16, 16): the odd one (axis 0) is time
    ds = open_mat(path)
    assert ds["H"].shape == (7, 16, 16)
    np.testing.assert_array_equal(ds["H"].values, frames_first)
    # explicit override: treat axis 2 as time
    ds2 = open_mat(path, time_axis=-1)
    assert ds2["H"].shape == (16, 7, 16)
    np.testing.assert_array_equal(ds2["H"].isel(time=3).values, frames_first[:, :, 3])
    # dims names the axes; the one called "time" is time
    ds3 = open_mat(path, dims=("t", "lat", "lon"), time_axis=0, time_dim="t")
    assert ds3["H"].dims == ("t", "lat", "lon")
    ds4 = open_mat(path, dims=("time", "lat", "lon"))
    assert ds4["H"].dims == ("time", "lat", "lon")
    # all axes equal: the last one is time
    cube = tmp_path / "cube.mat"
    c = np.random.default_rng(2).random((9, 9, 9))
    scipy.io.savemat(cube, {"C": c})
    np.testing.assert_array_equal(open_mat(cube)["C"].isel(time=4).values, c[:, :, 4])
    with pytest.raises(ValueError, match="time_axis must be"):
        open_mat(path, time_axis=3)
    with pytest.raises(ValueError, match="disagrees with dims"):
        open_mat(path, dims=("time", "y", "x"), time_axis=2)
    with pytest.raises(ValueError, match="three axes"):
        open_mat(path, dims=("y", "x"))


def test_open_mat_variables_selection_and_conflicts(tmp_path):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"A": _h_field(12, 12, 5), "B": _h_field(8, 8, 3), "s": "text"})
    with pytest.raises(FileFormatError, match=r"disagree on dimension sizes.*variables="):
        open_mat(path)
    assert list(open_mat(path, variables=["B"]).data_vars) == ["B"]
    assert open_mat(path, variables="A")["A"].shape == (5, 12, 12)
    with pytest.raises(ValueError, match=r"\['Z'\] are not numeric arrays"):
        open_mat(path, variables=["Z"])
    with pytest.raises(ValueError, match="not a numeric 2-D/3-D array"):
        open_mat(path, variables=["s"])


def test_open_mat_result_works_lazily_with_degrade(tmp_path):
    path = tmp_path / "H.mat"
    scipy.io.savemat(path, {"H": _h_field(12, 12, 6)})
    ds = open_mat(path).chunk({"time": 2})
    with raise_if_dask_computes():
        lo = degrade(ds, scale=2)
    assert lo["H"].shape == (6, 6, 6)


def test_open_mat_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.mat"):
        open_mat(tmp_path / "missing.mat")
    with pytest.raises(IsADirectoryError):
        open_mat(tmp_path)
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(FileFormatError, match=r"junk\.mat"):
        open_mat(junk)
    text_only = tmp_path / "text.mat"
    scipy.io.savemat(text_only, {"s": "only text"})
    with pytest.raises(FileFormatError, match="no numeric 2-D or 3-D array"):
        open_mat(text_only)


def test_open_mat_refuses_plain_hdf5(tmp_path):
    import h5py

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("H", data=np.zeros((3, 12, 12), dtype="float32"))
    with pytest.raises(FileFormatError, match=r"plain\.h5' is an HDF5 file without a MATLAB 7\.3"):
        open_mat(path)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_open_mat_v5_truncated(tmp_path, cut):
    path = tmp_path / "full.mat"
    scipy.io.savemat(path, {"H": _h_field(), "G": _h_field(seed=3)})
    data = path.read_bytes()
    bad = tmp_path / "truncated.mat"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(FileFormatError, match=r"truncated\.mat.*(damaged or truncated)"):
        open_mat(bad)


def test_open_mat_v73_truncated(tmp_path):
    path = tmp_path / "full73.mat"
    write_mat73(path, {"H": _h_field(16, 16, 8)})
    data = path.read_bytes()
    bad = tmp_path / "cut73.mat"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut73\.mat.*v7\.3"):
        open_mat(bad)


# ---------------------------------------------------------------- open_y4m


def _planes_420(t, h, w, rng):
    y = rng.integers(0, 256, (h, w), dtype=np.uint8)
    u = rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    v = rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    return y, u, v


@pytest.mark.parametrize("tag", ["C420jpeg", "C420", "C420mpeg2", ""])
def test_open_y4m_420(tmp_path, tag):
    rng = np.random.default_rng(0)
    frames = [_planes_420(t, 6, 8, rng) for t in range(4)]
    path = tmp_path / "clip.y4m"
    write_y4m(path, frames, f"W8 H6 F30000:1001 It A1:1 {tag} XYSCSS=420JPEG".replace("  ", " "))
    ds = open_y4m(path)
    assert list(ds.data_vars) == ["Y"]
    assert ds["Y"].dims == ("time", "y", "x")
    assert ds["Y"].dtype == np.float32
    np.testing.assert_allclose(ds["Y"].values[2], frames[2][0] / 255.0, rtol=1e-6)
    assert float(ds["Y"].min()) >= 0.0
    assert float(ds["Y"].max()) <= 1.0
    np.testing.assert_allclose(ds["time"].values, np.arange(4) * 1001 / 30000)
    assert ds["time"].attrs["units"] == "s"
    assert ds.attrs["frame_rate"] == "30000:1001"
    assert ds.attrs["interlacing"] == "t"
    assert ds.attrs["pixel_aspect"] == "1:1"
    assert ds.attrs["colorspace"] == (tag[1:] or "420jpeg")
    assert ds.attrs["width"] == 8
    assert ds.attrs["height"] == 6
    assert ds.attrs["comments"] == "YSCSS=420JPEG"
    raw = open_y4m(path, raw=True)
    assert raw["Y"].dtype == np.uint8
    np.testing.assert_array_equal(raw["Y"].values[3], frames[3][0])


def test_open_y4m_chroma_native_and_upsampled_odd_sizes(tmp_path):
    rng = np.random.default_rng(1)
    frames = [_planes_420(t, 5, 7, rng) for t in range(3)]
    path = tmp_path / "odd.y4m"
    write_y4m(path, frames, "W7 H5 F25:1 Ip A0:0 C420jpeg", frame_params=" Ip")
    native = open_y4m(path, chroma="native", raw=True)
    assert native["U"].dims == ("time", "y_c", "x_c")
    assert native["U"].shape == (3, 3, 4)
    np.testing.assert_array_equal(native["V"].values[1], frames[1][2])
    np.testing.assert_allclose(native["x_c"].values, [0.5, 2.5, 4.5, 6.5])
    up = open_y4m(path, chroma="upsample")
    assert up["U"].dims == ("time", "y", "x")
    assert up["U"].shape == (3, 5, 7)
    np.testing.assert_allclose(up["U"].values[0, 4, 6], frames[0][1][2, 3] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(up["V"].values[2, 1, 1], frames[2][2][0, 0] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(up["time"].values, [0.0, 0.04, 0.08])


def test_open_y4m_444_and_mono(tmp_path):
    rng = np.random.default_rng(2)
    planes = [
        tuple(rng.integers(0, 256, (4, 6), dtype=np.uint8) for _ in range(3)) for _ in range(2)
    ]
    p444 = tmp_path / "c444.y4m"
    write_y4m(p444, planes, "W6 H4 F24:1 Ip A1:1 C444")
    ds = open_y4m(p444, chroma="native", raw=True)
    np.testing.assert_array_equal(ds["V"].values[1], planes[1][2])
    np.testing.assert_array_equal(ds["Y"].values[0], planes[0][0])
    mono_planes = [(rng.integers(0, 256, (4, 6), dtype=np.uint8),) for _ in range(3)]
    pm = tmp_path / "mono.y4m"
    write_y4m(pm, mono_planes, "W6 H4 F10:1 Ip A1:1 Cmono")
    dm = open_y4m(pm, raw=True)
    assert dm["Y"].shape == (3, 4, 6)
    np.testing.assert_array_equal(dm["Y"].values[2], mono_planes[2][0])
    with pytest.raises(ValueError, match="mono"):
        open_y4m(pm, chroma="upsample")


def test_open_y4m_10bit(tmp_path):
    rng = np.random.default_rng(3)
    frames = [
        tuple(
            rng.integers(0, 1024, s, dtype=np.uint16).astype("<u2")
            for s in ((4, 4), (2, 2), (2, 2))
        )
        for _ in range(2)
    ]
    path = tmp_path / "deep.y4m"
    write_y4m(path, frames, "W4 H4 F50:1 Ip A1:1 C420p10")
    ds = open_y4m(path)
    assert ds.attrs["bit_depth"] == 10
    np.testing.assert_allclose(ds["Y"].values[1], frames[1][0] / 1023.0, rtol=1e-6)
    raw = open_y4m(path, raw=True)
    assert raw["Y"].dtype == np.uint16
    np.testing.assert_array_equal(raw["Y"].values[0], frames[0][0])


def test_open_y4m_missing_frame_rate_gives_frame_index(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "norate.y4m"
    write_y4m(path, [_planes_420(t, 4, 4, rng) for t in range(2)], "W4 H4")
    ds = open_y4m(path)
    np.testing.assert_array_equal(ds["time"].values, [0.0, 1.0])
    assert "frame index" in ds["time"].attrs["long_name"]


def test_open_y4m_then_degrade_and_chunk(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "v.y4m"
    write_y4m(path, [_planes_420(t, 8, 8, rng) for t in range(4)], "W8 H8 F25:1 Ip A1:1 C420jpeg")
    ds = open_y4m(path).chunk({"time": 2})
    with raise_if_dask_computes():
        lo = degrade(ds, scale=2, method="bicubic")
    assert lo["Y"].shape == (4, 4, 4)


def test_open_y4m_truncated(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "full.y4m"
    write_y4m(path, [_planes_420(t, 6, 8, rng) for t in range(3)], "W8 H6 F25:1 Ip A1:1 C420jpeg")
    data = path.read_bytes()
    bad = tmp_path / "cut.y4m"
    bad.write_bytes(data[:-10])
    with pytest.raises(FileFormatError, match=r"cut\.y4m' is truncated: frame 2 has 62 of its 72"):
        open_y4m(bad)
    bad.write_bytes(data[: len(data) - 72 - 3])  # cut inside the last FRAME marker
    with pytest.raises(FileFormatError, match=r"cut\.y4m.*(FRAME|truncated)"):
        open_y4m(bad)
    bad.write_bytes(data[:20])  # header line cut
    with pytest.raises(FileFormatError, match="not terminated"):
        open_y4m(bad)


def test_open_y4m_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.y4m"):
        open_y4m(tmp_path / "nope.y4m")
    junk = tmp_path / "junk.y4m"
    junk.write_bytes(b"RIFF....WAVEfmt \n")
    with pytest.raises(FileFormatError, match=r"junk\.y4m' is not a YUV4MPEG2 file"):
        open_y4m(junk)
    empty = tmp_path / "empty.y4m"
    empty.write_bytes(b"")
    with pytest.raises(FileFormatError, match="not a YUV4MPEG2 file"):
        open_y4m(empty)
    no_frames = tmp_path / "noframes.y4m"
    no_frames.write_bytes(b"YUV4MPEG2 W4 H4 F25:1\n")
    with pytest.raises(FileFormatError, match="no frame"):
        open_y4m(no_frames)
    no_w = tmp_path / "now.y4m"
    no_w.write_bytes(b"YUV4MPEG2 H4 F25:1\nFRAME\n" + bytes(24))
    with pytest.raises(FileFormatError, match="no 'W' parameter"):
        open_y4m(no_w)
    odd_c = tmp_path / "oddc.y4m"
    odd_c.write_bytes(b"YUV4MPEG2 W4 H4 C999\nFRAME\n" + bytes(24))
    with pytest.raises(FileFormatError, match="unsupported YUV4MPEG2 colourspace C999"):
        open_y4m(odd_c)
    garbage = tmp_path / "garbage.y4m"
    garbage.write_bytes(b"YUV4MPEG2 W4 H4 C420jpeg\nFRAME\n" + bytes(24) + b"JUNKJUNK")
    with pytest.raises(FileFormatError, match="expected 'FRAME' at byte"):
        open_y4m(garbage)
    ok = tmp_path / "ok.y4m"
    ok.write_bytes(b"YUV4MPEG2 W4 H4 C420jpeg\nFRAME\n" + bytes(24))
    with pytest.raises(ValueError, match="chroma must be"):
        open_y4m(ok, chroma="yes")


def test_open_y4m_lazy_chunks_match_eager(tmp_path):
    import pickle

    rng = np.random.default_rng(7)
    path = tmp_path / "lazy.y4m"
    frames = [_planes_420(t, 6, 8, rng) for t in range(5)]
    write_y4m(path, frames, "W8 H6 F25:1 Ip A1:1 C420jpeg")
    eager = open_y4m(path, chroma="upsample")
    with raise_if_dask_computes():
        lazy = open_y4m(path, chroma="upsample", chunks=2)
        native = open_y4m(path, chroma="native", raw=True, chunks=3)
    assert lazy["Y"].chunks == ((2, 2, 1), (6,), (8,))
    xr.testing.assert_identical(lazy.compute(), eager)
    np.testing.assert_array_equal(native["U"].values[4], frames[4][1])
    assert native["U"].dtype == np.uint8
    # the lazy graph pickles (it holds the path and offsets, not the data)
    restored = pickle.loads(pickle.dumps(lazy["Y"].data))
    np.testing.assert_array_equal(np.asarray(restored), eager["Y"].values)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunks must be a positive number of frames"):
            open_y4m(path, chunks=bad)


# ---------------------------------------------------------------------------- open_dataset


@pytest.mark.parametrize("suffix", [".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5", ".he5"])
def test_open_dataset_netcdf_suffixes_are_lazy(tmp_path, suffix):
    ds = random_movie(3, 4, 5)
    path = tmp_path / f"run{suffix}"
    ds.to_netcdf(path)
    out = open_dataset(path)
    assert out["h"].chunks is not None
    xr.testing.assert_identical(out.load(), ds)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_dataset_zarr_formats_and_folders_without_suffix(tmp_path, zarr_format):
    ds = random_movie(3, 4, 5).chunk(time=1)
    for name in ("run.zarr", "run_store"):
        ds.to_zarr(tmp_path / name, zarr_format=zarr_format, mode="w")
        assert is_zarr_store(tmp_path / name)
        out = open_dataset(tmp_path / name)
        assert out["h"].chunks[0] == (1, 1, 1)
        xr.testing.assert_identical(out.compute(), ds.compute())


def test_open_dataset_mat_and_y4m_use_their_readers(tmp_path):
    h = _h_field()
    scipy.io.savemat(tmp_path / "clip.mat", {"H": h})
    xr.testing.assert_identical(
        open_dataset(tmp_path / "clip.mat"), open_mat(tmp_path / "clip.mat")
    )
    write_y4m(tmp_path / "clip.y4m", [[bytes(16), bytes(4), bytes(4)]] * 2, "W4 H4 F25:1 C420jpeg")
    xr.testing.assert_identical(
        open_dataset(tmp_path / "clip.y4m", chunks=1).load(), open_y4m(tmp_path / "clip.y4m")
    )


def test_open_dataset_truncated_netcdf_names_the_file(tmp_path):
    path = tmp_path / "run.nc"
    random_movie(20, 16, 16).to_netcdf(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(FileFormatError, match=r"run\.nc.*not a readable NetCDF file.*truncated"):
        open_dataset(path)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(FileFormatError, match=r"run\.nc"):
        open_dataset(path)


def test_open_dataset_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.nc"):
        open_dataset(tmp_path / "nope.nc")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileFormatError, match=r"notes\.txt.*suffix.*\.zarr"):
        open_dataset(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="not a Zarr store"):
        open_dataset(tmp_path / "folder")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(FileFormatError, match="without Zarr metadata"):
        open_dataset(tmp_path / "empty.zarr")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(FileFormatError, match="is a file"):
        open_dataset(tmp_path / "file.zarr")
    with pytest.raises(FileFormatError, match=r"remote address.*Zarr"):
        open_dataset("s3://bucket/run.nc")


def test_open_dataset_damaged_zarr_metadata_names_the_store(tmp_path):
    random_movie(3, 4, 5).to_zarr(tmp_path / "run.zarr", zarr_format=3, consolidated=False)
    (tmp_path / "run.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node')
    with pytest.raises(FileFormatError, match=r"run\.zarr.*damaged Zarr store"):
        open_dataset(tmp_path / "run.zarr")

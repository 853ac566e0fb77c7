"""Imaris .ims: files written the way ImarisWriter writes them, read lazily, compared with
imaris-ims-file-reader."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main
from napari_lazyproc.io import ImageReadError, find_format

UM = "micrometer"
RNG = np.random.default_rng(12)
#: (t, c, z, y, x) at full resolution: 2 time points, 2 channels, 20 x 90 x 100
FULL = RNG.integers(0, 3000, size=(2, 2, 20, 90, 100), dtype=np.uint16)
#: level 1 halves y and x, level 2 all three (ceil, as ImarisWriter sizes them)
LEVELS = [FULL, FULL[..., ::2, ::2], FULL[..., ::2, ::4, ::4]]
#: ImarisWriter's blocks per level (z, y, x): the datasets are padded to whole blocks
BLOCKS = [(16, 32, 16), (16, 32, 32), (8, 16, 16)]
#: a value only the padding holds (the dtype's largest), so any padding that shows is caught
PAD = 65535
VOXEL_XYZ = (0.325, 0.325, 2.0)
ORIGIN_XYZ = (10.0, -5.0, 0.0)


def _s1(text: str) -> np.ndarray:
    """A string as ImarisWriter stores it: an HDF5 attribute of single bytes (H5T_C_S1)."""
    return np.frombuffer(text.encode(), dtype="S1") if text else np.array([b""], dtype="S1")


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _histogram(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """ImarisWriter's 256-bin histogram of uint16 values: 0..max (at least 256) in
    max + 1 values, binned evenly (bpHistogramBuilder<bpUInt16>, bpResampleHistogram)."""
    top = max(int(values.max()), 256)
    bins = np.bincount((values.ravel().astype(np.int64) * 256) // (top + 1), minlength=256)
    return bins.astype(np.uint64), 0.0, float(top)


def write_ims(path: Path, levels=LEVELS, blocks=BLOCKS, *, names=("DAPI", "GFP"),
              colors=((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)), histograms=True,
              color_ranges=((0, 255), (0, 255)), unit="um") -> Path:
    """An .ims file with ImarisWriter's layout and attribute encoding (h5py)."""
    n_t, n_c, n_z, n_y, n_x = levels[0].shape
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        for key, value in (("ImarisDataSet", "ImarisDataSet"), ("ImarisVersion", "5.5.0"),
                           ("DataSetInfoDirectoryName", "DataSetInfo"),
                           ("ThumbnailDirectoryName", "Thumbnail"),
                           ("DataSetDirectoryName", "DataSet")):
            f.attrs[key] = _s1(value)
        f.attrs["NumberOfDataSets"] = np.array([1], dtype=np.uint32)
        for r, (data, block) in enumerate(zip(levels, blocks, strict=True)):
            size = data.shape[2:]
            padded = tuple(math.ceil(n / b) * b for n, b in zip(size, block, strict=True))
            for t in range(n_t):
                for c in range(n_c):
                    g = f.create_group(f"DataSet/ResolutionLevel {r}/TimePoint {t}/Channel {c}")
                    for axis, n in zip("ZYX", size, strict=True):
                        g.attrs[f"ImageSize{axis}"] = _s1(str(n))
                    stored = np.full(padded, np.iinfo(data.dtype).max, dtype=data.dtype)
                    stored[: size[0], : size[1], : size[2]] = data[t, c]
                    g.create_dataset("Data", data=stored, chunks=block, compression="gzip",
                                     compression_opts=2)
                    if histograms:
                        bins, lo, hi = _histogram(data[t, c])
                        g.attrs["HistogramMin"] = _s1(_fmt(lo))
                        g.attrs["HistogramMax"] = _s1(_fmt(hi))
                        g.create_dataset("Histogram", data=bins)
        info = f.create_group("DataSetInfo")
        image = info.create_group("Image")
        for i, (origin, voxel, n) in enumerate(zip(ORIGIN_XYZ, VOXEL_XYZ, (n_x, n_y, n_z),
                                                   strict=True)):
            image.attrs[f"ExtMin{i}"] = _s1(repr(origin))
            image.attrs[f"ExtMax{i}"] = _s1(repr(origin + voxel * n))
        for axis, n in zip("XYZ", (n_x, n_y, n_z), strict=True):
            image.attrs[axis] = _s1(str(n))
        for key, value in (("Unit", unit), ("Name", "(name not specified)"),
                           ("Description", "(description not specified)"),
                           ("RecordingDate", "2024-05-01 10:00:00.000"),
                           ("ResampleDimensionX", "true"), ("ResampleDimensionY", "true"),
                           ("ResampleDimensionZ", "true")):
            image.attrs[key] = _s1(value)
        for c in range(n_c):
            ch = info.create_group(f"Channel {c}")
            ch.attrs["Name"] = _s1(names[c] if names else "(name not specified)")
            ch.attrs["Description"] = _s1("(description not specified)")
            ch.attrs["ColorMode"] = _s1("BaseColor")
            ch.attrs["Color"] = _s1(" ".join(_fmt(v) for v in colors[c]))
            ch.attrs["ColorRange"] = _s1(" ".join(_fmt(v) for v in color_ranges[c]))
            ch.attrs["ColorOpacity"] = _s1("1.000")
            ch.attrs["GammaCorrection"] = _s1("1.000")
        times = info.create_group("TimeInfo")
        times.attrs["FileTimePoints"] = _s1(str(n_t))
        times.attrs["DatasetTimePoints"] = _s1(str(n_t))
        for t in range(n_t):
            times.attrs[f"TimePoint{t + 1}"] = _s1(f"2024-05-01 10:00:{2.5 * t:06.3f}")
        info.create_group("Log").attrs["Entries"] = _s1("0")
        f.create_dataset("Thumbnail/Data", data=np.zeros((256, 1024), np.uint8))
    return path


@pytest.fixture
def ims_file(tmp_path) -> Path:
    return write_ims(tmp_path / "embryo.ims")


def test_ims_opens_as_one_multiscale_tczyx_image(ims_file):
    with lp.open_image(ims_file) as img:
        assert img.source["format"] == "imaris"
        assert img.axes == "tczyx"
        assert [lvl.shape for lvl in img.levels] == [
            (2, 2, 20, 90, 100), (2, 2, 20, 45, 50), (2, 2, 10, 23, 25)
        ]
        # the padding (32 x 96 x 112 at level 0) is cropped away
        for level, expected in zip(img.levels, LEVELS, strict=True):
            values = np.asarray(level)
            assert PAD not in values
            np.testing.assert_array_equal(values, expected)
        assert img.levels[0].chunksize == (1, 1, 16, 32, 16)
        np.testing.assert_allclose(img.scale, (2.5, 1.0, 2.0, 0.325, 0.325))
        # voxel 0's centre: half a voxel in from ExtMin
        np.testing.assert_allclose(img.translate, (0.0, 0.0, 1.0, -5.0 + 0.1625, 10.1625))
        assert img.units == ("second", None, UM, UM, UM)  # time points 2.5 s apart
        assert img.channel_names == ["DAPI", "GFP"]
        assert img.channel_colors == ["#0000ff", "#00ff00"]
        assert img.name == "embryo"


def test_ims_values_and_voxel_size_match_imaris_ims_file_reader(ims_file):
    """The peer users reach for (napari-imaris-loader builds on it)."""
    peer_module = pytest.importorskip("imaris_ims_file_reader.ims")
    peer = peer_module.ims(str(ims_file), squeeze_output=False)
    try:
        with lp.open_image(ims_file) as img:
            assert (peer.TimePoints, peer.Channels) == img.shape[:2]
            assert peer.ResolutionLevels == len(img.levels)
            for r, level in enumerate(img.levels):
                expected = peer[r, :, :, :, :, :]
                np.testing.assert_array_equal(np.asarray(level), expected)
                # the peer divides the extent by an odd size (90 / 23); we use the
                # integer factor (4) that made the level, as for every other pyramid
                np.testing.assert_allclose(
                    img.level_scale(r)[2:], peer.metaData[r, 0, 0, "resolution"],
                    rtol=1e-6 if r < 2 else 0.03,
                )
            np.testing.assert_array_equal(np.asarray(img.levels[0][1, 0, 7]),
                                          peer[0, 1, 0, 7, :, :].squeeze())
    finally:
        peer.close()


def test_ims_contrast_from_stored_histograms(ims_file):
    with lp.open_image(ims_file) as img:
        limits = img.contrast_limits
        assert limits is not None and len(limits) == 2
        bin_width = 3000 / 256 + 1
        for c, (low, high) in enumerate(limits):
            values = FULL[0, c]  # Imaris's histogram of level 0, time point 0
            assert low <= values.min() <= low + bin_width
            assert high - bin_width <= values.max() <= high
        # the layer gets them without a read of the pixels
        assert lp.io.sample_contrast_limits(img) == limits


def test_ims_uint8_histogram_is_exact_and_color_range_without_one(tmp_path):
    data = RNG.integers(17, 201, size=(1, 2, 4, 30, 40), dtype=np.uint8)
    bins = [np.bincount(data[0, c].ravel(), minlength=256) for c in range(2)]
    path = write_ims(tmp_path / "u8.ims", levels=[data], blocks=[(4, 16, 16)],
                     histograms=False, color_ranges=((5, 120), (10, 250)))
    with h5py.File(path, "a") as f:  # 8-bit: 256 bins over 0..255, one value each
        g = f["DataSet/ResolutionLevel 0/TimePoint 0/Channel 0"]
        g.attrs["HistogramMin"], g.attrs["HistogramMax"] = _s1("0.000"), _s1("255.000")
        g.create_dataset("Histogram", data=bins[0].astype(np.uint64))
    with lp.open_image(path) as img:  # one channel lacks a histogram: the display ranges
        assert img.contrast_limits == [(5.0, 120.0), (10.0, 250.0)]
    with h5py.File(path, "a") as f:
        g = f["DataSet/ResolutionLevel 0/TimePoint 0/Channel 1"]
        g.attrs["HistogramMin"], g.attrs["HistogramMax"] = _s1("0.000"), _s1("255.000")
        g.create_dataset("Histogram", data=bins[1].astype(np.uint64))
    with lp.open_image(path) as img:
        assert img.contrast_limits == [
            (float(data[0, c].min()), float(data[0, c].max())) for c in range(2)
        ]


def test_ims_single_channel_and_time_point_follow_the_bdv_convention(tmp_path):
    data = FULL[:1, :1]
    path = write_ims(tmp_path / "one.ims", levels=[data], blocks=[(16, 32, 16)],
                     names=None, unit="nm")
    with lp.open_image(path) as img:
        assert img.axes == "tzyx"  # t kept, a single channel dropped, as BigDataViewer
        assert img.shape == (1, 20, 90, 100)
        assert img.channel_names is None
        assert img.units == (None, "nanometer", "nanometer", "nanometer")  # one time point
        np.testing.assert_array_equal(np.asarray(img.levels[0][0]), data[0, 0])
        # integer keys drop their axes the way numpy does
        assert np.asarray(img.sources[0][0, 3:5, 1, :7]).shape == (2, 7)


def _chunk_ranges(path: Path) -> dict[tuple[str, tuple], tuple[int, int]]:
    """(dataset, chunk offset) -> (byte offset, size) of every stored Data chunk."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            data = name.startswith("DataSet/") and name.endswith("/Data")
            if data and isinstance(obj, h5py.Dataset):
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    out[(name, tuple(info.chunk_offset))] = (info.byte_offset, info.size)
        f.visititems(visit)
    return out


class _CountingFile(io.FileIO):
    """A file whose reads are recorded as (offset, size), for h5py's fileobj driver."""

    reads: list[tuple[int, int]]

    def readinto(self, buffer):
        start = self.tell()
        n = super().readinto(buffer)
        self.reads.append((start, n or 0))
        return n


def test_ims_open_reads_no_chunk_and_a_plane_reads_only_its_chunks(ims_file, monkeypatch):
    chunks = _chunk_ranges(ims_file)
    reads: list[tuple[int, int]] = []
    original = h5py.File

    def counting_file(name, mode="r", *args, **kwargs):
        if os.fspath(name) != os.fspath(ims_file):
            return original(name, mode, *args, **kwargs)
        handle = _CountingFile(os.fspath(name), "rb")
        handle.reads = reads
        return original(handle, mode, *args, **kwargs)

    def touched() -> set:
        return {key for key, (start, size) in chunks.items()
                if any(r0 < start + size and start < r0 + n for r0, n in reads)}

    monkeypatch.setattr(h5py, "File", counting_file)
    img = lp.open_image(ims_file)
    assert touched() == set()  # metadata and histograms only
    plane = np.asarray(img.levels[0][1, 0, 18])  # z 18: the second z block, unpadded part
    np.testing.assert_array_equal(plane, FULL[1, 0, 18])
    name = "DataSet/ResolutionLevel 0/TimePoint 1/Channel 0/Data"
    assert touched() == {(name, (16, y, x)) for y in range(0, 96, 32) for x in range(0, 112, 16)}
    img.close()


def test_ims_is_claimed_by_the_reader_and_info(ims_file, capsys):
    fmt = find_format(ims_file)
    assert fmt is not None and fmt.name == "Imaris"
    assert callable(napari_get_reader(str(ims_file)))
    layers = napari_get_reader(str(ims_file))(str(ims_file))
    assert [kw["name"] for _, kw, _ in layers] == ["embryo · DAPI", "embryo · GFP"]
    assert layers[0][1]["scale"] == pytest.approx([2.5, 2.0, 0.325, 0.325])
    assert layers[1][1]["colormap"]["name"] == "#00ff00"
    assert main(["info", str(ims_file)]) == 0
    out = capsys.readouterr().out
    for expected in ("format:    imaris", "axes:      tczyx", "shape:     (2, 2, 20, 90, 100)",
                     "channels:  DAPI, GFP", "z=2 micrometer"):
        assert expected in out


def test_ims_is_in_the_manifest_patterns():
    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[1] / "napari.yaml").read_text())
    (reader,) = manifest["contributions"]["readers"]
    assert "*.ims" in reader["filename_patterns"]


def _error(path) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path)
    message = str(info.value)
    assert os.fspath(path) in message and "\n" not in message
    return message


def test_ims_errors_name_the_file(tmp_path):
    junk = tmp_path / "junk.ims"
    junk.write_bytes(b"not an imaris file at all")
    assert "not a readable Imaris file" in _error(junk)
    other = tmp_path / "other.ims"
    with h5py.File(other, "w") as f:
        f.create_dataset("volume", data=np.zeros((4, 4, 4)))
    assert "no DataSet/ResolutionLevel 0" in _error(other)


def test_hdf5_readers_do_not_claim_ims_and_imaris_not_plain_hdf5(ims_file, hdf5_file,
                                                                 bdv_file):
    from napari_lazyproc.io import FORMATS

    by_name = {f.name: f for f in FORMATS}
    assert find_format(hdf5_file).name == "HDF5"
    assert find_format(bdv_file).name == "BigDataViewer HDF5"
    target = lp.io.Target(ims_file)
    assert not by_name["BigDataViewer HDF5"].claims(target)
    # an Imaris file renamed .h5 is still recognised by its layout
    renamed = ims_file.with_suffix(".h5")
    renamed.write_bytes(ims_file.read_bytes())
    assert find_format(renamed).name == "Imaris"

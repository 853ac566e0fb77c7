"""Files straight from the microscope: Nikon ND2, Zeiss CZI, Leica LIF (small real files
their projects publish, see tests/data/SOURCES.md). Values and metadata are checked
against each format's own reader; a plane reads only its own bytes."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from peer_files import sample

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main
from napari_lazyproc.io import ImageReadError, find_format

ND2, CZI = "cluster.nd2", "CellDivision_T3_Z5_CH2_X240_Y170.czi"
CZI_MOSAIC, CZI_LLS = "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", "LLS7_small.czi"
LIF_SPECTRAL = "LeicaLASX_wavelength-sweep_example.lif"
LIF_XZ = "testdata_2channel_xz.lif"
UM = "micrometer"


def _needs(name: str) -> Path:
    """A real file (tests/data/SOURCES.md): from a peer's sdist (the ND2 and the CZIs),
    or the folder ``LAZYPROC_VENDOR_SAMPLES`` names (the LIFs: no package publishes
    one); none is committed here. Skipped without it."""
    return sample(name)


LINUX = pytest.mark.skipif(not os.path.exists("/proc/self/io"),
                           reason="counts bytes read through /proc/self/io (Linux)")


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (the kernel's count)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def _error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    message = str(info.value)
    assert os.fspath(path) in message and "\n" not in message
    return message


# --- Nikon ND2 -------------------------------------------------------------------------


def test_nd2_opens_as_nd2_reads_it():
    nd2 = pytest.importorskip("nd2")
    nd2_file = _needs(ND2)
    with nd2.ND2File(nd2_file) as f:
        sizes, voxel = dict(f.sizes), f.voxel_size()
        names = [ch.channel.name for ch in f.metadata.channels]
        # NIS-Elements ran this time loop "as fast as possible" (period 0): the step is
        # the frames' own time stamps, first to last time point at z 0
        first = f.frame_metadata(0).channels[0].time.relativeTimeMs
        last = f.frame_metadata(2 * sizes["Z"]).channels[0].time.relativeTimeMs
        assert f.experiment[0].parameters.periodMs == 0
        values = f.asarray()
    with lp.open_image(nd2_file) as img:
        assert img.source["format"] == "nd2"
        assert sizes == {"T": 3, "Z": 10, "C": 2, "Y": 31, "X": 38}
        assert img.axes == "tzcyx" and img.shape == (3, 10, 2, 31, 38)
        assert img.dtype == values.dtype
        assert img.scale == pytest.approx(((last - first) / 2 / 1000, voxel.z, 1.0,
                                           voxel.y, voxel.x))
        assert img.units == ("second", UM, None, UM, UM)
        assert img.channel_names == names == ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
        assert img.levels[0].chunksize == (1, 1, 2, 31, 38)  # one frame, every channel
        np.testing.assert_array_equal(np.asarray(img.levels[0]), values)
        np.testing.assert_array_equal(np.asarray(img.levels[0][2, 7, 1, 5:20, 3:]),
                                      values[2, 7, 1, 5:20, 3:])


def test_nd2_a_plane_reads_one_frame():
    pytest.importorskip("nd2")
    img = lp.open_image(_needs(ND2))
    handle = img.sources[0]._get_handle()  # the file opened with the image, no frame read
    frames: list[int] = []
    read_frame = handle.read_frame

    def counted(index):
        frames.append(index)
        return read_frame(index)

    handle.read_frame = counted
    plane = np.asarray(img.levels[0][1, 4, 0])
    assert frames == [1 * 10 + 4]  # t 1, z 4: the frame of both channels, nothing else
    np.testing.assert_array_equal(plane, read_frame(14)[0])
    img.close()


@pytest.mark.parametrize("path, module, key", [(ND2, "nd2", (2, 3)),
                                               (CZI, "czifile", (1, 0, 4)),
                                               (LIF_XZ, "liffile", (7, 1))])
def test_vendor_arrays_pickle_by_path(path, module, key):
    """What a dask.distributed worker gets: the array without its handle, reopened there."""
    pytest.importorskip(module)
    with lp.open_image(_needs(path)) as img:
        again = pickle.loads(pickle.dumps(img.sources[0]))
        assert again._handle is None
        np.testing.assert_array_equal(again[key], np.asarray(img.levels[0][key]))
        again.close()


# --- Zeiss CZI -------------------------------------------------------------------------


def _czi_dict(czi) -> dict:
    """czifile's own parse of the CZI's metadata, from ``ImageDocument/Metadata``."""
    return czi.metadata(raw=False)["ImageDocument"]["Metadata"]


def test_czi_opens_as_czifile_reads_it():
    czifile = pytest.importorskip("czifile")
    czi_file = _needs(CZI)
    with czifile.CziFile(czi_file) as czi:
        assert czi.axes == "BTCZYX0" and czi.shape == (1, 3, 2, 5, 170, 240, 1)
        values = czi.asarray().reshape(3, 2, 5, 170, 240)
        meta = _czi_dict(czi)
        stamps = next(a.data() for a in czi.attachments()
                      if a.attachment_entry.name == "TimeStamps")
    scaling = {d["Id"]: d["Value"] for d in meta["Scaling"]["Items"]["Distance"]}
    dims = meta["Information"]["Image"]["Dimensions"]
    offsets = [float(v) for v in dims["T"]["Positions"]["List"]["Offsets"].split()]
    names = [c["Name"] for c in dims["Channels"]["Channel"]]
    with lp.open_image(czi_file) as img:
        assert img.source["format"] == "czi"
        assert img.axes == "tczyx" and img.shape == (3, 2, 5, 170, 240)
        # the T positions ZEN recorded for the image, one minute apart; the frames' own
        # time stamps agree within a second
        assert img.scale == pytest.approx((offsets[1] - offsets[0], 1.0, scaling["Z"] * 1e6,
                                           scaling["Y"] * 1e6, scaling["X"] * 1e6))
        assert img.scale[:1] == pytest.approx((60.075,))
        assert abs(img.scale[0] - (stamps[2] - stamps[0]) / 2) < 1
        assert img.scale[2:] == pytest.approx((0.32, 0.0905767, 0.0905767))
        assert img.units == ("second", None, UM, UM, UM)
        assert img.channel_names == names == ["LED555", "LED470"]
        assert img.levels[0].chunksize == (1, 1, 1, 170, 240)  # one plane, one subblock
        np.testing.assert_array_equal(np.asarray(img.levels[0]), values)
        np.testing.assert_array_equal(np.asarray(img.levels[0][2, 1, 3, 20:90, 100:]),
                                      values[2, 1, 3, 20:90, 100:])


def test_czi_scenes_are_series_and_mosaics_are_pasted_as_czifile_does():
    """Three scenes (series) of mosaic tiles that overlap, over t, c and z."""
    czifile = pytest.importorskip("czifile")
    czi_file = _needs(CZI_MOSAIC)
    with czifile.CziFile(czi_file) as czi:
        assert czi.axes == "HSTCZYX0" and czi.shape == (1, 3, 2, 2, 3, 514, 645, 1)
        values = czi.asarray()[0, ..., 0]
        meta = _czi_dict(czi)
        tiles = len(czi.filtered_subblock_directory)
        stamps = next(a.data() for a in czi.attachments()
                      if a.attachment_entry.name == "TimeStamps")
    increment = float(meta["Information"]["Image"]["Dimensions"]["T"]["Positions"][
        "Interval"]["Increment"])
    assert tiles == 12 * (10 + 1 + 17)  # per plane: 10, 1 and 17 tiles of 64 x 64
    for series in range(3):
        with lp.open_image(czi_file, series=series) as img:
            assert img.axes == "tczyx" and img.shape == (2, 2, 3, 514, 645)
            assert img.metadata["n_series"] == 3 and img.source["series"] == series
            assert img.scale == pytest.approx((increment, 1.0, 1.0, 1.6, 1.6))
            assert img.scale[0] == pytest.approx(stamps[1] - stamps[0], abs=1e-3)
            assert img.channel_names == ["DAPI", "EGFP"]
            np.testing.assert_array_equal(np.asarray(img.levels[0]), values[series])
    assert "series=3 is out of range; the file has 3 (scenes)" in _error(czi_file, series=3)


def test_czi_scaling_is_the_images_not_the_psfs():
    """A deskewed lattice light-sheet stack: its ``Scaling`` is isotropic, while the PSF's
    ``OriginalScaling`` keeps the 0.2 um stage step."""
    czifile = pytest.importorskip("czifile")
    czi_file = _needs(CZI_LLS)
    with czifile.CziFile(czi_file) as czi:
        meta = _czi_dict(czi)
        values = czi.asarray().reshape(2, 2, 3, 64, 64)
    scaling = {d["Id"]: d["Value"] for d in meta["Scaling"]["Items"]["Distance"]}
    psf = {d["Id"]: d["Value"] for d in meta["Information"]["Processing"]["PSF"][
        "OriginalScaling"]["Items"]["Distance"]}
    assert psf["Z"] == pytest.approx(2e-7) and scaling["Z"] == pytest.approx(1.44992e-7)
    with lp.open_image(czi_file) as img:
        assert img.axes == "tczyx"
        assert img.scale[2:] == pytest.approx([scaling[a] * 1e6 for a in "ZYX"])
        assert img.scale[0] == pytest.approx(90.038)
        assert img.channel_names == ["LatticeLightsheet 1-T1", "LatticeLightsheet 2-T2"]
        np.testing.assert_array_equal(np.asarray(img.levels[0]), values)


@LINUX
def test_czi_a_region_reads_only_the_tiles_it_overlaps():
    pytest.importorskip("czifile")
    czi_file = _needs(CZI_MOSAIC)
    img = lp.open_image(czi_file)  # scene 0: 2 rows of 5 tiles per plane
    arr = img.sources[0]
    np.asarray(arr[0, 0, 0, :2, 150:152])  # open the file and warm up: nothing counted
    tile = 64 * 64 * 2  # uint16 tiles of 64 x 64
    before = _bytes_read()
    inside = arr[1, 1, 2, 5:50, 150:200]  # inside the tile at (0, 145) alone
    one_tile = _bytes_read() - before
    before = _bytes_read()
    whole = arr[1, 1, 2]  # its plane: all 10 tiles of scene 0
    one_plane = _bytes_read() - before
    assert tile <= one_tile < 2 * tile
    assert 10 * tile <= one_plane < 11 * tile
    np.testing.assert_array_equal(inside, whole[5:50, 150:200])
    img.close()


# --- Leica LIF -------------------------------------------------------------------------


def test_lif_opens_as_liffile_reads_it():
    liffile = pytest.importorskip("liffile")
    lif_spectral = _needs(LIF_SPECTRAL)
    with liffile.LifFile(lif_spectral) as lif:
        names = [im.name for im in lif.images]
        image = lif.images[2]
        assert image.dims == ("T", "λ", "Z", "Y", "X")
        coords, values = image.coords, image.asarray()
    with lp.open_image(lif_spectral, series=2) as img:
        assert img.source["format"] == "lif" and img.source["image"] == names[2]
        assert img.metadata["n_series"] == 3 and img.metadata["series_names"] == names
        assert img.axes == "tczyx" and img.shape == (2, 10, 11, 64, 64)
        step = {d: (coords[d][-1] - coords[d][0]) / (len(coords[d]) - 1) for d in "TZYX"}
        assert img.scale == pytest.approx((step["T"], 1.0, step["Z"] * 1e6, step["Y"] * 1e6,
                                           step["X"] * 1e6))
        assert img.scale[0] == pytest.approx(80.91)
        assert img.units == ("second", None, UM, UM, UM)
        # a spectral scan's channels are its emission wavelengths
        assert img.channel_names == [f"λ {round(v * 1e9)} nm" for v in coords["λ"]]
        np.testing.assert_array_equal(np.asarray(img.levels[0]), values)


def test_lif_channels_named_by_their_lookup_tables():
    liffile = pytest.importorskip("liffile")
    lif_xz = _needs(LIF_XZ)
    with liffile.LifFile(lif_xz) as lif:
        image = lif.images[0]
        assert image.dims == ("T", "C", "Z", "X")  # an xz scan over time
        luts = [c.get("LUTName") for c in image.xml_element.iterfind(".//ChannelDescription")]
        t = image.coords["T"]
        values = image.asarray()
    with lp.open_image(lif_xz) as img:
        assert img.axes == "tczx" and img.channel_names == luts == ["Green", "Red"]
        assert img.scale[0] == pytest.approx((t[-1] - t[0]) / (len(t) - 1))
        np.testing.assert_array_equal(np.asarray(img.levels[0][5:9, 1]), values[5:9, 1])


@LINUX
def test_lif_a_plane_reads_only_its_frame():
    pytest.importorskip("liffile")
    lif_spectral = _needs(LIF_SPECTRAL)
    img = lp.open_image(lif_spectral, series=2)
    arr = img.sources[0]
    np.asarray(arr[0, 0, 0])  # open the file and warm up: nothing counted
    before = _bytes_read()
    plane = arr[1, 3, 4]
    read = _bytes_read() - before
    assert 64 * 64 <= read < 64 * 64 + 4096  # one 4 KiB frame of a 900 KiB image
    liffile = pytest.importorskip("liffile")
    with liffile.LifFile(lif_spectral) as lif:
        np.testing.assert_array_equal(plane, lif.images[2].asarray()[1, 3, 4])
    img.close()


# --- all three: claiming, series, info, refusals -----------------------------------------


@pytest.mark.parametrize("path, name, module", [(ND2, "ND2", "nd2"), (CZI, "CZI", "czifile"),
                                                (LIF_XZ, "LIF", "liffile")])
def test_vendor_files_claimed_by_name_and_opened_in_napari(path, name, module):
    pytest.importorskip(module)
    path = _needs(path)
    assert find_format(path).name == name
    layers = napari_get_reader(str(path))(str(path))
    assert len(layers) == 2  # one layer per channel
    assert napari_get_reader("fake.file") is None


@pytest.mark.parametrize("suffix, what", [(".nd2", "ND2"), (".czi", "CZI"), (".lif", "LIF")])
def test_a_broken_vendor_file_is_refused_in_one_line(tmp_path, suffix, what):
    pytest.importorskip({"ND2": "nd2", "CZI": "czifile", "LIF": "liffile"}[what])
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"not a microscope file at all" * 10)
    assert f"not a readable {what} file" in _error(path)


def test_vendor_series_out_of_range_and_info(capsys):
    pytest.importorskip("liffile")
    lif_spectral = _needs(LIF_SPECTRAL)
    assert "series=3 is out of range; the file has 3 images" in _error(lif_spectral, series=3)
    assert main(["info", str(lif_spectral), "--series", "2"]) == 0
    out = capsys.readouterr().out
    for expected in ("format:    lif", "shape:     (2, 10, 11, 64, 64)", "[series=2]",
                     "series:    2 of 0..2", "t=80.91 second"):
        assert expected in out


def test_vendor_readers_import_no_reader_until_a_file_opens():
    """The optional readers are imported when a file of theirs opens, not with the package."""
    code = ("import sys, napari_lazyproc.io; "
            "print(sorted(m for m in ('nd2', 'czifile', 'liffile') if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("suffix, module, extra", [(".nd2", "nd2", "nd2"),
                                                   (".czi", "czifile", "czi"),
                                                   (".lif", "liffile", "lif")])
def test_a_vendor_file_without_its_reader_names_the_extra(tmp_path, monkeypatch, suffix,
                                                         module, extra):
    """As where the extra is not installed: the module cannot be found."""
    monkeypatch.setitem(sys.modules, module, None)
    path = tmp_path / f"image{suffix}"
    path.write_bytes(b"\0" * 64)
    assert find_format(path) is not None  # claimed by name, so the refusal says why
    assert f"(pip install napari-lazyproc[{extra}])" in _error(path)


def _write_czi(path, planes, compression):
    """A CZI written by libCZI (pylibCZIrw, an LGPL test extra): ``planes`` is c, z, y, x
    (or y, x, 3 for BGR), placed at x 10, y 20 as a microscope's stage would."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True, compression_options=compression) as w:
        for c, stack in enumerate(planes):
            for z, plane in enumerate(stack):
                w.write(plane, plane={"C": c, "Z": z, "T": 0}, location=(10, 20))
    return path


@pytest.mark.parametrize("compression, code, header", [
    ("zstd0:ExplicitLevel=2", 5, b"\x28\xb5\x2f\xfd"),  # a bare zstd frame
    ("zstd1:ExplicitLevel=2", 6, b"\x03\x01\x00"),  # ZStd1's header: bytes as they are
    ("zstd1:ExplicitLevel=2;PreProcess=HiLoByteUnpack", 6, b"\x03\x01\x01"),  # lo, hi
])
def test_czi_zstd_subblocks_read_as_libczi_reads_them(tmp_path, compression, code, header):
    """ZEN's zstd (ZStd0, ZStd1, with or without the low/high byte split) is decoded
    with imagecodecs; libCZI, which wrote the file, reads the same planes."""
    czifile = pytest.importorskip("czifile")
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    planes = np.random.default_rng(0).integers(0, 4000, (2, 3, 40, 50), dtype=np.uint16)
    path = _write_czi(tmp_path / "zstd.czi", planes, compression)
    with czifile.CziFile(path) as czi:
        entries = czi.filtered_subblock_directory
        assert {e.compression for e in entries} == {code}
        assert entries[0].data_segment().data(raw=True).startswith(header)
    with pyczi.open_czi(str(path)) as czi:
        read = np.stack([[czi.read(plane={"C": c, "Z": z, "T": 0})[..., 0]
                          for z in range(3)] for c in range(2)])
    np.testing.assert_array_equal(read, planes)
    with lp.open_image(path) as img:
        assert img.axes == "czyx" and img.shape == (2, 3, 40, 50)
        np.testing.assert_array_equal(np.asarray(img.levels[0]), planes)
        np.testing.assert_array_equal(np.asarray(img.levels[0][1, 2, 5:9, 30:]),
                                      planes[1, 2, 5:9, 30:])


def test_czi_zstd_bgr_reads_as_uncompressed_rgb(tmp_path):
    """A BGR24 plane, zstd or not, reads the same RGB (czifile turns BGR as stored)."""
    pytest.importorskip("czifile")
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    bgr = np.random.default_rng(1).integers(0, 255, (1, 1, 30, 40, 3), dtype=np.uint8)
    plain = _write_czi(tmp_path / "plain.czi", bgr, None)
    packed = _write_czi(tmp_path / "zstd.czi", bgr, "zstd1:ExplicitLevel=1")
    with pyczi.open_czi(str(packed)) as czi:
        np.testing.assert_array_equal(czi.read(plane={"C": 0, "Z": 0, "T": 0}), bgr[0, 0])
    with lp.open_image(plain) as a, lp.open_image(packed) as b:
        assert a.axes == b.axes == "yxc" and b.metadata["rgb"]
        np.testing.assert_array_equal(np.asarray(b.levels[0]), bgr[0, 0, ..., ::-1])
        np.testing.assert_array_equal(np.asarray(b.levels[0]), np.asarray(a.levels[0]))


def test_a_czi_compression_nobody_decodes_is_refused_by_name(tmp_path):
    """The sample's first directory entry marked with compression 7 (no CZI codec has
    it): the file says so when it opens, not at a plane's read."""
    czifile = pytest.importorskip("czifile")
    source = _needs(CZI)
    with czifile.CziFile(source) as czi:
        entry = czi.header.directory_position + 32 + 128  # segment header, EntryCount...
    data = bytearray(source.read_bytes())
    assert data[entry:entry + 2] == b"DV" and data[entry + 18] == 0
    data[entry + 18] = 7
    path = tmp_path / "unknown.czi"
    path.write_bytes(bytes(data))
    with czifile.CziFile(path) as czi:
        assert {e.compression for e in czi.filtered_subblock_directory} == {0, 7}
    assert "compressed with 7, which czifile cannot decode" in _error(path)

"""Zeiss CZI files as ZEN writes them (real files from czitools' sdist, tests/data/
SOURCES.md) and as libCZI writes them compressed with zstd (pylibCZIrw, a test extra):
values and metadata against czifile's and libCZI's own reads; a region reads only the
tiles it overlaps."""

from __future__ import annotations

import numpy as np
import pytest
from peer_files import sample
from vendor_checks import LINUX, bytes_read, error

import napari_lazyproc as lp

CZI = "CellDivision_T3_Z5_CH2_X240_Y170.czi"
CZI_MOSAIC, CZI_LLS = "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", "LLS7_small.czi"
CZI_PLATE = "WP96_4Pos_B4-10_DAPI.czi"
UM = "micrometer"


def _czi_dict(czi) -> dict:
    """czifile's own parse of the CZI's metadata, from ``ImageDocument/Metadata``."""
    return czi.metadata(raw=False)["ImageDocument"]["Metadata"]


def test_czi_opens_as_czifile_reads_it():
    czifile = pytest.importorskip("czifile")
    czi_file = sample(CZI)
    with czifile.CziFile(czi_file) as czi:
        assert czi.axes == "BTCZYX0" and czi.shape == (1, 3, 2, 5, 170, 240, 1)
        values = _pasted(czi).reshape(3, 2, 5, 170, 240)
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



def _pasted(czi):
    """czifile's own read, on zeros: its 2019 API takes tifffile's ``create_output``,
    which newer tifffile leaves uninitialised where no tile lies."""
    return czi.asarray(out=np.zeros(czi.shape, czi.dtype))


def test_czi_scenes_are_series_and_mosaics_are_pasted_as_czifile_does():
    """Three scenes (series) of mosaic tiles that overlap, over t, c and z, apart on the
    stage: each opens as its own tiles' extent (czifile 2019 pastes all scenes on one
    514 x 645 canvas; its 2026 API crops them alike), placed by ``translate``."""
    czifile = pytest.importorskip("czifile")
    czi_file = sample(CZI_MOSAIC)
    with czifile.CziFile(czi_file) as czi:
        assert czi.axes == "HSTCZYX0" and czi.shape == (1, 3, 2, 2, 3, 514, 645, 1)
        values = _pasted(czi)[0, ..., 0]
        meta = _czi_dict(czi)
        boxes = [(e.start[1], e.start[5], e.start[6]) for e in czi.filtered_subblock_directory]
        stamps = next(a.data() for a in czi.attachments()
                      if a.attachment_entry.name == "TimeStamps")
    increment = float(meta["Information"]["Image"]["Dimensions"]["T"]["Positions"][
        "Interval"]["Increment"])
    assert len(boxes) == 12 * (10 + 1 + 17)  # per plane: 10, 1 and 17 tiles of 64 x 64
    extents = [(122, 295), (64, 64), (237, 352)]  # as czifile 2026 gives the scenes
    for series in range(3):
        y0 = min(y for s, y, _ in boxes if s == series)
        x0 = min(x for s, _, x in boxes if s == series)
        h, w = extents[series]
        with lp.open_image(czi_file, series=series) as img:
            assert img.axes == "tczyx" and img.shape == (2, 2, 3, h, w)
            assert img.metadata["n_series"] == 3 and img.source["series"] == series
            assert img.scale == pytest.approx((increment, 1.0, 1.0, 1.6, 1.6))
            assert img.scale[0] == pytest.approx(stamps[1] - stamps[0], abs=1e-3)
            assert img.translate == pytest.approx((0, 0, 0, y0 * 1.6, x0 * 1.6))
            assert img.channel_names == ["DAPI", "EGFP"]
            scene = values[series]
            np.testing.assert_array_equal(np.asarray(img.levels[0]),
                                          scene[..., y0:y0 + h, x0:x0 + w])
            outside = scene.copy()
            outside[..., y0:y0 + h, x0:x0 + w] = 0
            assert not outside.any()  # nothing of the scene is cut off
    assert img.translate[3:] == pytest.approx((443.2, 468.8))
    assert "series=3 is out of range; the file has 3 (scenes)" in error(czi_file, series=3)


def test_czi_well_plate_scenes_open_where_they_lie_not_on_one_canvas():
    """28 scenes (4 positions in wells B4 to B10) spread over 18764 x 288764 pixels of
    stage: each opens as its one 640 x 640 tile (not a 5 GB canvas of zeros), its
    ``translate`` the tile's place on the stage, its values the tile's own."""
    czifile = pytest.importorskip("czifile")
    czi_file = sample(CZI_PLATE)
    with czifile.CziFile(czi_file) as czi:
        assert czi.axes == "SCYX0" and czi.shape == (28, 1, 18764, 288764, 1)
        entries = czi.filtered_subblock_directory
        start = czi.start
        scaling = {d["Id"]: d["Value"] for d in _czi_dict(czi)["Scaling"]["Items"][
            "Distance"]}
        tiles = {e.start[0] - start[0]: e for e in entries}
        assert len(entries) == len(tiles) == 28
        last = tiles[27].data_segment().data()[0, 0, ..., 0]
        where = [(tiles[s].start[2] - start[2], tiles[s].start[3] - start[3])
                 for s in range(28)]
    um = scaling["X"] * 1e6
    for series in (0, 27):
        with lp.open_image(czi_file, series=series) as img:
            assert img.axes == "yx" and img.shape == (640, 640)
            assert img.metadata["n_series"] == 28
            assert img.scale == pytest.approx((um, um)) and um == pytest.approx(0.2)
            assert img.translate == pytest.approx((where[series][0] * um,
                                                   where[series][1] * um))
    np.testing.assert_array_equal(np.asarray(img.levels[0]), last)
    assert img.translate == pytest.approx((18124 * um, 288124 * um))


def test_czi_scaling_is_the_images_not_the_psfs():
    """A deskewed lattice light-sheet stack: its ``Scaling`` is isotropic, while the PSF's
    ``OriginalScaling`` keeps the 0.2 um stage step."""
    czifile = pytest.importorskip("czifile")
    czi_file = sample(CZI_LLS)
    with czifile.CziFile(czi_file) as czi:
        meta = _czi_dict(czi)
        values = _pasted(czi).reshape(2, 2, 3, 64, 64)
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
    czi_file = sample(CZI_MOSAIC)
    img = lp.open_image(czi_file)  # scene 0: 2 rows of 5 tiles per plane
    arr = img.sources[0]
    np.asarray(arr[0, 0, 0, :2, :2])  # open the file and warm up: nothing counted
    tile = 64 * 64 * 2  # uint16 tiles of 64 x 64
    before = bytes_read()
    inside = arr[1, 1, 2, 5:50, 5:55]  # inside the first tile alone (the next at x 58)
    one_tile = bytes_read() - before
    before = bytes_read()
    whole = arr[1, 1, 2]  # its plane: all 10 tiles of scene 0
    one_plane = bytes_read() - before
    assert tile <= one_tile < 2 * tile
    assert 10 * tile <= one_plane < 11 * tile
    np.testing.assert_array_equal(inside, whole[5:50, 5:55])
    img.close()


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
    source = sample(CZI)
    with czifile.CziFile(source) as czi:
        entry = czi.header.directory_position + 32 + 128  # segment header, EntryCount...
    data = bytearray(source.read_bytes())
    assert data[entry:entry + 2] == b"DV" and data[entry + 18] == 0
    data[entry + 18] = 7
    path = tmp_path / "unknown.czi"
    path.write_bytes(bytes(data))
    with czifile.CziFile(path) as czi:
        assert {e.compression for e in czi.filtered_subblock_directory} == {0, 7}
    assert "compressed with 7, which czifile cannot decode" in error(path)

"""Files straight from the microscope: Nikon ND2, Zeiss CZI, Leica LIF (small real files
their projects publish, see tests/data/SOURCES.md; the CZI's own tests are in
test_io_czi.py). Values and metadata are checked against each format's own reader; a
plane reads only its own bytes."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from peer_files import sample
from vendor_checks import LINUX, bytes_read, error

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main
from napari_lazyproc.io import find_format

ND2, CZI = "cluster.nd2", "CellDivision_T3_Z5_CH2_X240_Y170.czi"
LIF_SPECTRAL = "LeicaLASX_wavelength-sweep_example.lif"
LIF_XZ = "testdata_2channel_xz.lif"
UM = "micrometer"


def _needs(name: str) -> Path:
    """A real file (tests/data/SOURCES.md): from a peer's sdist (the ND2 and the CZIs),
    or the folder ``LAZYPROC_VENDOR_SAMPLES`` names (the LIFs: no package publishes
    one); none is committed here. Skipped without it."""
    return sample(name)


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
    before = bytes_read()
    plane = arr[1, 3, 4]
    read = bytes_read() - before
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
    assert f"not a readable {what} file" in error(path)


def test_vendor_series_out_of_range_and_info(capsys):
    pytest.importorskip("liffile")
    lif_spectral = _needs(LIF_SPECTRAL)
    assert "series=3 is out of range; the file has 3 images" in error(lif_spectral, series=3)
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
    assert f"(pip install napari-lazyproc[{extra}])" in error(path)

"""BigDataViewer / BigStitcher HDF5: the ``.h5`` in BigDataViewer's layout (as its
``WriteSequenceToHdf5`` lays it out, written with h5py) and the ``dataset.xml`` naming it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main
from napari_lazyproc.io import ImageReadError, find_format

UM = "micrometer"
RNG = np.random.default_rng(11)
#: (t, setup, z, y, x)
SERIES = RNG.integers(0, 4000, size=(2, 2, 6, 40, 48), dtype=np.int16)


def write_bdv_h5(path: Path, series=SERIES, missing=()) -> Path:
    """Two levels; per setup ``resolutions`` and ``subdivisions`` in x, y, z."""
    with h5py.File(path, "w") as f:
        for s in range(series.shape[1]):
            f[f"s{s:02d}/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], float)
            f[f"s{s:02d}/subdivisions"] = np.array([[16, 16, 2], [8, 8, 2]], np.int32)
        for t in range(series.shape[0]):
            for s in range(series.shape[1]):
                if (t, s) in missing:
                    continue
                f.create_dataset(f"t{t:05d}/s{s:02d}/0/cells", data=series[t, s],
                                 chunks=(2, 16, 16))
                f.create_dataset(f"t{t:05d}/s{s:02d}/1/cells", data=series[t, s, :, ::2, ::2],
                                 chunks=(2, 8, 8))
    return path


def write_bdv_xml(xml: Path, h5_name: str, named: bool = True) -> Path:
    """BigDataViewer's XML: setups named ``channel 1``, ``channel 2`` (or only their
    channel attribute, when ``named`` is False), voxel size 0.25 x 0.25 x 1.5 µm."""
    setups = "".join(
        f"<ViewSetup><id>{s}</id>{f'<name>channel {s + 1}</name>' if named else ''}"
        "<size>48 40 6</size><voxelSize><unit>µm</unit><size>0.25 0.25 1.5</size>"
        f"</voxelSize><attributes><channel>{s + 1}</channel></attributes></ViewSetup>"
        for s in range(2)
    )
    channels = "".join(f"<Channel><id>{c}</id><name>{c}</name></Channel>" for c in (1, 2))
    xml.write_text(textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <SpimData version="0.2">
          <BasePath type="relative">.</BasePath>
          <SequenceDescription>
            <ImageLoader format="bdv.hdf5">
              <hdf5 type="relative">{h5_name}</hdf5>
            </ImageLoader>
            <ViewSetups>{setups}<Attributes name="channel">{channels}</Attributes></ViewSetups>
            <Timepoints type="range"><first>0</first><last>1</last></Timepoints>
          </SequenceDescription>
          <ViewRegistrations/>
        </SpimData>
        """))
    return xml


@pytest.fixture
def bdv_pair(tmp_path) -> tuple[Path, Path]:
    h5 = write_bdv_h5(tmp_path / "export.h5")
    return write_bdv_xml(tmp_path / "dataset.xml", "export.h5"), h5


@pytest.mark.parametrize("which", ["xml", "h5"])
def test_bdv_hdf5_xml_and_h5_open_the_same(bdv_pair, which):
    xml, h5 = bdv_pair
    with lp.open_image(xml if which == "xml" else h5) as img:
        assert img.source["format"] == "bigdataviewer-hdf5"
        assert img.source["xml"] == str(xml) and img.source["hdf5"] == str(h5)
        assert img.axes == "tczyx"
        assert img.channel_names == ["channel 1", "channel 2"]
        assert img.scale == (1.0, 1.0, 1.5, 0.25, 0.25)
        assert img.units == (None, None, UM, UM, UM)
        assert [lvl.shape for lvl in img.levels] == [(2, 2, 6, 40, 48), (2, 2, 6, 20, 24)]
        assert img.levels[0].chunksize == (1, 1, 2, 16, 16)
        np.testing.assert_array_equal(np.asarray(img.levels[0]), SERIES)
        with h5py.File(h5, "r") as f:
            np.testing.assert_array_equal(np.asarray(img.levels[1][1, 0]),
                                          f["t00001/s00/1/cells"][()])


def test_bdv_hdf5_names_from_channel_attributes(tmp_path):
    write_bdv_h5(tmp_path / "a.h5")
    xml = write_bdv_xml(tmp_path / "a.xml", "a.h5", named=False)
    with lp.open_image(xml) as img:
        assert img.channel_names == ["channel 1", "channel 2"]


def test_bdv_hdf5_setup_option_and_missing_views(tmp_path):
    h5 = write_bdv_h5(tmp_path / "fused.h5", missing={(1, 1)})
    xml = write_bdv_xml(tmp_path / "fused.xml", "fused.h5")
    with lp.open_image(xml, setup=1) as img:
        assert img.axes == "tzyx" and img.shape == (2, 6, 40, 48)
        np.testing.assert_array_equal(np.asarray(img.levels[0][0]), SERIES[0, 1])
        assert not np.asarray(img.levels[0][1]).any()  # BigStitcher left it out
    with lp.open_image(h5) as img:
        np.testing.assert_array_equal(np.asarray(img.levels[0][1, 0]), SERIES[1, 0])


def test_bdv_hdf5_claimed_by_the_reader_and_info(bdv_pair, capsys):
    xml, h5 = bdv_pair
    for path in (xml, h5):
        assert find_format(path).name == "BigDataViewer HDF5"
        assert callable(napari_get_reader(str(path)))
    layers = napari_get_reader(str(xml))(str(xml))
    assert [kw["name"] for _, kw, _ in layers] == ["dataset · channel 1", "dataset · channel 2"]
    assert main(["info", str(xml)]) == 0
    out = capsys.readouterr().out
    for expected in ("format:    bigdataviewer-hdf5", "channels:  channel 1, channel 2",
                     "z=1.5 micrometer, y=0.25 micrometer"):
        assert expected in out


def _error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    message = str(info.value)
    assert os.fspath(path) in message and "\n" not in message
    return message


def test_bdv_hdf5_errors_name_the_file(tmp_path, bdv_pair):
    xml, _ = bdv_pair
    orphan = write_bdv_xml(tmp_path / "orphan.xml", "gone.h5")
    assert "gone.h5" in _error(orphan) and "missing" in _error(orphan)
    assert "no setup 7" in _error(xml, setup=7)
    odd = SERIES[:, :1]
    write_bdv_h5(tmp_path / "tiles.h5", series=odd)
    with h5py.File(tmp_path / "tiles.h5", "a") as f:
        f["s01/resolutions"] = np.array([[1, 1, 1]], float)
        f["s01/subdivisions"] = np.array([[16, 16, 2]], np.int32)
        f["t00000/s01/0/cells"] = np.zeros((6, 10, 10), np.int16)
    assert "open one with setup=N" in _error(tmp_path / "tiles.h5")


def test_an_xml_of_another_loader_is_not_this_reader_s(tmp_path, bdv_pair):
    xml, _ = bdv_pair
    other = tmp_path / "n5.xml"
    other.write_text(xml.read_text().replace('format="bdv.hdf5"', 'format="bdv.n5"')
                     .replace("<hdf5 ", "<n5 ").replace("</hdf5>", "</n5>"))
    assert find_format(other).name == "BigDataViewer N5"
    # an XML beside the .h5 that points to another file is not the .h5's
    h5 = write_bdv_h5(tmp_path / "b.h5")
    write_bdv_xml(tmp_path / "b.xml", "export.h5")
    with lp.open_image(h5) as img:
        assert img.source["xml"] is None and img.channel_names == ["setup 0", "setup 1"]

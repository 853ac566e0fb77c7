"""BigDataViewer / BigStitcher N5: containers written with tensorstore in BigDataViewer's
layout (``setup{s}/timepoint{t}/s{l}``, with its attributes), and the dataset.xml."""

from __future__ import annotations

import json
import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main
from napari_lazyproc.io import ImageReadError, find_format

ts = pytest.importorskip("tensorstore")

UM = "micrometer"
RNG = np.random.default_rng(5)
#: (t, setup, z, y, x): 3 time points, 2 setups
SERIES = RNG.integers(0, 4000, size=(3, 2, 12, 64, 80), dtype=np.uint16)
#: per level, x y z, as BigDataViewer writes them
FACTORS = [[1, 1, 1], [2, 2, 1], [4, 4, 2]]
BLOCKS = [[32, 32, 4], [16, 16, 4], [16, 16, 4]]


def _level(volume: np.ndarray, factor) -> np.ndarray:
    """A (z, y, x) volume subsampled by ``factor`` (x, y, z), sized as BigDataViewer does
    (``dimension / factor``, rounded down)."""
    fx, fy, fz = factor
    z, y, x = volume.shape
    return volume[::fz, ::fy, ::fx][: z // fz, : y // fy, : x // fx]


def _merge_attrs(group: Path, **attrs) -> None:
    group.mkdir(parents=True, exist_ok=True)
    path = group / "attributes.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**current, **attrs}))


def write_bdv_n5(root: Path, series=SERIES, factors=FACTORS, blocks=BLOCKS,
                 voxel_xyz=(0.4, 0.4, 2.0)) -> Path:
    """What BigDataViewer's WriteSequenceToN5 writes: setup groups with
    ``downsamplingFactors`` and ``dataType``, time point groups with ``multiScale`` and
    ``resolution``, and one gzip N5 dataset per level (pixels written by tensorstore)."""
    _merge_attrs(root, n5="4.0.0")
    dtype = str(series.dtype)
    for s in range(series.shape[1]):
        _merge_attrs(root / f"setup{s}", downsamplingFactors=factors, dataType=dtype)
        for t in range(series.shape[0]):
            for level, (factor, block) in enumerate(zip(factors, blocks, strict=True)):
                data = _level(series[t, s], factor)
                path = root / f"setup{s}" / f"timepoint{t}" / f"s{level}"
                store = ts.open({
                    "driver": "n5",
                    "kvstore": {"driver": "file", "path": str(path)},
                    "metadata": {"dimensions": list(data.shape[::-1]), "blockSize": block,
                                 "dataType": dtype, "compression": {"type": "gzip"}},
                }, create=True).result()
                store.write(data.T).result()  # N5 is x, y, z
                _merge_attrs(path, downsamplingFactors=factor)
            _merge_attrs(root / f"setup{s}" / f"timepoint{t}", multiScale=True,
                         resolution=list(voxel_xyz))
    return root


def write_bdv_xml(xml: Path, n5_name: str, n_setups: int, n_timepoints: int) -> Path:
    setups = "".join(
        f"<ViewSetup><id>{s}</id><name>{488 + 73 * s} nm</name><size>80 64 12</size>"
        "<voxelSize><unit>µm</unit><size>0.4 0.4 2.0</size></voxelSize>"
        f"<attributes><channel>{s}</channel></attributes></ViewSetup>"
        for s in range(n_setups)
    )
    xml.write_text(textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <SpimData version="0.2">
          <BasePath type="relative">.</BasePath>
          <SequenceDescription>
            <ImageLoader format="bdv.n5" version="1.0">
              <n5 type="relative">{n5_name}</n5>
            </ImageLoader>
            <ViewSetups>{setups}</ViewSetups>
            <Timepoints type="range"><first>0</first><last>{n_timepoints - 1}</last></Timepoints>
          </SequenceDescription>
          <ViewRegistrations/>
        </SpimData>
        """))
    return xml


@pytest.fixture
def bdv_n5(tmp_path) -> tuple[Path, Path]:
    """BigStitcher's pair: ``dataset.xml`` and ``dataset.n5``."""
    n5 = write_bdv_n5(tmp_path / "dataset.n5")
    xml = write_bdv_xml(tmp_path / "dataset.xml", "dataset.n5", 2, 3)
    return xml, n5


@pytest.mark.parametrize("which", ["xml", "n5"])
def test_bdv_n5_opens_as_a_multiscale_series(bdv_n5, which):
    xml, n5 = bdv_n5
    path = xml if which == "xml" else n5
    with lp.open_image(path) as img:
        assert img.source["format"] == "bigdataviewer-n5"
        assert img.source["xml"] == str(xml)  # the folder finds its XML
        assert img.axes == "tczyx"
        assert [lvl.shape for lvl in img.levels] == [
            (3, 2, 12, 64, 80), (3, 2, 12, 32, 40), (3, 2, 6, 16, 20)
        ]
        assert img.levels[0].chunksize == (1, 1, 4, 32, 32)
        assert img.scale == (1.0, 1.0, 2.0, 0.4, 0.4)
        assert img.units == (None, None, UM, UM, UM)
        assert img.channel_names == ["488 nm", "561 nm"]
        assert img.name == "dataset"
        for level, factor in zip(img.levels, FACTORS, strict=True):
            values = np.asarray(level)
            for t in range(3):
                for s in range(2):
                    np.testing.assert_array_equal(values[t, s], _level(SERIES[t, s], factor))
        np.testing.assert_array_equal(np.asarray(img.levels[1][2, 1, 3]),
                                      _level(SERIES[2, 1], FACTORS[1])[3])
        assert img.level_scale(2) == (1.0, 1.0, 4.0, 1.6, 1.6)


def test_bdv_n5_single_setup_without_xml(tmp_path):
    n5 = write_bdv_n5(tmp_path / "alone.n5", series=SERIES[:2, :1],
                      voxel_xyz=(0.25, 0.25, 1.5))
    with lp.open_image(n5) as img:
        assert img.axes == "tzyx"  # as BigDataViewer HDF5: a single setup is no channel
        assert img.shape == (2, 12, 64, 80)
        assert img.source["xml"] is None
        # no XML: the ``resolution`` BigDataViewer writes on each time point, no unit
        assert img.scale == (1.0, 1.5, 0.25, 0.25)
        assert img.units == (None, None, None, None)
        np.testing.assert_array_equal(np.asarray(img.levels[0][1]), SERIES[1, 0])
        # integer keys drop their axes the way numpy does
        assert np.asarray(img.sources[0][1, 5:7, 3, :4]).shape == (2, 4)


def test_bdv_n5_setup_option(bdv_n5):
    xml, _ = bdv_n5
    with lp.open_image(xml, setup=1) as img:
        assert img.axes == "tzyx" and img.source["setups"] == [1]
        np.testing.assert_array_equal(np.asarray(img.levels[0][2]), SERIES[2, 1])


def _file_reads() -> int:
    """How many reads tensorstore has made of local files so far (its own counter)."""
    name = "/tensorstore/kvstore/file/read"
    (metric,) = [m for m in ts.experimental_collect_matching_metrics(name)
                 if m["name"] == name]
    return sum(v.get("value", 0) for v in metric["values"])


def test_bdv_n5_open_reads_no_chunk_and_a_plane_reads_only_its_chunks(bdv_n5):
    xml, _ = bdv_n5
    before = _file_reads()
    img = lp.open_image(xml)
    assert _file_reads() == before  # metadata is read as JSON, no pixel
    np.asarray(img.levels[0][1, 0, 0])  # opens that view (its attributes.json), z block 0
    before = _file_reads()
    plane = np.asarray(img.levels[0][1, 0, 5])  # z block 1: 2 x 3 blocks of 32 x 32
    np.testing.assert_array_equal(plane, SERIES[1, 0, 5])
    assert _file_reads() - before == 6
    before = _file_reads()
    np.asarray(img.levels[0][1, 0, 6, :32, 32:64])
    assert _file_reads() - before == 1
    img.close()


def test_bdv_n5_pickles_by_path(bdv_n5):
    xml, _ = bdv_n5
    with lp.open_image(xml) as img:
        np.asarray(img.levels[0][0, 0, 0])
        clone = pickle.loads(pickle.dumps(img.levels[0]))
        np.testing.assert_array_equal(np.asarray(clone[2, 1, 3]), SERIES[2, 1, 3])


def test_bdv_n5_claimed_by_the_reader_and_info(bdv_n5, capsys):
    xml, n5 = bdv_n5
    for path in (xml, n5):
        assert find_format(path).name == "BigDataViewer N5"
        assert callable(napari_get_reader(str(path)))
    layers = napari_get_reader(str(xml))(str(xml))
    assert [kw["name"] for _, kw, _ in layers] == ["dataset · 488 nm", "dataset · 561 nm"]
    assert layers[0][1]["scale"] == [1.0, 2.0, 0.4, 0.4]
    assert main(["info", str(xml)]) == 0
    out = capsys.readouterr().out
    for expected in ("format:    bigdataviewer-n5", "shape:     (3, 2, 12, 64, 80)",
                     "levels:    (3, 2, 12, 64, 80), (3, 2, 12, 32, 40), (3, 2, 6, 16, 20)",
                     "z=2 micrometer, y=0.4 micrometer"):
        assert expected in out


def test_foreign_and_loaderless_xml_are_not_claimed(tmp_path, bdv_file):
    """An XML naming no image loader (the BDV fixture's: voxel size only) opens nothing."""
    plain = tmp_path / "notes.xml"
    plain.write_text("<notes><n>1</n></notes>")
    broken = tmp_path / "broken.xml"
    broken.write_text("<SpimData><ImageLoa")
    for path in (plain, broken, bdv_file.with_suffix(".xml")):
        assert find_format(path) is None
        assert napari_get_reader(str(path)) is None


def _error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    message = str(info.value)
    assert os.fspath(path) in message and "\n" not in message
    return message


def test_bdv_n5_errors_name_the_file(tmp_path, bdv_n5):
    xml, n5 = bdv_n5
    orphan = write_bdv_xml(tmp_path / "orphan.xml", "gone.n5", 1, 1)
    assert "gone.n5" in _error(orphan) and "missing" in _error(orphan)
    assert "no setup 7" in _error(xml, setup=7)
    other = tmp_path / "paintera.n5"  # an N5 container of another layout
    _merge_attrs(other, n5="4.0.0")
    _merge_attrs(other / "volumes" / "raw", dimensions=[4, 4], blockSize=[4, 4],
                 dataType="uint8", compression={"type": "raw"})
    assert "not in BigDataViewer layout" in _error(other)
    level1 = n5 / "setup0" / "timepoint0" / "s1"
    _merge_attrs(level1, compression={"type": "lz4"})
    assert "compression 'lz4'" in _error(xml)
    (n5 / "setup1" / "attributes.json").write_text("{ not json")
    assert "setup1/attributes.json is not valid JSON" in _error(n5)


def test_bdv_n5_setups_of_different_sizes_ask_for_one(tmp_path):
    n5 = write_bdv_n5(tmp_path / "tiles.n5", series=SERIES[:1, :1])
    small = SERIES[:1, :1, :, :32, :40]
    other = write_bdv_n5(tmp_path / "other.n5", series=small)
    os.rename(other / "setup0", n5 / "setup1")
    assert "open one with setup=N" in _error(n5)
    with lp.open_image(n5, setup=1) as img:
        np.testing.assert_array_equal(np.asarray(img.levels[0][0]), small[0, 0])

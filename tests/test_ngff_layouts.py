"""OME-Zarr layouts around images, read from files other tools wrote (tests/data/
SOURCES.md): HCS plates (ome-zarr-py's writer) as a lazy grid of wells, a well or field
by its path; a bioformats2raw root's series with its OME-XML's metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main as cli_main
from napari_lazyproc.io import ImageReadError

NGFF = Path(__file__).parent / "data" / "ngff"
PLATE = NGFF / "plate_v04.ome.zarr"
B2R = NGFF / "bioformats2raw.zarr"
UM = "micrometer"
#: the plate's wells as written: (row, column) -> path; B/2 was left empty
WELLS = {(0, 0): "A/1", (0, 1): "A/2", (0, 2): "A/3", (1, 0): "B/1", (1, 2): "B/3"}


def _expected_grid(root: Path, field: str, level: str) -> np.ndarray:
    """The plate as napari-ome-zarr lays it out, from zarr's own reads of each well."""
    group = zarr.open_group(root, mode="r")
    tile = group[f"A/1/{field}/{level}"]
    c, ty, tx = tile.shape
    out = np.zeros((c, 2 * ty, 3 * tx), tile.dtype)
    for (r, col), well in WELLS.items():
        out[:, r * ty:(r + 1) * ty, col * tx:(col + 1) * tx] = group[f"{well}/{field}/{level}"][:]
    return out


@pytest.mark.parametrize("name", ["plate_v04.ome.zarr", "plate_v05.ome.zarr"])
def test_a_plate_opens_as_a_lazy_grid_of_its_wells(name, zarr_reads):
    root = NGFF / name
    zarr_reads.keys.clear()
    image = lp.open_image(root)
    assert not zarr_reads.chunk_keys()  # opening read metadata only
    assert image.axes == "cyx" and image.shape == (2, 32, 60)
    assert image.scale == (1.0, 0.5, 0.5) and image.units == (None, UM, UM)
    assert image.channel_names == ["DAPI", "GFP"]
    assert image.name == "test plate"
    for k, level in enumerate(("s0", "s1")):
        np.testing.assert_array_equal(np.asarray(image.levels[k]),
                                      _expected_grid(root, "0", level))
    # one well's region reads that well's chunks only
    zarr_reads.keys.clear()
    np.asarray(image.levels[0][0, 16:32, 40:60])
    assert {k[:4] for k in zarr_reads.chunk_keys()} == {"B/3/"}
    assert image.metadata["plate"]["wells"] == list(WELLS.values())
    assert image.metadata["plate"]["rows"] == ["A", "B"]
    assert image.metadata["plate"]["columns"] == ["1", "2", "3"]


def test_a_plate_field_is_chosen_and_the_empty_well_reads_zero():
    image = lp.open_image(PLATE, field=1)
    grid = np.asarray(image.data)
    np.testing.assert_array_equal(grid, _expected_grid(PLATE, "1", "s0"))
    assert not grid[:, 16:32, 20:40].any()  # B/2
    assert image.metadata["plate"]["fields"] == ["0", "1"]
    message = str(pytest.raises(ImageReadError, lp.open_image, PLATE, field=2).value)
    assert message == f"cannot read {str(PLATE)!r}: no field 2: the wells hold fields 0..1"


def test_a_well_and_a_field_open_by_their_paths():
    well = lp.open_image(PLATE / "B" / "3", field=1)
    np.testing.assert_array_equal(np.asarray(well.data),
                                  zarr.open_array(PLATE / "B/3/1/s0", mode="r")[:])
    assert well.metadata["well"] == {"fields": ["0", "1"], "field": 1}
    field = lp.open_image(PLATE / "A" / "2" / "0")
    np.testing.assert_array_equal(np.asarray(field.levels[1]),
                                  zarr.open_array(PLATE / "A/2/0/s1", mode="r")[:])
    assert field.channel_names == ["DAPI", "GFP"] and field.scale == (1.0, 0.5, 0.5)


def test_a_plate_grid_sees_a_well_rewritten_on_disk(tmp_path):
    root = shutil.copytree(PLATE, tmp_path / "plate.ome.zarr")
    image = lp.open_image(root)
    # a first read opens the wells' arrays; until then a stamp costs more than
    # ops' STAMP_COST and is reused for a second (as any costly stamp is)
    np.asarray(image.data)
    before = lp.apply("gaussian", image, sigma=1.0, axes="yx")
    first = np.asarray(before.levels[0][0, :16, :20])
    arr = zarr.open_array(root / "A/1/0/s0", mode="r+")
    arr[0] = 7
    after = np.asarray(before.levels[0][0, :16, :20])
    assert not np.array_equal(first, after)
    assert np.allclose(after[4:12, 4:16], 7)


def test_bioformats2raw_root_opens_series_0_with_the_ome_xml_metadata():
    image = lp.open_image(B2R)
    np.testing.assert_array_equal(np.asarray(image.data),
                                  zarr.open_array(B2R / "0" / "s0", mode="r")[:])
    assert image.axes == "tczyx"
    # the zarr of series 0 has no units: sizes and units from METADATA.ome.xml
    assert image.scale == (30.0, 1.0, 1.5, 0.25, 0.25)
    assert image.units == ("second", None, UM, UM, UM)
    assert image.channel_names == ["DAPI", "GFP"]
    assert image.name == "first image"
    assert image.source["series"] == 0
    assert image.metadata["series"] == [{"path": "0", "name": "first image"},
                                        {"path": "1", "name": "overview"}]


def test_bioformats2raw_series_n_and_its_own_zarr_metadata():
    image = lp.open_image(B2R, series=1)
    np.testing.assert_array_equal(np.asarray(image.data),
                                  zarr.open_array(B2R / "1" / "s0", mode="r")[:])
    assert image.scale == (1.0, 1.0, 1.0, 2.0, 2.0)  # the zarr's own
    assert image.channel_names == ["brightfield"] and image.name == "overview"
    message = str(pytest.raises(ImageReadError, lp.open_image, B2R, series=2).value)
    assert message == f"cannot read {str(B2R)!r}: no series 2: this file holds series 0..1"


def test_info_lists_series_and_plate_layout(capsys):
    assert cli_main(["info", str(B2R)]) == 0
    out = capsys.readouterr().out
    assert "series:    0 first image (opened); 1 overview" in out
    assert "channels:  DAPI, GFP" in out
    assert cli_main(["info", str(PLATE)]) == 0
    out = capsys.readouterr().out
    assert "plate:     test plate: 2 rows (A, B) x 3 columns (1, 2, 3)" in out
    assert "wells:     5: A/1, A/2, A/3, B/1, B/3" in out
    assert "fields:    2 per well (0, 1); field 0 shown (--field N shows another)" in out


def test_info_field_option_on_a_plate_and_a_well(capsys):
    """``--field N`` as ``open_image(..., field=N)``: the grid of every well's field N."""
    expected = _expected_grid(PLATE, "1", "s0")
    assert cli_main(["info", str(PLATE), "--field", "1"]) == 0
    out = capsys.readouterr().out
    assert "[field=1]" in out and "field 1 shown" in out
    assert f"shape:     {expected.shape}" in out
    np.testing.assert_array_equal(np.asarray(lp.open_image(PLATE, field=1).data), expected)
    assert cli_main(["info", str(PLATE / "B" / "3"), "--field", "1"]) == 0
    out = capsys.readouterr().out
    assert "[field=1]" in out and "fields:    2 per well (0, 1); field 1 shown" in out
    assert cli_main(["info", str(PLATE), "--field", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("no field 2: the wells hold fields 0..1") and "\n" not in err
    assert cli_main(["info", str(B2R), "--field", "1"]) == 2  # no fields there
    assert "bioformats2raw does not take that option" in capsys.readouterr().err


def test_napari_reader_opens_every_series_and_the_plate_grid():
    reader = napari_get_reader(str(B2R))
    layers = reader(str(B2R))
    assert [kw["name"] for _, kw, _ in layers] == [
        "first image · DAPI", "first image · GFP", "overview · brightfield"]
    assert layers[0][1]["scale"] == [30.0, 1.5, 0.25, 0.25]
    reader = napari_get_reader(str(PLATE))
    layers = reader(str(PLATE))
    assert [kw["name"] for _, kw, _ in layers] == ["test plate · DAPI", "test plate · GFP"]
    assert [tuple(d.shape) for d in layers[0][0]][:2] == [(32, 60), (16, 30)]


def test_napari_opens_the_first_8_series_of_a_root_and_names_the_rest(tmp_path):
    """A root of 10 series (the fixture's series 1 copied to 2..9, listed in ``OME``):
    series 0..7 become layers, and the warning says how to open 8 and 9."""
    root = Path(shutil.copytree(B2R, tmp_path / "many.zarr"))
    for index in range(2, 10):
        shutil.copytree(root / "1", root / str(index))
    ome = zarr.open_group(root / "OME", mode="r+")
    ome.attrs["series"] = [str(i) for i in range(10)]
    assert lp.open_image(root, series=9).shape == lp.open_image(B2R, series=1).shape
    with pytest.warns(UserWarning) as caught:
        layers = napari_get_reader(str(root))(str(root))
    # series 0: DAPI and GFP; series 1..7: one channel each; 8 and 9 left out
    assert len(layers) == 2 + 7
    assert [kw["name"] for _, kw, _ in layers[:3]] == [
        "first image · DAPI", "first image · GFP", "overview · brightfield"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message == (f"{root}: 10 series; the first 8 (0..7) are opened, 2 left out "
                       f"(8..9): open one by its folder ({root / '8'} for series 8) or "
                       "with open_image(path, series=N)")
    folder = napari_get_reader(str(root / "9"))(str(root / "9"))  # as the warning says
    assert len(folder) == 1 and folder[0][0][0].shape == layers[2][0][0].shape


def test_a_recorded_idr_root_of_9_series(tmp_path):
    """A real root of bioformats2raw's layout (OME-Zarr 0.5, zarr v3) as IDR serves it:
    idr0033's plate BR00109990 well C2, nine fields as series, written by omero-zarr;
    its metadata as ome-zarr-models' test recorded it (chunks not recorded: zeros).
    Axes, levels, scale, units and channels as zarr reads the documents; napari opens
    the first 8 series and names the ninth."""
    from peer_files import recorded_zarr

    root = recorded_zarr("ome-zarr-models", "1.7",
                         "tests/v05/cassettes/test_bioformats2raw/"
                         "test_bioformats2raw_get_image.yaml", tmp_path)
    group = zarr.open_group(root, mode="r")
    assert group.attrs["ome"]["bioformats2raw.layout"] == 3 and "OME" not in group
    for series in (0, 8):
        ome = zarr.open_group(root / str(series), mode="r").attrs["ome"]
        multiscale = ome["multiscales"][0]
        arrays = [zarr.open_array(root / str(series) / d["path"], mode="r")
                  for d in multiscale["datasets"]]
        image = lp.open_image(root, series=series)
        assert image.source["format"] == "bioformats2raw (ome-zarr)"
        assert image.source["version"] == ome["version"] == "0.5"
        assert image.axes == "".join(a["name"] for a in multiscale["axes"]) == "cyx"
        assert [tuple(lvl.shape) for lvl in image.levels] == [a.shape for a in arrays]
        assert image.dtype == arrays[0].dtype == np.uint16
        assert image.scale == tuple(multiscale["datasets"][0][
            "coordinateTransformations"][0]["scale"]) == (1.0, 0.3, 0.3)
        assert image.units == (None, UM, UM)
        assert image.channel_names == [c["label"] for c in ome["omero"]["channels"]]
        assert len(image.metadata["series"]) == 9
    assert image.channel_names[0] == "Nuclei"
    message = str(pytest.raises(ImageReadError, lp.open_image, root, series=9).value)
    assert message.endswith("no series 9: this file holds series 0..8")
    with pytest.warns(UserWarning, match=r"9 series; the first 8 \(0\.\.7\) are opened, "
                                         r"1 left out \(8\): open one by its folder"):
        layers = napari_get_reader(str(root))(str(root))
    assert len(layers) == 8 * 5  # 5 channels a series


def test_a_napari_viewer_shows_the_plate_and_the_series(make_napari_viewer, qtbot):
    from napari_lazyproc._qt.live_layers import live_states

    viewer = make_napari_viewer()
    layers = viewer.open(str(PLATE), plugin="napari-lazyproc")
    assert [lyr.name for lyr in layers] == ["test plate · DAPI", "test plate · GFP"]
    shown = layers[1]  # planes are read in the background, never on napari's thread
    qtbot.waitUntil(lambda: shown.loaded and not any(s.busy for s in live_states(shown)),
                    timeout=20000)
    np.testing.assert_array_equal(np.asarray(layers[1]._slice.image.raw),
                                  _expected_grid(PLATE, "0", "s0")[1])
    layers = viewer.open(str(B2R), plugin="napari-lazyproc")
    assert len(layers) == 3 and tuple(layers[2].scale) == (1.0, 1.0, 2.0, 2.0)


def test_a_plate_and_a_bioformats2raw_root_over_http():
    from servers import FileServer

    with FileServer(NGFF) as server:
        plate = lp.open_image(server.url("plate_v05.ome.zarr"), field=0)
        np.testing.assert_array_equal(np.asarray(plate.data),
                                      _expected_grid(NGFF / "plate_v05.ome.zarr", "0", "s0"))
        series = lp.open_image(server.url("bioformats2raw.zarr"))
        assert series.scale == (30.0, 1.0, 1.5, 0.25, 0.25)
        assert series.channel_names == ["DAPI", "GFP"]
        np.testing.assert_array_equal(np.asarray(series.data),
                                      zarr.open_array(B2R / "0" / "s0", mode="r")[:])


def test_a_bioformats2raw_series_folder_opens_with_the_ome_xml_metadata():
    image = lp.open_image(B2R / "0")
    assert image.scale == (30.0, 1.0, 1.5, 0.25, 0.25)
    assert image.channel_names == ["DAPI", "GFP"] and image.source["series"] == 0
    np.testing.assert_array_equal(np.asarray(image.levels[1]),
                                  zarr.open_array(B2R / "0" / "s1", mode="r")[:])
    layers = napari_get_reader(str(B2R / "1"))(str(B2R / "1"))  # that series only
    assert [kw["name"] for _, kw, _ in layers] == ["overview · brightfield"]

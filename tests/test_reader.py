"""The npe2 reader contract and the LayerData it returns."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from conftest import UM, VOLUME

from napari_lazyproc._reader import napari_get_reader


def test_get_reader_pass():
    assert napari_get_reader("fake.file") is None


@pytest.mark.parametrize("name, content", [
    ("notes.txt", b"hello"),
    ("picture.png", b"\x89PNG\r\n\x1a\n0000"),
    ("table.csv", b"a,b\n1,2\n"),
])
def test_get_reader_returns_none_for_foreign_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert napari_get_reader(str(path)) is None
    assert napari_get_reader([str(path)]) is None


def test_get_reader_never_raises_on_odd_input(tmp_path):
    (tmp_path / "plain_dir").mkdir()
    for odd in (str(tmp_path / "plain_dir"), [], "", "\0bad", str(tmp_path / ("x" * 300))):
        assert napari_get_reader(odd) is None


@pytest.mark.parametrize("fixture", [
    "zarr_v2_array", "zarr_v3_sharded", "ome_zarr_v04", "tiff_plain", "bigtiff_tiled",
    "hdf5_file", "bdv_file", "tiff_folder", "ome_tiff_pyramid",
])
def test_get_reader_claims_each_format(request, fixture):
    assert callable(napari_get_reader(str(request.getfixturevalue(fixture))))


def test_layer_data_is_lazy_with_scale_units_and_contrast(ome_zarr_v04, zarr_reads):
    coarse = zarr.open_array(ome_zarr_v04 / "s2", mode="r")[:]
    zarr_reads.keys.clear()
    reader = napari_get_reader(str(ome_zarr_v04))
    layers = reader(str(ome_zarr_v04))
    (data, kwargs, kind), (labels_data, labels_kwargs, labels_kind) = layers
    assert kind == "image" and labels_kind == "labels"
    assert isinstance(data, list) and len(data) == 3 and not isinstance(data[0], np.ndarray)
    assert kwargs["multiscale"] is True
    assert kwargs["scale"] == [2.0, 0.5, 0.5]
    assert kwargs["axis_labels"] == ["z", "y", "x"]
    assert kwargs["units"] == [UM, UM, UM]
    assert kwargs["contrast_limits"] == (float(coarse.min()), float(coarse.max()))
    # the contrast sample read only the coarsest level
    assert zarr_reads.chunk_keys() and all(k.startswith("s2/") for k in zarr_reads.chunk_keys())
    assert kwargs["metadata"]["source"]["format"] == "ome-zarr"
    assert labels_kwargs["name"] == "cells"
    assert "contrast_limits" not in labels_kwargs


def test_channels_split_with_names_colors_and_windows(ome_zarr_v05_channels):
    dapi, gfp, _labels = napari_get_reader(str(ome_zarr_v05_channels))(str(ome_zarr_v05_channels))
    assert [layer[1]["name"] for layer in (dapi, gfp)] == ["channels · DAPI", "channels · GFP"]
    limits = [layer[1]["contrast_limits"] for layer in (dapi, gfp)]
    assert limits == [(10.0, 900.0), (20.0, 3000.0)]
    assert dapi[1]["scale"] == [2.0, 0.5, 0.5] and dapi[1]["axis_labels"] == ["z", "y", "x"]
    assert [layer[1]["colormap"]["name"] for layer in (dapi, gfp)] == ["#0000ff", "#00ff00"]
    assert dapi[0][0].shape == (12, 64, 80)
    np.testing.assert_array_equal(np.asarray(gfp[0][0][3]), VOLUME[3] // 2)


def test_channel_split_builds_no_per_chunk_graph(ome_tiff_pyramid):
    """Taking a channel of a huge array must not cost a task per chunk up front."""
    import napari_lazyproc as lp

    img = lp.open_image(ome_tiff_pyramid)
    (level0, *_rest) = img.channel_levels(1)
    (layer,) = level0.dask.layers.values()
    assert not layer.is_materialized()  # one lazy (blockwise) layer, no task per chunk
    np.testing.assert_array_equal(np.asarray(level0[4]), VOLUME[4] // 2)


def test_broken_file_is_claimed_and_raises_clearly(tmp_path):
    from napari_lazyproc.io import ImageReadError

    path = tmp_path / "broken.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("nope")
    reader = napari_get_reader(str(path))
    assert reader is not None
    with pytest.raises(ImageReadError, match="broken.zarr.*not valid JSON"):
        reader(str(path))

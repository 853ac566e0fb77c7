"""Each format opens to the values that were written, with its levels, axes, scale and units."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import UM, VOLUME

import napari_lazyproc as lp


def _values(img, level=0):
    return np.asarray(img.levels[level].compute())


@pytest.mark.parametrize(
    "fixture, fmt",
    [
        ("zarr_v2_array", "zarr v2"),
        ("zarr_v3_array", "zarr v3"),
        ("zarr_v3_sharded", "zarr v3"),
    ],
)
def test_zarr_arrays(request, fixture, fmt):
    img = lp.open_image(request.getfixturevalue(fixture))
    assert img.source["format"] == fmt
    assert img.axes == "zyx"
    assert img.shape == VOLUME.shape and img.dtype == VOLUME.dtype
    np.testing.assert_array_equal(_values(img), VOLUME)


def test_sharded_zarr_reads_inner_chunks(zarr_v3_sharded):
    img = lp.open_image(zarr_v3_sharded)
    assert img.levels[0].chunksize == (2, 16, 16)


def test_plain_group_pyramid_is_multiscale(zarr_v2_consolidated_pyramid):
    img = lp.open_image(zarr_v2_consolidated_pyramid)
    assert [lvl.shape for lvl in img.levels] == [(12, 64, 80), (12, 32, 40), (12, 16, 20)]
    np.testing.assert_array_equal(_values(img, 2), VOLUME[:, ::4, ::4])
    assert img.level_scale(2) == (1.0, 4.0, 4.0)


def test_plain_group_opens_largest_and_names_others(zarr_group_mixed):
    img = lp.open_image(zarr_group_mixed)
    assert len(img.levels) == 1
    np.testing.assert_array_equal(_values(img), VOLUME)
    assert sorted(img.metadata["other_arrays"]) == ["mask", "other"]
    other = lp.open_image(zarr_group_mixed, array="other")
    assert other.shape == (40, 90) and other.dtype == np.float32


def test_ome_zarr_04_multiscale_with_labels(ome_zarr_v04):
    img = lp.open_image(ome_zarr_v04)
    assert img.source["format"] == "ome-zarr" and img.source["version"] == "0.4"
    assert img.axes == "zyx"
    assert img.scale == (2.0, 0.5, 0.5)
    assert img.units == (UM, UM, UM)
    assert [lvl.shape for lvl in img.levels] == [(12, 64, 80), (12, 32, 40), (12, 16, 20)]
    np.testing.assert_array_equal(_values(img), VOLUME)
    assert img.level_scale(1) == (2.0, 1.0, 1.0)
    (cells,) = img.labels
    assert cells.kind == "labels" and cells.name == "cells"
    assert cells.scale == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(_values(cells), (VOLUME > 3000).astype("uint32"))


def test_ome_zarr_05_channels_from_omero(ome_zarr_v05_channels):
    img = lp.open_image(ome_zarr_v05_channels)
    assert img.source["version"] == "0.5"
    assert img.axes == "czyx" and img.channel_axis == 0
    assert img.channel_names == ["DAPI", "GFP"]
    assert img.channel_colors == ["#0000ff", "#00ff00"]
    assert img.contrast_limits == [(10.0, 900.0), (20.0, 3000.0)]
    assert img.scale == (1.0, 2.0, 0.5, 0.5)
    assert img.units == (None, UM, UM, UM)
    np.testing.assert_array_equal(_values(img)[1], VOLUME // 2)


def test_ome_zarr_translation_and_global_scale(tmp_path):
    """Dataset transforms compose with the multiscale-level ones."""
    import json

    import zarr

    path = tmp_path / "t.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", shape=(4, 8), dtype="uint8")[:] = 7
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": "y", "type": "space", "unit": "nanometer"},
                 {"name": "x", "type": "space", "unit": "nanometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [2.0, 3.0]},
            {"type": "translation", "translation": [1.0, 1.0]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [10.0, 10.0]}],
    }]
    img = lp.open_image(path)
    assert img.scale == (20.0, 30.0)
    assert img.translate == (10.0, 10.0)
    assert img.units == ("nanometer", "nanometer")
    assert json.loads((path / ".zattrs").read_text())  # the input was not rewritten


@pytest.mark.parametrize("fixture, fmt", [("tiff_plain", "tiff"), ("bigtiff_tiled", "bigtiff")])
def test_tiff(request, fixture, fmt):
    img = lp.open_image(request.getfixturevalue(fixture))
    assert img.source["format"] == fmt
    assert img.axes == "zyx"
    np.testing.assert_array_equal(_values(img), VOLUME)
    if fmt == "bigtiff":
        assert img.levels[0].chunksize == (1, 32, 32)  # tiles, not whole pages


def test_ome_tiff_pyramid(ome_tiff_pyramid):
    img = lp.open_image(ome_tiff_pyramid)
    assert img.source["format"] == "bigome-tiff"
    assert img.axes == "czyx"
    assert img.scale == (1.0, 1.5, 0.25, 0.25)
    assert img.units == (None, UM, UM, UM)
    assert img.channel_names == ["DAPI", "GFP"]
    assert [lvl.shape for lvl in img.levels] == [(2, 12, 64, 80), (2, 12, 32, 40), (2, 12, 16, 20)]
    np.testing.assert_array_equal(_values(img)[0], VOLUME)
    np.testing.assert_array_equal(_values(img, 2)[1], (VOLUME // 2)[:, ::4, ::4])


def test_imagej_hyperstack(imagej_hyperstack):
    import tifffile

    img = lp.open_image(imagej_hyperstack)
    assert img.source["format"] == "imagej-tiff"
    assert img.axes == "tzcyx"
    assert img.scale == pytest.approx((10.0, 2.5, 1.0, 0.3, 0.3))
    assert img.units == ("second", UM, None, UM, UM)
    np.testing.assert_array_equal(_values(img), tifffile.imread(imagej_hyperstack))


def test_hdf5_largest_dataset_by_default(hdf5_file):
    img = lp.open_image(hdf5_file)
    assert img.source == {"path": str(hdf5_file), "format": "hdf5", "dataset": "/volumes/raw"}
    assert img.metadata["datasets"] == ["/volumes/raw", "/volumes/small"]
    assert img.scale == (2.0, 0.5, 0.5) and img.units == (UM, UM, UM)
    np.testing.assert_array_equal(_values(img), VOLUME)
    img.close()


def test_hdf5_dataset_option(hdf5_file):
    with lp.open_image(hdf5_file, dataset="/volumes/small") as img:
        np.testing.assert_array_equal(_values(img), VOLUME[:2, :10, :10])


def test_bigdataviewer_hdf5(bdv_file):
    img = lp.open_image(bdv_file)
    assert img.source["format"] == "bigdataviewer-hdf5"
    assert img.axes == "tczyx"
    assert [lvl.shape for lvl in img.levels] == [(3, 2, 12, 64, 80), (3, 2, 12, 32, 40)]
    assert img.scale == (1.0, 1.0, 2.0, 0.4, 0.4)
    assert img.units == (None, None, UM, UM, UM)
    values = _values(img)
    for t in range(3):
        for s in range(2):
            np.testing.assert_array_equal(values[t, s], (VOLUME + t * 10 + s).astype(np.int16))
    np.testing.assert_array_equal(
        np.asarray(img.levels[1][2, 1, 3]), (VOLUME[3] + 21).astype(np.int16)[::2, ::2]
    )
    # integer indexing of the underlying reader drops axes the way numpy does
    assert np.asarray(img.levels[0][1, 0, 5:7, :3, :4]).shape == (2, 3, 4)
    img.close()


def test_tiff_folder_natural_order(tiff_folder):
    img = lp.open_image(tiff_folder)
    assert img.source["format"] == "tiff-sequence"
    assert img.source["files"] == 12
    assert img.axes == "zyx"
    np.testing.assert_array_equal(_values(img), VOLUME)  # plane_t2 before plane_t10


def test_tiff_glob(tiff_folder):
    img = lp.open_image(str(tiff_folder / "plane_t1*.tif"))
    assert img.source["files"] == 3  # t1, t10, t11
    np.testing.assert_array_equal(_values(img), VOLUME[[1, 10, 11]])


def test_tiff_folder_of_volumes_is_a_time_series(tmp_path):
    import tifffile

    for t in range(3):
        tifffile.imwrite(tmp_path / f"t{t}.tif", VOLUME[:4] + t, imagej=True,
                         metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    img = lp.open_image(tmp_path)
    assert img.axes == "tzyx"
    assert img.scale[1] == 3.0 and img.units[1] == UM
    np.testing.assert_array_equal(np.asarray(img.levels[0][2, 1]), VOLUME[1] + 2)


@pytest.mark.parametrize(
    "written, unit",
    [
        ("micron", UM),
        ("\\u00B5m", UM),  # ImageJ escapes the µ in its description
        ("UM", UM),
        ("nm", "nanometer"),
        ("A", "angstrom"),
        ("pixel", None),
        ("furlong-ish", "furlong-ish"),  # unknown: kept as written
    ],
)
def test_imagej_unit_spellings(tmp_path, written, unit):
    import tifffile

    path = tmp_path / "units.tif"
    tifffile.imwrite(path, VOLUME[:2], imagej=True, resolution=(2, 2),
                     metadata={"axes": "TYX", "unit": written, "finterval": 5.0, "tunit": "sec"})
    img = lp.open_image(path)
    assert img.units == ("second", unit, unit)
    assert img.scale == (5.0, 0.5, 0.5)


def test_tiff_resolution_in_centimeters_is_micrometers(tmp_path):
    import tifffile

    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, VOLUME[0], resolution=(20000, 40000), resolutionunit="CENTIMETER")
    img = lp.open_image(path)
    assert img.scale == (0.25, 0.5) and img.units == (UM, UM)
    tifffile.imwrite(path, VOLUME[0], resolution=(300, 300), resolutionunit="INCH")
    assert lp.open_image(path).units == (None, None)  # screen dpi, not a pixel size


def test_imagej_missing_spacing_is_one_unit(tmp_path):
    """ImageJ writes ``spacing=`` only when it is not 1: the z unit is still the unit."""
    import tifffile

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, VOLUME[:3], imagej=True, resolution=(2, 2),
                     metadata={"axes": "ZYX", "unit": "um"})
    assert "spacing" not in tifffile.TiffFile(path).imagej_metadata
    img = lp.open_image(path)
    assert img.scale == (1.0, 0.5, 0.5)
    assert img.units == (UM, UM, UM)
    # a z unit of its own (ImageJ's ``zunit=``) wins over ``unit=``
    tifffile.imwrite(path, VOLUME[:3], imagej=True, resolution=(2, 2),
                     metadata={"axes": "ZYX", "unit": "um", "spacing": 200.0, "zunit": "nm"})
    img = lp.open_image(path)
    assert img.scale == (200.0, 0.5, 0.5)
    assert img.units == ("nanometer", UM, UM)


def test_imagej_uncalibrated_defaults(tmp_path):
    """No ``unit=``: no unit on any axis; no ``finterval=``: t is 1 with no unit."""
    import tifffile

    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, VOLUME[:4].reshape(2, 2, 64, 80), imagej=True,
                     metadata={"axes": "TZYX"})
    ij = tifffile.TiffFile(path).imagej_metadata
    assert "unit" not in ij and "finterval" not in ij and "spacing" not in ij
    img = lp.open_image(path)
    assert img.axes == "tzyx"
    assert img.scale == (1.0, 1.0, 1.0, 1.0)
    assert img.units == (None, None, None, None)

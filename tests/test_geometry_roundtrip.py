"""One geometry carried everywhere: axes, scale, translate, units and channel names travel
with every source and result, into every exporter and back in through every reader."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from test_export import valid_ome_zarr

import napari_lazyproc as lp
from napari_lazyproc.cli import main

UM = "micrometer"
FORMATS = {"ome-zarr": ".ome.zarr", "ome-zarr-0.5": ".ome.zarr", "zarr": ".zarr",
           "tiff": ".tif", "ome-tiff": ".ome.tif"}
RAW = np.random.default_rng(7).integers(0, 3000, (2, 2, 6, 20, 24), dtype=np.uint16)
SCALE = (1.5, 1.0, 2.0, 0.5, 0.25)
TRANSLATE = (3.0, 0.0, 1.5, -3.25, 10.125)
UNITS = ("second", None, UM, UM, UM)
NAMES = ["DAPI", "GFP"]


def _ome_zarr(path, data, axes: str, scale: dict, units: dict, translate, **extra):
    """An OME-Zarr 0.4 image as ome-zarr-py writes it; the stage position added to each
    dataset's transformations afterwards with zarr, as a user does."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    group = zarr.open_group(path, mode="w", zarr_format=2)
    write_image(data, group, axes=axes, scale_factors=[], fmt=FormatV04(), scale=scale,
                axes_units=units, **extra)
    attrs = group.attrs.asdict()
    for ds in attrs["multiscales"][0]["datasets"]:
        ds["coordinateTransformations"].append(
            {"type": "translation", "translation": [float(t) for t in translate]})
    group.attrs.update(attrs)
    return path


@pytest.fixture
def series(tmp_path):
    """A tczyx series: anisotropic, a non-integer origin, seconds and micrometres, two
    named channels."""
    window = {"start": 0, "end": 3000, "min": 0, "max": 3000}
    omero = {"channels": [{"label": n, "color": c, "window": window}
                          for n, c in zip(NAMES, ("0000FF", "00FF00"), strict=True)]}
    path = _ome_zarr(tmp_path / "series.ome.zarr", RAW, "tczyx",
                     dict(zip("tczyx", SCALE, strict=True)),
                     {a: u for a, u in zip("tczyx", UNITS, strict=True) if u}, TRANSLATE,
                     omero=omero)
    return lp.open_image(path)


def _geometry(x) -> tuple:
    names = x.channel_names if "c" in x.axes else None
    return (x.axes, tuple(x.scale), tuple(x.translate), tuple(x.units),
            list(names) if names else None)


def _export(data, tmp_path, fmt: str, **options):
    version = "0.5" if fmt == "ome-zarr-0.5" else "0.4"
    out = tmp_path / f"out-{fmt}{FORMATS[fmt]}"
    lp.export(data, out, format=fmt.removesuffix("-0.5"), version=version, **options)
    return lp.open_image(out)


def test_the_input_is_read_as_written(series):
    assert _geometry(series) == ("tczyx", SCALE, TRANSLATE, UNITS, NAMES)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("step, expected", [
    ({"op": "gaussian", "sigma": 1.0, "axes": "zyx"},
     ("tczyx", SCALE, TRANSLATE, UNITS, NAMES)),
    # a projection drops its axis, and its voxel size and origin
    ({"op": "project", "axis": "z", "method": "max"},
     ("tcyx", (1.5, 1.0, 0.5, 0.25), (3.0, 0.0, -3.25, 10.125), ("second", None, UM, UM),
      NAMES)),
    # across the channels: no c axis left, no names
    ({"op": "project", "axis": "c", "method": "mean"},
     ("tzyx", (1.5, 2.0, 0.5, 0.25), (3.0, 1.5, -3.25, 10.125), ("second", UM, UM, UM),
      None)),
])
def test_a_result_exports_and_reads_back_its_geometry(series, tmp_path, fmt, step, expected):
    params = {k: v for k, v in step.items() if k != "op"}
    result = lp.apply(step["op"], series, **params)
    assert _geometry(result) == expected
    back = _export(result, tmp_path, fmt)
    assert _geometry(back) == expected
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(result))
    if fmt.startswith("ome-zarr"):  # the names need an omero block the spec accepts
        valid_ome_zarr(Path(back.source["path"]), "0.5" if fmt.endswith("0.5") else "0.4")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_zoom_changes_the_voxel_size_and_it_travels(series, tmp_path, fmt):
    result = lp.apply("zoom", series, zoom=(1.0, 0.5, 0.5), axes="zyx")
    # scipy's zoom maps the corners onto the corners: (n - 1) / (m - 1) per axis
    assert result.scale == pytest.approx((1.5, 1.0, 2.0, 0.5 * 19 / 9, 0.25 * 23 / 11))
    assert result.translate == TRANSLATE and result.channel_names == NAMES
    back = _export(result, tmp_path, fmt)
    assert back.scale == pytest.approx(result.scale, rel=1e-15)
    assert (back.axes, back.translate, back.units, back.channel_names) == (
        "tczyx", TRANSLATE, UNITS, NAMES)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_rotation_moves_the_origin_and_it_travels(series, tmp_path, fmt):
    result = lp.apply("rotate", series, angle=30.0, axes="yx")  # reshape: the whole turn
    assert result.translate == result.translate_from(TRANSLATE)
    assert result.translate[-2] < TRANSLATE[-2]  # the grown plane starts above the input's
    back = _export(result, tmp_path, fmt)
    assert _geometry(back) == _geometry(result)


@pytest.mark.parametrize("fmt", ["zarr", "tiff", "ome-tiff"])
def test_frames_without_a_unit_keep_their_spacing(tmp_path, fmt):
    """A t axis in frames (no unit) spaced 2 apart: OME-TIFF has no unitless time
    increment, so ours comes back from the Description it writes."""
    data = RAW[:, 0, 0]
    source = lp.ops.as_source(data, "tyx", scale=(2.0, 0.5, 0.5), units=(None, UM, UM),
                              translate=(4.0, 0.5, -1.75))
    back = _export(source, tmp_path, fmt)
    assert _geometry(back) == ("tyx", (2.0, 0.5, 0.5), (4.0, 0.5, -1.75), (None, UM, UM),
                               None)


def test_a_chain_of_results_and_levels_keep_the_origin(series, tmp_path):
    one_channel = lp.ops.image_source(series, channel=1)
    assert one_channel.translate == (3.0, 1.5, -3.25, 10.125)
    assert one_channel.channel_names is None  # one channel, no c axis
    chained = lp.apply("threshold", lp.apply("gaussian", one_channel, sigma=1.0), value=900)
    assert chained.translate == (3.0, 1.5, -3.25, 10.125)
    back = _export(chained, tmp_path, "ome-zarr", levels=2)
    assert back.translate == (3.0, 1.5, -3.25, 10.125) and back.scale == SCALE[:1] + SCALE[2:]
    assert back.level_scale(1) == (1.5, 2.0, 1.0, 0.5)


@pytest.mark.parametrize("labels", [False, True])
def test_coarser_ome_zarr_levels_are_placed_where_their_voxels_are(series, tmp_path, labels):
    """A mean of 2 x 2 voxels sits between them (as ome-zarr-py writes it); a picked label
    sits on the first."""
    one = lp.ops.image_source(series, channel=0)
    data = lp.label_global(lp.apply("threshold", one, value=1500)) if labels else \
        lp.apply("gaussian", one, sigma=1.0, axes="zyx")
    back = _export(data, tmp_path, "ome-zarr", levels=3)
    attrs = dict(zarr.open_group(back.source["path"], mode="r").attrs)
    got = [d["coordinateTransformations"] for d in attrs["multiscales"][0]["datasets"]]
    origin = (3.0, 1.5, -3.25, 10.125)
    for k, (scale, translation) in enumerate(got):
        f = 2**k
        assert scale["scale"] == [1.5, 2.0, 0.5 * f, 0.25 * f]
        half = 0.0 if labels else (f - 1) / 2
        assert translation["translation"] == [3.0, 1.5, -3.25 + half * 0.5,
                                              10.125 + half * 0.25]
    assert back.translate == origin


def test_global_labels_carry_the_origin(series, tmp_path):
    mask = lp.apply("threshold", lp.ops.image_source(series, channel=0), value=1500)
    labels = lp.label_global(mask, axes="zyx")
    assert labels.translate == (3.0, 1.5, -3.25, 10.125)
    back = _export(labels, tmp_path, "zarr")
    assert back.translate == labels.translate and back.units == ("second", UM, UM, UM)


# ----------------------------------------------------------------------- files as written
def test_an_ome_tiff_plane_position_is_its_origin(tmp_path):
    """tifffile writes each plane's PositionX/Y/Z (here in nanometres for x: converted)."""
    path = tmp_path / "stage.ome.tif"
    data = RAW[0, 0]
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.25,
        "Plane": {"PositionZ": [1.5 + 2.0 * z for z in range(6)], "PositionY": [-3.25] * 6,
                  "PositionX": [10125.0] * 6, "PositionXUnit": ["nm"] * 6}})
    image = lp.open_image(path)
    assert _geometry(image) == ("zyx", (2.0, 0.5, 0.25), (1.5, -3.25, 10.125), (UM,) * 3,
                                None)


def test_an_imagej_tiff_origin_is_read(tmp_path):
    """ImageJ's origin is the pixel at physical 0: voxel 0 is at minus it."""
    path = tmp_path / "fiji.tif"
    tifffile.imwrite(path, RAW[0, 0], imagej=True, resolution=(1 / 0.25, 1 / 0.5),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um", "xorigin": 4.0,
                               "yorigin": -2.0, "zorigin": 1.5})
    image = lp.open_image(path)
    assert _geometry(image) == ("zyx", (2.0, 0.5, 0.25), (-3.0, 1.0, -1.0), (UM,) * 3, None)


def test_a_folder_of_tiffs_keeps_the_first_files_geometry(tmp_path):
    for t in range(3):
        tifffile.imwrite(tmp_path / f"frame_{t:03d}.ome.tif", RAW[0, :, 0], ome=True,
                         metadata={"axes": "CYX", "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.25,
                                   "Channel": {"Name": NAMES},
                                   "Plane": {"PositionY": [-3.25] * 2, "PositionX": [10.125] * 2,
                                             "PositionYUnit": ["µm"] * 2,
                                             "PositionXUnit": ["µm"] * 2}})
    image = lp.open_image(tmp_path)
    assert _geometry(image) == ("zcyx", (1.0, 1.0, 0.5, 0.25), (0.0, 0.0, -3.25, 10.125),
                                (None, None, UM, UM), NAMES)


# ----------------------------------------------------------------------- napari's side
def test_the_npe2_writer_keeps_a_layers_geometry(tmp_path):
    pytest.importorskip("napari")
    from napari_lazyproc._writer import write_image, write_labels

    meta = {"name": "plain", "scale": (2.0, 0.5, 0.25), "translate": (1.5, -3.25, 10.125),
            "units": ("micrometer",) * 3, "axis_labels": ("z", "y", "x"), "metadata": {}}
    (out,) = write_image(str(tmp_path / "plain.ome.zarr"), RAW[0, 0], meta)
    assert _geometry(lp.open_image(out)) == ("zyx", meta["scale"], meta["translate"],
                                             (UM,) * 3, None)
    # a result layer moved in napari: written where the layer is
    result = lp.apply("threshold", RAW[0, 0], value=1000, data_axes="zyx")
    moved = dict(meta, translate=(0.0, 1.0, 2.5), scale=(1.0, 1.0, 1.0), units=("pixel",) * 3)
    (out,) = write_labels(str(tmp_path / "labels.ome.zarr"), result[...], moved)
    back = lp.open_image(out)
    assert back.translate == (0.0, 1.0, 2.5) and back.units == (None,) * 3


def test_a_layers_export_keeps_its_translate_and_channel_names(tmp_path, series):
    """The widget's export reads the layer through ``layer_source`` (napari-free here)."""
    from napari_lazyproc._layer_data import layer_source, result_layer_data

    result = lp.apply("gaussian", series, sigma=1.0, axes="zyx")
    data, kwargs, _ = result_layer_data(result, "g", contrast_limits=(0, 1))
    assert kwargs["translate"] == list(TRANSLATE)
    layer = SimpleNamespace(data=data, multiscale=False, name="g", **{
        k: kwargs[k] for k in ("axis_labels", "scale", "units", "translate", "metadata")})
    back = _export(layer_source(layer), tmp_path, "ome-zarr")
    assert _geometry(back) == ("tczyx", SCALE, TRANSLATE, UNITS, NAMES)
    plain = SimpleNamespace(data=RAW[0], multiscale=False, name="p",
                            axis_labels=("c", "z", "y", "x"), scale=(1, 2, 0.5, 0.5),
                            translate=(0, 1, 2, 3.5), units=("pixel", UM, UM, UM),
                            metadata={"channel_names": ["a", "b"]})
    back = _export(layer_source(plain), tmp_path, "ome-tiff")
    assert _geometry(back) == ("czyx", (1.0, 2.0, 0.5, 0.5), (0.0, 1.0, 2.0, 3.5),
                               (None, UM, UM, UM), ["a", "b"])


# ----------------------------------------------------------------------- measurements
LABELS = np.zeros((6, 20, 24), np.uint32)
LABELS[1:4, 2:10, 3:15] = 5
LABELS[4:6, 12:20, 0:4] = 9


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_process_measure_gives_physical_units_in_every_format(tmp_path, fmt):
    """The labels a pipeline wrote, read back from the file, measured in micrometres."""
    src = _ome_zarr(tmp_path / "mask.ome.zarr", (LABELS > 0).astype(np.uint8), "zyx",
                    {"z": 2.0, "y": 0.5, "x": 0.25}, dict.fromkeys("zyx", UM),
                    (1.0, 2.0, 3.0))
    out, table = tmp_path / f"labels{FORMATS[fmt]}", tmp_path / "cells.csv"
    assert main(["process", str(src), "-o", str(out), "--format", fmt, "--step",
                 "label:scope=global", "--measure", str(table), "--properties",
                 "label,area,centroid", "--quiet"]) == 0
    got = pd.read_csv(table)
    counts = np.bincount(LABELS.ravel())
    assert got["label"].tolist() == [1, 2]  # scan order: 5 comes first
    np.testing.assert_allclose(got["area"], counts[[5, 9]] * 2.0 * 0.5 * 0.25, rtol=1e-12)
    zz = np.nonzero(LABELS == 5)[0]
    assert got["centroid-0"][0] == pytest.approx(zz.mean() * 2.0)  # from voxel 0, as skimage
    units = pd.read_json(f"{table}.units.json", typ="series")["units"]
    assert units["area"] == "micrometer**3" and units["centroid-0"] == UM


def test_measure_in_pixels_says_pixel(tmp_path):
    src = tmp_path / "plain.zarr"
    zarr.create_array(src, shape=LABELS.shape, chunks=(2, 10, 12), dtype=LABELS.dtype)[:] = \
        LABELS
    table = tmp_path / "cells.csv"
    assert main(["process", str(src), "--measure", str(table), "--properties", "label,area",
                 "--quiet"]) == 0
    assert pd.read_csv(table)["area"].tolist() == np.bincount(LABELS.ravel())[[5, 9]].tolist()
    units = pd.read_json(f"{table}.units.json", typ="series")["units"]
    assert units["area"] == "pixel**3"

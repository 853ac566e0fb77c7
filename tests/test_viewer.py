"""A real napari viewer under Xvfb opens every format lazily with the right scale."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import VOLUME

napari = pytest.importorskip("napari")


#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


@pytest.mark.parametrize("fixture, scale", [
    ("zarr_v3_array", (1.0, 1.0, 1.0)),
    ("ome_zarr_v04", (2.0, 0.5, 0.5)),
    ("hdf5_file", (2.0, 0.5, 0.5)),
    ("bigtiff_tiled", (1.0, 1.0, 1.0)),
    ("ome_tiff_pyramid", (1.5, 0.25, 0.25)),
    ("imagej_hyperstack", (10.0, 2.5, 0.3, 0.3)),
    ("bdv_file", (1.0, 2.0, 0.4, 0.4)),
    ("tiff_folder", (1.0, 1.0, 1.0)),
])
def test_viewer_open_gives_layers_with_scale(make_napari_viewer, request, fixture, scale):
    viewer = make_napari_viewer()
    path = request.getfixturevalue(fixture)
    layers = viewer.open(str(path), plugin="napari-lazyproc")
    assert layers
    image = layers[0]
    assert tuple(image.scale) == pytest.approx(scale)
    assert not isinstance(image.data, np.ndarray)  # lazy, not loaded
    if fixture == "ome_zarr_v04":
        assert [type(lyr).__name__ for lyr in layers] == ["Image", "Labels"]
        assert tuple(str(u) for u in image.units) == ("micrometer",) * 3
        assert image.multiscale
    if fixture == "ome_tiff_pyramid":
        assert [lyr.name for lyr in layers] == ["pyramid · DAPI", "pyramid · GFP"]


def test_viewer_shows_the_plane_values(make_napari_viewer, qtbot, zarr_v3_array):
    from napari_lazyproc._qt.live_layers import live_states

    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(zarr_v3_array), plugin="napari-lazyproc")
    viewer.dims.set_current_step(0, 7)
    # read in the background (never on napari's thread), shown when it lands
    qtbot.waitUntil(lambda: layer.loaded and not any(s.busy for s in live_states(layer)),
                    timeout=20000)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), VOLUME[7])


def test_broken_file_in_viewer_is_a_clear_error(make_napari_viewer, tmp_path):
    path = tmp_path / "broken.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("nope")
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="broken.zarr.*not valid JSON"):
        viewer.open(str(path), plugin="napari-lazyproc")


def _screenshot_is_not_blank(shot: np.ndarray) -> None:
    rgb = shot[..., :3].astype(float)
    assert rgb.std() > 5, "the screenshot is blank"
    assert (rgb.max(axis=-1) > 100).mean() > 0.001, "no bright nuclei on screen"


def _landed(qtbot, layer) -> None:
    """Until the layer's planes, read in the background (never on napari's thread), are
    on screen."""
    from napari_lazyproc._qt.live_layers import live_states

    qtbot.waitUntil(lambda: layer.loaded and not any(s.busy for s in live_states(layer)),
                    timeout=30000)
    qtbot.wait(50)


def test_sample_data_screenshot(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open_sample("napari-lazyproc", "lightsheet_small")
    (layer,) = layers
    assert layer.data.shape == (10, 64, 256, 256)
    assert [str(u) for u in layer.units] == ["second", "micrometer", "micrometer", "micrometer"]
    viewer.dims.set_current_step(1, 32)
    viewer.reset_view()
    _landed(qtbot, layer)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    _screenshot_is_not_blank(shot)


def test_large_sample_opens_without_computing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open_sample("napari-lazyproc", "lightsheet")
    assert layer.multiscale
    assert layer.data[0].shape == (100, 256, 2048, 2048)
    assert layer.data[0].nbytes > 200e9
    assert tuple(layer.contrast_limits) == (100.0, 1360.0)
    viewer.dims.set_current_step(0, 50)
    viewer.dims.set_current_step(1, 128)
    viewer.reset_view()
    _landed(qtbot, layer)
    _screenshot_is_not_blank(viewer.screenshot(canvas_only=True, flash=False))


def test_lazy_result_layer_shows_exact_values(make_napari_viewer, zarr_v3_array):
    """A gaussian result added as a layer: the displayed plane equals scipy's on the whole."""
    from scipy import ndimage as ndi

    import napari_lazyproc as lp
    from napari_lazyproc._layer_data import result_layer_data

    viewer = make_napari_viewer()
    res = lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=1.5)
    data, kwargs, kind = result_layer_data(res, "gaussian")
    layer = viewer.add_image(data, **kwargs)
    viewer.dims.set_current_step(0, 6)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(VOLUME, 1.5)[6])
    assert layer.metadata["pipeline"][0]["op"] == "gaussian"


@pytest.mark.parametrize("name, module", [("cluster.nd2", "nd2"),
                                          ("CellDivision_T3_Z5_CH2_X240_Y170.czi", "czifile")])
def test_viewer_opens_a_microscope_file(make_napari_viewer, qtbot, name, module):
    """One layer per channel, named by the file's channel names, showing the values the
    vendor's own reader reads, at the voxel size it records."""
    pytest.importorskip(module)

    from peer_files import sample

    import napari_lazyproc as lp
    from napari_lazyproc._qt.live_layers import live_states

    path = sample(name)  # from a peer's sdist, or LAZYPROC_VENDOR_SAMPLES (SOURCES.md)
    with lp.open_image(path) as img:
        expected = np.asarray(img.channel_levels(1)[0][(1,) * (img.ndim - 3)])
        names, scale = img.channel_names, img.scale
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-lazyproc")
    assert [lyr.name.split(" · ")[-1] for lyr in layers] == names
    c = img.axes.index("c")
    assert tuple(layers[1].scale) == pytest.approx(scale[:c] + scale[c + 1:])
    for axis in range(img.ndim - 3):
        viewer.dims.set_current_step(axis, 1)
    # the plane is read in the background (never on napari's thread): wait for it
    layer = layers[1]
    qtbot.waitUntil(lambda: layer.loaded and not any(s.busy for s in live_states(layer)),
                    timeout=20000)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), expected)

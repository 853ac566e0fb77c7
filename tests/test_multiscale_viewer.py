"""Multiscale layers in a real napari viewer under Xvfb: 3D and zoomed-out views read and
compute only the level on screen, in the background; the widget works on pyramids."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import zarr
from conftest import write_zarr
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

from napari_lazyproc._qt.live_layers import live_states  # noqa: E402
from napari_lazyproc._qt.widget import LazyProcessingWidget  # noqa: E402
from napari_lazyproc.ops import CACHE  # noqa: E402

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


def settled(qtbot, *layers) -> None:
    """Until no level of ``layers`` is computing and the queued refreshes have run."""
    states = [s for layer in layers for s in live_states(layer)]
    qtbot.waitUntil(lambda: not any(s.busy for s in states), timeout=30000)
    qtbot.wait(50)


def _gaussian_layer(viewer, raw, axes="zyx", sigma=1.0):
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing")
    widget.input.value = raw
    widget.operation.value = "gaussian"
    widget.axes.value = axes
    widget.lengths.value = "pixel"
    widget.set_params(sigma=sigma)
    return widget, widget.add_layer()


def _coarsest_gaussian(level: np.ndarray, t: int) -> np.ndarray:
    return ndi.gaussian_filter(level[t], (1.0, 0.25, 0.25))


def test_3d_view_computes_and_reads_only_the_coarsest_level(
        make_napari_viewer, qtbot, ome_pyramid, ome_pyramid_levels, zarr_reads):
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    widget, layer = _gaussian_layer(viewer, raw)
    assert layer.multiscale and len(layer.data) == 3
    assert layer.metadata["levels"].startswith("level 0 is the exact result")
    settled(qtbot, layer, raw)
    CACHE.clear()  # count every chunk the 3D view needs
    zarr_reads.keys.clear()
    raw.visible = False  # count the result's reads; raw is checked below

    spinner = []  # what the layer list is told: loading (False) then loaded (True)
    original = layer._slicing_state._set_loaded
    layer._slicing_state._set_loaded = lambda value: (spinner.append(value), original(value))
    viewer.dims.ndisplay = 3
    # the toggle returned before the volume was computed: a placeholder is on screen,
    # and the layer list shows the layer loading (napari's spinner) until it lands
    assert not np.asarray(layer._slice.image.raw).any()
    settled(qtbot, layer, raw)
    assert spinner[0] is False and spinner[-1] is True and layer.loaded
    t = int(viewer.dims.current_step[0])
    shown = np.asarray(layer._slice.image.raw)
    np.testing.assert_array_equal(shown, _coarsest_gaussian(ome_pyramid_levels[2], t))
    keys = zarr_reads.chunk_keys()
    assert keys and all(k.startswith("s2/") for k in keys), sorted(set(keys))
    # the coarsest volume of the time point on screen (4 z by 2 x chunks), and of the
    # next one, computed ahead while idle; each chunk read once
    assert len(keys) == len(set(keys))
    assert set(keys) == {f"s2/{tt}/{z}/0/{x}" for tt in (0, 1) for z in range(4) for x in (0, 1)}
    raw.visible = True
    settled(qtbot, raw)
    np.testing.assert_array_equal(np.asarray(raw._slice.image.raw), ome_pyramid_levels[2][t])


def test_zoomed_out_2d_reads_only_the_displayed_level(
        make_napari_viewer, qtbot, ome_pyramid, ome_pyramid_levels, zarr_reads):
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    widget, layer = _gaussian_layer(viewer, raw, axes="yx", sigma=2.0)
    raw.visible = False
    layer.locked_data_level = 1  # what napari picks when the view is zoomed out
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 2)
    settled(qtbot, layer)
    CACHE.clear()
    zarr_reads.keys.clear()
    viewer.dims.set_current_step(1, 9)
    settled(qtbot, layer)
    expected = ndi.gaussian_filter(ome_pyramid_levels[1][1, 9], 1.0)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), expected)
    keys = set(zarr_reads.chunk_keys())
    assert keys and all(k.split("/")[0] in ("s1", "s2") for k in keys), sorted(keys)
    # s2 only for napari's thumbnail (it always shows the coarsest level); the view
    # itself: the plane's 2 x 3 yx chunks of level 1 in z-chunk 2 (plane 9, halo 0, and
    # planes 8 and 10 computed ahead)
    assert {k for k in keys if k.startswith("s1/")} == {
        f"s1/1/2/{y}/{x}" for y in range(2) for x in range(3)}


def test_widget_live_update_chain_and_export_on_a_pyramid(
        make_napari_viewer, qtbot, ome_pyramid, ome_pyramid_levels, tmp_path):
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    widget, layer = _gaussian_layer(viewer, raw)
    widget.set_params(sigma=2.0)  # live update: every level changes, the layer stays
    assert [s.result.params["sigma"] for s in live_states(layer)] == [
        (2.0, 2.0, 2.0), (2.0, 1.0, 1.0), (2.0, 0.5, 0.5)]
    # a step chained on the multiscale result is a pyramid too
    widget.input.value = layer
    widget.operation.value = "threshold_otsu"
    mask = widget.add_layer()
    assert mask.multiscale and len(mask.data) == 3
    thresholds = {s.result.prepared()["threshold"] for s in live_states(mask)}
    assert len(thresholds) == 1
    # export and File > Save write level 0, exact
    thread = widget.export_layer(layer, str(tmp_path / "g.ome.zarr"))
    thread.join(60)
    exact = np.stack([ndi.gaussian_filter(v, 2.0) for v in ome_pyramid_levels[0]])
    np.testing.assert_array_equal(np.asarray(zarr.open_array(tmp_path / "g.ome.zarr" / "0")),
                                  exact)
    from napari_lazyproc._writer import write_image

    meta = {"name": layer.name, "scale": layer.scale, "axis_labels": layer.axis_labels,
            "units": layer.units, "metadata": layer.metadata}
    (saved,) = write_image(str(tmp_path / "saved.ome.zarr"), list(layer.data), meta)
    np.testing.assert_array_equal(np.asarray(zarr.open_array(f"{saved}/0")), exact)


def test_large_single_scale_file_opens_as_a_pyramid_and_3d_reads_in_the_background(
        make_napari_viewer, qtbot, tmp_path, zarr_reads):
    data = np.random.default_rng(1).integers(0, 1000, size=(16, 2100, 300), dtype=np.uint16)
    path = write_zarr(tmp_path / "big.zarr", data, (4, 525, 300), dimension_names=list("zyx"))
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    assert raw.multiscale and [tuple(s) for s in raw.level_shapes] == [
        (16, 2100, 300), (16, 1050, 300), (16, 525, 300)]
    viewer.dims.ndisplay = 3
    # the toggle returned at once, with a placeholder; the volume is computed meanwhile
    assert not np.asarray(raw._slice.image.raw).any()
    settled(qtbot, raw)
    mean = np.rint(data.reshape(16, 525, 4, 300).astype(np.float64).mean(axis=2))
    np.testing.assert_array_equal(np.asarray(raw._slice.image.raw), mean.astype(np.uint16))
    # a filter of that layer computes from the coarse volume the layer has shown (in the
    # chunk cache: the file is not read again), never from the layer's placeholders
    zarr_reads.keys.clear()
    widget, layer = _gaussian_layer(viewer, raw, axes="zyx", sigma=2.0)
    assert [tuple(s) for s in layer.level_shapes] == [tuple(s) for s in raw.level_shapes]
    settled(qtbot, layer)
    assert zarr_reads.chunk_keys() == []
    np.testing.assert_array_equal(
        np.asarray(layer._slice.image.raw),
        ndi.gaussian_filter(mean.astype(np.uint16), (2.0, 0.5, 2.0)))


SAMPLE_3D = textwrap.dedent("""
    import time
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_lazyproc._qt.live_layers import live_states
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    viewer = napari.Viewer(show=True)
    (raw,) = viewer.open_sample("napari-lazyproc", "lightsheet")
    viewer.dims.set_current_step(0, 3)
    widget = LazyProcessingWidget(viewer)
    widget.axes.value = "zyx"
    widget.lengths.value = "pixel"
    widget.set_params(sigma=2.0)
    layer = widget.add_layer()
    viewer.dims.ndisplay = 3
    states = live_states(layer) + live_states(raw)
    start = time.monotonic()
    while time.monotonic() - start < 240:
        QApplication.processEvents()
        if not any(s.busy for s in states) and live_states(layer)[-1].n_computed:
            break
        time.sleep(0.02)
    for _ in range(10):
        QApplication.processEvents()
    shown = np.asarray(layer._slice.image.raw)
    expected = np.asarray(layer.data[-1].result[3, 100:110, 60:70, 60:70])
    print("SHAPES", shown.shape, np.asarray(raw._slice.image.raw).shape)
    print("EQUAL", np.array_equal(shown[100:110, 60:70, 60:70], expected))
    print("BRIGHT", float(shown.max()) > 400)
    viewer.close()
""")


@pytest.mark.slow
def test_sample_with_a_3d_gaussian_survives_3d(tmp_path):
    """The 200 GB sample, a Gaussian over zyx, then 3D: the filtered volume is the coarse
    level (256 x 256 x 256), never the full 256 x 2048 x 2048 that once aborted napari.
    In a subprocess, so an abort fails this test and not the suite."""
    result = subprocess.run([sys.executable, "-c", SAMPLE_3D], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SHAPES (256, 256, 256) (256, 256, 256)" in result.stdout, result.stdout
    assert "EQUAL True" in result.stdout and "BRIGHT True" in result.stdout, result.stdout


def test_a_large_plane_zoomed_out_shows_its_coarsest_level_once_computed(
        make_napari_viewer, qtbot, tmp_path):
    """A 2D layer: napari keeps its coarsest level once read (thumbnail, zoomed-out view);
    the values that land later must replace the placeholder read first."""
    from napari_lazyproc.io import virtual_factors

    data = np.random.default_rng(2).integers(0, 1000, size=(8200, 600), dtype=np.uint16)
    path = write_zarr(tmp_path / "plane.zarr", data, (1025, 600), dimension_names=["y", "x"])
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    fy, fx = virtual_factors(data.shape, "yx")[-1]
    assert raw.multiscale and tuple(raw.level_shapes[-1]) == (-(-8200 // fy), -(-600 // fx))
    raw.locked_data_level = len(raw.level_shapes) - 1  # zoomed out
    settled(qtbot, raw)
    padded = np.pad(data.astype(np.float64), ((0, -8200 % fy), (0, -600 % fx)))
    sums = padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx).sum(axis=(1, 3))
    counts = np.pad(np.ones(data.shape), ((0, -8200 % fy), (0, -600 % fx))).reshape(
        sums.shape[0], fy, sums.shape[1], fx).sum(axis=(1, 3))
    coarse = np.rint(sums / counts).astype(np.uint16)
    np.testing.assert_array_equal(np.asarray(raw._slice.image.raw), coarse)
    # a filtered layer of it, zoomed out from the start: its values replace the
    # placeholder napari read while the layer was being built
    viewer.scene.camera.zoom = 0.01  # far out: napari picks the coarsest level for new layers
    widget, layer = _gaussian_layer(viewer, raw, axes="yx", sigma=16.0)
    qtbot.wait(100)
    settled(qtbot, layer)
    assert layer.data_level == len(layer.level_shapes) - 1
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(coarse, (16.0 / fy, 16.0 / fx)))

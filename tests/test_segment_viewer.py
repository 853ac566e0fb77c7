"""The Segment dock widget in a real napari viewer under Xvfb: preview while browsing,
then the stitched whole volume as a Labels layer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari_lazyproc._qt.live_layers import live_states  # noqa: E402
from napari_lazyproc._qt.segment import PREVIEW_SUFFIX, SegmentWidget  # noqa: E402
from napari_lazyproc.synthetic_nuclei import touching_nuclei  # noqa: E402

IMAGE = touching_nuclei((48, 128, 128), seed=11)[0]


def shown(qtbot, layer) -> np.ndarray:
    """The layer's displayed slice once its background computation has landed."""
    states = live_states(layer)
    assert states, "not a live layer"
    qtbot.waitUntil(lambda: not any(s.busy for s in states), timeout=30000)
    qtbot.wait(50)  # the refresh queued on the main thread
    return np.asarray(layer._slice.image.raw)


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(IMAGE, name="nuclei", scale=(2.0, 0.5, 0.5))
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    widget.block.value = 64
    return widget


def test_preview_while_browsing_labels_appear_ids_stable(widget, qtbot):
    viewer = widget.viewer
    assert widget.image.value is viewer.layers["nuclei"]
    assert "watershed" in widget.method.choices
    assert [w.label for w in widget.params] == ["sigma", "threshold", "min_distance"]
    viewer.dims.set_point(0, 20 * 2.0)  # plane 20
    main = threading.get_ident()
    seen = []
    widget.preview.value = True
    layer = widget.preview_layer
    assert layer.name == "nuclei" + PREVIEW_SUFFIX and layer.metadata["preview"] is True
    preview = live_states(layer)[0].result
    assert preview.is_preview
    original = preview.block_labels

    def spy(index, cancel=None):
        seen.append(threading.get_ident())
        return original(index, cancel)

    preview.block_labels = spy
    first = shown(qtbot, layer).copy()
    assert first.shape == IMAGE.shape[1:] and len(np.unique(first)) > 20  # labels appear
    np.testing.assert_array_equal(first, np.asarray(preview[20]))
    assert seen and main not in seen  # computed in the background, never on napari's thread
    # browse: another plane, then back; and pan (a zoomed camera): the same ids
    viewer.dims.set_point(0, 30 * 2.0)
    other = shown(qtbot, layer)
    assert len(np.unique(other)) > 20 and not np.array_equal(other, first)
    viewer.dims.set_point(0, 20 * 2.0)
    np.testing.assert_array_equal(shown(qtbot, layer), first)
    viewer.scene.camera.zoom *= 3
    viewer.scene.camera.center = (0, 40.0, 50.0)
    np.testing.assert_array_equal(shown(qtbot, layer), first)
    # a parameter changed: the preview follows, same layer
    widget.diameter.value = 16.0
    assert widget.preview_layer is layer
    assert live_states(layer)[0].result is not preview
    # the faster look: each plane in 2D
    widget.preview_mode.value = "planes (2D, fast)"
    flat = shown(qtbot, layer)
    assert live_states(layer)[0].result.steps[-1]["axes"] == "yx"
    assert len(np.unique(flat)) > 20
    widget.preview.value = False
    assert layer not in viewer.layers


def test_segment_whole_volume_gives_a_labels_layer(widget, qtbot):
    job = widget.segment_whole()
    assert job is not None and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.outcome == "done", job.message
    layer = widget.labels_layer
    assert isinstance(layer, napari.layers.Labels)
    assert layer.metadata["pipeline"][-1]["op"] == "segment"
    n = layer.metadata["n_labels"]
    assert f"({n} objects)" in widget.status.value
    data = layer.data if not layer.multiscale else layer.data[0]
    full = np.asarray(data[:, :, :])
    assert full.max() == n and len(np.unique(full)) == n + 1
    np.testing.assert_array_equal(layer.scale, (2.0, 0.5, 0.5))


def test_cancel_keeps_nothing(widget, qtbot):
    job = widget.segment_whole()
    widget.cancel()
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.outcome == "cancelled"
    assert widget.labels_layer is None
    assert [layer.name for layer in widget.viewer.layers] == ["nuclei"]

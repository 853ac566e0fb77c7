"""The Segment dock widget in a real napari viewer under Xvfb: preview while browsing,
then the stitched whole volume as a Labels layer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari_lazyproc._qt.live_layers import live_states  # noqa: E402
from napari_lazyproc._qt.segment import (  # noqa: E402
    PREVIEW_MODES,
    PREVIEW_SUFFIX,
    SegmentWidget,
)
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
    widget.preview_mode.value = "3D blocks"
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


def test_the_plane_look_shows_first_then_the_3d_preview_replaces_it(widget, qtbot):
    viewer = widget.viewer
    assert widget.preview_mode.value == PREVIEW_MODES[0]  # the default
    viewer.dims.set_point(0, 20 * 2.0)
    widget.preview.value = True
    layer = widget.preview_layer
    live = live_states(layer)[0].result
    job = live.job
    look = np.asarray(job.plane_preview[20])
    # the plane look lands first (marked so), then the 3D preview on its own, ids kept
    qtbot.waitUntil(lambda: np.array_equal(np.asarray(layer._slice.image.raw), look)
                    or widget.showing.value == "3D preview", timeout=30000)
    qtbot.waitUntil(lambda: widget.showing.value == "3D preview", timeout=60000)
    assert layer.metadata["showing"] == "3D preview"
    final = shown(qtbot, layer)
    np.testing.assert_array_equal(final, live.read((slice(20, 21),))[0])
    ids = set(np.unique(final)) - {0}
    assert len(ids & set(np.unique(look))) >= 0.8 * len(ids)
    # the next plane is in the same 3D block: shown at once, no plane look
    viewer.dims.set_point(0, 21 * 2.0)
    assert live.showing((slice(21, 22),)) == "3D"
    np.testing.assert_array_equal(shown(qtbot, layer), live.read((slice(21, 22),))[0])
    widget.preview.value = False
    assert live.closed and widget.showing.value == ""


@pytest.mark.slow  # starts a local dask cluster of two worker processes
def test_segment_whole_volume_on_a_local_dask_cluster(widget, qtbot, tmp_path):
    widget.run_on.where.value = "local"
    widget.run_on.workers.value = 2
    assert not widget.run_on.workers.native.isHidden()  # the workers asked, no address
    assert widget.run_on.address.native.isHidden()
    widget.work_folder.value = str(tmp_path / "work")
    job = widget.segment_whole()
    assert "local dask cluster of 2 workers" in job.title
    qtbot.waitUntil(lambda: job.finished, timeout=120000)
    assert job.outcome == "done", job.message
    data = widget.labels_layer.data
    there = np.asarray((data[0] if widget.labels_layer.multiscale else data)[:, :, :])
    here = np.asarray(widget.job().run())
    np.testing.assert_array_equal(there, here)
    assert (tmp_path / "work").is_dir()  # the blocks were kept there, for a resume
    # a scheduler without an address is refused before anything starts
    widget.run_on.where.value = "scheduler"
    assert widget.segment_whole() is None

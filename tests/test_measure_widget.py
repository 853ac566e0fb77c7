"""The "Measure" panel in a real napari viewer under Xvfb: features, hover, points, saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from skimage.measure import regionprops_table

napari = pytest.importorskip("napari")

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_lazyproc._qt.jobs import label_whole_volume  # noqa: E402
from napari_lazyproc._qt.measure import MeasurePanel  # noqa: E402
from napari_lazyproc.measure import parquet_available  # noqa: E402

RNG = np.random.default_rng(8)
LABELS = ndi.label(ndi.gaussian_filter(RNG.random((16, 64, 72)), 2) > 0.52)[0].astype(np.uint32)
IMAGE = RNG.integers(0, 1000, LABELS.shape).astype(np.uint16)


@pytest.fixture
def notes():
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


@pytest.fixture
def panel(make_napari_viewer):
    """The Measure dock widget, over a Labels layer (scaled) and an image."""
    viewer = make_napari_viewer()
    viewer.add_image(IMAGE, name="raw", scale=(2.0, 0.5, 0.5))
    viewer.add_labels(LABELS, name="cells", scale=(2.0, 0.5, 0.5))
    panel = MeasurePanel(viewer)
    viewer.window.add_dock_widget(panel, name="Measure")
    return panel


def test_measure_is_its_own_dock_widget_from_the_manifest(make_napari_viewer):
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-lazyproc", "Measure")
    assert isinstance(widget, MeasurePanel) and widget.measure_button.text == "Measure"
    menu = get_app_model().menus.get_menu("napari/layers/measure")
    assert "napari-lazyproc.measure" in [getattr(i, "command", i).id for i in menu
                                         if hasattr(i, "command")]


def test_measure_sets_features_hover_and_points(panel, qtbot):
    viewer = panel.viewer
    cells = viewer.layers["cells"]
    assert panel.labels.value is cells and panel.image.value is None
    panel.image.value = viewer.layers["raw"]
    panel.properties.value = ["label", "area", "centroid", "bbox", "intensity_mean"]
    panel.points.value = True
    job = panel.measure()
    assert job is not None and panel.cancel_button.enabled
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "done", job.message
    props = tuple(panel.properties.value)  # in the list's order
    ref = pd.DataFrame(regionprops_table(LABELS, IMAGE, properties=props))
    features = cells.features
    assert list(features.columns) == ["index", *ref.columns]
    pd.testing.assert_frame_equal(features.drop(columns="index"), ref, check_dtype=False,
                                  rtol=1e-9)
    np.testing.assert_array_equal(features["index"], ref["label"])
    assert f"({len(ref)} rows)" in panel.status.value
    # hovering an object shows its row in the status bar (napari looks up "index")
    z, y, x = np.argwhere(LABELS == 3)[0]
    viewer.dims.set_point(0, z * 2.0)  # the plane of that voxel on screen (z scale 2)
    status = cells._get_properties((z, y, x))
    assert "label: 3" in status and f"area: {ref.area[2]:g}" in status
    # the centroids, as points over the objects, coloured by a column
    points = viewer.layers["cells · centroids"]
    assert isinstance(points, napari.layers.Points) and len(points.data) == len(ref)
    np.testing.assert_allclose(points.data[:, 1], ref["centroid-1"])  # in voxels: no spacing
    np.testing.assert_array_equal(points.scale, cells.scale)
    panel.color_by.value = "intensity_mean"
    colors = points.face_color
    assert len({tuple(c) for c in colors.round(3)}) > 3  # a colormap, not one colour


def test_save_table_csv_and_parquet(panel, qtbot, tmp_path, notes):
    assert panel.save_table(str(tmp_path / "early.csv")) is False  # nothing measured yet
    job = panel.measure()
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert panel.save_button.enabled
    assert panel.save_table(str(tmp_path / "cells.csv"))
    back = pd.read_csv(tmp_path / "cells.csv")
    pd.testing.assert_frame_equal(back, panel.table, check_dtype=False)
    ok = panel.save_table(str(tmp_path / "cells.parquet"))
    if parquet_available():
        assert ok and len(pd.read_parquet(tmp_path / "cells.parquet")) == len(back)
    else:
        assert not ok and "needs pyarrow" in notes[-1].message
        assert "pyarrow" in panel.save_button.tooltip


def test_bad_choice_is_a_notification_and_cancel_keeps_nothing(panel, qtbot, notes,
                                                               monkeypatch):
    from napari_lazyproc.measure import _measure

    panel.properties.value = ["label", "intensity_mean"]
    panel.image.value = None
    job = panel.measure()  # intensity properties are dropped without an image
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert list(panel.table.columns) == ["label"]
    viewer = panel.viewer
    viewer.add_image(IMAGE[:, :10], name="small")
    panel.image.value = viewer.layers["small"]
    panel.properties.value = ["label", "area"]
    assert panel.measure() is None
    assert "same shape" in notes[-1].message and notes[-1].severity == "error"
    # cancel: a region per plane, cancelled at once; the features stay as they were
    monkeypatch.setattr(_measure, "REGION_VOXELS", 64 * 72)
    panel.image.value = None
    before = viewer.layers["cells"].features.copy()
    job = panel.measure()
    panel.cancel()
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "cancelled"
    pd.testing.assert_frame_equal(viewer.layers["cells"].features, before)
    assert "cancelled" in panel.status.value
    assert panel.measure_button.enabled and not panel.cancel_button.enabled


def test_measure_the_labels_of_label_whole_volume(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    mask = viewer.add_labels((LABELS > 0).astype(np.uint8), name="mask")
    raw = viewer.add_image(IMAGE, name="raw")
    panel = MeasurePanel(viewer)
    viewer.window.add_dock_widget(panel, name="Measure")
    job = label_whole_volume(viewer, mask, axes="zyx")  # what "Label whole volume" runs
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    labels = viewer.layers[-1]
    assert panel.labels.value is labels  # the newest Labels layer
    panel.image.value = raw
    panel.properties.value = ["label", "area", "intensity_max"]
    job = panel.measure()
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "done", job.message
    values = np.asarray(labels.data[0][:]) if labels.multiscale else np.asarray(labels.data[:])
    ref = pd.DataFrame(regionprops_table(values, IMAGE, properties=("label", "area",
                                                                    "intensity_max")))
    pd.testing.assert_frame_equal(labels.features.drop(columns="index"), ref,
                                  check_dtype=False)


def test_a_time_series_shows_the_rows_of_the_frame_on_screen(make_napari_viewer, qtbot):
    """napari looks a label up by value, one row per label: for a t column the features
    hold the rows of the time point shown, and follow the t slider."""
    series = np.stack([LABELS, np.roll(LABELS, 5, axis=2) * (LABELS[..., ::-1] > 0)])
    viewer = make_napari_viewer()
    cells = viewer.add_labels(series, name="cells")
    panel = MeasurePanel(viewer)
    panel.labels.value = cells
    panel.properties.value = ["label", "area"]
    job = panel.measure()
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "done", job.message
    whole = cells.metadata["measurements"]
    assert sorted(set(whole["t"])) == [0, 1]
    for t in (1, 0):
        viewer.dims.set_point(0, t)
        ref = pd.DataFrame(regionprops_table(series[t], properties=("label", "area")))
        np.testing.assert_array_equal(cells.features["label"], ref["label"])
        np.testing.assert_array_equal(cells.features["area"], ref["area"])
        assert (cells.features["t"] == t).all()

"""The dock widget in a real napari viewer under Xvfb: values, laziness, live update, jobs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import zarr
from conftest import VOLUME, write_zarr
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

from napari.utils.notifications import notification_manager  # noqa: E402

import napari_lazyproc as lp  # noqa: E402
from napari_lazyproc import gpu_available  # noqa: E402
from napari_lazyproc._live import LiveArray  # noqa: E402
from napari_lazyproc._qt.live_layers import live_states  # noqa: E402
from napari_lazyproc._qt.widget import LazyProcessingWidget  # noqa: E402

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


TALL = np.random.default_rng(7).integers(0, 4000, size=(40, 64, 80), dtype=np.uint16)


@pytest.fixture
def tall_zarr(tmp_path):
    return write_zarr(tmp_path / "tall.zarr", TALL, (4, 32, 32), dimension_names=["z", "y", "x"])


@pytest.fixture
def notes():
    """Every napari notification shown during the test."""
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


def _digest(path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def shown(qtbot, layer) -> np.ndarray:
    """The layer's displayed slice once its background computation has landed."""
    states = live_states(layer)
    assert states, "not a live layer"
    qtbot.waitUntil(lambda: not any(s.busy for s in states), timeout=20000)
    qtbot.wait(50)  # the refresh queued on the main thread
    return np.asarray(layer._slice.image.raw)


def make(viewer, qtbot) -> LazyProcessingWidget:
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing")
    return widget


def test_gaussian_layer_shows_scipy_values_and_reads_only_the_plane(
        make_napari_viewer, qtbot, tall_zarr, zarr_reads, notes):
    viewer = make_napari_viewer()
    before = _digest(tall_zarr)
    (raw,) = viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    assert widget.input.value is raw
    assert widget.axes.value == "zyx"  # a volume filters in 3D by default
    widget.operation.value = "gaussian"
    widget.set_params(sigma=1.0)
    zarr_reads.keys.clear()
    first = int(viewer.dims.current_step[0])
    layer = widget.add_layer()
    assert isinstance(layer, napari.layers.Image) and isinstance(layer.data, LiveArray)
    assert layer.name == "tall · gaussian σ=1"
    raw.visible = False  # count only what the lazy layer reads
    viewer.dims.set_current_step(0, 30)
    expected = ndi.gaussian_filter(TALL, 1.0)
    np.testing.assert_array_equal(shown(qtbot, layer), expected[30])

    # reads: the chunks of the contrast sample (middle plane) and of plane 30, each +- halo 4
    z_chunks = {int(k.split("/")[-3]) for k in zarr_reads.chunk_keys()}
    # (and perhaps of the planes next to them, computed ahead while idle)
    allowed = set(range(first - 5, first + 6)) | set(range(25, 36))
    assert {z // 4 for z in range(26, 35)} <= z_chunks <= {z // 4 for z in allowed}
    assert 0 not in z_chunks and 9 not in z_chunks
    assert max(zarr_reads.keys.values()) == 1  # each chunk read once (cache)
    assert not [n for n in notes if n.severity >= "warning"]
    assert _digest(tall_zarr) == before  # the input is never written


def test_live_update_changes_the_same_layer(make_napari_viewer, qtbot, tall_zarr):
    viewer = make_napari_viewer()
    viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    widget.axes.value = "yx"
    layer = widget.add_layer()
    viewer.dims.set_current_step(0, 12)
    shown(qtbot, layer)
    n_layers = len(viewer.layers)
    widget.params["sigma"].value = 2.5  # what moving the spin box does
    assert len(viewer.layers) == n_layers
    assert widget.live_layer is layer
    assert layer.name == "tall · gaussian σ=2.5"
    np.testing.assert_array_equal(shown(qtbot, layer),
                                  ndi.gaussian_filter(TALL[12], 2.5))
    assert layer.metadata["pipeline"][-1]["sigma"] == [2.5, 2.5]
    assert layer.data.state.n_computed == 1  # only the plane on screen was asked for
    assert layer.data.state.n_computed_ahead <= 2  # and perhaps z - 1 and z + 1


def test_stale_work_is_dropped(make_napari_viewer, qtbot, tall_zarr):
    viewer = make_napari_viewer()
    viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    layer = widget.add_layer()
    old_state = layer.data.state
    for z in range(0, 40, 3):  # scrolling fast: only the last plane needs computing
        viewer.dims.set_current_step(0, z)
    for s in (1.5, 2.0, 3.0):  # and dragging the slider
        widget.params["sigma"].value = s
    qtbot.waitUntil(lambda: not widget._param_edit.pending, timeout=5000)  # coalesced
    final = shown(qtbot, layer)
    assert old_state.closed and layer.data.state is not old_state
    np.testing.assert_array_equal(final, ndi.gaussian_filter(TALL, 3.0)[39])
    assert layer.data.state.n_computed <= 2


def test_chain_gaussian_threshold_label_gives_scipy_labels(make_napari_viewer, qtbot,
                                                           zarr_v3_array):
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(zarr_v3_array), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    widget.axes.value = "yx"
    widget.set_params(sigma=2.0)
    smooth = widget.add_layer()
    widget.input.value = smooth
    widget.operation.value = "threshold"
    widget.set_params(value=2000.0)
    mask = widget.add_layer()
    widget.input.value = mask
    widget.operation.value = "label"
    labels = widget.add_layer()
    assert isinstance(labels, napari.layers.Labels)
    assert [s["op"] for s in labels.metadata["pipeline"]] == ["gaussian", "threshold", "label"]
    viewer.dims.set_current_step(0, 5)
    expected = ndi.label(ndi.gaussian_filter(VOLUME[5], 2.0) > 2000)[0]
    got = shown(qtbot, labels)
    assert expected.max() > 3
    np.testing.assert_array_equal(got, expected)


def test_provenance_scale_and_physical_units(make_napari_viewer, qtbot, ome_zarr_v04):
    viewer = make_napari_viewer()
    raw = viewer.open(str(ome_zarr_v04), plugin="napari-lazyproc")[0]
    widget = make(viewer, qtbot)
    assert widget.input.value is raw
    assert widget.lengths.value == "physical"  # the layer is in micrometers
    assert "micrometer" in widget.params["sigma"].label
    widget.set_params(sigma=1.0)  # 1 um: 0.5 px in z, 2 px in y and x
    layer = widget.add_layer()
    assert tuple(layer.scale) == tuple(raw.scale) == (2.0, 0.5, 0.5)
    assert tuple(layer.translate) == tuple(raw.translate)
    assert tuple(layer.axis_labels) == tuple(raw.axis_labels)
    assert [str(u) for u in layer.units] == ["micrometer"] * 3
    step = layer.metadata["pipeline"][-1]
    assert step["op"] == "gaussian" and step["sigma"] == [0.5, 2.0, 2.0]
    assert layer.metadata["source"]["path"] == str(ome_zarr_v04)
    assert layer.name.endswith("gaussian σ=1 micrometer")
    viewer.dims.set_current_step(0, 4)
    np.testing.assert_array_equal(shown(qtbot, layer),
                                  ndi.gaussian_filter(VOLUME, (0.5, 2, 2))[4])


def test_gpu_toggle_reflects_availability(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = make(viewer, qtbot)
    ok, why = gpu_available()
    assert widget.gpu.enabled is ok
    if not ok:
        assert widget.gpu.tooltip == why and "CuPy" in why
        assert widget.add_button.enabled  # the rest stays usable


def test_bad_input_gives_notifications_not_tracebacks(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    widget = make(viewer, qtbot)
    assert widget.add_layer() is None
    assert "no input layer" in notes[-1].message
    image2d = viewer.add_image(VOLUME[0], name="plane")
    widget.input.value = image2d
    widget.set_params(radius="-1")  # scipy's Gaussian radius: an integer >= 0
    assert widget.add_layer() is None
    assert "radius must be an integer >= 0" in notes[-1].message
    widget.set_params(radius="")
    widget.axes.value = "zyx"
    assert widget.add_layer() is None
    assert "needs a 3-D image" in notes[-1].message
    assert len(viewer.layers) == 1
    np.testing.assert_array_equal(image2d.data, VOLUME[0])
    assert all(n.severity == "error" for n in notes)


def test_label_whole_volume_in_background(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    blobs = ndi.gaussian_filter(np.random.default_rng(3).random((24, 64, 64)), 2) > 0.52
    mask = viewer.add_labels(blobs.astype(np.uint8), name="mask")
    widget = make(viewer, qtbot)
    widget.input.value = mask
    job = widget.label_whole_volume()
    qtbot.waitUntil(lambda: job.finished, timeout=20000)
    assert job.outcome == "done" and len(viewer.layers) == 2
    out = viewer.layers[-1]
    assert isinstance(out, napari.layers.Labels) and out.name == "mask · label (whole volume)"
    expected, n = ndi.label(blobs)
    got = np.asarray(out.data[:])
    assert out.metadata["n_labels"] == n
    pairs = np.unique(np.stack([got.ravel(), expected.ravel()]), axis=1)
    assert pairs.shape[1] == n + 1  # a one-to-one map of labels: equal up to permutation
    assert widget.status.value == "label whole volume: done"


def test_cancelled_job_adds_nothing(make_napari_viewer, qtbot):
    import dask.array as da

    viewer = make_napari_viewer()
    big = da.random.random((64, 512, 512), chunks=(4, 64, 64)) > 0.7  # 1024 chunks
    mask = viewer.add_image(big, name="big")
    widget = make(viewer, qtbot)
    widget.input.value = mask
    job = widget.label_whole_volume()
    assert widget.cancel_button.enabled
    widget.cancel_job()
    qtbot.waitUntil(lambda: job.finished, timeout=20000)
    assert job.outcome == "cancelled" and widget.cancel_button.enabled is False
    assert len(viewer.layers) == 1
    assert "cancelled" in widget.status.value


@pytest.mark.parametrize(("name", "cls", "menu"), [
    ("Process", "widget:LazyProcessingWidget", "filter"),
    ("Measure", "measure:MeasurePanel", "measure"),
    ("Drift correction", "drift:DriftPanel", "register"),
])
def test_each_widget_opens_from_the_manifest(make_napari_viewer, name, cls, menu):
    import importlib

    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-lazyproc", name)
    module, attr = cls.split(":")
    assert type(widget) is getattr(importlib.import_module(f"napari_lazyproc._qt.{module}"),
                                   attr)
    assert dock.name == f"{name} (napari-lazyproc)" and widget.native.isVisibleTo(dock)
    items = get_app_model().menus.get_menu(f"napari/layers/{menu}")
    ids = [i.command.id for i in items if hasattr(i, "command")]
    command = "napari-lazyproc." + {"Process": "widget", "Measure": "measure"}.get(name, "drift")
    assert command in ids


def test_screenshot_of_the_docked_widget_is_not_blank(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-lazyproc", "lightsheet_small")
    widget = make(viewer, qtbot)
    widget.axes.value = "yx"
    layer = widget.add_layer()
    layer.colormap = "magma"
    viewer.dims.set_current_step(1, 32)
    viewer.reset_view()
    canvas = shown(qtbot, layer)
    assert canvas.std() > 1  # nuclei, not a placeholder
    shot = viewer.screenshot(str(tmp_path / "widget.png"), canvas_only=False, flash=False)
    rgb = shot[..., :3].astype(float)
    assert rgb.std() > 5 and (rgb.max(axis=-1) > 100).mean() > 0.001
    assert widget.native.isVisible() and (tmp_path / "widget.png").stat().st_size > 10_000


def test_export_button_writes_the_lazy_layer_in_background(make_napari_viewer, qtbot, tmp_path,
                                                           tall_zarr):
    import napari_lazyproc as lp

    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    raw.translate = (1.5, -2.25, 3.125)  # moved in napari: the result and its export follow
    widget = make(viewer, qtbot)
    widget.axes.value = "yx"
    layer = widget.add_layer()
    assert tuple(layer.translate) == (1.5, -2.25, 3.125)
    out = tmp_path / "export.ome.zarr"
    job = widget.export_layer(layer, str(out))
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "done" and widget.cancel_button.enabled is False
    back = lp.open_image(out)
    np.testing.assert_array_equal(np.asarray(back.levels[0]), ndi.gaussian_filter(TALL, (0, 1, 1)))
    assert back.scale == tuple(layer.scale) and back.translate == (1.5, -2.25, 3.125)
    assert widget.status.value.endswith("done")


def test_save_layers_uses_the_npe2_writer(make_napari_viewer, qtbot, tmp_path, tall_zarr):
    import napari_lazyproc as lp

    viewer = make_napari_viewer()
    viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    widget.operation.value = "median"
    widget.axes.value = "yx"
    layer = widget.add_layer()
    layer.translate = (0.0, 7.5, -0.25)  # the layer moved: saved where it is shown
    out = tmp_path / "saved.ome.zarr"
    written = napari.save_layers(str(out), [layer], plugin="napari-lazyproc")
    assert written == [str(out)]
    back = lp.open_image(out)
    assert back.translate == (0.0, 7.5, -0.25) and back.scale == tuple(layer.scale)
    np.testing.assert_array_equal(np.asarray(back.levels[0]),
                                  ndi.median_filter(TALL, size=(1, 3, 3)))
    attrs = dict(zarr.open_group(out, mode="r").attrs)
    assert attrs["napari-lazyproc"]["pipeline"][-1]["op"] == "median"


def _layer_at_plane_10(make_napari_viewer, qtbot, tall_zarr):
    """A viewer with the raw file hidden and the widget's live layer shown at z = 10."""
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    raw.visible = False
    widget = make(viewer, qtbot)
    layer = widget.add_layer()
    viewer.dims.set_current_step(0, 10)
    shown(qtbot, layer)
    return viewer, widget, layer


def test_scrolling_finds_the_next_plane_computed_ahead(make_napari_viewer, qtbot, tall_zarr):
    viewer, widget, layer = _layer_at_plane_10(make_napari_viewer, qtbot, tall_zarr)
    state = layer.data.state
    qtbot.waitUntil(lambda: not (state._ahead or state.planning)
                    and state.n_computed_ahead >= 2, timeout=20000)
    asked = state.n_computed
    viewer.dims.set_current_step(0, 11)
    assert not state.busy  # ready at once: nothing to compute
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(TALL, 1.0)[11])
    assert state.n_computed == asked
    # and the step after it is computed ahead in turn, so scrolling stays ahead
    qtbot.waitUntil(lambda: not (state._ahead or state.planning)
                    and state.n_computed_ahead >= 3, timeout=20000)
    viewer.dims.set_current_step(0, 12)
    assert not state.busy and state.n_computed == asked
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(TALL, 1.0)[12])
    viewer.dims.set_current_step(0, 20)  # a jump: a placeholder (the nearest plane) meanwhile
    np.testing.assert_array_equal(shown(qtbot, layer), ndi.gaussian_filter(TALL, 1.0)[20])


def test_parameter_widgets_follow_the_registry(make_napari_viewer, qtbot):
    from magicgui.widgets import ComboBox, FloatSpinBox, Slider

    from napari_lazyproc.ops import get_op

    viewer = make_napari_viewer()
    viewer.add_image(VOLUME, name="v")
    widget = make(viewer, qtbot)
    widget.operation.value = "median"
    size = widget.params["size"]
    assert isinstance(size, Slider) and (size.min, size.max, size.value) == (1, 255, 3)
    assert isinstance(widget.params["mode"], ComboBox)
    assert widget.params["mode"].choices == get_op("median").param("mode").choices
    widget.operation.value = "gaussian"
    sigma = widget.params["sigma"]
    assert isinstance(sigma, FloatSpinBox) and sigma.value == 1.0 and "(px)" in sigma.label
    assert "Gaussian standard deviation" in sigma.tooltip
    widget.operation.value = "label"
    assert "scope" not in widget.param_values()  # global labeling has its own button


def test_exact_checkbox_switches_the_live_layer_to_bitwise_scipy(make_napari_viewer, qtbot,
                                                                   tall_zarr):
    lp.set_precision("fast")  # the default, which this module otherwise sets aside
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    widget = make(viewer, qtbot)
    assert not widget.exact.value
    widget.axes.value = "zyx"
    widget.set_params(sigma=1.5)
    layer = widget.add_layer()
    assert layer.metadata["pipeline"][-1]["precision"] == "fast"
    viewer.dims.set_current_step(0, 20)
    fast = shown(qtbot, layer)
    exact = ndi.gaussian_filter(TALL, 1.5)[20]
    assert np.abs(fast.astype(int) - exact.astype(int)).max() <= 1  # one grey level
    widget.exact.value = True  # a live update of the same layer
    assert layer.metadata["pipeline"][-1]["precision"] == "exact"
    np.testing.assert_array_equal(shown(qtbot, layer), exact)


def test_scrolling_one_way_computes_ahead_that_way_only(make_napari_viewer, qtbot, tall_zarr):
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(tall_zarr), plugin="napari-lazyproc")
    raw.visible = False
    widget = make(viewer, qtbot)
    layer = widget.add_layer()
    state = layer.data.state
    for z in (10, 11, 12):
        viewer.dims.set_current_step(0, z)
        shown(qtbot, layer)
        qtbot.waitUntil(lambda: not (state._ahead or state.planning), timeout=20000)
    done = {key[0][0] for key in state._done}
    assert {13} <= done and 8 not in done  # ahead upwards, nothing spent below


def test_a_parameter_change_waits_before_computing_frames_ahead(make_napari_viewer, qtbot,
                                                                tall_zarr, monkeypatch):
    """Right after a live update its frames ahead wait (a dragged parameter makes each
    result stale at once); once the update has settled they come. (The wait is made
    longer here so a slow machine still sees the update land inside it.)"""
    import time

    from napari_lazyproc._live import _playback

    monkeypatch.setattr(_playback, "AHEAD_AFTER_UPDATE", 3.0)
    viewer, widget, layer = _layer_at_plane_10(make_napari_viewer, qtbot, tall_zarr)
    changed = time.monotonic()
    widget.set_params(sigma=2.0)
    np.testing.assert_array_equal(shown(qtbot, layer), ndi.gaussian_filter(TALL, 2.0)[10])
    state = layer.data.state
    assert time.monotonic() - changed < _playback.AHEAD_AFTER_UPDATE
    assert state.n_computed_ahead == 0 and not state._ahead  # nothing ahead yet
    qtbot.waitUntil(lambda: state.n_computed_ahead >= 2 and not state._ahead
                    and not state.planning, timeout=20000)
    assert time.monotonic() - changed >= _playback.AHEAD_AFTER_UPDATE
    viewer.dims.set_current_step(0, 11)
    assert not state.busy  # computed ahead once the update settled
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(TALL, 2.0)[11])

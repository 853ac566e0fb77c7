"""napari's thread never reads: scrolling a file and a filtered layer in a real viewer.

Our read functions (a source's read, a result's read, a file's read) are wrapped to record
the thread they run on (instrumentation: the reads themselves run unchanged). Every time
napari hands a layer a slice, a layer marked loaded must show the plane at the current
position: a placeholder (the nearest plane, or the values before a parameter changed)
only ever comes with napari's loading spinner.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

from qtpy.QtWidgets import QApplication  # noqa: E402

from napari_lazyproc._qt.live_layers import live_states  # noqa: E402
from napari_lazyproc._qt.widget import LazyProcessingWidget  # noqa: E402
from napari_lazyproc.io._file_array import FileArray  # noqa: E402
from napari_lazyproc.ops import ArraySource, LazyResult  # noqa: E402

pytestmark = pytest.mark.usefixtures("exact_precision")

STACK = np.random.default_rng(11).integers(0, 4000, size=(12, 96, 128), dtype=np.uint16)
SIGMA = 2.0


@pytest.fixture
def reads(monkeypatch):
    """(function, thread) of every read of ours from now on."""
    seen: list[tuple[str, threading.Thread]] = []
    lock = threading.Lock()

    def record(cls, name):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            with lock:
                seen.append((f"{cls.__name__}.{name}", threading.current_thread()))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    record(ArraySource, "read")
    record(LazyResult, "read")
    record(FileArray, "__getitem__")
    return seen


class Watch:
    """Checks each slice napari gives ``layer``: loaded means the current plane."""

    def __init__(self, viewer, layer, expected: np.ndarray) -> None:
        self.viewer, self.layer, self.expected = viewer, layer, expected
        self.stale: list[str] = []
        self.slices = 0
        layer.events.set_data.connect(self.check)

    def check(self, event=None) -> None:
        self.slices += 1
        z = int(self.viewer.dims.current_step[0])
        shown = np.asarray(self.layer._slice.image.raw)
        if self.layer.loaded and not np.array_equal(shown, self.expected[z]):
            self.stale.append(f"{self.layer.name}: loaded at z={z} with another plane")


def _idle(qtbot, layers) -> None:
    states = [s for layer in layers for s in live_states(layer)]
    qtbot.waitUntil(lambda: not any(s.busy for s in states)
                    and all(layer.loaded for layer in layers), timeout=20000)
    qtbot.wait(30)


def test_scrolling_reads_nothing_on_napari_thread_and_shows_no_stale_plane(
        make_napari_viewer, qtbot, tmp_path, reads):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, STACK, metadata={"axes": "ZYX"})
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.axes.value = "yx"
    widget.lengths.value = "pixel"
    widget.set_params(sigma=SIGMA)
    layer = widget.add_layer()
    filtered = ndi.gaussian_filter(STACK, (0, SIGMA, SIGMA))
    watches = [Watch(viewer, raw, STACK), Watch(viewer, layer, filtered)]
    _idle(qtbot, [raw, layer])

    # quick scrolling (a plane shown for a few ms), then steps that wait to land
    for z in range(1, 12):
        viewer.dims.set_current_step(0, z)
        qtbot.wait(5)
    _idle(qtbot, [raw, layer])
    for z in (10, 7, 3, 4, 5):
        viewer.dims.set_current_step(0, z)
        _idle(qtbot, [raw, layer])
        np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), filtered[z])
        np.testing.assert_array_equal(np.asarray(raw._slice.image.raw), STACK[z])

    main = threading.main_thread()
    on_main = sorted({name for name, thread in reads if thread is main})
    assert not on_main, f"read on napari's thread: {on_main}"
    kinds = {name for name, _ in reads}
    assert {"LazyResult.read", "FileArray.__getitem__"} <= kinds, kinds  # not vacuous
    assert not [s for w in watches for s in w.stale], [s for w in watches for s in w.stale]
    assert all(w.slices >= 5 for w in watches)


def test_a_dragged_sigma_computes_the_last_value_and_keeps_the_previous_result(
        make_napari_viewer, qtbot, tmp_path, monkeypatch):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, STACK, metadata={"axes": "ZYX"})
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    raw.visible = False
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.axes.value = "yx"
    widget.lengths.value = "pixel"
    widget.set_params(sigma=1.0)
    layer = widget.add_layer()
    viewer.dims.set_current_step(0, 5)
    _idle(qtbot, [layer])
    sigmas = set()
    original = LazyResult.read

    def sigma_of(result) -> float:
        return float(np.ravel(result.params.as_dict()["sigma"])[0])

    def read(self, region, cancel=None):
        sigmas.add(sigma_of(self))
        return original(self, region, cancel)

    monkeypatch.setattr(LazyResult, "read", read)
    before = np.asarray(layer._slice.image.raw).copy()
    shown_while = []  # each slice during the drag: values, loaded, the layer's sigma
    layer.events.set_data.connect(lambda e: shown_while.append(
        (np.asarray(layer._slice.image.raw).copy(), layer.loaded, sigma_of(layer.data.result))))
    steps = [1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3, 3.6, 4.0]
    calls = widget._param_edit.n_calls
    for s in steps:  # a slider dragged: a value at each pass of the event loop
        widget.params["sigma"].value = s
        QApplication.processEvents()
    qtbot.waitUntil(lambda: not widget._param_edit.pending, timeout=5000)
    _idle(qtbot, [layer])
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(STACK[5], 4.0))
    assert widget._param_edit.n_calls - calls < len(steps) / 2  # coalesced
    assert 4.0 in sigmas and len(sigmas) < len(steps) / 2, sorted(sigmas)
    assert layer.name.endswith("σ=4")
    np.testing.assert_array_equal(before, ndi.gaussian_filter(STACK[5], 1.0))
    # until a value landed the layer showed an earlier result, marked as loading; loaded,
    # it showed its own sigma's
    assert shown_while
    for values, loaded, sigma in shown_while:
        if loaded:
            np.testing.assert_array_equal(values, ndi.gaussian_filter(STACK[5], sigma))
        else:
            assert any(np.array_equal(values, ndi.gaussian_filter(STACK[5], s))
                       for s in sigmas | {1.0})


def test_contrast_limits_of_a_new_result_are_read_off_napari_thread(
        make_napari_viewer, qtbot, tmp_path, reads):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, STACK, metadata={"axes": "ZYX"})
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-lazyproc")
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.operation.value = "project"  # a mean in float64: limits of its own
    widget.set_params(axis="z", method="mean")
    reads.clear()
    layer = widget.add_layer()
    assert layer.dtype == np.float64
    mean = STACK.mean(axis=0)
    limits = (float(mean.min()), float(mean.max()))
    qtbot.waitUntil(lambda: tuple(layer.contrast_limits) == pytest.approx(limits),
                    timeout=20000)
    _idle(qtbot, [layer])
    main = threading.main_thread()
    assert not [name for name, thread in reads if thread is main]
    assert any(name == "LazyResult.read" for name, _ in reads)

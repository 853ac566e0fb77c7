"""Closing a viewer's window, or removing a layer, stops the work of its live layers in a
real napari viewer under Xvfb: their states close, what they reserved of the prefetch
budget comes back, and no work of theirs is left queued or running."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import write_zarr

napari = pytest.importorskip("napari")

import napari_lazyproc as lp  # noqa: E402
from napari_lazyproc._layer_data import result_layer_data  # noqa: E402
from napari_lazyproc._live import PREFETCH  # noqa: E402
from napari_lazyproc._qt.live_layers import add_live_layer, live_states  # noqa: E402

#: a small (t, z, y, x) series: every frame is quick to read and to filter
SERIES = np.random.default_rng(21).integers(0, 4000, size=(12, 4, 48, 64), dtype=np.uint16)


class Blocked:
    """Holds every read of ``state`` until its work is cancelled (at most 20 s), so that
    work is in flight when the viewer closes; records whether each read saw the cancel."""

    def __init__(self, state) -> None:
        self.entered = 0
        self.cancelled: list[bool] = []
        read = state.read

        def blocking(region, cancel=None):
            self.entered += 1
            seen = cancel is not None and cancel.wait(20)
            self.cancelled.append(seen)
            return read(region, cancel)

        state.read = blocking


def _viewer_with_work_ahead(make_napari_viewer, qtbot, tmp_path):
    """A viewer showing a Gaussian of a series, stepped forward in t until frames ahead are
    held and more are being computed (held there by ``Blocked``)."""
    path = write_zarr(tmp_path / "series.zarr", SERIES, (1, 2, 48, 64),
                      dimension_names=["t", "z", "y", "x"])
    viewer = make_napari_viewer(show=True)
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    raw.visible = False
    res = lp.apply("gaussian", lp.open_image(str(path)), sigma=1.0, axes="yx")
    _, kwargs, kind = result_layer_data(res, "gaussian", contrast_limits=(0, 4000))
    layer = add_live_layer(viewer, res, kwargs, kind)
    states = live_states(raw) + live_states(layer)
    state = live_states(layer)[0]

    def idle():
        qtbot.waitUntil(lambda: not any(s.in_flight or s.planning for s in states),
                        timeout=20000)

    idle()
    for t in (1, 2, 3):  # stepping forwards: frames ahead computed, and held
        viewer.dims.set_current_step(0, t)
        idle()
    assert state._held and PREFETCH.held > 0
    blocked = Blocked(state)
    viewer.dims.set_current_step(0, 4)  # shown from what was held; more frames ahead
    qtbot.waitUntil(lambda: blocked.entered >= 1, timeout=10000)
    # frames ahead reserved (computed and not shown, or computing), and work in flight
    assert PREFETCH.held > 0 and state.in_flight >= 1
    return viewer, layer, states, blocked


def _assert_stopped(qtbot, states, blocked) -> None:
    """Every state closed, no work in flight, nothing reserved, and nothing computed after."""
    start = time.monotonic()
    qtbot.waitUntil(lambda: all(s.closed for s in states), timeout=5000)
    qtbot.waitUntil(lambda: not any(s.in_flight or s.planning for s in states), timeout=5000)
    assert time.monotonic() - start < 5  # the blocked reads were cancelled, not waited out
    assert blocked.entered >= 1 and all(blocked.cancelled), blocked.cancelled
    assert PREFETCH.held == 0
    assert all(not s._ahead and not s._held and not s._pending for s in states)
    done = [(s.n_computed, s.n_computed_ahead) for s in states]
    qtbot.wait(300)
    assert [(s.n_computed, s.n_computed_ahead) for s in states] == done


def test_closing_the_window_stops_the_live_layers_work(make_napari_viewer, qtbot, tmp_path):
    viewer, layer, states, blocked = _viewer_with_work_ahead(make_napari_viewer, qtbot,
                                                             tmp_path)
    assert PREFETCH.held > 0 and any(s.in_flight for s in states)
    viewer.window.close()  # as File > Close Window does: the layers stay in the viewer
    assert layer in viewer.layers
    _assert_stopped(qtbot, states, blocked)


def test_removing_the_layer_stops_its_work(make_napari_viewer, qtbot, tmp_path):
    viewer, layer, states, blocked = _viewer_with_work_ahead(make_napari_viewer, qtbot,
                                                             tmp_path)
    mine = live_states(layer)
    viewer.layers.remove(layer)
    _assert_stopped(qtbot, mine, blocked)
    assert not any(s.closed for s in states if s not in mine)  # the raw layer goes on


def test_a_result_layer_alone_stops_with_its_window(make_napari_viewer, qtbot):
    """A viewer that only ever got a result layer (no file opened, no widget) is watched
    by ``add_live_layer`` itself."""
    viewer = make_napari_viewer()
    res = lp.apply("gaussian", SERIES[0], sigma=1.0, axes="zyx")
    _, kwargs, kind = result_layer_data(res, "gaussian", contrast_limits=(0, 4000))
    states = live_states(add_live_layer(viewer, res, kwargs, kind))
    qtbot.waitUntil(lambda: not any(s.in_flight for s in states), timeout=10000)
    viewer.window.close()
    qtbot.waitUntil(lambda: all(s.closed for s in states), timeout=5000)

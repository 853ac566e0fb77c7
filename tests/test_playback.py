"""Playback in a real napari viewer under Xvfb: napari's play loop (``QtDims.play``) finds
the next frames read or computed ahead, in the play direction, within the prefetch
budget, and the work ahead stops with the playback."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import write_zarr
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

import napari_lazyproc as lp  # noqa: E402
from napari_lazyproc._layer_data import result_layer_data  # noqa: E402
from napari_lazyproc._live import PREFETCH, LiveState, set_prefetch_budget  # noqa: E402
from napari_lazyproc._qt.live_layers import add_live_layer, live_states, playback  # noqa: E402

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")

#: a small (t, z, y, x) series: every frame is quick to read and to filter
SERIES = np.random.default_rng(13).integers(0, 4000, size=(12, 6, 48, 64), dtype=np.uint16)
FRAME_BYTES = 48 * 64 * 2


@pytest.fixture
def series_zarr(tmp_path):
    return write_zarr(tmp_path / "series.zarr", SERIES, (1, 2, 48, 64),
                      dimension_names=["t", "z", "y", "x"])


@pytest.fixture(autouse=True)
def _budget():
    """Each test starts with the default budget and leaves it so."""
    before = PREFETCH.max_bytes, PREFETCH.max_frames
    yield
    set_prefetch_budget(before[0], max_frames=before[1])


class Shown:
    """For each read of a state's frame: its position along ``axis``, and whether its
    values were already there (read or computed ahead) when napari asked."""

    def __init__(self, state: LiveState, axis: int) -> None:
        self.ready: dict[int, bool] = {}
        self.order: list[int] = []
        lookup = state.lookup

        def recording(region):
            key = tuple(region)
            at = key[axis] if isinstance(key[axis], int) else key[axis].start
            values = lookup(region)
            if at not in self.ready:
                self.ready[at] = values is not None
                self.order.append(at)
            return values

        state.lookup = recording


class Reads:
    """Every region a state reads or computes: its position along ``axis`` and whether it
    ran on napari's (the main) thread."""

    def __init__(self, state: LiveState, axis: int) -> None:
        self.at: list[int] = []
        self.on_main: list[int] = []
        read = state.read

        def recording(region, cancel=None):
            at = region[axis] if isinstance(region[axis], int) else region[axis].start
            self.at.append(at)
            if threading.current_thread() is threading.main_thread():
                self.on_main.append(at)
            return read(region, cancel)

        state.read = recording


def _series_viewer(make_napari_viewer, qtbot, path, *, t=0, z=3):
    viewer = make_napari_viewer(show=True)
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    viewer.dims.set_current_step(0, t)
    viewer.dims.set_current_step(1, z)
    return viewer, raw


def _gaussian(viewer, raw, sigma=1.0):
    res = lp.apply("gaussian", lp.open_image(raw.metadata["source"]["path"]), sigma=sigma,
                   axes="yx")
    _, kwargs, kind = result_layer_data(res, "gaussian", contrast_limits=(0, 4000))
    return add_live_layer(viewer, res, kwargs, kind)


def _idle(qtbot, *layers) -> None:
    """Until nothing of ``layers`` is computing (on screen or ahead)."""
    states = [s for layer in layers for s in live_states(layer)]
    qtbot.waitUntil(lambda: not any(s.busy or s._ahead or s.planning for s in states),
                    timeout=20000)
    qtbot.wait(50)


def _plane(entry) -> bool:
    """Whether a region key's entry is one position (an int, or a range of one)."""
    return isinstance(entry, int) or entry[1] - entry[0] == 1


def _play(viewer, qtbot, axis, fps, loop_mode="once", timeout=30000):
    """napari's own play loop, until it stops (``once``: at the end of the axis)."""
    dims = viewer.window._qt_viewer.dims
    dims.play(axis, fps, loop_mode=loop_mode)
    qtbot.waitUntil(lambda: playback(viewer).playing, timeout=5000)
    if loop_mode == "once":
        qtbot.waitUntil(lambda: not dims.is_playing, timeout=timeout)
        qtbot.waitUntil(lambda: not playback(viewer).playing, timeout=5000)
    return dims


def test_playing_t_on_a_raw_layer_finds_the_next_frames_read_ahead(
        make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr)
    state = raw.data.state
    _idle(qtbot, raw)
    shown, reads = Shown(state, 0), Reads(state, 0)
    sync_before = state.n_sync
    # frames of this plane computed before playing (napari first shows the middle step,
    # t=5 z=2, and its neighbours are read ahead, timing-dependent): they may be shown
    # from there, no longer held as this playback's frames ahead
    known = {key[0][0] for key in list(state._done) if key[1] == (3, 4)}
    _play(viewer, qtbot, axis=0, fps=5)
    assert shown.order == list(range(1, 12))  # every frame, forwards
    # the first frame may be caught being read; every later one was there before napari
    # asked for it
    assert all(shown.ready[t] for t in range(2, 12)), shown.ready
    assert state.n_ahead_shown >= 10 - len(known & set(range(2, 12)))
    # nothing read on napari's thread while playing (but perhaps the first frame, which
    # napari may ask for before the playback's start reaches the layer: a cheap plane of
    # a file is then read at once, as when stepping), and no frame read twice
    assert state.n_sync - sync_before <= 1 and set(reads.on_main) <= {1}
    assert sorted(reads.at) == sorted(set(reads.at))
    assert set(reads.at) <= set(range(1, 12))
    np.testing.assert_array_equal(np.asarray(raw._slice.image.raw), SERIES[11, 3])
    # playback over: nothing held ahead any more
    assert PREFETCH.held == 0 and not state._ahead and not state._held


def test_playing_a_filtered_layer_backwards_computes_only_the_frames_before(
        make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr, t=6)
    layer = _gaussian(viewer, raw)
    raw.visible = False
    _idle(qtbot, layer)
    state = layer.data.state
    shown, reads = Shown(state, 0), Reads(state, 0)
    _play(viewer, qtbot, axis=0, fps=-5)  # negative fps: napari plays backwards
    assert shown.order == list(range(5, -1, -1))
    assert all(shown.ready[t] for t in range(4, -1, -1)), shown.ready
    # computed ahead in the play direction only, each frame once, never on napari's thread
    assert set(reads.at) <= set(range(0, 6)) and len(reads.at) == len(set(reads.at))
    assert not reads.on_main
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw),
                                  ndi.gaussian_filter(SERIES[0, 3], 1.0))


def test_playing_z_computes_planes_ahead_along_z(make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr, t=2, z=0)
    layer = _gaussian(viewer, raw)
    raw.visible = False
    _idle(qtbot, layer)
    state = layer.data.state
    shown, reads = Shown(state, 1), Reads(state, 0)
    _play(viewer, qtbot, axis=1, fps=5)
    assert shown.order == list(range(1, 6))
    assert all(shown.ready[z] for z in range(2, 6)), shown.ready
    assert set(reads.at) == {2}  # every plane of time point 2, no other time point


def test_the_budget_bounds_the_frames_held_ahead(make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr)
    layer = _gaussian(viewer, raw)
    raw.visible = False
    _idle(qtbot, layer)
    set_prefetch_budget(3 * FRAME_BYTES)
    state = layer.data.state
    shown = Shown(state, 0)
    dims = _play(viewer, qtbot, axis=0, fps=4, loop_mode="loop")
    qtbot.waitUntil(lambda: len(shown.order) >= 5, timeout=20000)
    status = state.prefetch_status()
    dims.stop()
    qtbot.waitUntil(lambda: not playback(viewer).playing, timeout=5000)
    # never more than three frames ahead held or computing at once, and the budget was
    # what bounded them (the window asks for up to 32)
    assert PREFETCH.peak == 3 * FRAME_BYTES
    assert status["planned"] > 3 and status["nbytes"] <= 3 * FRAME_BYTES
    # frames still came ahead of the playback
    assert sum(shown.ready[t] for t in shown.order[1:]) >= len(shown.order) - 2


def test_stopping_drops_the_work_ahead_and_the_status_bar_shows_it(
        make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr)
    layer = _gaussian(viewer, raw)
    _idle(qtbot, raw, layer)
    states = live_states(raw) + live_states(layer)
    dims = _play(viewer, qtbot, axis=0, fps=3, loop_mode="loop")
    qtbot.waitUntil(lambda: viewer.status.startswith("Prefetch t+: series "), timeout=5000)
    qtbot.waitUntil(lambda: ", gaussian " in viewer.status
                    and "frames ahead ready" in viewer.status, timeout=5000)
    assert PREFETCH.held > 0  # frames ahead held while playing
    dims.stop()
    qtbot.waitUntil(lambda: not playback(viewer).playing, timeout=5000)
    assert viewer.status == "Prefetch stopped"
    assert PREFETCH.held == 0
    assert all(not s.playing and not s._ahead and not s._held for s in states)
    done = [(s.n_computed, s.n_computed_ahead) for s in states]
    qtbot.wait(300)
    assert [(s.n_computed, s.n_computed_ahead) for s in states] == done  # nothing more


def test_a_3d_toggle_while_playing_drops_the_planes_ahead(make_napari_viewer, qtbot,
                                                          series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr)
    layer = _gaussian(viewer, raw)
    raw.visible = False
    _idle(qtbot, layer)
    state = layer.data.state
    dims = _play(viewer, qtbot, axis=0, fps=3, loop_mode="loop")
    qtbot.waitUntil(lambda: bool(state._held), timeout=5000)
    assert all(_plane(k[1]) for k in state._held)  # planes of z = 3
    viewer.dims.ndisplay = 3  # (napari stops playing too)
    qtbot.waitUntil(lambda: not playback(viewer).playing, timeout=5000)
    dims.stop()
    # the planes ahead were released; what is held ahead now are whole z stacks
    assert not any(_plane(k[1]) for k in [*state._held, *state._ahead])
    assert PREFETCH.held == sum(state._held.values()) + sum(
        j.nbytes for j in state._ahead.values())


def test_stepping_one_way_reads_further_ahead_the_longer_it_goes(
        make_napari_viewer, qtbot, series_zarr):
    viewer, raw = _series_viewer(make_napari_viewer, qtbot, series_zarr)
    state = raw.data.state
    for t in range(1, 5):
        viewer.dims.set_current_step(0, t)
        _idle(qtbot, raw)
    # four steps up: 2 ** 3 frames ahead (5..12, clipped at the last frame) are there,
    # and what is held ahead lies ahead, none behind
    def t_of(key):
        return key[0][0] if isinstance(key[0], tuple) else key[0]

    ready = {t_of(k) for k in state._done if k[1] in (3, (3, 4))}
    assert set(range(5, 12)) <= ready
    assert state._held and {t_of(k) for k in state._held} <= set(range(5, 12))
    assert state.n_ahead_shown >= 3


def test_prefetch_budget_is_validated():
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        lp.set_prefetch_budget(-1)
    lp.set_prefetch_budget(2**20, max_frames=4)
    assert lp.get_prefetch_budget() == 2**20 and PREFETCH.max_frames == 4


def test_only_the_pyramid_level_on_screen_computes_ahead(make_napari_viewer, qtbot,
                                                         ome_pyramid):
    viewer = make_napari_viewer(show=True)
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    layer = _gaussian(viewer, raw)
    assert layer.multiscale and len(layer.data) == 3
    raw.visible = False
    layer.locked_data_level = 1  # what napari picks zoomed out
    _idle(qtbot, layer)
    levels = live_states(layer)
    dims = _play(viewer, qtbot, axis=1, fps=4, loop_mode="loop")  # along z
    qtbot.waitUntil(lambda: len(levels[1]._held) >= 2, timeout=10000)
    # neither full resolution nor the thumbnail's level (the coarsest) computes ahead
    assert not levels[0]._held and not levels[0]._ahead
    assert not levels[2]._held and not levels[2]._ahead
    layer.locked_data_level = 0  # zoomed in: the work ahead moves to level 0
    qtbot.waitUntil(lambda: len(levels[0]._held) >= 2, timeout=10000)
    assert not levels[1]._held and not levels[1]._ahead
    dims.stop()
    qtbot.waitUntil(lambda: not playback(viewer).playing, timeout=5000)
    assert PREFETCH.held == 0

"""Layers whose data are ``LiveArray`` levels: refreshed when background work lands.

A ``LiveArray`` answers napari's slicing at once and computes what is missing in a
thread; something must then refresh the layer on the main thread. ``watch(viewer)``
does that for every layer of ours inserted into a viewer (files from our reader, the
sample, results), and marks the layer as loading (napari's spinner in the layer list)
while a region is computing, so that a 3D view being computed looks like it.

A result layer's life: ``add_live_layer`` adds it, ``replace_result`` gives the same
layer a new result (a parameter changed), ``recompute`` starts its levels afresh (the
backend changed); the old levels' work stops each time.

Playback: ``watch`` also follows the viewer's play loop (napari's ``QtDims`` animation
thread). While it plays, every visible live layer computes frames ahead in the play
direction (``LiveState.play``), the status bar says how many are ready, and stopping,
hiding a layer or another pyramid level on screen drops the work ahead (a level that sees
another view, 3D or another axis order, drops its own).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from dask.utils import format_bytes
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from superqt.utils import ensure_main_thread

from .._layer_data import LATER, result_levels, sample_limits
from .._live import PREFETCH, LiveArray, LiveState, layer_levels, live_levels, submit

_watched: weakref.WeakSet = weakref.WeakSet()
#: each watched viewer's playback follower (kept alive as long as the viewer)
_playbacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def live_states(layer) -> list[LiveState]:
    """The states of a layer's live levels (empty for other layers)."""
    return [lvl.state for lvl in layer_levels(getattr(layer, "data", None))
            if isinstance(lvl, LiveArray)]


def is_live(layer) -> bool:
    """Whether ``layer``'s data are live levels."""
    return bool(live_states(layer))


def _callbacks(find: Callable[[LiveState], object], on_ready: Callable | None):
    """(ready, started) callbacks of a state, run on the main thread for the layer that
    ``find(state)`` says shows it (None: removed, or its data replaced: stale)."""

    @ensure_main_thread
    def ready(state: LiveState, error: BaseException | None) -> None:
        target = find(state)
        if target is None:
            return
        states = live_states(target)
        served = sum(s.n_placeholders for s in states)
        if error is None:
            _forget_cached_levels(target)
            target.refresh()
        # loaded only when the refresh found every level it read (a placeholder read
        # sets the spinner again) and no other level computes: never a stale plane
        # shown as current
        if sum(s.n_placeholders for s in states) == served and not any(
                s.busy and s is not state for s in states):
            _set_loading(target, False)
        if error is not None and on_ready is None:
            show_error(f"{target.name}: {error}")
        if on_ready is not None:
            on_ready(target, state, error)

    @ensure_main_thread
    def started(state: LiveState) -> None:
        target = find(state)
        if target is not None:
            _set_loading(target, True)

    return ready, started


def attach(layer, on_ready: Callable | None = None, *, replace: bool = False,
           states: list[LiveState] | None = None) -> None:
    """Refresh ``layer`` when any of its levels lands (``on_ready(layer, state, error)``
    is called on the main thread, after the refresh). ``states``: those of data about
    to be given to the layer (default: its current levels'); ``replace``: take over
    states that already report to someone."""
    ref = weakref.ref(layer)

    def find(state):
        target = ref()
        return target if target is not None and state in live_states(target) else None

    ready, started = _callbacks(find, on_ready)
    for state in live_states(layer) if states is None else states:
        if state.on_ready is None or replace:
            state.on_ready = ready
            state.on_request = started


def adopt(viewer, layer_data) -> None:
    """Have ``viewer`` refresh the layers it will build from ``layer_data`` (LayerData
    tuples) when their levels land, from the moment napari first slices them: napari
    slices a layer while building it, before it is in the viewer, and a virtual level
    or a 3D volume read then would block the GUI."""
    ref = weakref.ref(viewer)

    def find(state):
        target = ref()
        if target is None:
            return None
        return next((lyr for lyr in target.layers if state in live_states(lyr)), None)

    ready, started = _callbacks(find, None)
    for data, *_ in layer_data:
        for level in layer_levels(data):
            if isinstance(level, LiveArray) and level.state.on_ready is None:
                level.state.on_ready = ready
                level.state.on_request = started


def _forget_cached_levels(layer) -> None:
    """napari keeps the coarsest level of a 2D multiscale layer once read (for its
    thumbnail, and for the view when zoomed out): forget it, or a placeholder read there
    would stay on screen after the values landed."""
    materializer = getattr(layer, "_level_materializer", None)
    clear = getattr(materializer, "cache_clear", None)
    if clear is not None:
        clear()


def _set_loading(layer, loading: bool) -> None:
    """Show napari's loading spinner in the layer list while a level computes (the
    state napari's own asynchronous slicing sets)."""
    owner = getattr(layer, "_slicing_state", layer)  # napari >= 0.6 keeps it there
    setter = getattr(owner, "_set_loaded", None)
    if setter is not None:
        setter(not loading)


def _on_inserted(event) -> None:
    attach(event.value)


def _on_removed(event) -> None:
    for state in live_states(event.value):
        state.close()


def add_live_layer(viewer, result, kwargs: dict, kind: str, on_ready: Callable | None = None):
    """Add ``result`` to ``viewer`` as a layer of live levels and return the layer.

    Parameters
    ----------
    viewer : napari.Viewer
    result : LazyResult
        What the layer shows (every display level of it).
    kwargs : dict
        The layer's attributes (from ``result_layer_data``).
    kind : {"image", "labels"}
    on_ready : callable, optional
        ``on_ready(layer, state, error)``, on the main thread when a region lands.
    """
    levels = live_levels(result_levels(result))
    later = kind != "labels" and kwargs.get("contrast_limits") == LATER
    if later:  # provisional limits; the sample is read in the background
        kwargs = dict(kwargs, contrast_limits=_provisional_limits(result.dtype))
    # napari slices a layer being built at its default position, not the viewer's: that
    # plane would be computed for nothing
    for level in levels:
        level.state.paused = True
    data = levels if len(levels) > 1 else levels[0]
    if kind == "labels":
        kwargs = {k: v for k, v in kwargs.items() if k != "contrast_limits"}
        layer = viewer.add_labels(data, **kwargs)
    else:
        layer = viewer.add_image(data, **kwargs)
    attach(layer, on_ready, replace=True)  # never compute on napari's thread
    for level in levels:
        level.state.paused = False
    _forget_cached_levels(layer)  # napari kept a placeholder read while paused
    layer.refresh()  # now at the viewer's position
    if later:
        _limits_later(layer, result)
    return layer


def _provisional_limits(dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max))
    return (0.0, 1.0)


def _limits_later(layer, result) -> None:
    """Read ``layer``'s contrast limits (``sample_limits``) on a display thread and set
    them on the main thread, unless the layer shows another result by then."""
    ref = weakref.ref(layer)
    shown = layer_levels(layer.data)[0]

    @ensure_main_thread
    def apply(limits) -> None:
        target = ref()
        if target is not None and layer_levels(target.data)[0] is shown:
            target.contrast_limits_range = limits
            target.contrast_limits = limits

    def read() -> None:
        try:
            limits = sample_limits(result_levels(result))
        except Exception as exc:  # noqa: BLE001 - told, as a read of the layer would be
            show_error(f"{layer.name}: {exc}")
            return
        apply(limits)

    submit(read)


def _swap(layer, levels: list[LiveArray], on_ready: Callable | None) -> None:
    old = layer_levels(layer.data)
    attach(layer, on_ready, states=[lvl.state for lvl in levels])
    for level in old:
        level.state.close()  # stale: its work stops, its answers are dropped
    layer.data = levels if len(levels) > 1 else levels[0]


def replace_result(layer, result, on_ready: Callable | None = None) -> bool:
    """Show ``result`` in ``layer`` instead of its current one (a live update).

    The old values stay on screen until the new ones land. Returns False, changing
    nothing, when ``result`` does not fit the layer (another kind, shape or number of
    levels): a new layer is then needed.
    """
    old = layer_levels(layer.data)
    old_result = getattr(old[0], "result", None)
    levels = live_levels(result_levels(result), previous=old)
    if (result.kind != getattr(old_result, "kind", None)
            or result.shape != getattr(old_result, "shape", None) or len(levels) != len(old)):
        return False
    _swap(layer, levels, on_ready)
    return True


def recompute(layer, on_ready: Callable | None = None) -> None:
    """Compute ``layer``'s live levels afresh (the chunk backend changed); the values on
    screen stay until the new ones land."""
    old = layer_levels(layer.data)
    _swap(layer, live_levels([lvl.result for lvl in old], previous=old), on_ready)


def watch(viewer) -> None:
    """Attach every live layer of ``viewer``, now and when inserted; close their work
    when removed; compute frames ahead while its play loop plays. Idempotent."""
    viewer = getattr(viewer, "__wrapped__", viewer)  # npe2 hands widgets a proxy
    if viewer is None or viewer in _watched:
        return
    _watched.add(viewer)
    viewer.layers.events.inserted.connect(_on_inserted)
    viewer.layers.events.removed.connect(_on_removed)
    for layer in viewer.layers:
        attach(layer)
    _playbacks[viewer] = Playback(viewer)


def playback(viewer) -> Playback | None:
    """The playback follower of a watched ``viewer`` (None if not watched)."""
    return _playbacks.get(getattr(viewer, "__wrapped__", viewer))


def _layer_axis(layer, world_axis: int | None, ndim_world: int) -> int | None:
    """The axis of ``layer``'s data that the viewer's axis ``world_axis`` is (napari
    aligns a layer with the last world axes)."""
    if world_axis is None:
        return None
    axis = world_axis - (ndim_world - layer.ndim)
    return axis if 0 <= axis < layer.ndim else None


def _level_on_screen(layer, ndisplay: int) -> int:
    """The level of a live layer that napari shows (besides its thumbnail, the coarsest)."""
    n = len(layer_levels(layer.data))
    if n == 1:
        return 0
    locked = getattr(layer, "locked_data_level", None)
    return int(n - 1 if ndisplay == 3 else (locked if locked is not None else layer.data_level))


class Playback:
    """Follows a viewer's play loop for its live layers.

    When napari's animation thread starts (the play button, or
    ``viewer.window._qt_viewer.dims.play(axis, fps)``), every visible live layer is told
    to compute frames ahead (``LiveState.play``); when it finishes, the work ahead is
    dropped (``LiveState.stop``). A hidden layer, or another pyramid level on screen
    (zoom, 3D), drops the work ahead of the levels no longer shown; a level shown in
    another view (3D, another axis order) drops its own (``LiveState.observe``).
    While playing, ``viewer.status`` says how many frames ahead are ready (see `text`).

    Parameters
    ----------
    viewer : napari.Viewer
    """

    #: how often the status bar is updated while playing (ms)
    STATUS_MS = 250

    def __init__(self, viewer) -> None:
        self._viewer = weakref.ref(viewer)
        self.playing = False
        self.axis: int | None = None  # the world axis played
        self.direction = 1
        self.wrap = False
        qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
        self._thread = getattr(getattr(qt_viewer, "dims", None), "_animation_thread", None)
        self._timer = None
        if self._thread is not None:
            self._thread.started.connect(self._on_started)
            self._thread.finished.connect(self._on_finished)
            self._timer = QTimer()
            self._timer.setInterval(self.STATUS_MS)
            self._timer.timeout.connect(self.show_status)
        viewer.layers.events.inserted.connect(self._on_inserted)
        for layer in viewer.layers:
            self._follow(layer)

    # ------------------------------------------------------------------ events
    def _follow(self, layer) -> None:
        if not is_live(layer):
            return
        ref = weakref.ref(layer)
        layer.events.visible.connect(lambda event: self._on_visible(ref()))
        layer.events.set_data.connect(lambda event: self._on_sliced(ref()))
        if self.playing and layer.visible:
            self._play(layer)

    def _on_inserted(self, event) -> None:
        self._follow(event.value)

    def _play(self, layer) -> None:
        viewer = self._viewer()
        ndim = viewer.dims.ndim if viewer is not None else layer.ndim
        axis = _layer_axis(layer, self.axis, ndim)
        for state in live_states(layer):
            state.play(axis, self.direction, self.wrap)

    def _set_timer(self, on: bool) -> None:
        try:
            if self._timer is not None:
                self._timer.start() if on else self._timer.stop()
        except RuntimeError:  # the viewer's window is gone
            self._timer = None

    @ensure_main_thread
    def _on_started(self) -> None:
        viewer, thread = self._viewer(), self._thread
        if viewer is None or thread is None:
            return
        self.playing = True
        self.axis = thread.axis
        self.direction = 1 if thread.step > 0 else -1
        self.wrap = str(getattr(thread.loop_mode, "value", thread.loop_mode)) == "loop"
        PREFETCH.reset_peak()
        for layer in viewer.layers:
            if layer.visible:
                self._play(layer)
        self._set_timer(True)
        self.show_status()

    @ensure_main_thread
    def _on_finished(self) -> None:
        self.playing = False
        self._set_timer(False)
        viewer = self._viewer()
        if viewer is None:
            return
        for layer in viewer.layers:
            for state in live_states(layer):
                state.stop()
        viewer.status = "Prefetch stopped"

    def _on_visible(self, layer) -> None:
        if layer is None:
            return
        if not layer.visible:
            for state in live_states(layer):
                state.stop()
        elif self.playing:
            self._play(layer)

    def _on_sliced(self, layer) -> None:
        """napari sliced ``layer``: only the level on screen computes ahead (not the
        thumbnail's, nor one zoomed away from, whose work ahead is dropped)."""
        viewer = self._viewer()
        states = live_states(layer) if layer is not None else []
        if viewer is None or len(states) < 2:
            return
        level = _level_on_screen(layer, viewer.dims.ndisplay)
        for k, state in enumerate(states):
            state.ahead = k == level
            if k != level:
                state.drop_ahead()

    # ------------------------------------------------------------------ status
    def text(self) -> str:
        """The prefetch indicator: per visible live layer, how many frames ahead of the
        one on screen are ready, of those planned, and the bytes held of the budget."""
        viewer = self._viewer()
        if viewer is None:
            return ""
        parts, direction = [], self.direction
        for layer in viewer.layers:
            if not layer.visible or not is_live(layer):
                continue
            level = _level_on_screen(layer, viewer.dims.ndisplay)
            status = live_states(layer)[level].prefetch_status()
            if status["planned"]:
                parts.append(f"{layer.name} {status['ready']}/{status['planned']}")
                direction = status["direction"] or direction  # napari may turn round
        label = ""
        if self.axis is not None and self.axis < len(viewer.dims.axis_labels):
            label = f" {viewer.dims.axis_labels[self.axis]}"
        arrow = "+" if direction > 0 else "-"
        return (f"Prefetch{label}{arrow}: " + (", ".join(parts) or "nothing planned")
                + f" frames ahead ready · {format_bytes(PREFETCH.held)} of "
                f"{format_bytes(PREFETCH.max_bytes)}")

    def show_status(self) -> None:
        """Put `text` in the viewer's status bar (while playing)."""
        viewer = self._viewer()
        if viewer is not None and self.playing:
            viewer.status = self.text()


def watch_current_viewer(layer_data=()) -> None:
    """``watch`` the viewer napari is working in (the one opening a file), if any, and
    ``adopt`` the layers it is about to build from ``layer_data``."""
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        watch(viewer)
        adopt(viewer, layer_data)

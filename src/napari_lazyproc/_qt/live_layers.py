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
thread; ``playback.Playback``). While it plays, every visible live layer computes frames
ahead in the play direction (``LiveState.play``), the status bar says how many are
ready, and stopping, hiding a layer or another pyramid level on screen drops the work
ahead (a level that sees another view, 3D or another axis order, drops its own).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from napari.utils.notifications import show_error
from superqt.utils import ensure_main_thread

from .._layer_data import LATER, result_levels, sample_limits
from .._live import LiveArray, LiveState, layer_levels, live_levels, submit
from .playback import Playback, is_live, live_states

__all__ = ["Playback", "add_live_layer", "adopt", "attach", "is_live", "live_states",
           "playback", "recompute", "replace_result", "watch", "watch_current_viewer"]

_watched: weakref.WeakSet = weakref.WeakSet()
#: each watched viewer's playback follower (kept alive as long as the viewer)
_playbacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def _close_when_window_goes(viewer) -> None:
    """Close the live states of ``viewer``'s layers when its window is destroyed:
    napari has no public close event, and closing the window (its close button, File >
    Close Window, ``viewer.window.close()``) keeps the layers, so ``_on_removed`` never
    hears of them; only ``viewer.close()`` removes them first. The window deletes
    itself on close (``WA_DeleteOnClose``), so Qt's ``destroyed`` is the moment."""
    window = getattr(getattr(viewer, "window", None), "_qt_window", None)
    if window is None:  # no Qt window (a headless ViewerModel)
        return
    ref = weakref.ref(viewer)

    def destroyed(*_) -> None:
        target = ref()
        for layer in list(target.layers) if target is not None else ():
            for state in live_states(layer):
                state.close()

    window.destroyed.connect(destroyed)


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
    watch(viewer)  # its work stops with the layer's removal or the viewer's window
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
    when removed or when the viewer's window closes; compute frames ahead while its play
    loop plays. Idempotent."""
    viewer = getattr(viewer, "__wrapped__", viewer)  # npe2 hands widgets a proxy
    if viewer is None or viewer in _watched:
        return
    _watched.add(viewer)
    viewer.layers.events.inserted.connect(_on_inserted)
    viewer.layers.events.removed.connect(_on_removed)
    _close_when_window_goes(viewer)
    for layer in viewer.layers:
        attach(layer)
    _playbacks[viewer] = Playback(viewer)


def playback(viewer) -> Playback | None:
    """The playback follower of a watched ``viewer`` (None if not watched)."""
    return _playbacks.get(getattr(viewer, "__wrapped__", viewer))


def watch_current_viewer(layer_data=()) -> None:
    """``watch`` the viewer napari is working in (the one opening a file), if any, and
    ``adopt`` the layers it is about to build from ``layer_data``."""
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        watch(viewer)
        adopt(viewer, layer_data)

"""Following a viewer's play loop for its live layers (``Playback``): frames ahead while
napari plays, and the prefetch indicator in the status bar. ``live_states`` (a layer's
live levels' states) is here because the follower is the first to need it;
``live_layers`` re-exports it."""

from __future__ import annotations

import weakref

from dask.utils import format_bytes
from qtpy.QtCore import QTimer
from superqt.utils import ensure_main_thread

from .._live import PREFETCH, LiveArray, LiveState, layer_levels


def live_states(layer) -> list[LiveState]:
    """The states of a layer's live levels (empty for other layers)."""
    return [lvl.state for lvl in layer_levels(getattr(layer, "data", None))
            if isinstance(lvl, LiveArray)]


def is_live(layer) -> bool:
    """Whether ``layer``'s data are live levels."""
    return bool(live_states(layer))


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



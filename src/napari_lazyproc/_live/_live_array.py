"""``LiveArray``: a lazy result or a file's level as napari layer data whose reads return
at once (the values when ready, else a placeholder while a display thread computes them)."""

from __future__ import annotations

import threading

import numpy as np

from ..io import LazyArray
from ._regions import _region_key, aligned
from ._state import LiveState

#: a read of a file's level that touches at most this many voxels (times the level's
#: ``voxel_cost``: a virtual level reads its factor's worth per voxel) is served at once
#: off the GUI's thread (napari's asynchronous slicing); larger ones (a 3D volume, a
#: virtual level), and any read on the GUI's thread, go to the background
SYNC_VOXELS = 2**22


def _on_main_thread() -> bool:
    """Whether this is the GUI's thread (napari slices there unless its asynchronous
    slicing is on): no read of ours may run there, however cheap it looks."""
    return threading.current_thread() is threading.main_thread()


class LiveArray(LazyArray):
    """A lazy result (or a file's level) as napari layer data whose reads return at once.

    Without ``state.on_ready`` (no GUI listening) a read computes synchronously, like a
    ``LazyArray``. With a GUI, nothing is read on the main thread (napari's): a file's
    plane is read in the background like a result, and the layer shows a placeholder
    with napari's loading spinner until it lands. Off the main thread (napari's
    asynchronous slicing), a read cheaper than ``sync_voxels`` (a file's plane) is served
    at once, unless that frame is being read ahead already (it is then adopted).
    """

    def __init__(self, result, region: tuple | None = None, state: LiveState | None = None,
                 previous: LiveArray | None = None, base=None, sync_voxels: int = 0) -> None:
        super().__init__(result, base, region)
        self.state = state if state is not None else LiveState(
            result, previous.state if previous is not None else None, sync_voxels
        )

    @property
    def result(self):
        return self.source

    def _view(self, region: tuple) -> LiveArray:
        return LiveArray(self.source, region, self.state, base=self._base)

    def _read(self, region: tuple) -> np.ndarray:
        state = self.state
        whole = aligned(region, self.source.shape)
        live = state.on_ready is not None and not state.paused
        if live:
            state.observe(whole)
        values = state.lookup(region)
        if values is not None:
            state.last_ready = True
            if live:
                state.plan_soon(whole)  # ready: keep the frames ahead coming
            return values
        if whole == region:
            return self._read_whole(region, live)
        crop = tuple(slice(r.start - w.start, r.stop - w.start)
                     for r, w in zip(region, whole, strict=False) if isinstance(r, slice))
        return self._read_whole(whole, live)[crop]

    def _read_whole(self, region: tuple, live: bool = False) -> np.ndarray:
        state = self.state
        values = state.lookup(region)
        if values is not None:
            state.last_ready = True
            return values
        reading = _region_key(region) in state._ahead  # being read ahead: adopt it
        if state.on_ready is None and not state.paused or (
                state.cheap(region) and not reading and not _on_main_thread()):
            values = state.compute_now(region)
            state.last_ready = True
            if live:
                state.plan_soon(region)
            return values
        if not state.paused:
            state.request(region)
            if live:  # playback goes on meanwhile
                state.plan_soon(region, state.playing)
        state.last_ready = False
        return state.placeholder(region)


def live_levels(levels, previous=None, sync_voxels: int = 0) -> list[LiveArray]:
    """One ``LiveArray`` per level (each with its own state: the thumbnail's level and the
    level on screen compute side by side). ``levels``: results or ``LazyArray`` views;
    ``previous``: the levels these replace, whose values stay on screen meanwhile."""
    previous = list(previous or [])
    out = []
    for k, level in enumerate(levels):
        before = previous[k] if k < len(previous) and isinstance(previous[k], LiveArray) else None
        if isinstance(level, LazyArray):
            out.append(LiveArray(level.source, previous=before, base=level._base,
                                 sync_voxels=sync_voxels))
        else:
            out.append(LiveArray(level, previous=before, sync_voxels=sync_voxels))
    return out


def layer_levels(data) -> list:
    """A layer's data as a list of levels (napari's multiscale data, or one array)."""
    if isinstance(data, (list, tuple)) or type(data).__name__ == "MultiScaleData":
        return list(data)
    return [data]

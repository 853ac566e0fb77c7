"""Display arrays that never block the viewer: a missing region is computed in the background.

napari slices layers on the main thread. A ``LiveArray`` answers each slice at once: with
the values when they are ready (or cached), otherwise with a placeholder (the previous
values of that region, or zeros) while a background thread computes the region. When it
is done, ``on_ready`` is called (from that thread) and the GUI refreshes the layer, which
then finds the values. Asking for another region, or replacing the array (a parameter
changed), cancels the work for the old one: queued work never starts, and running work
stops before its next tile.

No napari import here: the GUI sets ``on_ready``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._shared.source import read_key
from .io import LazyArray
from .ops import Cancelled

#: two display threads: a raw layer's coarse volume and a result's compute side by side
#: (each state still runs one region at a time, and drops stale ones)
_executor = ThreadPoolExecutor(2, thread_name_prefix="lazyproc-display")

#: a read of a file's level that touches at most this many voxels (times the level's
#: ``voxel_cost``: a virtual level reads its factor's worth per voxel) is served at once;
#: larger ones (a 3D volume, a virtual level) go to the background like results
SYNC_VOXELS = 2**22

#: regions kept per layer once computed (the planes around the one on screen)
KEEP = 8


def _region_key(region: tuple) -> tuple:
    return tuple((r.start, r.stop) if isinstance(r, slice) else int(r) for r in region)


def _start(entry) -> int:
    return entry[0] if isinstance(entry, tuple) else (
        entry.start if isinstance(entry, slice) else entry
    )


#: a displayed axis cut short (napari shows the part of a pyramid level on screen) is
#: computed in whole tiles of this many voxels, so that panning finds them computed
TILE = 512


def aligned(region: tuple, shape: tuple) -> tuple:
    """``region`` grown to whole tiles along each axis it cuts short (not single planes)."""
    out = []
    for r, n in zip(region, shape, strict=False):
        if isinstance(r, slice) and r.stop - r.start > 1 and (r.start, r.stop) != (0, n):
            r = slice(r.start // TILE * TILE, min(n, -(-r.stop // TILE) * TILE))
        out.append(r)
    return tuple(out)


def _inside(key: tuple, outer: tuple) -> tuple | None:
    """Where region ``key`` lies in region ``outer`` (both as ``_region_key``), as a crop
    of ``outer``'s values, or None when it does not lie inside."""
    crop = []
    for k, o in zip(key, outer, strict=False):
        if isinstance(k, tuple) != isinstance(o, tuple):
            return None
        if not isinstance(k, tuple):
            if k != o:
                return None
            continue
        if k[0] < o[0] or k[1] > o[1]:
            return None
        crop.append(slice(k[0] - o[0], k[1] - o[0]))
    return tuple(crop)


class LiveState:
    """What one live layer has computed, is computing, and whom to tell."""

    def __init__(self, result, previous: LiveState | None = None, sync_voxels: int = 0) -> None:
        self.result = result
        self.on_ready: Callable[[LiveState, BaseException | None], object] | None = None
        #: called (on the slicing thread) when a region starts computing in the background
        self.on_request: Callable[[LiveState], object] | None = None
        #: reads up to this cost are served at once (a file's plane), larger ones later
        self.sync_voxels = int(sync_voxels)
        self._voxel_cost = int(getattr(result, "voxel_cost", 1))
        self._lock = threading.Lock()
        self._done: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._pending: dict[tuple, threading.Event] = {}
        self._ahead: dict[tuple, threading.Event] = {}  # neighbours computed ahead
        self._previous = previous._done.copy() if previous is not None else OrderedDict()
        self.closed = False
        #: while paused, reads get placeholders and start nothing (a layer being built is
        #: sliced at napari's default position before it is placed in the viewer)
        self.paused = False
        self._last_at: tuple[int, int] | None = None  # (slider axis, position) seen last
        self._direction = 0  # the way that slider moved last (0: not yet)
        self.n_computed = 0  # regions computed because they were asked for
        self.n_computed_ahead = 0  # neighbours computed ahead and not (yet) asked for

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def read(self, region: tuple, cancel: threading.Event | None = None) -> np.ndarray:
        """The values over ``region``: a result computes them (stopping when ``cancel``
        is set), any other array-like reads them."""
        return read_key(self.result, region, cancel)

    def cheap(self, region: tuple) -> bool:
        """Whether ``region`` is cheap enough to read on the slicing thread."""
        size = 1
        for r in region:
            if isinstance(r, slice):
                size *= r.stop - r.start
        return size * self._voxel_cost <= self.sync_voxels

    def lookup(self, region: tuple) -> np.ndarray | None:
        """``region``'s values if computed (alone, or inside a larger region), else None."""
        key = _region_key(region)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            for outer, values in reversed(self._done.items()):
                crop = _inside(key, outer)
                if crop is not None:
                    return values[crop]
        cached_of = getattr(self.result, "cached", None)
        cached = cached_of(region) if cached_of is not None else None
        if cached is not None:
            self._keep(key, cached)
        return cached

    def _keep(self, key: tuple, values: np.ndarray) -> None:
        with self._lock:
            self._done[key] = values
            while len(self._done) > KEEP:
                self._done.popitem(last=False)

    def placeholder(self, region: tuple) -> np.ndarray:
        """What to show until ``region`` is computed: its values before the parameters
        changed, else the nearest plane already computed (no flash of black while
        scrolling), else zeros."""
        key = _region_key(region)
        shape = tuple(r.stop - r.start for r in region if isinstance(r, slice))
        old = self._previous.get(key)
        if old is not None and old.shape == shape:
            return old.astype(self.result.dtype, copy=False)
        with self._lock:
            near = [(sum(abs(_start(a) - _start(b)) for a, b in zip(k, key, strict=False)), v)
                    for k, v in self._done.items() if v.shape == shape]
        if near:
            return min(near, key=lambda kv: kv[0])[1]
        return np.zeros(shape, self.result.dtype)

    def request(self, region: tuple) -> None:
        """Compute ``region`` in the background; drop work for any other region."""
        key = _region_key(region)
        with self._lock:
            if self.closed or key in self._pending:
                return
            ahead = self._ahead.pop(key, None)
            for event in [*self._pending.values(), *self._ahead.values()]:
                event.set()  # stale: cancelled, not finished
            self._ahead.clear()
            if ahead is not None and not ahead.is_set():
                self._pending = {key: ahead}  # computed ahead already: adopt that work
                return
            self._pending = {key: threading.Event()}
            cancel = self._pending[key]
        if self.on_request is not None:
            self.on_request(self)
        _executor.submit(self._run, region, key, cancel)

    def _prefetch(self, region: tuple) -> None:
        """After a plane lands, compute its neighbours along the slider moved last, while
        idle; a request for anything else cancels this work."""
        shape = self.result.shape
        # sliders: axes napari indexes with one position (an int, or a slice of one)
        steps = [a for a, r in enumerate(region[:-2]) if shape[a] > 1 and (
            not isinstance(r, slice) or r.stop - r.start == 1)]
        if not steps:
            return
        axis = steps[-1]  # the innermost slider (z of a t, z stack)
        at = region[axis]
        # ahead in the direction the slider moves (both ways until it has moved): the
        # display threads are shared by every layer
        last, self._last_at = self._last_at, (axis, _start(at))
        if last is None or last[0] != axis:
            self._direction = 0
        elif last[1] != _start(at):
            self._direction = 1 if _start(at) > last[1] else -1
        for delta in (self._direction,) if self._direction else (1, -1):
            i = _start(at) + delta
            if not 0 <= i < shape[axis]:
                continue
            moved = slice(i, i + 1) if isinstance(at, slice) else i
            near = region[:axis] + (moved,) + region[axis + 1 :]
            key = _region_key(near)
            with self._lock:
                if self.closed or self._pending or key in self._done or key in self._ahead:
                    continue
                cancel = self._ahead[key] = threading.Event()
            _executor.submit(self._run, near, key, cancel)

    def _run(self, region: tuple, key: tuple, cancel: threading.Event) -> None:
        error: BaseException | None = None
        done = False
        try:
            if not cancel.is_set():
                values = self.read(region, cancel)
                self._keep(key, values)
                done = True
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, not raised in a thread
            error = exc
        with self._lock:
            wanted = self._pending.get(key) is cancel  # asked for (perhaps adopted)
            if done:
                if wanted:
                    self.n_computed += 1
                else:
                    self.n_computed_ahead += 1
            if self._ahead.get(key) is cancel:
                del self._ahead[key]
        try:
            callback = self.on_ready
            if wanted and callback is not None and (done or error is not None) \
                    and not cancel.is_set() and not self.closed:
                callback(self, error)  # posted before the state stops being busy
        finally:
            with self._lock:
                if self._pending.get(key) is cancel:
                    del self._pending[key]
        if wanted and done:
            self._prefetch(region)

    def compute_now(self, region: tuple) -> np.ndarray:
        values = self.read(region)
        self._keep(_region_key(region), values)
        return values

    def close(self) -> None:
        """Stop all work: the layer was removed or its data replaced."""
        with self._lock:
            self.closed = True
            for event in [*self._pending.values(), *self._ahead.values()]:
                event.set()
            self._pending.clear()
            self._ahead.clear()


class LiveArray(LazyArray):
    """A lazy result (or a file's level) as napari layer data whose reads return at once.

    Without ``state.on_ready`` (no GUI listening) a read computes synchronously, like a
    ``LazyArray``; so does a read cheaper than ``sync_voxels`` (a file's plane).
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
        values = self.state.lookup(region)
        if values is not None:
            if self.state.on_ready is not None and not self.state.paused:
                self.state._prefetch(region)  # keep one plane ahead while scrolling
            return values
        whole = aligned(region, self.source.shape)
        if whole == region:
            return self._read_whole(region)
        crop = tuple(slice(r.start - w.start, r.stop - w.start)
                     for r, w in zip(region, whole, strict=False) if isinstance(r, slice))
        return self._read_whole(whole)[crop]

    def _read_whole(self, region: tuple) -> np.ndarray:
        values = self.state.lookup(region)
        if values is not None:
            return values
        if self.state.on_ready is None and not self.state.paused or self.state.cheap(region):
            return self.state.compute_now(region)
        if not self.state.paused:
            self.state.request(region)
        return self.state.placeholder(region)


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

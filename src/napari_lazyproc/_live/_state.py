"""What one live layer has computed, is computing, and whom to tell (``LiveState``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .._shared.source import read_key
from ..io import reader_stamp
from ..ops import Cancelled
from . import _playback
from ._display_queue import _LATER, _NOW, _Job, _queue
from ._playback import Planner
from ._prefetch import PREFETCH
from ._regions import _inside, _region_key, _start

#: regions kept per layer once computed (the planes around the one on screen)
KEEP = 8


class LiveState(Planner):
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
        #: the stamp each region in ``_done`` was computed under (``io._identity``): a
        #: region whose input changed on disk since is computed again, never shown
        self._stamps: dict[tuple, object] = {}
        self._pending: dict[tuple, _Job] = {}  # the region on screen, computing
        self._ahead: dict[tuple, _Job] = {}  # frames ahead, computing
        self._held: dict[tuple, int] = {}  # frames ahead computed, not shown: their bytes
        self._in_flight = 0  # jobs queued or running on a display thread
        self._previous = previous._done.copy() if previous is not None else OrderedDict()
        self.closed = False
        #: while paused, reads get placeholders and start nothing (a layer being built is
        #: sliced at napari's default position before it is placed in the viewer)
        self.paused = False
        # how the slider moves: the region read last, the axis that moved, which way
        # (0: not known), and how many steps in a row went that way
        self._last: tuple | None = None
        self._axis: int | None = None
        self._direction = 0
        self._streak = 0
        self._window: list[tuple] = []  # the frames ahead planned last, nearest first
        #: napari plays an axis (``play``): frames ahead are computed at once, as many as
        #: the budget allows; a live update during playback keeps playing
        self.playing = bool(previous.playing) if previous is not None else False
        #: this level is the one on screen (not only napari's thumbnail): it computes
        #: frames ahead, and its regions come before frames ahead
        self.ahead = bool(previous.ahead) if previous is not None else True
        self._wrap = bool(previous._wrap) if previous is not None else False
        if previous is not None and previous.playing:
            self._axis, self._direction = previous._axis, previous._direction
        #: a live update (new parameters) plans frames ahead only from this moment on
        self._ahead_from = (time.monotonic() + _playback.AHEAD_AFTER_UPDATE
                            if previous is not None else 0.0)
        self._later: tuple | None = None  # the region to plan when that moment comes
        self.n_computed = 0  # regions computed because they were asked for
        self.n_computed_ahead = 0  # neighbours computed ahead and not (yet) asked for
        self.n_ahead_shown = 0  # frames computed ahead, then shown
        self.n_placeholders = 0  # reads answered with a placeholder
        self.n_sync = 0  # reads computed on the calling (slicing) thread
        #: whether the last read of the region on screen had its values (not a placeholder)
        self.last_ready = False

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    @property
    def in_flight(self) -> int:
        """Jobs of this state queued or running on a display thread (a cancelled one
        counts until its thread lets go of it: it stops before its next tile)."""
        with self._lock:
            return self._in_flight

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
        """``region``'s values if computed (alone, or inside a larger region), else None.
        A frame computed ahead is now shown: its bytes leave the prefetch budget."""
        key = _region_key(region)
        with self._lock:
            found = None
            if key in self._done:
                found, values = key, self._done[key]
            else:
                for outer, vals in reversed(self._done.items()):
                    crop = _inside(key, outer)
                    if crop is not None:
                        found, values = outer, vals[crop]
                        break
            if found is not None and self._stamps.get(found) != self._stamp(found):
                self._forget(found)  # its input changed on disk since
                found = None
            if found is not None:
                self._done.move_to_end(found)
                if found in self._held:
                    PREFETCH.release(self._held.pop(found))
                    self.n_ahead_shown += 1
                    self._trim()
                return values
        cached_of = getattr(self.result, "cached", None)
        stamp = self._stamp(key) if cached_of is not None else None
        cached = cached_of(region) if cached_of is not None else None
        if cached is not None:
            self._keep(key, cached, stamp)
        return cached

    def _stamp(self, key: tuple):
        """The stamp of a region (by its key) of what this layer shows."""
        region = tuple(slice(*k) if isinstance(k, tuple) else slice(k, k + 1) for k in key)
        return reader_stamp(self.result, region)

    def _forget(self, key: tuple) -> None:
        """Drop a computed region; the caller holds the lock."""
        del self._done[key]
        self._stamps.pop(key, None)
        if key in self._held:
            PREFETCH.release(self._held.pop(key))

    def _trim(self) -> None:
        """Forget the oldest regions beyond ``KEEP`` (never frames held ahead); the caller
        holds the lock."""
        extra = len(self._done) - len(self._held) - KEEP
        for key in list(self._done):
            if extra <= 0:
                break
            if key not in self._held:
                self._forget(key)
                extra -= 1

    def _keep(self, key: tuple, values: np.ndarray, stamp) -> None:
        with self._lock:
            self._done[key] = values
            self._stamps[key] = stamp
            self._done.move_to_end(key)
            self._trim()

    def placeholder(self, region: tuple) -> np.ndarray:
        """What to show until ``region`` is computed: its values before the parameters
        changed, else the nearest plane already computed (no flash of black while
        scrolling), else zeros."""
        self.n_placeholders += 1
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
        """Compute ``region`` in the background; drop work for any other region (frames
        ahead of it in the play direction go on). ``on_request`` is told each time, even
        while the region computes already: the layer shows a placeholder, and its spinner
        must say so (a region landing meanwhile may have cleared it)."""
        key = _region_key(region)
        job = None
        with self._lock:
            if self.closed:
                return
            if key not in self._pending:
                for old in self._pending.values():
                    old.cancel.set()  # stale: cancelled, not finished
                ahead = self._ahead.pop(key, None)
                if ahead is not None and not ahead.cancel.is_set():
                    self._unreserve(ahead)  # wanted now: no longer ahead of anything
                    self._pending = {key: ahead}  # computed ahead already: adopt that work
                else:
                    job = _Job()
                    self._pending = {key: job}
                    self._in_flight += 1
        if self.on_request is not None:
            self.on_request(self)
        if job is not None:
            _queue.submit((_NOW if self.ahead else _LATER, 0), self._run, region, key, job)

    @staticmethod
    def _unreserve(job: _Job) -> None:
        if job.nbytes:
            PREFETCH.release(job.nbytes)
            job.nbytes = 0


    def _run(self, region: tuple, key: tuple, job: _Job) -> None:
        try:
            self._compute(region, key, job)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _compute(self, region: tuple, key: tuple, job: _Job) -> None:
        error: BaseException | None = None
        values = None
        stamp = None
        try:
            if not job.cancel.is_set():
                stamp = self._stamp(key)  # before the read: a change meanwhile is seen
                values = self.read(region, job.cancel)
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, not raised in a thread
            error = exc
        with self._lock:
            wanted = self._pending.get(key) is job  # asked for (perhaps adopted)
            ahead = self._ahead.get(key) is job
            if ahead:
                del self._ahead[key]
            if values is not None and (wanted or ahead) and not self.closed:
                self._done[key] = values
                self._stamps[key] = stamp
                self._done.move_to_end(key)
                if wanted:
                    self.n_computed += 1
                else:
                    self.n_computed_ahead += 1
                    if job.nbytes:
                        self._held[key] = job.nbytes  # held until shown
                        job.nbytes = 0
                self._trim()
            self._unreserve(job)
        try:
            callback = self.on_ready
            if wanted and callback is not None and (values is not None or error is not None) \
                    and not job.cancel.is_set() and not self.closed:
                callback(self, error)  # posted before the state stops being busy
        finally:
            with self._lock:
                if self._pending.get(key) is job:
                    del self._pending[key]
        if wanted and values is not None and not self.paused:
            self.plan(region)  # the region on screen landed: now the frames ahead

    def compute_now(self, region: tuple) -> np.ndarray:
        self.n_sync += 1
        key = _region_key(region)
        stamp = self._stamp(key)
        values = self.read(region)
        self._keep(key, values, stamp)
        return values

    def close(self) -> None:
        """Stop all work and release what it holds of the prefetch budget: the layer was
        removed, its data replaced, or its viewer closed."""
        with self._lock:
            self.closed = True
            for job in self._pending.values():
                job.cancel.set()
            self._pending.clear()
            self._drop_ahead(set())


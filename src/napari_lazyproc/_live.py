"""Display arrays that never block the viewer: a missing region is computed in the background.

napari slices layers on the main thread. A ``LiveArray`` answers each slice at once: with
the values when they are ready (or cached), otherwise with a placeholder (the previous
values of that region, or zeros) while a background thread computes the region. When it
is done, ``on_ready`` is called (from that thread) and the GUI refreshes the layer, which
then finds the values. Asking for another region, or replacing the array (a parameter
changed), cancels the work for the old one: queued work never starts, and running work
stops before its next tile.

Frames ahead (playback): each state watches how its slider moves. Stepping one way
computes the next planes that way while idle, more of them the longer it goes on; while
napari plays an axis (``LiveState.play``, set by the GUI), the next frames in the play
direction are read or computed at once, nearest first, as far as the prefetch budget
(``set_prefetch_budget``, shared by every layer) allows. Frames computed ahead are held
until shown; playback stopping or the view changing drops that work.

No napari import here: the GUI sets ``on_ready`` and says when playback starts and stops.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ._shared.source import read_key
from .io import LazyArray, reader_stamp
from .ops import Cancelled

_log = logging.getLogger(__name__)


class _DisplayQueue:
    """The display threads: they take the most urgent work first (a region on screen
    before frames ahead, nearer frames before farther ones), and skip cancelled work."""

    def __init__(self, n_threads: int) -> None:
        self._n = n_threads
        self._heap: list = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, priority: tuple, fn: Callable, *args) -> None:
        with self._cv:
            heapq.heappush(self._heap, (priority, next(self._order), fn, args))
            if len(self._threads) < self._n:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"lazyproc-display-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            self._cv.notify()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a GUI callback failed: the thread goes on
                _log.exception("display work failed")


#: two display threads: a raw layer's coarse volume and a result's compute side by side,
#: or the frame on screen and the frames ahead of it (each region runs on one thread)
_queue = _DisplayQueue(2)

#: seconds after a live update before its frames ahead are computed: while a parameter is
#: being dragged each result is stale at once, and its frames ahead would hold the display
#: threads (and the cores) from the next one
AHEAD_AFTER_UPDATE = 0.3

#: priorities: the region on screen, then frames ahead by distance, then regions of levels
#: only the layer list's thumbnail shows
_NOW, _AHEAD, _LATER = 0, 1, 2


class PrefetchBudget:
    """What frames computed ahead of the one on screen may hold, all layers together.

    Parameters
    ----------
    max_bytes : int
        The most bytes that frames computed ahead (held until shown, or being computed)
        may take.
    max_frames : int
        The most frames ahead of the one on screen, per level of a layer.

    Notes
    -----
    Bytes are reserved when a frame is scheduled and released when it is shown, falls
    behind the playback, or its work is dropped (playback stopped, the view changed, the
    layer removed). A frame that does not fit is not scheduled: playback then shows it
    when it is computed, like any other region.
    """

    def __init__(self, max_bytes: int, max_frames: int) -> None:
        self.max_bytes = int(max_bytes)
        self.max_frames = int(max_frames)
        self._held = 0
        self.peak = 0  # the most bytes held at once (reset with ``reset_peak``)
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """Bytes reserved now by frames ahead (computed or being computed)."""
        return self._held

    def reserve(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` if they fit under the budget; say whether they did."""
        with self._lock:
            if self._held + nbytes > self.max_bytes:
                return False
            self._held += nbytes
            self.peak = max(self.peak, self._held)
            return True

    def release(self, nbytes: int) -> None:
        """Give back ``nbytes`` reserved before (a frame shown, or its work dropped)."""
        with self._lock:
            self._held = max(0, self._held - nbytes)

    def reset_peak(self) -> None:
        """Start measuring ``peak`` afresh (from what is held now)."""
        with self._lock:
            self.peak = self._held


#: the prefetch budget shared by every live layer (1 GiB, 32 frames ahead by default)
PREFETCH = PrefetchBudget(2**30, 32)


def set_prefetch_budget(max_bytes: int | None = None, *, max_frames: int | None = None) -> None:
    """Set how much playback may compute ahead of the frame on screen.

    Parameters
    ----------
    max_bytes : int, optional
        The most bytes that frames computed ahead may hold, all layers together
        (default 1 GiB; 0 turns prefetch off). Frames already held stay until shown.
    max_frames : int, optional
        The most frames ahead of the one on screen, per layer (default 32).

    Raises
    ------
    ValueError
        When ``max_bytes`` or ``max_frames`` is negative.
    """
    if max_bytes is not None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
        PREFETCH.max_bytes = int(max_bytes)
    if max_frames is not None:
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0 (got {max_frames})")
        PREFETCH.max_frames = int(max_frames)


def get_prefetch_budget() -> int:
    """The prefetch budget in bytes (see ``set_prefetch_budget``).

    Returns
    -------
    int
        The most bytes frames computed ahead may hold, all layers together.
    """
    return PREFETCH.max_bytes


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


def _sliders(key: tuple, shape: tuple) -> list[int]:
    """Axes a region key indexes at one position (napari's sliders), longer than one."""
    return [a for a, k in enumerate(key) if shape[a] > 1 and (
        not isinstance(k, tuple) or k[1] - k[0] == 1)]


def _at(key: tuple, axis: int, i: int) -> tuple:
    """``key`` (a region, or its key) moved to position ``i`` along ``axis``."""
    k = key[axis]
    moved = (i, i + 1) if isinstance(k, tuple) else (
        slice(i, i + 1) if isinstance(k, slice) else i)
    return key[:axis] + (moved,) + key[axis + 1 :]


class _Job:
    """Work for one region on a display thread: its cancel event and reserved bytes."""

    __slots__ = ("cancel", "nbytes")

    def __init__(self, nbytes: int = 0) -> None:
        self.cancel = threading.Event()
        self.nbytes = nbytes


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
        #: the stamp each region in ``_done`` was computed under (``io._identity``): a
        #: region whose input changed on disk since is computed again, never shown
        self._stamps: dict[tuple, object] = {}
        self._pending: dict[tuple, _Job] = {}  # the region on screen, computing
        self._ahead: dict[tuple, _Job] = {}  # frames ahead, computing
        self._held: dict[tuple, int] = {}  # frames ahead computed, not shown: their bytes
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
        self._ahead_from = time.monotonic() + AHEAD_AFTER_UPDATE if previous is not None \
            else 0.0
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
        ahead of it in the play direction go on)."""
        key = _region_key(region)
        with self._lock:
            if self.closed or key in self._pending:
                return
            for job in self._pending.values():
                job.cancel.set()  # stale: cancelled, not finished
            ahead = self._ahead.pop(key, None)
            if ahead is not None and not ahead.cancel.is_set():
                self._unreserve(ahead)  # wanted now: no longer ahead of anything
                self._pending = {key: ahead}  # computed ahead already: adopt that work
                job = None
            else:
                job = _Job()
                self._pending = {key: job}
        if self.on_request is not None:
            self.on_request(self)
        if job is not None:
            _queue.submit((_NOW if self.ahead else _LATER, 0), self._run, region, key, job)

    @staticmethod
    def _unreserve(job: _Job) -> None:
        if job.nbytes:
            PREFETCH.release(job.nbytes)
            job.nbytes = 0

    # ------------------------------------------------------------------ frames ahead
    def play(self, axis: int | None = None, direction: int = 1, wrap: bool = False) -> None:
        """napari started playing: compute frames ahead at once, as the budget allows.

        Parameters
        ----------
        axis : int, optional
            The axis of this state's array being played, when known; otherwise (and
            whenever they disagree) it follows the slider that moves.
        direction : {1, -1}
            The play direction until the slider has moved.
        wrap : bool
            Playback loops: past the last frame comes the first.
        """
        with self._lock:
            self.playing = True
            self._wrap = bool(wrap)
            if axis is not None and 0 <= axis < len(self.result.shape):
                self._axis = axis
            self._direction = 1 if direction >= 0 else -1

    def stop(self) -> None:
        """Playback stopped or the view changed: drop the work ahead and release the
        frames held ahead (they stay among the ``KEEP`` regions remembered)."""
        with self._lock:
            self.playing = False
            self._wrap = False
            self._streak = 0
            self._drop_ahead(set())

    def drop_ahead(self) -> None:
        """Drop the work ahead and release the frames held ahead (this level is no longer
        on screen); playback, if on, goes on from the next frame read here."""
        with self._lock:
            self._streak = 0
            self._drop_ahead(set())

    def _drop_ahead(self, keep: set) -> None:
        """Cancel work ahead and release frames held, except for ``keep``; the caller
        holds the lock."""
        for key in [k for k in self._ahead if k not in keep]:
            job = self._ahead.pop(key)
            job.cancel.set()
            self._unreserve(job)
        for key in [k for k in self._held if k not in keep]:
            PREFETCH.release(self._held.pop(key))
        self._window = [k for k in self._window if k in keep]
        self._trim()

    def observe(self, region: tuple) -> None:
        """Note where the slider is now: which axis moved, which way, and how many steps
        in a row; another view (3D, another axis order or level, panned) drops the work
        ahead.

        Parameters
        ----------
        region : tuple of slice or int
            The region napari reads now (whole tiles).
        """
        key = _region_key(region)
        with self._lock:
            last, self._last = self._last, key
            if last is None or last == key:
                return
            same_view = len(last) == len(key) and all(
                (isinstance(a, tuple) and a[1] - a[0] > 1) == (isinstance(b, tuple)
                                                               and b[1] - b[0] > 1)
                and (a == b or not (isinstance(a, tuple) and a[1] - a[0] > 1))
                for a, b in zip(last, key, strict=True))
            moved = [a for a, (p, q) in enumerate(zip(last, key, strict=False))
                     if _start(p) != _start(q)] if same_view else []
            if len(moved) != 1:  # another view (3D, another level, panned) or a jump
                self._axis, self._direction, self._streak = None, 0, 0
                self._drop_ahead(set())
                return
            axis = moved[0]
            delta = _start(key[axis]) - _start(last[axis])
            n = self.result.shape[axis]
            if self.playing and axis == self._axis and abs(delta) > n // 2:
                return  # playback looped round: same direction
            if not self.playing and abs(delta) > 1:  # a jump: no direction yet
                self._axis, self._direction, self._streak = axis, 0, 0
                return
            direction = 1 if delta > 0 else -1
            if axis == self._axis and direction == self._direction:
                self._streak += 1
            else:
                self._streak = 1
            self._axis, self._direction = axis, direction

    def _targets(self, region: tuple) -> list[tuple[int, tuple]]:
        """The frames ahead of ``region`` to have ready, nearest first, as (distance,
        region); the caller holds the lock."""
        shape = self.result.shape
        key = _region_key(region)
        sliders = _sliders(key, shape)
        if not sliders or PREFETCH.max_frames == 0 or not self.ahead:
            return []
        axis = self._axis if self._axis in sliders else sliders[-1]
        if self.playing:
            ways = (self._direction or 1,)
            depth = PREFETCH.max_frames
        elif self._direction and axis == self._axis:
            ways = (self._direction,)  # more ahead the longer the slider goes that way
            depth = min(PREFETCH.max_frames, 2 ** max(0, self._streak - 1))
        else:
            ways, depth = (1, -1), 1  # not moved yet: both neighbours
        at, n = _start(key[axis]), shape[axis]
        if self.playing and self._wrap:
            depth = min(depth, n - 1)  # once round the loop at most
        out = []
        for d in range(1, depth + 1):
            for way in ways:
                i = at + way * d
                if self.playing and self._wrap:
                    i %= n
                if 0 <= i < n and i != at:
                    out.append((d, _at(region, axis, i)))
        return out

    def plan(self, region: tuple, schedule: bool = True) -> None:
        """Keep the frames ahead of the region on screen coming.

        Parameters
        ----------
        region : tuple of slice or int
            The region on screen (whole tiles, as read).
        schedule : bool
            Queue the frames ahead that are missing, nearest first, while the budget
            allows; otherwise only drop the work for frames no longer ahead.
        """
        if schedule and not self.playing:
            wait = self._ahead_from - time.monotonic()
            if wait > 0:  # just after a live update: later, if still wanted then
                self._plan_later(region, wait)
                schedule = False
        jobs = []
        with self._lock:
            if self.closed:
                return
            targets = self._targets(region)
            keys = [_region_key(r) for _, r in targets]
            self._drop_ahead(set(keys))
            self._window = keys
            if not schedule:
                return
            for (distance, near), key in zip(targets, keys, strict=True):
                if key in self._done or key in self._ahead or key in self._pending:
                    continue
                nbytes = math.prod(r.stop - r.start for r in near if isinstance(r, slice)
                                   ) * np.dtype(self.result.dtype).itemsize
                if not PREFETCH.reserve(nbytes):
                    break  # nearest first: the farther ones wait for room
                job = self._ahead[key] = _Job(nbytes)
                jobs.append((distance, near, key, job))
        for distance, near, key, job in jobs:
            _queue.submit((_AHEAD, distance), self._run, near, key, job)

    def prefetch_status(self) -> dict:
        """How far ahead this state is: ``ready`` frames in a row ahead of the one on
        screen are computed, of ``planned``; ``nbytes`` held ahead; ``axis`` and
        ``direction`` of the motion (None and 0 when not known); ``playing``.

        Returns
        -------
        dict
        """
        with self._lock:
            ready = 0
            for key in self._window:
                if key not in self._done:
                    break
                ready += 1
            return {"ready": ready, "planned": len(self._window),
                    "nbytes": sum(self._held.values()) + sum(
                        j.nbytes for j in self._ahead.values()),
                    "axis": self._axis, "direction": self._direction,
                    "playing": self.playing}

    def _run(self, region: tuple, key: tuple, job: _Job) -> None:
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

    def _plan_later(self, region: tuple, wait: float) -> None:
        """``plan(region)`` in ``wait`` seconds if ``region`` is still the one on screen
        (one timer a state: the region planned is the latest asked for)."""
        with self._lock:
            pending, self._later = self._later, region
        if pending is not None:
            return

        def later() -> None:
            with self._lock:
                region, self._later = self._later, None
            if region is not None and not self.closed \
                    and self._last in (None, _region_key(region)):
                self.plan(region)

        timer = threading.Timer(wait, later)
        timer.daemon = True
        timer.start()

    def compute_now(self, region: tuple) -> np.ndarray:
        self.n_sync += 1
        key = _region_key(region)
        stamp = self._stamp(key)
        values = self.read(region)
        self._keep(key, values, stamp)
        return values

    def close(self) -> None:
        """Stop all work: the layer was removed or its data replaced."""
        with self._lock:
            self.closed = True
            for job in self._pending.values():
                job.cancel.set()
            self._pending.clear()
            self._drop_ahead(set())


class LiveArray(LazyArray):
    """A lazy result (or a file's level) as napari layer data whose reads return at once.

    Without ``state.on_ready`` (no GUI listening) a read computes synchronously, like a
    ``LazyArray``; so does a read cheaper than ``sync_voxels`` (a file's plane), unless
    that frame is being read ahead already (it is then shown when it lands).
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
                state.plan(whole)  # ready: keep the frames ahead coming
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
                state.cheap(region) and not reading):
            values = state.compute_now(region)
            state.last_ready = True
            if live:
                state.plan(region)
            return values
        if not state.paused:
            state.request(region)
            if live:
                state.plan(region, schedule=state.playing)  # playback goes on meanwhile
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

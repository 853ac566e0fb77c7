"""Frames ahead of the one on screen: how a live layer's slider moves, and the window of
frames to have ready (playback). A mixin of ``LiveState``, which holds the data it plans on."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from ._display_queue import _AHEAD, _Job, _queue, plan_soon
from ._prefetch import PREFETCH
from ._regions import _at, _region_key, _sliders, _start

#: seconds after a live update before its frames ahead are computed: while a parameter is
#: being dragged each result is stale at once, and its frames ahead would hold the display
#: threads (and the cores) from the next one
AHEAD_AFTER_UPDATE = 0.3


class Planner:
    """Playback's side of ``LiveState``: ``play`` / ``stop``, ``observe`` the slider,
    ``plan`` the frames ahead, ``prefetch_status``."""

    # ------------------------------------------------------------------ frames ahead
    _planning = 0  # plans queued on the planner's thread, not yet run
    _generation = 0  # bumped by ``stop`` and ``drop_ahead``: plans queued before are void

    @property
    def planning(self) -> bool:
        """Whether a plan of frames ahead is queued and has not run yet."""
        return self._planning > 0

    def plan_soon(self, region: tuple, schedule: bool = True) -> None:
        """``plan`` on the planner's thread (napari's thread only queues it)."""
        with self._lock:
            self._planning += 1
            generation = self._generation
        plan_soon(self._plan_queued, region, schedule, generation)

    def _plan_queued(self, region: tuple, schedule: bool, generation: int) -> None:
        try:
            if generation == self._generation:
                self.plan(region, schedule)
        finally:
            with self._lock:
                self._planning -= 1

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
            self._generation += 1
            self._drop_ahead(set())

    def drop_ahead(self) -> None:
        """Drop the work ahead and release the frames held ahead (this level is no longer
        on screen); playback, if on, goes on from the next frame read here."""
        with self._lock:
            self._streak = 0
            self._generation += 1
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
            self._in_flight += len(jobs)
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


"""The display threads: background reads and computations for live layers, most urgent first."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

_log = logging.getLogger(__name__)


class _DisplayQueue:
    """The display threads: they take the most urgent work first (a region on screen
    before frames ahead, nearer frames before farther ones), and skip cancelled work."""

    def __init__(self, n_threads: int, name: str = "lazyproc-display") -> None:
        self._n = n_threads
        self._name = name
        self._heap: list = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, priority: tuple, fn: Callable, *args) -> None:
        with self._cv:
            heapq.heappush(self._heap, (priority, next(self._order), fn, args))
            if len(self._threads) < self._n:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}-{len(self._threads)}")
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

#: priorities: the region on screen, then frames ahead by distance, then regions of levels
#: only the layer list's thumbnail shows
_NOW, _AHEAD, _LATER = 0, 1, 2


class _Job:
    """Work for one region on a display thread: its cancel event and reserved bytes."""

    __slots__ = ("cancel", "nbytes")

    def __init__(self, nbytes: int = 0) -> None:
        self.cancel = threading.Event()
        self.nbytes = nbytes


#: the planner's thread: a read on napari's thread only notes where the slider is, and
#: the frames ahead of it are planned (and their work queued or dropped) here
_planner = _DisplayQueue(1, "lazyproc-planner")


def plan_soon(fn: Callable, *args) -> None:
    """Run ``fn(*args)`` (a state's ``plan``) on the planner's thread, in order."""
    _planner.submit((0,), fn, *args)


def submit(fn: Callable, *args) -> None:
    """Run ``fn(*args)`` on a display thread, as urgently as the region on screen (a
    layer's first values: its contrast limits)."""
    _queue.submit((_NOW, 0), fn, *args)

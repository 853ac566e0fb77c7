"""Coalescing a burst of changes (a dragged slider) into few calls, the last value last.

A parameter dragged through twenty values in a second would otherwise build twenty results
and re-slice the layer twenty times on napari's thread, each made stale by the next. A
``Coalesced`` callable runs the first change of a burst at once (a single edit is never
delayed), then with the latest arguments once ``interval_ms`` have passed since the last
call returned, and always runs the last one. Work started for a value passed over is
cancelled by the next update (``LiveState.close``), and the layer keeps the previous
result on screen until the new one lands.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QTimer

#: the most often a burst of changes calls through (ms): about what one re-slice and a
#: first plane of a filter cost, so a drag never queues work behind itself
INTERVAL_MS = 50


class Coalesced:
    """``fn`` called at once, then at most once per ``interval_ms`` with the latest
    arguments while calls keep coming; the last call's arguments always get through.

    Parameters
    ----------
    fn : callable
        What to call (on the main thread).
    interval_ms : int
        The least time between two calls of ``fn`` during a burst.
    """

    def __init__(self, fn: Callable, interval_ms: int = INTERVAL_MS) -> None:
        self._fn = fn
        self._pending: tuple | None = None
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self._fire)
        self.n_calls = 0  # calls of ``fn``
        self.n_dropped = 0  # changes passed over (a later one came first)

    def __call__(self, *args) -> None:
        if self._timer.isActive():  # inside a burst: only the latest is kept
            if self._pending is not None:
                self.n_dropped += 1
            self._pending = args
            return
        self._call(args)

    def _call(self, args: tuple) -> None:
        self.n_calls += 1
        try:
            self._fn(*args)
        finally:  # the interval counts from the end of the call: a slow update is not
            self._timer.start()  # followed at once by the next

    def _fire(self) -> None:
        args, self._pending = self._pending, None
        if args is not None:
            self._call(args)

    @property
    def pending(self) -> bool:
        """Whether a change is being held back (it runs when the interval is over)."""
        return self._pending is not None

    def flush(self) -> None:
        """Run a change being held back now (as the timer would)."""
        if self._pending is not None:
            self._timer.stop()
            self._fire()


def coalesced(fn: Callable, interval_ms: int = INTERVAL_MS) -> Coalesced:
    """``fn`` as a ``Coalesced`` callable (see there)."""
    return Coalesced(fn, interval_ms)

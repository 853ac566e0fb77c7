"""Progress and cancellation for long jobs (global labeling, exact histograms, export)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dask.utils import format_bytes


class Cancelled(RuntimeError):
    """A job was cancelled; it left nothing that looks complete."""


class Progress:
    """Counts work done; reports to a callback or a tqdm bar; checks a cancel event.

    ``progress`` may be None (silent), True (a tqdm bar), or a callable
    ``progress(done, total)``.
    """

    def __init__(self, total: int, progress=None, cancel: threading.Event | None = None,
                 desc: str = "") -> None:
        self.total, self.done = int(total), 0
        self.nbytes = 0
        self.cancel = cancel
        self._lock = threading.Lock()
        self._bar = None
        self._callback: Callable[[int, int], object] | None = None
        if progress is True:
            from tqdm.auto import tqdm

            # on stderr: chunks done, rate and ETA, and the bytes written as a postfix
            self._bar = tqdm(total=self.total, desc=desc, unit="chunk", dynamic_ncols=True)
        elif callable(progress):
            self._callback = progress

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    def step(self, n: int = 1, nbytes: int = 0) -> None:
        self.check()
        with self._lock:
            self.done += n
            self.nbytes += nbytes
            done = self.done
        if self._bar is not None:
            if nbytes:
                self._bar.set_postfix_str(format_bytes(self.nbytes), refresh=False)
            self._bar.update(n)
        if self._callback is not None:
            self._callback(done, self.total)

    def extend(self, n: int) -> None:
        """``n`` more steps than first told (another pass over the chunks)."""
        with self._lock:
            self.total += int(n)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

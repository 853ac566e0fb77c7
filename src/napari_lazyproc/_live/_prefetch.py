"""The prefetch budget: what frames computed ahead of the one on screen may hold."""

from __future__ import annotations

import threading


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

    def reset(self) -> None:
        """Forget every reservation: for a fresh start where no live state is left (each
        test; a viewer's states that were never closed would otherwise keep theirs)."""
        with self._lock:
            self._held = self.peak = 0

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

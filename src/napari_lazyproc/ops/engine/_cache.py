"""One bounded, thread-safe LRU cache of decompressed input chunks and finished tiles.

The cache owns its byte limit. ``set_cache_bytes`` sets the base limit; work that must
bound memory for a while (an export, a chunk task on a dask worker) enters
``CACHE.budget(max_bytes)`` instead of resizing, so that overlapping budgets, from any
threads and in any order, always leave the right limit behind.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

import numpy as np
from dask.utils import format_bytes


def _default_bytes() -> int:
    """A quarter of physical memory, at most 4 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(min(total // 4, 4 * 2**30))


def _check_bytes(max_bytes: int) -> int:
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
    return int(max_bytes)


class _Loading:
    """A value being loaded by one thread, waited for by the others."""

    __slots__ = ("done", "failed", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed = False
        self.value = None


class ChunkCache:
    """LRU by bytes. Keys carry the source token and the operation parameters, so a change
    of parameters is a different key and never shows a stale tile.

    Parameters
    ----------
    max_bytes
        The base byte limit; default: a quarter of physical memory, at most 4 GiB.

    Notes
    -----
    The effective limit, ``max_bytes``, is the smallest of the base limit and every
    active budget (see `budget`): a budget only ever lowers the limit, and each holder
    gets at most what it asked for. Values are made read-only when stored, since every
    caller shares them. A value larger than the limit is not stored.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._base = _default_bytes() if max_bytes is None else _check_bytes(max_bytes)
        self._budgets: Counter[int] = Counter()  # active budgets, a multiset of sizes
        self._limit = self._base
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._loading: dict[Hashable, _Loading] = {}  # keys being loaded now
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ limits
    @property
    def max_bytes(self) -> int:
        """The limit in force: the base limit, or the smallest active budget if lower."""
        return self._limit

    @property
    def base_bytes(self) -> int:
        """The limit set by `resize` (``set_cache_bytes``), whatever budgets are active."""
        return self._base

    def resize(self, max_bytes: int) -> None:
        """Set the base limit (what ``set_cache_bytes`` sets); budgets still apply.

        To bound memory for a while, use `budget`, which restores the limit on leaving.
        """
        max_bytes = _check_bytes(max_bytes)
        with self._lock:
            self._base = max_bytes
            self._update_limit()

    @contextmanager
    def budget(self, max_bytes: int) -> Iterator[None]:
        """Hold the cache to at most ``max_bytes`` while the block runs.

        Parameters
        ----------
        max_bytes
            The most bytes the cache may hold while the block runs.

        Notes
        -----
        Budgets may overlap, from several threads and in any order (two exports, or an
        export while a viewer displays): while any is active the limit is the smallest
        of them and the base limit; leaving one restores the limit the others (or the
        base) set. Entries over the new limit are evicted when a budget starts.
        """
        max_bytes = _check_bytes(max_bytes)
        with self._lock:
            self._budgets[max_bytes] += 1
            self._update_limit()
        try:
            yield
        finally:
            with self._lock:
                self._budgets[max_bytes] -= 1
                if not self._budgets[max_bytes]:
                    del self._budgets[max_bytes]
                self._update_limit()

    def _update_limit(self) -> None:
        """Recompute the limit and evict down to it; the caller holds the lock."""
        self._limit = min(self._base, *self._budgets) if self._budgets else self._base
        self._evict()

    def _evict(self) -> None:
        while self._bytes > self._limit and self._items:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.nbytes

    # ------------------------------------------------------------------ entries
    def get(self, key: Hashable) -> np.ndarray | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def get_or_load(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The value stored under ``key``, or ``load()`` stored under it. Callers asking
        for a key that another thread is loading wait for that load instead of repeating
        it: two tiles of a plane share the chunks of their halos, and each chunk is then
        read and decoded once.

        Parameters
        ----------
        key
            The cache key.
        load
            Computes the value when it is neither stored nor being loaded.

        Returns
        -------
        numpy.ndarray
            The value (read-only when it was stored).
        """
        found, mine, others = self.claim([key])
        if found:
            return found[key]
        if others:
            return self.wait(key, others[key], load)
        try:
            value = load()
        except BaseException:
            self.abandon(mine)
            raise
        self.fulfil(key, value)
        return value

    def claim(self, keys: list[Hashable]) -> tuple[dict, list, dict]:
        """Sort ``keys`` for a caller that loads several at once (one read of a box of
        chunks): the values stored, the keys this caller must load (claimed: others wait
        for them, and the caller must ``fulfil`` or ``abandon`` each), and the loads of
        other callers to wait for (``wait``).

        Parameters
        ----------
        keys : list
            The cache keys wanted.

        Returns
        -------
        found : dict
            key -> value, for the keys stored now.
        mine : list
            The keys this caller claimed.
        others : dict
            key -> a load under way elsewhere; ``wait(key, it, load)`` gives its value.
        """
        found, mine, others = {}, [], {}
        with self._lock:
            for key in keys:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    found[key] = value
                elif key in self._loading:
                    self.hits += 1
                    others[key] = self._loading[key]
                else:
                    self._loading[key] = _Loading()
                    self.misses += 1
                    mine.append(key)
        return found, mine, others

    def fulfil(self, key: Hashable, value: np.ndarray) -> None:
        """Store the value of a claimed key and hand it to those waiting for it."""
        self.put(key, value)
        with self._lock:
            loading = self._loading.pop(key)
        loading.value = value
        loading.done.set()

    def abandon(self, keys: list[Hashable]) -> None:
        """Give up claimed keys not fulfilled (the load failed): waiters load them."""
        with self._lock:
            dropped = [self._loading.pop(k) for k in keys if k in self._loading]
        for loading in dropped:
            loading.failed = True
            loading.done.set()

    def wait(self, key: Hashable, loading, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The value of ``key``, which another caller claimed (``loading``, from
        ``claim``), once loaded; loaded here when that load failed."""
        loading.done.wait()
        if not loading.failed:
            return loading.value
        return self.get_or_load(key, load)

    def put(self, key: Hashable, value: np.ndarray) -> None:
        """Store ``value`` (made read-only) under ``key``, evicting the least recently used.

        A value larger than the limit is not stored: it would evict everything else.
        """
        nbytes = int(getattr(value, "nbytes", 0))
        if nbytes > self._limit:
            return
        if isinstance(value, np.ndarray):
            value.setflags(write=False)  # shared between callers: never modified
        with self._lock:
            if nbytes > self._limit:  # a budget started meanwhile
                return
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += nbytes
            self._evict()

    def clear(self) -> None:
        """Drop every entry and reset the hit and miss counters (limits are kept)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        """The bytes the cache holds now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (f"ChunkCache({len(self)} entries, {format_bytes(self._bytes)} of "
                f"{format_bytes(self._limit)}, {self.hits} hits, {self.misses} misses)")


CACHE = ChunkCache()


def set_cache_bytes(max_bytes: int) -> None:
    """Set the byte limit of the shared chunk and tile cache.

    Parameters
    ----------
    max_bytes
        The most bytes the cache holds (0: no caching). An export running now may hold
        the cache lower until it finishes (``export(..., cache_bytes=...)``).
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
    CACHE.resize(max_bytes)

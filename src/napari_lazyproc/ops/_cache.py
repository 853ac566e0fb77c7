"""One bounded, thread-safe LRU cache of decompressed input chunks and finished tiles."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np


def _default_bytes() -> int:
    """A quarter of physical memory, at most 4 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(min(total // 4, 4 * 2**30))


class ChunkCache:
    """LRU by bytes. Keys carry the source token and the operation parameters, so a change
    of parameters is a different key and never shows a stale tile."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = _default_bytes() if max_bytes is None else int(max_bytes)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: np.ndarray) -> None:
        nbytes = int(getattr(value, "nbytes", 0))
        if nbytes > self.max_bytes:
            return
        if isinstance(value, np.ndarray):
            value.setflags(write=False)  # shared between callers: never modified
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = int(max_bytes)
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


CACHE = ChunkCache()


def set_cache_bytes(max_bytes: int) -> None:
    """Set the byte limit of the shared chunk and tile cache."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
    CACHE.resize(max_bytes)

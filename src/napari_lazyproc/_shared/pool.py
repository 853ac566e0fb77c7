"""The worker pool: one thread pool for the engine's tiles, chunk reads and jobs.

Work inside a pool task runs serially (no nested fan-out, which would deadlock a bounded
pool and oversubscribe the cores); ``one_task()`` marks other contexts the same way (an
export's chunk task on a dask worker).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()


def n_workers() -> int:
    return max(1, os.cpu_count() or 1)


def in_worker() -> bool:
    """Whether this thread runs a pool task (its own work then runs serially)."""
    return getattr(_local, "in_worker", False)


@contextmanager
def one_task() -> Iterator[None]:
    """Run the block as one task: no nested tiles, no top-level caching."""
    was = in_worker()
    _local.in_worker = True
    try:
        yield
    finally:
        _local.in_worker = was


def parallel_map(fn: Callable[[Any], Any], items: list) -> list:
    """``[fn(i) for i in items]`` on the shared pool; serial inside a pool task."""
    global _pool
    if len(items) < 2 or in_worker() or n_workers() == 1:
        return [fn(i) for i in items]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(n_workers(), thread_name_prefix="lazyproc")

    def run(item):
        with one_task():
            return fn(item)

    return list(_pool.map(run, items))

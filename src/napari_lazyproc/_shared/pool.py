"""The worker pool: one thread pool for the engine's tiles, chunk reads and jobs.

Work inside a pool task runs serially (no nested fan-out, which would deadlock a bounded
pool and oversubscribe the cores); ``one_task()`` marks other contexts the same way (an
export's chunk task on a dask worker).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


def bounded_unordered(fn: Callable[[Any, threading.Event], Any], items, workers: int,
                      name: str) -> Iterator[Any]:
    """``fn(item, stop)`` for every item on ``workers`` threads of their own, at most twice
    that many submitted at a time (memory stays bounded however many items), yielding the
    results as they finish. When the caller stops early (an exception, a cancel), ``stop``
    is set for the running tasks, the queued ones never start, and the running ones are
    waited for.

    Parameters
    ----------
    fn : callable
        ``fn(item, stop)``: the task; ``stop`` is set when the caller gave up.
    items : iterable
        The tasks' inputs, taken one by one as room frees up.
    workers : int
        Threads.
    name : str
        The threads' name prefix.

    Yields
    ------
    object
        Each task's result, in the order they finish.
    """
    stop = threading.Event()
    pending: set = set()
    todo = iter(items)
    end = object()
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        try:
            while True:
                while len(pending) < 2 * workers:
                    item = next(todo, end)
                    if item is end:
                        break
                    pending.add(pool.submit(fn, item, stop))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BaseException:  # the caller raised (GeneratorExit included), or a task did
            stop.set()
            for future in pending:
                future.cancel()
            raise

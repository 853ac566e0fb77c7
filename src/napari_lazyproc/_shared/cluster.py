"""The dask.distributed client an export or a measurement runs on, opened and closed
around it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ExportError(RuntimeError):
    """An export that cannot start or finish; the message names the path and the reason.

    ``lp.ExportError``; defined here because an unreachable scheduler is one.
    """


#: the environment variable naming a scheduler address when none is given
SCHEDULER_ENV = "LAZYPROC_SCHEDULER"


@contextmanager
def distributed_client(scheduler: Any = None, workers: int | None = None) -> Iterator[Any]:
    """A dask.distributed client for the block, or None to run on threads here.

    Parameters
    ----------
    scheduler
        A ``distributed.Client`` (used as it is, left open), a scheduler address
        (connected to, disconnected after), or None: the ``LAZYPROC_SCHEDULER``
        environment variable, else ``workers``.
    workers
        Without a scheduler: start a local cluster of this many single-threaded worker
        processes, closed after the block. None or 0: no cluster.

    Raises
    ------
    ExportError
        When the scheduler at the address cannot be reached.
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler is None and not workers:
        yield None
        return
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # the caller's client: the caller closes it
        return
    # deferred: distributed is heavy and only needed here
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ExportError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client

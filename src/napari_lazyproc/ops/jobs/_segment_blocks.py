"""Segmenting the blocks of a job: on the worker threads here, or on a dask cluster.

Each block is read over its core grown by the halo, segmented, and its core's labels
and the strips beyond its faces written to the job's store, then its ``done`` marker.
On a cluster every task reopens the store by its path (so the store must be a folder
the workers see: a local cluster's workers share this machine's disk) and returns
nothing but that the block is stored; the stitching runs here.
"""

from __future__ import annotations

import threading

import numpy as np

from ..._shared.pool import parallel_map
from ..._shared.regions import block_region
from ._segment_stitch import block_rims
from ._segment_store import SegmentStore

_open_stores: dict = {}
_open_lock = threading.Lock()


def segment_block(job, st: SegmentStore, index, prepared: dict) -> None:
    """Segment block ``index`` of ``job`` and store it in ``st``."""
    core = block_region(index, job.block, job.source.shape)
    ext = job.extended(core)
    labels = job.segment_region(ext, prepared)
    inner = tuple(slice(c.start - e.start, c.stop - e.start)
                  for c, e in zip(core, ext, strict=True))
    core_labels = labels[inner]
    present = np.flatnonzero(np.bincount(core_labels.ravel()))
    st.write_block(index, core, core_labels, block_rims(job, index, core, ext, labels),
                   int(labels.max()) if labels.size else 0, present[present > 0])


class BlockTask:
    """One block on a cluster worker: the job, its store's path and identity, and the
    prepared values (pickled once per task batch by dask)."""

    def __init__(self, job, path: str, identity: str, prepared: dict) -> None:
        self.job, self.path, self.identity, self.prepared = job, path, identity, prepared

    def _store(self) -> SegmentStore:
        key = (self.path, self.identity)
        with _open_lock:
            st = _open_stores.get(key)
            if st is None:
                job = self.job
                st = SegmentStore(self.path, self.identity, job.source.shape, job.block,
                                  job.spatial, job.widths)
                st.open(resume=True)  # the same job: its arrays, never cleared
                _open_stores[key] = st
        return st

    def __call__(self, index) -> tuple:
        segment_block(self.job, self._store(), index, self.prepared)
        return tuple(index)


def run_blocks(job, st: SegmentStore, todo: list, prepared: dict, bar, client=None) -> None:
    """Every block of ``todo``: on the worker threads, or on ``client``'s cluster."""
    if client is None:
        def one(index) -> None:
            bar.check()
            segment_block(job, st, index, prepared)
            bar.step()

        parallel_map(one, todo)
        return
    from distributed import as_completed

    futures = client.map(BlockTask(job, str(st.path), st.identity, prepared), todo,
                         pure=False, retries=2)
    try:
        for _ in as_completed(futures):
            bar.step()  # checks the cancel
    except BaseException:
        client.cancel(futures)
        raise

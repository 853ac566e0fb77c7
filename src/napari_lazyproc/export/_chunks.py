"""One task per batch of output chunks: compute (input read with its halo), write, mark done.

A ``ChunkJob`` is picklable (results and file arrays pickle by path; the output is
opened by path), so the same job runs in threads or on dask.distributed workers. Writes
are idempotent: a retried task writes the same bytes. The ``ResumeRecord`` marks each
written chunk and, on resume, says which are done.
"""

from __future__ import annotations

import itertools
import math
from contextlib import closing, nullcontext

import numpy as np

from .._shared.pool import bounded_unordered, n_workers, one_task
from .._shared.regions import block_region, within
from ..io import fast_codecs, os_errors
from ..ops import CACHE, Cancelled
from ._remote_path import zarr_store
from ._resume import ResumeRecord

#: at most this many tasks per level; more chunks are batched
MAX_TASKS = 10_000
#: a task computes a run of chunks along the first spatial axis, up to this many voxels,
#: in one read: the halo along that axis is read and computed once per run, not per chunk
BATCH_VOXELS = 2**23


class ChunkJob:
    """Compute and write the chunks of one output array."""

    def __init__(self, source, store, array_path: str, block: tuple[int, ...],
                 record: ResumeRecord, level: int, resume: bool,
                 cache_bytes: int | None = None) -> None:
        self.source = source
        self.store, self.array_path = store, array_path
        self.shape = tuple(source.shape)
        self.block = tuple(int(b) for b in block)
        self.grid = tuple(math.ceil(n / b) for n, b in zip(self.shape, self.block, strict=True))
        self.record, self.level = record, level
        self.resume = resume
        self.cache_bytes = cache_bytes
        self._array = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @property
    def n_chunks(self) -> int:
        return math.prod(self.grid)

    def _run_axis(self) -> int:
        axes = getattr(self.source, "axes", "") or ""
        spatial = [i for i, a in enumerate(axes) if a in "zyx"]
        return spatial[0] if spatial else 0

    def batches(self) -> list[list[tuple[int, ...]]]:
        """Runs of chunks along the first spatial axis (each read and computed as one
        box), grouped further when there would be more than ``MAX_TASKS`` tasks."""
        axis = self._run_axis()
        per_run = max(1, min(self.grid[axis], BATCH_VOXELS // max(1, math.prod(self.block))))
        runs = []
        others = [range(g) if a != axis else [0] for a, g in enumerate(self.grid)]
        for base in itertools.product(*others):
            for start in range(0, self.grid[axis], per_run):
                runs.append([base[:axis] + (i,) + base[axis + 1 :]
                             for i in range(start, min(self.grid[axis], start + per_run))])
        size = max(1, math.ceil(len(runs) / MAX_TASKS))
        return [sum(runs[i : i + size], []) for i in range(0, len(runs), size)]

    def region(self, index) -> tuple[slice, ...]:
        return block_region(index, self.block, self.shape)

    def array(self):
        if self._array is None:
            import zarr

            self._array = fast_codecs(zarr.open_array(
                store=zarr_store(self.store), path=self.array_path, mode="r+"))
        return self._array

    def done(self, index) -> bool:
        """Whether chunk ``index`` was written by an earlier (interrupted) run."""
        return self.record.is_done(self.level, index, lambda: self.array()[self.region(index)])

    def __call__(self, batch, cancel=None) -> tuple[int, int]:
        """Write the chunks of ``batch``; returns (chunks, bytes) written or verified."""
        arr = self.array()
        # the export's budget, held here too since on a dask worker this is all that runs
        budget = nullcontext() if self.cache_bytes is None else CACHE.budget(self.cache_bytes)
        with budget, one_task():  # one box per task: no nested tiles, no caching
            for run in _boxes(batch):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("export cancelled")
                todo = [i for i in run if not (self.resume and self.done(i))]
                if not todo:
                    continue
                regions = [self.region(i) for i in run]
                box = tuple(slice(min(r[a].start for r in regions),
                                  max(r[a].stop for r in regions))
                            for a in range(len(self.shape)))
                values = np.asarray(self.source.read(box)).astype(arr.dtype, copy=False)
                for index in todo:
                    region = self.region(index)
                    chunk = values[within(region, box)]
                    with os_errors():
                        arr[region] = chunk
                    self.record.mark_done(self.level, index, chunk)
                del values
        nbytes = sum(math.prod(r.stop - r.start for r in self.region(i)) for i in batch)
        return len(batch), nbytes * arr.dtype.itemsize


def _boxes(batch: list[tuple[int, ...]]) -> list[list[tuple[int, ...]]]:
    """Split a batch into runs of consecutive chunks that differ along one axis only."""
    runs: list[list[tuple[int, ...]]] = []
    for index in batch:
        if runs:
            last = runs[-1][-1]
            diff = [a for a, (x, y) in enumerate(zip(last, index, strict=True)) if x != y]
            if len(diff) == 1 and index[diff[0]] == last[diff[0]] + 1 and (
                len(runs[-1]) == 1 or _axis(runs[-1]) == diff[0]
            ):
                runs[-1].append(index)
                continue
        runs.append([index])
    return runs


def _axis(run) -> int:
    return next(a for a, (x, y) in enumerate(zip(run[0], run[1], strict=True)) if x != y)


def run(job: ChunkJob, bar, cancel, client=None, workers: int | None = None) -> None:
    """Every batch of ``job``, in threads (bounded in flight) or on a dask cluster."""
    job.record.begin_level(job.level)
    batches = job.batches()
    if client is not None:
        from distributed import as_completed

        futures = client.map(job, batches, pure=False, retries=3)
        try:
            for future in as_completed(futures):
                n, nbytes = future.result()
                bar.step(n, nbytes)
        except BaseException:
            client.cancel(futures)
            raise
        return
    n_threads = workers or n_workers() + 1  # one more, to overlap reads and writes
    with closing(bounded_unordered(job, batches, n_threads, "lazyproc-export")) as results:
        for n, nbytes in results:
            bar.step(n, nbytes)  # raises Cancelled when asked to stop
            if cancel is not None and cancel.is_set():
                raise Cancelled("export cancelled")


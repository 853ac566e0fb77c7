"""One task per batch of output chunks: compute (input read with its halo), write, mark done.

A ``ChunkJob`` is picklable (results and file arrays pickle by path; the output is
opened by path), so the same job runs in threads or on dask.distributed workers. Each
written chunk gets a marker holding a digest of its values, written atomically after
the chunk. Writes are idempotent: a retried task writes the same bytes. On resume a
chunk is skipped only when its marker exists and the stored values match the digest;
a chunk half-written when the process died has no marker, or a wrong digest, and is
computed again.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..ops import _sources
from ..ops._jobs import Cancelled

#: at most this many tasks per level; more chunks are batched
MAX_TASKS = 10_000


def digest(values: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(values.dtype).encode() + str(values.shape).encode())
    h.update(np.ascontiguousarray(values).data)
    return h.hexdigest()


class ChunkJob:
    """Compute and write the chunks of one output array."""

    def __init__(self, source, store: str, array_path: str, block: tuple[int, ...],
                 markers: str, resume: bool) -> None:
        self.source = source
        self.store, self.array_path = store, array_path
        self.shape = tuple(source.shape)
        self.block = tuple(int(b) for b in block)
        self.grid = tuple(math.ceil(n / b) for n, b in zip(self.shape, self.block))
        self.markers = markers
        self.resume = resume
        self._array = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @property
    def n_chunks(self) -> int:
        return math.prod(self.grid)

    def batches(self) -> list[list[tuple[int, ...]]]:
        indices = list(itertools.product(*(range(g) for g in self.grid)))
        size = max(1, math.ceil(len(indices) / MAX_TASKS))
        return [indices[i : i + size] for i in range(0, len(indices), size)]

    def region(self, index) -> tuple[slice, ...]:
        return tuple(slice(i * b, min(n, (i + 1) * b)) for i, b, n in zip(index, self.block, self.shape))

    def array(self):
        if self._array is None:
            import zarr

            self._array = zarr.open_array(store=self.store, path=self.array_path, mode="r+")
        return self._array

    def _marker(self, index) -> Path:
        return Path(self.markers) / ".".join(map(str, index))

    def verified(self, index) -> bool:
        marker = self._marker(index)
        try:
            expected = marker.read_text()
        except OSError:
            return False
        try:
            stored = np.asarray(self.array()[self.region(index)])
        except Exception:  # noqa: BLE001 - a truncated or corrupt chunk: compute it again
            return False
        return digest(stored) == expected

    def __call__(self, batch, cancel=None) -> tuple[int, int]:
        """Write the chunks of ``batch``; returns (chunks, bytes) written or verified."""
        arr = self.array()
        was = _sources.in_worker()
        _sources._local.in_worker = True  # one chunk per task: no nested tiles, no caching
        nbytes = 0
        try:
            for index in batch:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("export cancelled")
                region = self.region(index)
                if self.resume and self.verified(index):
                    nbytes += math.prod(r.stop - r.start for r in region) * arr.dtype.itemsize
                    continue
                values = np.asarray(self.source.read(region)).astype(arr.dtype, copy=False)
                arr[region] = values
                marker = self._marker(index)
                tmp = marker.with_name(marker.name + f".tmp{os.getpid()}")
                tmp.write_text(digest(values))
                os.replace(tmp, marker)
                nbytes += values.nbytes
        finally:
            _sources._local.in_worker = was
        return len(batch), nbytes


def run(job: ChunkJob, bar, cancel, client=None, workers: int | None = None) -> None:
    """Every batch of ``job``, in threads (bounded in flight) or on a dask cluster."""
    Path(job.markers).mkdir(parents=True, exist_ok=True)
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
    n_threads = workers or _sources.n_workers()
    stop = cancel if cancel is not None else None
    import threading

    stop = threading.Event()
    pending: set = set()
    todo = iter(batches)
    with ThreadPoolExecutor(n_threads, thread_name_prefix="lazyproc-export") as pool:
        try:
            while True:
                while len(pending) < 2 * n_threads:
                    batch = next(todo, None)
                    if batch is None:
                        break
                    pending.add(pool.submit(job, batch, stop))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    n, nbytes = future.result()
                    bar.step(n, nbytes)  # raises Cancelled when asked to stop
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("export cancelled")
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise

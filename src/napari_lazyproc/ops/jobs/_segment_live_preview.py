"""The preview napari shows: each plane's 2D look at once, its 3D preview when ready.

A 3D preview block (``SegmentPreview``: the block's planes segmented in 3D with their
halo) takes seconds; the plane look (``plane_preview``: each plane segmented in 2D) a
fraction of one. ``LivePreview`` answers a read with the 3D labels of the blocks computed
already and the plane look of the others, and queues those blocks on threads of its own;
each block that lands changes the region's ``stamp`` (so a live layer reads it again) and
is told to the listeners (``on_update``). Ids stay put when the 3D labels replace the
look: on each plane, a 3D object takes the id of the plane-look object it overlaps most
(one to one, largest overlap first); the others keep ids of their own, in a range no
look id uses. A block serves every plane in it: browsing along z, most planes are ready.
``showing(region)`` says what a region shows ("3D", "plane look", or both).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from dask.base import tokenize

from ..._shared.pool import parallel_map
from ..._shared.regions import block_region, key_region
from ...io import reader_stamp
from ..engine._cache import CACHE
from ._segment_preview import SegmentPreview

#: planes per 3D preview block: the first costs ``2 * halo + DEPTH`` planes of 3D
#: watershed, and serves DEPTH planes (bench_segment.py --preview-only measured 8)
DEPTH = 8
#: 3D blocks queued at most (the newest regions' first; older ones are dropped)
QUEUE = 64


class LivePreview(SegmentPreview):
    """Per-block 3D preview labels, shown as each plane's 2D look until computed."""

    def __init__(self, job, block=None, workers: int = 2) -> None:
        if block is None:  # tiles of at least 256 (halo overhead 1.27x, not 1.56x at 128)
            block = list(job.block)
            for a in job.spatial[1:]:
                block[a] = min(job.source.shape[a], max(block[a], 256))
            block[job.spatial[0]] = min(DEPTH, job.block[job.spatial[0]])
        super().__init__(job, block)
        self.look = job.plane_preview
        span_look = int(np.prod(self.look.grid, dtype=np.float64)) * self.look.stride
        span_own = int(np.prod(self.grid, dtype=np.float64)) * self.stride
        self.own_offset = span_look  # own ids above every look id
        self.dtype = np.dtype(np.uint32 if span_look + span_own <= 2**32 else np.uint64)
        self.token = "lp-segment-live-" + tokenize(job.identity(None), self.block)
        self.steps = [*job.steps[:-1], {**job.steps[-1], "preview": "plane look, then 3D"}]
        self.on_update: list = []  # called (from a worker thread) as a 3D block lands
        self._final: set = set()  # blocks whose 3D labels were cached (an eviction drops)
        self._queue: deque = deque()
        self._busy: set = set()
        self._qlock = threading.Lock()
        self._workers, self._running = max(1, int(workers)), 0
        self.closed = False
        self.last_region: tuple | None = None  # the region read last (the one on screen)

    def __repr__(self) -> str:
        return f"LivePreview(method={self.job.method.name!r}, block={self.block})"

    def prepared(self, cancel=None) -> dict:
        """The look's whole-input values (one sampled Otsu threshold for both)."""
        return self.look.prepared(cancel)

    # ---------------------------------------------------------------- what is shown
    def _final_key(self, index) -> tuple:
        core = block_region(index, self.block, self.shape)
        return ((self.token, "final"), tuple(index),
                reader_stamp(self.job.source, self.job.extended(core)))

    def final(self, index) -> np.ndarray | None:
        """Block ``index``'s 3D labels (ids adopted from the look) if computed."""
        hit = CACHE.get(self._final_key(index))
        if hit is None:
            self._final.discard(tuple(index))
        else:  # perhaps computed by an earlier preview of the same job
            self._final.add(tuple(index))
        return hit

    def block_labels(self, index, cancel=None, within=None) -> np.ndarray:
        """The block's 3D labels if computed; else its plane look (over the part of
        the block in ``within`` only: the planes on screen, not the block's depth)."""
        hit = self.final(index)
        return hit if hit is not None else self._look(index, within, cancel)

    def read(self, region, cancel=None) -> np.ndarray:
        """``region`` as shown now; its blocks' 3D labels queued after (the look of the
        plane on screen comes first on the cores)."""
        region = self.last_region = self._full(region)
        indices = self.indices(region)
        out = self.assemble(region, indices, parallel_map(
            lambda i: self.block_labels(i, cancel, region), indices))
        self.want([i for i in indices if i not in self._final])
        return out

    def _look(self, index, within=None, cancel=None, peek: bool = False
              ) -> np.ndarray | None:
        """The plane look over block ``index``'s core, or over its part in ``within``
        (zeros elsewhere in the core); None when ``peek`` and not cached."""
        core = block_region(index, self.block, self.shape)
        part = core if within is None else tuple(
            slice(max(c.start, w.start), min(c.stop, w.stop))
            for c, w in zip(core, within, strict=True))
        if peek:
            found = [self.look.peek(i) for i in self.look.indices(part)]
            if any(p is None for p in found):
                return None
            values = self.look.assemble(part, self.look.indices(part), found)
        else:
            values = self.look.read(part, cancel)
        if part == core:
            return values.astype(self.dtype, copy=False)
        out = np.zeros([c.stop - c.start for c in core], self.dtype)
        out[tuple(slice(p.start - c.start, p.stop - c.start)
                  for p, c in zip(part, core, strict=True))] = values
        return out

    def stamp(self, region) -> tuple:
        """The input's stamp, and which of the region's blocks show their 3D labels."""
        region = self._full(region)
        done = tuple(i in self._final for i in self.indices(region))
        return (*super().stamp(region), done)

    def cached(self, key) -> np.ndarray | None:
        """``self[key]`` as shown now if nothing needs computing (the 3D labels or the
        look of each block cached), else None."""
        region, squeeze = key_region(key, self.shape)
        self.last_region = region
        indices = self.indices(region)
        parts = []
        for index in indices:
            values = self.final(index)
            if values is None:
                values = self._look(index, region, peek=True)
                if values is None:
                    return None
                self.want([index])
            parts.append(values)
        return self.assemble(region, indices, parts)[squeeze]

    def showing(self, region) -> str:
        """What ``region`` shows now: "3D", "plane look", or "3D and plane look"."""
        region = self._full(region)
        done = {i in self._final for i in self.indices(region)}
        return {frozenset([True]): "3D", frozenset([False]): "plane look"}.get(
            frozenset(done), "3D and plane look")

    def _full(self, region) -> tuple:
        return key_region(tuple(region), self.shape)[0]

    # ---------------------------------------------------------------- the 3D work
    def want(self, indices) -> None:
        """Queue the 3D labels of ``indices`` (first), on this preview's threads."""
        with self._qlock:
            if self.closed:
                return
            fresh = [i for i in indices if i not in self._final and i not in self._busy]
            for i in fresh:
                if i in self._queue:
                    self._queue.remove(i)
            self._queue.extendleft(reversed(fresh))
            while len(self._queue) > QUEUE:
                self._queue.pop()
            start = min(len(self._queue), self._workers - self._running)
            self._running += max(0, start)
        for _ in range(max(0, start)):
            threading.Thread(target=self._work, name="lazyproc-segment-preview",
                             daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._qlock:
                if self.closed or not self._queue:
                    self._running -= 1
                    return
                index = self._queue.popleft()
                self._busy.add(index)
            try:
                self._compute(index)
            except Exception:  # noqa: BLE001, S110 - the look stays on screen; a read retries
                pass
            finally:
                with self._qlock:
                    self._busy.discard(index)
            for listener in list(self.on_update):
                listener(self)

    def _compute(self, index) -> None:
        key = self._final_key(index)
        if CACHE.get(key) is None:
            raw = SegmentPreview.block_labels(self, index)  # the 3D labels, own ids
            CACHE.put(key, adopt_ids(raw, self._look(index), self.job.spatial[0],
                                     self.own_offset))
        self._final.add(tuple(index))

    def wait(self, region, timeout: float | None = None) -> bool:
        """Block until ``region`` shows its 3D labels (tests, benchmarks)."""
        import time

        end = None if timeout is None else time.monotonic() + timeout
        region = self._full(region)
        self.want([i for i in self.indices(region) if i not in self._final])
        while self.showing(region) != "3D":
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop queued work (the preview was replaced)."""
        with self._qlock:
            self.closed = True
            self._queue.clear()


def adopt_ids(raw: np.ndarray, look: np.ndarray, axis: int, offset: int) -> np.ndarray:
    """3D labels ``raw`` with each plane's objects (planes across ``axis``) taking the
    id of the ``look`` object they overlap most, one to one, largest overlap first;
    the others ``offset`` plus their own id."""
    out = np.where(raw > 0, raw.astype(look.dtype) + look.dtype.type(offset), 0).astype(
        look.dtype)
    for k in range(raw.shape[axis]):
        r = np.take(raw, k, axis=axis).ravel().astype(np.int64)
        g = np.take(look, k, axis=axis).ravel().astype(np.int64)
        both = (r > 0) & (g > 0)
        if not both.any():
            continue
        rb, gb = r[both], g[both]
        r0, g0 = int(rb.min()), int(gb.min())  # a block's ids span a small range
        base = int(gb.max()) - g0 + 1
        keys, counts = np.unique((rb - r0) * base + (gb - g0), return_counts=True)
        taken_r, taken_g, lut = set(), set(), {}
        for n in np.argsort(-counts, kind="stable"):
            a, b = divmod(int(keys[n]), base)
            a, b = a + r0, b + g0
            if a not in taken_r and b not in taken_g:
                taken_r.add(a)
                taken_g.add(b)
                lut[a] = b
        plane = [slice(None)] * raw.ndim
        plane[axis] = k
        dst = out[tuple(plane)]
        src = np.take(raw, k, axis=axis)
        ids = np.fromiter(lut, np.int64, len(lut))
        new = np.fromiter(lut.values(), np.int64, len(lut))
        order = np.argsort(ids)
        ids, new = ids[order], new[order]
        pos = np.searchsorted(ids, src)
        hit = (src > 0) & (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == src)
        dst[hit] = new[pos[hit]].astype(out.dtype)
    return out

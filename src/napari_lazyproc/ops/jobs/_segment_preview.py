"""The preview of a segmentation: per-block labels computed when a region is read.

Each preview block is segmented with the job's method over its core grown by the halo
(so a plane on screen is segmented with its 3D context), its core kept and cached.
Blocks are never stitched: an object crossing a block face has one label per block.
A label's id is the block's own plus a fixed offset per block, so the ids on screen do
not change while panning or when a block is computed again. In 3D, preview blocks are
one plane thick along the first spatial axis by default: the plane on screen costs
``2 * halo + 1`` planes, not a whole block's depth. The whole-input values (Otsu's
threshold) come from a bounded sample for a large input, as the ``fast`` thresholds'
do; ``run()`` uses every voxel.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
from dask.base import tokenize

from ..._shared.pool import parallel_map
from ..._shared.regions import block_region
from ..._shared.source import RegionReader, channel_names_of, translate_of
from ...io import LazyArray, as_dask, reader_stamp
from ..engine._cache import CACHE
from ..engine._progress import Cancelled


class SegmentPreview:
    """A lazy source of per-block labels (``is_preview``: never the stitched result)."""

    kind = "labels"
    is_preview = True

    def __init__(self, job, block=None) -> None:
        src = job.source
        self.job = job
        self.shape = tuple(src.shape)
        self.ndim = len(self.shape)
        if block is None:
            block = list(job.block)
            if len(job.spatial) == 3:
                block[job.spatial[0]] = 1
        self.block = tuple(int(b) for b in block)
        self.grid = tuple(-(-n // b) for n, b in zip(self.shape, self.block, strict=True))
        self.chunks = tuple(tuple(min(b, n - i * b) for i in range(g))
                            for n, b, g in zip(self.shape, self.block, self.grid, strict=True))
        n_blocks = int(np.prod(self.grid, dtype=np.float64))
        # a fixed id range per block: uint32 while it leaves each block 2**16 ids
        if n_blocks < 2**16:
            self.dtype, self.stride = np.dtype(np.uint32), 2**16
        else:
            self.dtype, self.stride = np.dtype(np.uint64), 2**32
        self.axes, self.scale, self.units = src.axes, src.scale, src.units
        self.translate = translate_of(src)
        self.channel_names = channel_names_of(src)
        self.source_path = getattr(src, "source_path", None)
        self.steps = [*job.steps[:-1], {**job.steps[-1], "preview": True}]
        self.token = "lp-segment-preview-" + tokenize(job.identity(None), self.block)
        self._prepared: dict | None = None
        self._lock = threading.Lock()

    @property
    def levels(self) -> list:
        return [self]

    @property
    def display_levels(self) -> list:
        return [self]

    @property
    def multiscale(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"SegmentPreview(method={self.job.method.name!r}, block={self.block})"

    def prepared(self, cancel=None) -> dict:
        """The method's whole-input values (sampled for a large input), once."""
        with self._lock:
            if self._prepared is None:
                self._prepared = self.job.prepare(cancel=cancel, whole=False)
            return self._prepared

    def stamp(self, region) -> tuple:
        """The input's stamp over the region grown by the halo."""
        return (reader_stamp(self.job.source, self.job.extended(region)),)

    def block_labels(self, index, cancel=None) -> np.ndarray:
        """The preview labels of block ``index`` (its core), cached."""
        job = self.job
        core = block_region(index, self.block, self.shape)
        ext = job.extended(core)
        key = (self.token, tuple(index), reader_stamp(job.source, ext))
        hit = CACHE.get(key)
        if hit is not None:
            return hit
        if cancel is not None and cancel.is_set():
            raise Cancelled("stale region dropped")
        labels = job.segment_region(ext, self.prepared(cancel))
        inner = tuple(slice(c.start - e.start, c.stop - e.start)
                      for c, e in zip(core, ext, strict=True))
        local = labels[inner].astype(self.dtype)
        first = self.dtype.type(int(np.ravel_multi_index(index, self.grid)) * self.stride)
        out = np.where(local > 0, (local - 1) % self.dtype.type(self.stride) + 1 + first,
                       0).astype(self.dtype)
        CACHE.put(key, out)
        return out

    def peek(self, index) -> np.ndarray | None:
        """Block ``index``'s labels if cached, else None (nothing computed)."""
        core = block_region(index, self.block, self.shape)
        return CACHE.get((self.token, tuple(index),
                          reader_stamp(self.job.source, self.job.extended(core))))

    def read(self, region, cancel=None) -> np.ndarray:
        region = tuple(region) + tuple(slice(0, n) for n in self.shape[len(region):])
        indices = self.indices(region)
        return self.assemble(region, indices, parallel_map(
            lambda i: self.block_labels(i, cancel), indices))

    def indices(self, region) -> list[tuple[int, ...]]:
        """The blocks that ``region`` touches."""
        ranges = [range(s.start // b, (s.stop - 1) // b + 1)
                  for s, b in zip(region, self.block, strict=True)]
        return list(itertools.product(*ranges))

    def assemble(self, region, indices, blocks) -> np.ndarray:
        """``region`` from the blocks' labels (``blocks``, one per index)."""
        out = np.zeros([s.stop - s.start for s in region], self.dtype)
        if out.size == 0:
            return out
        for index, values in zip(indices, blocks, strict=True):
            core = block_region(index, self.block, self.shape)
            lo = [max(s.start, c.start) for s, c in zip(region, core, strict=True)]
            hi = [min(s.stop, c.stop) for s, c in zip(region, core, strict=True)]
            dst = tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, region,
                                                                           strict=True))
            src = tuple(slice(a - c.start, b - c.start) for a, b, c in zip(lo, hi, core,
                                                                           strict=True))
            out[dst] = values[src]
        return out

    def __getitem__(self, key):
        return LazyArray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = self.read(tuple(slice(0, n) for n in self.shape))
        return out if dtype is None else out.astype(dtype)

    def to_dask(self):
        return as_dask(RegionReader(self), self.chunks, self.token)

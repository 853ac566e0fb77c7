"""Inputs of the engine: any array-like as a ``Source``, read through the chunk cache.

A source's identity (``io._identity``) is its token plus the stamp of what a region
reads: a cached chunk is used only while its stamp is the one it was read under, so a
rewritten chunk file is read again; whichever way the same store is passed (a
``LazyImage``, its dask levels, a zarr array, ``da.from_zarr``), it gets one token.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Any

import numpy as np

from ..._shared.pool import parallel_map
from ..._shared.regions import Region, region_shape
from ..._shared.source import RegionReader, owned
from ...io import (
    LazyArray,
    graph_readers,
    level_factor,
    reader_location,
    reader_stamp,
)
from ._cache import CACHE


class KeptStamps:
    """Stamps that took over ``STAMP_COST`` seconds, reused for ``max(STAMP_REUSE, 100 x
    their cost)``; cheap ones are taken anew every time."""

    def __init__(self) -> None:
        self._kept: dict = {}  # key -> (stamp, taken at, cost)

    def get(self, key, take) -> tuple:
        now = time.monotonic()
        hit = self._kept.get(key)
        if hit is not None and now - hit[1] < max(STAMP_REUSE, 100 * hit[2]):
            return hit[0]
        value = take()
        cost = time.monotonic() - now
        if cost > STAMP_COST:
            if len(self._kept) > 256:
                self._kept.clear()
            self._kept[key] = (value, now, cost)
        return value


class _DaskReader:
    """Reads a region of a dask array with the synchronous scheduler (one chunk, one task).

    Its stamp is that of the stored arrays its graph reads (``io.graph_readers``), whole:
    a graph cannot say which of their chunks a region needs. One that costs over
    ``STAMP_COST`` is reused for ``max(STAMP_REUSE, 100 x its cost)`` seconds.
    """

    def __init__(self, array) -> None:
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.readers = graph_readers(array)
        self._stamps = KeptStamps()

    def __getitem__(self, key):
        return np.asarray(self.array[key].compute(scheduler="sync"))

    def stamp(self, region) -> tuple:
        if not self.readers:
            return ()
        return self._stamps.get("whole", lambda: tuple(
            reader_stamp(r, tuple(slice(0, n) for n in r.shape)) for r in self.readers))

    def locations(self) -> set[str]:
        return {w for w in map(reader_location, self.readers) if w}


class ArraySource:
    """A leaf input: a region-readable array with a chunk grid, axis letters and scale."""

    #: whether ``axes`` were guessed from the number of dimensions (a plain array)
    guessed_axes = False
    #: whether scipy's integer ``axes`` named its letters (``apply``: a plain array's
    #: guessed t or c made spatial); a result's steps then give its axes as integers
    positional = False

    def __init__(self, reader, shape, dtype, chunks, token: str, axes: str,
                 scale: tuple[float, ...], units: tuple, name: str = "") -> None:
        self.reader = reader
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.chunks = chunks  # dask-style tuple of tuples, or None for in-memory data
        self._bounds = [np.cumsum((0, *c)) for c in chunks] if chunks is not None else None
        self.token = token
        self.axes = axes
        self._scale = tuple(scale)
        self.units = tuple(units)
        self._translate = (0.0,) * self.ndim
        #: one name per index of the c axis (None: unknown, or no c axis)
        self.channel_names: list[str] | None = None
        self.name = name
        #: reading one voxel reads this many from the files (a virtual level: its factor)
        self.voxel_cost = int(getattr(reader, "voxel_cost", 1))
        #: chunks not cached are read in one call over their bounding box (zarr)
        self._bulk = chunks is not None and _reads_in_bulk(reader)
        self.steps: list[dict[str, Any]] = []
        self._stamps = KeptStamps()  # expensive region stamps, reused a while
        self.source_path = None
        #: the full-resolution level this one is a coarser level of (None: it is level 0)
        self.base: ArraySource | None = None
        self._levels: list[ArraySource] = [self]
        self._display: list[ArraySource] | None = None

    def __getitem__(self, key):
        """A lazy view (``np.asarray`` of it reads the region through the cache)."""
        return LazyArray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(tuple(slice(0, n) for n in self.shape))  # the cache's: copied
        return owned(out if dtype is None else out.astype(dtype, copy=False))

    def to_dask(self):
        """A dask array of this source, one task per chunk."""
        from ...io import as_dask

        return as_dask(RegionReader(self), self.chunks or tuple((n,) for n in self.shape),
                       self.token)

    # ---------------------------------------------------------------- levels
    @property
    def scale(self) -> tuple[float, ...]:
        """Voxel size; a coarser level's follows from level 0's and the downsampling."""
        if self.base is None:
            return self._scale
        return tuple(s * level_factor(b, n)
                     for s, b, n in zip(self.base.scale, self.base.shape, self.shape,
                                        strict=True))

    @scale.setter
    def scale(self, value) -> None:
        self._scale = tuple(value)

    @property
    def translate(self) -> tuple[float, ...]:
        """The position of voxel 0; a coarser level's is level 0's (napari's rule)."""
        return self._translate if self.base is None else self.base.translate

    @translate.setter
    def translate(self, value) -> None:
        self._translate = tuple(float(t) for t in value)

    @property
    def levels(self) -> list[ArraySource]:
        """The stored resolution levels, full resolution (this one) first."""
        return self.base.levels if self.base is not None else self._levels

    @property
    def display_levels(self) -> list[ArraySource]:
        """``levels`` plus the virtual levels a viewer needs (3D, zoomed out)."""
        if self.base is not None:
            return self.base.display_levels
        return self._display if self._display is not None else self._levels

    def _box_bytes(self, ranges) -> int:
        """Bytes of the chunks that ``ranges`` (of chunk indices, per axis) cover."""
        return self.dtype.itemsize * math.prod(
            int(b[r[-1] + 1] - b[r[0]]) for b, r in zip(self._bounds, ranges, strict=True))

    def _read_bulk(self, blocks: list, chunk_slices) -> list:
        """The chunks ``blocks`` (indices), those not cached read in one call of the reader
        over their bounding box, then cached one by one; chunks another caller is reading
        are waited for, not read again. Returns ``[(index, values)]``."""
        keys = {index: (self.token, index, self._stamp(chunk_slices(index)))
                for index in blocks}
        found, mine, others = CACHE.claim(list(keys.values()))
        out = {}
        try:
            if mine:
                claimed_keys = set(mine)
                claimed = [index for index in blocks if keys[index] in claimed_keys]
                lo = [min(i[a] for i in claimed) for a in range(self.ndim)]
                hi = [max(i[a] for i in claimed) for a in range(self.ndim)]
                box = tuple(slice(int(b[x]), int(b[y + 1]))
                            for b, x, y in zip(self._bounds, lo, hi, strict=True))
                whole = math.prod(y - x + 1 for x, y in zip(lo, hi, strict=True))
                if whole > 2 * len(claimed):  # scattered: one read each
                    data = None
                else:
                    data = np.asarray(self.reader[box])
                for index in claimed:
                    sl = chunk_slices(index)
                    if data is None:
                        values = np.asarray(self.reader[sl])
                    else:
                        values = data[tuple(slice(s.start - b.start, s.stop - b.start)
                                            for s, b in zip(sl, box, strict=True))]
                        if whole > len(claimed):  # not the whole box: keep no extra
                            values = values.copy()
                    CACHE.fulfil(keys[index], values)
                    out[index] = values
        except BaseException:
            CACHE.abandon(mine)
            raise
        for index in blocks:
            key = keys[index]
            if key in found:
                out[index] = found[key]
            elif key in others:
                sl = chunk_slices(index)
                out[index] = CACHE.wait(key, others[key],
                                        lambda sl=sl: np.asarray(self.reader[sl]))
        return [(index, out[index]) for index in blocks]

    def _stamp(self, region) -> tuple:
        return reader_stamp(self.reader, region)

    def stamp(self, region: Region) -> tuple:
        """What changes when the bytes ``region`` reads change (``io._identity``): the
        stats of the chunk files it touches, a CRC of in-memory values, or nothing for
        a snapshot (a remote store).

        A stamp that took over ``STAMP_COST`` seconds (a region of thousands of chunk
        files: a 3D view of a coarse virtual level; a numpy volume's CRC) is reused for
        ``max(STAMP_REUSE, 100 x its cost)`` seconds: checking stays a small share of
        the time, and such regions see a change that much later."""
        return self._stamps.get(tuple((s.start, s.stop) for s in region),
                                lambda: self._stamp(region))

    def locations(self) -> set[str]:
        """The real paths this source reads from (an export never writes over them)."""
        several = getattr(self.reader, "locations", None)
        if several is not None:
            return set(several())
        where = reader_location(self.reader)
        return {where} if where else set()

    def coarser(self, reader, shape, dtype, chunks, token: str) -> ArraySource:
        """A coarser level of this (level 0) source: same axes, units and name."""
        level = ArraySource(reader, shape, dtype, chunks, token, self.axes, self._scale,
                            self.units, self.name)
        level.base = self
        return level

    def set_levels(self, stored: list, display: list | None = None) -> None:
        """The coarser levels (``ArraySource`` made by ``coarser``) after this one."""
        self._levels = [self, *stored]
        self._display = None if display is None else [self, *stored, *display]

    def read(self, region: Region, cancel: threading.Event | None = None) -> np.ndarray:
        if self.chunks is None:
            return np.asarray(self.reader[region])
        bounds = self._bounds
        ranges = []
        for s, b in zip(region, bounds, strict=False):
            lo = int(np.searchsorted(b, s.start, side="right") - 1)
            hi = int(np.searchsorted(b, s.stop, side="left"))
            ranges.append(range(lo, max(lo + 1, hi)) if s.stop > s.start else range(0))
        blocks = list(itertools.product(*ranges))
        out = np.empty(region_shape(region), self.dtype)
        if out.size == 0:
            return out

        def chunk_slices(index):
            return tuple(slice(int(b[i]), int(b[i + 1]))
                         for b, i in zip(bounds, index, strict=False))

        def fetch(index):
            sl = chunk_slices(index)
            return index, CACHE.get_or_load((self.token, index, self._stamp(sl)),
                                            lambda: np.asarray(self.reader[sl]))

        if self._bulk and len(blocks) > 1 and self._box_bytes(ranges) <= \
                CACHE.max_bytes // BULK_SHARE:
            pieces = self._read_bulk(blocks, chunk_slices)
        else:
            pieces = parallel_map(fetch, blocks)
        for index, data in pieces:
            src, dst = [], []
            for b, i, s in zip(bounds, index, region, strict=False):
                lo, hi = max(int(b[i]), s.start), min(int(b[i + 1]), s.stop)
                src.append(slice(lo - int(b[i]), hi - int(b[i])))
                dst.append(slice(lo - s.start, hi - s.start))
            out[tuple(dst)] = data[tuple(src)]
        return out


#: region stamps costlier than this (seconds) are reused for max(STAMP_REUSE, 100x cost)
STAMP_COST = 0.002
STAMP_REUSE = 1.0

#: a read of a box of chunks in one call holds about three times the box at once (zarr's
#: decode buffers, the box, the region assembled from it): boxes above this share of the
#: cache's limit are read chunk by chunk instead, so work that bounds its memory with a
#: cache budget (an export, 512 MiB: boxes over 32 MiB) keeps to it, while a plane on
#: screen (the whole cache, 4 GiB by default) gets its chunks in one call
BULK_SHARE = 16


def _reads_in_bulk(reader) -> bool:
    """Whether one read of a box of chunks beats a read per chunk: a zarr array decodes
    (and, remote, fetches) the chunks of one call concurrently, with less overhead per
    chunk than a call each."""
    return type(reader).__module__.startswith("zarr")

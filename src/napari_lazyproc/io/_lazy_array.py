"""An array-like for display: each ``__getitem__`` reads exactly its region in one call.

napari slices a layer with ``np.asarray(data[key])``. Through dask that is a graph of one
task per chunk, each a separate call into zarr / tifffile / h5py, and scheduling overhead
that dwarfs reading a mostly cached plane. Handing the region straight to the source lets
zarr fetch and decode the chunks concurrently in one call, and the file libraries read
the region in one pass. ``to_dask()`` gives the dask array for processing and export.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from .._shared.regions import expand_key
from .._shared.source import owned, read_key


def _split_key(key, shape) -> tuple[tuple, tuple] | None:
    """(bounding step-1 key, key to apply to the block read), or None for fancy indexing.

    The second key has one slice per axis the first one keeps (integers drop their axis).
    """
    if any(not isinstance(k, (slice, int, np.integer)) and k is not Ellipsis
           for k in (key if isinstance(key, tuple) else (key,))):
        return None
    key = expand_key(key, len(shape))
    outer, inner = [], []
    for k, n in zip(key, shape, strict=False):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step == 1:
                outer.append(slice(start, max(start, stop)))
                inner.append(slice(None))
            else:
                idx = range(start, stop, step)
                if len(idx) == 0:
                    outer.append(slice(0, 0))
                    inner.append(slice(None))
                else:
                    lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
                    outer.append(slice(lo, hi))
                    end = idx[-1] - lo + (1 if step > 0 else -1)
                    inner.append(slice(idx[0] - lo, end if end >= 0 else None, step))
        elif isinstance(k, (int, np.integer)):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for an axis of size {n}")
            outer.append(i % n)
        else:
            return None
    return tuple(outer), tuple(inner)


def _compose(region: tuple, outer: tuple) -> tuple:
    """Source coordinates of ``outer`` (step-1 key of a view) within ``region``."""
    out, it = [], iter(outer)
    for r in region:
        if not isinstance(r, slice):
            out.append(r)
            continue
        k = next(it)
        if isinstance(k, slice):
            out.append(slice(r.start + k.start, r.start + k.stop))
        else:
            out.append(r.start + k)
    return tuple(out)


class LazyArray:
    """``shape``, ``dtype``, ``ndim`` and ``__getitem__`` over a region-reading source.

    Indexing with integers and step-1 slices returns a lazy view (napari narrows the
    displayed axes first, then the others); anything else, or ``np.asarray``, reads the
    region from the source in one call.
    """

    def __init__(self, source, dask_array: da.Array | None = None, region: tuple | None = None):
        self.source = source
        self._base = dask_array
        self.region = region if region is not None else tuple(slice(0, n) for n in source.shape)
        self.shape = tuple(r.stop - r.start for r in self.region if isinstance(r, slice))
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(self.shape)

    @property
    def is_whole(self) -> bool:
        """Whether this is the whole source, not a view of part of it."""
        return all(
            isinstance(r, slice) and r == slice(0, n)
            for r, n in zip(self.region, self.source.shape, strict=False)
        )

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def plain(self) -> LazyArray:
        """The same region as a plain ``LazyArray`` (reads go straight to the source,
        whatever a subclass does for display)."""
        return LazyArray(self.source, self._base, self.region)

    def to_dask(self) -> da.Array:
        base = self._base if self._base is not None else self.source.to_dask()
        return base if self.is_whole else base[self.region]

    def __getitem__(self, key):
        split = _split_key(key, self.shape)
        if split is None:  # fancy indexing: let dask handle it
            return owned(self.to_dask()[key])
        outer, inner = split
        region = _compose(self.region, outer)
        if inner and all(k == slice(None) for k in inner):
            return self._view(region)
        return owned(self._read(region)[inner])

    def _view(self, region: tuple) -> LazyArray:
        return LazyArray(self.source, self._base, region)

    def _read(self, region: tuple) -> np.ndarray:
        return read_key(self.source, region)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read(self.region)  # the cache's (read-only): the user gets a copy
        return owned(out if dtype is None else out.astype(dtype, copy=False))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"LazyArray(shape={self.shape}, dtype={self.dtype}, "
                f"source={type(self.source).__name__})")

"""Region algebra: keys to regions, regions within regions, chunk grids."""

from __future__ import annotations

import numpy as np
from dask.array.core import slices_from_chunks

Region = tuple[slice, ...]


def expand_key(key, ndim: int) -> tuple:
    """``key`` as a tuple of one entry per axis: the Ellipsis expanded, missing axes whole."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (ndim - len(key))
    if len(key) > ndim:
        raise IndexError(f"too many indices ({len(key)}) for a {ndim}-D array")
    return key


def normalize_key(key, shape: tuple[int, ...]) -> tuple[slice | int, ...]:
    """Expand ``key`` to one entry per axis: ints and step-1 slices with explicit bounds."""
    key = expand_key(key, len(shape))
    out: list[slice | int] = []
    for k, n in zip(key, shape, strict=False):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise IndexError("only step-1 slices are supported")
            out.append(slice(start, max(start, stop)))
        else:
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for an axis of size {n}")
            out.append(i % n)
    return tuple(out)


def key_region(key, shape) -> tuple[Region, tuple]:
    """A key of ints and step-1 slices as a region, and the key that drops the int axes."""
    key = normalize_key(key, shape)
    region = tuple(k if isinstance(k, slice) else slice(k, k + 1) for k in key)
    squeeze = tuple(slice(None) if isinstance(k, slice) else 0 for k in key)
    return region, squeeze


def region_shape(region: Region) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in region)


def within(inner: Region, outer: Region) -> Region:
    """Where ``inner`` lies inside ``outer``, in ``outer``'s own coordinates."""
    return tuple(
        slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer, strict=False)
    )


def block_region(index, block, shape) -> Region:
    """The region of chunk ``index`` in a regular grid of ``block``-sized chunks."""
    return tuple(
        slice(i * b, min(n, (i + 1) * b)) for i, b, n in zip(index, block, shape, strict=False)
    )


def split_region(region: Region, axes, parts: int) -> list[Region]:
    """``region`` cut into up to ``parts`` pieces along its longest axis among ``axes``."""
    axis = max(axes, key=lambda a: region[a].stop - region[a].start)
    parts = min(parts, region[axis].stop - region[axis].start)
    edges = np.linspace(region[axis].start, region[axis].stop, parts + 1).astype(int)
    return [tuple(slice(int(lo), int(hi)) if a == axis else s for a, s in enumerate(region))
            for lo, hi in zip(edges[:-1], edges[1:], strict=False) if hi > lo]


def chunk_regions(chunks) -> list[Region]:
    """Every chunk of a dask-style chunk grid (a tuple of tuples), as regions."""
    return slices_from_chunks(chunks)

"""The source protocol: what the engine, the exporter and the viewer read region by region.

A file's level (``ops.ArraySource``), a lazy result (``ops.LazyResult``) and global labels
(``ops.GlobalLabels``) are sources. Plain array-likes (zarr, h5py, tifffile arrays, numpy)
are read by indexing; ``RegionReader`` turns a source back into one.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .regions import Region, key_region


@runtime_checkable
class Source(Protocol):
    """Anything the engine reads: region-exact values plus what describes them."""

    shape: tuple[int, ...]
    dtype: np.dtype
    #: dask-style chunk grid (a tuple of tuples), or None for in-memory data
    chunks: tuple[tuple[int, ...], ...] | None
    #: a stable name of the values, for cache keys and dask graphs
    token: str
    axes: str
    scale: tuple[float, ...]
    units: tuple[str | None, ...]
    #: the pipeline that made it (provenance), empty for a file
    steps: list[dict[str, Any]]
    # Optional members, left out of the runtime check so that a source written before
    # them still is one; read them with ``translate_of``, ``channel_names_of`` and
    # ``io.reader_stamp``:
    #   translate: tuple[float, ...]  the position of voxel 0 (napari's ``translate``)
    #   channel_names: list[str] | None  one name per index of the ``c`` axis
    #   stamp(region) -> tuple  a hashable value that changes whenever the bytes
    #       ``region`` reads change (``io._identity``); cache entries hold it with the
    #       token. A source without it is a snapshot: its token must name its values

    def read(self, region: Region, cancel: threading.Event | None = None) -> np.ndarray:
        """The values over ``region`` (step-1 slices); stops when ``cancel`` is set."""


def chain_of(source):
    """``source``, then the source it reads, and so on down to the stored array (a
    result's ``source``; a file's level has none)."""
    seen: set[int] = set()
    while source is not None and hasattr(source, "shape") and id(source) not in seen:
        seen.add(id(source))
        yield source
        source = getattr(source, "source", None)


def translate_of(source) -> tuple[float, ...]:
    """The origin of ``source`` (one value per axis); zeros where it says none."""
    value = getattr(source, "translate", None)
    ndim = len(source.shape)
    if value is None or len(value) != ndim:
        return (0.0,) * ndim
    return tuple(float(t) for t in value)


def channel_names_of(source) -> list[str] | None:
    """One name per channel of ``source``'s ``c`` axis, or None (no c axis, or unknown)."""
    names = getattr(source, "channel_names", None)
    axes = getattr(source, "axes", "")
    if not names or "c" not in axes or len(names) != source.shape[axes.index("c")]:
        return None
    return [str(n) for n in names]


def owned(values) -> np.ndarray:
    """``values`` for a user to keep and modify: a copy unless it is a fresh array
    (writable and owning its memory; what the cache holds is read-only, and a view may
    share memory with it or with the input)."""
    values = np.asarray(values)
    if values.flags.writeable and values.flags.owndata:
        return values
    return values.copy()


def read_key(source, key, cancel: threading.Event | None = None) -> np.ndarray:
    """``source[key]`` as values: a source reads the region, anything else is indexed."""
    if isinstance(source, Source):
        region, squeeze = key_region(key, source.shape)
        return np.asarray(source.read(region, cancel))[squeeze]
    return np.asarray(source[key])


class RegionReader:
    """A source as an array-like: ``__getitem__`` reads the region (for dask, napari)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.shape, self.dtype = tuple(source.shape), np.dtype(source.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        return owned(read_key(self.source, key))  # a dask chunk is the user's

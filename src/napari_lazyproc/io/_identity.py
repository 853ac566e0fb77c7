"""What a source's identity is, for every kind of store we read.

An identity has two parts:

- a **token**: where the bytes are and how they decode (a store's real path and the
  array's metadata, a file's path and dataset). Two ways of passing the same bytes (a
  ``LazyImage``, its dask levels, ``zarr.open_array``, ``da.from_zarr``) give one token,
  so they share one cache and one read path.
- a **stamp** of a region: a hashable value that changes whenever the bytes that region
  reads change. Every cache entry is keyed by the stamps of what it read, so a chunk
  rewritten in place, a file replaced, or a frame written during an acquisition is read
  anew, and no cached value made from the old bytes is ever served for the new ones.

Stamps by store (``stamp(reader, region)``):

============================  ==========================================================
local zarr v2 / v3            ``(mtime_ns, size, inode, ctime_ns)`` of each chunk file the
                              region touches (of its shard file when sharded); ``None`` for
                              a chunk not written (its fill value, re-checked every time)
in-memory zarr                a CRC-32 of each stored chunk's encoded bytes
BigDataViewer N5              each block file's stat, as for zarr
HDF5, Imaris, TIFF            the file's stat (one file holds every chunk); the open handle
                              is reopened when it changes
folder of TIFFs               the stat of each file (plane) the region touches
numpy array                   a CRC-32 of the region's bytes
remote stores, other dask     nothing: a snapshot taken when the store was opened (its
                              token holds the opening), so reopening reads anew
============================  ==========================================================

A stat costs about a microsecond: a plane of a filtered zarr checks a few dozen files.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from dask.base import tokenize

#: a stamp that never changes (a snapshot)
SNAPSHOT: tuple = ()


class _PerObject:
    """A value per live object, dropped when it dies: keyed by ``id()`` (zarr arrays are
    unhashable) and checked against a weak reference (an id is reused once its object
    dies)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, Any]] = {}
        self._lock = threading.Lock()

    def get(self, obj, make: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._items.get(id(obj))
            if found is not None and found[0]() is obj:
                return found[1]
            value, key = make(), id(obj)
            try:
                ref = weakref.ref(obj, lambda _, k=key, d=self._items: d.pop(k, None))
            except TypeError:  # not weakly referable: a value for this call only
                return value
            self._items[key] = (ref, value)
            return value


def file_stamp(path: str | os.PathLike) -> tuple | None:
    """What changes when a file is written or replaced: its modification and change
    times, size and inode; None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def as_slices(region, shape) -> tuple[slice, ...]:
    """``region`` (slices and integers, possibly shorter than ``shape``) as step-1 slices."""
    out = []
    for i, n in enumerate(shape):
        k = region[i] if i < len(region) else slice(0, n)
        if isinstance(k, slice):
            start, stop, _ = k.indices(n)
            out.append(slice(start, max(start, stop)))
        else:
            k = int(k) % n if n else 0
            out.append(slice(k, k + 1))
    return tuple(out)


def grid_indices(region, grid, shape) -> itertools.product:
    """The indices of the cells of a regular ``grid`` (cell shape) that ``region`` touches."""
    ranges = []
    for s, g in zip(as_slices(region, shape), grid, strict=True):
        g = max(1, int(g))
        lo, hi = s.start // g, -(-s.stop // g)
        ranges.append(range(lo, hi) if s.stop > s.start else range(0))
    return itertools.product(*ranges)


def crc(values) -> int:
    """A CRC-32 of an array's bytes (about 1 GB/s)."""
    values = np.ascontiguousarray(values)
    return zlib.crc32(values.view(np.uint8).reshape(-1)) if values.size else 0


# ----------------------------------------------------------------------------- zarr

_numbers = _PerObject()
_counter = itertools.count()


def object_number(obj) -> int:
    """A number of its own for a live object (``id()`` is reused once it dies): what
    names an in-memory store in a token."""
    return _numbers.get(obj, lambda: next(_counter))


def zarr_location(arr) -> tuple[str, str] | None:
    """``(kind, where)`` of a zarr array's store: ``("local", real path of the array's
    folder)``, ``("memory", id)``, ``("url", url)``, or None when unknown."""
    store = getattr(arr, "store", None)
    path = getattr(arr, "path", "") or ""
    root = getattr(store, "root", None)
    if root is not None and type(store).__name__ == "LocalStore":
        return "local", os.path.realpath(os.path.join(str(root), path))
    fs = getattr(store, "fs", None)
    if fs is not None:
        inner = getattr(fs, "sync_fs", fs)  # AsyncFileSystemWrapper over a local fs
        protocol = getattr(inner, "protocol", "")
        protocols = protocol if isinstance(protocol, (tuple, list)) else (protocol,)
        where = str(getattr(store, "path", ""))
        if "file" in protocols or "local" in protocols:
            return "local", os.path.realpath(os.path.join(where, path))
        return "url", f"{protocols[0]}://{where.rstrip('/')}/{path}".rstrip("/")
    if type(store).__name__ == "MemoryStore":
        return "memory", f"{object_number(store)}/{path}"
    return None


def zarr_metadata_key(arr) -> str:
    """The array's metadata without its user attributes (which never change values)."""
    import json

    meta = dict(arr.metadata.to_dict())
    meta.pop("attributes", None)
    return json.dumps(meta, sort_keys=True, default=str)


def zarr_token(arr, snapshot: Any = None) -> str:
    """The token of a zarr array: its store's location and its metadata. ``snapshot``
    (a remote store's opening) is part of it where the store cannot be stamped."""
    where = zarr_location(arr) or ("object", f"{object_number(arr.store)}/{arr.path}")
    return "lp-zarr-" + tokenize(where, zarr_metadata_key(arr), snapshot)


class ZarrStamps:
    """Stamps of a zarr array's stored chunks (or shards): file stats on a local store,
    CRCs of the encoded bytes in memory, nothing elsewhere (a snapshot)."""

    def __init__(self, arr) -> None:
        # the metadata and store only: a reference to the array would keep it alive
        # from the table of stamps (``_stamps_of_zarr``) for ever
        self.metadata, self.store, self.path = arr.metadata, arr.store, arr.path or ""
        self.shape = tuple(arr.shape)
        shards = getattr(arr, "shards", None)
        self.grid = tuple(shards or arr.chunks)
        loc = zarr_location(arr)
        self.kind = loc[0] if loc else "object"
        self.folder = loc[1] if loc and loc[0] == "local" else None

    def _key(self, index) -> str:
        return self.metadata.encode_chunk_key(tuple(int(i) for i in index))

    def stamp(self, region) -> tuple:
        if self.kind == "local":
            folder = self.folder
            return tuple(file_stamp(os.path.join(folder, self._key(i)))
                         for i in grid_indices(region, self.grid, self.shape))
        if self.kind == "memory":
            items = self.store._store_dict
            path = self.path
            out = []
            for i in grid_indices(region, self.grid, self.shape):
                key = f"{path}/{self._key(i)}" if path else self._key(i)
                buf = items.get(key)
                out.append(None if buf is None else crc(np.asarray(buf.as_numpy_array())))
            return tuple(out)
        return SNAPSHOT


#: each zarr array's stamps (its chunk grid and where its chunk files are)
_zarr_stamps = _PerObject()


def _stamps_of_zarr(arr) -> ZarrStamps:
    return _zarr_stamps.get(arr, lambda: ZarrStamps(arr))


def is_zarr_array(obj) -> bool:
    return type(obj).__module__.startswith("zarr") and hasattr(obj, "metadata") \
        and hasattr(obj, "store")


# ----------------------------------------------------------------------------- any reader


def stamp(reader, region) -> tuple:
    """The stamp of ``region`` of an array-like: its own ``stamp`` (our readers), a zarr
    array's chunk files, a numpy array's bytes, else nothing (a snapshot)."""
    own = getattr(reader, "stamp", None)
    if own is not None and callable(own):
        return own(region)
    if is_zarr_array(reader):
        return _stamps_of_zarr(reader).stamp(region)
    if isinstance(reader, np.ndarray):
        return (crc(reader[as_slices(region, reader.shape)]),)
    return SNAPSHOT


def location(reader) -> str | None:
    """Where the bytes of an array-like are stored, as a real local path, or None: what an
    export checks so that it never writes into its own input."""
    own = getattr(reader, "location", None)
    if own is not None:
        return own() if callable(own) else own
    if is_zarr_array(reader):
        loc = zarr_location(reader)
        return loc[1] if loc and loc[0] == "local" else None
    return None


# ----------------------------------------------------------------------------- dask arrays

#: dask names of the arrays our readers made (``as_dask``), to the array-like they read
_DASK_READERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def remember_reader(name: str, reader) -> None:
    """Note that the dask array ``name`` reads ``reader`` chunk by chunk, whole."""
    try:
        _DASK_READERS[name] = reader
    except TypeError:  # not weakly referable: such a reader is found by its graph
        pass


def dask_reader(array) -> Any | None:
    """The array-like a dask array reads whole and unchanged (ours, or ``da.from_zarr``'s
    zarr array), or None when it computes anything else."""
    found = _DASK_READERS.get(array.name)
    if found is not None and tuple(found.shape) == tuple(array.shape):
        return found
    layers = array.dask.layers
    original = layers.get("original-" + array.name)
    if original is not None and len(layers) == 2:
        for value in dict(original).values():
            value = getattr(value, "value", value)  # a dask DataNode
            if hasattr(value, "shape") and tuple(value.shape) == tuple(array.shape):
                return value
    return None


def _objects(value, depth: int = 0):
    """The plain objects inside a dask task (its arguments, data nodes, containers)."""
    if depth > 4:
        return
    inner = getattr(value, "value", None) if type(value).__name__ == "DataNode" else None
    if inner is not None:
        yield inner
        return
    args = getattr(value, "args", None)
    if isinstance(args, tuple) and type(value).__module__.startswith("dask"):
        for a in (*args, *getattr(value, "kwargs", {}).values()):
            yield from _objects(a, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for a in value[:8]:
            yield from _objects(a, depth + 1)
        return
    yield value


def graph_readers(array) -> list:
    """The stored arrays a dask array's graph reads (zarr arrays, and our readers, which
    have ``stamp``), found in the first task of each of its layers: what a rechunked,
    cast or sliced level still depends on."""
    found: dict[int, Any] = {}
    for layer in array.dask.layers.values():
        try:
            first = layer[next(iter(layer))]
        except Exception:  # noqa: BLE001 - a layer we cannot look into
            continue
        for obj in _objects(first):
            if is_zarr_array(obj) or (hasattr(obj, "stamp") and hasattr(obj, "shape")):
                found.setdefault(id(obj), obj)
    return list(found.values())

"""Array-likes over one array in a file: opened on first read, picklable by path.

Dask reads chunks through these. They are picklable (the open handle is dropped and
reopened by path), so the same graph runs on dask.distributed workers.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from .._shared.regions import normalize_key
from ._identity import file_stamp, remember_reader, stamp

#: real path -> the arrays holding a handle open on it
_holders: dict[str, weakref.WeakSet] = {}
_holders_lock = threading.Lock()


def release_stale(path: str, now: tuple | None = None) -> None:
    """Close the handles our arrays hold on ``path`` opened before its bytes changed.

    A library that shares one open file per inode (HDF5) would otherwise hand a new
    opening the old opening's metadata and chunk cache.
    """
    now = file_stamp(path) if now is None else now
    with _holders_lock:
        arrays = list(_holders.get(os.path.realpath(path), ()))
    for arr in arrays:
        if arr._handle is not None and arr._handle_stamp != now:
            arr._drop_stale()


def open_hdf5(path: str | os.PathLike):
    """``h5py.File(path, "r")``, with no stale opening of it left to share."""
    import h5py

    release_stale(str(path))
    return h5py.File(path, "r")


class FileArray:
    """Base class: ``shape``, ``dtype``, ``chunks`` and ``__getitem__`` over a file.

    Subclasses implement ``_open()`` (returning a handle) and ``_read(handle, key)``.
    ``serialize=True`` puts every read of one handle behind a lock, for libraries that
    are not safe across threads on one handle (h5py).

    Identity: the token is the file's real path and what is read in it; ``stamp`` is the
    file's stat, and a handle opened before the file changed is reopened before the next
    read (a TIFF's page offsets, an HDF5 file's chunk cache belong to the old bytes).
    """

    serialize = False

    def __init__(self, path: str, shape, dtype, chunks, handle: Any = None) -> None:
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.chunks = tuple(int(c) for c in chunks)
        self._handle = handle
        self._handle_stamp = file_stamp(self.path) if handle is not None else None
        self._lock = threading.Lock()
        if handle is not None:
            with _holders_lock:
                _holders.setdefault(os.path.realpath(self.path), weakref.WeakSet()).add(self)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _open(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def _read(self, handle: Any, key: tuple) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _get_handle(self) -> Any:
        now = file_stamp(self.path)
        if self._handle is not None and now != self._handle_stamp:
            release_stale(self.path, now)  # this one and any other on the old bytes
        if self._handle is None:
            with self._lock:
                if self._handle is None:
                    self._handle = self._open()
                    self._handle_stamp = now
                    with _holders_lock:
                        _holders.setdefault(os.path.realpath(self.path),
                                            weakref.WeakSet()).add(self)
        return self._handle

    def stamp(self, region) -> tuple:
        """What changes when the bytes ``region`` reads change: the file's stat."""
        return (file_stamp(self.path),)

    def location(self) -> str:
        """The file's real path (an export must never write over it)."""
        return os.path.realpath(self.path)

    def __getitem__(self, key) -> np.ndarray:
        key = normalize_key(key, self.shape)
        handle = self._get_handle()
        if self.serialize:
            with self._lock:
                return np.asarray(self._read(handle, key))
        return np.asarray(self._read(handle, key))

    def _drop_stale(self) -> None:
        """Let go of a handle on old bytes. A serialised handle (h5py) is closed under
        the lock its reads hold; another (tifffile) may be mid-read in other threads:
        it is only dropped, and closes when the last of them lets go of it."""
        if self.serialize:
            self.close()
            return
        with self._lock:
            self._handle = None

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None and hasattr(handle, "close"):
            handle.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def token(self) -> str:
        """A stable name for dask and the cache: the file's real path and what is read in
        it (the bytes' changes are in ``stamp``, not here)."""
        return tokenize(type(self).__name__, os.path.realpath(self.path), self._identity())

    def _identity(self) -> tuple:
        return (self.shape, str(self.dtype), self.chunks)

    def to_dask(self) -> da.Array:
        return as_dask(self, self.chunks, f"lp-{type(self).__name__.lower()}-{self.token()}")


class ChannelView:
    """One index of one axis of an array-like, as an array-like without that axis."""

    def __init__(self, source, axis: int, index: int) -> None:
        self.source, self.axis, self.index = source, int(axis), int(index)
        self.shape = tuple(s for i, s in enumerate(source.shape) if i != self.axis)
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = normalize_key(key, self.shape)
        return np.asarray(self.source[key[: self.axis] + (self.index,) + key[self.axis :]])

    def _inner(self, region) -> tuple:
        region = tuple(region)
        return region[: self.axis] + (slice(self.index, self.index + 1),) + region[self.axis:]

    def stamp(self, region) -> tuple:
        return stamp(self.source, self._inner(region))

    def location(self):
        from ._identity import location

        return location(self.source)


def as_dask(source, chunks, name: str) -> da.Array:
    """A dask array over an array-like, with no read at creation and one task per chunk."""
    remember_reader(name, source)
    return da.from_array(
        source,
        chunks=chunks,
        name=name,
        lock=False,
        asarray=True,
        fancy=False,
        inline_array=True,
        meta=np.empty((0,) * len(source.shape), dtype=source.dtype),
    )

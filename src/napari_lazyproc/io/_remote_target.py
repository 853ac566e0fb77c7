"""A URL as ``open_image`` sniffs it: the root documents of the store it names, fetched
at once and kept a few seconds; and what tells one version of a remote store from the
next (an export changed it)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ._errors import ImageReadError
from ._registry import TARGET_TYPES, Target
from ._remote_store import fsspec_store, is_url, raise_concurrency, remote_store_class, run

#: written last by an export to a store that cannot rename (``export`` to a URL)
EXPORT_MANIFEST = "lazyproc-manifest.json"
#: the resume record an export writes first (see ``export/_resume.py``)
EXPORT_RECORD = ".lazyproc/job.json"
#: what opening a URL fetches first, all at once (one round trip)
SNIFF_KEYS = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata", EXPORT_MANIFEST,
              EXPORT_RECORD)

#: sniffed root documents are reused for this many seconds (napari asks the reader
#: whether it claims a URL, then opens it at once: one fetch, not two)
SNIFF_TTL = 5.0

_sniffed: dict[tuple[str, str], tuple[float, dict[str, bytes | None]]] = {}
_sniffed_lock = threading.Lock()
_openings = itertools.count()


#: how many times this process changed each URL (an export): part of its arrays' tokens
_generations: dict[str, int] = {}


def forget_remote(url: str) -> None:
    """Drop what was sniffed at ``url`` and under it, and give its arrays new tokens (an
    export just changed it: chunks cached under the old tokens must not be served)."""
    url = url.rstrip("/")
    with _sniffed_lock:
        for key in [k for k in _sniffed if k[0] == url or k[0].startswith(url + "/")]:
            del _sniffed[key]
        _generations[url] = _generations.get(url, 0) + 1


def store_version(url: str) -> tuple:
    """What tells this store's contents from an earlier store at the same URL: how many
    times this process changed it, and the export manifest sniffed at its root (its date
    changes with every export, from any process). Part of the tokens of its arrays.

    Parameters
    ----------
    url : str
        The store's root URL.

    Returns
    -------
    tuple
        A hashable value for the dask names and cache keys of the store's arrays.
    """
    url = url.rstrip("/")
    with _sniffed_lock:
        generation = sum(n for k, n in _generations.items()
                         if url == k or url.startswith(k + "/") or k.startswith(url + "/"))
        manifests = tuple(hit[1].get(EXPORT_MANIFEST) or b"" for k, hit in _sniffed.items()
                          if k[0] == url)
    return generation, manifests


def _options_key(storage_options: dict) -> str:
    return json.dumps(storage_options, sort_keys=True, default=repr)


class RemoteTarget(Target):
    """A URL to be sniffed: the root documents of the store it names, fetched at once.

    Parameters
    ----------
    url
        The store's URL.
    storage_options
        Passed to fsspec.
    """

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.raw = url
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        #: for names only (``.name``, suffixes); never opened
        self.path = PurePosixPath(urlsplit(self.url).path or "/")
        self._members: dict[str, bytes | None] = {}
        self._error: ImageReadError | None = None
        #: this opening of the store: part of its arrays' tokens (a remote store is read
        #: as a snapshot, which a new opening renews; see ``io._identity``)
        self.opening = next(_openings)

    @classmethod
    def accepts(cls, path: Any) -> bool:
        """Whether this target type is the one for ``path`` (a URL)."""
        return is_url(path)

    @cached_property
    def store(self):
        """The read-only zarr store, sharing the documents the sniff fetched."""
        self._sniff()
        raise_concurrency()
        return remote_store_class()(
            fsspec_store(self.url, self.storage_options, True), self.url,
            self.storage_options, self._members)

    def _sniff(self) -> None:
        """Fetch the root documents (one round trip), or reuse a recent fetch."""
        if self._members or self._error is not None:
            return
        key = (self.url, _options_key(self.storage_options))
        now = time.monotonic()
        with _sniffed_lock:
            hit = _sniffed.get(key)
        if hit is not None and now - hit[0] < SNIFF_TTL:
            self._members.update(hit[1])
            return
        try:
            store = remote_store_class().from_url(self.url, self.storage_options, True,
                                                  self._members)
            run(store.fetch(SNIFF_KEYS))
        except ImageReadError as exc:
            self._error = ImageReadError(self.url, exc.cause)
            return
        with _sniffed_lock:
            _sniffed[key] = (now, dict(self._members))

    @property
    def error(self) -> ImageReadError | None:
        """Why the store could not be reached (a status, a timeout), or None."""
        self._sniff()
        return self._error

    @property
    def is_glob(self) -> bool:
        return False

    @property
    def exists(self) -> bool:
        self._sniff()
        return self._error is None and any(
            self._members.get(k) is not None for k in ("zarr.json", ".zgroup", ".zarray"))

    @property
    def is_dir(self) -> bool:
        return self.exists

    @property
    def missing(self) -> str:
        """Why the URL does not open, for ``open_image``'s error."""
        if self.error is not None:
            return self.error.cause
        return ("not found (HTTP 404): no zarr.json, .zgroup or .zarray at this URL; "
                "only zarr and OME-Zarr are read from URLs")

    @property
    def head(self) -> bytes:
        return b""

    def has_member(self, name: str) -> bool:
        try:
            return self.read_member(name) is not None
        except ImageReadError:
            return False

    def read_member(self, name: str) -> bytes | None:
        """The bytes of ``name`` under the store's root, or None when absent."""
        self._sniff()
        if self._error is not None:
            raise self._error
        if name not in self._members:
            self.prefetch([name])
        return self._members.get(name)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Fetch the metadata documents ``keys`` concurrently, for zarr to find later."""
        todo = [k for k in keys if k not in self._members]
        if todo:
            self._members.update(run(self.store.fetch(todo)))

    @property
    def unfinished_export(self) -> bool:
        """An export of ours that has not written its manifest yet (interrupted)."""
        return (self.read_member(EXPORT_RECORD) is not None
                and self.read_member(EXPORT_MANIFEST) is None)


TARGET_TYPES.append(RemoteTarget)

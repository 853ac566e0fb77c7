"""Remote zarr stores: ``http(s)://``, ``s3://``, ``gs://`` (any fsspec protocol).

Reads go through zarr's ``FsspecStore`` on async filesystems (aiohttp for HTTP, s3fs,
gcsfs), so the chunks one region needs are fetched concurrently. ``RemoteStore`` wraps
it to fetch each metadata document once (the sniff's fetches are reused when zarr opens
the nodes), to retry transient errors (5xx, a dropped connection) a bounded number of
times, and to turn what is left (404 of a metadata file, 403, timeouts) into one
``ImageReadError`` naming the URL and the status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any

from ._errors import ImageReadError
from ._remote_errors import describe_error, forbidden, ignored_range, is_transient

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")

#: zarr metadata documents: fetched once per store, never per read
METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})

_log = logging.getLogger("napari_lazyproc")

#: transient errors (5xx, 429, a dropped connection) are retried this many times
RETRIES = 3
#: seconds before the first retry; doubled for each next one
BACKOFF = 0.1
#: HTTP timeouts (seconds) unless ``storage_options`` gives ``client_kwargs["timeout"]``
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0
#: zarr's default ``async.concurrency``, raised to ``CONCURRENCY`` for remote reads
ZARR_DEFAULT_CONCURRENCY, CONCURRENCY = 10, 64
#: a read block (the dask chunk of a remote level) grows over y and x to about this size,
#: so that one read fetches many chunks concurrently instead of one per pool thread
READ_BLOCK_BYTES = 64 << 20


def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL that fsspec opens (``scheme://...``, not ``file://``).

    Parameters
    ----------
    path
        Anything; only strings can be URLs.

    Returns
    -------
    bool
    """
    if not isinstance(path, str):
        return False
    m = _URL.match(path)
    return bool(m) and m.group(1).lower() != "file"


def scheme(url: str) -> str:
    """The lower-case protocol of ``url`` (``"https"``, ``"s3"``)."""
    return url.split("://", 1)[0].lower()


def fsspec_options(url: str, storage_options: dict | None) -> dict[str, Any]:
    """The options given to fsspec: the caller's, plus defaults from this package and the
    environment. HTTP gets connect and read timeouts (aiohttp waits 5 minutes
    otherwise); S3 reads anonymously when ``AWS_NO_SIGN_REQUEST`` is set, as the AWS CLI
    does. Credentials, region and ``AWS_ENDPOINT_URL`` come from the environment through
    botocore."""
    opts = dict(storage_options or {})
    proto = scheme(url)
    if proto in ("http", "https"):
        client = dict(opts.get("client_kwargs") or {})
        if "timeout" not in client:
            import aiohttp

            client["timeout"] = aiohttp.ClientTimeout(
                total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        opts["client_kwargs"] = client
    elif proto in ("s3", "s3a") and "anon" not in opts:
        if os.environ.get("AWS_NO_SIGN_REQUEST", "").lower() in ("1", "true", "yes"):
            opts["anon"] = True
    return opts


def _join(url: str, key: str) -> str:
    return f"{url.rstrip('/')}/{key}" if key else url


def _read_timeout(storage_options: dict) -> float | None:
    timeout = (storage_options.get("client_kwargs") or {}).get("timeout")
    for attr in ("total", "sock_read"):
        value = getattr(timeout, attr, None)
        if value:
            return float(value)
    return None


def fsspec_store(url: str, storage_options: dict | None, read_only: bool):
    """zarr's ``FsspecStore`` for ``url``; a missing protocol library is named."""
    from zarr.storage import FsspecStore

    try:
        return FsspecStore.from_url(url, storage_options=fsspec_options(url, storage_options),
                                    read_only=read_only)
    except ImportError as exc:
        extra = ("" if scheme(url) in ("http", "https")
                 else "; pip install 'napari-lazyproc[remote]'")
        raise ImageReadError(url, f"{scheme(url)}:// URLs need a library that is not "
                                  f"installed ({exc}){extra}") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ImageReadError(url, f"no fsspec filesystem for {scheme(url)}://") from exc
        raise


def _wrapper_base():
    from zarr.storage import WrapperStore

    return WrapperStore


def run(coro):
    """Run ``coro`` on zarr's event loop (where the store's filesystem lives)."""
    from zarr.core.sync import sync  # zarr's own bridge; no public name for it

    return sync(coro)


def _make_remote_store_class():
    WrapperStore = _wrapper_base()

    class RemoteStore(WrapperStore):
        """An ``FsspecStore`` that fetches each metadata document once, retries transient
        errors and reports the rest as ``ImageReadError`` naming the URL.

        Parameters
        ----------
        store
            The ``FsspecStore`` of ``url``.
        url, storage_options
            Where it is, and the fsspec options it was made with (to pickle it).
        """

        def __init__(self, store, url: str, storage_options: dict | None = None,
                     metadata: dict[str, bytes | None] | None = None) -> None:
            super().__init__(store)
            self.url = url.rstrip("/")
            self.storage_options = dict(storage_options or {})
            self.metadata = {} if metadata is None else metadata
            self.timeout = _read_timeout(fsspec_options(self.url, self.storage_options))

        @classmethod
        def from_url(cls, url: str, storage_options: dict | None = None,
                     read_only: bool = True, metadata: dict | None = None):
            """A read-only store of ``url`` (``storage_options`` go to fsspec)."""
            return cls(fsspec_store(url, storage_options, read_only), url, storage_options,
                       metadata)

        def _with_store(self, store):
            return type(self)(store, self.url, self.storage_options, self.metadata)

        def __reduce__(self):
            return (_remote_store, (self.url, self.storage_options, self.read_only,
                                    dict(self.metadata)))

        def __repr__(self) -> str:
            return f"RemoteStore({self.url!r})"

        async def get(self, key: str, prototype=None, byte_range=None):
            if prototype is None:
                from zarr.core.buffer import default_buffer_prototype

                prototype = default_buffer_prototype()
            is_meta = byte_range is None and key.rsplit("/", 1)[-1] in METADATA_NAMES
            if is_meta and key in self.metadata:
                value = self.metadata[key]
                return None if value is None else prototype.buffer.from_bytes(value)
            try:
                value = await self._get(key, prototype, byte_range)
            except ImageReadError as exc:
                # a bucket readable without listing answers 403 for a key that is not
                # there: a chunk never written (zarr leaves empty chunks out) is absent
                if is_meta or not forbidden(exc):
                    raise
                _log.info("%s: HTTP 403 for chunk %s, read as absent (fill value)",
                          self.url, key)
                return None
            if is_meta:
                self.metadata[key] = None if value is None else value.to_bytes()
            elif byte_range is not None and value is not None:
                wrong = ignored_range(byte_range, len(value))
                if wrong:
                    raise ImageReadError(_join(self.url, key), wrong)
            return value

        async def _get(self, key: str, prototype, byte_range):
            for attempt in range(RETRIES + 1):
                try:
                    return await self._store.get(key, prototype, byte_range)
                except Exception as exc:  # noqa: BLE001 - classified just below
                    if is_transient(exc) and attempt < RETRIES:
                        await asyncio.sleep(BACKOFF * 2**attempt)
                        continue
                    cause = describe_error(exc, self.timeout)
                    if attempt:
                        cause += f" after {attempt + 1} tries"
                    raise ImageReadError(_join(self.url, key), cause) from exc
            raise AssertionError("unreachable")  # pragma: no cover

        async def get_partial_values(self, prototype, key_ranges):
            return list(await asyncio.gather(
                *(self.get(key, prototype, byte_range) for key, byte_range in key_ranges)))

        async def exists(self, key: str) -> bool:
            if key in self.metadata:
                return self.metadata[key] is not None
            return await self._store.exists(key)

        async def fetch(self, keys: Iterable[str]) -> dict[str, bytes | None]:
            """Fetch ``keys`` concurrently (metadata ones are kept); None where absent."""
            keys = list(keys)
            values = await asyncio.gather(*(self.get(k) for k in keys), return_exceptions=True)
            errors = [v for v in values if isinstance(v, BaseException)]
            # 403 beside documents that were read: a bucket readable without listing,
            # where a missing key is forbidden rather than not found; 403 with nothing
            # read: really forbidden
            found = any(v is not None and not isinstance(v, BaseException) for v in values)
            if errors and (not found or any(not forbidden(e) for e in errors)):
                raise errors[0]
            out = {k: None if v is None or isinstance(v, BaseException) else v.to_bytes()
                   for k, v in zip(keys, values, strict=True)}
            self.metadata.update(out)
            return out

    return RemoteStore


_store_class = None
_store_class_lock = threading.Lock()


def remote_store_class():
    """The ``RemoteStore`` class (made on first use: zarr is imported only then)."""
    global _store_class
    with _store_class_lock:
        if _store_class is None:
            _store_class = _make_remote_store_class()
    return _store_class


def _remote_store(url, storage_options, read_only, metadata):
    return remote_store_class().from_url(url, storage_options, read_only, metadata)


def open_remote_store(url: str, storage_options: dict | None = None):
    """A read-only zarr store of ``url`` that fetches metadata once and retries.

    Parameters
    ----------
    url
        ``https://...``, ``s3://bucket/key``, ``gs://...``: the root of a zarr store.
    storage_options
        Passed to fsspec (``{"anon": True}``, ``{"endpoint_url": ...}``, headers...).

    Returns
    -------
    RemoteStore
    """
    raise_concurrency()
    return _remote_store(url, storage_options, True, None)


def raise_concurrency() -> None:
    """Let zarr keep more requests in flight: with remote latency, 10 at a time (its
    default, sized for disks) makes a plane of 64 chunks take 7 round trips instead of
    one. A value the user has set is kept."""
    import zarr

    if zarr.config.get("async.concurrency") == ZARR_DEFAULT_CONCURRENCY:
        zarr.config.set({"async.concurrency": CONCURRENCY})


def read_block(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int
               ) -> tuple[int, ...]:
    """The read block of a remote array: its chunk, grown (by whole chunks) along the
    last axis then the one before, up to ``READ_BLOCK_BYTES``.

    A block is read in one call, which fetches its chunks concurrently; only the
    plane's own axes grow, so a plane still fetches only the chunks it touches.
    """
    block = [int(c) for c in chunks]
    for axis in range(len(block) - 1, max(-1, len(block) - 3), -1):
        while block[axis] < shape[axis]:
            grown = min(shape[axis], block[axis] * 2)
            size = itemsize
            for i, b in enumerate(block):
                size *= grown if i == axis else b
            if size > READ_BLOCK_BYTES:
                return tuple(block)
            block[axis] = grown
    return tuple(block)

"""A file or folder that may be at a URL: ``RemotePath`` (the few ``pathlib`` operations
an export uses, on an object store), and what works on either kind of path (atomic
writes, the zarr store to open). Shared by the export targets and the resume record."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from ..io import fsspec_options
from ._paths import ExportError


class RemotePath:
    """A file or folder at a URL, with the ``pathlib`` operations an export needs.

    Parameters
    ----------
    url
        ``s3://bucket/key``, ``gs://...``, or any fsspec URL that can be written.
    storage_options
        Passed to fsspec.
    """

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})

    def __getstate__(self) -> dict:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, name: str) -> RemotePath:
        return RemotePath(f"{self.url}/{name}", self.storage_options)

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def with_name(self, name: str) -> RemotePath:
        return RemotePath(f"{self.url.rsplit('/', 1)[0]}/{name}", self.storage_options)

    @cached_property
    def _fs(self):
        from fsspec.core import url_to_fs

        try:
            fs, _ = url_to_fs(self.url, **fsspec_options(self.url, self.storage_options))
        except ImportError as exc:
            raise ExportError(f"cannot write {self.url}: {exc} "
                              f"(pip install 'napari-lazyproc[remote]')") from exc
        return fs

    @property
    def fs_path(self) -> str:
        return self._fs._strip_protocol(self.url)

    def exists(self) -> bool:
        """Whether an object is there, or any object under it (a "folder")."""
        self._fs.invalidate_cache(self.fs_path)  # zarr wrote through another instance
        return bool(self._fs.exists(self.fs_path))

    def is_dir(self) -> bool:
        self._fs.invalidate_cache(self.fs_path)
        return bool(self._fs.isdir(self.fs_path))

    def read_text(self) -> str:
        return self._fs.cat_file(self.fs_path).decode()

    def write_text(self, text: str) -> None:
        """One PUT: a reader sees the whole object or none (the atomic write of a
        store with no rename)."""
        self._fs.pipe_file(self.fs_path, text.encode())

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: object stores have no folders."""

    def rmtree(self) -> None:
        """Delete the object, or everything under it."""
        if self.exists():
            self._fs.rm(self.fs_path, recursive=True)

    def zarr_store(self):
        """A writable zarr store here (zarr's ``FsspecStore`` on an async filesystem)."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(
            self.url, storage_options=fsspec_options(self.url, self.storage_options))


def zarr_store(where: str | os.PathLike | RemotePath):
    """What zarr opens for ``where``: the path as a string, or a URL's store."""
    return where.zarr_store() if isinstance(where, RemotePath) else str(where)


def write_atomic(path: Path | RemotePath, text: str) -> None:
    """Write ``text`` so that a reader sees all of it or nothing."""
    if isinstance(path, RemotePath):
        path.write_text(text)
        return
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)

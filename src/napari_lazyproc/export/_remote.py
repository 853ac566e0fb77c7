"""Where an export writes: a local path, or a URL of a store that cannot rename (S3, GCS).

``export`` asks an ``ExportTarget`` four things: refuse the target before anything is
written (``check``), clear what must go (``prepare``), where to write (``partial``) and
how to make it complete (``commit``).

- ``LocalExport``: ``<path>.partial``, renamed into place when done.
- ``RemoteExport``: object stores have no rename, so the export is written in place and
  a manifest (``lazyproc-manifest.json``) written last marks it complete. Until then the
  resume record (``.lazyproc/job.json``, written first) says "unfinished": our reader
  refuses it, and ``resume=True`` finishes it, exactly as a local ``.partial``.

``RemotePath`` (``_remote_path.py``) gives the few ``pathlib`` operations the resume
record uses on a URL, and the zarr store the writers open; it pickles by URL.
"""

from __future__ import annotations

import datetime
import json
import os
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from ..io import EXPORT_MANIFEST, EXPORT_RECORD, forget_remote, is_url
from ._paths import ExportError, check_target, commit, partial_path, remove
from ._remote_path import RemotePath, write_atomic
from ._resume import ResumeRecord


class LocalExport:
    """An export to a local path: ``<path>.partial``, renamed into place when done.

    Parameters
    ----------
    path
        The output path.
    """

    remote = False

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)

    def check(self, inputs: list[str | None], overwrite: bool, resume: bool) -> None:
        """Refuse an existing path, or one that is, holds or is inside an input."""
        local = [s for s in inputs if s and not is_url(s)]
        check_target(self.path, local, overwrite, resume)

    def is_complete(self) -> bool:
        """Whether an output is there (a partial is only ever renamed into place whole)."""
        return self.path.exists()

    def prepare(self, resume: bool) -> None:
        """Clear a partial that is not being resumed."""
        if self.partial.exists() and not resume:
            remove(self.partial)  # overwrite=True, or a failed write that cannot resume

    def commit(self, manifest: dict[str, Any]) -> None:
        commit(self.partial, self.path)

    def discard(self) -> None:
        if self.partial.exists():
            remove(self.partial)


class RemoteExport:
    """An export to a URL: written in place, complete once its manifest is written.

    Parameters
    ----------
    url
        ``s3://bucket/out.ome.zarr``, ``gs://...``, ``memory://...``.
    storage_options
        Passed to fsspec.
    """

    remote = True

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.path = url.rstrip("/")
        self.partial = RemotePath(self.path, storage_options)
        self._checked: str | None = None  # what ``check`` found there

    @property
    def manifest(self) -> RemotePath:
        return self.partial / EXPORT_MANIFEST

    @property
    def record(self) -> RemotePath:
        return self.partial / EXPORT_RECORD

    def _state(self) -> str:
        """"complete", "unfinished" (our export, interrupted), "other" (something
        else is there) or "empty"."""
        if self.manifest.exists():
            return "complete"
        if self.record.exists():
            return "unfinished"
        return "other" if self.partial.exists() else "empty"

    def is_complete(self) -> bool:
        """Whether a complete export is there (its manifest written)."""
        try:
            return self._state() == "complete"
        except OSError:
            return False

    def check(self, inputs: list[str | None], overwrite: bool, resume: bool) -> None:
        """Refuse a URL we cannot write, one that is or holds an input, or one with
        something there (unless ``overwrite``, or ``resume`` for an unfinished export)."""
        if self.path.split("://", 1)[0].lower() in ("http", "https"):
            raise ExportError(f"cannot write {self.path}: HTTP servers are read-only here; "
                              f"export to s3://, gs:// or a local path")
        for src in inputs:
            if src and is_url(src):
                a, b = src.rstrip("/") + "/", self.path + "/"
                if a.startswith(b) or b.startswith(a):
                    raise ExportError(
                        f"refusing to write {self.path}: it is, holds or is inside the input "
                        f"{src}; exports never write into their input")
        try:
            state = self._state()
        except OSError as exc:
            raise ExportError(f"cannot write {self.path}: {exc}") from exc
        if state in ("complete", "other") and not overwrite:
            raise ExportError(
                f"{self.path} already exists; pass overwrite=True (--overwrite) to replace it")
        if state == "unfinished" and not (resume or overwrite):
            raise ExportError(
                f"{self.path} holds an interrupted export (no {EXPORT_MANIFEST}); pass "
                f"resume=True (--resume) to finish it or overwrite=True (--overwrite) to "
                f"start again")
        self._checked = state

    def prepare(self, resume: bool) -> None:
        """Delete what is there unless an unfinished export is resumed. A store cannot be
        replaced atomically: with ``overwrite=True`` the old one goes first."""
        state = self._checked or self._state()
        forget_remote(self.path)  # a reader must not reuse what it saw before
        if state in ("complete", "other") or (state == "unfinished" and not resume):
            self.partial.rmtree()

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest: from now on the export is complete."""
        try:
            version = importlib_metadata.version("napari-lazyproc")
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover
            version = "unknown"
        doc = {"complete": True, "written_by": f"napari-lazyproc {version}",
               "date": datetime.datetime.now(datetime.UTC).isoformat(
                   timespec="seconds"), **manifest}
        write_atomic(self.manifest, json.dumps(doc, indent=1))
        ResumeRecord(self.partial).finish()  # after the manifest: never neither of them
        forget_remote(self.path)

    def discard(self) -> None:
        self.partial.rmtree()


def export_target(path: str | os.PathLike, storage_options: dict | None = None
                  ) -> LocalExport | RemoteExport:
    """The target of an export to ``path``: a local path, or a URL (fsspec).

    Raises
    ------
    ExportError
        ``storage_options`` given for a local path.
    """
    if is_url(path):
        return RemoteExport(str(path), storage_options)
    if storage_options:
        raise ExportError(f"storage_options are for URLs (s3://, gs://); {path} is local")
    return LocalExport(path)

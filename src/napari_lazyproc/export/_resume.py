"""The resume record of a chunked export: what the job is, and which chunks are done.

It lives in ``<path>.partial/.lazyproc/`` and is removed just before the partial is
renamed into place:

- ``job.json``: what was asked (input shape, pipeline, format, chunks, levels) and the
  input's identity (its token and a digest of its stamp: its bytes); resuming a
  different export, or the same one after its input changed, is refused, never mixed;
- ``done-<level>/<i.j.k>``: one marker per written chunk, holding a digest of its values,
  written atomically after the chunk. A chunk counts as done only when its marker exists
  and the stored values still match the digest, so a chunk half-written when the process
  died is computed again;
- ``labels-chunks/``: the chunk-local labels of a global labeling job run for the export.

A record is a path only, so it pickles to dask workers with the chunk jobs.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._paths import ExportError, remove
from ._remote_path import RemotePath, write_atomic

#: the record's folder inside the partial
JOB_DIR = ".lazyproc"


def digest(values: np.ndarray) -> str:
    """A digest of ``values`` (dtype, shape and bytes): CRC-32 of the bytes, which tells a
    chunk written whole from one torn by a crash, at several GB/s (blake2b took a tenth
    of an export's CPU). A marker of another form never matches: its chunk is redone."""
    head = f"{values.dtype.str}{values.shape}"
    return f"crc32:{head}:{zlib.crc32(np.ascontiguousarray(values).data):08x}"


#: what a job records for reading only, not its identity: the input's path as it was
#: spelled (``"input"``, its identity, holds where its bytes really are)
PROVENANCE_ONLY = ("source",)


def difference(where, previous: dict | None, job: dict, complete: bool = False) -> str:
    """One line saying why the export at ``where`` (a partial, or a ``complete`` output)
    cannot be resumed, or accepted, as ``job``."""
    if complete:  # an output: "exists" first, as for any other file there
        return _complete_difference(where, previous, job)
    again = "pass overwrite=True to start again"
    if not isinstance(previous, dict):
        return f"{where} holds no readable export record; {again}"
    differ = sorted(k for k in {*previous, *job} if previous.get(k) != job.get(k))
    if differ == ["input"]:
        return (f"{where} was started from the same input before its data changed "
                f"(its files were rewritten since); resuming would mix the two: {again}")
    return (f"{where} was started by a different export ({', '.join(differ)} "
            f"differ); {again}")


def _complete_difference(where, previous: dict | None, job: dict) -> str:
    """Why the complete output at ``where`` is not ``job``'s. Its source's path is
    provenance, not identity (the same file may be spelled two ways): the input's token
    says where its bytes are, its stamp when they were written."""
    again = f"{where} already exists; pass overwrite=True (--overwrite) to replace it"
    if not isinstance(previous, dict):
        return again
    differ = sorted(k for k in {*previous, *job}
                    if k not in PROVENANCE_ONLY and previous.get(k) != job.get(k))
    if differ == ["input"]:
        old, new = previous.get("input") or {}, job.get("input") or {}
        if old.get("token") == new.get("token"):
            return f"{again}: it was made from the same input before its data changed"
        return (f"{again}: it was made from another input ({previous.get('source')} "
                f"there, {job.get('source')} now)")
    detail = "; ".join(
        _steps_difference(previous.get(k) or [], job.get(k) or []) if k == "pipeline"
        else f"{k} {_short(previous.get(k))} there, {_short(job.get(k))} now"
        for k in differ if k in ("pipeline", "shape", "dtype", "format", "levels"))
    return (f"{again}: it was made by a different export ({', '.join(differ)} differ"
            + (f": {detail}" if detail else "") + ")")


def _steps_difference(old: list, new: list) -> str:
    """Which steps differ, and in which parameters: ``step 1 gaussian: sigma [1.0] there,
    [2.0] now``."""
    ops = [s.get("op") if isinstance(s, dict) else s for s in old], \
        [s.get("op") if isinstance(s, dict) else s for s in new]
    if ops[0] != ops[1]:
        return f"steps {_short(ops[0])} there, {_short(ops[1])} now"
    out = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
        out += [f"step {i + 1} {a.get('op')}: {k} {_short(a.get(k))} there, "
                f"{_short(b.get(k))} now" for k in keys]
    return "; ".join(out) or "pipeline"


def _short(value, limit: int = 200) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ResumeRecord:
    """Where the job record and chunk markers of the export into ``partial`` live.

    Parameters
    ----------
    partial
        The ``<path>.partial`` folder the export writes, or the URL of an export
        written in place (``RemotePath``).
    """

    def __init__(self, partial: str | Path | RemotePath) -> None:
        self.partial = partial if isinstance(partial, RemotePath) else Path(partial)
        self.root = self.partial / JOB_DIR

    @property
    def job_file(self) -> Path:
        return self.root / "job.json"

    @property
    def labels_store(self) -> Path | None:
        """Where a global labeling job keeps its chunk labels (so resume reuses none);
        None for a URL: a temporary local folder."""
        if isinstance(self.root, RemotePath):
            return None
        return self.root / "labels-chunks"

    def markers(self, level: int) -> Path:
        return self.root / f"done-{level}"

    def begin(self, job: dict[str, Any]) -> None:
        """Record ``job`` in a fresh partial, or check an existing partial was started
        by the same job (resume).

        Raises
        ------
        ExportError
            When the partial holds another export's record (or none).
        """
        if self.partial.exists():
            try:
                previous = json.loads(self.job_file.read_text())
            except (OSError, ValueError):
                previous = None
            job = json.loads(json.dumps(job))  # as JSON: tuples are lists
            if previous != job:
                raise ExportError(difference(self.partial, previous, job))
        else:
            self.root.mkdir(parents=True)
            self.job_file.write_text(json.dumps(job))

    def begin_level(self, level: int) -> None:
        self.markers(level).mkdir(parents=True, exist_ok=True)

    def _marker(self, level: int, index: tuple[int, ...]) -> Path:
        return self.markers(level) / ".".join(map(str, index))

    def is_done(self, level: int, index: tuple[int, ...],
                stored: Callable[[], np.ndarray]) -> bool:
        """Whether chunk ``index`` of ``level`` was written: its marker exists and the
        values ``stored()`` reads back match the marker's digest."""
        try:
            expected = self._marker(level, index).read_text()
        except OSError:
            return False
        try:
            values = np.asarray(stored())
        except Exception:  # noqa: BLE001 - a truncated or corrupt chunk: compute it again
            return False
        return digest(values) == expected

    def mark_done(self, level: int, index: tuple[int, ...], values: np.ndarray) -> None:
        """Record chunk ``index`` of ``level`` as written with ``values``. Atomic: a
        marker is whole or absent."""
        write_atomic(self._marker(level, index), digest(values))

    def finish(self) -> None:
        """Remove the record: the partial is complete."""
        remove(self.root)

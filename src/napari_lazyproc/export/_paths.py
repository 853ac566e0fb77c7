"""Where an export may write: refusals, the ``.partial`` sibling, and the final rename."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from .._shared.cluster import ExportError

__all__ = ["ExportError"]  # defined with the cluster it also names (measure uses both)


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_target(path: Path, inputs: list[str], overwrite: bool, resume: bool) -> None:
    """Refuse before anything is written: an existing path, or a path that is (inside)
    an input, or that holds one (overwriting would delete it)."""
    resolved = path.resolve()
    for src in inputs:
        if not src:
            continue
        s = Path(src).resolve()
        if resolved == s or _inside(resolved, s) or _inside(s, resolved):
            raise ExportError(
                f"refusing to write {path}: it is, holds or is inside the input {src}; "
                f"exports never write into their input"
            )
    if path.exists() and not overwrite:
        raise ExportError(
            f"{path} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    if partial_path(path).exists() and not (resume or overwrite):
        raise ExportError(
            f"{partial_path(path)} holds an interrupted export; pass resume=True (--resume) "
            f"to finish it or overwrite=True (--overwrite) to start again"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write {path}: no permission to write in {parent}")


def commit(partial: Path, path: Path) -> None:
    """Move the finished ``partial`` into place; an existing ``path`` is replaced only now."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
    os.replace(partial, path)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def remove(path: Path) -> None:
    if hasattr(path, "rmtree"):  # a URL (``_remote.RemotePath``)
        path.rmtree()
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()

"""The options of one export, checked once, before anything is read or written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._format_names import FORMATS
from ._paths import ExportError

#: OME-Zarr versions written: 0.4 on zarr v2, 0.5 on zarr v3
OME_ZARR_VERSIONS = ("0.4", "0.5")

#: the chunk cache is held to this size while exporting, unless told otherwise
CACHE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class ExportOptions:
    """How to write: every parameter of ``export`` but the data and the path.

    Built by ``export``; invalid values raise ``ExportError`` naming the parameter.
    """

    format: str = "ome-zarr"
    version: str = "0.4"
    chunks: tuple[int, ...] | None = None
    levels: int = 1
    overwrite: bool = False
    resume: bool = False
    progress: bool | Callable[[int, int], object] | None = None
    cancel: threading.Event | None = None
    scheduler: Any = None
    workers: int | None = None
    axes: str | None = None
    name: str | None = None
    cache_bytes: int = CACHE_BYTES

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        if self.version not in OME_ZARR_VERSIONS:
            raise ExportError(f"OME-Zarr version must be '0.4' or '0.5' (got {self.version!r})")
        if self.levels < 1:
            raise ExportError(f"levels must be >= 1 (got {self.levels})")
        if self.chunks is not None:
            object.__setattr__(self, "chunks", tuple(self.chunks))  # frozen: set once here

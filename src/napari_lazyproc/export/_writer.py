"""The interface every format's writer has (``WRITERS`` in ``_formats`` lists them)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._input import ExportInput
    from ._options import ExportOptions


class Writer(ABC):
    """Writes one format. ``export`` checks the target, clears or keeps the partial,
    calls `check` then `write`, and renames the partial into place.

    Parameters
    ----------
    options
        The checked options of the export.
    """

    #: whether an interrupted write can be finished (``resume=True``); the partial of a
    #: writer that cannot is removed when it fails
    resumable: ClassVar[bool] = False
    #: whether it can write to a URL's store (``export/_remote.py``)
    remote: ClassVar[bool] = False

    def __init__(self, options: ExportOptions) -> None:
        self.options = options
        #: the job written, as the output's provenance records it (``job``)
        self.recorded: dict[str, Any] | None = None

    def check(self, data: ExportInput) -> None:  # noqa: B027 - optional hook
        """Refuse ``data`` (``ExportError``) before anything is written."""

    def job(self, data: ExportInput) -> dict[str, Any]:
        """What identifies this export: the resume record of a partial, and the
        ``"export"`` entry of a complete output's provenance (call after ``check``)."""
        return {"shape": list(data.shape), "dtype": str(data.dtype),
                "format": self.options.format, "pipeline": data.steps,
                "source": data.source_path, "input": data.identity()}

    @abstractmethod
    def write(self, data: ExportInput, partial: Path) -> None:
        """Write ``data`` to ``partial``: a path that does not exist yet, or, when
        resuming, what an interrupted write of the same export left there."""

"""The interface every format's writer has (``WRITERS`` in ``_formats`` lists them)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

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

    def check(self, data: ExportInput) -> None:  # noqa: B027 - optional hook
        """Refuse ``data`` (``ExportError``) before anything is written."""

    @abstractmethod
    def write(self, data: ExportInput, partial: Path) -> None:
        """Write ``data`` to ``partial``: a path that does not exist yet, or, when
        resuming, what an interrupted write of the same export left there."""

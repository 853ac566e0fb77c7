"""The one error a reader raises for a file it claims but cannot read."""

from __future__ import annotations

import os


class ImageReadError(OSError):
    """A file that looks like a supported format could not be read.

    The message names the path and the cause, in one line.
    """

    def __init__(self, path: str | os.PathLike, cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"cannot read {self.path!r}: {cause}")

    def __str__(self) -> str:
        return f"cannot read {self.path!r}: {self.cause}"


class OptionError(TypeError):
    """A format does not take an option the caller gave (``open_image(path, **options)``):
    the one ``TypeError`` reported as the user's mistake; any other is the reader's."""

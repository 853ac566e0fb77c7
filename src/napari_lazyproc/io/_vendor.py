"""What the vendor formats (ND2, CZI, LIF) share: claimed by suffix, refused by name
without their optional reader, a file the reader cannot open refused in one line, and
the handle closed when building the image fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ._errors import ImageReadError
from ._image import LazyImage
from ._registry import Format, Target


class VendorFormat(Format):
    """A microscope's file read by an optional package (``module``, the extra ``extra``).

    Subclasses give ``suffix``, ``module``, ``extra``, ``open_file(path)`` (the reader's
    handle) and ``image(handle, path, series)``.
    """

    suffix = ""
    module = ""
    extra = ""

    @classmethod
    def claims(cls, target: Target) -> bool:
        return isinstance(target.path, Path) and not target.is_dir and \
            target.has_suffix(cls.suffix)

    @classmethod
    def open(cls, target: Target, *, series: int = 0) -> LazyImage:
        if importlib.util.find_spec(cls.module) is None:
            raise ImageReadError(target.path, f"reading {cls.name} needs {cls.module} "
                                              f"(pip install napari-lazyproc[{cls.extra}])")
        path = str(target.path)
        try:
            handle = cls.open_file(path)
        except Exception as exc:  # noqa: BLE001 - readers raise many kinds on a bad file
            raise ImageReadError(path, f"not a readable {cls.name} file ({exc})") from exc
        try:
            return cls.image(handle, path, series)
        except Exception:
            handle.close()
            raise

    @classmethod
    def open_file(cls, path: str) -> Any:
        raise NotImplementedError

    @classmethod
    def image(cls, handle: Any, path: str, series: int) -> LazyImage:
        raise NotImplementedError

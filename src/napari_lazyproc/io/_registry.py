"""A small registry of formats: each class says cheaply whether it claims a path, then opens it."""

from __future__ import annotations

import inspect
import os
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from ._errors import ImageReadError, OptionError
from ._image import LazyImage

GLOB_CHARS = frozenset("*?[")


class Target:
    """A path to be sniffed, with cached cheap looks at it (never pixel data)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.raw = os.fspath(path)
        self.path = Path(self.raw).expanduser()

    @cached_property
    def is_glob(self) -> bool:
        return bool(GLOB_CHARS & set(self.raw)) and not self.path.exists()

    @cached_property
    def exists(self) -> bool:
        return self.path.exists()

    @cached_property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    @cached_property
    def lower_name(self) -> str:
        return self.path.name.lower().rstrip("/")

    def has_suffix(self, *suffixes: str) -> bool:
        return self.lower_name.endswith(suffixes)

    def has_member(self, name: str) -> bool:
        return self.is_dir and (self.path / name).is_file()

    @cached_property
    def head(self) -> bytes:
        """The first bytes of a file, or b'' when it is not a readable file."""
        try:
            with open(self.path, "rb") as f:
                return f.read(16)
        except OSError:
            return b""

    #: why ``open_image`` cannot open a target that does not exist
    missing = "no such file or directory"

    def read_member(self, name: str) -> bytes | None:
        """The bytes of the file ``name`` inside this folder, or None."""
        try:
            return (self.path / name).read_bytes() if self.is_dir else None
        except OSError:
            return None


#: target classes for what is not a local path (URLs, see ``_remote_target``); the first whose
#: ``accepts(path)`` is true makes the target, with the ``storage_options`` option
TARGET_TYPES: list[type[Target]] = []


def make_target(path: str | os.PathLike, options: dict[str, Any] | None = None) -> Target:
    """The target for ``path``: a URL's (taking ``storage_options`` out of ``options``)
    or a local path's."""
    for cls in TARGET_TYPES:
        if cls.accepts(path):  # type: ignore[attr-defined]
            storage_options = (options or {}).pop("storage_options", None)
            return cls(path, storage_options)  # type: ignore[call-arg]
    return Target(path)


class Format:
    """One on-disk layout. Subclasses set ``name`` and implement ``claims`` and ``open``."""

    name: ClassVar[str] = "format"

    @classmethod
    def claims(cls, target: Target) -> bool:  # pragma: no cover - interface
        """Whether this layout is the one to open ``target``. Cheap; must never raise."""
        raise NotImplementedError

    @classmethod
    def open(cls, target: Target, **options: Any) -> LazyImage:  # pragma: no cover
        """Open ``target`` lazily, reading metadata only."""
        raise NotImplementedError


FORMATS: list[type[Format]] = []


def register(cls: type[Format] | None = None, *, before: type[Format] | None = None):
    """Add a format class to the registry; earlier registrations are asked first.

    Parameters
    ----------
    cls
        A ``Format`` subclass.
    before
        A registered format this one is asked before (a layout inside a more general
        one: an HCS plate is a zarr group too).

    Returns
    -------
    type
        ``cls`` itself, so that ``register`` works as a class decorator (also as
        ``@register(before=Other)``).
    """
    if cls is None:
        return lambda c: register(c, before=before)
    FORMATS.insert(FORMATS.index(before) if before in FORMATS else len(FORMATS), cls)
    return cls


def _find(target: Target) -> type[Format] | None:
    for fmt in FORMATS:
        try:
            if fmt.claims(target):
                return fmt
        except Exception:  # noqa: BLE001 - a sniff must never raise
            continue
    return None


def find_format(path: str | os.PathLike) -> type[Format] | None:
    """The format that claims ``path``, or None. Never raises.

    Parameters
    ----------
    path
        A file, a directory or a glob.

    Returns
    -------
    type or None
        The first registered ``Format`` whose ``claims`` is true, or None.
    """
    try:
        return _find(make_target(path))
    except (TypeError, ValueError):
        return None


def open_image(path: str | os.PathLike, **options: Any) -> LazyImage:
    """Open an image lazily: zarr / OME-Zarr, HDF5, TIFF, or a folder or glob of TIFFs.

    Only metadata is read; pixels are read when the returned arrays are computed.

    Parameters
    ----------
    path
        A file, a directory (zarr store or folder of TIFFs) or a glob of TIFF files;
        or the URL of a zarr / OME-Zarr store (``https://``, ``s3://``, ``gs://``).
    **options
        Format-specific choices, such as ``dataset="/group/name"`` for HDF5,
        ``series=1`` for TIFF, or ``axis="z"`` for a TIFF folder; for a URL,
        ``storage_options={...}`` for fsspec (``{"anon": True}``, an ``endpoint_url``).

    Returns
    -------
    LazyImage

    Raises
    ------
    ImageReadError
        When no format claims the path, or the claimed file cannot be read. The message
        names the path and the cause.
    """
    target = make_target(path, options)
    if not target.exists and not target.is_glob:
        raise ImageReadError(path, target.missing)
    fmt = _find(target)
    if fmt is None:
        raise ImageReadError(
            path, "not a zarr store, HDF5 / Imaris / BigDataViewer file, TIFF file or "
            "folder of TIFF files, ND2, CZI or LIF file"
        )
    try:
        inspect.signature(fmt.open).bind(target, **options)
    except TypeError as exc:  # the user's options, checked before any reading
        raise ImageReadError(path, f"{fmt.name} does not take that option: {exc}") from exc
    try:
        return fmt.open(target, **options)
    except ImageReadError:
        raise
    except OptionError as exc:
        raise ImageReadError(path, f"{fmt.name} does not take that option: {exc}") from exc
    except PermissionError as exc:
        raise ImageReadError(path, f"permission denied ({exc.strerror or exc})") from exc
    except Exception as exc:  # noqa: BLE001 - one clear error for a claimed file
        cause = str(exc) or type(exc).__name__
        raise ImageReadError(path, f"not a readable {fmt.name} ({cause})") from exc

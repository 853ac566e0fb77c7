"""TIFF, BigTIFF, OME-TIFF and ImageJ hyperstacks, pyramids included.

Pixels are read through tifffile's ``aszarr`` store, one tile or strip at a time, never
with a whole-file ``asarray``.
"""

from __future__ import annotations

import logging
import struct
from contextlib import contextmanager
from pathlib import Path

from ._errors import ImageReadError
from ._file_array import FileArray
from ._image import LazyImage
from ._registry import Format, Target, register
from ._tiff_metadata import tiff_metadata

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _TiffHandle:
    def __init__(self, tif, array) -> None:
        self.tif, self.array = tif, array

    def close(self) -> None:
        self.tif.close()


def _open_level(path: str, series: int, level: int, tif=None) -> _TiffHandle:
    import tifffile
    import zarr

    tif = tif or tifffile.TiffFile(path)
    store = tif.series[series].aszarr(level=level)
    return _TiffHandle(tif, zarr.open_array(store, mode="r"))


class TiffLevel(FileArray):
    """One pyramid level of one series of a TIFF file, read tile by tile."""

    def __init__(self, path, series: int, level: int, shape, dtype, chunks, handle=None):
        super().__init__(path, shape, dtype, chunks, handle)
        self.series, self.level = int(series), int(level)

    def _identity(self) -> tuple:
        return (self.series, self.level, *super()._identity())

    def _open(self) -> _TiffHandle:
        return _open_level(self.path, self.series, self.level)

    def _read(self, handle: _TiffHandle, key):
        return handle.array[key]


def tiff_axes(series_axes: str) -> str:
    """tifffile's axis letters as distinct lowercase ones.

    Parameters
    ----------
    series_axes
        A tifffile series' ``axes``: ``T``, ``Z``, ``C``, ``Y``, ``X``, ``S`` (samples) and
        ``I``, ``Q``... for unknown ones.

    Returns
    -------
    str
        ``S`` becomes ``c`` where there is no ``C``; each unknown letter becomes the first
        of ``z``, ``t``, ``c``, ``q``, ``r``... not yet taken.
    """
    known = {"T": "t", "Z": "z", "C": "c", "Y": "y", "X": "x"}
    letters = [known.get(a) for a in series_axes]
    for i, a in enumerate(series_axes):
        if letters[i]:
            continue
        if a == "S" and "c" not in letters:
            letters[i] = "c"
            continue
        for candidate in ("z", "t", "c", *"qrsuvw"):
            if candidate not in letters:
                letters[i] = candidate
                break
    return "".join(letters)

@register
class Tiff(Format):
    """A TIFF, BigTIFF, OME-TIFF or ImageJ hyperstack; all pyramid levels of one series."""

    name = "TIFF"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if target.is_dir or target.is_glob:
            return False
        return target.has_suffix(*TIFF_SUFFIXES) or target.head.startswith(TIFF_MAGIC)

    @classmethod
    def open(cls, target: Target, *, series: int = 0) -> LazyImage:
        import tifffile

        path = str(target.path)
        with _tifffile_errors() as errors:
            try:
                tif = tifffile.TiffFile(path)
                tif.series  # noqa: B018 - parse the series while errors are captured
            except (tifffile.TiffFileError, ValueError, EOFError, struct.error) as exc:
                raise ImageReadError(path, f"not a readable TIFF file ({exc})") from exc
        try:
            if errors:
                raise ImageReadError(path, f"the file is damaged or truncated ({errors[0]})")
            if not tif.series:
                raise ImageReadError(path, "the TIFF file holds no image series")
            if not 0 <= series < len(tif.series):
                raise ImageReadError(
                    path, f"series={series} is out of range; the file has {len(tif.series)}"
                )
            s = tif.series[series]
            axes = tiff_axes(s.axes)
            rgb = s.axes.endswith("S") and s.shape[-1] in (3, 4)
            sources, levels = [], []
            for i, lvl in enumerate(s.levels):
                handle = _open_level(path, series, i, tif)
                arr = TiffLevel(
                    path, series, i, lvl.shape, lvl.dtype, handle.array.chunks,
                    handle if i == 0 else None,
                )
                _check_complete(path, tif, lvl)
                sources.append(arr)
                levels.append(arr.to_dask())
            meta = tiff_metadata(tif, series, axes)
        except Exception:
            tif.close()
            raise
        fmt = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
        if tif.is_bigtiff:
            fmt = "big" + fmt
        return LazyImage(
            levels=levels,
            axes=axes,
            scale=tuple(meta["scale"]),
            translate=tuple(meta.get("translate") or (0.0,) * len(axes)),
            units=tuple(meta["units"]),
            name=_stem(Path(path)),
            channel_names=meta.get("channel_names"),
            channel_colors=meta.get("channel_colors"),
            source={"path": path, "format": fmt, "series": series, "series_axes": s.axes},
            metadata={"rgb": rgb, "n_series": len(tif.series)},
            sources=sources,
        )


@contextmanager
def _tifffile_errors():
    """tifffile logs a broken IFD chain and opens what it can; collect those errors."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record.getMessage().split("> ", 1)[-1])

    logger = logging.getLogger("tifffile")
    handler = Collect()
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


def _check_complete(path: str, tif, level) -> None:
    """A truncated file has tiles whose bytes lie past the end of the file."""
    size = tif.filehandle.size
    for page in level.pages[:1] + level.pages[-1:]:
        if page is None or not hasattr(page, "dataoffsets"):
            continue
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True) if o]
        if ends and max(ends) > size:
            raise ImageReadError(
                path, f"the file is truncated: image data ends at byte {max(ends)}, "
                f"the file has {size}"
            )
    if len(level.pages) and level.pages[-1] is None:
        raise ImageReadError(path, "the file is truncated: its last page cannot be read")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.btf", *TIFF_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem

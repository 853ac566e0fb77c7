"""A folder or glob of TIFF files, one per time point or per plane, as a virtual stack.

Files are in natural sort order (``tifffile.natural_sorted``: t2 before t10). Each file is
opened only when a chunk that lies in it is read, and a file whose shape or dtype differs
from the first gives an error that names it.

``tifffile.TiffSequence`` is not used for the pixels: its zarr store reads a whole file per
chunk and does not name a file that differs from the first.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from ._errors import ImageReadError
from ._file_array import FileArray
from ._identity import as_slices, file_stamp
from ._image import LazyImage
from ._registry import Format, Target, register
from ._tiff import TIFF_SUFFIXES, tiff_axes
from ._tiff_metadata import tiff_metadata


def _is_tiff_name(name: str) -> bool:
    return name.lower().endswith(TIFF_SUFFIXES) and not name.startswith(".")


def list_tiffs(target: Target) -> list[str]:
    """The TIFF files of a folder or a glob, in natural order.

    Parameters
    ----------
    target
        A folder, or a glob such as ``"data/t*.tif"``.

    Returns
    -------
    list of str
        Paths of the regular files with a TIFF suffix (hidden ones left out in a folder),
        sorted so that embedded numbers count by value: ``t2`` before ``t10``.
    """
    import tifffile

    if target.is_dir:
        with os.scandir(target.path) as it:
            files = [e.path for e in it if _is_tiff_name(e.name) and e.is_file()]
    else:
        files = [
            f for f in glob.glob(os.path.expanduser(target.raw))
            if f.lower().endswith(TIFF_SUFFIXES) and os.path.isfile(f)
        ]
    return tifffile.natural_sorted(files)


def _read_file(path: str, key: tuple, shape: tuple[int, ...], dtype: np.dtype,
               first: str) -> np.ndarray:
    """``key`` of the first series of one file, read tile by tile; its shape checked."""
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if tuple(series.shape) != shape or series.dtype != dtype:
                raise ImageReadError(
                    path,
                    f"shape {tuple(series.shape)} {series.dtype} differs from the "
                    f"first file's {shape} {dtype} ({first})",
                )
            with series.aszarr(level=0) as store:
                return zarr.open_array(store, mode="r")[key]
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the file that failed
        raise ImageReadError(path, f"not a readable TIFF file ({exc})") from exc


class TiffSequenceArray(FileArray):
    """Files stacked along a new first axis; each read opens only the files it needs."""

    def __init__(self, files: list[str], file_shape, dtype, file_chunks) -> None:
        super().__init__(
            files[0], (len(files), *file_shape), dtype, (1, *file_chunks), handle=None
        )
        self.files = list(files)
        self.file_shape = tuple(int(s) for s in file_shape)

    def _identity(self) -> tuple:
        return (tuple(self.files), *super()._identity())

    def _open(self):
        return self  # files are opened per read

    def stamp(self, region) -> tuple:
        """The stat of each file (plane) the region reads."""
        which = as_slices(region, self.shape)[0]
        return tuple(file_stamp(f) for f in self.files[which])

    def location(self) -> str:
        return os.path.realpath(os.path.dirname(self.files[0]))

    def _read(self, handle, key):
        which, rest = key[0], key[1:]
        if not isinstance(which, slice):
            return self._read_one(which, rest)
        planes = [self._read_one(i, rest) for i in range(which.start, which.stop)]
        if not planes:
            return np.empty((0, *(s.stop - s.start for s in rest if isinstance(s, slice))),
                            self.dtype)
        return np.stack(planes)

    def _read_one(self, index: int, key: tuple) -> np.ndarray:
        return _read_file(self.files[index], key, self.file_shape, self.dtype, self.files[0])


@register
class TiffSequence(Format):
    """A folder of TIFF files, or a glob such as ``"data/t*.tif"``."""

    name = "TIFF sequence"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if target.is_glob:
            return bool(list_tiffs(target))
        if not target.is_dir:
            return False
        with os.scandir(target.path) as it:
            return any(_is_tiff_name(e.name) for e in it)

    @classmethod
    def open(cls, target: Target, *, axis: str | None = None) -> LazyImage:
        import tifffile
        import zarr

        files = list_tiffs(target)
        if not files:
            raise ImageReadError(target.raw, "no TIFF files match")
        try:
            with tifffile.TiffFile(files[0]) as tif:
                series = tif.series[0]
                file_axes = tiff_axes(series.axes)
                with series.aszarr(level=0) as store:
                    chunks = zarr.open_array(store, mode="r").chunks
                meta = tiff_metadata(tif, 0, file_axes)
                shape, dtype = tuple(series.shape), series.dtype
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(files[0], f"not a readable TIFF file ({exc})") from exc
        if axis is None:
            axis = "t" if "z" in file_axes else "z"
        if len(axis) != 1 or axis in file_axes:
            raise ImageReadError(
                target.raw, f"axis={axis!r} must be one letter not already in {file_axes!r}"
            )
        arr = TiffSequenceArray(files, shape, dtype, chunks)
        axes = axis + file_axes
        return LazyImage(
            levels=[arr.to_dask()],
            sources=[arr],
            axes=axes,
            scale=(1.0, *meta["scale"]),
            translate=(0.0, *(meta.get("translate") or (0.0,) * len(file_axes))),
            units=(None, *meta["units"]),
            channel_names=meta.get("channel_names"),
            name=target.path.name if target.is_dir else Path(files[0]).parent.name,
            source={
                "path": target.raw,
                "format": "tiff-sequence",
                "files": len(files),
                "first": files[0],
                "last": files[-1],
            },
            metadata={"files": files},
        )

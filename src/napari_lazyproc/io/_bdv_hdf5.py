"""BigDataViewer / BigStitcher HDF5: the ``.h5`` file or the ``dataset.xml`` that points to it.

Layout (BigDataViewer's ``WriteSequenceToHdf5``): ``s{ss}/resolutions`` (x, y, z factors
per level) and ``s{ss}/subdivisions`` (x, y, z blocks per level) per setup, and the
pixels in ``t{ttttt}/s{ss}/{level}/cells`` (z, y, x). Setups are shown as channels, time
points as ``t``, the levels as a pyramid; a view BigStitcher left out reads as zeros.

The XML (``ImageLoader format="bdv.hdf5"``) gives the setups' names and the voxel size.
Opening the ``.h5`` itself looks for the XML beside it that points to it, so both
openings give the same names and voxel size; the file's own groups say which setups,
time points and levels exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ._bdv_xml import bdv_image, container_path, loader_format, voxel_size, xml_for
from ._errors import ImageReadError
from ._file_array import open_hdf5
from ._hdf5_file import claims_hdf5, open_file
from ._image import LazyImage
from ._registry import Format, Target, register
from ._views import ViewStack

_LOADER = "bdv.hdf5"


def _view(t: int, s: int, level: int) -> str:
    return f"t{t:05d}/s{s:02d}/{level}/cells"


class BdvArray(ViewStack):
    """One resolution level of a BigDataViewer HDF5 file, as a (t, [c,] z, y, x) array."""

    serialize = True  # h5py: one read at a time per handle

    def __init__(self, path, timepoints, setups, level, shape, dtype, chunks, handle=None):
        super().__init__(path, shape, dtype, chunks, handle)
        self.timepoints, self.setups, self.level = list(timepoints), list(setups), int(level)

    def _identity(self) -> tuple:
        return (tuple(self.timepoints), tuple(self.setups), self.level, *super()._identity())

    def _open(self):
        return open_hdf5(self.path)

    def _read_views(self, handle, views, zyx):
        shape = tuple(k.stop - k.start for k in zyx if isinstance(k, slice))
        out = []
        for t, c in views:
            name = _view(self.timepoints[t], self.setups[c], self.level)
            out.append(handle[name][zyx] if name in handle else np.zeros(shape, self.dtype))
        return out


def _numbered(handle, pattern: str, need: str | None = None) -> list[int]:
    """The numbers of the top-level groups matching ``pattern`` (holding ``need``)."""
    found = []
    for key in handle:
        m = re.fullmatch(pattern, key)
        if m and (need is None or need in handle[key]):
            found.append(int(m.group(1)))
    return sorted(found)


@register
class BigDataViewerHdf5(Format):
    """BigDataViewer / BigStitcher HDF5: the ``.h5`` file or its ``dataset.xml``."""

    name = "BigDataViewer HDF5"

    @classmethod
    def claims(cls, target: Target) -> bool:
        # local files only: a URL's target names a PurePosixPath, never a Path
        if not isinstance(target.path, Path) or target.is_dir:
            return False
        if target.has_suffix(".xml"):
            return loader_format(target.path) == _LOADER
        if not claims_hdf5(target):
            return False
        with open_hdf5(target.path) as f:
            return bool(_numbered(f, r"s(\d+)", "resolutions") and _numbered(f, r"t(\d{5})"))

    @classmethod
    def open(cls, target: Target, *, setup: int | None = None) -> LazyImage:
        if target.has_suffix(".xml"):
            xml = target.path
            h5 = container_path(xml, _LOADER)
            if h5 is None or not h5.is_file():
                raise ImageReadError(target.path, f"the HDF5 file it points to ({h5}) is missing")
        else:
            h5, xml = target.path, _xml_beside(target.path)
        return _open_bdv(target.path, h5, xml, setup)


def _xml_beside(h5: Path) -> Path | None:
    """The XML that points to ``h5``; else one of the same name naming no image loader
    (a hand-written SpimData with the voxel size only), never one that points elsewhere."""
    found = xml_for(h5, _LOADER)
    same = h5.with_suffix(".xml")
    if found is None and same.is_file() and loader_format(same) is None:
        return same
    return found


def _open_bdv(path: Path, h5: Path, xml: Path | None, only: int | None) -> LazyImage:
    handle = open_file(h5)
    try:
        setups = _numbered(handle, r"s(\d+)", "resolutions")
        timepoints = _numbered(handle, r"t(\d{5})")
        if not setups or not timepoints:
            raise ImageReadError(path, "an HDF5 file, but not in BigDataViewer layout (no "
                                       "s<NN>/resolutions and t<NNNNN> groups)")
        if only is not None:
            if only not in setups:
                raise ImageReadError(path, f"no setup {only}; setups: {setups}")
            setups = [only]
        first = setups[0]
        # factors and blocks are stored x, y, z per level
        resolutions = np.asarray(handle[f"s{first:02d}/resolutions"][()], dtype=float)
        subdivisions = np.asarray(handle[f"s{first:02d}/subdivisions"][()], dtype=int)
        levels, sources = [], []
        lead = (len(timepoints), len(setups)) if len(setups) > 1 else (len(timepoints),)
        for level in range(len(resolutions)):
            cells = _first_view(handle, path, timepoints, first, level)
            if level == 0:
                _same_setups(handle, path, timepoints, setups, cells)
            chunks = (1,) * len(lead) + tuple(
                min(int(b), n) for b, n in zip(subdivisions[level][::-1], cells.shape,
                                               strict=True))
            arr = BdvArray(h5, timepoints, setups, level, lead + cells.shape, cells.dtype,
                           chunks, handle)
            sources.append(arr)
            levels.append(arr.to_dask())
    except Exception:
        handle.close()
        raise
    found = voxel_size(xml)
    voxel, unit = found if found is not None else ((1.0, 1.0, 1.0), None)
    name = (xml if xml is not None and xml == path else h5).stem
    return bdv_image(levels, sources, setups, voxel, unit, name, xml, {
        "path": str(path),
        "format": "bigdataviewer-hdf5",
        "hdf5": str(h5),
        "xml": str(xml) if xml else None,
        "timepoints": len(timepoints),
        "setups": setups,
        "resolutions": resolutions.tolist(),
    })


def _first_view(handle, path: Path, timepoints: list[int], setup: int, level: int) -> Any:
    """The first stored view of a setup at a level (BigStitcher may leave views out)."""
    for t in timepoints:
        if _view(t, setup, level) in handle:
            return handle[_view(t, setup, level)]
    missing = _view(timepoints[0], setup, level)
    raise ImageReadError(path, f"setup {setup} has no level {level} ({missing} is missing)")


def _same_setups(handle, path: Path, timepoints, setups, cells) -> None:
    for s in setups[1:]:
        other = _first_view(handle, path, timepoints, s, 0)
        if other.shape != cells.shape or other.dtype != cells.dtype:
            raise ImageReadError(
                path, f"setups {setups[0]} and {s} differ in size or type ({cells.shape} "
                      f"{cells.dtype} against {other.shape} {other.dtype}); open one with "
                      "setup=N")

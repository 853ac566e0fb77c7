"""BigDataViewer / BigStitcher N5: ``dataset.n5`` and the ``dataset.xml`` that points to it.

Layout (BigDataViewer's ``WriteSequenceToN5``): ``setup{s}`` groups carry
``downsamplingFactors`` (x, y, z per level) and ``dataType``; ``setup{s}/timepoint{t}/s{l}``
are the N5 datasets, with ``dimensions`` and ``blockSize`` in x, y, z order. Setups are
shown as channels, time points as ``t``, the levels as a pyramid. The voxel size and unit
come from the XML, as for BigDataViewer HDF5.

Metadata is read as JSON; pixels through tensorstore's N5 driver (zarr-python 3 has no
N5 store), one tensorstore per view, opened when that view is first read.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._bdv_xml import bdv_image, container_path, loader_format, voxel_size, xml_for
from ._errors import ImageReadError
from ._identity import as_slices, file_stamp, grid_indices
from ._image import LazyImage
from ._registry import Format, Target, register
from ._views import ViewStack

_ATTRS = "attributes.json"
_LOADER = "bdv.n5"
#: the N5 compressions tensorstore's driver decodes
_CODECS = frozenset({"raw", "gzip", "bzip2", "xz", "blosc", "zstd"})


def _read_json(where: Path, image: Path, root: Path) -> dict[str, Any]:
    """An N5 attributes file; a broken one is an error about ``image``."""
    try:
        return json.loads(where.read_text())
    except json.JSONDecodeError as exc:
        name = where.relative_to(root) if where.is_relative_to(root) else where
        raise ImageReadError(image, f"{name} is not valid JSON ({exc})") from exc


def _numbered(folder: Path, prefix: str) -> list[int]:
    """The numbers ``n`` of the subfolders named ``<prefix><n>``, sorted."""
    pattern = re.compile(rf"{prefix}(\d+)")
    with os.scandir(folder) as entries:
        return sorted(int(m.group(1)) for e in entries
                      if e.is_dir() and (m := pattern.fullmatch(e.name)))


class _N5Views:
    """The open tensorstores of one level, one per (setup, time point), opened on demand."""

    def __init__(self, root: str, level: int) -> None:
        import tensorstore as ts

        self.ts, self.root, self.level = ts, root, level
        self.context = ts.Context()
        self.stores: dict[tuple[int, int], Any] = {}
        self.lock = threading.Lock()

    def get(self, setup: int, timepoint: int):
        """The (z, y, x) view of one dataset, or None where the view is missing."""
        key = (setup, timepoint)
        with self.lock:
            if key in self.stores:
                return self.stores[key]
        path = os.path.join(self.root, f"setup{setup}", f"timepoint{timepoint}",
                            f"s{self.level}")
        store = None
        if os.path.isfile(os.path.join(path, _ATTRS)):
            spec = {"driver": "n5", "kvstore": {"driver": "file", "path": path}}
            store = self.ts.open(spec, read=True, context=self.context).result().T
        with self.lock:
            return self.stores.setdefault(key, store)

    def close(self) -> None:
        with self.lock:
            self.stores.clear()


class N5Array(ViewStack):
    """One resolution level of a BigDataViewer N5 container, as (t, [c,] z, y, x)."""

    def __init__(self, path, timepoints, setups, level, shape, dtype, chunks,
                 handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        self.timepoints, self.setups, self.level = list(timepoints), list(setups), int(level)

    def _identity(self) -> tuple:
        return (tuple(self.timepoints), tuple(self.setups), self.level, *super()._identity())

    def stamp(self, region) -> tuple:
        """The stat of each block file the region reads (``s<level>/<x>/<y>/<z>``)."""
        lead = len(self.shape) - 3
        box = as_slices(region, self.shape)
        views = itertools.product(*(range(s.start, s.stop) for s in box[:lead]))
        out = []
        for view in views:
            t, c = view[0], (view[1] if lead == 2 else 0)
            folder = os.path.join(self.path, f"setup{self.setups[c]}",
                                  f"timepoint{self.timepoints[t]}", f"s{self.level}")
            for block in grid_indices(box[lead:], self.chunks[lead:], self.shape[lead:]):
                out.append(file_stamp(os.path.join(folder, *map(str, block[::-1]))))
        return tuple(out)

    def _open(self) -> _N5Views:
        return _N5Views(self.path, self.level)

    def _read_views(self, handle: _N5Views, views, zyx):
        stores = [handle.get(self.setups[c], self.timepoints[t]) for t, c in views]
        # every view's read is issued before any is awaited: they run in parallel
        pending = [None if s is None else s[zyx].read() for s in stores]
        shape = tuple(k.stop - k.start for k in zyx if isinstance(k, slice))
        return [np.zeros(shape, self.dtype) if p is None else p.result() for p in pending]


def _is_n5_dir(target: Target) -> bool:
    if not target.has_member(_ATTRS):
        return False
    if target.has_suffix(".n5"):
        return True
    try:
        return "n5" in json.loads((target.path / _ATTRS).read_text())
    except (OSError, ValueError):
        return False


@register
class BigDataViewerN5(Format):
    """BigDataViewer / BigStitcher N5: the ``.n5`` folder or the ``dataset.xml`` beside it."""

    name = "BigDataViewer N5"

    @classmethod
    def claims(cls, target: Target) -> bool:
        # local files only: a URL's target names a PurePosixPath, never a Path
        if not isinstance(target.path, Path):
            return False
        if target.is_dir:
            return _is_n5_dir(target)
        return target.has_suffix(".xml") and loader_format(target.path) == _LOADER

    @classmethod
    def open(cls, target: Target, *, setup: int | None = None) -> LazyImage:
        if target.is_dir:
            root, xml = target.path, xml_for(target.path, _LOADER)
        else:
            xml = target.path
            root = container_path(xml, _LOADER)
            if root is None or not root.is_dir():
                raise ImageReadError(target.path, f"the N5 container it points to ({root}) "
                                                  "is missing")
        if importlib.util.find_spec("tensorstore") is None:
            raise ImageReadError(target.path, "reading N5 needs tensorstore "
                                              "(pip install tensorstore)")
        return _open_n5(target.path, root, xml, setup)


def _open_n5(path: Path, root: Path, xml: Path | None, only: int | None) -> LazyImage:
    setups = [s for s in _numbered(root, "setup")
              if (root / f"setup{s}" / _ATTRS).is_file()
              and "downsamplingFactors" in _read_json(root / f"setup{s}" / _ATTRS, path, root)]
    if not setups:
        raise ImageReadError(path, "an N5 container, but not in BigDataViewer layout (no "
                                   "setup<N> group with downsamplingFactors)")
    if only is not None:
        if only not in setups:
            raise ImageReadError(path, f"no setup {only}; setups: {setups}")
        setups = [only]
    first = setups[0]
    factors = _read_json(root / f"setup{first}" / _ATTRS, path, root)["downsamplingFactors"]
    timepoints = _numbered(root / f"setup{first}", "timepoint")
    if not timepoints:
        raise ImageReadError(path, f"setup{first} has no timepoint<N> group")
    t0 = timepoints[0]

    def dataset_attrs(s: int, level: int) -> dict[str, Any]:
        where = root / f"setup{s}" / f"timepoint{t0}" / f"s{level}" / _ATTRS
        if not where.is_file():
            raise ImageReadError(path, f"dataset setup{s}/timepoint{t0}/s{level} is missing")
        return _read_json(where, path, root)

    base = dataset_attrs(first, 0)
    for s in setups[1:]:
        other = dataset_attrs(s, 0)
        if other["dimensions"] != base["dimensions"] or other["dataType"] != base["dataType"]:
            raise ImageReadError(
                path, f"setups {first} and {s} differ in size or type "
                      f"({base['dimensions']} {base['dataType']} against "
                      f"{other['dimensions']} {other['dataType']}); open one with setup=N")
    lead = (len(timepoints), len(setups)) if len(setups) > 1 else (len(timepoints),)
    levels, sources = [], []
    for level in range(len(factors)):
        attrs = dataset_attrs(first, level)
        codec = (attrs.get("compression") or {}).get("type", "raw")
        if codec not in _CODECS:
            raise ImageReadError(path, f"setup{first}/timepoint{t0}/s{level} uses the N5 "
                                       f"compression {codec!r}, which tensorstore cannot "
                                       f"decode ({', '.join(sorted(_CODECS))} are read)")
        shape = tuple(int(n) for n in attrs["dimensions"][::-1])
        block = tuple(min(int(b), n) for b, n in zip(attrs["blockSize"][::-1], shape,
                                                     strict=True))
        arr = N5Array(root, timepoints, setups, level, lead + shape,
                      np.dtype(attrs["dataType"]), (1,) * len(lead) + block)
        sources.append(arr)
        levels.append(arr.to_dask())

    voxel, unit = _voxel_size(root, first, t0, xml)
    return bdv_image(levels, sources, setups, voxel, unit, (xml or root).stem, xml, {
        "path": str(path),
        "format": "bigdataviewer-n5",
        "n5": str(root),
        "xml": str(xml) if xml else None,
        "timepoints": len(timepoints),
        "setups": setups,
        "resolutions": factors,
    })


def _attrs_or_empty(group: Path) -> dict[str, Any]:
    try:
        return json.loads((group / _ATTRS).read_text())
    except (OSError, ValueError):
        return {}


def _voxel_size(root: Path, setup: int, t0: int, xml: Path | None):
    """(z, y, x) voxel size and unit: the XML's, else the ``resolution`` BigDataViewer
    writes on each time point group (no unit), else 1."""
    found = voxel_size(xml)
    if found is not None:
        return found
    resolution = _attrs_or_empty(root / f"setup{setup}" / f"timepoint{t0}").get("resolution")
    if isinstance(resolution, list) and len(resolution) == 3:
        return tuple(float(v) for v in resolution[::-1]), None
    return (1.0, 1.0, 1.0), None

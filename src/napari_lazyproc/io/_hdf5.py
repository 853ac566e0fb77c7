"""HDF5 files: BigDataViewer / BigStitcher pyramids and plain numeric datasets.

h5py is not safe across threads on one file handle, so every read of a handle goes
through that handle's lock (``FileArray.serialize``). The handle is opened on the first
read, reopened by path after pickling, and closed by ``LazyImage.close()``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ._axes import axes_from_names, guess_axes, normalize_unit, unit_for_axis
from ._errors import ImageReadError, OptionError
from ._file_array import FileArray, open_hdf5
from ._image import LazyImage
from ._registry import Format, Target, register

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TARGET_CHUNK_BYTES = 8 * 2**20


def _open_h5(path: str):
    return open_hdf5(path)


class Hdf5Array(FileArray):
    """One HDF5 dataset."""

    serialize = True

    def __init__(self, path, dataset: str, shape, dtype, chunks, handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        self.dataset = dataset

    def _identity(self) -> tuple:
        return (self.dataset, *super()._identity())

    def _open(self):
        return _open_h5(self.path)

    def _read(self, handle, key):
        return handle[self.dataset][key]


class BdvArray(FileArray):
    """One resolution level of a BigDataViewer file, as a (t, [c,] z, y, x) array."""

    serialize = True

    def __init__(self, path, timepoints, setups, level, shape, dtype, chunks, handle=None):
        super().__init__(path, shape, dtype, chunks, handle)
        self.timepoints, self.setups, self.level = list(timepoints), list(setups), int(level)

    def _identity(self) -> tuple:
        return (tuple(self.timepoints), tuple(self.setups), self.level, *super()._identity())

    def _open(self):
        return _open_h5(self.path)

    def _read(self, handle, key):
        has_c = len(self.shape) == 5
        t_key, c_key = key[0], (key[1] if has_c else 0)
        zyx = key[2:] if has_c else key[1:]
        t_idx = range(*t_key.indices(self.shape[0])) if isinstance(t_key, slice) else [t_key]
        c_idx = range(*c_key.indices(self.shape[1])) if isinstance(c_key, slice) else [c_key]
        planes = [
            [
                handle[f"t{self.timepoints[t]:05d}/s{self.setups[c]:02d}/{self.level}/cells"][zyx]
                for c in c_idx
            ]
            for t in t_idx
        ]
        out = np.asarray(planes, dtype=self.dtype)  # (t, c, ...)
        if not isinstance(t_key, slice):
            out = out[0]
        if not has_c or not isinstance(c_key, slice):
            out = out[:, 0] if isinstance(t_key, slice) else out[0]
        return out


def _default_chunks(shape, dtype, chunks) -> tuple[int, ...]:
    """The dataset's own chunks, grown to a few MB along leading axes; planes if contiguous."""
    itemsize = np.dtype(dtype).itemsize
    if chunks is None:
        plane = list(shape)
        for i in range(len(shape) - 2):
            plane[i] = 1
        chunks = tuple(plane)
    out = list(chunks)
    for i in range(len(shape) - 1, -1, -1):
        while out[i] < shape[i] and math.prod(out) * itemsize * 2 <= _TARGET_CHUNK_BYTES:
            out[i] = min(shape[i], out[i] * 2)
        if math.prod(out) * itemsize * 2 > _TARGET_CHUNK_BYTES:
            break
    return tuple(out)


def _numeric_datasets(handle) -> list[tuple[str, Any]]:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and obj.dtype.kind in "biuf":
            found.append(("/" + name, obj))

    handle.visititems(visit)
    return found


def _claims_hdf5(target: Target) -> bool:
    if target.is_dir:
        return False
    return target.has_suffix(*HDF5_SUFFIXES) or target.head.startswith(HDF5_SIGNATURE)


def _open_file(target: Target):
    try:
        return _open_h5(str(target.path))
    except OSError as exc:
        raise ImageReadError(target.path, f"not a readable HDF5 file ({exc})") from exc


@register
class BigDataViewerHdf5(Format):
    """BigDataViewer / BigStitcher HDF5: ``t00000/s00/<level>/cells`` with ``s00/resolutions``."""

    name = "BigDataViewer HDF5"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if not _claims_hdf5(target):
            return False
        with open_hdf5(target.path) as f:
            return "s00" in f and "resolutions" in f["s00"] and "t00000" in f

    @classmethod
    def open(cls, target: Target, **options: Any) -> LazyImage:
        if options:
            raise OptionError(f"unexpected keyword argument(s) {', '.join(options)}")
        handle = _open_file(target)
        try:
            setups = sorted(
                int(k[1:]) for k in handle
                if re.fullmatch(r"s\d+", k) and "resolutions" in handle[k]
            )
            timepoints = sorted(int(k[1:]) for k in handle if re.fullmatch(r"t\d{5}", k))
            # factors are stored x, y, z per level
            resolutions = np.asarray(handle[f"s{setups[0]:02d}/resolutions"][()], dtype=float)
            subdivisions = np.asarray(handle[f"s{setups[0]:02d}/subdivisions"][()], dtype=int)
            first = f"t{timepoints[0]:05d}/s{setups[0]:02d}"
            n_levels = len(resolutions)
            levels, sources = [], []
            for level in range(n_levels):
                cells = handle[f"{first}/{level}/cells"]
                lead = (len(timepoints), len(setups)) if len(setups) > 1 else (len(timepoints),)
                shape = lead + cells.shape
                chunks = (1,) * len(lead) + tuple(int(s) for s in subdivisions[level][::-1])
                arr = BdvArray(
                    target.path, timepoints, setups, level, shape, cells.dtype, chunks, handle
                )
                sources.append(arr)
                levels.append(arr.to_dask())
        except Exception:
            handle.close()
            raise
        voxel, unit = _bdv_voxel_size(target.path)
        axes = "tczyx" if len(setups) > 1 else "tzyx"
        spatial = dict(zip("zyx", voxel, strict=True))
        return LazyImage(
            levels=levels,
            axes=axes,
            scale=tuple(spatial.get(a, 1.0) for a in axes),
            translate=(0.0,) * len(axes),
            units=tuple(unit_for_axis(a, unit) for a in axes),
            name=target.path.stem,
            channel_names=[f"setup {s}" for s in setups] if len(setups) > 1 else None,
            source={
                "path": str(target.path),
                "format": "bigdataviewer-hdf5",
                "timepoints": len(timepoints),
                "setups": setups,
                "resolutions": resolutions.tolist(),
            },
            sources=sources,
        )


def _bdv_voxel_size(h5_path: Path) -> tuple[tuple[float, float, float], str | None]:
    """Voxel size (z, y, x) and unit from the BigDataViewer XML beside the HDF5 file."""
    found = bdv_xml_voxel_size(h5_path.with_suffix(".xml"))
    return found if found is not None else ((1.0, 1.0, 1.0), None)


def bdv_xml_voxel_size(xml: Path) -> tuple[tuple[float, float, float], str | None] | None:
    """Voxel size (z, y, x) and unit of the first view setup of a BigDataViewer XML.

    Parameters
    ----------
    xml
        A BigDataViewer / BigStitcher ``dataset.xml`` (HDF5 or N5 image loader alike).

    Returns
    -------
    tuple or None
        ``((z, y, x), unit)``, or None when the file is missing or records no voxel size.
    """
    if not xml.is_file():
        return None
    try:
        root = ET.parse(xml).getroot()
        node = root.find(".//ViewSetup/voxelSize")
        size = [float(v) for v in node.findtext("size").split()]  # x y z
        return (size[2], size[1], size[0]), normalize_unit(node.findtext("unit"))
    except (ET.ParseError, AttributeError, ValueError, IndexError):
        return None


@register
class Hdf5(Format):
    """Any HDF5 file: every numeric dataset of 2-D or more; the largest opens by default."""

    name = "HDF5"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return _claims_hdf5(target)

    @classmethod
    def open(cls, target: Target, *, dataset: str | None = None) -> LazyImage:
        handle = _open_file(target)
        try:
            found = _numeric_datasets(handle)
            if not found:
                raise ImageReadError(target.path, "no numeric dataset of 2 or more dimensions")
            listed = [name for name, _ in found]
            if dataset is not None:
                key = "/" + dataset.strip("/")
                if key not in listed:
                    raise ImageReadError(
                        target.path,
                        f"no numeric dataset {dataset!r}; datasets: {', '.join(listed)}",
                    )
                name, ds = next((n, d) for n, d in found if n == key)
            else:
                name, ds = max(found, key=lambda nd: nd[1].size)
            axes = _hdf5_axes(ds)
            scale = _hdf5_scale(ds, axes)
            arr = Hdf5Array(
                target.path, name, ds.shape, ds.dtype,
                _default_chunks(ds.shape, ds.dtype, ds.chunks), handle,
            )
        except Exception:
            handle.close()
            raise
        has_um = "element_size_um" in ds.attrs
        return LazyImage(
            levels=[arr.to_dask()],
            axes=axes,
            scale=scale,
            translate=(0.0,) * len(axes),
            units=tuple(unit_for_axis(a, "micrometer" if has_um else None) for a in axes),
            name=f"{target.path.stem}{name}",
            source={"path": str(target.path), "format": "hdf5", "dataset": name},
            metadata={
                "datasets": listed,
                "other_datasets": [n for n in listed if n != name],
            },
            sources=[arr],
        )


def _hdf5_axes(ds) -> str:
    labels = [d.label for d in ds.dims] if hasattr(ds, "dims") else []
    if any(labels):
        return axes_from_names(labels, ds.shape)
    axes_attr = ds.attrs.get("axes") or ds.attrs.get("DIMENSION_LABELS")
    if isinstance(axes_attr, bytes):
        axes_attr = axes_attr.decode()
    if isinstance(axes_attr, str) and len(axes_attr) == ds.ndim:
        return axes_from_names(list(axes_attr), ds.shape)
    return guess_axes(ds.shape)


def _hdf5_scale(ds, axes: str) -> tuple[float, ...]:
    """``element_size_um`` (Fiji / ilastik convention) gives the spatial voxel size."""
    size = ds.attrs.get("element_size_um")
    spatial = [i for i, a in enumerate(axes) if a in "zyx"]
    scale = [1.0] * len(axes)
    if size is not None and len(size) == len(spatial):
        for i, s in zip(spatial, size, strict=True):
            scale[i] = float(s)
    return tuple(scale)

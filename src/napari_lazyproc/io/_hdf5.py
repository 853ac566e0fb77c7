"""HDF5 files: any numeric dataset (BigDataViewer's layout is ``_bdv_hdf5``).

h5py is not safe across threads on one file handle, so every read of a handle goes
through that handle's lock (``FileArray.serialize``). The handle is opened on the first
read, reopened by path after pickling, and closed by ``LazyImage.close()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._axes import axes_from_names, guess_axes, unit_for_axis
from ._errors import ImageReadError
from ._file_array import FileArray, open_hdf5
from ._hdf5_file import claims_hdf5, open_file
from ._image import LazyImage
from ._registry import Format, Target, register

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


@register
class Hdf5(Format):
    """Any HDF5 file: every numeric dataset of 2-D or more; the largest opens by default."""

    name = "HDF5"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return claims_hdf5(target)

    @classmethod
    def open(cls, target: Target, *, dataset: str | None = None) -> LazyImage:
        handle = open_file(target.path)
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

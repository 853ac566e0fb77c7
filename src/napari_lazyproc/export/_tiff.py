"""Tiled BigTIFF / OME-TIFF through tifffile, one plane at a time (not resumable)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .._shared.pool import one_task
from ..ops import CACHE, Progress
from . import _metadata
from ._input import ExportInput
from ._writer import Writer

TILE = 256


class TiffWriter(Writer):
    """A tiled, zlib-compressed BigTIFF; axes, scale and provenance in its metadata."""

    ome = False

    def check(self, data: ExportInput) -> None:
        if len(data.shape) < 2 or data.axes[-2:] != "yx":
            raise ValueError(f"TIFF export needs y and x as the last axes (axes {data.axes!r})")

    def write(self, data: ExportInput, partial: Path) -> None:
        data.ensure_labels(None, self.options.progress, self.options.cancel)
        # planes read as single tasks, within the export's cache budget: a GB-sized
        # plane must not push out what the viewer shows
        with CACHE.budget(self.options.cache_bytes), one_task():
            write_tiff(data, partial, ome=self.ome, progress=self.options.progress,
                       cancel=self.options.cancel)


class OmeTiffWriter(TiffWriter):
    """A tiled OME-TIFF (BigTIFF), with physical pixel sizes where units are known."""

    ome = True


def write_tiff(data: ExportInput, out: Path, ome: bool, progress=None, cancel=None) -> None:
    """Write ``data`` (y and x last) to ``out`` plane by plane, in ``TILE`` x ``TILE``
    tiles."""
    import tifffile

    shape, axes = data.shape, data.axes
    lead = shape[:-2]
    planes = list(np.ndindex(*lead)) if lead else [()]
    bar = Progress(len(planes), progress, cancel, desc="export tiff")
    ny, nx = shape[-2:]
    tile = (min(TILE, 16 * math.ceil(ny / 16)), min(TILE, 16 * math.ceil(nx / 16)))

    def tiles():
        for index in planes:
            bar.check()
            region = tuple(slice(i, i + 1) for i in index) + (slice(0, ny), slice(0, nx))
            plane = np.asarray(data.source.read(region)).reshape(ny, nx)
            plane = plane.astype(data.dtype, copy=False)
            for y in range(0, ny, tile[0]):
                for x in range(0, nx, tile[1]):
                    piece = plane[y : y + tile[0], x : x + tile[1]]
                    if piece.shape != tile:
                        piece = np.pad(piece, [(0, tile[0] - piece.shape[0]),
                                               (0, tile[1] - piece.shape[1])])
                    yield piece
            bar.step(1, plane.nbytes)

    prov = _metadata.provenance(data.steps, data.source_path)
    scale = dict(zip(axes, data.scale, strict=True))
    units = dict(zip(axes, data.units, strict=True))
    metadata: dict = {"axes": axes.upper()}
    if ome:
        for a in "zyx":
            if a in scale and units.get(a):  # pixel sizes only when their unit is known
                metadata[f"PhysicalSize{a.upper()}"] = scale[a]
                metadata[f"PhysicalSize{a.upper()}Unit"] = _ome_unit(units[a])
        metadata["Description"] = json.dumps({"napari-lazyproc": prov})
    else:
        metadata["napari-lazyproc"] = json.dumps(prov)
        metadata["scale"] = [float(s) for s in data.scale]
    try:
        tifffile.imwrite(out, tiles(), shape=shape, dtype=data.dtype, tile=tile, bigtiff=True,
                         ome=ome, metadata=metadata, compression="zlib",
                         software="napari-lazyproc")
    finally:
        bar.close()


def _ome_unit(unit: str) -> str:
    return {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm"}.get(unit, unit)

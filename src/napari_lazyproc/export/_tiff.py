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
        self.recorded = self.job(data)  # before a labels job runs, as ``completed`` sees it
        data.ensure_labels(None, self.options.progress, self.options.cancel)
        # planes read as single tasks, within the export's cache budget: a GB-sized
        # plane must not push out what the viewer shows
        with CACHE.budget(self.options.cache_bytes), one_task():
            write_tiff(data, partial, ome=self.ome, progress=self.options.progress,
                       cancel=self.options.cancel, job=self.recorded)


class OmeTiffWriter(TiffWriter):
    """A tiled OME-TIFF (BigTIFF), with physical pixel sizes where units are known."""

    ome = True


def write_tiff(data: ExportInput, out: Path, ome: bool, progress=None, cancel=None,
               job: dict | None = None) -> None:
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

    prov = _metadata.provenance(data.steps, data.source_path, job)
    extra: dict = {}
    if ome:
        metadata = ome_geometry(data, planes)
        # what OME-XML cannot say (a c axis' or unitless t's scale and origin) goes in
        # the Description, as a plain zarr's attributes; the reader fills the gaps with it
        metadata["Description"] = json.dumps({"napari-lazyproc": prov,
                                              "geometry": _metadata.plain_geometry(data)})
    else:  # tifffile's shaped JSON holds any key: the geometry as a plain zarr's attributes
        metadata = {**_metadata.plain_geometry(data), "axes": axes.upper(),
                    "napari-lazyproc": json.dumps(prov)}
        extra = _resolution(data)
    try:  # minisblack: a leading axis of 3 or 4 is planes, never RGB(A) colours
        tifffile.imwrite(out, tiles(), shape=shape, dtype=data.dtype, tile=tile, bigtiff=True,
                         ome=ome, metadata=metadata, compression="zlib",
                         software="napari-lazyproc", photometric="minisblack", **extra)
    finally:
        bar.close()


def ome_geometry(data: ExportInput, planes: list[tuple[int, ...]]) -> dict:
    """OME-XML's geometry: pixel sizes and units (``pixel`` where unknown), the time
    increment, channel names, and each plane's position (PositionX/Y/Z, DeltaT: voxel
    0's translate, plus z and t's steps), which is where OME keeps an origin."""
    axes = data.axes
    scale = dict(zip(axes, data.scale, strict=True))
    units = dict(zip(axes, data.units, strict=True))
    origin = dict(zip(axes, data.translate, strict=True))
    metadata: dict = {"axes": axes.upper()}
    for a in "zyx":  # a size in pixels only where it is not one pixel
        if a in scale and (units[a] or scale[a] != 1.0):
            metadata[f"PhysicalSize{a.upper()}"] = scale[a]
            metadata[f"PhysicalSize{a.upper()}Unit"] = _ome_unit(units[a]) or "pixel"
    if "t" in scale and units["t"]:  # frames (no unit): in the Description's geometry
        metadata["TimeIncrement"] = scale["t"]
        metadata["TimeIncrementUnit"] = _ome_unit(units["t"])
    if data.channel_names:
        metadata["Channel"] = {"Name": list(data.channel_names)}
    if any(origin.get(a, 0.0) for a in "tzyx"):
        lead = axes[:-2]
        plane: dict = {}
        for a, key in (("x", "PositionX"), ("y", "PositionY"), ("z", "PositionZ"),
                       ("t", "DeltaT")):
            if a not in axes:
                continue
            step = scale[a] if a in lead else 0.0
            at = [origin[a] + (index[lead.index(a)] * step if a in lead else 0.0)
                  for index in planes]
            plane[key] = at
            plane[f"{key}Unit"] = [metadata.get(
                "TimeIncrementUnit" if a == "t" else f"PhysicalSize{a.upper()}Unit")] * len(at)
        metadata["Plane"] = plane
    return metadata


def _resolution(data: ExportInput) -> dict:
    """y and x pixel sizes as the TIFF resolution tags (per centimetre), for other
    readers, where their unit is a length."""
    from ..io import convert_unit

    axes = data.axes
    try:
        sizes = [convert_unit(data.scale[axes.index(a)], data.units[axes.index(a)],
                              "centimeter") for a in "yx"]
    except Exception:  # noqa: BLE001 - no unit, or not a length: no resolution tags
        return {}
    return {"resolution": (1 / sizes[1], 1 / sizes[0]), "resolutionunit": "CENTIMETER"}


def _ome_unit(unit: str | None) -> str | None:
    """OME-XML's spelling of a unit (its symbol)."""
    return {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
            "meter": "m", "angstrom": "Å", "second": "s", "millisecond": "ms",
            "microsecond": "µs", "nanosecond": "ns", "minute": "min",
            "hour": "h"}.get(unit, unit) if unit else None

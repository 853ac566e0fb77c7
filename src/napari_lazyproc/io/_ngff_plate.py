"""OME-Zarr HCS plates and wells (0.4, 0.5): a plate opens as one lazy grid of its wells,
each well's field placed at its row and column (as napari-ome-zarr shows a plate); a
well opens its field; a field is an OME-Zarr image of its own.

Only the first well's metadata is read on opening (its fields, their levels and
shapes); every other well's arrays are opened when a region of the grid first reads
them, and a well or field that is not there reads as zeros.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from dask.base import tokenize

from .._shared.regions import normalize_key
from ._errors import ImageReadError
from ._file_array import as_dask
from ._identity import as_slices, stamp, zarr_token
from ._image import LazyImage
from ._registry import Format, Target, register
from ._remote_target import RemoteTarget, store_version
from ._zarr import (
    OmeZarr,
    ZarrStore,
    is_zarr_dir,
    level_name,
    ome_section,
    open_node,
    read_attrs,
)
from ._zarr_child import child_target


def _layout(target: Target, key: str) -> dict[str, Any] | None:
    if not is_zarr_dir(target):
        return None
    section = ome_section(read_attrs(target)).get(key)
    return section if isinstance(section, dict) else None


def _field_paths(root, well: dict[str, Any]) -> list[str]:
    images = well.get("images") or []
    paths = [i.get("path") for i in images if isinstance(i, dict)]
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ImageReadError(root, "the well lists no images, or one without a 'path' "
                                   "(OME-NGFF: each well image MUST have a path)")
    return paths


def _pick_field(root, paths: list[str], field: int) -> str:
    if not 0 <= field < len(paths):
        raise ImageReadError(root, f"no field {field}: the wells hold fields 0..{len(paths) - 1}")
    return paths[field]


class PlateGrid:
    """One level of a plate as an array-like: a tile per well, rows along y and columns
    along x; a well's array is opened on first read."""

    def __init__(self, group, tiles: dict[tuple[int, int], str], grid: tuple[int, int],
                 tile_shape: tuple[int, ...], dtype, where: str | None) -> None:
        self.group, self.tiles = group, dict(tiles)
        self.tile_shape = tuple(int(n) for n in tile_shape)
        rows, cols = grid
        self.shape = (*self.tile_shape[:-2], rows * self.tile_shape[-2],
                      cols * self.tile_shape[-1])
        self.dtype, self.ndim = np.dtype(dtype), len(self.shape)
        self.where = where
        self._arrays: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    def _array(self, cell: tuple[int, int]):
        """The zarr array of one well's field at this level, or None (no such well)."""
        with self._lock:
            if cell in self._arrays:
                return self._arrays[cell]
        path = self.tiles.get(cell)
        arr = None
        if path is not None:
            try:
                arr = self.group[path]
            except (KeyError, FileNotFoundError):
                arr = None
        with self._lock:
            self._arrays[cell] = arr
        return arr

    def _parts(self, region):
        """(cell, part of the tile, part of the region) for each tile the region meets."""
        ty, tx = self.tile_shape[-2:]
        ys, xs = region[-2], region[-1]
        for r in range(ys.start // ty, -(-ys.stop // ty)):
            for c in range(xs.start // tx, -(-xs.stop // tx)):
                y0, y1 = max(ys.start, r * ty), min(ys.stop, (r + 1) * ty)
                x0, x1 = max(xs.start, c * tx), min(xs.stop, (c + 1) * tx)
                inner = (*region[:-2], slice(y0 - r * ty, y1 - r * ty),
                         slice(x0 - c * tx, x1 - c * tx))
                out = (slice(y0 - ys.start, y1 - ys.start), slice(x0 - xs.start, x1 - xs.start))
                yield (r, c), inner, out

    def __getitem__(self, key) -> np.ndarray:
        key = normalize_key(key, self.shape)
        region = tuple(k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        out = np.zeros(tuple(s.stop - s.start for s in region), self.dtype)
        for cell, inner, place in self._parts(region):
            arr = self._array(cell)
            if arr is None:
                continue
            # a well stored smaller than the first one: what it has, zeros beyond
            fit = tuple(slice(min(s.start, n), min(s.stop, n))
                        for s, n in zip(inner, arr.shape, strict=True))
            values = np.asarray(arr[fit])
            starts = (0,) * (self.ndim - 2) + tuple(p.start for p in place)
            out[tuple(slice(a, a + v) for a, v in zip(starts, values.shape, strict=True))] = values
        return out[drop]

    def stamp(self, region) -> tuple:
        """The stamps of the wells' regions this region reads (None for an absent well)."""
        box = as_slices(region, self.shape)
        out = []
        for cell, inner, _ in self._parts(box):
            arr = self._array(cell)
            out.append(None if arr is None else (cell, stamp(arr, inner)))
        return tuple(out)

    def location(self) -> str | None:
        return self.where

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock")
        state["_arrays"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _image_of(target: Target, path: str, root) -> LazyImage:
    """The OME-Zarr image at ``path`` under ``target`` (a field)."""
    child = child_target(target, path)
    if not OmeZarr.claims(child):
        raise ImageReadError(root, f"{path!r} is not an OME-Zarr image (no multiscales)")
    return OmeZarr.open(child)


def _cell_of(well: dict[str, Any], rows, cols) -> tuple[int, int]:
    if "rowIndex" in well and "columnIndex" in well:
        return int(well["rowIndex"]), int(well["columnIndex"])
    row, col = str(well["path"]).split("/")[:2]  # 0.3 has no indices
    return rows.index(row), cols.index(col)


@register(before=ZarrStore)
class HcsPlate(Format):
    """An OME-Zarr ``plate``: a lazy grid of wells, field 0 or the one asked for."""

    name = "OME-Zarr plate"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return _layout(target, "plate") is not None

    @classmethod
    def open(cls, target: Target, *, field: int = 0) -> LazyImage:
        root = target.url if isinstance(target, RemoteTarget) else target.path
        plate = _layout(target, "plate") or {}
        try:
            rows = [str(r["name"]) for r in plate["rows"]]
            cols = [str(c["name"]) for c in plate["columns"]]
            wells = [w for w in plate["wells"] if isinstance(w, dict) and w.get("path")]
        except (KeyError, TypeError) as exc:
            raise ImageReadError(root, f"the plate has no {exc} list (OME-NGFF: 'rows', "
                                       f"'columns' and 'wells' are required)") from exc
        if not wells:
            raise ImageReadError(root, "the plate lists no wells")
        first = wells[0]["path"]
        well_attrs = _layout(child_target(target, first), "well")
        if well_attrs is None:
            raise ImageReadError(root, f"well {first!r} is missing or has no 'well' metadata")
        fields = _field_paths(root, well_attrs)
        field_path = _pick_field(root, fields, field)
        image = _image_of(target, f"{first}/{field_path}", root)
        group = open_node(target)
        cells = {_cell_of(w, rows, cols): str(w["path"]).strip("/") for w in wells}
        levels, sources = [], []
        snapshot = ((str(root), store_version(str(root)), target.opening)
                    if isinstance(target, RemoteTarget) else None)
        where = None if isinstance(target, RemoteTarget) else str(Path(root).resolve())
        for i, (lvl, path) in enumerate(zip(image.levels, image.source["datasets"],
                                            strict=True)):
            tiles = {cell: f"{well}/{field_path}/{path}" for cell, well in cells.items()}
            grid = PlateGrid(group, tiles, (len(rows), len(cols)), lvl.shape, lvl.dtype,
                             where)
            name = "lp-plate-" + tokenize(str(root), field_path, path, sorted(tiles.items()),
                                          zarr_token(image.sources[i], snapshot))
            levels.append(as_dask(grid, _grid_chunks(grid, lvl.chunks), name))
            sources.append(grid)
        return LazyImage(
            levels=levels, sources=sources, axes=image.axes, scale=image.scale,
            translate=image.translate, units=image.units,
            name=str(plate.get("name") or level_name(target)),
            channel_names=image.channel_names, channel_colors=image.channel_colors,
            contrast_limits=image.contrast_limits,
            source={"path": str(root), "format": "ome-zarr plate",
                    "version": str(plate.get("version") or image.source.get("version")),
                    "field": field},
            metadata={"plate": {
                "name": plate.get("name"), "rows": rows, "columns": cols,
                "wells": [str(w["path"]) for w in wells], "fields": fields,
                "field": field, "acquisitions": plate.get("acquisitions") or []}},
        )


def _grid_chunks(grid: PlateGrid, tile_chunks) -> tuple[tuple[int, ...], ...]:
    """The tile's own chunks, repeated per row and column: no chunk spans two wells."""
    rows = grid.shape[-2] // grid.tile_shape[-2]
    cols = grid.shape[-1] // grid.tile_shape[-1]
    return (*tile_chunks[:-2], tuple(tile_chunks[-2]) * rows, tuple(tile_chunks[-1]) * cols)


@register(before=ZarrStore)
class HcsWell(Format):
    """An OME-Zarr ``well`` of a plate: its field 0, or the one asked for."""

    name = "OME-Zarr well"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return _layout(target, "well") is not None

    @classmethod
    def open(cls, target: Target, *, field: int = 0) -> LazyImage:
        root = target.url if isinstance(target, RemoteTarget) else target.path
        fields = _field_paths(root, _layout(target, "well") or {})
        image = _image_of(target, _pick_field(root, fields, field), root)
        parts = Path(str(root)).parts
        image.name = "/".join(parts[-2:]) if len(parts) >= 2 else image.name
        image.source.update(field=field)
        image.metadata["well"] = {"fields": fields, "field": field}
        return image

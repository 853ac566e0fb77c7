"""How a result cuts a large region into tiles computed in parallel (or that fit the GPU)."""

from __future__ import annotations

import math

import numpy as np

from ..._shared.pool import n_workers
from ..._shared.regions import Region, region_shape, split_region
from ...backend import device

#: regions larger than this many voxels are split into tiles computed in parallel
TILE_VOXELS = 2**19


class Tiling:
    """Part of ``LazyResult`` (a mixin over its attributes)."""

    def _tiles(self, region: Region) -> list[Region]:
        """Split along the largest spatial axis so each worker gets a share; on the GPU,
        into tiles that fit the device memory (free memory, or the budget)."""
        n = math.prod(region_shape(region))
        if self.op.geometry is not None:  # what a tile reads: a projection's whole axis
            n = math.prod(region_shape(self._expanded(region)))
        if self.on_gpu and not self.whole_frame:
            limit = device.tile_voxels(self.dtype.itemsize)
            return [region] if n <= limit else self._split(region, math.ceil(n / limit))
        if self.whole_frame or n <= TILE_VOXELS:
            return [region]
        parts = max(n_workers(), math.ceil(n / (4 * TILE_VOXELS)))
        if self._exact_whole:  # a tile reads its whole frame: cut only the other axes
            axes = [k for k in range(self.ndim) if k not in self.out_spatial]
            return split_region(region, axes, parts) if axes else [region]
        if any(self.prefix):  # a tile reads from index 0: cut only the other axes
            axes = [a for a, p in zip(self.spatial, self.prefix, strict=True) if not p]
            return split_region(region, axes, parts) if axes else [region]
        return self._split(region, parts)

    @property
    def _tile_axes(self) -> tuple[int, ...]:
        """The output axes a region may be cut along: the frame, or, for an operation with
        a ``Geometry``, any axis (the others pass through; the frame is mapped)."""
        return tuple(range(self.ndim)) if self.op.geometry is not None else self.spatial

    def _split(self, region: Region, parts: int) -> list[Region]:
        """``region`` in up to ``parts`` tiles. For a ``Geometry``, cut along an axis that
        passes through at the input's chunk boundaries, so that each input chunk is read
        by one tile (tiles run in parallel; two reading one chunk would both read it)."""
        tiles = split_region(region, self._tile_axes, parts)
        if self.op.geometry is None or len(tiles) < 2 or self.source.chunks is None:
            return tiles
        axis = next(k for k, (t, r) in enumerate(zip(tiles[0], region, strict=True))
                    if t != r)
        a = self._inputs[axis]
        if a in self.spatial:
            return tiles
        bounds = np.cumsum((0, *self.source.chunks[a]))
        lo, hi = region[axis].start, region[axis].stop
        cuts = sorted({int(bounds[np.abs(bounds - t[axis].stop).argmin()]) for t in tiles[:-1]}
                      - {lo, hi})
        edges = [lo, *(c for c in cuts if lo < c < hi), hi]
        return [tuple(slice(e0, e1) if k == axis else s for k, s in enumerate(region))
                for e0, e1 in zip(edges[:-1], edges[1:], strict=True)]

"""Display pyramids: coarser levels computed lazily from a stored one, for 3D and zoomed-out views.

A viewer shows the coarsest level in 3D and the level that matches the screen in 2D. A
file stored at one resolution (or with too few levels) would make it read and upload the
whole full-resolution volume, so its display pyramid adds virtual levels: each one a
block mean (images) or a pick of every f-th voxel (labels) of the last stored level,
computed region by region when a viewer asks for it, never stored.
"""

from __future__ import annotations

import math

import numpy as np

from .._shared.regions import normalize_key
from ._axes import SPATIAL_AXES
from ._file_array import as_dask
from ._identity import as_slices, location, stamp

#: the coarsest level shown may be at most this long along any spatial axis
MAX_SIDE = 1024
#: and hold at most this many voxels when it has three spatial axes (256³: a volume any
#: GPU textures at once, far below the 2048-per-axis and 1 GiB limits of GL 3D textures)
MAX_VOLUME = 2**24
#: a virtual level's chunks reach at least this long along the axes of a plane (y, x), so
#: a plane is not cut into tiny tasks; other axes keep the base's grid (a plane of a stack
#: chunked one plane deep must not read a hundred)
MIN_CHUNK = 64


def level_factor(full: int, coarse: int) -> float:
    """How many voxels of a level of length ``full`` one voxel of a coarser level of
    length ``coarse`` spans: the integer f that gives that length (``ceil`` or ``floor``
    of full / f, as pyramids are written), else the plain ratio."""
    if coarse <= 0:
        return 1.0
    f = max(1, round(full / coarse))
    if coarse in (-(-full // f), full // f):
        return float(f)
    return full / coarse


def _fits(shape, spatial) -> bool:
    sides = [shape[a] for a in spatial]
    if any(n > MAX_SIDE for n in sides):
        return False
    return len(sides) < 3 or math.prod(sides) <= MAX_VOLUME


def virtual_factors(shape, axes: str) -> list[tuple[int, ...]]:
    """Downsampling factors (per axis, relative to ``shape``) of the virtual levels that
    ``shape`` needs below it; empty when it already fits a display.

    Each level halves the spatial axes longer than half the longest one, so anisotropic
    stacks (few thick z planes) are halved in y and x first, as stored pyramids are.
    """
    spatial = [i for i, a in enumerate(axes) if a in SPATIAL_AXES]
    out: list[tuple[int, ...]] = []
    factors = [1] * len(shape)
    current = list(shape)
    while spatial and not _fits(current, spatial):
        longest = max(current[a] for a in spatial)
        for a in spatial:
            if current[a] > 1 and 2 * current[a] > longest:
                factors[a] *= 2
                current[a] = math.ceil(shape[a] / factors[a])
        out.append(tuple(factors))
    return out


class Downsampled:
    """A coarser level of an array-like: ``base`` reduced by integer ``factors`` per axis.

    ``method="mean"`` averages each block (rounded back to integer types), ``"nearest"``
    picks its first voxel (labels keep their values). Reads go to ``base`` in slabs
    along the first reduced axis, so memory stays bounded whatever the region.
    """

    #: the most base voxels read at once
    SLAB_VOXELS = 2**25

    def __init__(self, base, factors, method: str = "mean", chunks=None, name: str = "",
                 min_chunk=None) -> None:
        if method not in ("mean", "nearest"):
            raise ValueError(f"method must be 'mean' or 'nearest' (got {method!r})")
        self.base = base
        self.factors = tuple(int(f) for f in factors)
        self.method = method
        self.shape = tuple(
            math.ceil(n / f) for n, f in zip(base.shape, self.factors, strict=False)
        )
        self.dtype = np.dtype(base.dtype)
        self.ndim = len(self.shape)
        base_chunks = chunks or tuple(max(1, min(n, 256)) for n in base.shape)
        self.chunks = tuple(
            min(n, max(m if f > 1 else 1, math.ceil(c / f)))
            for n, c, f, m in zip(self.shape, base_chunks, self.factors,
                                  min_chunk or (MIN_CHUNK,) * len(self.shape), strict=True)
        )
        self.name = name or f"lp-down-{method}-{'x'.join(map(str, self.factors))}"
        #: reading one voxel of this level reads this many of the base
        self.voxel_cost = math.prod(self.factors) * getattr(base, "voxel_cost", 1)

    def __getitem__(self, key) -> np.ndarray:
        key = normalize_key(key, self.shape)
        region = tuple(k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return self._read(region)[drop]

    def _read(self, region) -> np.ndarray:
        out = np.empty(tuple(s.stop - s.start for s in region), self.dtype)
        if out.size == 0:
            return out
        reduced = [a for a, f in enumerate(self.factors) if f > 1]
        axis = reduced[0] if reduced else 0
        per_row = math.prod(
            (s.stop - s.start) * f
            for a, (s, f) in enumerate(zip(region, self.factors, strict=False))
            if a != axis
        ) * self.factors[axis]
        step = max(1, self.SLAB_VOXELS // max(1, per_row))
        for lo in range(region[axis].start, region[axis].stop, step):
            hi = min(region[axis].stop, lo + step)
            part = tuple(slice(lo, hi) if a == axis else s for a, s in enumerate(region))
            out[tuple(
                slice(p.start - r.start, p.stop - r.start)
                for p, r in zip(part, region, strict=False)
            )] = self._reduce(part)
        return out

    def _reduce(self, region) -> np.ndarray:
        src = tuple(slice(s.start * f, min(n, s.stop * f))
                    for s, f, n in zip(region, self.factors, self.base.shape, strict=False))
        return reduce_block(np.asarray(self.base[src]), self.factors, self.method)

    def to_dask(self):
        return as_dask(self, self.chunks, self.name)

    def stamp(self, region) -> tuple:
        """The stamp of the base's region this level's region reduces."""
        box = as_slices(region, self.shape)
        return stamp(self.base, tuple(
            slice(s.start * f, min(n, s.stop * f))
            for s, f, n in zip(box, self.factors, self.base.shape, strict=True)))

    def location(self):
        return location(self.base)

    def __repr__(self) -> str:
        return f"Downsampled({self.method}, factors={self.factors}, shape={self.shape})"


def reduce_block(block: np.ndarray, factors, method: str = "mean") -> np.ndarray:
    """The one downsampler, of display pyramids (``Downsampled``) and of exported
    pyramids alike: ``"mean"`` (``block_mean``) or ``"nearest"`` (each block's first
    voxel: labels keep their values)."""
    if method == "nearest":
        return block[tuple(slice(None, None, int(f)) for f in factors)]
    return block_mean(block, factors)


def block_mean(block: np.ndarray, factors) -> np.ndarray:
    """The mean of each ``factors``-sized block (partial blocks at the far edges averaged
    over what they hold), in the input's dtype (integers rounded)."""
    dtype = block.dtype
    acc = np.float64 if dtype.kind == "f" or dtype.itemsize > 2 else np.float32
    out = block.astype(acc, copy=False)
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        n = out.shape[axis]
        starts = np.arange(0, n, f)
        out = np.add.reduceat(out, starts, axis=axis)
        counts = np.minimum(f, n - starts).astype(acc)
        shape = [1] * out.ndim
        shape[axis] = len(counts)
        out /= counts.reshape(shape)
    if dtype.kind in "iub":
        info = np.iinfo(dtype) if dtype.kind != "b" else None
        out = np.rint(out)
        if info is not None:
            out = np.clip(out, info.min, info.max)
    return out.astype(dtype, copy=False)


def display_pyramid(sources, shapes, axes: str, kind: str = "image",
                    name: str = "lp") -> tuple[list, list]:
    """(array-likes, shapes): the stored levels plus the virtual levels the last one needs.

    ``sources`` are the stored levels' array-likes and ``shapes`` their shapes; virtual
    levels reduce the last stored level. ``name`` (unique to the data) prefixes theirs.
    """
    sources, shapes = list(sources), [tuple(s) for s in shapes]
    last, last_shape = sources[-1], shapes[-1]
    method = "nearest" if kind == "labels" else "mean"
    chunks = getattr(last, "chunks", None)
    if chunks is not None and chunks and isinstance(chunks[0], tuple):
        chunks = tuple(int(c[0]) for c in chunks)
    for factors in virtual_factors(last_shape, axes):
        floor = tuple(MIN_CHUNK if a in "yx" else 1 for a in axes)
        level = Downsampled(last, factors, method, chunks=chunks, min_chunk=floor,
                            name=f"{name}-{method}{'x'.join(map(str, factors))}")
        sources.append(level)
        shapes.append(level.shape)
    return sources, shapes

"""Regions of a live array as napari asks for them: keys, tiles, and moves along a slider."""

from __future__ import annotations


def _region_key(region: tuple) -> tuple:
    return tuple((r.start, r.stop) if isinstance(r, slice) else int(r) for r in region)


def _start(entry) -> int:
    return entry[0] if isinstance(entry, tuple) else (
        entry.start if isinstance(entry, slice) else entry
    )


#: a displayed axis cut short (napari shows the part of a pyramid level on screen) is
#: computed in whole tiles of this many voxels, so that panning finds them computed
TILE = 512


def aligned(region: tuple, shape: tuple) -> tuple:
    """``region`` grown to whole tiles along each axis it cuts short (not single planes)."""
    out = []
    for r, n in zip(region, shape, strict=False):
        if isinstance(r, slice) and r.stop - r.start > 1 and (r.start, r.stop) != (0, n):
            r = slice(r.start // TILE * TILE, min(n, -(-r.stop // TILE) * TILE))
        out.append(r)
    return tuple(out)


def _inside(key: tuple, outer: tuple) -> tuple | None:
    """Where region ``key`` lies in region ``outer`` (both as ``_region_key``), as a crop
    of ``outer``'s values, or None when it does not lie inside."""
    crop = []
    for k, o in zip(key, outer, strict=False):
        if isinstance(k, tuple) != isinstance(o, tuple):
            return None
        if not isinstance(k, tuple):
            if k != o:
                return None
            continue
        if k[0] < o[0] or k[1] > o[1]:
            return None
        crop.append(slice(k[0] - o[0], k[1] - o[0]))
    return tuple(crop)


def _sliders(key: tuple, shape: tuple) -> list[int]:
    """Axes a region key indexes at one position (napari's sliders), longer than one."""
    return [a for a, k in enumerate(key) if shape[a] > 1 and (
        not isinstance(k, tuple) or k[1] - k[0] == 1)]


def _at(key: tuple, axis: int, i: int) -> tuple:
    """``key`` (a region, or its key) moved to position ``i`` along ``axis``."""
    k = key[axis]
    moved = (i, i + 1) if isinstance(k, tuple) else (
        slice(i, i + 1) if isinstance(k, slice) else i)
    return key[:axis] + (moved,) + key[axis + 1 :]


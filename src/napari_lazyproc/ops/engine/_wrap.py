"""scipy's ``mode="wrap"`` for a region: its input read across the array's far edge.

A region of a filter with ``mode="wrap"`` along an axis reads its input grown by the
halo *without clipping*: the part beyond an edge is the wrap partner, the input at the
far edge (indices modulo the axis length). The block so read holds every value the
region's outputs use, so the operation on it (any mode at the block's own edges) is
scipy's on the whole array, bitwise. Only in-bound boxes are read (at most two pieces
per axis, the whole axis when the halo is longer than it), so a region costs its
halo, not the axis.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..._shared.regions import Region
from ...backend import array_module

#: the mode a padded axis gives a kernel that needs one mode: any is exact there, as
#: the outputs asked for never reach the padded block's edge
_ANY_MODE = "reflect"


def wrap_axes(op, params: dict[str, Any], n: int) -> tuple[bool, ...]:
    """Per spatial axis, whether the operation's ``mode`` wraps there (filters only: a
    transform's ``mode`` is its own, see ``ops.geometry``)."""
    mode = params.get("mode")
    if op.geometry is not None or mode is None or not any(p.name == "mode" for p in op.params):
        return (False,) * n
    modes = (mode,) * n if isinstance(mode, str) else tuple(mode)
    if op.modes_per_term and "wrap" in modes:  # a term's mode holds for every axis
        return (True,) * n
    return tuple(m == "wrap" for m in modes)


def _segments(s: slice, n: int) -> list[tuple[int, int]]:
    """The in-bound pieces that indices ``s.start .. s.stop`` modulo ``n`` cover."""
    if s.stop - s.start >= n:
        return [(0, n)]
    lo, hi = s.start % n, (s.stop - 1) % n + 1
    return [(lo, hi)] if lo < hi else [(lo, n), (0, hi)]


def in_bounds(region: Region, shape) -> bool:
    return all(0 <= s.start and s.stop <= n for s, n in zip(region, shape, strict=True))


def input_boxes(region: Region, shape) -> list[Region]:
    """The in-bound boxes a wrapped ``region`` reads (``[region]`` when in bounds)."""
    if in_bounds(region, shape):
        return [region]
    per_axis = [_segments(s, n) for s, n in zip(region, shape, strict=True)]
    return [tuple(slice(a, b) for a, b in box) for box in itertools.product(*per_axis)]


def read_wrapped(read, region: Region, shape):
    """``read(box)`` of ``region``, whose slices may reach beyond ``[0, n)``: those parts
    are read at the far edge (numpy or CuPy blocks alike)."""
    if in_bounds(region, shape):
        return read(region)
    per_axis = [_segments(s, n) for s, n in zip(region, shape, strict=True)]
    pieces = {box: read(tuple(slice(a, b) for a, b in box))
              for box in itertools.product(*per_axis)}
    xp = array_module(next(iter(pieces.values())))

    def join(axis: int, prefix: tuple):
        if axis == len(per_axis):
            return pieces[prefix]
        parts = [join(axis + 1, (*prefix, seg)) for seg in per_axis[axis]]
        return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=axis)

    block = join(0, ())
    for axis, (s, n) in enumerate(zip(region, shape, strict=True)):
        if 0 <= s.start and s.stop <= n:
            continue
        idx = np.arange(s.start, s.stop) % n
        pos = np.empty_like(idx)
        offset = 0
        for a, b in per_axis[axis]:
            inside = (idx >= a) & (idx < b)
            pos[inside] = idx[inside] - a + offset
            offset += b - a
        block = xp.take(block, xp.asarray(pos), axis=axis)
    return block


def padded_mode(mode, padded: tuple[bool, ...]):
    """The mode to give a kernel that needs one (a fast kernel) on a block padded along
    the ``padded`` axes: the other axes' mode, or None where they differ (no fast path)."""
    if not any(padded):
        return mode if isinstance(mode, str) else None
    modes = (mode,) * len(padded) if isinstance(mode, str) else tuple(mode)
    rest = {m for m, w in zip(modes, padded, strict=True) if not w}
    if not rest:
        return _ANY_MODE
    return rest.pop() if len(rest) == 1 else None

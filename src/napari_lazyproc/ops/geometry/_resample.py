"""Resampling for the geometric transforms (``_transforms``, ``_deskew``, ``_shift``), lazily
and region-exact.

Each is an operation with a ``Geometry``: an output box needs the input box that the
output box's corners map to through scipy's (inverse) coordinate mapping, grown by the
spline's support, plus, for ``order`` >= 2 with ``prefilter``, a margin for scipy's
spline prefilter (below), and clipped. Near an array edge the box is extended so the
boundary ``mode`` sees what it sees on the whole array: the mirror image of the part
beyond the edge (``reflect``, ``mirror``, ``grid-mirror``), enough voxels at the edge
(``nearest``, the constants), the whole axis (``wrap``, ``grid-wrap``, whose values come
from the far edge).

Values: the coordinates of each output voxel are computed as scipy computes them (the
affine matrix path adds ``offset`` and then ``o[l] * matrix[h, l]`` in order; ``shift``
adds minus the shift; ``zoom`` multiplies by its factor, ``grid_mode`` around voxel
centres), then the input box's start is subtracted (exact: an integer no larger than the
coordinate), and ``map_coordinates`` interpolates on the box. So for ``order`` 0 and 1,
and for any order with ``prefilter=False``, every region is **bitwise** scipy's on the
whole array under ``precision="exact"``. Under "fast" (the default) scipy's
``affine_transform`` runs on the box with its offset moved there, without a coordinate
array (about twice as fast): a coordinate may then differ in its last bits, within the
fast contract (``resample_fast``); nearest-neighbour stays exact.

For ``order`` >= 2 with ``prefilter=True`` scipy first runs a recursive B-spline filter
along whole lines of the input. Its influence falls geometrically with distance, by the
pole of the spline (``|z| = 2 - sqrt(3) = 0.268`` per voxel for order 3; 0.172, 0.361 and
0.431 for orders 2, 4 and 5), so a box grown by ``m`` voxels with ``|z|**m < 2**-60``
(order 3: 32 voxels; order 5: 50) filters to the whole-array coefficients within a few
units in the last place. Such regions are then equal to scipy's within about 1e-15 of
the largest value (tests/test_transforms.py checks 1e-12), not always bitwise: that is
precision "fast". Under "exact" a region reads its whole frame (``Op.exact_whole``,
``prefiltered``), where the prefilter runs on whole lines as scipy's does: bitwise.
"""

from __future__ import annotations

import ast
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import Geometry

#: every boundary mode of scipy.ndimage's interpolation
MODES = ("constant", "nearest", "reflect", "mirror", "wrap", "grid-constant", "grid-mirror",
         "grid-wrap")
_WRAPS = ("wrap", "grid-wrap")
_MIRRORS = ("reflect", "mirror", "grid-mirror")

#: the largest pole (in magnitude) of scipy's B-spline prefilter, by spline order
POLES = {2: 3.0 - math.sqrt(8.0), 3: 2.0 - math.sqrt(3.0), 4: 0.361341225900220177092212841325,
         5: 0.430575347099973791851434783493}


def prefiltered(p: dict) -> bool:
    """Whether scipy prefilters the input (a spline of order 2 or more): an exact region
    then reads its whole frame (``Op.exact_whole``)."""
    return bool(p.get("prefilter", True)) and int(p["order"]) >= 2


def prefilter_margin(order: int) -> int:
    """Voxels beyond which scipy's spline prefilter of ``order`` changes a coefficient by
    less than 2**-60 of the input's magnitude (0 below order 2: no prefilter).

    Parameters
    ----------
    order : int
        The spline order, 0 to 5.

    Returns
    -------
    int
        24, 32, 41 and 50 for orders 2 to 5.
    """
    if order < 2:
        return 0
    return math.ceil(math.log(2.0**-60) / math.log(POLES[order]))


# ------------------------------------------------------------------ parameter types


def matrix(value):
    """A transform matrix: a nested list (or its JSON text, or a ``.npy`` path), as
    nested tuples of floats (1-D: the diagonal)."""
    if isinstance(value, str):
        text = value.strip()
        value = np.load(text) if text.endswith(".npy") else ast.literal_eval(text)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"a 1-D or 2-D array of finite numbers (got shape {arr.shape})")
    return tuple(float(v) for v in arr) if arr.ndim == 1 else tuple(
        tuple(float(v) for v in row) for row in arr)


def shape(value):
    """An output shape: integers (or their text, ``"20, 30"``)."""
    if isinstance(value, str):
        value = ast.literal_eval(value.strip() if "," in value else value.strip() + ",")
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        value = (value,)
    out = tuple(int(v) for v in value)
    if any(v < 1 or v != float(w) for v, w in zip(out, value, strict=True)):
        raise ValueError(f"positive integers (got {tuple(value)})")
    return out


def lengths(value):
    """Positive numbers, one per axis (or their text, ``"0.4, 0.104, 0.104"``)."""
    if isinstance(value, str):
        value = ast.literal_eval(value.strip() if "," in value else value.strip() + ",")
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        value = (value,)
    out = tuple(float(v) for v in value)
    if not all(math.isfinite(v) and v > 0 for v in out):
        raise ValueError(f"positive numbers (got {out})")
    return out


def typed(op: str, name: str, parse, what: str):
    """``parse`` with errors that name the operation, the parameter and ``what`` it takes."""

    def typed(value):
        try:
            return parse(value)
        except (ValueError, TypeError, SyntaxError, OSError) as exc:
            raise ValueError(f"{op}: {name} must be {what} ({exc})") from None

    typed.__name__ = parse.__name__
    return typed


ORDER = Param("order", int, 3, min=0, max=5, help="spline order: 0 nearest, 1 linear, 3 cubic")
MODE = Param("mode", str, "constant", choices=MODES, help="how the input is extended beyond "
             "its edges (scipy's modes)")
CVAL = Param("cval", float, 0.0, help="value beyond the edges in the constant modes")
PREFILTER = Param("prefilter", bool, True, help="spline-filter the input first (order >= 2), "
                  "as scipy does by default")


# ------------------------------------------------------------------ the coordinate mapping


_SCRATCH = threading.local()
#: coordinate buffers up to this size are kept per thread: filling fresh memory costs its
#: page faults, several times the arithmetic
SCRATCH_BYTES = 2**26


def _scratch(shape) -> np.ndarray:
    """A float64 array of ``shape``, reused by this thread's next call (small ones)."""
    n = math.prod(shape)
    if n * 8 > SCRATCH_BYTES:
        return np.empty(shape, np.float64)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        buf = _SCRATCH.buf = np.empty(max(n, 2**16), np.float64)
    return buf[:n].reshape(shape)


@dataclass(frozen=True)
class Mapping:
    """Output frame index -> input frame coordinate, computed as scipy computes it.

    ``kind``: "affine" (scipy's matrix path: ``offset[h]``, then ``+ o[l] * matrix[h, l]``
    for each ``l`` in order), "diagonal" (an affine with a 1-D matrix: scipy's
    zoom_shift, ``(o + offset / m) * m``), "shift" (``o + offset``, ``offset`` minus the
    shift), "zoom" (``o * factor``, or ``(o + 0.5) * factor - 0.5`` with ``grid_mode``) or
    "copy" (scipy returns the input: a zoom by 1).
    """

    kind: str
    matrix: np.ndarray  # (k, k) for "affine"; (k,) factors for "zoom" and "diagonal"
    offset: np.ndarray
    shape: tuple[int, ...]
    grid_mode: bool = False

    def coordinates(self, box, xp=np) -> np.ndarray:
        """The input coordinates of every output voxel of ``box`` (slices or (start,
        stop) pairs), shape ``(k, *box shape)``, float64."""
        pairs = [(b.start, b.stop) if isinstance(b, slice) else b for b in box]
        starts = [int(b[0]) for b in pairs]
        stops = [int(b[1]) for b in pairs]
        sizes = tuple(e - s for s, e in zip(starts, stops, strict=True))
        k = len(sizes)
        axes = [xp.arange(s, e, dtype=np.float64).reshape((1,) * i + (-1,) + (1,) * (k - i - 1))
                for i, (s, e) in enumerate(zip(starts, stops, strict=True))]
        out = _scratch((len(self.offset),) + sizes) if xp is np else xp.empty(
            (len(self.offset),) + sizes, np.float64)
        for h in range(len(self.offset)):
            if self.kind == "affine":  # partial sums on small arrays, the last one into out
                t = xp.asarray(self.offset[h]).reshape((1,) * k)
                terms = [axes[ll] * float(self.matrix[h, ll]) for ll in range(k)
                         if self.matrix[h, ll] != 0.0]  # adding o * 0 changes no value
                for term in terms[:-1]:
                    t = t + term
                if terms:
                    xp.add(t, terms[-1], out=out[h])
                else:
                    out[h] = t
            elif self.kind == "diagonal":
                out[h] = (axes[h] + float(self.offset[h])) * float(self.matrix[h])
            elif self.kind == "shift":
                out[h] = axes[h] + float(self.offset[h])
            elif self.grid_mode:  # zoom about voxel centres
                out[h] = (axes[h] + 0.5) * float(self.matrix[h]) - 0.5
            else:
                out[h] = axes[h] * float(self.matrix[h])
        return out

    def bounds(self, box) -> tuple[np.ndarray, np.ndarray]:
        """The least and greatest input coordinate, per input axis, over ``box``: over its
        corners (each coordinate is monotonic along each output axis)."""
        corners = [((s.start, s.start + 1), (s.stop - 1, s.stop)) for s in box]
        lo = hi = None
        for corner in np.ndindex(*(2,) * len(box)):
            c = self.coordinates([corners[i][j] for i, j in enumerate(corner)])
            c = c.reshape(len(c)).copy()  # the buffer is reused
            lo = c if lo is None else np.minimum(lo, c)
            hi = c if hi is None else np.maximum(hi, c)
        return lo, hi


def _input_span(lo: float, hi: float, n: int, reach: int, mode: str) -> tuple[int, int]:
    """The input voxels along one axis that coordinates in ``[lo, hi]`` read: a spline of
    order ``2r`` or ``2r + 1`` at ``c`` reads ``floor(c) - r`` to ``floor(c) + r + 1``,
    so ``reach`` is ``r`` plus the prefilter's margin; extended for what ``mode`` reads
    beyond the edges, clipped to ``[0, n)``."""
    a = math.floor(lo) - reach
    b = math.floor(hi) + reach + 2
    if 0 <= a and b <= n:
        return a, b
    if b - a >= n or mode in _WRAPS:  # wraps read the far edge: the whole axis
        return 0, n
    if mode in _MIRRORS:
        if a < -(n - 1) or b > 2 * n - 1:  # reflected more than once
            return 0, n
        lo_, hi_ = max(a, 0), min(b, n)
        if a < 0:  # the mirror image of [a, 0)
            lo_, hi_ = 0, max(hi_, -a + 1)
        if b > n:  # the mirror image of [n, b)
            lo_, hi_ = min(lo_, max(0, 2 * n - b - 1)), n
        return lo_, min(hi_, n)
    # constant, grid-constant, nearest: the edge itself, and the prefilter's reach of it
    lo_, hi_ = min(max(a, 0), n), max(min(b, n), 0)
    width = min(n, reach + 2)  # what a coordinate beyond the edge reads of it
    if hi_ - lo_ < width:
        if hi_ >= n or lo_ >= n:
            lo_, hi_ = n - width, n
        else:
            lo_, hi_ = 0, width
    return lo_, hi_


def _reach(order: int, prefilter: bool) -> int:
    """Voxels a coordinate reads below its floor: half the spline's support, and the
    prefilter's margin.

    The corners bound every coordinate exactly: scipy's sums of products are monotonic in
    each index, and so is their rounding.
    """
    return order // 2 + (prefilter_margin(order) if prefilter else 0)


def input_box(mapping: Mapping, out_box, frame_shape, order: int, mode: str,
              prefilter: bool) -> tuple[slice, ...]:
    """The input frame box that the output frame box ``out_box`` needs (see the module's
    docstring)."""
    if mapping.kind == "copy":
        return tuple(out_box)
    lo, hi = mapping.bounds(out_box)
    reach = _reach(order, prefilter)
    return tuple(slice(*_input_span(float(a), float(b), int(n), reach, mode))
                 for a, b, n in zip(lo, hi, frame_shape, strict=True))


def resample(block, mapping: Mapping, region, source_region, order, mode, cval, prefilter,
             output=None):
    """The values over the output ``region`` from ``block``, the input over
    ``source_region``: ``map_coordinates`` at scipy's coordinates, relative to the block
    (into scipy's ``output`` dtype where given)."""
    if mapping.kind == "copy":  # scipy assigns the input to its output array
        return block[tuple(slice(r.start - s.start, r.stop - s.start)
                           for r, s in zip(region, source_region, strict=True))].astype(
            output or block.dtype)
    xp = array_module(block)
    coords = mapping.coordinates(region, xp)
    for h, s in enumerate(source_region):
        if s.start:
            coords[h] -= float(s.start)  # exact: an integer no larger than the coordinate
    return ndimage_for(block).map_coordinates(block, coords, order=int(order), mode=mode,
                                              cval=float(cval), prefilter=bool(prefilter),
                                              output=None if output is None
                                              else np.dtype(output))


def _geometry(mapping_of, place=None, bind=None, axes=None) -> Geometry:
    """The ``Geometry`` of a transform whose mapping is ``mapping_of(frame_shape, p)``
    (``axes``: the output frame's letters where it has fewer axes than the input's)."""

    def region(out, frame_shape, p):
        return input_box(mapping_of(frame_shape, p), out, frame_shape, p["order"], p["mode"],
                         p["prefilter"])

    extra = {} if axes is None else {"axes": axes}
    return Geometry(shape=lambda frame_shape, p: mapping_of(frame_shape, p).shape,
                    region=region, place=place, bind=bind, wants_shape=True, **extra)


def resample_fast(block, mapping: Mapping, region, source_region, order, mode, cval,
                  prefilter, output=None):
    """``resample`` within the "fast" contract, without a coordinate array: scipy's
    ``affine_transform`` on the block with the offset moved to the block's origin, so a
    coordinate may differ from scipy's whole-array one in its last bits (1e-13 of a value;
    an integer output may round the other way: one grey level). Where such a bit decides
    which value is taken, the exact ``resample`` runs: nearest-neighbour (``order`` 0),
    and ``mode="constant"``, where a coordinate one bit past the last voxel is ``cval``
    instead of the voxel's value."""
    if order == 0 or mapping.kind == "copy" or mode == "constant" or (
            output is not None and np.dtype(output) != block.dtype):
        return resample(block, mapping, region, source_region, order, mode, cval, prefilter,
                        output)
    out0 = np.array([r.start for r in region], dtype=np.float64)
    in0 = np.array([s.start for s in source_region], dtype=np.float64)
    m = mapping.matrix
    if mapping.kind == "affine":
        offset = mapping.offset + m @ out0 - in0
    else:  # per axis: o * m + b
        b = {"diagonal": mapping.offset * m, "shift": mapping.offset,
             "zoom": 0.5 * m - 0.5 if mapping.grid_mode else np.zeros(len(m))}[mapping.kind]
        offset = b + m * out0 - in0
        if not np.all(m):  # a zoom of a one-voxel axis: scipy's zoom_shift divides by m
            m = np.diag(m)
    return ndimage_for(block).affine_transform(
        block, m, offset, output_shape=tuple(r.stop - r.start for r in region),
        order=int(order), mode=mode, cval=float(cval), prefilter=bool(prefilter))


def _function(mapping_of, fast: bool = False):
    how = resample_fast if fast else resample

    def transform(block, region, source_region, frame_shape, order, mode, cval, prefilter,
                  output=None, **params):
        p = dict(params, order=order, mode=mode, cval=cval, prefilter=prefilter)
        return how(block, mapping_of(frame_shape, p), region, source_region, order, mode, cval,
                   prefilter, output)

    return transform

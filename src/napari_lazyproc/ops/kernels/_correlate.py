"""Fast CPU kernels of ``convolve`` and ``correlate`` with a user's kernel for the "fast"
precision: OpenCV's 2-D filter, summed in float64.

scipy sums each voxel's window in double and stores the sum in the output's type (the
input's); here each plane is OpenCV's ``filter2D`` with float64 sums (``CV_64F``), and a
3-D kernel is, for each output plane, the sum over its z slices of that slice's 2-D
filter of the plane it reaches (z extended by scipy's ``mode``; slices of zeros
skipped). Only the planes, rows and columns that ``crop`` needs are read (an axis
that the mode extends, at the array's edge, is read whole).

OpenCV switches to a DFT for kernels of 50 taps or more, whose error grows with the
whole image's magnitude and which spreads a NaN over the whole plane: larger kernels run
as pieces of at most ``MAX_TAPS`` taps over the plane padded by the mode, summed.

Integers: scipy truncates the double sum toward zero and wraps it around when it is out
of the dtype's range (a cast that C leaves to the platform); the fast path takes integers
only where the block's extremes and the kernel's positive and negative sums show that no
result can be out of range. The signature is the engine's ``kernel(block, crop,
**params)``; None where there is no fast path (then scipy runs).
"""

from __future__ import annotations

import numpy as np

from ..filters._user_kernels import kernel_array
from ._separable import _BORDERS, _indices, _usable, cv2

#: the dtypes taken (each plane is made float64 once, exactly, and filtered in float64)
_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
#: the most taps of one OpenCV filter: from 50 it filters by DFT
MAX_TAPS = 49


def _pieces(k2: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """``k2`` cut into rectangles of at most ``MAX_TAPS`` taps: (row, column, piece),
    pieces of zeros left out."""
    ny, nx = k2.shape
    rows = max(1, MAX_TAPS // nx)
    cols = min(nx, MAX_TAPS)
    out = []
    for r in range(0, ny, rows):
        for c in range(0, nx, cols):
            piece = k2[r : r + rows, c : c + cols]
            if piece.any():
                out.append((r, c, np.ascontiguousarray(piece)))
    return out


def _box(c: slice, n: int, size: int, centre: int) -> tuple[slice, int, int]:
    """The input rows (or columns) that outputs ``c`` of an axis of length ``n`` read
    through a window of ``size`` around ``centre``, and the mode's padding before and
    after them. An axis padded at either end is read whole, so that OpenCV extends it
    from the block's edges (which are the array's there), as scipy does."""
    lo, hi = c.start - centre, c.stop + size - 1 - centre
    if lo >= 0 and hi <= n:
        return slice(lo, hi), 0, 0
    return slice(0, n), max(0, -lo), max(0, hi - n)


class _Plane:
    """The 2-D correlation of planes with 2-D kernels of one shape and anchor, over a
    crop of the plane: float64 values."""

    def __init__(self, shape, plane_shape, crop, centre, mode):
        self.border = _BORDERS[mode]
        self.centre = centre
        self.out_shape = tuple(c.stop - c.start for c in crop)
        (ys, top, bottom), (xs, left, right) = (
            _box(c, n, k, a) for c, n, k, a in zip(crop, plane_shape, shape, centre,
                                                    strict=True))
        self.box, self.pads = (ys, xs), (top, bottom, left, right)
        self.keep = tuple(slice(c.start - b.start, c.stop - b.start)
                          for c, b in zip(crop, self.box, strict=True))
        # where the padded box starts in the window of the crop's first output
        self.base = tuple(k.start + p - a for k, p, a in zip(self.keep, (top, left), centre,
                                                               strict=True))
        self.single = shape[0] * shape[1] <= MAX_TAPS

    def prepare(self, plane: np.ndarray) -> np.ndarray:
        """The part of ``plane`` the filter reads, in float64 (exact; OpenCV has no direct
        float32-to-float64 filter, and filters integers to float64 slower than it converts
        them and filters float64), padded by the mode for a kernel cut in pieces."""
        img = plane[self.box].astype(np.float64, copy=False)
        if not self.single and any(self.pads):
            img = cv2.copyMakeBorder(img, *self.pads, self.border, value=0)
        return img

    def filter(self, img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """``kernel`` correlated with a prepared plane, over the crop (float64)."""
        if self.single:
            anchor = (self.centre[1], self.centre[0])
            return cv2.filter2D(img, cv2.CV_64F, kernel, anchor=anchor,
                                borderType=self.border)[self.keep]
        h, w = self.out_shape
        acc = None
        for r, c, piece in _pieces(kernel):
            y, x = self.base[0] + r, self.base[1] + c
            view = img[y : y + h + piece.shape[0] - 1, x : x + w + piece.shape[1] - 1]
            part = cv2.filter2D(view, cv2.CV_64F, piece, anchor=(0, 0),
                                borderType=cv2.BORDER_REPLICATE)[:h, :w]
            acc = part if acc is None else np.add(acc, part, out=acc)
        return np.zeros((h, w)) if acc is None else acc


def _fits(block: np.ndarray, w: np.ndarray, mode: str) -> bool:
    """Whether every sum of ``w`` over values of ``block`` (and the zeros of the
    constant mode), truncated toward zero, is in the block's integer dtype: scipy's cast
    of a sum out of range is the platform's, left to scipy."""
    info = np.iinfo(block.dtype)
    lo, hi = float(block.min()), float(block.max())
    if mode == "constant":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pos, neg = float(w[w > 0].sum()), float(w[w < 0].sum())
    least, most = pos * lo + neg * hi, pos * hi + neg * lo
    # both sums, ours and scipy's, are within rounding of the true one
    slack = 1e-9 * (pos - neg) * max(abs(lo), abs(hi)) + 1e-9
    return np.trunc(least - slack) >= info.min and np.trunc(most + slack) <= info.max


def _origins(origin, ndim: int) -> tuple[int, ...] | None:
    """scipy's origin, one per axis (one value for every axis), or None where it is not
    one of those."""
    values = np.atleast_1d(np.asarray(origin)).astype(int).tolist()
    if len(values) == 1:
        values = values * ndim
    return tuple(values) if len(values) == ndim else None


def _weights(block, weights, origin):
    """The kernel as float64 and the origins per axis, or None where there is no fast path
    (not a numpy block, a kernel of other dimensions)."""
    if not isinstance(block, np.ndarray):
        return None
    w = kernel_array(weights)
    if w.dtype.kind == "c":  # a complex result: scipy's
        return None
    w = np.asarray(w, np.float64)
    origin = _origins(origin, w.ndim)
    if w.ndim != block.ndim or origin is None:
        return None
    return w, origin


def correlate(block, crop, weights, mode, cval, origin=0):
    """scipy.ndimage.correlate over ``crop``: float64 sums, stored in the block's dtype
    (integers truncated), or None where there is no fast path."""
    taken = _weights(block, weights, origin)
    return None if taken is None else _correlate(block, crop, *taken, mode, cval)


def convolve(block, crop, weights, mode, cval, origin=0):
    """scipy.ndimage.convolve over ``crop``: the correlation with the weights flipped on
    every axis and the origin negated, one less again on axes of even length (as scipy
    turns a convolution into a correlation)."""
    taken = _weights(block, weights, origin)
    if taken is None:
        return None
    w, origin = taken
    flipped = w[(slice(None, None, -1),) * w.ndim]
    shifted = tuple(-o - (1 - n % 2) for o, n in zip(origin, w.shape, strict=True))
    return _correlate(block, crop, flipped, shifted, mode, cval)


def _correlate(block, crop, w, origin, mode, cval):
    """scipy's correlation of ``block`` with the float64 kernel ``w`` (as many axes) and
    ``origin`` (one per axis) over ``crop``, or None where there is no fast path."""
    if not _usable(block, mode, cval, _DTYPES) or mode not in _BORDERS:
        return None
    if mode == "constant" and cval != 0:  # OpenCV's constant border is 0
        return None
    centre = [n // 2 + o for n, o in zip(w.shape, origin, strict=True)]
    if mode == "reflect" and any(max(c, k - 1 - c) >= 2 * n for c, k, n in
                                 zip(centre, w.shape, block.shape, strict=True)):
        # a window reaching a reflection period past a (short) array's edge: scipy's N-D
        # correlate reflects it from other elements than a reflection (from 4x the
        # axis's length); left to scipy so that fast and exact agree
        return None
    if any(not 0 <= a < n for a, n in zip(centre, w.shape, strict=True)):
        return None  # an origin scipy refuses
    crop = tuple(slice(*c.indices(n)[:2]) for c, n in zip(crop, block.shape, strict=True))
    if any(c.stop <= c.start for c in crop):
        return None
    # scipy leaves out the weights within DBL_EPSILON of 0 (a NaN there stays out)
    w = np.where(np.abs(w) > np.finfo(np.float64).eps, w, 0.0)
    if block.dtype.kind in "iu" and not _fits(block, w, mode):
        return None
    if block.ndim < 3:  # one plane (of one row)
        lead = 3 - block.ndim
        values = _correlate_3d(block[(None,) * lead], (slice(0, 1),) * lead + crop,
                               w[(None,) * lead], [0] * lead + centre, mode)
        return values[(0,) * lead]
    return _correlate_3d(block, crop, w, centre, mode)


def _correlate_3d(block, crop, w, centre, mode):
    """The correlation of a 3-D block with a 3-D kernel centred at ``centre``: per output
    plane, the sum of the 2-D filters of the planes its z slices reach."""
    plane = _Plane(w.shape[1:], block.shape[1:], crop[1:], centre[1:], mode)
    out = np.empty(tuple(c.stop - c.start for c in crop), block.dtype)
    integer = block.dtype.kind in "iu"
    slices = [j for j in range(w.shape[0]) if w[j].any()]
    kernels = {j: np.ascontiguousarray(w[j]) for j in slices}
    prepared: dict[int, np.ndarray] = {}  # the planes the last output plane read
    for k, z in enumerate(range(crop[0].start, crop[0].stop)):
        taps = _indices(block.shape[0], z - centre[0] + np.arange(w.shape[0]), mode)
        wanted = {int(taps[j]) for j in slices if taps[j] >= 0}
        prepared = {i: prepared[i] if i in prepared else plane.prepare(block[i])
                    for i in wanted}
        acc = None
        for j in slices:
            if taps[j] < 0:  # a plane of the constant mode's zeros
                continue
            values = plane.filter(prepared[int(taps[j])], kernels[j])
            acc = values if acc is None else np.add(acc, values, out=acc)
        if acc is None:
            out[k] = 0
            continue
        if integer:
            np.trunc(acc, out=acc)
        np.copyto(out[k], acc, casting="unsafe")
    return out

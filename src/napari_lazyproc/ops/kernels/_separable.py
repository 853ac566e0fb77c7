"""Fast CPU kernels for the "fast" precision: OpenCV's float32 separable filters
(Gaussian, uniform, difference of Gaussians); the rank filters are in ``_rank``.

Each kernel has the engine's fast signature ``kernel(block, crop, **params)``: ``block``
holds the spatial axes with their halo, ``crop`` (one slice per spatial axis) is the part
whose values are wanted; it returns those values, or None where it has no fast path
(the engine then runs the exact scipy function). Array edges follow scipy's ``mode``:
the block ends where the array ends or where the halo is wide enough not to matter.
"""

from __future__ import annotations

import numpy as np

try:  # OpenCV is optional: without it every operation runs scipy
    import cv2
except ImportError:  # pragma: no cover - exercised where OpenCV is missing
    cv2 = None

#: scipy's boundary modes as OpenCV border types ('constant' only with cval 0)
_BORDERS = {} if cv2 is None else {
    "reflect": cv2.BORDER_REFLECT,
    "mirror": cv2.BORDER_REFLECT_101,
    "nearest": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}
#: columns of a slab's first pass filtered at once (its float band stays in cache)
SLAB_COLUMNS = 256
#: the dtypes the OpenCV kernels take
_SUPPORTED = (np.uint8, np.uint16, np.int16, np.float32)


def available() -> bool:
    return cv2 is not None


def gaussian_kernel1d(sigma: float, order: int, radius: int) -> np.ndarray:
    """scipy.ndimage's ``_gaussian_kernel1d(sigma, order, radius)``, the same arithmetic:
    the Gaussian times the polynomial that its ``order``-th derivative makes."""
    exponent_range = np.arange(order + 1)
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x**2)
    phi_x = phi_x / phi_x.sum()
    if order == 0:
        return phi_x
    q = np.zeros(order + 1)
    q[0] = 1
    d = np.diag(exponent_range[1:], 1)  # d @ q(x) = q'(x)
    p = np.diag(np.ones(order) / -sigma2, -1)  # p @ q(x) = q(x) * p'(x)
    q_deriv = d + p
    for _ in range(order):
        q = q_deriv.dot(q)
    q = (x[:, None] ** exponent_range).dot(q)
    return q * phi_x


def gaussian_weights(sigma: float, order: int, truncate: float) -> np.ndarray:
    """The weights scipy's ``gaussian_filter1d`` correlates with (its kernel reversed)."""
    sd = float(sigma)
    return gaussian_kernel1d(sd, int(order), int(truncate * sd + 0.5))[::-1]


def _indices(n: int, positions: np.ndarray, mode: str) -> np.ndarray:
    """Input index of each position along an axis of length n, as scipy's ``mode``
    extends the edge; -1 marks a constant (cval) sample."""
    idx = np.asarray(positions)
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if mode == "constant":
        return np.where((idx < 0) | (idx >= n), -1, idx)
    period = 2 * n if mode == "reflect" else max(1, 2 * n - 2)
    m = np.mod(idx, period)
    if mode == "reflect":
        return np.where(m < n, m, period - 1 - m)
    return np.where(m < n, m, period - m)


def _offsets(size: int) -> np.ndarray:
    """scipy's window of ``size`` taps around a voxel: -(size // 2) .. (size - 1) // 2."""
    return np.arange(size) - size // 2


def _first_axis(f: np.ndarray, lo: int, hi: int, offsets, mode: str, cval: float,
                combine, work=np.float32) -> np.ndarray:
    """Outputs lo:hi along axis 0 only, from whole planes: ``combine`` is a list of weights
    (a weighted sum) or ``np.minimum`` / ``np.maximum`` (a rank filter)."""
    n = f.shape[0]
    linear = not callable(combine)
    out = np.empty((hi - lo, *f.shape[1:]), work if linear else f.dtype)
    for k in range(hi - lo):
        taps = _indices(n, lo + k + np.asarray(offsets), mode)

        def plane(i):
            return np.full(f.shape[1:], cval, f.dtype) if i < 0 else np.ascontiguousarray(f[i])

        # (OpenCV reads a float64 array of up to 4 values as a scalar: numpy for those)
        if linear and cv2 is not None and f.ndim == 3 and f[0].size > 4:
            out[k] = _weighted_planes([plane(i) for i in taps], combine, work)
            continue
        acc = None
        for j, i in enumerate(taps):
            if linear:
                term = work(combine[j]) * plane(i)
                acc = term if acc is None else acc + term
            else:
                acc = plane(i).copy() if acc is None else combine(acc, plane(i), out=acc)
        out[k] = acc
    return out


def _weighted_planes(planes: list, weights, work) -> np.ndarray:
    """sum(weights[j] * planes[j]) in ``work`` precision, two planes a pass (OpenCV's
    addWeighted reads integers as they are: no float copies of the planes)."""
    depth = cv2.CV_64F if work == np.float64 else cv2.CV_32F
    n = len(planes)
    acc = None
    for j in range(n // 2):
        pair = cv2.addWeighted(planes[j], float(weights[j]), planes[n - 1 - j],
                               float(weights[n - 1 - j]), 0.0, dtype=depth)
        acc = pair if acc is None else cv2.add(acc, pair, dst=acc)
    if n % 2:
        middle = cv2.multiply(planes[n // 2], 1.0, scale=float(weights[n // 2]), dtype=depth)
        acc = middle if acc is None else cv2.add(acc, middle, dst=acc)
    return acc


def _planes_then(f: np.ndarray, crop, first, plane_fn, dtype) -> np.ndarray:
    """Axis 0 by ``first(f, lo, hi)`` at the planes asked for (3-D blocks), then
    ``plane_fn`` on each plane, cropped and stored as ``dtype`` plane by plane (no
    whole-box float result); 1- and 2-D blocks go straight to ``plane_fn``."""
    if f.ndim == 1:
        return _planes_then(f[None], (slice(0, 1), *crop), None, plane_fn, dtype)[0]
    if f.ndim == 2:
        return plane_fn(np.ascontiguousarray(f))[crop].astype(dtype)
    planes = first(f, crop[0].start, crop[0].stop)
    out = np.empty((len(planes), *(c.stop - c.start for c in crop[1:])), dtype)
    for k in range(len(planes)):
        out[k] = plane_fn(np.ascontiguousarray(planes[k]))[crop[1:]]
    return out


#: a pass's float64 sum this close to a whole number (in units of its taps x the
#: dtype's largest magnitude x float64's epsilon; two orders of summing differ by at
#: most about a quarter of it) may truncate on the other side of it from scipy's sum:
#: those voxels are summed again in scipy's order
TIE_EPS = 4.0


def _truncate_like_scipy(values, src, axis: int, lo: int, weights, mode: str, cval: float,
                         tie: float):
    """``values`` (float64 sums of the symmetric ``weights`` correlated with ``src`` along
    ``axis``, at outputs ``lo + i`` there; the other axes as ``src``'s) truncated toward
    zero as scipy truncates its own sums. A flat area sums to a whole number, which two
    summation orders put on either side of it; unfixed, a grey level was lost per axis."""
    near = np.rint(values)
    rows = near.reshape(-1, near.shape[-1])  # a view: OpenCV writes into ``near``
    cv2.absdiff(values.reshape(-1, values.shape[-1]), rows, rows)  # to the nearest one
    ties = np.nonzero(near < tie) if near.min() < tie else None
    np.trunc(values, out=values)
    if ties is not None:
        values[ties] = np.trunc(_scipy_sum(src, axis, ties, lo, weights, mode, cval))
    return values


def _scipy_sum(src, axis: int, at, lo: int, weights, mode: str, cval: float) -> np.ndarray:
    """scipy's ``correlate1d`` sums of a symmetric odd kernel at the outputs ``at`` (index
    arrays), in its order: the centre tap, then each pair of taps from the outermost in
    (ni_filters.c), in float64."""
    w = np.asarray(weights, np.float64)
    r = len(w) // 2
    n = src.shape[axis]

    def tap(d):
        idx = _indices(n, at[axis] + lo + d, mode)
        coords = list(at)
        coords[axis] = np.maximum(idx, 0)
        v = src[tuple(coords)].astype(np.float64)
        return np.where(idx < 0, cval, v) if mode == "constant" else v

    acc = tap(0) * w[r]
    for j in range(r, 0, -1):
        acc += (tap(-j) + tap(j)) * w[r - j]
    return acc


def _usable(block, mode, cval, dtypes=(*_SUPPORTED, np.float64)) -> bool:
    return (cv2 is not None and isinstance(block, np.ndarray) and block.dtype in dtypes
            and block.ndim <= 3 and block.size > 0)


def _linear(block, crop, weights, mode, cval, work=np.float32, store=None, norms=None):
    """A separable correlation with one odd-or-even kernel per axis (scipy's windows),
    summed in ``work`` precision, each axis's sum divided by its ``norms`` entry (a box
    mean sums ones and divides, as scipy does: 3 x (200 / 3) is not 200 in floats).
    Between axes values are stored as scipy stores them in its output array: integers
    truncated (a sum within rounding of a whole number summed again in scipy's order, so
    flat areas and ramps truncate as scipy's do), and floats rounded to ``store`` when
    given."""
    if not _usable(block, mode, cval) or (mode == "constant" and cval != 0):
        return None
    integer = block.dtype.kind in "iu"
    if integer:  # truncation after each axis: a float32 sum just below a whole number
        work = np.float64  # would lose a grey level per axis (flat or saturated areas)
    border = _BORDERS[mode]
    depth = cv2.CV_64F if work == np.float64 else cv2.CV_32F
    # a slab's first pass reads integers as they are (OpenCV and numpy convert them
    # exactly): no whole-box float copy, the largest allocation of an export task
    f = block if block.dtype == work or (integer and block.ndim == 3) else \
        block.astype(work)
    norms = list(norms or [1.0] * len(weights))
    if f.ndim == 1:
        weights, norms = [np.ones(1), *weights], [1.0, *norms]
    one = np.ones(1, work)
    per_axis = integer or store is not None or any(n != 1.0 for n in norms)

    # scipy sums a symmetric odd kernel in its own order: whole-number ties are redone so
    symmetric = [len(w) % 2 == 1 and np.array_equal(w, w[::-1]) for w in weights]
    if integer:
        info = np.iinfo(block.dtype)
        largest = max(abs(int(info.min)), int(info.max))
        ties = [TIE_EPS * len(w) * np.finfo(np.float64).eps * largest for w in weights]

    def between(values, k, src, axis, lo=0):
        """Pass ``k``'s sums (of ``src`` along ``axis``, outputs from ``lo``) stored as
        scipy stores them."""
        k %= len(weights)
        if norms[k] != 1.0:
            values /= norms[k]
        if integer and norms[k] == 1.0 and symmetric[k]:
            return _truncate_like_scipy(values, src, axis, lo, weights[k], mode, cval,
                                        ties[k])
        if integer:  # a box's sum of integers is exact, and so is its division
            return np.trunc(values, out=values)
        return values if store is None else values.astype(store).astype(work)

    def first(vol, lo, hi):
        if hi - lo <= 4:  # a few planes (one on screen): only those
            out = _first_axis(vol, lo, hi, _offsets(len(weights[0])), mode, cval,
                              weights[0], work)
            return between(out, 0, vol, 0, lo)
        # a slab (an export's box): the planes seen as rows, filtered a band of columns
        # at a time (a float band stays in cache; no whole-slab float array) and stored
        # as scipy stores its passes: integers truncated, in their own dtype
        kz = np.asarray(weights[0], work)
        rows = np.ascontiguousarray(vol).reshape(vol.shape[0], -1)
        out = np.empty((hi - lo, rows.shape[1]), block.dtype if integer else work)
        for j in range(0, rows.shape[1], SLAB_COLUMNS):
            src = rows[:, j : j + SLAB_COLUMNS]
            band = cv2.sepFilter2D(src, depth, one, kz, anchor=(0, len(kz) // 2),
                                   borderType=border)[lo:hi]
            out[:, j : j + SLAB_COLUMNS] = between(band, 0, src, 0, lo)
        return out.reshape(hi - lo, *vol.shape[1:])

    ky, kx = (np.asarray(w, work) for w in weights[-2:])
    anchor = (len(kx) // 2, len(ky) // 2)

    def plane_fn(plane):
        if per_axis:
            tmp = cv2.sepFilter2D(plane, depth, one, ky, anchor=(0, anchor[1]),
                                  borderType=border)
            tmp = between(tmp, -2, plane, 0)
            out = cv2.sepFilter2D(tmp, depth, kx, one, anchor=(anchor[0], 0),
                                  borderType=border)
            return between(out, -1, tmp, 1)
        return cv2.sepFilter2D(plane, depth, kx, ky, anchor=anchor, borderType=border)

    return _planes_then(f, crop, first, plane_fn, block.dtype)


def gaussian(block, crop, sigma, truncate, mode, cval, work=np.float32, store=None, *,
             order=None, radius=None):
    """scipy.ndimage.gaussian_filter over ``crop`` (derivatives of float data too)."""
    if order is not None and any(int(o) for o in order):
        # a derivative is a difference of large terms: summed in another order than
        # scipy's, a flat region's exact 0 comes out as 1e-15, which no contract relative
        # to the reference's largest value (0) can hold: scipy runs (bitwise)
        return None
    order = [0] * len(sigma)
    if block.dtype == np.float64:  # a wide kernel (sigma 32: 257 taps) over sparse
        work = np.float64  # values misses the contract in float32 sums (scipy's gh-5430)
    weights = []
    for i, s in enumerate(sigma):
        r = int(truncate * float(s) + 0.5) if radius is None else int(radius[i])
        weights.append(gaussian_kernel1d(float(s), order[i], r)[::-1] if s > 1e-15
                       else np.ones(1))
    return _linear(block, crop, weights, mode, cval, work, store)


def uniform(block, crop, size, mode, cval, origin=None):
    """scipy.ndimage.uniform_filter over ``crop`` (a centred window)."""
    if (origin is not None and any(int(o) for o in origin)) or min(size) < 1:
        return None
    return _linear(block, crop, [np.ones(int(s)) for s in size], mode, cval,
                   norms=[float(int(s)) for s in size])


def difference_of_gaussians(block, crop, low_sigma, high_sigma, truncate, mode, cval):
    """Gaussian(low_sigma) - Gaussian(high_sigma). The difference is small beside either
    term, so each term is summed in float64 and stored between axes as scipy stores it
    (in the float type of the output): float32 sums would lose the contract's precision."""
    if not _usable(block, mode, cval):
        return None
    out = np.float64 if block.dtype == np.float64 else np.float32
    f = block.astype(out)
    low = gaussian(f, crop, low_sigma, truncate, mode, cval, np.float64, out)
    high = gaussian(f, crop, high_sigma, truncate, mode, cval, np.float64, out)
    if low is None or high is None:
        return None
    return low.astype(out) - high.astype(out)

"""Fast CPU kernels of the edge operations (Sobel, Prewitt, Laplace, Laplacian of Gaussian,
Gaussian gradient magnitude) for the "fast" precision: OpenCV's separable filter.

Each is a chain of scipy's ``correlate1d`` passes, one axis at a time, in scipy's order.
These outputs are differences of large terms, so each pass sums in float64 (OpenCV's
``CV_64F``) and stores its values in the output's float type, as scipy stores each pass
in its output array: the values equal scipy's but for rare ties of rounding. Work is
saved, not changed: each axis is read only as far as its pass needs for ``crop`` (one
plane of a slab reads only its own window of planes), and y and x run plane by plane,
while a plane is in cache. The signature is the engine's ``kernel(block, crop,
**params)``; None where there is no fast path (then scipy runs).
"""

from __future__ import annotations

import numpy as np

from ._separable import _BORDERS, _indices, _offsets, _usable, cv2, gaussian_weights

#: the dtypes these kernels take (scipy's path makes integers float32, exactly)
_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
#: at most this many output planes along z come from numpy sums of whole planes; more
#: from one OpenCV pass over the planes seen as rows
_FEW_PLANES = 4
#: bytes of one float64 block of rows in the z pass (kept in cache)
_ROWS_BYTES = 2**18
_ONE = np.ones(1)
_DIFF = (-1.0, 0.0, 1.0)
_SOBEL = (1.0, 2.0, 1.0)
_PREWITT = (1.0, 1.0, 1.0)
_SECOND = (1.0, -2.0, 1.0)


def _with_cval(img, axis, w, cval):
    """``img`` in float64 with ``cval`` beyond both ends of ``axis`` (as far as the kernel
    ``w`` reaches): scipy's constant mode, with the cval as scipy holds it, in double."""
    pad = [(0, 0)] * img.ndim
    pad[axis] = (len(w) // 2, (len(w) - 1) // 2)
    return np.pad(img.astype(np.float64), pad, constant_values=float(cval))


def _symmetry(w) -> int:
    """1 for a symmetric kernel, -1 for an antisymmetric one, 0 otherwise (scipy's test:
    odd length, pairs equal or opposite within DBL_EPSILON)."""
    if len(w) % 2 == 0:
        return 0
    half = w[len(w) // 2 + 1 :]
    mirror = w[: len(w) // 2][::-1]
    eps = np.finfo(np.float64).eps
    if np.all(np.abs(half - mirror) <= eps):
        return 1
    return -1 if np.all(np.abs(half + mirror) <= eps) else 0


def _scratch(buffers, shape, dtype, tag=""):
    """A buffer of ``shape`` from ``buffers`` (a dict, one per kernel call): the same
    memory for each type and tag, grown when too small. A block's passes make hundreds of
    plane-sized float64 sums and several slabs; fresh memory for each costs page faults
    as large as the arithmetic."""
    size = int(np.prod(shape))
    key = (np.dtype(dtype).str, tag)
    if key not in buffers or buffers[key].size < size:
        buffers[key] = np.empty(size, dtype)
    return buffers[key][:size].reshape(shape)


def _pass2d(img, axis, weights, keep, mode, cval, out, buffers):
    """One ``correlate1d`` along ``axis`` (0 or 1) of a 2-D image, float64 sums, into
    ``out`` (its type: the stored values) at the positions ``keep`` along that axis.

    OpenCV's vertical pass sums an (anti)symmetric kernel's taps in pairs, as scipy does,
    its horizontal pass one tap after the other: a derivative of a Gaussian along x then
    leaves 1e-16 of a flat line's value where scipy's pairs cancel to 0, so it runs
    vertically on the transposed image."""
    w = np.asarray(weights, np.float64)
    anchor = len(w) // 2
    border = _BORDERS[mode]
    if mode == "constant" and cval != 0:  # OpenCV's constant border is 0
        img = _with_cval(img, axis, w, cval)
        keep = slice(keep.start + anchor, keep.stop + anchor)
    if axis == 1 and len(w) > 3 and _symmetry(w) < 0:
        flipped = cv2.transpose(img, dst=_scratch(buffers, img.shape[::-1], img.dtype, "t"))
        acc = cv2.sepFilter2D(flipped, cv2.CV_64F, _ONE, w, anchor=(0, anchor),
                              borderType=border,
                              dst=_scratch(buffers, flipped.shape, np.float64))[keep].T
    elif axis == 1:
        acc = cv2.sepFilter2D(img, cv2.CV_64F, w, _ONE, anchor=(anchor, 0), borderType=border,
                              dst=_scratch(buffers, img.shape, np.float64))[:, keep]
    else:
        acc = cv2.sepFilter2D(img, cv2.CV_64F, _ONE, w, anchor=(0, anchor), borderType=border,
                              dst=_scratch(buffers, img.shape, np.float64))[keep]
    np.copyto(out, acc, casting="unsafe")
    return out


def _few_planes(vol, w, keep, mode, cval, out, buffers):
    """``correlate1d`` along axis 0 at the planes ``keep`` into ``out``, float64 sums of
    whole planes, an (anti)symmetric kernel's taps in pairs as scipy sums them."""
    n, c = vol.shape[0], len(w) // 2
    acc = _scratch(buffers, vol.shape[1:], np.float64, "acc")
    term = _scratch(buffers, vol.shape[1:], np.float64, "term")
    outside = None

    def plane(i):
        nonlocal outside
        if i >= 0:
            return vol[i]
        if outside is None:
            outside = np.full(vol.shape[1:], float(cval))
        return outside

    sign = _symmetry(w)
    combine = np.add if sign > 0 else np.subtract
    for k, z in enumerate(range(keep.start, keep.stop)):
        taps = _indices(n, z + _offsets(len(w)), mode)
        if sign == 0:
            acc[...] = 0.0
            for wj, i in zip(w, taps, strict=True):
                acc += np.multiply(plane(i), wj, out=term, dtype=np.float64)
        else:
            np.multiply(plane(taps[c]), w[c], out=acc, dtype=np.float64)
            for j in range(1, c + 1):
                combine(plane(taps[c + j]), plane(taps[c - j]), out=term, dtype=np.float64)
                acc += np.multiply(term, w[c + j], out=term)
        np.copyto(out[k], acc, casting="unsafe")
    return out


def _zpass(vol, weights, keep, mode, cval, out, buffers):
    """One ``correlate1d`` along axis 0 of a 3-D block at the planes ``keep``, into
    ``out``: a few planes from whole planes, a slab by OpenCV's vertical pass over its
    planes seen as rows (a band of columns at a time, so that the float64 sums stay in
    cache)."""
    w = np.asarray(weights, np.float64)
    if keep.stop - keep.start <= _FEW_PLANES:
        return _few_planes(vol, w, keep, mode, cval, out, buffers)
    n = vol.shape[0]
    rows = np.ascontiguousarray(vol).reshape(n, -1)
    flat = out.reshape(len(out), -1)
    band = max(1024, _ROWS_BYTES // (8 * n))
    for c in range(0, rows.shape[1], band):
        _pass2d(rows[:, c : c + band], 0, w, keep, mode, cval, flat[:, c : c + band], buffers)
    return out


def _plane_passes(vol, group, mode, cval, out, buffers):
    """Passes along y and x (``group``: (plane axis, weights, keep)) plane by plane, while
    the plane is in cache, into ``out``."""
    shapes, shape = [], list(vol.shape[1:])
    for axis, _, keep in group:
        shape[axis] = keep.stop - keep.start
        shapes.append(tuple(shape))
    for k in range(vol.shape[0]):
        plane = vol[k]
        for i, (axis, weights, keep) in enumerate(group):
            target = out[k] if i == len(group) - 1 else _scratch(buffers, shapes[i],
                                                                   out.dtype, i)
            plane = _pass2d(plane, axis, weights, keep, mode, cval, target, buffers)
    return out


def _chain(block, crop, passes, mode, cval, store, buffers, memo=None):
    """scipy's ``correlate1d`` passes ``(axis, weights)`` in this order over a 2-D or 3-D
    ``block``, each summed in float64 and stored as ``store``; the values over ``crop``,
    in a buffer of ``buffers`` that the next chain reuses.

    Each axis is read only as far as its pass reaches from ``crop`` (where that reaches
    past the block, the block's edge is the array's and the mode applies there), the
    axes without a pass are cropped first, each other one once its pass is done. ``memo``
    keeps the z pass's result for chains that begin with the same one."""
    reach = {a: (len(w) // 2, (len(w) - 1) // 2) for a, w in passes}
    box, keep = [], []
    for a, (c, n) in enumerate(zip(crop, block.shape, strict=True)):
        before, after = reach.get(a, (0, 0))
        lo, hi = max(0, c.start - before), min(n, c.stop + after)
        box.append(slice(lo, hi))
        keep.append(slice(c.start - lo, c.stop - lo))
    cur = block[tuple(box)][tuple(slice(None) if a in reach else keep[a]
                                  for a in range(block.ndim))]
    shape = list(cur.shape)
    if cur.ndim == 2:
        shape = [k.stop - k.start for k in keep]
        return _plane_passes(cur[None], [(a, w, keep[a]) for a, w in passes], mode, cval,
                             _scratch(buffers, (1, *shape), store, "chain"), buffers)[0]
    done, step, shared = 0, 0, False
    if memo is not None and passes[0][0] == 0:  # chains that begin with this z pass
        shape[0] = keep[0].stop - keep[0].start
        key = (tuple((b.start, b.stop) for b in box), tuple(passes[0][1]))
        if key not in memo:
            memo[key] = _zpass(cur, passes[0][1], keep[0], mode, cval,
                               np.empty(shape, store), buffers)
        cur, done, shared = memo[key], 1, True
    while done < len(passes):
        step, shared = step + 1, False  # each step writes the buffer its input is not in
        if passes[done][0] == 0:
            shape[0] = keep[0].stop - keep[0].start
            cur = _zpass(cur, passes[done][1], keep[0], mode, cval,
                         _scratch(buffers, shape, store, ("chain", step % 2)), buffers)
            done += 1
            continue
        end = done
        while end < len(passes) and passes[end][0] != 0:
            end += 1
        group = [(a - 1, w, keep[a]) for a, w in passes[done:end]]
        for a, _, k in group:
            shape[a + 1] = k.stop - k.start
        cur = _plane_passes(cur, group, mode, cval,
                            _scratch(buffers, shape, store, ("chain", step % 2)), buffers)
        done = end
    return cur.copy() if shared else cur  # the memo's array stays as it is


def _prepare(block, crop, mode, cval):
    """The block as the kernels take it (1-D as one row), its crop (explicit bounds) and
    the output's float type; None where there is no fast path."""
    if not _usable(block, mode, cval, _DTYPES) or mode not in _BORDERS:
        return None
    if not np.isfinite(cval):
        return None
    crop = tuple(slice(*c.indices(n)[:2]) for c, n in zip(crop, block.shape, strict=True))
    if any(c.stop <= c.start for c in crop):
        return None
    store = np.float64 if block.dtype == np.float64 else np.float32
    if block.ndim == 1:
        return block[None], (slice(0, 1), *crop), store
    return block, crop, store


def _finish(values, block):
    """A 1-D block's values from its one row."""
    return values[0] if block.ndim == 1 else values


def _sum(chains, square=False):
    """The chains' values (each computed as the last is consumed) summed in order in their
    float type, each squared first and the sum's square root taken when ``square``:
    scipy's ``generic_laplace`` and ``generic_gradient_magnitude`` (and the exact Sobel /
    Prewitt magnitude, which sums the squares the same way)."""
    total = None
    for values in chains:  # each a buffer that the next chain overwrites
        if total is None:
            total = values * values if square else values.copy()
            continue
        if square:
            np.multiply(values, values, out=values)
        total += values
    return np.sqrt(total, out=total) if square else total


def _derivative(smooth):
    def kernel(block, crop, axis, mode, cval, axes=None):
        prepared = _prepare(block, crop, mode, cval)
        if prepared is None:
            return None
        f, c, store = prepared
        shift = f.ndim - block.ndim  # 1-D blocks run as one row
        buffers: dict = {}

        def term(i):  # scipy: the difference along i, then the smoothing along the others
            passes = [(i, _DIFF)] + [(a, smooth) for a in range(shift, f.ndim) if a != i]
            return _chain(f, c, passes, mode, cval, store, buffers)

        if axis != "magnitude":
            if axes is None or axis not in axes or len(axes) != block.ndim:
                return None  # the engine does not say which index the letter is
            return _finish(term(axes.index(axis) + shift), block)
        return _finish(_sum((term(i) for i in range(shift, f.ndim)), square=True), block)

    return kernel


#: scipy.ndimage.sobel along an axis (a letter of ``axes``), or the gradient magnitude
sobel = _derivative(_SOBEL)
#: scipy.ndimage.prewitt along an axis (a letter of ``axes``), or the gradient magnitude
prewitt = _derivative(_PREWITT)


def laplace(block, crop, mode, cval, terms=None):
    """scipy.ndimage.laplace over ``crop``: [1, -2, 1] along each axis, stored, summed in
    ``terms``' order (scipy's ``axes``; the array's by default) in the output's float
    type."""
    prepared = _prepare(block, crop, mode, cval)
    if prepared is None:
        return None
    f, c, store = prepared
    buffers: dict = {}
    shift = f.ndim - block.ndim
    chains = (_chain(f, c, [(i + shift, _SECOND)], mode, cval, store, buffers)
              for i in (range(block.ndim) if terms is None else terms))
    return _finish(_sum(chains), block)


def _gaussian_terms(block, crop, sigma, truncate, mode, cval, order, terms=None):
    """Each axis's term of scipy's ``generic_laplace`` / ``generic_gradient_magnitude``:
    ``gaussian_filter`` with ``order`` along that axis, axes of sigma <= 1e-15 skipped
    (as scipy skips them); a generator, or None where there is no fast path."""
    prepared = _prepare(block, crop, mode, cval)
    sigma = tuple(float(s) for s in sigma)
    if prepared is None or len(sigma) != block.ndim:
        return None
    f, c, store = prepared
    shift = f.ndim - block.ndim
    buffers: dict = {}
    memo: dict = {}

    def chains():
        for i in range(block.ndim) if terms is None else terms:
            passes = [(a + shift, gaussian_weights(s, order if a == i else 0, truncate))
                      for a, s in enumerate(sigma) if s > 1e-15]
            yield (_chain(f, c, passes, mode, cval, store, buffers, memo) if passes
                   else f[c].astype(store))

    return chains()


def gaussian_laplace(block, crop, sigma, truncate, mode, cval, terms=None):
    """scipy.ndimage.gaussian_laplace over ``crop``: the second derivative of a Gaussian
    along each axis, summed in ``terms``' order in the output's float type."""
    terms = _gaussian_terms(block, crop, sigma, truncate, mode, cval, 2, terms)
    return None if terms is None else _finish(_sum(terms), block)


def gaussian_gradient_magnitude(block, crop, sigma, truncate, mode, cval, terms=None,
                                axes=None, gradient_axes=None):
    """scipy.ndimage.gaussian_gradient_magnitude over ``crop``: the derivatives along
    ``terms`` (or ``gradient_axes``, letters of ``axes``), smoothed along every axis."""
    if gradient_axes:
        terms = [axes.index(a) for a in gradient_axes]
    terms = _gaussian_terms(block, crop, sigma, truncate, mode, cval, 1, terms)
    return None if terms is None else _finish(_sum(terms, square=True), block)

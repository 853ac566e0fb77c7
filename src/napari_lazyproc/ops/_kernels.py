"""Fast CPU kernels for the "fast" precision: OpenCV's float32 separable filters.

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
#: OpenCV is fastest on planes of up to this many voxels per call
_SUPPORTED = (np.uint8, np.uint16, np.int16, np.float32)


def available() -> bool:
    return cv2 is not None


def gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """scipy's 1-D Gaussian kernel (radius ``int(truncate * sigma + 0.5)``)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 / (float(sigma) ** 2) * x * x)
    return w / w.sum()


def _indices(n: int, lo: int, hi: int, radius: int, mode: str) -> np.ndarray:
    """Input index of each tap for outputs lo:hi along an axis of length n, as scipy's
    ``mode`` extends the edge; -1 marks a constant (cval) sample."""
    idx = np.arange(lo - radius, hi + radius)
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if mode == "constant":
        return np.where((idx < 0) | (idx >= n), -1, idx)
    period = 2 * n if mode == "reflect" else max(1, 2 * n - 2)
    m = np.mod(idx, period)
    if mode == "reflect":
        return np.where(m < n, m, period - 1 - m)
    return np.where(m < n, m, period - m)


def _pass_first_axis(f: np.ndarray, weights: np.ndarray, lo: int, hi: int, mode: str,
                     cval: float, integer: bool) -> np.ndarray:
    """The 1-D pass along axis 0 at outputs lo:hi only: a weighted sum of whole planes."""
    radius = len(weights) // 2
    idx = _indices(f.shape[0], lo, hi, radius, mode)
    out = np.zeros((hi - lo, *f.shape[1:]), np.float32)
    for k in range(hi - lo):
        for j, w in enumerate(weights):
            i = idx[k + j]
            if i < 0:
                out[k] += np.float32(w * cval)
            else:
                out[k] += np.float32(w) * f[i]
    return np.trunc(out) if integer else out


def _pass_plane(plane: np.ndarray, kx: np.ndarray, ky: np.ndarray, border: int,
                integer: bool) -> np.ndarray:
    """The passes along y then x of one plane (float32), as scipy does them."""
    if integer:  # scipy truncates to the integer type after each axis
        tmp = cv2.sepFilter2D(plane, cv2.CV_32F, np.ones(1, np.float32), ky, borderType=border)
        np.trunc(tmp, out=tmp)
        out = cv2.sepFilter2D(tmp, cv2.CV_32F, kx, np.ones(1, np.float32), borderType=border)
        return np.trunc(out, out=out)
    return cv2.sepFilter2D(plane, cv2.CV_32F, kx, ky, borderType=border)


def gaussian(block, crop, sigma, truncate, mode, cval):
    """scipy.ndimage.gaussian_filter over ``crop`` of a 1-, 2- or 3-D block, in float32."""
    if (cv2 is None or not isinstance(block, np.ndarray) or block.dtype not in _SUPPORTED
            or (mode == "constant" and cval != 0) or block.ndim > 3):
        return None
    integer = block.dtype.kind in "iu"
    border = _BORDERS[mode]
    w = [gaussian_weights(s, truncate).astype(np.float32) if s > 1e-15
         else np.ones(1, np.float32) for s in sigma]
    f = block if block.dtype == np.float32 else block.astype(np.float32)
    if block.ndim == 1:
        f, crop, w = f[None], (slice(0, 1), *crop), [np.ones(1, np.float32), *w]
    if f.ndim == 3:  # z first, at the planes asked for only
        f = _pass_first_axis(f, w[0].astype(np.float64), crop[0].start, crop[0].stop, mode,
                             cval, integer)
        planes, (cy, cx), (ky, kx) = f, crop[1:], w[1:]
    else:
        planes, (cy, cx), (ky, kx) = f[None], crop, w
    out = np.empty((planes.shape[0], cy.stop - cy.start, cx.stop - cx.start), np.float32)
    for k, plane in enumerate(planes):
        out[k] = _pass_plane(np.ascontiguousarray(plane), kx, ky, border, integer)[cy, cx]
    out = out if block.ndim == 3 else out[0]
    if block.ndim == 1:
        out = out[0]
    if integer:
        info = np.iinfo(block.dtype)
        return np.clip(out, info.min, info.max).astype(block.dtype)
    return out

"""cupyx.scipy.ndimage with scipy's arithmetic for the correlation filters.

cupyx sums a float32 (or integer) input in float32, where scipy sums every 1-D pass in
double and stores it in the output type between passes. On a band-pass or a derivative,
whose values are small beside the input's, float32 sums miss the fast precision contract
(measured on an H100: difference of Gaussians 6e-6, Laplacian and gradient magnitude of a
Gaussian 1.4e-6 of the largest magnitude, against 1e-6 allowed). Here each pass reads its
input as float64, as scipy does, and stores in the output type, and the multi-axis filters
are scipy's own sequences of passes, so the results are scipy's up to rare rounding ties.

Every other name is cupyx.scipy.ndimage's (rank filters, morphology, labels are exact
there already). CuPy is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .device import array_module


def _cndi():
    import cupyx.scipy.ndimage as cndi

    return cndi


def _per_axis(value, ndim: int) -> list:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value] * ndim
    if len(value) != ndim:
        raise RuntimeError("sequence argument must have length equal to input rank")
    return list(value)


def _dtype(input, output) -> np.dtype:
    return np.dtype(input.dtype if output is None else output)


def _f64(input):
    return input if input.dtype == np.float64 else input.astype(np.float64)


def _gaussian_weights(sigma: float, order: int, radius: int) -> np.ndarray:
    """scipy's ``_gaussian_kernel1d`` reversed: the weights its pass correlates with."""
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi = phi / phi.sum()
    q = np.zeros(order + 1)
    q[0] = 1
    deriv = np.diag(np.arange(1, order + 1), 1) + np.diag(np.ones(order) / -(sigma * sigma), -1)
    for _ in range(order):
        q = deriv.dot(q)
    return ((x[:, None] ** np.arange(order + 1)).dot(q) * phi)[::-1]


def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0,
                      truncate=4.0, *, radius=None):
    """scipy.ndimage.gaussian_filter1d on the device, summed in double as scipy sums."""
    if radius is not None:  # cupyx has no radius: scipy's own correlation with its weights
        return _cndi().correlate1d(_f64(input), _gaussian_weights(float(sigma), int(order),
                                                                  int(radius)),
                                   axis=axis, output=_dtype(input, output), mode=mode,
                                   cval=cval)
    return _cndi().gaussian_filter1d(_f64(input), sigma, axis=axis, order=order,
                                     output=_dtype(input, output), mode=mode, cval=cval,
                                     truncate=truncate)


def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """scipy.ndimage.uniform_filter1d on the device, summed in double as scipy sums."""
    return _cndi().uniform_filter1d(_f64(input), size, axis=axis, output=_dtype(input, output),
                                    mode=mode, cval=cval, origin=origin)


def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0,
                    *, radius=None):
    """scipy.ndimage.gaussian_filter on the device: one double pass per axis whose sigma is
    above 1e-15, each stored in the output type, in axis order (scipy's sequence)."""
    nd = input.ndim
    dtype = _dtype(input, output)
    cur = input
    for axis, (s, o, m, r) in enumerate(zip(_per_axis(sigma, nd), _per_axis(order, nd),
                                            _per_axis(mode, nd), _per_axis(radius, nd),
                                            strict=True)):
        if s > 1e-15:
            cur = gaussian_filter1d(cur, s, axis, o, dtype, m, cval, truncate, radius=r)
    return cur.astype(dtype, copy=cur is input)


def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0):
    """scipy.ndimage.uniform_filter on the device: one double pass per axis of size > 1."""
    nd = input.ndim
    dtype = _dtype(input, output)
    cur = input
    for axis, (n, m, o) in enumerate(zip(_per_axis(size, nd), _per_axis(mode, nd),
                                         _per_axis(origin, nd), strict=True)):
        if n > 1:
            cur = uniform_filter1d(cur, int(n), axis, dtype, m, cval, o)
    return cur.astype(dtype, copy=cur is input)


def _derivatives(input, sigma, order, output, mode, cval, truncate):
    """Each axis's Gaussian derivative of ``order`` along it, in the output type."""
    nd = input.ndim
    dtype = _dtype(input, output)
    modes = _per_axis(mode, nd)
    for axis in range(nd):
        orders = [0] * nd
        orders[axis] = order
        yield gaussian_filter(input, sigma, orders, dtype, modes[axis], cval, truncate)


def gaussian_laplace(input, sigma, output=None, mode="reflect", cval=0.0, truncate=4.0):
    """scipy.ndimage.gaussian_laplace on the device: second derivatives summed in the output
    type, axis by axis (scipy's generic_laplace)."""
    total = None
    for term in _derivatives(input, sigma, 2, output, mode, cval, truncate):
        total = term if total is None else total.__iadd__(term)
    return total


def gaussian_gradient_magnitude(input, sigma, output=None, mode="reflect", cval=0.0,
                                truncate=4.0):
    """scipy.ndimage.gaussian_gradient_magnitude on the device: squares of the first
    derivatives summed in the output type, then the square root (scipy's sequence)."""
    total = None
    for term in _derivatives(input, sigma, 1, output, mode, cval, truncate):
        term *= term
        total = term if total is None else total.__iadd__(term)
    xp = array_module(total)
    return xp.sqrt(total, out=total) if total.dtype.kind == "f" else xp.sqrt(total).astype(
        total.dtype)


def __getattr__(name: str):
    return getattr(_cndi(), name)

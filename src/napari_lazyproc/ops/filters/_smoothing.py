"""Smoothing and rank filters: scipy.ndimage on each block, halo from the parameters."""

from __future__ import annotations

import numpy as np

from ...backend import ndimage_for
from ..engine._nan_order import every_axis, rank_history
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import (
    BOX_SIZE,
    CVAL,
    GAUSSIAN_RADIUS,
    MODE,
    MODE_PER_AXIS,
    ORDER,
    ORIGIN,
    SIGMA,
    SIZE,
    TRUNCATE,
    axis_mode,
    gaussian_halo,
    half,
    origin_check,
    output_dtype,
    window_halo,
)
from ..kernels import _rank as _rank_kernels
from ..kernels import _separable as _kernels


def _radius_kw(radius, i=None) -> dict:
    """scipy's ``radius=``, passed only when given (older CuPy has none)."""
    if radius is None:
        return {}
    return {"radius": radius if i is None else int(radius[i])}


def _gaussian(b, sigma, order, truncate, radius, mode, cval, output=None):
    return ndimage_for(b).gaussian_filter(b, sigma, order=order, output=output_dtype(output),
                                          mode=mode, cval=cval, truncate=truncate,
                                          **_radius_kw(radius))


def _gaussian_1d(b, i, sigma, order, truncate, radius, mode, cval, output=None):
    if sigma[i] <= 1e-15:  # scipy skips such axes
        return b
    return ndimage_for(b).gaussian_filter1d(b, sigma[i], axis=i, order=int(order[i]),
                                            output=output_dtype(output),
                                            mode=axis_mode(mode, i), cval=cval,
                                            truncate=truncate, **_radius_kw(radius, i))


def _gaussian_1d_at(b, i, lo, hi, sigma, order, truncate, radius, mode, cval, output=None):
    """The pass along axis ``i`` at outputs ``lo:hi`` only, or None to use scipy's pass.

    For one plane of a 3-D slab scipy's pass computes every plane of the slab; this
    computes the planes asked for with scipy's arithmetic (symmetric kernel, pairs summed
    from the outside in, in double, then cast), so the result is bitwise the same. Only
    where the whole kernel lies inside the block, so the boundary mode plays no part.
    """
    s = float(sigma[i])
    radius = int(truncate * s + 0.5) if radius is None else int(radius[i])
    if hi <= lo and isinstance(b, np.ndarray):  # no outputs asked: nothing to stack
        return np.empty(b.shape[:i] + (0,) + b.shape[i + 1:], b.dtype)
    if (not isinstance(b, np.ndarray) or s <= 1e-15 or hi - lo > 4 or output is not None
            or int(order[i]) != 0
            or lo - radius < 0 or hi + radius > b.shape[i] or b.dtype.kind not in "uif"):
        return None
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (s * s) * x**2)
    weights = weights / weights.sum()
    lines = np.moveaxis(b, i, 0)
    out = []
    for c in range(lo, hi):
        acc = lines[c].astype(np.float64) * weights[radius]
        for j in range(radius, 0, -1):
            acc += (lines[c - j].astype(np.float64) + lines[c + j]) * weights[radius - j]
        out.append(acc.astype(b.dtype))
    return np.moveaxis(np.stack(out), 0, i)


def _rank_1d(name):
    def run(b, i, size, mode, cval, output=None, origin=None):
        if size[i] <= 1:  # scipy skips such axes
            return b
        at = {} if origin is None else {"origin": int(origin[i])}
        return getattr(ndimage_for(b), name)(b, int(size[i]), axis=i,
                                             output=output_dtype(output),
                                             mode=axis_mode(mode, i), cval=cval, **at)

    return run


def _running_sum(dtype, params, n):
    """scipy's ``uniform_filter1d`` keeps one running sum (in double) along each line, so
    an output's rounding depends on every value before it, unless every sum is exact:
    integers of up to 32 bits (window sums far below 2**53). Axes of size 1 have no pass."""
    dtypes = [np.dtype(dtype)]
    if params.get("output") is not None:
        dtypes.append(np.dtype(params["output"]))
    inexact = any(d.kind not in "iub" or d.itemsize > 4 for d in dtypes)
    return tuple(inexact and int(s) > 1 for s in params["size"])


def _count(p) -> int:
    return int(np.prod(p["size"]))


def _percentile_rank(p) -> int:
    """scipy's rank of a percentile in a box."""
    q, count = p["percentile"], _count(p)
    q = q + 100.0 if q < 0 else q
    return count - 1 if q == 100.0 else int(float(count) * q / 100.0)


def _centred(kernel):
    """A fast kernel of a centred window: None (scipy's path) for another origin."""
    def run(block, crop, origin, size, **params):
        if any(int(o) for o in origin) or min(size) < 1:
            return None
        return kernel(block, crop, size=size, **params)

    return run


def _rank(name):
    def run(b, size, mode, cval, output=None, **extra):
        return getattr(ndimage_for(b), name)(b, size=size, output=output_dtype(output),
                                             mode=mode, cval=cval, **extra)

    return run


register(Op(
    "gaussian", "smoothing", _gaussian,
    (SIGMA, ORDER, TRUNCATE, GAUSSIAN_RADIUS, MODE_PER_AXIS, CVAL),
    halo=gaussian_halo, separable=_gaussian_1d,
    separable_at=_gaussian_1d_at, fast=_kernels.gaussian,
    description="Gaussian smoothing, or its derivatives with order= "
                "(scipy.ndimage.gaussian_filter)",
    output=True, complex_input=True,
))
register(Op(
    "median", "smoothing", _rank("median_filter"), (SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), fast=_rank_kernels.median,
    nan_history=lambda p, n: rank_history(_count(p) // 2, _count(p), n),
    description="median of a box (scipy.ndimage.median_filter)",
    output=True, complex_input=False,
))
register(Op(
    "uniform", "smoothing", _rank("uniform_filter"), (BOX_SIZE, MODE_PER_AXIS, CVAL, ORIGIN),
    halo=lambda p, n: window_halo(p["size"], p["origin"]),
    check=lambda p, axes: origin_check("uniform", p["origin"], p["size"], axes),
    separable=_rank_1d("uniform_filter1d"), prefix=_running_sum, fast=_kernels.uniform,
    description="mean of a box (scipy.ndimage.uniform_filter)",
    output=True, complex_input=True,
))
for _name, _text in (("minimum", "minimum of a box (scipy.ndimage.minimum_filter)"),
                     ("maximum", "maximum of a box (scipy.ndimage.maximum_filter)")):
    register(Op(
        _name, "smoothing", _rank(f"{_name}_filter"), (BOX_SIZE, MODE_PER_AXIS, CVAL, ORIGIN),
        halo=lambda p, n: window_halo(p["size"], p["origin"]),
        check=lambda p, axes, name=_name: origin_check(name, p["origin"], p["size"], axes),
        separable=_rank_1d(f"{_name}_filter1d"), fast=_centred(getattr(_rank_kernels, _name)),
        nan_history=every_axis,
        description=_text, output=True, complex_input=False,
    ))
register(Op(
    "percentile", "smoothing",
    lambda b, percentile, size, mode, cval, output=None: ndimage_for(b).percentile_filter(
        b, percentile, size=size, output=output_dtype(output), mode=mode, cval=cval),
    (Param("percentile", float, 50.0, min=-100, max=100,
           help="percentile in [0, 100] (negative: 100 more, as in scipy)"),
     SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), fast=_rank_kernels.percentile,
    nan_history=lambda p, n: rank_history(_percentile_rank(p), _count(p), n),
    description="a percentile of a box (scipy.ndimage.percentile_filter)",
    output=True, complex_input=False,
))

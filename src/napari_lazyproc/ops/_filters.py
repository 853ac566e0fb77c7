"""Smoothing, rank and edge filters: scipy.ndimage on each block, halo from the parameters."""

from __future__ import annotations

import numpy as np

from ..backend import array_module, ndimage_for
from . import _kernels, _kernels_edges
from ._common import (
    CVAL,
    MODE,
    NEAREST,
    SIGMA,
    SIZE,
    TRUNCATE,
    as_float,
    float_dtype,
    gaussian_radius,
    half,
    output_dtype,
)
from ._params import Param
from ._registry import Op, register


def _gaussian(b, sigma, truncate, mode, cval, output=None):
    return ndimage_for(b).gaussian_filter(b, sigma, output=output_dtype(output), mode=mode,
                                          cval=cval, truncate=truncate)


def _gaussian_1d(b, i, sigma, truncate, mode, cval, output=None):
    if sigma[i] <= 1e-15:  # scipy skips such axes
        return b
    return ndimage_for(b).gaussian_filter1d(b, sigma[i], axis=i, output=output_dtype(output),
                                            mode=mode, cval=cval, truncate=truncate)


def _gaussian_1d_at(b, i, lo, hi, sigma, truncate, mode, cval, output=None):
    """The pass along axis ``i`` at outputs ``lo:hi`` only, or None to use scipy's pass.

    For one plane of a 3-D slab scipy's pass computes every plane of the slab; this
    computes the planes asked for with scipy's arithmetic (symmetric kernel, pairs summed
    from the outside in, in double, then cast), so the result is bitwise the same. Only
    where the whole kernel lies inside the block, so the boundary mode plays no part.
    """
    s = float(sigma[i])
    radius = int(truncate * s + 0.5)
    if hi <= lo and isinstance(b, np.ndarray):  # no outputs asked: nothing to stack
        return np.empty(b.shape[:i] + (0,) + b.shape[i + 1:], b.dtype)
    if (not isinstance(b, np.ndarray) or s <= 1e-15 or hi - lo > 4 or output is not None
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
    def run(b, i, size, mode, cval, output=None):
        if size[i] <= 1:  # scipy skips such axes
            return b
        return getattr(ndimage_for(b), name)(b, int(size[i]), axis=i,
                                             output=output_dtype(output), mode=mode, cval=cval)

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


def _rank(name):
    def run(b, size, mode, cval, output=None, **extra):
        return getattr(ndimage_for(b), name)(b, size=size, output=output_dtype(output),
                                             mode=mode, cval=cval, **extra)

    return run


register(Op(
    "gaussian", "smoothing", _gaussian, (SIGMA, TRUNCATE, MODE, CVAL),
    halo=lambda p, n: gaussian_radius(p["sigma"], p["truncate"]), separable=_gaussian_1d,
    separable_at=_gaussian_1d_at, fast=_kernels.gaussian,
    description="Gaussian smoothing (scipy.ndimage.gaussian_filter)",
    output=True,
))
register(Op(
    "median", "smoothing", _rank("median_filter"), (SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), fast=_kernels.median,
    description="median of a box (scipy.ndimage.median_filter)",
    output=True,
))
register(Op(
    "uniform", "smoothing", _rank("uniform_filter"), (SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), separable=_rank_1d("uniform_filter1d"),
    prefix=_running_sum, fast=_kernels.uniform,
    description="mean of a box (scipy.ndimage.uniform_filter)",
    output=True,
))
register(Op(
    "minimum", "smoothing", _rank("minimum_filter"), (SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), separable=_rank_1d("minimum_filter1d"),
    fast=_kernels.minimum, description="minimum of a box (scipy.ndimage.minimum_filter)",
    output=True,
))
register(Op(
    "maximum", "smoothing", _rank("maximum_filter"), (SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), separable=_rank_1d("maximum_filter1d"),
    fast=_kernels.maximum, description="maximum of a box (scipy.ndimage.maximum_filter)",
    output=True,
))
register(Op(
    "percentile", "smoothing",
    lambda b, percentile, size, mode, cval, output=None: ndimage_for(b).percentile_filter(
        b, percentile, size=size, output=output_dtype(output), mode=mode, cval=cval),
    (Param("percentile", float, 50.0, min=0, max=100, help="percentile in [0, 100]"),
     SIZE, MODE, CVAL),
    halo=lambda p, n: half(p["size"]), fast=_kernels.percentile,
    description="a percentile of a box (scipy.ndimage.percentile_filter)",
    output=True,
))

# ------------------------------------------------------------------------------- edges

AXIS = Param("axis", str, "magnitude", choices=("magnitude", "z", "y", "x"),
             help="derivative along one spatial axis, or the gradient magnitude")


def _check_axis(params, axes):
    if params["axis"] != "magnitude" and params["axis"] not in axes:
        raise ValueError(f"axis must be 'magnitude' or one of the spatial axes {axes!r} "
                         f"(got {params['axis']!r})")


def _derivative(name):
    """scipy's derivative along one axis; the magnitude: the square root of the sum of
    their squares, summed in the output's float dtype (float64 for an integer output)."""

    def run(b, axis, mode, cval, axes, output=None):
        ndi = ndimage_for(b)
        fn = getattr(ndi, name)
        f, out = (as_float(b), None) if output is None else (b, output_dtype(output))
        if axis != "magnitude":
            return fn(f, axis=axes.index(axis), output=out, mode=mode, cval=cval)
        dtype = np.dtype(f.dtype if out is None else out)
        acc = dtype if dtype.kind == "f" else np.dtype(np.float64)
        total = array_module(b).zeros(b.shape, acc)
        for i in range(b.ndim):
            total += fn(f, axis=i, output=out, mode=mode, cval=cval).astype(acc) ** 2
        return (total ** 0.5).astype(dtype, copy=False)

    return run


for _name, _fn in (("sobel", "sobel"), ("prewitt", "prewitt")):
    register(Op(
        _name, "edges", _derivative(_fn), (AXIS, MODE, CVAL),
        halo=lambda p, n: (1,) * n, dtype=float_dtype,
        needs_axes=True, check=_check_axis, fast=getattr(_kernels_edges, _name),
        description=f"{_name.title()} derivative along an axis, or the gradient magnitude "
                    f"(sqrt of the sum of squares of scipy.ndimage.{_fn} along each axis)",
        output=True,
    ))

register(Op(
    "laplace", "edges",
    lambda b, mode, cval, output=None: ndimage_for(b).laplace(
        as_float(b) if output is None else b, output=output_dtype(output), mode=mode,
        cval=cval),
    (MODE, CVAL), halo=lambda p, n: (1,) * n, dtype=float_dtype, fast=_kernels_edges.laplace,
    description="discrete Laplacian (scipy.ndimage.laplace)",
    output=True,
))


def _gaussian_derivative(name):
    def run(b, sigma, truncate, mode, cval, output=None):
        return getattr(ndimage_for(b), name)(as_float(b) if output is None else b, sigma,
                                             output=output_dtype(output), mode=mode,
                                             cval=cval, truncate=truncate)

    return run


for _name, _text in (("gaussian_laplace", "Laplacian of Gaussian, LoG"),
                     ("gaussian_gradient_magnitude", "gradient magnitude of a Gaussian")):
    register(Op(
        _name, "edges", _gaussian_derivative(_name), (SIGMA, TRUNCATE, MODE, CVAL),
        halo=lambda p, n: gaussian_radius(p["sigma"], p["truncate"]), dtype=float_dtype,
        fast=getattr(_kernels_edges, _name), description=f"{_text} (scipy.ndimage.{_name})",
        output=True,
    ))


def _dog(b, low_sigma, high_sigma, truncate, mode, cval):
    ndi, f = ndimage_for(b), as_float(b)
    low = ndi.gaussian_filter(f, low_sigma, mode=mode, cval=cval, truncate=truncate)
    return low - ndi.gaussian_filter(f, high_sigma, mode=mode, cval=cval, truncate=truncate)


def _check_dog(params, axes):
    if any(h <= lo for lo, h in zip(params["low_sigma"], params["high_sigma"], strict=False)):
        raise ValueError(f"difference_of_gaussians: high_sigma {params['high_sigma']} must be "
                         f"greater than low_sigma {params['low_sigma']} on every axis")


register(Op(
    "difference_of_gaussians", "edges", _dog,
    (Param("low_sigma", float, 1.0, min=0, min_inclusive=False, per_axis=True, quantity="length"),
     Param("high_sigma", float, 2.0, min=0, min_inclusive=False, per_axis=True, quantity="length"),
     TRUNCATE, NEAREST, CVAL),
    halo=lambda p, n: gaussian_radius(p["high_sigma"], p["truncate"]), dtype=float_dtype,
    check=_check_dog, fast=_kernels.difference_of_gaussians,
    description="band-pass: Gaussian(low_sigma) - Gaussian(high_sigma), in float",
))

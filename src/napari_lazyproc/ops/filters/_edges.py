"""Edge filters (derivatives, Laplacians, Gaussian gradients, difference of Gaussians):
scipy.ndimage on each block, halo from the parameters."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ...io import MORE_SPATIAL_AXES, SPATIAL_AXES
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import (
    CVAL,
    MODE_PER_AXIS,
    NEAREST,
    SIGMA,
    TRUNCATE,
    as_float,
    float_dtype,
    gaussian_halo,
    gaussian_radius,
    output_dtype,
)
from ..kernels import _edges as _kernels_edges
from ..kernels import _separable as _kernels

AXIS = Param("axis", str, "magnitude", choices=("magnitude", *SPATIAL_AXES,
                                                  *MORE_SPATIAL_AXES[:3]),
             help="derivative along one spatial axis, or the gradient magnitude")


def _check_axis(params, axes):
    if not axes:
        raise ValueError("a 0-D input has no axis to differentiate along (scipy.ndimage "
                         "refuses it too)")
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
        _name, "edges", _derivative(_fn), (AXIS, MODE_PER_AXIS, CVAL),
        halo=lambda p, n: (1,) * n, dtype=float_dtype,
        needs_axes=True, check=_check_axis, fast=getattr(_kernels_edges, _name),
        complex_input=lambda p: p["axis"] != "magnitude",
        description=f"{_name.title()} derivative along an axis, or the gradient magnitude "
                    f"(sqrt of the sum of squares of scipy.ndimage.{_fn} along each axis)",
        output=True,
    ))

def _terms(terms, mode) -> dict:
    """scipy's ``axes`` (the order its terms are summed in) and its modes in that order,
    where the terms are not in the array's order (CuPy's functions lack ``axes``)."""
    terms = list(terms)
    if terms == sorted(terms):
        return {"mode": mode}
    modes = mode if isinstance(mode, str) else [mode[t] for t in terms]
    return {"mode": modes, "axes": tuple(terms)}


register(Op(
    "laplace", "edges",
    lambda b, mode, cval, terms, output=None: ndimage_for(b).laplace(
        as_float(b) if output is None else b, output=output_dtype(output), cval=cval,
        **_terms(terms, mode)),
    (MODE_PER_AXIS, CVAL), halo=lambda p, n: (1,) * n, dtype=float_dtype,
    fast=_kernels_edges.laplace, description="discrete Laplacian (scipy.ndimage.laplace)",
    output=True, complex_input=True, ordered_terms=True,
))


def _gaussian_derivative(name):
    def run(b, sigma, truncate, mode, cval, terms, output=None, axes=None,
            gradient_axes=None):
        f = as_float(b) if output is None else b
        if gradient_axes:  # scipy 1.17: the derivatives along these, smoothed along all
            return _gradient_of(f, sigma, [axes.index(a) for a in gradient_axes], mode,
                                cval, truncate, output_dtype(output) or f.dtype)
        return getattr(ndimage_for(b), name)(f, sigma, output=output_dtype(output),
                                             cval=cval, truncate=truncate,
                                             **_terms(terms, mode))

    return run


def _gradient_of(f, sigma, terms, mode, cval, truncate, dtype):
    """scipy 1.17's gaussian_gradient_magnitude with ``axes`` a subset, as its
    ``generic_gradient_magnitude`` computes it: a ``gaussian_filter`` of every axis with
    order 1 along each of ``terms``, squared and summed in that order (the i-th mode for
    every axis of the i-th term), then the square root."""
    ndi, xp = ndimage_for(f), array_module(f)
    modes = [mode] * len(terms) if isinstance(mode, str) else [mode[t] for t in terms]

    def derivative(axis, mode, dtype):
        order = [0] * f.ndim
        order[axis] = 1
        return ndi.gaussian_filter(f, sigma, order, output=dtype, mode=mode, cval=cval,
                                   truncate=truncate)

    out = derivative(terms[0], modes[0], dtype)
    xp.multiply(out, out, out)
    for t, m in zip(terms[1:], modes[1:], strict=True):
        tmp = derivative(t, m, out.dtype)
        xp.multiply(tmp, tmp, tmp)
        out += tmp
    xp.sqrt(out, out, casting="unsafe")
    return out


GRADIENT_AXES = Param("gradient_axes", str, None, optional=True,
                      help="the axes whose derivatives enter the magnitude, in the order "
                           "summed (default: every axis, in axes' order); the smoothing "
                           "runs along every axis, as scipy 1.17 does with axes a subset")


def _check_gradient(params, axes):
    given = params.get("gradient_axes")
    if given and (set(given) - set(axes) or len(set(given)) != len(given)):
        raise ValueError(f"gaussian_gradient_magnitude: gradient_axes {given!r} must be "
                         f"distinct letters of the spatial axes {axes!r}")


for _name, _text in (("gaussian_laplace", "Laplacian of Gaussian, LoG"),
                     ("gaussian_gradient_magnitude", "gradient magnitude of a Gaussian")):
    _ggm = _name == "gaussian_gradient_magnitude"
    register(Op(
        _name, "edges", _gaussian_derivative(_name),
        (SIGMA, TRUNCATE, MODE_PER_AXIS, CVAL, *((GRADIENT_AXES,) if _ggm else ())),
        halo=gaussian_halo, dtype=float_dtype, needs_axes=_ggm,
        check=_check_gradient if _ggm else None,
        fast=getattr(_kernels_edges, _name), description=f"{_text} (scipy.ndimage.{_name})",
        output=True, complex_input=True, modes_per_term=True, ordered_terms=True,
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

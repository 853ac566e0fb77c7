"""Projections along one axis: maximum, mean, minimum, sum and standard deviation.

``project`` is an operation with a ``Geometry``: its frame is the one axis it projects
along (z: per time point; t: per z plane; c), which the output drops (or keeps with size
1, ``keepdims``), and an output region needs the same region of the other axes and all
of that axis. The values are numpy's on the whole array, in numpy's dtype: ``np.max`` and
``np.min`` keep the input's, ``np.sum`` accumulates in numpy's default (uint64 for
unsigned integers, int64 for signed ones and bool), ``np.mean`` and ``np.std`` give
float64 for integers and the input's float type otherwise. numpy reduces an axis that is
not the last one of a C-ordered array by adding its planes in order onto zero; so do we,
plane by plane, whatever the region's shape, so sums, means and standard deviations are
bitwise numpy's (numpy itself sums a small block differently, pairwise, when the axis is
the block's only long one; so for an array whose axes after the projected one all have
length 1, a column rather than an image, numpy's float mean and std are 1e-7 from ours).
"""

from __future__ import annotations

import warnings

import numpy as np

from ...backend import array_module
from ..engine._params import Param
from ..engine._registry import Geometry, Op, register

METHODS = ("max", "mean", "min", "sum", "std")
#: the axes a projection runs along: any but y and x (a plane's own axes)
AXES = ("z", "t", "c")


def projection_dtype(dtype, params) -> np.dtype:
    """The dtype numpy gives ``np.<method>(a, axis=...)`` for an array of ``dtype``."""
    with np.errstate(all="ignore"):
        probe = getattr(np, params["method"])(np.zeros((1, 1), dtype), axis=0)
    return np.dtype(probe.dtype)


def _accumulate(planes, dtype, xp):
    """Planes added in order onto zero in ``dtype``, as numpy's reduction does."""
    total = None
    for plane in planes:
        if total is None:
            total = xp.zeros(plane.shape, dtype)
        xp.add(total, plane, out=total)
    return total


def _divide(total, n: int, xp):
    """``total / n`` in place. numpy divides by a ``np.intp`` count (for float32 sums, in
    double, then rounded); CuPy (the fast contract) by the count as it comes."""
    if xp is np:
        return np.true_divide(total, np.intp(n), out=total, casting="unsafe")
    total /= n
    return total


def _mean(planes, n, dtype, xp):
    """``np.mean``: the sum (float64 for integers, float32 for float16), divided by the
    count as a ``np.intp``, as ``numpy._core._methods._mean`` does."""
    kind = np.dtype(dtype).kind
    acc = np.float64 if kind in "biu" else np.float32 if dtype == np.float16 else dtype
    total = _divide(_accumulate(planes, acc, xp), n, xp)
    return total.astype(np.float16) if dtype == np.float16 else total


def _std(planes, n, dtype, xp):
    """``np.std`` (ddof 0): the mean, then the squared deviations summed in order,
    divided by the count and square-rooted, as ``numpy._core._methods._var`` does."""
    acc = np.float64 if np.dtype(dtype).kind in "biu" else dtype
    mean = _divide(_accumulate(planes, acc, xp), n, xp)
    total = None
    for plane in planes:
        x = xp.subtract(plane, mean)
        x = xp.multiply(x, x, out=x)
        if total is None:
            total = xp.zeros(x.shape, x.dtype)
        xp.add(total, x, out=total)
    return xp.sqrt(_divide(total, n, xp), out=total)


def _extreme(planes, ufunc):
    out = None
    for plane in planes:
        out = plane.copy() if out is None else ufunc(out, plane, out=out)
    return out


def _project(block, axis, method, keepdims, region=None, source_region=None):
    """The projection of ``block`` along its last axis (the engine moves the projected
    axis there; the leading axes are the other axes of the region)."""
    xp = array_module(block)
    n = block.shape[-1]
    if n == 0:  # an empty axis: numpy's answer (zeros for sum, NaN for mean and std)
        if method in ("max", "min"):
            raise ValueError(f"project: the {axis} axis is empty, and the {method} of no "
                             f"values is undefined (numpy raises too)")
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = getattr(xp, method)(block, axis=-1).astype(
                projection_dtype(block.dtype, {"method": method}))
        return out[..., None] if keepdims else out
    planes = [block[..., i] for i in range(n)]
    if method == "max":
        out = _extreme(planes, xp.maximum)
    elif method == "min":
        out = _extreme(planes, xp.minimum)
    elif method == "sum":
        out = _accumulate(planes, projection_dtype(block.dtype, {"method": "sum"}), xp)
    elif method == "mean":
        out = _mean(planes, n, block.dtype, xp)
    else:
        out = _std(planes, n, block.dtype, xp)
    return out[..., None] if keepdims else out


def _place(scale, translate, shape, params):
    """Without ``keepdims`` the axis is gone; with it, its one plane spans the stack
    (centred on it, as thick as it), so the layer overlays its input in napari."""
    if not params["keepdims"]:
        return (), ()
    (s,), (t,), (n,) = scale, translate, shape
    return (s * n,), (t + s * (n - 1) / 2,)


PROJECTION = Geometry(
    shape=lambda frame_shape, p: (1,) if p["keepdims"] else (),
    region=lambda out, frame_shape, p: (slice(0, frame_shape[0]),),
    axes=lambda letters, p: letters if p["keepdims"] else "",
    frame=lambda p: p["axis"],
    place=_place,
)

register(Op(
    "project", "projection", _project,
    (Param("axis", str, "z", choices=AXES, quantity="axis",
           help="the axis to project along: z (each time point), t (each z plane), c"),
     Param("method", str, "max", choices=METHODS,
           help="the statistic, as numpy's np.max, np.mean, np.min, np.sum, np.std"),
     Param("keepdims", bool, False,
           help="keep the axis with one plane as thick as the stack (to overlay the "
                "input in napari) instead of removing it")),
    dtype=projection_dtype, geometry=PROJECTION, batched=True,
    description="maximum, mean, minimum, sum or standard deviation along one axis, "
                "as numpy on the whole array (the axis removed, or kept with keepdims)",
))

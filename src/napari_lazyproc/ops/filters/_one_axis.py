"""Filters along one axis: ``correlate1d``, ``convolve1d`` and ``generic_filter1d``.

scipy's 1-D functions sum in another order than ``correlate`` over one axis (and give
0.0 where it gives -0.0), so they are operations of their own, bitwise scipy's. The
axis is scipy's ``axis``: an index among the spatial axes (-1, the last: x), so a
block is filtered in one call; the halo lies along that axis only.
"""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import CVAL, MODE, origin_check, output_dtype
from ._generic import _correlation_dtype, _same_kernel_note, arguments, keywords, low_level
from ._user_kernels import kernel_array, kernel_param

AXIS = Param("axis", int, -1, integral=True,
             help="which spatial axis to filter along, as scipy's axis: 0 the first, -1 "
                  "the last (x)")
ORIGIN = Param("origin", int, 0, integral=True,
               help="shift of the window from its centre, as in scipy.ndimage")


def _run(name: str):
    def run(b, weights, axis, mode, cval, origin, output=None):
        w = kernel_array(weights, f"{name}: weights")
        w = array_module(b).asarray(w, np.complex128 if w.dtype.kind == "c" else np.float64)
        return getattr(ndimage_for(b), name)(b, w, axis=axis, output=output_dtype(output),
                                             mode=mode, cval=cval, origin=origin)

    return run


def _halo(convolution: bool):
    """Along ``axis`` only: half the kernel and the origin (a convolution of an even
    kernel is a correlation moved one voxel more, as scipy turns it into one)."""

    def halo(p, n: int) -> tuple[int, ...]:
        out = [0] * n
        if p["weights"] is not None and -n <= p["axis"] < n:
            size = kernel_array(p["weights"]).size
            out[p["axis"] % n] = size // 2 + abs(int(p["origin"])) + (
                convolution and size % 2 == 0)
        return tuple(out)

    return halo


def _check(name: str):
    def check(params, axes: str) -> None:
        if params["weights"] is None:
            raise ValueError(f"{name}: weights is required: a 1-D kernel as a list, a .npy "
                             f"path, or an array")
        w = kernel_array(params["weights"], f"{name}: weights")
        if w.ndim != 1:
            raise ValueError(f"{name}: weights must be 1-D (got shape {w.shape}); for a "
                             f"kernel over several axes use {name[:-2]}")
        if not -len(axes) <= params["axis"] < len(axes):
            raise ValueError(f"{name}: axis {params['axis']} is out of range for the "
                             f"{len(axes)} spatial axes {axes!r}")
        origin_check(name, [params["origin"]], w.shape, axes[params["axis"]])

    return check


for _name, _text in (("correlate1d", "correlation along one axis (scipy.ndimage.correlate1d)"),
                     ("convolve1d", "convolution along one axis (scipy.ndimage.convolve1d)")):
    register(Op(
        _name, "kernels", _run(_name),
        (kernel_param(_name, "weights", "the 1-D kernel: a list, a .npy path or an array"),
         AXIS, MODE, CVAL, ORIGIN),
        halo=_halo(_name == "convolve1d"), check=_check(_name),
        dtype=_correlation_dtype, at_level=_same_kernel_note(_name, "weights"),
        description=_text, output=True, complex_input=True,
    ))


def line_function(value):
    """``generic_filter1d``'s function: any Python callable, or a ``LowLevelCallable``."""
    if callable(value) or low_level(value):
        return value
    raise ValueError(f"generic_filter1d: function must be a Python function "
                     f"(function(input_line, output_line)) (got {value!r}); from Python "
                     f"only: a pipeline's JSON cannot hold it")


def _generic_1d(b, function, filter_size, axis, mode, cval, origin, extra_arguments,
                extra_keywords, output=None):
    return ndimage_for(b).generic_filter1d(
        b, function, filter_size, axis=axis, output=output_dtype(output), mode=mode,
        cval=cval, origin=origin, extra_arguments=tuple(extra_arguments or ()),
        extra_keywords=dict(extra_keywords or ()))


def _generic_halo(p, n: int) -> tuple[int, ...]:
    out = [0] * n
    if -n <= p["axis"] < n:
        out[p["axis"] % n] = int(p["filter_size"]) // 2 + abs(int(p["origin"]))
    return tuple(out)


def _generic_check(params, axes: str) -> None:
    if params["function"] is None:
        line_function(None)
    if not -len(axes) <= params["axis"] < len(axes):
        raise ValueError(f"generic_filter1d: axis {params['axis']} is out of range for the "
                         f"{len(axes)} spatial axes {axes!r}")
    origin_check("generic_filter1d", [params["origin"]], [params["filter_size"]],
                 axes[params["axis"]])


register(Op(
    "generic_filter1d", "smoothing", _generic_1d,
    (Param("function", line_function, None, optional=True, quantity="python",
           help="function(input_line, output_line): fills output_line from the input line "
                "extended by filter_size - 1 (scipy's), or a scipy.LowLevelCallable; from "
                "Python only"),
     Param("filter_size", int, 3, min=1, integral=True, help="the window's length in voxels"),
     AXIS, MODE, CVAL, ORIGIN,
     Param("extra_arguments", arguments, None, optional=True, quantity="python",
           help="more positional arguments of function"),
     Param("extra_keywords", keywords, None, optional=True, quantity="python",
           help="keyword arguments of function")),
    halo=_generic_halo, check=_generic_check, on_gpu=False,
    description="a Python function of each line along one axis "
                "(scipy.ndimage.generic_filter1d); from Python only, on the CPU",
    output=True, complex_input=False,
))

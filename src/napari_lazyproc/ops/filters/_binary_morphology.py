"""Binary morphology as scipy.ndimage computes it: any ``structure``, ``iterations``,
``border_value`` (what lies outside the array) and ``origin``; and hole filling."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import WHOLE_FRAME, Op, register
from ..engine._scipy_params import FOOTPRINT, RADIUS
from ..kernels import _rank as _rank_kernels
from ._morphology_window import (
    ORIGIN,
    binary_structure,
    check_window,
    kernel_note,
    reach,
    structure_param,
)
from ._user_kernels import kernel_array

ITERATIONS = Param("iterations", int, 1,
                   help="how many times the operation repeats (each reads one structure's "
                        "reach further)")
BORDER_VALUE = Param("border_value", int, 0,
                     help="the value outside the array: 0 background, nonzero foreground")


def _window(p) -> dict:
    return {k: p[k] for k in ("footprint", "radius", "structure")}


def _binary(name):
    def run(b, footprint, radius, structure, iterations, border_value, origin):
        s = array_module(b).asarray(binary_structure(
            {"footprint": footprint, "radius": radius, "structure": structure}))
        return getattr(ndimage_for(b), name)(b != 0, structure=s, iterations=iterations,
                                             border_value=int(bool(border_value)),
                                             origin=origin)

    return run


def _fast(name):
    kernel = _rank_kernels.binary(name)

    def run(block, crop, footprint, radius, structure, iterations, border_value, origin):
        s = binary_structure({"footprint": footprint, "radius": radius,
                              "structure": structure})
        return kernel(block, crop, s, origin, bool(border_value), iterations)

    return run


def _check(name):
    def check(params, axes: str) -> None:
        if params["iterations"] < 1:
            raise ValueError(
                f"{name}: iterations must be 1 or more (got {params['iterations']}); "
                f"scipy's iterations < 1 repeats until nothing changes, which depends on "
                f"the whole array, so no region can be computed alone: give a count")
        check_window(name, binary_structure(_window(params)).shape, params["origin"], axes)

    return check


def _halo(times):
    def halo(p, n):
        r = reach(binary_structure(_window(p)).shape, p["origin"])
        return tuple(times * max(1, p["iterations"]) * v for v in r)

    return halo


_BINARY = {
    "binary_erosion": ("binary_erosion", 1, "shrink the mask by the footprint"),
    "binary_dilation": ("binary_dilation", 1, "grow the mask by the footprint"),
    "binary_opening": ("binary_opening", 2, "remove specks smaller than the footprint"),
    "binary_closing": ("binary_closing", 2, "close gaps smaller than the footprint"),
}

for _name, (_fn, _times, _text) in _BINARY.items():
    register(Op(
        _name, "binary", _binary(_fn),
        (FOOTPRINT, RADIUS, structure_param(_name, True), ITERATIONS, BORDER_VALUE, ORIGIN),
        halo=_halo(_times), dtype=lambda d, p: np.dtype(bool), binary_input=True,
        fast=_fast(_name), check=_check(_name), at_level=kernel_note(_name),
        description=f"{_text} (scipy.ndimage.{_fn}, nonzero is foreground)",
    ))


def _fill_holes(b, structure, origin):
    s = None if structure is None else array_module(b).asarray(
        kernel_array(structure, "fill_holes: structure") != 0)
    return ndimage_for(b).binary_fill_holes(b != 0, structure=s, origin=origin)


def _check_fill(params, axes: str) -> None:
    if params["structure"] is not None:
        shape = kernel_array(params["structure"], "fill_holes: structure").shape
        check_window("fill_holes", shape, params["origin"], axes)
    else:
        check_window("fill_holes", (3,) * len(axes), params["origin"], axes)


register(Op(
    "fill_holes", "binary", _fill_holes,
    (structure_param("fill_holes", True), ORIGIN),
    halo=lambda p, n: WHOLE_FRAME, dtype=lambda d, p: np.dtype(bool), binary_input=True,
    check=_check_fill,
    description="fill background regions not connected to the frame's border "
                "(scipy.ndimage.binary_fill_holes; needs the whole frame)",
))

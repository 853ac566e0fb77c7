"""Binary morphology as scipy.ndimage computes it: any ``structure``, ``iterations``,
``border_value`` (what lies outside the array) and ``origin``; and hole filling."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import WHOLE_FRAME, Op, register
from ..engine._scipy_params import FOOTPRINT, RADIUS, make_footprint
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
    def run(b, footprint, radius, structure, iterations, border_value, origin, mask=None):
        s = array_module(b).asarray(binary_structure(
            {"footprint": footprint, "radius": radius, "structure": structure}))
        # the mask block as stored: scipy reads its dtype its own way (an int8 cast
        # when iterating), so the same block gives scipy's values bitwise
        return getattr(ndimage_for(b), name)(b != 0, structure=s, iterations=iterations,
                                             border_value=int(bool(border_value)),
                                             origin=origin, mask=mask)

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
        images=("mask",),
        description=f"{_text} (scipy.ndimage.{_fn}, nonzero is foreground; mask=: "
                    f"where it is zero the input is kept)",
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


def _hit_or_miss_structures(p, n: int):
    s1 = (kernel_array(p["structure1"], "binary_hit_or_miss: structure1") != 0
          if p["structure1"] is not None else make_footprint("ball", (1,) * n))
    s2 = (kernel_array(p["structure2"], "binary_hit_or_miss: structure2") != 0
          if p["structure2"] is not None else ~s1)
    o1 = tuple(p["origin1"])
    return s1, s2, o1, o1 if p["origin2"] is None else tuple(p["origin2"])


def _hit_or_miss(b, structure1, structure2, origin1, origin2):
    p = {"structure1": structure1, "structure2": structure2, "origin1": origin1,
         "origin2": origin2}
    s1, s2, o1, o2 = _hit_or_miss_structures(p, b.ndim)
    xp = array_module(b)
    return ndimage_for(b).binary_hit_or_miss(b != 0, xp.asarray(s1), xp.asarray(s2),
                                             origin1=o1, origin2=o2)


def _check_hit_or_miss(params, axes: str) -> None:
    s1, s2, o1, o2 = _hit_or_miss_structures(params, len(axes))
    check_window("binary_hit_or_miss", s1.shape, o1, axes)
    check_window("binary_hit_or_miss", s2.shape, o2, axes)


def _hit_or_miss_halo(p, n):
    s1, s2, o1, o2 = _hit_or_miss_structures(p, n)
    return tuple(max(a, b) for a, b in zip(reach(s1.shape, o1), reach(s2.shape, o2),
                                           strict=True))


register(Op(
    "binary_hit_or_miss", "binary", _hit_or_miss,
    (structure_param("binary_hit_or_miss", True, "structure1"),
     structure_param("binary_hit_or_miss", True, "structure2"),
     Param("origin1", int, 0, per_axis=True, help="origin of structure1"),
     Param("origin2", int, None, per_axis=True, optional=True,
           help="origin of structure2 (default: origin1)")),
    halo=_hit_or_miss_halo, dtype=lambda d, p: np.dtype(bool), binary_input=True,
    check=_check_hit_or_miss, at_level=kernel_note("binary_hit_or_miss"),
    description="voxels whose neighbourhood matches structure1 in the foreground and "
                "structure2 in the background (scipy.ndimage.binary_hit_or_miss)",
))

"""Grey and binary morphology with ball or box footprints, and hole filling."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._registry import WHOLE_FRAME, Op, register
from ..engine._scipy_params import CVAL, FOOTPRINT, MODE, RADIUS, make_footprint, output_dtype
from ..kernels import _rank as _rank_kernels


def _grey(name):
    def run(b, footprint, radius, mode, cval, output=None):
        fp = array_module(b).asarray(make_footprint(footprint, radius))
        return getattr(ndimage_for(b), name)(b, footprint=fp, output=output_dtype(output),
                                             mode=mode, cval=cval)

    return run


def _radius_halo(times):
    return lambda p, n: tuple(times * int(r) for r in p["radius"])


_GREY = {
    "erosion": ("grey_erosion", 1, "grey erosion: minimum over the footprint"),
    "dilation": ("grey_dilation", 1, "grey dilation: maximum over the footprint"),
    "opening": ("grey_opening", 2, "grey opening: erosion then dilation"),
    "closing": ("grey_closing", 2, "grey closing: dilation then erosion"),
    "white_tophat": ("white_tophat", 2, "background subtraction: image minus its opening"),
    "black_tophat": ("black_tophat", 2, "dark spots: closing minus the image"),
}

for _name, (_fn, _times, _text) in _GREY.items():
    register(Op(
        _name, "morphology", _grey(_fn), (FOOTPRINT, RADIUS, MODE, CVAL),
        halo=_radius_halo(_times), fast=_rank_kernels.grey(_name),
        description=f"{_text} (scipy.ndimage.{_fn})", output=True,
    ))


def _binary(name):
    def run(b, footprint, radius):
        fp = array_module(b).asarray(make_footprint(footprint, radius))
        return getattr(ndimage_for(b), name)(b != 0, structure=fp)

    return run


_BINARY = {
    "binary_erosion": ("binary_erosion", 1, "shrink the mask by the footprint"),
    "binary_dilation": ("binary_dilation", 1, "grow the mask by the footprint"),
    "binary_opening": ("binary_opening", 2, "remove specks smaller than the footprint"),
    "binary_closing": ("binary_closing", 2, "close gaps smaller than the footprint"),
}

for _name, (_fn, _times, _text) in _BINARY.items():
    register(Op(
        _name, "binary", _binary(_fn), (FOOTPRINT, RADIUS),
        halo=_radius_halo(_times), dtype=lambda d, p: np.dtype(bool), binary_input=True,
        fast=_rank_kernels.binary(_name),
        description=f"{_text} (scipy.ndimage.{_fn}, nonzero is foreground)",
    ))

register(Op(
    "fill_holes", "binary", lambda b: ndimage_for(b).binary_fill_holes(b != 0),
    (), halo=lambda p, n: WHOLE_FRAME, dtype=lambda d, p: np.dtype(bool), binary_input=True,
    description="fill background regions not connected to the frame's border "
                "(scipy.ndimage.binary_fill_holes; needs the whole frame)",
))

"""Grey morphology with scipy.ndimage's windows: a ball or box of a radius, a box of any
size, any flat footprint, a non-flat structure, and an origin (``_morphology_window``)."""

from __future__ import annotations

from ...backend import array_module, ndimage_for
from ..engine._nan_order import every_axis
from ..engine._registry import Op, register
from ..engine._scipy_params import CVAL, MODE, RADIUS, output_dtype
from ..kernels import _rank as _rank_kernels
from ._morphology_window import (
    ORIGIN,
    check_grey,
    flat_window,
    footprint_param,
    grey_window,
    kernel_note,
    reach,
    size_param,
    structure_param,
    window_shape,
)


def _grey(name):
    def run(b, footprint, radius, size, structure, origin, mode, cval, output=None):
        xp = array_module(b)
        window = {k: xp.asarray(v) if k != "size" else v for k, v in grey_window(
            {"footprint": footprint, "radius": radius, "size": size,
             "structure": structure}).items()}
        return getattr(ndimage_for(b), name)(b, **window, output=output_dtype(output),
                                             mode=mode, cval=cval, origin=origin)

    return run


def _fast(name):
    kernel = _rank_kernels.grey(name)

    def run(block, crop, footprint, radius, size, structure, origin, mode, cval):
        fp = flat_window({"footprint": footprint, "radius": radius, "size": size,
                          "structure": structure})
        return None if fp is None else kernel(block, crop, fp, origin, mode, cval)

    return run


def _gradient(laplace: bool):
    """scipy's morphological gradient (dilation - erosion) or Laplace (dilation + erosion
    - 2 x input), in its order of operations: into ``output`` as into an array of it."""
    dilate, erode = _grey("grey_dilation"), _grey("grey_erosion")

    def run(b, output=None, **p):
        out = erode(b, **p, output=output)
        xp = array_module(b)
        tmp = dilate(b, **p)
        if not laplace:
            return xp.subtract(tmp, out, out=out) if output is not None else tmp - out
        xp.add(tmp, out, out=out)
        xp.subtract(out, b, out=out)
        return xp.subtract(out, b, out=out)

    return run


def _fast_gradient(laplace: bool):
    dilate, erode = _fast("dilation"), _fast("erosion")

    def run(block, crop, **p):
        low = erode(block, crop, **p)
        high = None if low is None else dilate(block, crop, **p)
        if high is None:
            return None
        if not laplace:
            return high - low
        here = block[crop]
        return high + low - here - here

    return run


def _halo(times):
    return lambda p, n: tuple(times * r for r in reach(window_shape(p), p["origin"]))


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
        _name, "morphology", _grey(_fn),
        (footprint_param(_name), RADIUS, size_param(), structure_param(_name, False),
         ORIGIN, MODE, CVAL),
        halo=_halo(_times), fast=_fast(_name), check=check_grey(_name),
        at_level=kernel_note(_name), nan_history=every_axis,
        description=f"{_text} (scipy.ndimage.{_fn})", output=True,
    ))

for _name, _text in (("morphological_gradient", "edges: dilation minus erosion"),
                     ("morphological_laplace", "dilation plus erosion minus twice the image")):
    _laplace = _name.endswith("laplace")
    register(Op(
        _name, "morphology", _gradient(_laplace),
        (footprint_param(_name), RADIUS, size_param(), structure_param(_name, False),
         ORIGIN, MODE, CVAL),
        halo=_halo(1), fast=_fast_gradient(_laplace), check=check_grey(_name),
        at_level=kernel_note(_name), nan_history=every_axis,
        description=f"{_text} (scipy.ndimage.{_name})", output=True,
    ))

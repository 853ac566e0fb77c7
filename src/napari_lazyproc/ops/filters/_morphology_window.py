"""The window of a morphology operation, as scipy.ndimage takes it: a named ball or box of
a ``radius``, a box of any ``size`` (even widths and width 1 too), any flat
``footprint`` array, a non-flat ``structure``, shifted by ``origin``.

A window of n voxels shifted by origin o reaches at most ``n // 2 + |o|`` voxels on
either side (scipy's dilation mirrors the window and its origin, which stays within that
reach), so a region reads that much more input per erosion or dilation it chains.
"""

from __future__ import annotations

import numpy as np

from ..engine._levels import note_once
from ..engine._params import Param
from ..engine._scipy_params import make_footprint
from ._user_kernels import kernel_array, kernel_param

NAMED = ("ball", "box")


def footprint_param(op: str) -> Param:
    """``footprint``: "ball" or "box" (of ``radius``), or a flat window as an array."""
    as_kernel = kernel_param(op, "footprint", "").type

    def footprint(value):
        if isinstance(value, str) and value.strip() in NAMED:
            return value.strip()
        return as_kernel(value)

    # optional: the widget's empty text field is the default ball
    return Param("footprint", footprint, "ball", quantity="kernel", optional=True,
                 help="'ball' (empty: ball) or 'box' of radius, or the window itself "
                      "(nonzero is in it): a nested list, a .npy path or an array")


def size_param() -> Param:
    return Param("size", int, None, min=1, max=255, per_axis=True, quantity="length",
                 optional=True, help="a box of this width per axis (even widths too); "
                                     "replaces a named footprint and radius")


def structure_param(op: str, binary: bool, name: str = "structure") -> Param:
    text = ("the structuring element (nonzero is in it); replaces footprint and radius"
            if binary else "a non-flat structuring element: its values are subtracted "
                           "(erosion) or added (dilation) over the window")
    if name != "structure":
        text = ("foreground pattern (nonzero is in it)" if name == "structure1" else
                "background pattern (default: the complement of structure1)")
    return kernel_param(op, name, text)


ORIGIN = Param("origin", int, 0, per_axis=True,
               help="shift of the window from its centre, per axis, as in scipy.ndimage")


def _named(footprint) -> bool:
    return footprint is None or isinstance(footprint, str) and footprint in NAMED


def grey_window(params) -> dict:
    """scipy's keywords for the window: ``size``, ``footprint`` and/or ``structure``."""
    fp, structure = params["footprint"], params.get("structure")
    out = {}
    if structure is not None:
        out["structure"] = kernel_array(structure, "structure")
    if not _named(fp):
        out["footprint"] = kernel_array(fp, "footprint") != 0
    elif structure is None:
        if params.get("size") is not None:
            out["size"] = tuple(int(s) for s in params["size"])
        else:
            out["footprint"] = make_footprint(fp or "ball", params["radius"])
    return out


def flat_window(params) -> np.ndarray | None:
    """The window as a boolean array, or None for a non-flat structure."""
    if params.get("structure") is not None:
        return None
    kw = grey_window(params)
    return kw["footprint"] if "footprint" in kw else np.ones(kw["size"], bool)


def binary_structure(params) -> np.ndarray:
    """A binary operation's structure: the array given, or the named footprint."""
    if params.get("structure") is not None:
        return kernel_array(params["structure"], "structure") != 0
    return make_footprint(params["footprint"], params["radius"])


def window_shape(params) -> tuple[int, ...]:
    kw = grey_window(params)
    for key in ("structure", "footprint"):
        if key in kw:
            return kw[key].shape
    return kw["size"]


def reach(shape, origin) -> tuple[int, ...]:
    """How far a window of ``shape`` shifted by ``origin`` reaches on either side."""
    return tuple(int(n) // 2 + abs(int(o)) for n, o in zip(shape, origin, strict=True))


def check_window(op: str, shape, origin, axes: str) -> None:
    """The window's dimensions and scipy's origin range ``-(n // 2) .. (n - 1) // 2``."""
    if len(shape) != len(axes):
        raise ValueError(f"{op}: the window is {len(shape)}-D {tuple(shape)} and the spatial "
                         f"axes {axes!r} are {len(axes)}: give a {len(axes)}-D footprint or "
                         f"structure, or axes with as many letters as it has dimensions")
    for o, n, a in zip(origin, shape, axes, strict=True):
        if not -(n // 2) <= o <= (n - 1) // 2:
            raise ValueError(f"{op}: origin {o} on axis {a!r} must be between {-(n // 2)} "
                             f"and {(n - 1) // 2} for a window of {n} voxels")


def check_grey(op: str):
    def check(params, axes: str) -> None:
        kw = grey_window(params)
        if "footprint" in kw and not kw["footprint"].any():
            raise ValueError(f"{op}: footprint has no nonzero element (scipy refuses an "
                             f"all-zero footprint)")
        if "footprint" in kw and "structure" in kw and \
                kw["footprint"].shape != kw["structure"].shape:
            raise ValueError(f"{op}: footprint {kw['footprint'].shape} and structure "
                             f"{kw['structure'].shape} must have the same shape")
        check_window(op, window_shape(params), params["origin"], axes)

    return check


def kernel_note(name: str):
    """``Op.at_level``: a coarser level keeps an array window in its own pixels."""

    def at_level(values: dict, factors) -> dict:
        given = any(values.get(k) is not None for k in ("structure", "structure1",
                                                        "structure2")) or \
            not _named(values.get("footprint", "ball"))
        if given and any(f != 1 for f in factors):
            scale = "x".join(f"{f:g}" for f in factors)
            note_once(f"{name} at a level {scale} coarser: a structure or footprint array "
                      f"cannot be rescaled exactly; the preview applies it in that level's "
                      f"pixels")
        return values

    return at_level

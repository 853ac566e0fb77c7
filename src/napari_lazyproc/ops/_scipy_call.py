"""How ``apply`` follows the shape of a scipy.ndimage call: second images (binary
morphology's ``mask``) taken out of the parameters as sources, and scipy 1.17's
gaussian_gradient_magnitude with integer ``axes`` a subset (every axis smoothed)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io import SPATIAL_AXES, open_image
from .engine._as_source import as_source


def second_images(op, source, params: dict[str, Any]) -> dict:
    """The operation's second images (``Op.images``: scipy's ``mask``), taken out of
    ``params`` as sources of the input's shape; None ones dropped."""
    out = {}
    for name in op.images:
        value = params.pop(name, None)
        if value is None:
            continue
        if isinstance(value, (str, os.PathLike)):  # a file's path (a step's provenance)
            value = open_image(value)
        shape = getattr(value, "shape", None)
        if shape is None:  # a nested list
            value = np.asarray(value)
            shape = value.shape
        same = len(shape) == len(source.shape) and not hasattr(value, "axes")
        image = as_source(value, source.axes if same else None)
        if tuple(image.shape) != tuple(source.shape):
            raise ValueError(f"{op.name}: {name} has shape {tuple(image.shape)} and the input "
                             f"{tuple(source.shape)}; they must be equal (scipy.ndimage "
                             f"refuses it too)")
        if np.dtype(image.dtype).kind == "c":
            raise ValueError(f"{op.name}: {name} is complex ({image.dtype}); give a mask "
                             f"of booleans or numbers")
        out[name] = image
    return out


@functools.cache
def _scipy_smooths_other_axes() -> bool:
    """Whether scipy's gaussian_gradient_magnitude with ``axes`` a subset smooths the
    other axes too (scipy 1.17 does: its derivative is a gaussian_filter of them all)."""
    import scipy.ndimage as ndi

    x = np.zeros((5, 5))
    x[2, 2] = 1.0
    rows = np.stack([ndi.gaussian_gradient_magnitude(r, 1.0) for r in x])
    return not np.array_equal(ndi.gaussian_gradient_magnitude(x, 1.0, axes=(1,)), rows)


def gradient_subset(op, source, given: str, axes, spatial, params):
    """scipy's integer ``axes``, a subset, for gaussian_gradient_magnitude: where the
    installed scipy smooths every axis of the array (1.17), every axis is the frame and
    ``gradient_axes`` the derivatives' (in the order given); letters keep their frame."""
    if op.name != "gaussian_gradient_magnitude" or params.get("gradient_axes") \
            or len(spatial) == len(source.shape) or not _scipy_smooths_other_axes():
        return spatial, params, axes
    if any(a not in SPATIAL_AXES for a in source.axes):
        raise ValueError(f"{op.name}: axes {axes!r} are a subset; scipy "
                         f"{_scipy_version()} then smooths every axis of the array, and this "
                         f"one has axes {source.axes!r}, which are not all spatial; give axis "
                         f"letters (a gradient over those axes alone) or data_axes naming "
                         f"every axis spatial")
    params = {**params, "gradient_axes": given}
    mode = params.get("mode")
    if isinstance(mode, Sequence) and not isinstance(mode, str) and len(mode) == len(given):
        # scipy's i-th mode is its i-th term's: kept at that axis (a wrapped one read
        # whole); an axis with no term, never asked, wraps where any term does
        rest = "wrap" if "wrap" in mode else mode[0]
        params["mode"] = [mode[given.index(a)] if a in given else rest for a in source.axes]
    return tuple(range(len(source.shape))), params, None


def _scipy_version() -> str:
    import scipy

    return scipy.__version__

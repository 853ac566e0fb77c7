"""Connected-component labeling, per frame (lazy, exact) or global (an explicit job)."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import WHOLE_FRAME, Op, register


def label_block(b, connectivity: int) -> tuple[np.ndarray, int]:
    import scipy.ndimage

    structure = array_module(b).asarray(
        scipy.ndimage.generate_binary_structure(b.ndim, connectivity)
    )
    labels, n = ndimage_for(b).label(b != 0, structure=structure)
    return labels, int(n)


def _label(b, connectivity, scope):
    """scipy's labels and dtype (int32; scipy switches to int64 for a frame of 2**31
    voxels or more, where the values are still equal unless they exceed int32)."""
    labels, n = label_block(b, connectivity)
    if n > np.iinfo(np.int32).max:
        raise ValueError(f"label: {n} objects in one frame exceed int32; label with "
                         f"scope='global' (uint64 labels)")
    return labels.astype(np.int32, copy=False)


def _check(params, axes):
    if params["connectivity"] > len(axes):
        raise ValueError(f"label: connectivity must be between 1 and {len(axes)} for the "
                         f"{len(axes)} spatial axes {axes!r} (got {params['connectivity']})")


register(Op(
    "label", "labeling", _label,
    (Param("scope", str, "frame", choices=("frame", "global"),
           help="'frame': each plane or time point when shown; 'global': one job over all"),
     Param("connectivity", int, 1, min=1, max=5,
           help="1: faces; up to the number of axes: edges and corners too")),
    halo=lambda p, n: WHOLE_FRAME, dtype=lambda d, p: np.dtype(np.int32), kind="labels",
    check=_check, binary_input=True,
    description="connected components of the nonzero voxels (scipy.ndimage.label)",
))

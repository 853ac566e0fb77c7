"""Connected-component labeling, per frame (lazy, exact) or global (an explicit job)."""

from __future__ import annotations

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._params import Param
from ..engine._registry import WHOLE_FRAME, Op, register
from ..engine._scipy_params import output_dtype
from ..jobs._label_merge import _relabel, wrap_pairs
from ._user_kernels import kernel_array, kernel_param


def label_block(b, connectivity: int, structure=None, output=None) -> tuple[np.ndarray, int]:
    """scipy's labels of ``b != 0`` with ``structure`` (or ``connectivity``'s)."""
    import scipy.ndimage

    if structure is None:
        structure = scipy.ndimage.generate_binary_structure(b.ndim, connectivity)
    labels, n = ndimage_for(b).label(b != 0, structure=array_module(b).asarray(structure),
                                     output=output)
    return labels, int(n)


def label_structure(value) -> np.ndarray | None:
    """A validated ``structure`` as a boolean array (None: none given)."""
    return None if value is None else kernel_array(value, "label: structure") != 0


def _label(b, connectivity, structure, scope, wrap_axes, axes, output=None):
    """scipy's labels and dtype (int32; scipy switches to int64 for a frame of 2**31
    voxels or more, where the values are still equal unless they exceed int32). With
    ``wrap_axes``, objects touching across the frame's edge along those axes are one."""
    s = label_structure(structure)
    labels, n = label_block(b, connectivity, s, None if wrap_axes else output_dtype(output))
    if wrap_axes:
        import scipy.ndimage

        if s is None:
            s = scipy.ndimage.generate_binary_structure(b.ndim, connectivity)
        wrap = tuple(axes.index(a) for a in wrap_axes)
        host = labels if isinstance(labels, np.ndarray) else labels.get()
        lut, n = _relabel(n, wrap_pairs(host, s, range(b.ndim), wrap))
        labels = array_module(b).asarray(lut)[labels]
        labels = labels.astype(output_dtype(output) or np.int32, copy=False)
    if output is not None:
        return labels
    if n > np.iinfo(np.int32).max:
        raise ValueError(f"label: {n} objects in one frame exceed int32; label with "
                         f"scope='global' (uint64 labels)")
    return labels.astype(np.int32, copy=False)


def _check(params, axes):
    if params["connectivity"] > max(1, len(axes)):  # a 0-D input: scipy's default
        raise ValueError(f"label: connectivity must be between 1 and {len(axes)} for the "
                         f"{len(axes)} spatial axes {axes!r} (got {params['connectivity']})")
    s = label_structure(params["structure"])
    if s is not None:
        if s.shape != (3,) * len(axes):
            raise ValueError(f"label: structure must be {'x'.join('3' * len(axes))} for the "
                             f"{len(axes)} spatial axes {axes!r} (got shape {s.shape})")
        if not np.array_equal(s, s[(slice(None, None, -1),) * s.ndim]):
            raise ValueError("label: structure must be symmetric about its centre "
                             "(a neighbour of a voxel has it as a neighbour too)")
    wrap = params["wrap_axes"] or ""
    if any(a not in axes for a in wrap) or len(set(wrap)) != len(wrap):
        raise ValueError(f"label: wrap_axes must be some of the spatial axes {axes!r}, each "
                         f"once (got {params['wrap_axes']!r})")


register(Op(
    "label", "labeling", _label,
    (Param("scope", str, "frame", choices=("frame", "global"),
           help="'frame': each plane or time point when shown; 'global': one job over all"),
     Param("connectivity", int, 1, min=1, max=5,
           help="1: faces; up to the number of axes: edges and corners too"),
     kernel_param("label", "structure", "scipy's structure (3 per axis, symmetric; nonzero "
                                        "are neighbours); replaces connectivity"),
     Param("wrap_axes", str, None, optional=True,
           help="spatial axis letters along which objects wrap around the edge (periodic; "
                "dask-image's wrap_axes); empty: none")),
    halo=lambda p, n: WHOLE_FRAME, dtype=lambda d, p: np.dtype(np.int32), kind="labels",
    check=_check, binary_input=True, output=True, needs_axes=True,
    description="connected components of the nonzero voxels (scipy.ndimage.label)",
))

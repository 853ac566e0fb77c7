"""Parameters shared by many operations, named as in scipy.ndimage."""

from __future__ import annotations

import numpy as np

from ._params import Param

#: scipy's boundary modes that a halo reproduces exactly ("wrap" reads the far edge)
MODES = ("reflect", "constant", "nearest", "mirror")

MODE = Param("mode", str, "reflect", choices=MODES, help="how the array edge is extended")
NEAREST = Param("mode", str, "nearest", choices=MODES, help="how the array edge is extended")
CVAL = Param("cval", float, 0.0, help="value outside the edge when mode='constant'")
TRUNCATE = Param("truncate", float, 4.0, min=0, min_inclusive=False,
                 help="kernel radius in standard deviations")
SIGMA = Param("sigma", float, 1.0, min=0, min_inclusive=False, per_axis=True, quantity="length",
              help="Gaussian standard deviation")
SIZE = Param("size", int, 3, min=1, max=255, per_axis=True, quantity="length", width=True,
             help="filter width in voxels")
RADIUS = Param("radius", int, 1, min=1, max=127, per_axis=True, quantity="length",
               help="footprint radius")
#: the dtypes ``output=`` takes (scipy's output array's dtype)
OUTPUT_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                 "float32", "float64")
#: scipy's ``output``: computed as scipy computes into an array of that dtype (each pass
#: stored in it, integers wrapping); None: the operation's own dtype
OUTPUT = Param("output", str, None, optional=True, quantity="dtype", choices=OUTPUT_DTYPES,
               help="the output dtype, computed as scipy.ndimage computes into it "
                    "(integers wrap); default: the operation's own")
FOOTPRINT = Param("footprint", str, "ball", choices=("ball", "box"), help="footprint shape")


def gaussian_radius(sigma, truncate) -> tuple[int, ...]:
    """scipy's kernel radius for each axis: int(truncate * sigma + 0.5)."""
    return tuple(int(truncate * float(s) + 0.5) for s in sigma)


def half(size) -> tuple[int, ...]:
    return tuple(int(s) // 2 for s in size)


def as_float(block: np.ndarray) -> np.ndarray:
    """Integers become float32 so that derivatives keep their sign."""
    return block if block.dtype.kind == "f" else block.astype(np.float32)


def float_dtype(dtype, params) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def make_footprint(kind: str, radius) -> np.ndarray:
    """A ball (ellipsoid for anisotropic radii) or a box, of the given per-axis radius."""
    radius = tuple(int(r) for r in radius)
    if kind == "box":
        return np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    return sum((g / r) ** 2 for g, r in zip(grids, radius, strict=False)) <= 1.0


def output_dtype(output) -> np.dtype | None:
    """``output=`` as scipy takes it: a dtype, or None for the input's."""
    return None if output is None else np.dtype(output)

"""Parameters shared by many operations, named as in scipy.ndimage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._params import Param

#: scipy's boundary modes of its filters; a halo reproduces each exactly ("wrap" reads
#: the wrap partner: the far edge, ``_wrap``)
MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
#: scipy's other names of those modes in its filters (ndimage's _extend_mode_to_code)
MODE_ALIASES = {"grid-mirror": "reflect", "grid-constant": "constant", "grid-wrap": "wrap"}


@dataclass(frozen=True)
class ModeParam(Param):
    """scipy's ``mode``: one of ``MODES`` or their grid names (kept as scipy's plain
    names), and, where scipy takes it (``per_axis``: its separable filters), one mode
    per spatial axis; the same mode on every axis is kept as one."""

    def validate(self, op: str, value: Any, n_axes: int) -> Any:
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            return self._mode(op, value)
        modes = list(value)
        if not self.per_axis:
            raise ValueError(f"{op}: mode must be one mode, {self.range_text()} (got "
                             f"{modes!r}; scipy takes a mode per axis only for separable "
                             f"filters)")
        if len(modes) != n_axes:
            raise ValueError(f"{op}: mode has {len(modes)} values for {n_axes} spatial "
                             f"axes; give one mode or {n_axes}")
        modes = [self._mode(op, m) for m in modes]
        return modes[0] if len(set(modes)) == 1 else tuple(modes)

    def _mode(self, op: str, value: Any) -> str:
        return self._scalar(op, MODE_ALIASES.get(value, value) if isinstance(value, str)
                            else value)


_MODE_HELP = "how the array edge is extended"
MODE = ModeParam("mode", str, "reflect", choices=MODES, help=_MODE_HELP)
NEAREST = ModeParam("mode", str, "nearest", choices=MODES, help=_MODE_HELP)
#: a mode, or one per spatial axis (scipy's separable filters take a sequence)
MODE_PER_AXIS = ModeParam("mode", str, "reflect", choices=MODES, per_axis=True,
                          help=_MODE_HELP + " (one mode, or one per axis)")
@dataclass(frozen=True)
class CvalParam(Param):
    """scipy's ``cval``: a number; complex for complex data (its text, ``"(1+2j)"``, in
    a pipeline's JSON)."""

    def validate(self, op: str, value: Any, n_axes: int) -> Any:
        if isinstance(value, str):
            try:
                value = complex(value.replace(" ", ""))
            except ValueError:
                raise ValueError(f"{op}: {self.name} must be a number (got {value!r})") from None
        if isinstance(value, (complex, np.complexfloating)):
            value = complex(value)
            if not (np.isfinite(value.real) and np.isfinite(value.imag)):
                raise ValueError(f"{op}: {self.name} must be finite (got {value!r})")
            return value if value.imag else value.real
        return super().validate(op, value, n_axes)


CVAL = CvalParam("cval", float, 0.0, help="value outside the edge when mode='constant' "
                                          "(complex for complex data)")
TRUNCATE = Param("truncate", float, 4.0, min=0,
                 help="kernel radius in standard deviations")
SIGMA = Param("sigma", float, 1.0, min=0, per_axis=True, quantity="length",
              help="Gaussian standard deviation (0: that axis is not filtered)")
ORDER = Param("order", int, 0, min=0, per_axis=True, integral=True,
              help="derivative order of the Gaussian along each axis (0: smoothing)")
GAUSSIAN_RADIUS = Param("radius", int, None, min=0, per_axis=True, optional=True,
                        quantity="length", integral=True,
                        help="kernel radius in voxels (replaces truncate); default: from "
                             "truncate")
ORIGIN = Param("origin", int, 0, per_axis=True, integral=True,
               help="shift of the window from its centre, per axis, as in scipy.ndimage")
SIZE = Param("size", int, 3, min=1, max=255, per_axis=True, quantity="length", width=True,
             integral=True, help="filter width in voxels")
#: a separable box's width: scipy takes 3.0, and skips an axis of width 0 or 1
BOX_SIZE = replace(SIZE, min=0, integral=False,
                   help="filter width in voxels (0 or 1: that axis is not filtered)")
RADIUS = Param("radius", int, 1, min=1, max=127, per_axis=True, quantity="length",
               help="footprint radius")
#: the dtypes ``output=`` takes (scipy's output array's dtype)
OUTPUT_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                 "float32", "float64", "complex64", "complex128")
#: scipy's ``output``: computed as scipy computes into an array of that dtype (each pass
#: stored in it, integers wrapping); None: the operation's own dtype
OUTPUT = Param("output", str, None, optional=True, quantity="dtype", choices=OUTPUT_DTYPES,
               help="the output dtype, computed as scipy.ndimage computes into it "
                    "(integers wrap); default: the operation's own")
FOOTPRINT = Param("footprint", str, "ball", choices=("ball", "box"), help="footprint shape")


def gaussian_radius(sigma, truncate) -> tuple[int, ...]:
    """scipy's kernel radius for each axis: int(truncate * sigma + 0.5)."""
    return tuple(int(truncate * float(s) + 0.5) for s in sigma)


def gaussian_halo(p, n) -> tuple[int, ...]:
    """A Gaussian's reach per axis: its ``radius``, else from ``truncate``; none on an
    axis of sigma <= 1e-15 (scipy skips it)."""
    radius = p.get("radius") or gaussian_radius(p["sigma"], p["truncate"])
    return tuple(0 if float(s) <= 1e-15 else int(r)
                 for s, r in zip(p["sigma"], radius, strict=True))


def axis_mode(mode, i: int) -> str:
    """The mode of spatial axis ``i`` (one mode, or one per axis)."""
    return mode if isinstance(mode, str) else mode[i]


def window_halo(shape, origin) -> tuple[int, ...]:
    """How far a window of ``shape`` shifted by ``origin`` reaches on either side."""
    return tuple(int(n) // 2 + abs(int(o)) for n, o in zip(shape, origin, strict=False))


def origin_check(op: str, origin, shape, axes: str) -> None:
    """scipy's allowed origins: ``-(n // 2) <= origin <= (n - 1) // 2`` per axis."""
    for o, n, a in zip(origin, shape, axes, strict=False):
        if n >= 1 and not -(n // 2) <= o <= (n - 1) // 2:
            raise ValueError(f"{op}: origin {o} on axis {a!r} must be between {-(n // 2)} "
                             f"and {(n - 1) // 2} for a window of {n} voxels")


def half(size) -> tuple[int, ...]:
    return tuple(int(s) // 2 for s in size)


def as_float(block: np.ndarray) -> np.ndarray:
    """Integers become float32 so that derivatives keep their sign (complex stays)."""
    return block if block.dtype.kind in "fc" else block.astype(np.float32)


def float_dtype(dtype, params) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind in "fc" else np.dtype(np.float32)


def make_footprint(kind: str, radius) -> np.ndarray:
    """A ball (ellipsoid for anisotropic radii) or a box, of the given per-axis radius."""
    radius = tuple(int(r) for r in radius)
    if kind == "box" or not radius:  # a 0-D input's window: its one voxel
        return np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    return sum((g / r) ** 2 for g, r in zip(grids, radius, strict=False)) <= 1.0


def output_dtype(output) -> np.dtype | None:
    """``output=`` as scipy takes it: a dtype, or None for the input's."""
    return None if output is None else np.dtype(output)

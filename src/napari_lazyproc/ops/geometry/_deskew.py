"""``deskew``: stage-scan lattice light-sheet and OPM stacks made upright, lazily.

A stage-scan stack is a series of planes ``k`` (the z axis of the raw data), each the
tilted light sheet, the stage moved by ``dz`` along the scan axis between them. The sheet
makes ``angle`` with the coverslip. In the sheet's own frame the raw voxel
``(k, y, x)`` (scan axis x) lies at

    z' = k * dz * sin(angle),   y' = y * dy,   x' = x * dx + k * dz * cos(angle)

so plane ``k`` is shifted by ``k * dz * cos(angle) / dx`` voxels along x and the planes
are ``dz * sin(angle)`` apart: a shear. ``deskew`` resamples that onto a regular grid of
voxel size ``(dz * sin(angle), dy, dx)`` that holds every raw voxel (nothing is cut).
With ``rotate_to_coverslip`` it turns the sheet frame by ``angle`` about y, to the
coverslip's frame, z up from the coverslip:

    Z = x * dx * sin(angle),   Y = y * dy,   X = k * dz + x * dx * cos(angle)

on a grid of voxel size ``(dx, dy, dx)``. A negative ``angle`` scans the other way
(plane ``k`` moves towards -x). Either is an affine transform, run as
``scipy.ndimage.affine_transform`` with the homogeneous matrix that ``deskew_transform``
returns (it is documented there), region by region: a plane of the deskewed volume
reads only the raw slab that it maps to (one raw plane, without the rotation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..engine._params import Param
from ..engine._registry import Geometry, Op, register
from ._resample import (
    CVAL,
    MODE,
    PREFILTER,
    Mapping,
    _function,
    input_box,
    lengths,
    prefiltered,
    typed,
)


@dataclass(frozen=True)
class DeskewTransform:
    """A deskew as scipy.ndimage.affine_transform's arguments, and where its output lies.

    Attributes
    ----------
    matrix : numpy.ndarray
        The homogeneous (n + 1) x (n + 1) matrix mapping an output index to the raw
        input coordinate (scipy's convention: ``input = matrix @ [o, 1]``).
    output_shape : tuple of int
        The deskewed frame's shape: every raw voxel inside it.
    scale : tuple of float
        The output voxel size, in the unit of ``voxel_size``.
    origin : tuple of float
        The output's first voxel relative to the raw first voxel, physical.
    """

    matrix: np.ndarray
    output_shape: tuple[int, ...]
    scale: tuple[float, ...]
    origin: tuple[float, ...]


def deskew_transform(shape, angle: float, voxel_size, scan_axis: str = "x",
                     rotate_to_coverslip: bool = False, axes: str = "zyx") -> DeskewTransform:
    """The affine transform of a deskew of a raw stack of ``shape``.

    Parameters
    ----------
    shape : sequence of int
        The raw frame's shape along ``axes``.
    angle : float
        The angle between the light sheet and the coverslip (the scan direction), in
        degrees (31.8 for a Janelia lattice light-sheet); negative when the stage scans
        towards -``scan_axis``.
    voxel_size : sequence of float
        The raw voxel size along ``axes``; along z, the stage step between planes.
    scan_axis : {"x", "y"}
        The raw image axis along which consecutive planes are displaced.
    rotate_to_coverslip : bool
        Turn the deskewed volume into the coverslip's frame (z normal to it).
    axes : str
        The frame's axis letters: z (the plane index) and the scan axis among them.

    Returns
    -------
    DeskewTransform
        With the scan axis x, the frame zyx, ``s = dz * cos(angle) / dx``, ``t = +1`` or
        ``-1`` the sign of ``angle``, and ``a = |angle|``, the matrix is the shear

        ``[[1, 0, 0, 0], [0, 1, 0, 0], [-t * s, 0, 1, x0], [0, 0, 0, 1]]``

        with ``x0 = min(0, t * (nz - 1) * s)``, output shape
        ``(nz, ny, nx + ceil((nz - 1) * s))`` and voxel size
        ``(dz * sin(a), dy, dx)``. With ``rotate_to_coverslip`` it is
        ``inv(A) @ diag(V)`` with offset ``inv(A) @ P0``, where ``A`` maps a raw index to
        the coverslip frame (``Z = dx sin(a) x``, ``Y = dy y``, ``X = t dz k + dx cos(a)
        x``), ``V = (dx, dy, dx)`` is the output voxel size and ``P0`` the least corner
        of the raw volume in that frame.
    """
    n = len(axes)
    iz, isc = axes.index("z"), axes.index(scan_axis)
    shape = tuple(int(v) for v in shape)
    sizes = np.asarray(voxel_size, dtype=np.float64)
    t = 1.0 if angle > 0 else -1.0
    a = abs(float(angle))
    cos, sin = float(special.cosdg(a)), float(special.sindg(a))
    dz, dsc = float(sizes[iz]), float(sizes[isc])
    matrix = np.eye(n + 1)
    if not rotate_to_coverslip:
        s = dz * cos / dsc
        x0 = min(0.0, t * (shape[iz] - 1) * s)
        matrix[isc, iz] = -t * s
        matrix[isc, n] = x0
        out = list(shape)
        out[isc] = shape[isc] + math.ceil((shape[iz] - 1) * s - 1e-9)
        scale = sizes.copy()
        scale[iz] = dz * sin
        origin = np.zeros(n)
        origin[isc] = x0 * dsc
        return DeskewTransform(matrix, tuple(out), tuple(float(v) for v in scale),
                               tuple(float(v) for v in origin))
    forward = np.diag(sizes)  # raw index -> the coverslip's frame, physical
    forward[iz, :] = 0.0
    forward[iz, isc] = dsc * sin
    forward[isc, :] = 0.0
    forward[isc, iz] = t * dz
    forward[isc, isc] = dsc * cos
    scale = sizes.copy()
    scale[iz] = dsc
    corners = np.array(list(np.ndindex(*(2,) * n)), dtype=np.float64) * (np.array(shape) - 1)
    points = corners @ forward.T
    lo, hi = points.min(axis=0), points.max(axis=0)
    out = tuple(math.ceil((h - lo_) / v - 1e-9) + 1 for lo_, h, v in zip(lo, hi, scale,
                                                                         strict=True))
    inverse = np.linalg.inv(forward)
    matrix[:n, :n] = inverse @ np.diag(scale)
    matrix[:n, n] = inverse @ lo
    return DeskewTransform(matrix, out, tuple(float(v) for v in scale),
                           tuple(float(v) for v in lo))


def _transform_of(frame_shape, p) -> DeskewTransform:
    # the frame is z, y and x in the data's order (``_check``): "zyx"
    return deskew_transform(frame_shape, p["angle"], p["voxel_size"], p["scan_axis"],
                            p["rotate_to_coverslip"], "zyx")


def _mapping(frame_shape, p) -> Mapping:
    d = _transform_of(frame_shape, p)
    n = len(frame_shape)
    return Mapping("affine", d.matrix[:n, :n], d.matrix[:n, n], d.output_shape)


def _region(out, frame_shape, p):
    return input_box(_mapping(frame_shape, p), out, frame_shape, p["order"], p["mode"],
                     p["prefilter"])


def _place(scale, translate, frame_shape, p):
    """The deskewed voxel size, and its first voxel where the raw first voxel is."""
    d = _transform_of(frame_shape, p)
    return d.scale, tuple(t + o for t, o in zip(translate, d.origin, strict=True))


def _bind(values: dict, frame_scale) -> dict:
    """``voxel_size`` from the image's scale when not given."""
    if values.get("voxel_size") is None:
        values = dict(values, voxel_size=[float(s) for s in frame_scale])
    return values


def _check(params, axes: str) -> None:
    if len(axes) != 3 or "z" not in axes or params["scan_axis"] not in axes:
        raise ValueError(f"deskew runs over the 3 axes z, y and x of each volume (the planes "
                         f"along z, shifted along scan_axis {params['scan_axis']!r}); "
                         f"got axes {axes!r}")
    if params["angle"] == 0:
        raise ValueError("deskew: angle must be non-zero (the sheet's angle to the "
                         "coverslip, in degrees, -90 to 90)")
    sizes = params["voxel_size"]
    if sizes is not None and len(sizes) != 3:
        raise ValueError(f"deskew: voxel_size has {len(sizes)} values for the axes {axes!r}; "
                         f"give 3 (z: the stage step) or none (the image's scale)")


def _at_level(values: dict, factors) -> dict:
    """The same physical deskew at a coarser level: voxels ``factors`` times larger."""
    sizes = values.get("voxel_size")
    if sizes is not None:
        values = dict(values, voxel_size=[float(v) * f for v, f in zip(sizes, factors,
                                                                      strict=True)])
    return values


DESKEW = Geometry(shape=lambda frame_shape, p: _mapping(frame_shape, p).shape, region=_region,
                  place=_place, bind=_bind, wants_shape=True)

register(Op(
    "deskew", "transform", _function(_mapping),
    (Param("angle", float, 31.8, min=-90, max=90,
           help="the light sheet's angle to the coverslip, degrees (31.8: a Janelia "
                "lattice); negative for a scan towards -x"),
     Param("scan_axis", str, "x", choices=("x", "y"),
           help="the image axis along which consecutive planes are displaced"),
     Param("voxel_size", typed("deskew", "voxel_size", lengths, "3 positive numbers"), None,
           optional=True, help="z (the stage step), y, x voxel size; empty: the image's "
                               "scale"),
     Param("rotate_to_coverslip", bool, False,
           help="turn the volume to the coverslip's frame (z up from the coverslip)"),
     Param("order", int, 1, min=0, max=5, help="spline order: 0 nearest, 1 linear, 3 cubic"),
     MODE, CVAL, PREFILTER),
    exact_whole=prefiltered,
    geometry=DESKEW, check=_check, at_level=_at_level, fast=_function(_mapping, fast=True),
    description="deskew a stage-scan lattice light-sheet or OPM stack (an affine "
                "transform; nothing cut; the output's voxel size set so it shows upright)",
))

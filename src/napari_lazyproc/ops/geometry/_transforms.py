"""The geometric transforms: ``affine_transform``, ``shift``, ``zoom`` and ``rotate``,
each one declaration over ``_resample`` (which says how a region maps to the input box
it needs and why regions are bitwise scipy's)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special

from ..engine._params import Param
from ..engine._registry import Op, register
from ._resample import (
    CVAL,
    MODE,
    ORDER,
    PREFILTER,
    Mapping,
    _function,
    _geometry,
    matrix,
    prefiltered,
    shape,
    typed,
)

# ------------------------------------------------------------------ affine_transform


def split_matrix(matrix_, offset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """scipy's reading of ``matrix`` for ``n`` axes: ``(n, n)`` or ``(n,)`` as given, the
    homogeneous ``(n + 1, n + 1)`` or ``(n, n + 1)`` with the offset in its last column
    (``offset`` then ignored); None is the identity."""
    m = np.eye(n) if matrix_ is None else np.asarray(matrix_, dtype=np.float64)
    off = np.asarray(np.broadcast_to(np.asarray(offset, np.float64), (n,)), np.float64)
    if m.ndim == 2 and m.shape[1] == n + 1 and m.shape[0] in (n, n + 1):
        off, m = m[:n, n].copy(), m[:n, :n].copy()
    return m, off


def _affine_mapping(frame_shape, p) -> Mapping:
    n = len(frame_shape)
    m, off = split_matrix(p["matrix"], p["offset"], n)
    out = tuple(p["output_shape"]) if p["output_shape"] is not None else tuple(frame_shape)
    if m.ndim == 1:
        return Mapping("diagonal", m, off / m, out)
    return Mapping("affine", m, off, out)


def _out_rank(params, n: int) -> int:
    """The output's number of axes: the matrix's columns (a 2-D, non-homogeneous
    matrix), else the output shape's, else the input's."""
    m, _ = split_matrix(params["matrix"], 0.0, n)
    if m.ndim == 2:
        return m.shape[1]
    return n if params["output_shape"] is None else len(params["output_shape"])


def _affine_check(params, axes: str) -> None:
    n = len(axes)
    m = params["matrix"]
    if m is not None:
        arr = np.asarray(m, dtype=np.float64)
        ok = ((arr.ndim == 1 and arr.shape == (n,) and np.all(arr != 0))
              or (arr.ndim == 2 and (arr.shape[0] == n and 1 <= arr.shape[1] <= n
                                     or arr.shape in ((n, n + 1), (n + 1, n + 1)))))
        if not ok:
            raise ValueError(f"affine_transform: matrix must be {n}x{n}, {n}x{n + 1}, "
                             f"{n + 1}x{n + 1} (homogeneous), {n}xk for a k-D output "
                             f"(k < {n}: its last k axes) or {n} non-zero diagonal values "
                             f"for the {n} spatial axes {axes!r} (got shape {arr.shape})")
        if arr.shape == (n + 1, n + 1) and not np.array_equal(arr[n], [0] * n + [1]):
            raise ValueError(f"affine_transform: a homogeneous matrix's last row must be "
                             f"{[0] * n + [1]} (got {arr[n].tolist()})")
    shape_ = params["output_shape"]
    k = _out_rank(params, n)
    if (shape_ is not None and len(shape_) != k) or (shape_ is None and k != n):
        raise ValueError(f"affine_transform: output_shape must have {k} values, one per "
                         f"column of the matrix (got "
                         f"{'none' if shape_ is None else len(shape_)})")


def _affine_at_level(values: dict, factors) -> dict:
    """The same physical transform at a level downsampled by ``factors``: in level-k voxels
    ``matrix[h, l] * f[l] / f[h]`` and ``offset / f``; the output shape divided too."""
    f = np.asarray(factors, dtype=np.float64)
    m, off = split_matrix(values["matrix"], values["offset"], len(f))
    if m.ndim == 2:  # output axes: the input's last columns-many
        m = m * f[None, len(f) - m.shape[1]:] / f[:, None]
    out = values["output_shape"]
    return dict(values, matrix=m.tolist(), offset=(off / f).tolist(),
                output_shape=None if out is None else
                [max(1, math.ceil(n / g)) for n, g in zip(out, f[len(f) - len(out):],
                                                          strict=True)])


register(Op(
    "affine_transform", "transform", _function(_affine_mapping),
    (Param("matrix", typed("affine_transform", "matrix", matrix, "a nested list of numbers "
                           "or a .npy path"), None, optional=True,
           help="the inverse transform (output index -> input coordinate), as scipy's: "
                "n x n, n x (n+1), homogeneous (n+1) x (n+1), or the n diagonal values; "
                "empty: the identity"),
     Param("offset", float, 0.0, per_axis=True,
           help="added to the input coordinate (ignored with a homogeneous matrix)"),
     Param("output_shape", typed("affine_transform", "output_shape", shape,
                                 "positive integers"), None,
           optional=True, help="the output's shape over the spatial axes (empty: the "
                               "input's)"),
     ORDER, MODE, CVAL, PREFILTER),
    exact_whole=prefiltered,
    geometry=_geometry(_affine_mapping, axes=lambda letters, p: letters[
        len(letters) - _out_rank(p, len(letters)):]),
    check=_affine_check, at_level=_affine_at_level,
    fast=_function(_affine_mapping, fast=True),
    output=True,
    description="scipy.ndimage.affine_transform of each frame: the value at output index o "
                "is the input's at matrix @ o + offset (spline-interpolated)",
))


# ------------------------------------------------------------------ shift


def _shift_mapping(frame_shape, p) -> Mapping:
    neg = np.asarray([-float(s) for s in p["shift"]], dtype=np.float64)
    return Mapping("shift", np.ones(len(frame_shape)), neg, tuple(frame_shape))


register(Op(
    "shift", "transform", _function(_shift_mapping),
    (Param("shift", float, 0.0, per_axis=True, quantity="length",
           help="the shift along each spatial axis (the same for every frame; "
                "shift_frames shifts each time point by its own)"),
     ORDER, MODE, CVAL, PREFILTER),
    exact_whole=prefiltered,
    geometry=_geometry(_shift_mapping), fast=_function(_shift_mapping, fast=True),
    output=True,
    description="scipy.ndimage.shift of each frame by one shift (spline-interpolated)",
))


# ------------------------------------------------------------------ zoom


def _zoom_mapping(frame_shape, p) -> Mapping:
    """scipy's output shape ``round(n * zoom)`` and its factors ``(n - 1) / (out - 1)``
    (``n / out`` with ``grid_mode``), 1 where an output has one voxel."""
    zoom_ = [float(z) for z in p["zoom"]]
    out = tuple(int(round(n * z)) for n, z in zip(frame_shape, zoom_, strict=True))
    if all(z == 1 for z in zoom_) and p["prefilter"]:
        return Mapping("copy", np.ones(len(out)), np.zeros(len(out)), out)
    div, num = np.array(out), np.array(frame_shape)
    if not p["grid_mode"]:
        div, num = div - 1, num - 1
    factors = np.divide(num, div, out=np.ones_like(num, dtype=np.float64), where=div != 0)
    return Mapping("zoom", factors, np.zeros(len(out)), out, grid_mode=bool(p["grid_mode"]))


def _zoom_place(scale, translate, frame_shape, p):
    """Each output voxel where it samples the input: voxel size times the factor (and,
    with ``grid_mode``, the first voxel's centre half an input voxel in)."""
    m = _zoom_mapping(frame_shape, p)
    f = m.matrix
    origin = [t + (s * (0.5 * g - 0.5) if m.grid_mode else 0.0)
              for t, s, g in zip(translate, scale, f, strict=True)]
    return tuple(s * g for s, g in zip(scale, f, strict=True)), tuple(origin)


def _zoom_check(params, axes: str) -> None:
    if params["grid_mode"] and params["mode"] in ("constant", "wrap"):
        warnings.warn(f"It is recommended to use mode = grid-{params['mode']} instead of "
                      f"{params['mode']} when grid_mode is True.", UserWarning, stacklevel=4)


register(Op(
    "zoom", "transform", _function(_zoom_mapping),
    (Param("zoom", float, 2.0, min=0, min_inclusive=False, per_axis=True,
           help="the zoom factor along each spatial axis (the output has round(n * zoom) "
                "voxels)"),
     ORDER, MODE, CVAL, PREFILTER,
     Param("grid_mode", bool, False, help="zoom the pixel grid's extent (voxel edges), not "
                                          "the distance between the first and last centres")),
    exact_whole=prefiltered,
    geometry=_geometry(_zoom_mapping, place=_zoom_place), check=_zoom_check,
    fast=_function(_zoom_mapping, fast=True),
    output=True,
    description="scipy.ndimage.zoom of each frame (the output shape as scipy computes it)",
))


# ------------------------------------------------------------------ rotate


def _rotate_mapping(frame_shape, p) -> Mapping:
    """scipy.ndimage.rotate's matrix and offset (about the centre), replayed exactly."""
    angle = float(p["angle"])
    c, s = special.cosdg(angle), special.sindg(angle)
    rot_matrix = np.array([[c, s], [-s, c]])
    in_plane_shape = np.asarray(frame_shape)
    if p["reshape"]:
        iy, ix = in_plane_shape
        out_bounds = rot_matrix @ [[0, 0, iy, iy], [0, ix, 0, ix]]
        out_plane_shape = (np.ptp(out_bounds, axis=1) + 0.5).astype(int)
    else:
        out_plane_shape = in_plane_shape
    out_center = rot_matrix @ ((out_plane_shape - 1) / 2)
    in_center = (in_plane_shape - 1) / 2
    offset = in_center - out_center
    return Mapping("affine", rot_matrix, offset, tuple(int(n) for n in out_plane_shape))


def _rotate_place(scale, translate, frame_shape, p):
    """The rotated plane centred on the input's (so it overlays it in napari)."""
    out = _rotate_mapping(frame_shape, p).shape
    return tuple(scale), tuple(t + s * ((n - 1) / 2 - (m - 1) / 2)
                               for t, s, n, m in zip(translate, scale, frame_shape, out,
                                                     strict=True))


def _rotate_check(params, axes: str) -> None:
    if len(axes) != 2:
        raise ValueError(f"rotate turns one plane: give axes= two spatial axes, such as 'yx' "
                         f"(scipy's axes pair; each plane along the others is rotated) "
                         f"(got {axes!r})")


register(Op(
    "rotate", "transform", _function(_rotate_mapping),
    (Param("angle", float, 30.0, min=-360, max=360,
           help="degrees, counter-clockwise in the plane of the two spatial axes"),
     Param("reshape", bool, True, help="grow the output so the whole input fits"),
     ORDER, MODE, CVAL, PREFILTER),
    exact_whole=prefiltered,
    geometry=_geometry(_rotate_mapping, place=_rotate_place), check=_rotate_check,
    fast=_function(_rotate_mapping, fast=True),
    output=True,
    description="scipy.ndimage.rotate in the plane of the two spatial axes (axes='yx': "
                "each z plane), about its centre",
))

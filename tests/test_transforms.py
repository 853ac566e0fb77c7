"""Geometric transforms (affine_transform, shift, zoom, rotate, deskew): scipy's values on
the whole array for any region and chunking, every mode, orders 0, 1 and 3; lazy reads;
levels; a deskewed bead stack stands upright; the layer overlays its input in napari."""

from __future__ import annotations

import itertools
import math

import dask.array as da
import numpy as np
import pytest
from conftest import write_zarr
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.ops import deskew_transform
from napari_lazyproc.ops.geometry._resample import MODES, prefilter_margin

pytestmark = pytest.mark.usefixtures("exact_precision")

RNG = np.random.default_rng(7)
A2 = (RNG.random((11, 13)) * 250).astype(np.float32)
A3 = (RNG.random((7, 9, 11)) * 250).astype(np.float32)
M2 = [[0.9, 0.25], [-0.2, 1.1]]
M3 = [[1.05, 0.1, -0.2], [0.05, 0.95, 0.3], [0.1, -0.25, 1.1]]


def _regions(shape):
    """The whole array, a voxel at each corner, a block in the middle, strips along the
    first and last voxels of each axis."""
    out = [tuple(slice(0, n) for n in shape)]
    for corner in itertools.product(*[(0, n - 1) for n in shape]):
        out.append(tuple(slice(i, i + 1) for i in corner))
    out.append(tuple(slice(n // 3, n // 3 + 3) for n in shape))
    for k in range(len(shape)):
        for edge in (0, shape[k] - 1):
            out.append(tuple(slice(edge, edge + 1) if i == k else slice(0, n)
                             for i, n in enumerate(shape)))
    return out


def _assert_regions(result, expected, order, prefilter=True):
    """Bitwise for order 0 and 1 (and without prefilter); within 1e-12 of the largest
    value for order >= 2 with scipy's prefilter (its margin; see ops/geometry/_resample.py)."""
    assert result.shape == expected.shape and result.dtype == expected.dtype
    tol = 1e-12 * max(1.0, float(np.abs(expected).max())) if order >= 2 and prefilter else 0
    for region in _regions(expected.shape):
        ours = np.asarray(result[region])
        if tol:
            np.testing.assert_allclose(ours, expected[region], rtol=0, atol=tol,
                                       err_msg=str(region))
        else:
            np.testing.assert_array_equal(ours, expected[region], err_msg=str(region))


def _cases():
    """(name, data, chunks, params, scipy reference): 2D and 3D."""
    t3 = deskew_transform(A3.shape, 31.8, (1.0, 0.5, 0.6))
    return {
        "affine_transform 2D": (
            A2, (3, 2), {"matrix": M2, "offset": (1.5, -2.0), "output_shape": (12, 15)},
            lambda a, **k: ndi.affine_transform(a, np.array(M2), (1.5, -2.0), (12, 15), **k)),
        "affine_transform 3D": (A3, (2, 3, 4), {"matrix": M3, "offset": (0.5, -1, 2)},
                      lambda a, **k: ndi.affine_transform(a, np.array(M3), (0.5, -1, 2), **k)),
        "affine_transform homogeneous": (
            A2, (4, 5), {"matrix": [[1.2, 0.0, -3.0], [0.3, 0.8, 2.5], [0, 0, 1]]},
            lambda a, **k: ndi.affine_transform(
                a, np.array([[1.2, 0.0, -3.0], [0.3, 0.8, 2.5], [0, 0, 1]]), **k)),
        "affine_transform diagonal": (A2, (3, 3), {"matrix": [0.7, 1.3], "offset": (2.0, -1.0)},
                            lambda a, **k: ndi.affine_transform(a, np.array([0.7, 1.3]),
                                                                (2.0, -1.0), **k)),
        "shift 3D": (A3, (2, 2, 3), {"shift": (1.5, -2.25, 3.7)},
                     lambda a, **k: ndi.shift(a, (1.5, -2.25, 3.7), **k)),
        "zoom 2D": (A2, (3, 4), {"zoom": (1.7, 0.6)},
                    lambda a, **k: ndi.zoom(a, (1.7, 0.6), **k)),
        "zoom 3D": (A3, (2, 3, 4), {"zoom": (1.3, 2.0, 0.75)},
                    lambda a, **k: ndi.zoom(a, (1.3, 2.0, 0.75), **k)),
        "rotate 2D": (A2, (3, 4), {"angle": 37.0},
                      lambda a, **k: ndi.rotate(a, 37.0, **k)),
        "rotate 3D yx": (A3, (2, 3, 4), {"angle": -20.0, "axes": "yx", "reshape": False},
                         lambda a, **k: ndi.rotate(a, -20.0, axes=(1, 2), reshape=False, **k)),
        "deskew": (A3, (2, 3, 4), {"angle": 31.8, "voxel_size": (1.0, 0.5, 0.6)},
                   lambda a, **k: ndi.affine_transform(a, t3.matrix,
                                                       output_shape=t3.output_shape, **k)),
    }


CASES = _cases()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_region_equals_scipy_on_the_whole_array(case, order, mode):
    a, chunks, params, reference = CASES[case]
    params = dict(params, order=order, mode=mode, cval=7.5)
    if case.startswith("zoom") and mode == "wrap":
        params["grid_mode"] = False
    expected = reference(a, order=order, mode=mode, cval=7.5)
    result = lp.apply(case.split()[0], da.from_array(a, chunks=chunks), **params)
    _assert_regions(result, expected, order)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_precision_is_within_the_contract(case, mode):
    """precision "fast": scipy's affine_transform on each box (no coordinate array),
    within 1e-6 of the largest value on every region (a float32 value may round the
    other way); nearest-neighbour and mode "constant" stay exact."""
    a, chunks, params, reference = CASES[case]
    for order in (0, 1, 3):
        expected = reference(a, order=order, mode=mode, cval=7.5)
        result = lp.apply(case.split()[0], da.from_array(a, chunks=chunks), order=order,
                          mode=mode, cval=7.5, precision="fast", **params)
        assert result.fast
        tol = 0 if order == 0 else 1e-6 * np.abs(expected).max()  # the fast contract
        for region in _regions(expected.shape):  # tiles start anywhere: so does napari
            np.testing.assert_allclose(np.asarray(result[region]), expected[region],
                                       rtol=0, atol=tol, err_msg=str(region))
        ints = lp.apply(case.split()[0], da.from_array(a.astype(np.uint8), chunks=chunks),
                        order=order, mode=mode, precision="fast", **params)
        diff = np.asarray(ints).astype(int) - reference(a.astype(np.uint8), order=order,
                                                       mode=mode)
        assert np.abs(diff).max() <= (0 if order == 0 else 1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float64])
@pytest.mark.parametrize("order", [0, 1, 3])
def test_dtypes_and_no_prefilter_are_scipys(dtype, order):
    a = (A3 - (100 if dtype == np.int16 else 0)).astype(dtype)
    for prefilter in (True, False):
        expected = ndi.affine_transform(a, np.array(M3), (0.5, -1, 2), order=order,
                                        mode="mirror", prefilter=prefilter)
        result = lp.apply("affine_transform", da.from_array(a, chunks=(3, 4, 5)), matrix=M3,
                          offset=(0.5, -1, 2), order=order, mode="mirror", prefilter=prefilter)
        if order < 2 or not prefilter or dtype != np.float64:
            # integers are rounded: 1e-15 never moves them; without the prefilter, bitwise
            np.testing.assert_array_equal(np.asarray(result[2:5, 1:8]), expected[2:5, 1:8])
        else:
            np.testing.assert_allclose(np.asarray(result[2:5, 1:8]), expected[2:5, 1:8],
                                       rtol=0, atol=1e-12 * np.abs(expected).max())


def test_zoom_grid_mode_and_its_place():
    a = A2
    for mode in ("grid-constant", "grid-mirror", "nearest"):
        expected = ndi.zoom(a, (2.0, 0.5), order=1, mode=mode, grid_mode=True)
        result = lp.apply("zoom", da.from_array(a, chunks=(3, 4)), zoom=(2.0, 0.5), order=1,
                          mode=mode, grid_mode=True)
        _assert_regions(result, expected, 1)
    img = lp.LazyImage(levels=[da.from_array(a)], axes="yx", scale=(0.5, 0.5),
                       translate=(10.0, 20.0), units=("micrometer",) * 2, name="z",
                       source={"path": None})
    plain = lp.apply("zoom", img, zoom=(2.0, 0.5))
    assert plain.shape == (22, 6)  # scipy's round(n * zoom)
    assert plain.scale == pytest.approx((0.5 * 10 / 21, 0.5 * 12 / 5))  # (n - 1) / (out - 1)
    assert plain.translate_from((10.0, 20.0)) == (10.0, 20.0)
    grid = lp.apply("zoom", img, zoom=(2.0, 0.5), grid_mode=True, mode="grid-constant")
    assert grid.scale == pytest.approx((0.25, 0.5 * 13 / 6))
    assert grid.translate_from((10.0, 20.0)) == pytest.approx(
        (10.0 - 0.125, 20.0 + 0.5 * (13 / 12 - 0.5)))
    with pytest.warns(UserWarning, match="grid-constant"):  # scipy warns, and computes
        lp.apply("zoom", img, zoom=2.0, grid_mode=True, mode="constant")


def test_zoom_by_one_is_the_input_as_in_scipy():
    np.testing.assert_array_equal(np.asarray(lp.apply("zoom", A2, zoom=1.0)),
                                  ndi.zoom(A2, 1.0))


# ------------------------------------------------------------------ the prefilter's margin


@pytest.mark.parametrize("order", [2, 3, 4, 5])
@pytest.mark.parametrize("mode", ["mirror", "nearest", "grid-constant", "wrap", "reflect"])
def test_spline_prefilter_margin_makes_regions_exact_without_the_whole_axis(order, mode):
    """scipy prefilters whole lines; a fast region reads its box plus ``prefilter_margin``
    (|pole| ** margin < 2**-60) and agrees within 1e-12 of the largest value, while a
    margin of a quarter of that visibly does not: the margin is what makes it exact.
    An exact region reads the whole line, and is bitwise scipy's."""
    a = (np.random.default_rng(order).random((3, 400)) * 1000).astype(np.float64)
    expected = ndi.shift(a, (0.3, 2.6), order=order, mode=mode)
    data = da.from_array(a, chunks=(3, 16))
    exact = lp.apply("shift", data, shift=(0.3, 2.6), order=order, mode=mode,
                     precision="exact")
    region = (slice(0, 3), slice(180, 200))
    assert exact._expanded(region)[1] == slice(0, 400)
    np.testing.assert_array_equal(np.asarray(exact[region]), expected[region])
    res = lp.apply("shift", data, shift=(0.3, 2.6), order=order, mode=mode,
                   precision="fast")
    region = (slice(0, 3), slice(180, 200))
    box = res._expanded(region)
    assert box[1].stop - box[1].start < 20 + 2 * prefilter_margin(order) + 2 * order + 4 < 400
    np.testing.assert_allclose(np.asarray(res[region]), expected[region], rtol=0,
                               atol=1e-12 * np.abs(expected).max())
    # the margin is needed: a box with a quarter of it is off by far more than 1e-12
    m = prefilter_margin(order) // 4
    lo, hi = box[1].start + 3 * m, box[1].stop - 3 * m
    short = ndi.shift(a[:, lo:hi], (0.3, 2.6), order=order, mode=mode)[:, 180 - lo:200 - lo]
    assert np.abs(short - expected[region]).max() > 1e-9 * np.abs(expected).max()


def test_prefilter_margins():
    assert [prefilter_margin(k) for k in range(6)] == [0, 0, 24, 32, 41, 50]


# ------------------------------------------------------------------ deskew


@pytest.mark.parametrize("angle, scan_axis, rotate", [
    (31.8, "x", False), (31.8, "x", True), (-45.0, "x", False), (60.0, "y", False),
    (-31.8, "y", True)])
def test_deskew_is_scipys_affine_transform_with_its_matrix(angle, scan_axis, rotate):
    a = (np.random.default_rng(3).random((6, 10, 12)) * 4000).astype(np.uint16)
    sizes = (0.4, 0.15, 0.1)
    t = deskew_transform(a.shape, angle, sizes, scan_axis, rotate)
    expected = ndi.affine_transform(a, t.matrix, output_shape=t.output_shape, order=1)
    res = lp.apply("deskew", da.from_array(a, chunks=(2, 4, 5)), angle=angle,
                   scan_axis=scan_axis, voxel_size=sizes, rotate_to_coverslip=rotate)
    _assert_regions(res, expected, 1)
    # nothing cut: every raw voxel centre lies inside the output
    inverse = np.linalg.inv(t.matrix)
    corners = np.array([[*c, 1] for c in itertools.product(*[(0, n - 1) for n in a.shape])])
    inside = (corners @ inverse.T)[:, :3]
    assert (inside > -1e-6).all() and (inside < np.array(t.output_shape) - 1 + 1e-6).all()
    # the sum of a smooth volume is kept (a resampling, up to the voxel volume)
    assert res.scale == pytest.approx(t.scale)


def test_deskew_matrix_is_the_documented_shear():
    t = deskew_transform((256, 1024, 1024), 31.8, (0.4, 0.104, 0.104))
    s = 0.4 * math.cos(math.radians(31.8)) / 0.104
    np.testing.assert_allclose(t.matrix, [[1, 0, 0, 0], [0, 1, 0, 0], [-s, 0, 1, 0],
                                          [0, 0, 0, 1]], atol=1e-15)
    assert t.output_shape == (256, 1024, 1024 + math.ceil(255 * s))
    assert t.scale == pytest.approx((0.4 * math.sin(math.radians(31.8)), 0.104, 0.104))
    neg = deskew_transform((256, 1024, 1024), -31.8, (0.4, 0.104, 0.104))
    assert neg.matrix[2, 0] == pytest.approx(s) and neg.matrix[2, 3] == pytest.approx(-255 * s)
    assert neg.origin == pytest.approx((0, 0, -255 * s * 0.104))


def _bead_stack(angle, dz, dx, shape, beads, sigma=1.2):
    """A raw stage-scan stack of Gaussian beads: raw voxel (k, y, x) lies at
    (k dz sin a, y dx, x dx + k dz cos a) in the sheet's frame (physical)."""
    k, y, x = np.indices(shape, dtype=np.float64)
    a = math.radians(angle)
    zp, yp, xp = k * dz * math.sin(a), y * dx, x * dx + k * dz * math.cos(a)
    out = np.zeros(shape)
    for bz, by, bx in beads:
        out += np.exp(-((zp - bz) ** 2 + (yp - by) ** 2 + (xp - bx) ** 2)
                      / (2 * (sigma * dx * 2) ** 2))
    return (out * 3000).astype(np.uint16)


def test_deskew_stands_a_tilted_bead_stack_upright():
    angle, dz, dx = 31.8, 0.4, 0.2
    beads = [(1.2, 2.0, 4.0), (2.0, 4.0, 5.0), (1.4, 5.4, 7.0)]  # inside every plane
    raw = _bead_stack(angle, dz, dx, (16, 32, 40), beads)
    img = lp.LazyImage(levels=[da.from_array(raw, chunks=(4, 16, 16))], axes="zyx",
                       scale=(dz, dx, dx), translate=(0, 0, 0), units=("micrometer",) * 3,
                       name="beads", source={"path": None})
    res = lp.apply("deskew", img, angle=angle)
    out = np.asarray(res).astype(np.float64)
    scale = np.array(res.scale)
    origin = np.array(res.translate_from((0, 0, 0)))
    labels, n = ndi.label(out > 1000)
    raw_labels, raw_n = ndi.label(raw > 1000)
    assert n == raw_n == len(beads)
    for i in range(1, n + 1):
        # upright: the bead's centroid in every plane it spans is at one (y, x)
        planes = [ndi.center_of_mass(out[z], labels[z] == i)
                  for z in range(out.shape[0]) if (labels[z] == i).sum() > 3]
        assert len(planes) >= 3
        assert np.ptp([p[1] for p in planes]) < 0.5 and np.ptp([p[0] for p in planes]) < 0.5
        # and where the bead is, physically
        centroid = np.array(ndi.center_of_mass(out, labels, i)) * scale + origin
        nearest = min(beads, key=lambda b: np.linalg.norm(np.array(b) - centroid))
        assert np.linalg.norm(np.array(nearest) - centroid) < 0.5 * dx
    for i in range(1, raw_n + 1):  # the raw stack is tilted: x moves by dz cos a / dx a plane
        planes = [ndi.center_of_mass(raw[z], raw_labels[z] == i)
                  for z in range(raw.shape[0]) if (raw_labels[z] == i).sum() > 3]
        assert np.ptp([p[1] for p in planes]) > 2


def test_deskew_voxel_size_comes_from_the_image_and_is_recorded():
    img = lp.LazyImage(levels=[da.from_array(A3)], axes="zyx", scale=(0.5, 0.2, 0.2),
                       translate=(1.0, 2.0, 3.0), units=("micrometer",) * 3, name="s",
                       source={"path": None})
    res = lp.apply("deskew", img, angle=30.0)
    assert res.params["voxel_size"] == (0.5, 0.2, 0.2)
    assert res.steps[-1]["voxel_size"] == [0.5, 0.2, 0.2]
    s = 0.5 * math.cos(math.radians(30)) / 0.2
    assert res.shape == (7, 9, 11 + math.ceil(6 * s))
    assert res.scale == pytest.approx((0.25, 0.2, 0.2))
    assert res.translate_from((1.0, 2.0, 3.0)) == (1.0, 2.0, 3.0)
    again = lp.Pipeline(res.steps)(img)
    assert again.token == res.token


def test_bad_deskew_and_rotate_parameters_are_clear():
    with pytest.raises(ValueError, match="deskew runs over the 3 axes"):
        lp.apply("deskew", A2, angle=30.0)
    with pytest.raises(ValueError, match="angle must be non-zero"):
        lp.apply("deskew", A3, angle=0.0)
    with pytest.raises(ValueError, match="deskew: voxel_size must be 3 positive numbers"):
        lp.apply("deskew", A3, voxel_size="0.4, -1, 1")
    with pytest.raises(ValueError, match="rotate turns one plane"):
        lp.apply("rotate", A3, angle=10.0)
    with pytest.raises(ValueError, match="affine_transform: matrix must be 3x3"):
        lp.apply("affine_transform", A3, matrix=[[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="order must be an integer >= 0 and <= 5"):
        lp.apply("shift", A3, shift=1.0, order=6)


# ------------------------------------------------------------------ laziness


def test_a_deskewed_plane_reads_only_the_raw_slab_it_maps_to(tmp_path, zarr_reads):
    raw = (np.random.default_rng(5).random((24, 32, 48)) * 4000).astype(np.uint16)
    path = write_zarr(tmp_path / "raw.zarr", raw, (1, 16, 16), dimension_names=list("zyx"))
    img = lp.open_image(path)
    res = lp.apply("deskew", img, angle=31.8, voxel_size=(0.4, 0.1, 0.1))
    t = deskew_transform(raw.shape, 31.8, (0.4, 0.1, 0.1))
    expected = ndi.affine_transform(raw, t.matrix, output_shape=t.output_shape, order=1)
    np.testing.assert_array_equal(np.asarray(res[9]), expected[9])
    # plane 9 samples raw plane 9 exactly (linear: 9 and its neighbour 10, weight 0)
    assert {int(k.split("/")[1]) for k in zarr_reads.chunk_keys()} <= {9, 10}
    zarr_reads.keys.clear()
    rotated = lp.apply("deskew", img, angle=31.8, voxel_size=(0.4, 0.1, 0.1),
                       rotate_to_coverslip=True)
    tr = deskew_transform(raw.shape, 31.8, (0.4, 0.1, 0.1), rotate_to_coverslip=True)
    expected = ndi.affine_transform(raw, tr.matrix, output_shape=tr.output_shape, order=1)
    np.testing.assert_array_equal(np.asarray(rotated[5, :15]), expected[5, :15])
    # a plane at one height above the coverslip is one column of the raw planes (x about
    # 5 / sin(31.8) = 9.5): every plane, only the chunks holding that column
    keys = [tuple(int(i) for i in k.split("/")[1:]) for k in zarr_reads.chunk_keys()]
    assert {y for _, y, _ in keys} == {0} and {x for _, _, x in keys} == {0}
    assert len({z for z, _, _ in keys}) > 12


def test_chained_tiled_and_to_dask(monkeypatch):
    from napari_lazyproc.ops.engine import _tiling

    monkeypatch.setattr(_tiling, "TILE_VOXELS", 64)  # many tiles
    data = da.from_array(A3, chunks=(2, 3, 4))
    smooth = lp.apply("gaussian", data, sigma=1.0)
    rot = lp.apply("rotate", smooth, angle=25.0, axes="yx", order=1)
    expected = ndi.rotate(ndi.gaussian_filter(A3, 1.0), 25.0, axes=(1, 2), order=1)
    assert len(rot._tiles(tuple(slice(0, n) for n in rot.shape))) > 1
    np.testing.assert_array_equal(np.asarray(rot), expected)
    np.testing.assert_array_equal(rot.to_dask().compute(), expected)
    mip = lp.apply("project", rot, axis="z")
    np.testing.assert_array_equal(np.asarray(mip), expected.max(axis=0))


def test_per_frame_never_across_t():
    a = (RNG.random((3, 6, 8, 9)) * 100).astype(np.float32)
    res = lp.apply("shift", da.from_array(a, chunks=(1, 2, 3, 4)), data_axes="tzyx",
                   shift=(0.5, 1.25, -2.0), order=1, mode="nearest")
    for t in range(3):
        np.testing.assert_array_equal(np.asarray(res[t]),
                                      ndi.shift(a[t], (0.5, 1.25, -2.0), order=1, mode="nearest"))


# ------------------------------------------------------------------ levels


def test_a_level_is_the_same_physical_transform():
    base = (RNG.random((8, 40, 48)) * 100).astype(np.float32)
    pyramid = [base, ndi.zoom(base, (1, 0.5, 0.5), order=1)]
    img = lp.LazyImage(levels=[da.from_array(p) for p in pyramid], axes="zyx",
                       scale=(0.4, 0.1, 0.1), translate=(0, 0, 0), units=("micrometer",) * 3,
                       name="p", source={"path": None})
    res = lp.apply("deskew", img, angle=31.8)
    coarse = res.levels[1]
    assert coarse.preview and coarse.params["voxel_size"] == pytest.approx((0.4, 0.2, 0.2))
    assert coarse.scale == pytest.approx((res.scale[0], 0.2, 0.2))
    assert abs(coarse.shape[2] - res.shape[2] / 2) <= 1 and coarse.shape[1] == 20
    t = deskew_transform(pyramid[1].shape, 31.8, (0.4, 0.2, 0.2))
    np.testing.assert_array_equal(np.asarray(coarse), ndi.affine_transform(
        pyramid[1], t.matrix, output_shape=t.output_shape, order=1))
    aff = lp.apply("affine_transform", img, matrix=[[1, 0, 0], [0, 1, 0.2], [0, 0, 1]],
                   offset=(0, 4.0, -6.0), order=1)
    level = aff.levels[1]
    assert level.params["matrix"] == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.2), (0.0, 0.0, 1.0))
    assert level.params["offset"] == (0.0, 2.0, -3.0)


# ------------------------------------------------------------------ in napari


def _shown(qtbot, layer) -> np.ndarray:
    from napari_lazyproc._qt.live_layers import live_states

    states = live_states(layer)
    assert states, "not a live layer"
    qtbot.waitUntil(lambda: not any(s.busy for s in states), timeout=30000)
    qtbot.wait(50)  # the refresh queued on the main thread
    return np.asarray(layer._slice.image.raw)


def test_widget_deskew_layer_has_its_scale_and_overlays(make_napari_viewer, qtbot):
    pytest.importorskip("napari")
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    angle, dz, dx = 31.8, 0.4, 0.2
    raw = _bead_stack(angle, dz, dx, (16, 32, 40), [(1.2, 2.0, 4.0), (2.0, 4.0, 5.0)])
    viewer = make_napari_viewer()
    layer_in = viewer.add_image(raw, scale=(dz, dx, dx), translate=(5.0, 1.0, 2.0),
                                name="raw", axis_labels=("z", "y", "x"))
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing")
    widget.input.value = layer_in
    assert {"affine_transform", "shift", "zoom", "rotate", "deskew"} <= set(
        widget.operation.choices)
    widget.operation.value = "deskew"
    assert widget.params["angle"].value == pytest.approx(31.8)
    assert widget.params["scan_axis"].choices == ("x", "y")
    widget.set_params(angle=angle, scan_axis="x")
    layer = widget.add_layer()
    t = deskew_transform(raw.shape, angle, (dz, dx, dx))
    assert (layer.data[0] if layer.multiscale else layer.data).shape == t.output_shape
    assert tuple(layer.scale) == pytest.approx(t.scale)  # dz sin(angle), dx, dx
    assert tuple(layer.translate) == pytest.approx((5.0, 1.0, 2.0))
    assert layer.metadata["pipeline"][-1]["voxel_size"] == pytest.approx([dz, dx, dx])
    viewer.layers.remove(layer_in)
    viewer.dims.set_current_step(0, 7)
    expected = ndi.affine_transform(raw, t.matrix, output_shape=t.output_shape, order=1)
    np.testing.assert_array_equal(_shown(qtbot, layer), expected[7])


def test_widget_zoom_layer_overlays_its_input(make_napari_viewer, qtbot):
    pytest.importorskip("napari")
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    viewer = make_napari_viewer()
    layer_in = viewer.add_image(A2, scale=(0.5, 0.5), translate=(3.0, 4.0), name="plane")
    widget = LazyProcessingWidget(viewer)
    widget.input.value = layer_in
    widget.operation.value = "zoom"
    widget.set_params(zoom=2.0, order=1)
    layer = widget.add_layer()
    assert (layer.data[0] if layer.multiscale else layer.data).shape == (22, 26)
    # the zoomed plane spans the input: first and last voxel centres on the input's
    assert tuple(layer.scale) == pytest.approx((0.5 * 10 / 21, 0.5 * 12 / 25))
    assert tuple(layer.translate) == pytest.approx((3.0, 4.0))
    np.testing.assert_array_equal(_shown(qtbot, layer), ndi.zoom(A2, 2.0, order=1))


def test_pipeline_json_round_trip_keeps_the_matrix():
    data = da.from_array(A3, chunks=(3, 4, 5))
    res = lp.apply("affine_transform", data, matrix=M3, offset=(0.5, -1, 2), order=1)
    again = lp.Pipeline.from_json(lp.Pipeline(res.steps).to_json())(data)
    assert again.token == res.token and again.params["matrix"] == res.params["matrix"]
    np.testing.assert_array_equal(np.asarray(again), ndi.affine_transform(
        A3, np.array(M3), (0.5, -1, 2), order=1))
    text = lp.apply("affine_transform", data, matrix="[[1, 0, 0], [0, 1, 0], [0, 0.5, 1]]")
    assert text.params["matrix"] == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.5, 1.0))


def test_device_path_with_numpy_standing_in_for_cupy(monkeypatch):
    """The GPU path's plumbing (device tiles, the frame's shape passed, coordinates made
    with the block's array module); tests/test_gpu.py checks CuPy's values on a device."""
    from napari_lazyproc.backend import device
    from napari_lazyproc.ops.engine import _evaluation, _gpu_evaluation, _whole_values

    for _m in (_evaluation, _gpu_evaluation, _whole_values):
        monkeypatch.setattr(_m, "get_backend", lambda: "cupy")
    monkeypatch.setattr(device, "to_device", lambda a: np.asarray(a))
    monkeypatch.setattr(device, "to_host", lambda a: np.asarray(a))
    monkeypatch.setattr(device, "tile_voxels", lambda itemsize: 100)  # many tiles
    monkeypatch.setattr(device, "fits", lambda voxels, itemsize: True)
    t = deskew_transform(A3.shape, 31.8, (1.0, 0.5, 0.6))
    res = lp.apply("deskew", da.from_array(A3, chunks=(2, 3, 4)), angle=31.8,
                   voxel_size=(1.0, 0.5, 0.6), precision="fast")
    assert res.on_gpu and len(res._tiles(tuple(slice(0, n) for n in res.shape))) > 1
    np.testing.assert_array_equal(np.asarray(res), ndi.affine_transform(
        A3, t.matrix, output_shape=t.output_shape, order=1))


def test_widget_rotate_on_a_volume_turns_each_plane(make_napari_viewer, qtbot):
    """rotate turns one plane: picked on a 3-D layer (whose default axes are zyx), the
    widget switches to 2D per plane, as rotate's own check asks, and the layer is scipy's
    rotation of each z plane."""
    pytest.importorskip("napari")
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    vol = np.random.default_rng(9).random((6, 20, 24)).astype(np.float32)
    viewer = make_napari_viewer()
    layer_in = viewer.add_image(vol, name="vol")
    widget = LazyProcessingWidget(viewer)
    widget.input.value = layer_in
    assert widget.axes.value == "zyx"
    widget.operation.value = "rotate"
    assert widget.axes.value == "yx"
    widget.set_params(angle=30.0, order=1)
    layer = widget.add_layer()
    expected = ndi.rotate(vol, 30.0, axes=(1, 2), order=1)
    data = layer.data[0] if layer.multiscale else layer.data
    assert data.shape == expected.shape
    z = int(viewer.dims.current_step[0])
    np.testing.assert_allclose(_shown(qtbot, layer), expected[z], rtol=0,
                               atol=1e-6 * np.abs(expected).max())


def test_fast_constant_mode_keeps_the_last_voxel_of_any_tile():
    """A coordinate one bit past the last voxel is cval in mode "constant": the fast path
    must not move it there by computing from a tile's own origin (zoom maps its last
    output voxel exactly onto the last input voxel; deskew at 60 degrees too)."""
    b = np.random.default_rng(1).random((90, 110)) * 250
    res = lp.apply("zoom", da.from_array(b, chunks=(7, 9)), zoom=(1.7, 0.6), order=1,
                   cval=3.0, precision="fast")
    np.testing.assert_allclose(np.asarray(res[148:153, 12:23]),
                               ndi.zoom(b, (1.7, 0.6), order=1, cval=3.0)[148:153, 12:23],
                               rtol=0, atol=1e-9)
    a = (np.random.default_rng(8).random((15, 24, 30)) * 250).astype(np.float32)
    t = deskew_transform(a.shape, 60.0, (0.8, 0.3, 0.35))
    expected = ndi.affine_transform(a, t.matrix, output_shape=t.output_shape, order=1)
    res = lp.apply("deskew", da.from_array(a, chunks=(4, 7, 9)), angle=60.0,
                   voxel_size=(0.8, 0.3, 0.35), precision="fast")
    np.testing.assert_allclose(np.asarray(res[3:, :, 35:]), expected[3:, :, 35:], rtol=0,
                               atol=1e-4)

"""Every operation, on any region, equals scipy / scikit-image on the whole in-memory array.

Chunks are drawn smaller than the halo, regions touch the array edges, data is uint8,
uint16, int32, float32 or float64, and spatial axes are chosen from 2-D to 5-D data.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import OP_CASES as CASES
from conftest import per_frame as _per_frame
from conftest import quantile_mask as _mask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import filters

import napari_lazyproc as lp
from napari_lazyproc.ops import REGISTRY

BINARY_INPUT = {name for name, op in REGISTRY.items() if op.binary_input}
GLOBAL = {"threshold_otsu", "threshold_li", "threshold_triangle"}
#: exactly equal in "fast" too: order statistics, morphology, thresholds and labels
EXACT_IN_FAST = {name for name, op in REGISTRY.items()
                 if op.category in ("morphology", "binary", "threshold", "labeling")
                 or name in ("median", "minimum", "maximum", "percentile", "rank_filter")}


def test_every_registered_operation_is_tested():
    assert set(CASES) == set(REGISTRY)


def assert_same_labels(ours: np.ndarray, ref: np.ndarray) -> None:
    """Equal up to a permutation of label values (0 stays background)."""
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours == 0, ref == 0)
    pairs = np.unique(np.stack([ours.ravel(), ref.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def assert_exact(ours: np.ndarray, ref: np.ndarray, labels: bool = False) -> None:
    if labels:
        assert_same_labels(ours, ref)
    else:
        assert ours.dtype == ref.dtype or ref.dtype == bool
        np.testing.assert_array_equal(ours, ref)


def assert_within_contract(ours: np.ndarray, ref: np.ndarray, name: str, precision: str) -> None:
    """"exact": as scipy; "fast": floats within 1e-6 of the reference's largest magnitude,
    integers within one grey level, order statistics, thresholds and labels exact."""
    fast_kernel = precision == "fast" and REGISTRY[name].fast is not None
    if not fast_kernel or name in EXACT_IN_FAST:
        assert_exact(ours, ref, labels=name == "label")
    elif ref.dtype.kind == "f":
        assert ours.dtype == ref.dtype
        scale = max(float(np.abs(ref).max()) if ref.size else 0.0, np.finfo(np.float32).tiny)
        assert float(np.abs(ours.astype(np.float64) - ref).max(initial=0)) <= 1e-6 * scale
    else:
        assert ours.dtype == ref.dtype
        assert int(np.abs(ours.astype(np.int64) - ref.astype(np.int64)).max(initial=0)) <= 1


@st.composite
def cases(draw, max_side=14):
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64]))
    shape = tuple(draw(st.integers(5, max_side)) for _ in range(3))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    seed = draw(st.integers(0, 2**16))
    key = []
    for n in shape:
        if draw(st.booleans()):
            key.append(draw(st.integers(0, n - 1)))
        else:
            lo = draw(st.integers(0, n - 1))
            key.append(slice(lo, draw(st.integers(lo + 1, n))))
    return dtype, shape, chunks, seed, tuple(key)


def _data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), 1.5)
    a = (smooth - smooth.min()) / (np.ptp(smooth) or 1) * 250
    return a.astype(dtype)


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_region_equals_whole_array_reference(name, precision, case):
    dtype, shape, chunks, seed, key = case
    a = _data(dtype, shape, seed)
    if name in BINARY_INPUT and name != "label":
        a = _mask(a).astype(dtype)
    if name == "label":
        a = _mask(a)
    params, reference = CASES[name]
    if name == "threshold_li" and a.dtype.kind == "f":
        a = (a * 10).astype(np.uint16)  # Li on floats iterates a 256-bin histogram; see docs
    result = lp.apply(name, da.from_array(a, chunks=chunks), precision=precision, **params)
    assert result.precision == precision and result.steps[-1]["precision"] == precision
    if result.axes != result.source.axes:  # a projection: the key on the axes it keeps
        key = tuple(k for k, axis in zip(key, result.source.axes, strict=True)
                    if axis in result.axes)
    ours = np.asarray(result[key])
    assert_within_contract(ours, np.asarray(reference(a))[key], name, precision)


@pytest.mark.parametrize("shape, data_axes, axes", [
    ((6, 9, 11), "zyx", "yx"),
    ((3, 7, 9, 10), "tzyx", "zyx"),
    ((2, 3, 6, 8, 9), "tczyx", "zyx"),
    ((2, 3, 6, 8, 9), "tczyx", "yx"),
    ((13, 17), "yx", "yx"),
])
@pytest.mark.parametrize("name", ["gaussian", "median", "label"])
def test_spatial_axes_from_2d_to_5d_never_cross_t_or_c(shape, data_axes, axes, name):
    params, ref_fn = CASES[name]
    a = _data(np.uint16, shape, 1)
    if name == "label":
        a = _mask(a)
    result = lp.apply(name, da.from_array(a, chunks=[max(1, s // 2) for s in shape]),
                      data_axes=data_axes, axes=axes, **params)
    assert result.spatial_axes == axes
    ref = _per_frame(ref_fn, a, len(shape) - len(axes))
    key = tuple(min(1, s - 1) for s in shape[: len(shape) - len(axes)])
    assert_within_contract(np.asarray(result[key]), ref[key], name, result.precision)


def test_anisotropic_sigma_and_physical_units():
    a = _data(np.float32, (10, 30, 30), 3)
    res = lp.apply("gaussian", da.from_array(a, chunks=(3, 8, 8)), sigma=(0.5, 2.0, 3.0))
    np.testing.assert_allclose(np.asarray(res), ndi.gaussian_filter(a, (0.5, 2.0, 3.0)), rtol=1e-6)
    img = lp.LazyImage(levels=[da.from_array(a, chunks=(3, 8, 8))], axes="zyx",
                       scale=(2.0, 0.5, 0.5), translate=(0, 0, 0), units=("micrometer",) * 3,
                       name="x", source={"path": None})
    phys = lp.apply("gaussian", img, sigma=1.0, units="physical")
    assert phys.params["sigma"] == (0.5, 2.0, 2.0)
    np.testing.assert_allclose(np.asarray(phys[4]), ndi.gaussian_filter(a, (0.5, 2, 2))[4],
                               rtol=1e-6)


@pytest.mark.parametrize("faces", ["kept", "read back"])
@pytest.mark.parametrize("ndim", [2, 3, 4, 5])
def test_global_label_equals_scipy_for_every_connectivity(ndim, faces, monkeypatch):
    """All axes spatial (letters beyond zyx given explicitly), chunks about half of each side
    (one voxel along the first axis); the merge's planes kept from pass 1 or read back."""
    from napari_lazyproc.ops.jobs import _label_global

    reads = []
    if faces == "read back":
        monkeypatch.setattr(_label_global, "FACE_BYTES", 0)
    provisional = _label_global.GlobalLabels._provisional
    monkeypatch.setattr(_label_global.GlobalLabels, "_provisional",
                        lambda self, region: reads.append(region) or provisional(self, region))
    rng = np.random.default_rng(ndim)
    shape = (9, 11, 10, 6, 5)[:ndim]
    a = ndi.gaussian_filter(rng.random(shape), 0.8) > 0.5
    letters = "uvzyx"[-ndim:]
    chunks = [1] + [max(2, s // 2) for s in shape[1:]]
    for connectivity in range(1, ndim + 1):
        job = lp.apply("label", da.from_array(a, chunks=chunks),
                       data_axes=letters, axes=letters, scope="global", connectivity=connectivity)
        job.run()
        assert bool(reads) == (faces == "read back")  # kept planes: the store is not read
        ref, n = ndi.label(a, structure=ndi.generate_binary_structure(ndim, connectivity))
        assert job.n_labels == n
        assert_same_labels(np.asarray(job[...]), ref)
        reads.clear()


def test_otsu_value_equals_skimage_and_sample_is_close():
    a = _data(np.uint16, (20, 40, 40), 5) * 10
    exact = lp.apply("threshold_otsu", da.from_array(a, chunks=(5, 10, 10)), sample="exact")
    assert exact.prepared()["threshold"] == filters.threshold_otsu(a)
    auto = lp.apply("threshold_otsu", da.from_array(a, chunks=(5, 10, 10)))
    assert abs(auto.prepared()["threshold"] - filters.threshold_otsu(a)) < 0.05 * np.ptp(a)


def test_float_otsu_exact():
    a = _data(np.float32, (12, 20, 20), 9)
    res = lp.apply("threshold_otsu", da.from_array(a, chunks=(4, 7, 7)), sample="exact")
    assert res.prepared()["threshold"] == pytest.approx(filters.threshold_otsu(a), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([np.uint8, np.uint16, np.int16, np.float32]),
       st.floats(0.3, 4.0), st.integers(0, 2**16), st.integers(8, 30))
def test_gaussian_single_plane_shortcut_is_bitwise_scipy(dtype, sigma, seed, z):
    """One plane deep inside a slab takes the per-plane pass; it must equal scipy bitwise."""
    a = (
        np.random.default_rng(seed).random((40, 12, 13)) * 200 - (50 if dtype == np.int16 else 0)
    ).astype(dtype)
    res = lp.apply("gaussian", da.from_array(a, chunks=(7, 5, 6)), sigma=(sigma, 1.0, 1.5),
                   precision="exact")
    np.testing.assert_array_equal(np.asarray(res[z]), ndi.gaussian_filter(a, (sigma, 1.0, 1.5))[z])


def test_physical_lengths_convert_axes_in_different_units():
    """z in millimetres, y and x in micrometres: 1 µm is 1/2 px in z (2 µm voxels)."""
    a = _data(np.float32, (10, 30, 30), 4)
    img = lp.LazyImage(levels=[da.from_array(a, chunks=(5, 15, 15))], axes="zyx",
                       scale=(0.002, 0.5, 0.5), translate=(0, 0, 0),
                       units=("millimeter", "micrometer", "micrometer"), name="mixed",
                       source={"path": None})
    res = lp.apply("gaussian", img, sigma=1.0, units="physical", precision="exact")
    assert res.params["sigma"] == pytest.approx((0.5, 2.0, 2.0))
    odd = lp.LazyImage(levels=[da.from_array(a)], axes="zyx", scale=(1.0, 1.0, 1.0),
                       translate=(0, 0, 0), units=("second", "micrometer", "micrometer"),
                       name="odd", source={"path": None})
    with pytest.raises(ValueError, match="do not convert to one another"):
        lp.apply("gaussian", odd, sigma=1.0, units="physical")


FLAT_VALUES = [(dtype, value) for dtype in (np.uint8, np.uint16, np.int16)
               for value in (0, 1, 3, 100, 200, 251, 255, 1000, 12345, 65535, -7, -32768)
               if np.iinfo(dtype).min <= value <= np.iinfo(dtype).max]


@pytest.mark.parametrize("dtype, value", FLAT_VALUES)
@pytest.mark.parametrize("name, params", [("gaussian", {"sigma": 0.5}),
                                          ("gaussian", {"sigma": 1.3}),
                                          ("gaussian", {"sigma": 2.0}),
                                          ("gaussian", {"sigma": 3.3}),
                                          ("uniform", {"size": 3}), ("uniform", {"size": 4})])
@pytest.mark.parametrize("shape", [(8, 40, 40), (40, 40)])
def test_fast_kernels_on_flat_saturated_and_ramp_blocks(dtype, value, name, params, shape):
    """A flat area (or a linear ramp) sums to a whole number, which two summation orders
    put on either side of it: truncated after each axis, a grey level was lost per axis
    (2 or 3 in all). Within one grey level of scipy everywhere."""
    info = np.iinfo(dtype)
    a = np.full(shape, value, dtype)
    a[..., 20:, 20:] = info.max  # a saturated corner
    a[..., :10, :] = (value + np.arange(shape[-1]) * (value > 0)).clip(info.min, info.max)
    ours = np.asarray(lp.apply(name, a, precision="fast", **params))
    reference = (ndi.gaussian_filter(a, params["sigma"]) if name == "gaussian"
                 else ndi.uniform_filter(a, params["size"]))
    assert np.abs(ours.astype(np.int64) - reference.astype(np.int64)).max() <= 1


def test_fast_rank_filters_leave_an_out_of_range_cval_to_scipy():
    a = np.random.default_rng(0).integers(0, 255, (6, 30, 30)).astype(np.uint8)
    for cval in (-1, 300):
        ours = lp.apply("median", a, size=3, mode="constant", cval=cval, precision="fast")
        np.testing.assert_array_equal(np.asarray(ours),
                                      ndi.median_filter(a, 3, mode="constant", cval=cval))


@pytest.mark.parametrize("name", ["binary_erosion", "binary_dilation", "binary_opening",
                                  "binary_closing"])
@pytest.mark.parametrize("footprint, radius", [("ball", (1, 2, 2)), ("box", (1, 1, 2)),
                                               ("ball", (2, 1, 1))])
def test_fast_binary_morphology_runs_opencv_and_equals_scipy(name, footprint, radius):
    """The fast kernel (OpenCV on the 0/1 mask) answers, and equals scipy on the whole
    array: at its edges (scipy's border is background) and at chunk edges."""
    from napari_lazyproc.ops.engine._scipy_params import make_footprint
    from napari_lazyproc.ops.kernels import _rank as _kernels

    rng = np.random.default_rng(len(name) + radius[0])
    a = (ndi.gaussian_filter(rng.random((11, 40, 37)), 1.2) > 0.5).astype(np.uint16) * 7
    structure = make_footprint(footprint, radius)
    reference = getattr(ndi, name)(a != 0, structure=structure)
    crop = (slice(2, 9), slice(0, 40), slice(5, 30))
    direct = _kernels.binary(name)(a, crop, structure, (0, 0, 0))
    assert direct is not None and direct.dtype == bool
    result = lp.apply(name, da.from_array(a, chunks=(4, 9, 16)), footprint=footprint,
                      radius=radius, precision="fast")
    np.testing.assert_array_equal(np.asarray(result), reference)


@pytest.mark.parametrize("shape", [(9, 1, 1), (9, 2, 2), (9, 1, 4), (9, 4, 1), (9, 3, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint16])
def test_fast_gaussian_on_planes_of_a_few_voxels(shape, dtype):
    """OpenCV takes a float64 array of up to 4 values for a scalar: planes that small keep
    numpy's sums in the z pass (a float64 sum: the difference of Gaussians), and every
    plane equals scipy within the contract."""
    a = (np.random.default_rng(1).random(shape) * 100).astype(dtype)
    f = a.astype(np.float64 if dtype == np.float64 else np.float32)
    dog = (ndi.gaussian_filter(f, 1.0, mode="nearest")
           - ndi.gaussian_filter(f, 2.0, mode="nearest"))
    for z in (0, 4, 8):
        ours = np.asarray(lp.apply("gaussian", a, sigma=1.0, precision="fast")[z])
        assert_within_contract(ours, ndi.gaussian_filter(a, 1.0)[z], "gaussian", "fast")
        ours = np.asarray(lp.apply("difference_of_gaussians", a, low_sigma=1.0,
                                   high_sigma=2.0, precision="fast")[z])
        assert_within_contract(ours, dog[z], "difference_of_gaussians", "fast")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
@pytest.mark.parametrize("name, params", [("gaussian", {"sigma": (1.5, 2.0, 0.8),
                                                        "truncate": 4.0}),
                                          ("uniform", {"size": (3, 5, 4)})])
def test_fast_slab_pass_in_column_bands_matches_scipy(dtype, name, params, monkeypatch):
    """An export's box (more than a few planes) filters its first axis in bands of
    columns, stored between passes as scipy stores them: integers equal to scipy but for
    rare last-bit ties (at most one grey level), floats within 1e-6 of the largest value."""
    from napari_lazyproc.ops.kernels import _separable as _kernels

    monkeypatch.setattr(_kernels, "SLAB_COLUMNS", 100)  # 9 bands, the last one partial
    rng = np.random.default_rng(3)
    a = (rng.random((18, 23, 37)) * 60000 - (30000 if dtype == np.int16 else 0))
    a = a.astype(dtype) if dtype != np.uint8 else (a / 256).astype(dtype)
    crop = (slice(3, 15), slice(0, 23), slice(2, 37))
    if name == "gaussian":
        ours = _kernels.gaussian(a, crop, params["sigma"], params["truncate"], "reflect", 0.0)
        reference = ndi.gaussian_filter(a, params["sigma"], truncate=params["truncate"])
    else:
        ours = _kernels.uniform(a, crop, params["size"], "reflect", 0.0)
        reference = ndi.uniform_filter(a, params["size"])
    reference = reference[crop]
    assert ours is not None and ours.dtype == a.dtype and ours.shape == reference.shape
    diff = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
    if dtype == np.float32:
        assert diff.max() <= 1e-6 * np.abs(reference).max()
    else:
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def _wide(dtype, shape, seed):
    """Values over the dtype's whole range (floats over 12 decades): sums that round."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.random(shape) * 10.0 ** rng.uniform(-6, 6, shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint64, np.int32,
                                   np.uint16, np.uint8])
@pytest.mark.parametrize("mode, cval", [("reflect", 0.0), ("constant", 3.0)])
def test_exact_uniform_keeps_scipys_running_sum(dtype, mode, cval):
    """scipy's uniform_filter1d keeps one running sum in double along each whole line, so
    an output's rounding depends on every value before it: a region far from the origin,
    and a volume cut into tiles, equal scipy on the whole array bitwise."""
    a = _wide(dtype, (6, 300, 320), 5)
    reference = ndi.uniform_filter(a, (1, 5, 4), mode=mode, cval=cval)
    result = lp.apply("uniform", da.from_array(a, chunks=(2, 16, 64)), size=(1, 5, 4),
                      mode=mode, cval=cval, precision="exact")
    rounds = np.dtype(dtype).kind == "f" or np.dtype(dtype).itemsize == 8
    assert result.prefix == (False, rounds, rounds)  # up to 32-bit integers: exact sums
    np.testing.assert_array_equal(np.asarray(result[3, 200:260, 250:310]),
                                  reference[3, 200:260, 250:310])
    np.testing.assert_array_equal(np.asarray(result), reference)  # tiles along z only
    if rounds:  # the same region from a block's edge does differ
        plain = ndi.uniform_filter(a[:, 100:, 100:], (1, 5, 4), mode=mode, cval=cval)
        assert (plain[:, 10:, 10:] != reference[:, 110:, 110:]).any()


def test_exact_local_mean_threshold_keeps_scipys_running_sum():
    """threshold_local's "mean" is a uniform filter in float64; on a flat area the mean
    lands on the voxel's value, so the last bit of the running sum decides the mask."""
    a = np.random.default_rng(2).integers(0, 4, (200, 260)).astype(np.uint16) * 7
    a[100:160, 100:200] = 9
    reference = a > filters.threshold_local(a, 5, method="mean")
    result = lp.apply("threshold_local", da.from_array(a, chunks=(32, 32)), block_size=5,
                      method="mean")
    np.testing.assert_array_equal(np.asarray(result[120:200, 150:260]),
                                  reference[120:200, 150:260])
    np.testing.assert_array_equal(np.asarray(result), reference)


def test_label_dtypes_per_frame_as_scipy_global_unsigned():
    """Per frame: scipy's int32 (values bitwise scipy's). Global: uint32, uint64 beyond
    2**32 - 1 labels (a whole volume can hold more than int32 counts)."""
    mask = ndi.gaussian_filter(np.random.default_rng(4).random((6, 30, 40)), 1.0) > 0.5
    frames = lp.apply("label", da.from_array(mask, chunks=(2, 16, 16)), axes="yx")
    ours = np.asarray(frames)
    reference = _per_frame(lambda m: ndi.label(m)[0], mask, 1)
    assert frames.dtype == ours.dtype == reference.dtype == np.int32
    np.testing.assert_array_equal(ours, reference)
    job = lp.apply("label", da.from_array(mask, chunks=(2, 16, 16)), scope="global").run()
    assert job.dtype == np.asarray(job).dtype == np.uint32
    assert_same_labels(np.asarray(job), ndi.label(mask)[0])

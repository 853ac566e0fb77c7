"""The fast convolve / correlate kernels (ops/_kernels_correlate.py) against
scipy.ndimage on the whole array: 1-D, 2-D and 3-D, odd and even kernels, every origin
scipy allows, every mode with a fast path, integer and float inputs, crops inside and at
the edges, large kernels (which OpenCV would filter by DFT), and through the public API."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_lazyproc as lp
from napari_lazyproc.ops import REGISTRY
from napari_lazyproc.ops.kernels import _correlate as _kernels_correlate
from napari_lazyproc.ops.kernels import _separable as _kernels

pytest.importorskip("cv2")

NAMES = ("convolve", "correlate")
MODES = ("reflect", "mirror", "nearest", "constant")
DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
SHAPES = {1: (23,), 2: (17, 21), 3: (9, 14, 16)}
#: odd, even and mixed kernels, per number of axes
KERNELS = {1: [(3,), (4,), (7,)], 2: [(3, 3), (2, 4), (5, 2)], 3: [(3, 3, 3), (2, 3, 4),
                                                                 (1, 4, 3)]}


def assert_within_contract(ours, ref):
    """Floats within 1e-6 of scipy relative to the reference's largest magnitude,
    integers within one grey level; the dtype and shape scipy gives."""
    assert ours is not None, "the fast kernel declined"
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    if ref.dtype.kind == "f":
        scale = max(float(np.abs(ref).max()), np.finfo(np.float64).tiny)
        assert float(diff.max()) <= 1e-6 * scale
    else:
        assert float(diff.max()) <= 1


def image(shape, dtype, seed=0):
    """Values that no kernel of ``weights`` below takes out of the dtype's range."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 40).astype(dtype)
    if dtype == np.int16:
        return rng.integers(-2000, 2000, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max // 2, shape).astype(dtype)


def weights(shape, dtype, seed=0):
    """Signed weights for floats and int16 (absolute values summing to 8: the range holds
    the sums), non-negative weights summing to 1.5 for unsigned integers (no sum below 0,
    none past the range)."""
    rng = np.random.default_rng(seed + 100)
    if np.dtype(dtype).kind == "u":
        w = rng.random(shape) + 0.05
        return w / w.sum() * 1.5
    w = rng.standard_normal(shape)
    return w / np.abs(w).sum() * 8 if dtype == np.int16 else w


def allowed_origins(shape):
    """scipy's extremes of origin per axis and 0: -(n // 2) <= o <= (n - 1) // 2."""
    lows = tuple(-(n // 2) for n in shape)
    highs = tuple((n - 1) // 2 for n in shape)
    return sorted({(0,) * len(shape), lows, highs})


def crops(shape):
    """The whole array, a box inside, and boxes at the low and high edges."""
    yield tuple(slice(0, n) for n in shape)
    yield tuple(slice(n // 3, n // 3 + 3) for n in shape)
    yield tuple(slice(0, 2) for n in shape)
    yield tuple(slice(n - 1, n) for n in shape)


def whole(shape):
    return tuple(slice(0, n) for n in shape)


# ----------------------------------------------------------------- against scipy


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_crops_equal_scipy_on_the_whole_array(name, ndim, mode, dtype):
    a = image(SHAPES[ndim], dtype, seed=ndim)
    kernel = getattr(_kernels_correlate, name)
    for i, kshape in enumerate(KERNELS[ndim]):
        w = weights(kshape, dtype, seed=i)
        for origin in allowed_origins(kshape):
            ref = getattr(ndi, name)(a, w, mode=mode, origin=origin)
            for crop in crops(a.shape):
                ours = kernel(a, crop, w, mode, 0.0, origin)
                assert_within_contract(ours, ref[crop])


@pytest.mark.parametrize("name", NAMES)
def test_even_kernels_and_origins_per_axis_are_scipys(name):
    """An even kernel with an origin on one axis only: convolve's extra shift (-1 on axes
    of even length) and the anchor's side are where a mistake moves values by one."""
    a = image((6, 11, 13), np.float64, seed=4)
    w = np.arange(1.0, 1.0 + 2 * 4 * 6).reshape(2, 4, 6) ** 1.5
    for origin in [(0, 0, 0), (-1, 0, 0), (0, 1, 0), (0, 0, -3), (0, -2, 2), (-1, 1, 2)]:
        ref = getattr(ndi, name)(a, w, mode="mirror", origin=origin)
        ours = getattr(_kernels_correlate, name)(a, whole(a.shape), w, "mirror", 0.0, origin)
        assert_within_contract(ours, ref)
    one = getattr(_kernels_correlate, name)(a, whole(a.shape), w, "mirror", 0.0, -1)
    assert_within_contract(one, getattr(ndi, name)(a, w, mode="mirror", origin=-1))


def test_a_nested_tuple_kernel_as_the_engine_passes_it():
    a = image((12, 15), np.float32)
    w = ((0.5, 1.0, 0.25), (0.0, 1.0, -0.5))
    for name in NAMES:
        ref = getattr(ndi, name)(a, np.array(w), mode="nearest", origin=(0, 1))
        ours = getattr(_kernels_correlate, name)(a, whole(a.shape), w, "nearest", 0.0, (0, 1))
        assert_within_contract(ours, ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_cases_are_within_the_contract(data):
    name = data.draw(st.sampled_from(NAMES))
    ndim = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 12)) for _ in range(ndim))
    kshape = tuple(data.draw(st.integers(1, 6)) for _ in range(ndim))
    origin = tuple(data.draw(st.integers(-(n // 2), (n - 1) // 2)) for n in kshape)
    mode = data.draw(st.sampled_from(MODES))
    dtype = data.draw(st.sampled_from(DTYPES))
    seed = data.draw(st.integers(0, 1000))
    starts = [data.draw(st.integers(0, n - 1)) for n in shape]
    crop = tuple(slice(s, data.draw(st.integers(s + 1, n)))
                 for s, n in zip(starts, shape, strict=True))
    a = image(shape, dtype, seed)
    w = weights(kshape, dtype, seed)
    ref = getattr(ndi, name)(a, w, mode=mode, origin=origin)
    ours = getattr(_kernels_correlate, name)(a, crop, w, mode, 0.0, origin)
    if name == "convolve":  # scipy's window of a convolution, as a correlation
        origin = tuple(-o - (1 - k % 2) for o, k in zip(origin, kshape, strict=True))
    centres = [k // 2 + o for k, o in zip(kshape, origin, strict=True)]
    if mode == "reflect" and any(max(c, k - 1 - c) >= 2 * n
                                 for c, k, n in zip(centres, kshape, shape, strict=True)):
        assert ours is None  # reaching a reflection period past a short axis: scipy's
        return
    assert_within_contract(ours, ref[crop])


# ------------------------------------------------------------------ large kernels


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kshape", [(7, 8), (11, 11), (15, 15), (4, 60), (60, 1), (2, 15, 15)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_kernels_are_within_the_contract(name, kshape, dtype):
    """Kernels of 50 taps or more, which OpenCV filters by DFT, run in pieces."""
    shape = (5, 40, 70)[-len(kshape):]
    a = (1000.0 + image(shape, dtype, seed=5)).astype(dtype)
    w = weights(kshape, dtype, seed=6)
    w -= w.mean()  # a zero sum: small results beside the image's values
    for mode in MODES:
        ref = getattr(ndi, name)(a, w, mode=mode)
        for crop in crops(a.shape):
            ours = getattr(_kernels_correlate, name)(a, crop, w, mode, 0.0, 0)
            assert_within_contract(ours, ref[crop])


@pytest.mark.parametrize("kshape", [(5, 5), (15, 15), (3, 9, 9)])
def test_a_nan_spreads_only_as_far_as_the_kernel(kshape):
    """scipy's NaN reaches only the windows that hold it (a DFT would spread it over the
    plane); weights within DBL_EPSILON of 0 are left out, as scipy leaves them out."""
    shape = (6, 40, 41)[-len(kshape):]
    a = image(shape, np.float64, seed=7)
    a[(2, 20, 20)[-len(kshape):]] = np.nan
    w = weights(kshape, np.float64, seed=8)
    w[(1, 0, 0)[-len(kshape):]] = 1e-17
    ref = ndi.correlate(a, w, mode="reflect")
    ours = _kernels_correlate.correlate(a, whole(shape), w, "reflect", 0.0)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert 0 < np.isnan(ref).sum() < ref.size // 4
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.nanmax(np.abs(ref)))


@pytest.mark.parametrize("kshape, dtype, top", [((9, 9), np.uint8, 3),
                                                ((3, 12, 12), np.uint16, 150)])
def test_integer_weights_give_scipys_integers_exactly(kshape, dtype, top):
    """Whole numbers sum exactly in float64 when summed directly (a DFT would leave
    99.999... where scipy has 100, one grey level off after truncation)."""
    shape = (5, 30, 33)[-len(kshape):]
    a = np.random.default_rng(9).integers(0, top + 1, shape).astype(dtype)
    w = np.random.default_rng(10).integers(0, 2, kshape).astype(np.float64)
    ref = ndi.correlate(a, w, mode="nearest")
    ours = _kernels_correlate.correlate(a, whole(shape), w, "nearest", 0.0)
    assert ours is not None
    np.testing.assert_array_equal(ours, ref)


# ------------------------------------------------------------------ precision cases


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_zero_sum_kernel_on_a_large_offset(name, dtype):
    """The results are tiny beside the values: the contract is relative to scipy's
    largest result, not to the image."""
    rng = np.random.default_rng(12)
    a = (50000.0 + rng.random((6, 30, 31))).astype(dtype)
    w = rng.standard_normal((3, 3, 3))
    w -= w.mean()
    for mode in MODES:
        ref = getattr(ndi, name)(a, w, mode=mode)
        if mode != "constant":
            assert np.abs(ref).max() < 50  # tiny beside 50000: the case is what it says
        ours = getattr(_kernels_correlate, name)(a, whole(a.shape), w, mode, 0.0)
        assert_within_contract(ours, ref)


def test_negative_weights_on_uint16_that_would_wrap_are_left_to_scipy():
    rng = np.random.default_rng(13)
    a = rng.integers(0, 1000, (5, 20, 22)).astype(np.uint16)
    w = np.zeros((3, 3, 3))
    w[1] = [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    ref = ndi.correlate(a, w)
    assert ref.max() > 60000  # scipy wrapped a negative sum around
    for name in NAMES:
        assert getattr(_kernels_correlate, name)(a, whole(a.shape), w, "reflect", 0.0) is None


def test_negative_weights_on_uint16_that_cannot_wrap_are_fast():
    rng = np.random.default_rng(14)
    a = rng.integers(1000, 1400, (5, 20, 22)).astype(np.uint16)
    w = np.zeros((3, 3, 3))
    w[1] = [[0, -0.5, 0], [-0.5, 3.3, -0.5], [0, -0.5, 0]]  # at least 3.3 * 1000 - 2 * 1400
    for name in NAMES:
        for mode in ("reflect", "nearest", "mirror"):
            ref = getattr(ndi, name)(a, w, mode=mode)
            ours = getattr(_kernels_correlate, name)(a, whole(a.shape), w, mode, 0.0)
            assert_within_contract(ours, ref)
    # the constant mode's zeros make the least sum -2 * 1400: scipy's wrap-around
    assert _kernels_correlate.correlate(a, whole(a.shape), w, "constant", 0.0) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_sums_past_the_range_are_left_to_scipy(dtype):
    info = np.iinfo(dtype)
    a = np.full((9, 10), info.max // 2 + 7, dtype)
    a[::2] = info.min // 2
    w = np.ones((3, 3)) / 4  # up to 9 / 4 of the values
    assert _kernels_correlate.correlate(a, whole(a.shape), w, "reflect", 0.0) is None
    small = (a // 8).astype(dtype)  # now no sum is out of range
    assert_within_contract(_kernels_correlate.correlate(small, whole(a.shape), w, "reflect",
                                                        0.0),
                           ndi.correlate(small, w, mode="reflect"))


def test_integer_results_truncate_toward_zero():
    """scipy truncates a double sum toward zero: -2.5 is -2, 2.5 is 2, for int16."""
    a = np.array([[-5, 5, -5, 5, 7, -7]], np.int16)
    w = np.array([[0.5]])
    ours = _kernels_correlate.correlate(a, whole(a.shape), w, "reflect", 0.0)
    np.testing.assert_array_equal(ours, ndi.correlate(a, w))
    np.testing.assert_array_equal(ours, [[-2, 2, -2, 2, 3, -3]])


# --------------------------------------------------------------------- no fast path


def test_no_fast_path_returns_none(monkeypatch):
    a = image((5, 12, 13), np.float32)
    w = weights((3, 3, 3), np.float32)
    crop = (slice(1, 4), slice(0, 12), slice(0, 13))
    for name in NAMES:
        kernel = getattr(_kernels_correlate, name)
        assert kernel(a, crop, w, "reflect", 0.0) is not None  # the declines below are real
        for mode in ("wrap", "grid-wrap", "grid-mirror", "grid-constant"):
            assert kernel(a, crop, w, mode, 0.0) is None
        assert kernel(a, crop, w, "constant", 2.5) is None  # OpenCV's border is 0
        assert kernel(a.astype(np.float16), crop, w, "reflect", 0.0) is None
        assert kernel(a.astype(np.int32), crop, w, "reflect", 0.0) is None
        assert kernel(a.astype(np.int64), crop, w, "reflect", 0.0) is None
        assert kernel(a[None], (slice(0, 1), *crop), w[None], "reflect", 0.0) is None
        assert kernel(a[:0], (slice(0, 0), *crop[1:]), w, "reflect", 0.0) is None
        assert kernel(da.from_array(a), crop, w, "reflect", 0.0) is None  # not numpy
        assert kernel(a, crop, w[0], "reflect", 0.0) is None  # a 2-D kernel, 3 axes
    monkeypatch.setattr(_kernels, "cv2", None)  # OpenCV missing: scipy runs
    assert _kernels_correlate.correlate(a, crop, w, "reflect", 0.0) is None


# ------------------------------------------------------------------------- engine


def test_registered_as_fast_kernels():
    for name in NAMES:
        assert REGISTRY[name].fast is getattr(_kernels_correlate, name)


def _regions(shape):
    yield tuple(slice(0, n) for n in shape)
    yield tuple(slice(0, 3) for n in shape)
    yield tuple(slice(n - 5, n) for n in shape)
    yield tuple(slice(n // 3, n // 3 + 6) for n in shape)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_through_the_api_with_chunks(name, dtype, fast_spy):
    """lp.apply with chunks smaller than the kernel: the fast kernel runs (and does not
    decline) for every region read, within the contract of scipy on the whole array;
    "exact" is bitwise scipy."""
    answers = fast_spy(name)
    a = image((10, 30, 40), dtype, seed=15)
    w = weights((3, 4, 5), dtype, seed=16)
    origin = (1, -2, 0)
    ref = getattr(ndi, name)(a, w, origin=origin)
    data = da.from_array(a, chunks=(4, 9, 16))
    fast = lp.apply(name, data, weights=w, origin=list(origin), precision="fast")
    exact = lp.apply(name, data, weights=w, origin=list(origin), precision="exact")
    for key in _regions(a.shape):
        assert_within_contract(np.asarray(fast[key]), ref[key])
        np.testing.assert_array_equal(np.asarray(exact[key]), ref[key])
    # the export's graph: one task per chunk, each block a chunk and its halo
    assert_within_contract(fast.to_dask().compute(scheduler="sync"), ref)
    np.testing.assert_array_equal(exact.to_dask().compute(scheduler="sync"), ref)
    assert len(answers) >= 3 * 4 * 3 and all(answers)  # at least one per chunk


def test_through_the_api_per_plane_axes():
    """A 2-D kernel over the y and x of a 3-D array: each plane is one 2-D block."""
    a = image((4, 25, 30), np.float64, seed=17)
    w = weights((5, 4), np.float64, seed=18)
    res = lp.apply("convolve", da.from_array(a, chunks=(1, 10, 10)), weights=w, axes="yx",
                   mode="mirror", precision="fast")
    ref = np.stack([ndi.convolve(p, w, mode="mirror") for p in a])
    assert_within_contract(np.asarray(res), ref)


@pytest.mark.parametrize("shape, ks, origin", [((2, 8), (9, 1), (0, 0)),
                                               ((8, 3), (1, 13), (0, 0)),
                                               ((2, 21, 12), (13, 11, 1), (3, -4, 0))])
def test_a_kernel_reaching_far_past_a_short_array_is_left_to_scipy(shape, ks, origin):
    """scipy reflects a window reaching far past a short axis from other elements than
    numpy's padding does; the fast kernel declines there, so fast equals exact."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal(shape)
    w = rng.standard_normal(ks)
    crop = tuple(slice(0, n) for n in shape)
    assert _kernels_correlate.correlate(a, crop, w, "reflect", 0.0, origin) is None
    ours = lp.apply("correlate", a, weights=w, mode="reflect", origin=origin,
                    precision="fast")
    np.testing.assert_array_equal(np.asarray(ours),
                                  ndi.correlate(a, w, mode="reflect", origin=origin))

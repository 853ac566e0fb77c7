"""The fast edge kernels (ops/_kernels_edges.py) against scipy.ndimage on the whole array:
Sobel, Prewitt, Laplace, Laplacian of Gaussian and Gaussian gradient magnitude, every
mode, crops inside and at the edges, integer and float inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_lazyproc.ops import REGISTRY
from napari_lazyproc.ops.kernels import _edges as _kernels_edges
from napari_lazyproc.ops.kernels import _separable as _kernels

pytest.importorskip("cv2")

F32 = np.float32
SIGMA = (1.3, 0.8, 1.7)
#: (kernel name, its parameters, scipy on the whole float array)
CASES = {
    "sobel": ({"axis": "magnitude"}, lambda f, m, c: np.sqrt(sum(
        ndi.sobel(f, axis=i, mode=m, cval=c) ** 2 for i in range(f.ndim))).astype(f.dtype)),
    "sobel-x": ({"axis": "x"}, lambda f, m, c: ndi.sobel(f, axis=-1, mode=m, cval=c)),
    "sobel-first": ({"axis": "first"}, lambda f, m, c: ndi.sobel(f, axis=0, mode=m, cval=c)),
    "prewitt": ({"axis": "magnitude"}, lambda f, m, c: np.sqrt(sum(
        ndi.prewitt(f, axis=i, mode=m, cval=c) ** 2 for i in range(f.ndim))).astype(f.dtype)),
    "prewitt-y": ({"axis": "y"}, lambda f, m, c: ndi.prewitt(f, axis=-2, mode=m, cval=c)),
    "laplace": ({}, lambda f, m, c: ndi.laplace(f, mode=m, cval=c)),
    "gaussian_laplace": (
        {"sigma": SIGMA, "truncate": 4.0},
        lambda f, m, c: ndi.gaussian_laplace(f, SIGMA[-f.ndim:], mode=m, cval=c)),
    "gaussian_gradient_magnitude": (
        {"sigma": SIGMA, "truncate": 3.0},
        lambda f, m, c: ndi.gaussian_gradient_magnitude(f, SIGMA[-f.ndim:], mode=m, cval=c,
                                                        truncate=3.0)),
}
MODES = [("reflect", 0.0), ("mirror", 0.0), ("nearest", 0.0), ("constant", 0.0),
         ("constant", -37.25)]


def run(case, block, crop, mode, cval):
    """The kernel of ``case`` as the engine calls it (axes passed for one axis)."""
    params, _ = CASES[case]
    name = case.split("-")[0]
    params = dict(params)
    if "sigma" in params:
        params["sigma"] = params["sigma"][-block.ndim:]
    axes = "zyx"[-block.ndim:]
    if params.get("axis") == "first":
        params["axis"] = axes[0]
    if "axis" in params:
        params["axes"] = axes
    return getattr(_kernels_edges, name)(block, crop, mode=mode, cval=cval, **params)


def reference(case, a, mode, cval):
    f = a if a.dtype.kind == "f" else a.astype(F32)  # the exact path's as_float
    return CASES[case][1](f, mode, cval)


def assert_within_contract(ours, ref):
    """Float outputs within 1e-6 of scipy relative to the reference's largest magnitude."""
    assert ours is not None
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    scale = max(float(np.abs(ref).max()), np.finfo(F32).tiny)
    assert float(np.abs(ours.astype(np.float64) - ref).max()) <= 1e-6 * scale


def data(kind, dtype, shape=(24, 64, 64), seed=0):
    rng = np.random.default_rng(seed)
    if kind == "smooth":
        a = ndi.gaussian_filter(rng.random(shape), 3.0)
        a = (a - a.min()) / np.ptp(a) * 250
    else:
        a = rng.random(shape) * 250
    if dtype == np.uint16:
        a = a * 250
    return a.astype(dtype)


CROPS = {
    "middle": (slice(9, 14), slice(20, 45), slice(30, 31)),
    "low edges": (slice(0, 3), slice(0, 64), slice(0, 5)),
    "high edges": (slice(21, 24), slice(60, 64), slice(0, 64)),
    "one plane": (slice(23, 24), slice(0, 64), slice(0, 64)),
    "one voxel": (slice(0, 1), slice(63, 64), slice(0, 1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode, cval", MODES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("kind", ["smooth", "noisy"])
def test_crops_equal_scipy_on_the_whole_array(case, mode, cval, dtype, kind):
    a = data(kind, dtype)
    ref = reference(case, a, mode, cval)
    for crop in CROPS.values():
        assert_within_contract(run(case, a, crop, mode, cval), ref[crop])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode, cval", MODES)
def test_2d_and_1d_blocks(case, mode, cval):
    a = data("noisy", np.float32, (40, 37))
    ref = reference(case, a, mode, cval)
    for crop in [(slice(0, 40), slice(0, 37)), (slice(38, 40), slice(5, 6))]:
        assert_within_contract(run(case, a, crop, mode, cval), ref[crop])
    if "-" in case and case != "sobel-x":
        return  # one row has no y and no first axis but x
    line = a[3]
    assert_within_contract(run(case, line, (slice(0, 37),), mode, cval),
                           reference(case, line, mode, cval))


@pytest.mark.parametrize("case", ["sobel", "laplace", "gaussian_laplace",
                                  "gaussian_gradient_magnitude"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_one_plane_of_a_slab_reads_only_its_halo(case, dtype):
    """The engine's first-plane block: the plane's halo of planes above and below; the
    block's z edges are inside the array (only the halo is there, not the array edge)."""
    a = data("noisy", dtype, (30, 48, 50), seed=3)
    params = {k: v for k, v in CASES[case][0].items() if k != "axis"}
    halo = REGISTRY[case].halo(params, 3)[0]
    ref = reference(case, a, "reflect", 0.0)
    for z in (halo, 15, 29 - halo):
        block = a[z - halo : z + halo + 1]
        crop = (slice(halo, halo + 1), slice(0, 48), slice(0, 50))
        assert_within_contract(run(case, block, crop, "reflect", 0.0), ref[z : z + 1])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("ndim", [2, 3])
def test_every_kernel_runs_for_its_dtypes(case, dtype, ndim):
    a = data("noisy", dtype, (6, 20, 21)[-ndim:], seed=ndim)
    crop = tuple(slice(1, n - 1) for n in a.shape)
    ours = run(case, a, crop, "nearest", 0.0)
    assert ours is not None
    assert ours.dtype == (np.float64 if dtype == np.float64 else F32)
    assert_within_contract(ours, reference(case, a, "nearest", 0.0)[crop])


@pytest.mark.parametrize("name", ["sobel", "prewitt", "laplace", "gaussian_laplace",
                                  "gaussian_gradient_magnitude"])
@pytest.mark.parametrize("mode, cval", [*MODES, ("constant", 77.0)])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
def test_a_flat_array_gives_what_scipy_gives(name, mode, cval, dtype):
    """Derivatives of a flat array cancel to exactly 0 in scipy (pairs of taps): a sum
    that leaves 1e-16 of the value would break the contract, whose scale is then 0."""
    a = np.full((7, 20, 21), 77, dtype)
    crop = (slice(0, 7), slice(0, 20), slice(0, 21))
    ours = run(name, a, crop, mode, cval)
    assert_within_contract(ours, reference(name, a, mode, cval))


def test_gaussian_weights_are_scipys():
    try:
        from scipy.ndimage._filters import _gaussian_kernel1d
    except ImportError:  # a private helper; its formula is what is reimplemented
        pytest.skip("scipy.ndimage._filters._gaussian_kernel1d is not there")
    for sigma in (0.3, 1.0, 1.7, 4.2):
        for order in (0, 1, 2):
            radius = int(4.0 * sigma + 0.5)
            np.testing.assert_array_equal(_kernels.gaussian_kernel1d(sigma, order, radius),
                                          _gaussian_kernel1d(sigma, order, radius))


def test_no_fast_path_returns_none(monkeypatch):
    a = data("noisy", np.float32, (5, 12, 12))
    crop = (slice(1, 4), slice(0, 12), slice(0, 12))
    # one axis by its letter needs the axes, which the engine does not pass to kernels
    assert _kernels_edges.sobel(a, crop, axis="x", mode="reflect", cval=0.0) is None
    assert _kernels_edges.sobel(a.astype(np.float16), crop, axis="magnitude",
                                mode="reflect", cval=0.0) is None
    assert _kernels_edges.laplace(a.astype(np.int32), crop, mode="reflect", cval=0.0) is None
    assert _kernels_edges.laplace(a, crop, mode="wrap", cval=0.0) is None
    assert _kernels_edges.laplace(a[None], (slice(0, 1), *crop), mode="reflect",
                                  cval=0.0) is None
    monkeypatch.setattr(_kernels, "cv2", None)  # OpenCV missing: scipy runs
    assert _kernels_edges.gaussian_laplace(a, crop, sigma=(1, 1, 1), truncate=4.0,
                                           mode="reflect", cval=0.0) is None


def test_registered_as_fast_kernels():
    for name in ("sobel", "prewitt", "laplace", "gaussian_laplace",
                 "gaussian_gradient_magnitude"):
        assert REGISTRY[name].fast is getattr(_kernels_edges, name)


@pytest.mark.parametrize("name", ["sobel", "prewitt"])
@pytest.mark.parametrize("axis", ["z", "y", "x", "magnitude"])
def test_the_engine_runs_the_kernel_along_a_named_axis(name, axis, fast_spy):
    """The engine passes the spatial axis letters, so a derivative along one axis takes
    the fast path too (a kernel returning None would fall back to scipy silently)."""
    import dask.array as da

    import napari_lazyproc as lp

    answers = fast_spy(name)
    a = np.random.default_rng(2).random((9, 20, 24)).astype(np.float32)
    res = lp.apply(name, da.from_array(a, chunks=(4, 11, 9)), axis=axis, precision="fast")
    ours = np.asarray(res)
    assert answers and all(answers)
    fn = getattr(ndi, name)
    ref = (np.sqrt(sum(fn(a, axis=i) ** 2 for i in range(3))) if axis == "magnitude"
           else fn(a, axis="zyx".index(axis)))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())

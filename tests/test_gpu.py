"""The CuPy backend: CPU-only behaviour everywhere, and GPU equality where a device exists."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import OP_CASES
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.backend import get_backend, gpu_available
from napari_lazyproc.ops import REGISTRY

HAS_GPU, WHY = gpu_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason=f"no GPU: {WHY}")


# ------------------------------------------------------------------ without a GPU

@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_gpu_available_says_why_not():
    ok, why = gpu_available()
    assert ok is False
    assert "CuPy" in why or "CUDA" in why


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_set_backend_cupy_raises_a_clear_error():
    with pytest.raises(RuntimeError, match="cannot use the cupy backend: .*(CuPy|CUDA)"):
        lp.set_backend("cupy")
    assert get_backend() == "numpy"


@pytest.mark.slow
@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_cli_gpu_exits_2_with_the_reason(zarr_v3_array, tmp_path):
    done = subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", "process",
                           str(zarr_v3_array), "-o", str(tmp_path / "o.zarr"), "--gpu",
                           "--step", "gaussian"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot use the cupy backend" in done.stderr and WHY.split(" (")[0] in done.stderr


def test_backend_name_is_checked():
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'cupy', not 'opencl'"):
        lp.set_backend("opencl")


# ------------------------------------------------------------------ with a GPU

@pytest.fixture
def cupy_backend():
    lp.set_backend("cupy")
    yield
    lp.set_backend("numpy")


def _case(name):
    return OP_CASES[name]


INTEGER_OPS = {"median", "minimum", "maximum", "percentile", "erosion", "dilation", "opening",
               "closing", "white_tophat", "black_tophat", "binary_erosion", "binary_dilation",
               "binary_opening", "binary_closing", "fill_holes", "threshold", "threshold_otsu",
               "threshold_li", "threshold_triangle", "label", "convert_dtype"}


def _cpu_exact(fn):
    """``fn()`` computed by scipy on the CPU (exact precision), the cache cleared first."""
    lp.set_backend("numpy")
    try:
        lp.ops.CACHE.clear()
        return fn()
    finally:
        lp.set_backend("cupy")
        lp.ops.CACHE.clear()


def assert_fast_contract(name, values, reference):
    """The fast precision contract, which the GPU path meets against scipy: labels equal up
    to a permutation; order statistics, thresholds and masks equal; other integer outputs
    within one grey level; floats within 1e-6 of the reference's largest magnitude."""
    assert values.shape == reference.shape and values.dtype == reference.dtype, name
    if name == "label":
        pairs = np.unique(np.stack([values.ravel(), reference.ravel()]), axis=1)
        assert pairs.shape[1] == len(np.unique(reference)), name
    elif name in INTEGER_OPS or reference.dtype.kind == "b":
        np.testing.assert_array_equal(values, reference, err_msg=name)
    elif reference.dtype.kind in "iu":
        diff = np.abs(values.astype(np.int64) - reference.astype(np.int64))
        assert diff.max() <= 1, f"{name}: {diff.max()} grey levels from scipy"
    else:
        scale = max(float(np.abs(reference).max()), np.finfo(reference.dtype).tiny)
        err = float(np.abs(values.astype(np.float64) - reference).max()) / scale
        assert err <= 1e-6, f"{name}: {err:.2e} of the largest magnitude from scipy"


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("chunks", [(3, 7, 9), (16, 40, 40)])
def test_gpu_meets_the_fast_contract_against_scipy(name, chunks, cupy_backend):
    import dask.array as da

    rng = np.random.default_rng(0)
    a = (ndi.gaussian_filter(rng.random((16, 40, 40)), 1.5) * 4000).astype(np.uint16)
    if REGISTRY[name].binary_input:
        a = (a > np.percentile(a, 60)).astype(np.uint8)
    params, _ = _case(name)
    data = da.from_array(a, chunks=chunks)
    lp.ops.CACHE.clear()
    res = lp.apply(name, data, **params)
    gpu_values = np.asarray(res)
    reference = _cpu_exact(lambda: np.asarray(lp.apply(name, data, precision="exact", **params)))
    assert_fast_contract(name, gpu_values, reference)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name, params", [("project", {"axis": "z", "method": "mean"}),
                                          ("gaussian", {"sigma": 1.5}),
                                          ("threshold_otsu", {})])
def test_an_exact_read_after_a_gpu_read_is_scipy_s_without_clearing_the_cache(
        name, params, cupy_backend):
    """Fast (on the GPU) and exact share no cache entry, whether or not the operation
    has a CPU fast kernel (a projection has none): the exact values are scipy's."""
    a = np.random.default_rng(5).random((8, 48, 48)).astype(np.float32)
    data = lp.apply(name, a, **params)
    gpu_values = np.asarray(data)  # cached, computed on the device
    exact = np.asarray(lp.apply(name, a, precision="exact", **params))
    reference = _cpu_exact(lambda: np.asarray(lp.apply(name, a, precision="exact", **params)))
    np.testing.assert_array_equal(exact, reference)
    assert gpu_values.shape == reference.shape


@gpu
@pytest.mark.gpu
def test_exact_precision_computes_with_scipy_even_under_the_gpu_backend(cupy_backend):
    a = np.random.default_rng(4).random((8, 48, 48)).astype(np.float32)
    lp.ops.CACHE.clear()
    res = lp.apply("gaussian", a, sigma=1.5, precision="exact")
    assert not res.on_gpu
    np.testing.assert_array_equal(np.asarray(res), ndi.gaussian_filter(a, 1.5))
    assert lp.apply("gaussian", a, sigma=1.5).on_gpu


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name, params", [("gaussian", {"sigma": 2.0}), ("median", {"size": 3}),
                                          ("threshold_otsu", {})])
def test_pyramid_levels_on_the_gpu_match_scipy_level_by_level(name, params, cupy_backend):
    rng = np.random.default_rng(5)
    base = (ndi.gaussian_filter(rng.random((12, 96, 96)), 1) * 4000).astype(np.uint16)
    pyramid = [base, base[:, ::2, ::2].copy(), base[:, ::4, ::4].copy()]
    lp.ops.CACHE.clear()
    res = lp.apply(name, pyramid, **params)
    assert res.multiscale and len(res.levels) == 3
    gpu_levels = [np.asarray(level) for level in res.levels]
    cpu_levels = _cpu_exact(lambda: [np.asarray(level) for level in lp.apply(
        name, pyramid, precision="exact", **params).levels])
    for k, (values, reference) in enumerate(zip(gpu_levels, cpu_levels, strict=True)):
        assert_fast_contract(f"{name} level {k}", values, reference)


@gpu
@pytest.mark.gpu
def test_export_on_the_gpu_writes_what_scipy_computes(cupy_backend, tmp_path):
    a = (np.random.default_rng(6).random((24, 96, 80)) * 60000).astype(np.uint16)
    lp.ops.CACHE.clear()
    out = tmp_path / "gpu.ome.zarr"
    lp.export(lp.apply("median", a, size=3), out)
    written = np.asarray(lp.open_image(out).levels[0])
    np.testing.assert_array_equal(written, ndi.median_filter(a, size=3))


@gpu
@pytest.mark.gpu
@pytest.mark.slow
def test_cli_process_gpu_writes_what_scipy_computes(zarr_v3_array, tmp_path):
    import zarr

    out = tmp_path / "cli.zarr"
    done = subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", "process",
                           str(zarr_v3_array), "-o", str(out), "--gpu", "--format", "zarr",
                           "--quiet", "--step", "maximum:size=3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    source = np.asarray(zarr.open_array(zarr_v3_array, mode="r"))
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out, mode="r")),
                                  ndi.maximum_filter(source, size=3))


@gpu
@pytest.mark.gpu
def test_chained_steps_stay_on_device_and_global_labels_match(cupy_backend):
    import dask.array as da

    rng = np.random.default_rng(1)
    a = ndi.gaussian_filter(rng.random((24, 64, 64)), 2).astype(np.float32)
    data = da.from_array(a, chunks=(8, 32, 32))
    smooth = lp.apply("gaussian", data, sigma=1.0)
    mask = lp.apply("threshold", smooth, value=0.5)
    assert smooth.on_gpu and mask.on_gpu
    smoothed = np.asarray(smooth)
    assert_fast_contract("gaussian", smoothed, ndi.gaussian_filter(a, 1.0))
    # a threshold is exact on what it is given (a value at 0.5 +- 1e-7 may fall either side
    # of scipy's float32 Gaussian, which the contract allows)
    np.testing.assert_array_equal(np.asarray(mask), smoothed > 0.5)
    job = lp.apply("label", mask, scope="global").run()
    assert job.n_labels == ndi.label(smoothed > 0.5)[1]


@gpu
@pytest.mark.gpu
def test_out_of_memory_splits_tiles_then_falls_back_to_cpu():
    import dask.array as da

    a = np.random.default_rng(2).random((16, 128, 128)).astype(np.float32)
    data = da.from_array(a, chunks=(16, 64, 64))
    lp.set_backend("cupy", memory_budget=64 * 2**20)
    try:
        lp.ops.CACHE.clear()
        values = np.asarray(lp.apply("gaussian", data, sigma=2.0))  # fits, after splitting
        np.testing.assert_allclose(values, ndi.gaussian_filter(a, 2.0), rtol=1e-5, atol=1e-6)
        lp.set_backend("cupy", memory_budget=1024)  # nothing fits: CPU, with a warning
        lp.ops.CACHE.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = np.asarray(lp.apply("median", data, size=3))
        np.testing.assert_array_equal(values, ndi.median_filter(a, size=3))
        assert any("out of GPU memory" in str(w.message) for w in caught)
    finally:
        lp.set_backend("numpy")


def test_gpu_filters_run_scipy_sequence_of_double_passes(monkeypatch):
    """backend.gpu_ndimage composes cupyx's 1-D passes the way scipy composes its own (double
    sums, stored in the output type between axes, derivatives summed axis by axis); with
    scipy's 1-D passes in place of cupyx's, every filter is bitwise scipy's."""
    from napari_lazyproc.backend import gpu_ndimage

    monkeypatch.setattr(gpu_ndimage, "_cndi", lambda: ndi)
    rng = np.random.default_rng(7)
    f = (ndi.gaussian_filter(rng.random((10, 40, 50)), 1.5) * 4000).astype(np.float32)
    for name, a, args in [("gaussian_filter", f, (1.5,)), ("gaussian_filter", f.astype(np.uint16),
                                                              ((1, 2, 0),)),
                          ("gaussian_laplace", f, (1.5,)),
                          ("gaussian_gradient_magnitude", f, ((1, 2, 2.5),)),
                          ("uniform_filter", f.astype(np.uint16), (3,)),
                          ("uniform_filter", f, ((1, 3, 5),))]:
        for mode in ("reflect", "nearest", "constant"):
            ours = getattr(gpu_ndimage, name)(a, *args, mode=mode)
            ref = getattr(ndi, name)(a, *args, mode=mode)
            assert ours.dtype == ref.dtype, name
            np.testing.assert_array_equal(ours, ref, err_msg=f"{name} {a.dtype} {mode}")
    assert gpu_ndimage.median_filter is ndi.median_filter  # the rest is cupyx's, unchanged


@gpu
@pytest.mark.gpu
def test_switching_off_frees_the_pool():
    import cupy

    lp.set_backend("cupy")
    x = cupy.ones((1024, 1024, 64), dtype=cupy.float32)
    del x
    assert cupy.get_default_memory_pool().total_bytes() > 0
    lp.set_backend("numpy")
    assert cupy.get_default_memory_pool().total_bytes() == 0

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


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("chunks", [(3, 7, 9), (16, 40, 40)])
def test_gpu_equals_cpu(name, chunks, cupy_backend):
    import dask.array as da

    rng = np.random.default_rng(0)
    a = (ndi.gaussian_filter(rng.random((16, 40, 40)), 1.5) * 4000).astype(np.uint16)
    if REGISTRY[name].binary_input:
        a = (a > np.percentile(a, 60)).astype(np.uint8)
    params, _ = _case(name)
    data = da.from_array(a, chunks=chunks)
    gpu_values = np.asarray(lp.apply(name, data, **params))
    lp.set_backend("numpy")
    lp.ops.CACHE.clear()
    cpu_values = np.asarray(lp.apply(name, data, **params))
    lp.set_backend("cupy")
    if name == "label":
        pairs = np.unique(np.stack([gpu_values.ravel(), cpu_values.ravel()]), axis=1)
        assert pairs.shape[1] == len(np.unique(cpu_values))
    elif name in INTEGER_OPS or cpu_values.dtype.kind in "biu":
        np.testing.assert_array_equal(gpu_values, cpu_values)
    else:
        np.testing.assert_allclose(gpu_values, cpu_values, rtol=1e-5,
                                   atol=1e-5 * abs(cpu_values).max())


@gpu
@pytest.mark.gpu
def test_chained_steps_stay_on_device_and_global_labels_match(cupy_backend):
    import dask.array as da

    rng = np.random.default_rng(1)
    a = ndi.gaussian_filter(rng.random((24, 64, 64)), 2).astype(np.float32)
    data = da.from_array(a, chunks=(8, 32, 32))
    mask = lp.apply("threshold", lp.apply("gaussian", data, sigma=1.0), value=0.5)
    np.testing.assert_array_equal(np.asarray(mask), ndi.gaussian_filter(a, 1.0) > 0.5)
    job = lp.apply("label", mask, scope="global").run()
    expected, n = ndi.label(ndi.gaussian_filter(a, 1.0) > 0.5)
    assert job.n_labels == n


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

"""Transforms as scipy.ndimage takes them: an affine matrix of k < n columns (a k-D
output of an n-D input: its last k axes), and ``zoom(grid_mode=True)`` with the
``constant`` and ``wrap`` modes (scipy warns, and computes: so do we)."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_lazyproc as lp


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), k=st.integers(1, 2), order=st.integers(0, 3),
       chunk=st.integers(2, 5), precision=st.sampled_from(["exact", "fast"]))
def test_affine_with_fewer_output_axes_equals_scipy(seed, k, order, chunk, precision):
    rng = np.random.default_rng(seed)
    a = rng.random((5, 8, 9))
    m = rng.random((3, k)) * 1.5 - 0.3
    offset = rng.random(3) * 3
    out_shape = tuple(int(v) for v in rng.integers(2, 7, k))
    ref = ndi.affine_transform(a, m, offset, out_shape, order=order, mode="nearest")
    res = lp.apply("affine_transform", da.from_array(a, chunks=chunk), matrix=m,
                   offset=offset.tolist(), output_shape=out_shape, order=order, mode="nearest",
                   precision=precision)
    assert res.shape == ref.shape and res.axes == "zyx"[3 - k:]
    region = tuple(slice(int(rng.integers(0, n)), n) for n in out_shape)
    np.testing.assert_allclose(np.asarray(res[region]), ref[region], rtol=0,
                               atol=1e-12 * max(1.0, np.abs(ref).max()))


def test_affine_output_shape_must_match_the_matrix_columns():
    with pytest.raises(ValueError, match="output_shape must have 1 values"):
        lp.apply("affine_transform", np.zeros((4, 5)), matrix=[[1.0], [2.0]])


@pytest.mark.parametrize("mode", ["constant", "wrap"])
def test_zoom_grid_mode_with_constant_or_wrap_warns_as_scipy_and_equals_it(mode):
    a = np.random.default_rng(1).random((9, 14))
    with pytest.warns(UserWarning, match=f"grid-{mode}"):
        res = lp.apply("zoom", da.from_array(a, chunks=(3, 4)), zoom=(1.6, 0.7),
                       grid_mode=True, mode=mode, order=1, precision="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = ndi.zoom(a, (1.6, 0.7), grid_mode=True, mode=mode, order=1)
    np.testing.assert_array_equal(np.asarray(res[3:, 2:]), ref[3:, 2:])

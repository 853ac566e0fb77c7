"""The display array-like answers any numpy basic index exactly, reading one region."""

from __future__ import annotations

import dask.array as da
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_lazyproc.io import LazyArray

A = np.arange(5 * 6 * 7).reshape(5, 6, 7)


class CountingSource:
    def __init__(self, array):
        self.array, self.shape, self.dtype, self.calls = array, array.shape, array.dtype, []

    def __getitem__(self, key):
        assert all(not isinstance(k, slice) or k.step in (None, 1) for k in key)
        self.calls.append(key)
        return self.array[key]


def _index(n):
    bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    return st.one_of(
        st.integers(-n, n - 1),
        st.builds(slice, bound, bound, st.sampled_from([None, 1, 2, 3, -1, -2, -3])),
    )


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 3).flatmap(lambda k: st.tuples(*[_index(n) for n in A.shape[:k]])))
def test_basic_indexing_matches_numpy_in_one_read(key):
    source = CountingSource(A)
    lazy = LazyArray(source, da.from_array(A, chunks=2))
    view = lazy[key]
    np.testing.assert_array_equal(np.asarray(view), A[key])
    assert len(source.calls) == 1
    # views of views compose (napari narrows displayed axes, then the others)
    if isinstance(view, LazyArray) and view.ndim:
        np.testing.assert_array_equal(np.asarray(view[..., :2]), A[key][..., :2])
        np.testing.assert_array_equal(view.to_dask().compute(), A[key])


def test_slicing_is_lazy_until_asarray():
    source = CountingSource(A)
    lazy = LazyArray(source, da.from_array(A, chunks=2))
    view = lazy[:, :, 2:5][1:3][0]
    assert source.calls == [] and view.shape == (6, 3)
    np.testing.assert_array_equal(np.asarray(view), A[1, :, 2:5])
    assert source.calls == [(1, slice(0, 6), slice(2, 5))]


def test_fancy_indexing_falls_back_to_dask():
    lazy = LazyArray(CountingSource(A), da.from_array(A, chunks=2))
    np.testing.assert_array_equal(lazy[[0, 3], 1], A[[0, 3], 1])
    np.testing.assert_array_equal(np.asarray(lazy), A)
    assert lazy.to_dask().shape == A.shape and lazy.nbytes == A.nbytes

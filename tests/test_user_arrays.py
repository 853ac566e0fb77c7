"""What a user reads is theirs: modifying it never changes the cache or the input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.ops import as_source


def _image():
    return (np.random.default_rng(0).random((4, 40, 50)) * 200).astype(np.uint16)


READS = {
    "asarray": lambda r: np.asarray(r),
    "asarray dtype": lambda r: np.asarray(r, dtype=r.dtype),
    "compute": lambda r: r.compute() if hasattr(r, "compute") else np.asarray(r[...]),
    "compute key": lambda r: (r.compute((1, slice(None))) if hasattr(r, "compute")
                              else np.asarray(r[1, :])),
    "plane": lambda r: np.asarray(r[2]),
    "view": lambda r: np.asarray(r[1:3, 5:30]),
    "steps": lambda r: r[::2, 3:9],  # indexing that returns values at once
    "new axis": lambda r: r[1, 2:8, None],
    "fancy": lambda r: r[[0, 2]],
    "dask": lambda r: r.to_dask()[1:3].compute(),
}


@pytest.mark.parametrize("how", sorted(READS))
@pytest.mark.parametrize("what", ["result", "source"])
def test_modifying_a_read_changes_nothing(what, how):
    a = _image()
    kept = a.copy()
    data = da.from_array(a, chunks=(2, 16, 16))
    r = lp.apply("gaussian", data, sigma=1.0) if what == "result" else as_source(data)
    expected = ndi.gaussian_filter(kept, 1.0) if what == "result" else kept
    first = READS[how](r)
    assert isinstance(first, np.ndarray) and first.flags.writeable
    first //= 5  # a read-only view of the cache raised here
    first[...] = 7
    again = READS[how](r)
    np.testing.assert_array_equal(np.asarray(r), expected)  # the cache kept its values
    np.testing.assert_array_equal(again, READS[how](lp.apply("gaussian", kept, sigma=1.0))
                                  if what == "result" else READS[how](as_source(kept)))
    np.testing.assert_array_equal(a, kept)  # and the input too


def test_an_in_memory_input_is_not_shared_with_a_read():
    a = _image()
    src = as_source(a)
    out = np.asarray(src)
    out[...] = 0
    assert a.any() and np.asarray(src).any()

"""``label`` with any structure scipy.ndimage takes (3 per axis, symmetric) and its
``output`` dtype: per frame equal to scipy, and global labels (chunk faces merged under
the structure) the same partition as scipy's on the whole array."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_lazyproc as lp


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]).astype(np.int64), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@st.composite
def _case(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(3, 14)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.random(shape) > draw(st.sampled_from([0.4, 0.6]))
    s = rng.random((3,) * ndim) > 0.5
    s = s | s[(slice(None, None, -1),) * ndim]  # symmetric, as scipy requires
    chunks = tuple(draw(st.integers(2, 6)) for _ in range(ndim))
    return a, s, chunks


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_case())
def test_label_with_any_structure_per_frame_and_global(case):
    a, s, chunks = case
    ref, n = ndi.label(a, s)
    frame = np.asarray(lp.apply("label", da.from_array(a, chunks=chunks), structure=s))
    np.testing.assert_array_equal(frame, ref)
    job = lp.apply("label", da.from_array(a, chunks=chunks), structure=s, scope="global")
    labels = np.asarray(job.run())
    assert job.n_labels == n
    assert _same_partition(labels, ref)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint64", "float32"])
def test_label_output_dtype_as_scipy(dtype):
    a = np.random.default_rng(0).random((4, 20, 20)) > 0.6
    ours = lp.apply("label", a, axes="yx", output=dtype)
    assert ours.dtype == np.dtype(dtype)
    ref = np.stack([ndi.label(p, output=np.dtype(dtype))[0] for p in a])
    np.testing.assert_array_equal(np.asarray(ours), ref)


@pytest.mark.parametrize("kwargs, text", [
    ({"structure": np.ones((3, 2))}, "structure must be 3x3"),
    ({"structure": [[1, 1, 0], [0, 1, 0], [0, 0, 0]]}, "must be symmetric"),
])
def test_label_refusals_name_the_parameter(kwargs, text):
    with pytest.raises(ValueError, match=text):
        lp.apply("label", np.zeros((5, 6), bool), **kwargs)


def _periodic_labels(a: np.ndarray, s: np.ndarray, wrap: tuple[int, ...]) -> np.ndarray:
    """Brute force: connected components of the voxel graph, offsets wrapping along
    ``wrap``."""
    import itertools

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx = np.arange(a.size).reshape(a.shape)
    rows, cols = [np.empty(0, int)], [np.empty(0, int)]
    for off in itertools.product((-1, 0, 1), repeat=a.ndim):
        if not any(off) or not s[tuple(1 + o for o in off)]:
            continue
        dst, ok = idx, a.copy()
        for ax, o in enumerate(off):
            if o:
                dst = np.roll(dst, -o, axis=ax)
                if ax not in wrap:  # no neighbour past the edge
                    edge = [slice(None)] * a.ndim
                    edge[ax] = slice(-1, None) if o > 0 else slice(0, 1)
                    ok[tuple(edge)] = False
        keep = ok & a.ravel()[dst]
        rows.append(idx[keep])
        cols.append(dst[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(a.size, a.size))
    return np.where(a.ravel(), connected_components(graph, directed=False)[1] + 1,
                    0).reshape(a.shape)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_case(), wrap=st.sets(st.integers(0, 2), min_size=1))
def test_label_wrap_axes_per_frame_and_global_is_periodic_labeling(case, wrap):
    a, s, chunks = case
    wrap = tuple(sorted(w for w in wrap if w < a.ndim)) or (0,)
    letters = "".join("zyx"[3 - a.ndim:][w] for w in wrap)
    ref = _periodic_labels(a, s, wrap)
    frame = np.asarray(lp.apply("label", a, structure=s, wrap_axes=letters))
    job = lp.apply("label", da.from_array(a, chunks=chunks), structure=s,
                   wrap_axes=letters, scope="global")
    assert _same_partition(frame, ref)
    assert _same_partition(np.asarray(job.run()), ref)
    assert job.n_labels == frame.max()


def test_label_wrap_axes_must_be_spatial_axes():
    with pytest.raises(ValueError, match="wrap_axes must be some of the spatial axes"):
        lp.apply("label", np.zeros((3, 5, 6), bool), axes="yx", wrap_axes="z")


def test_global_label_output_dtype_and_its_limit():
    a = np.zeros((40, 40), bool)
    a[::2, ::2] = True  # 400 objects
    job = lp.apply("label", da.from_array(a, chunks=9), scope="global", output="int32")
    labels = np.asarray(job.run())
    assert labels.dtype == np.int32 and job.n_labels == 400
    assert _same_partition(labels, ndi.label(a)[0])
    small = lp.apply("label", da.from_array(a, chunks=9), scope="global", output="int8")
    with pytest.raises(ValueError, match="400 labels do not fit output int8"):
        small.run()
    assert small.n_labels is not None and not small.done

"""More of scipy.ndimage's arguments, lazily: binary morphology's ``mask=`` (a second
image: numpy, a zarr array, a lazy result), order statistics of NaN input, the other
byte order (input and ``output=``), a ``LowLevelCallable`` for generic_filter /
generic_filter1d, and the Gaussian Laplacian / gradient magnitude with scipy's integer
``axes`` out of order or (gradient magnitude) a subset. Any region of any chunking
equals scipy on the whole array: bitwise in "exact", within the contract in "fast"."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scipy_args import _regions

import napari_lazyproc as lp
from napari_lazyproc.ops.filters._generic import json_step

RNG = np.random.default_rng(2606)
BINARY = RNG.random((6, 13, 11)) > 0.35
MASKS = {"bool": RNG.random(BINARY.shape) > 0.3,
         "int16": RNG.integers(0, 3, BINARY.shape).astype(np.int16) * 256  # int8 cast: 0
         + RNG.integers(0, 2, BINARY.shape).astype(np.int16),
         "float": RNG.random(BINARY.shape).round(1)}
FLOATS = RNG.random((9, 12, 10))
NAN = FLOATS.copy()
NAN[RNG.random(NAN.shape) < 0.04] = np.nan

_chunks = st.tuples(*(st.integers(2, 6) for _ in range(3)))


def _zarr(x: np.ndarray, chunks) -> zarr.Array:
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=x.shape, dtype=x.dtype,
                          chunks=chunks, fill_value=None)
    z[...] = x
    return z



def _meets(ours: np.ndarray, ref: np.ndarray, precision: str, exact: bool = False) -> None:
    assert ours.dtype == ref.dtype
    if precision == "exact" or exact:
        assert ours.tobytes() == ref.tobytes()
    else:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


# ------------------------------------------------------------------ binary mask=

@pytest.mark.parametrize("name", ["binary_erosion", "binary_dilation", "binary_opening",
                                  "binary_closing"])
@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(deadline=None, max_examples=8)
@given(chunks=_chunks, mask_chunks=_chunks, data=st.data())
def test_mask_region_equals_scipy(name, precision, chunks, mask_chunks, data):
    kind = data.draw(st.sampled_from(sorted(MASKS)))
    iterations = data.draw(st.integers(1, 3))
    border = data.draw(st.integers(0, 1))
    mask = MASKS[kind]
    s = ndi.generate_binary_structure(3, 2)
    ref = getattr(ndi, name)(BINARY, s, iterations=iterations, mask=mask,
                             border_value=border)
    region = data.draw(_regions(BINARY.shape))
    res = lp.apply(name, _zarr(BINARY, chunks), mask=_zarr(mask, mask_chunks),
                   structure=s, iterations=iterations, border_value=border,
                   precision=precision)
    _meets(np.asarray(res[region]), ref[region], precision, exact=True)


def test_mask_of_a_lazy_result_and_per_plane():
    x = RNG.random((3, 20, 21))
    mask = lp.apply("threshold", x, value=0.4)
    ref = np.stack([ndi.binary_dilation(x[i] > 0.5, iterations=2, mask=x[i] > 0.4)
                    for i in range(3)])
    res = lp.apply("binary_dilation", x > 0.5, mask=mask, iterations=2, axes="yx",
                   data_axes="zyx")
    np.testing.assert_array_equal(np.asarray(res[1:, 3:17, 2:19]), ref[1:, 3:17, 2:19])
    again = lp.apply("binary_dilation", x > 0.5, mask=lp.apply("threshold", x, value=0.4),
                     iterations=2, axes="yx", data_axes="zyx")
    other = lp.apply("binary_dilation", x > 0.5, mask=lp.apply("threshold", x, value=0.3),
                     iterations=2, axes="yx", data_axes="zyx")
    assert again.token == res.token != other.token


def test_mask_identity_token_and_stamp(tmp_path, monkeypatch):
    """The mask's token is the result's; a rewritten mask file is a miss, never stale."""
    from napari_lazyproc.ops.engine import _sources

    monkeypatch.setattr(_sources, "STAMP_COST", 60.0)  # a loaded machine's slow stat
    # is reused for a second by design (``KeptStamps``): never here
    x = RNG.random((20, 24)) > 0.3
    path = str(tmp_path / "mask.zarr")
    z = zarr.open_array(path, mode="w", shape=x.shape, chunks=(8, 8), dtype=bool)
    z[...] = True
    mask = lp.open_image(path)
    res = lp.apply("binary_erosion", x, mask=mask, precision="exact")
    box = (slice(2, 14), slice(3, 17))
    np.testing.assert_array_equal(np.asarray(res[box]), ndi.binary_erosion(x)[box])
    other = lp.apply("binary_erosion", x, mask=np.zeros_like(x), precision="exact")
    assert other.token != res.token and res.steps[-1]["mask"] == path
    time.sleep(0.01)
    z[0:8, 0:8] = False
    os.utime(path)  # the chunk files changed: their stamps differ
    new = ndi.binary_erosion(x, mask=z[...])
    np.testing.assert_array_equal(np.asarray(res[box]), new[box])


def test_mask_checks_are_scipys():
    x = BINARY
    with pytest.raises(ValueError, match="mask has shape"):
        lp.apply("binary_erosion", x, mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="mask is complex"):
        lp.apply("binary_erosion", x, mask=np.ones(x.shape, complex))
    with pytest.raises(RuntimeError, match="equal sizes"):  # scipy refuses the same
        ndi.binary_erosion(x, mask=np.ones((2, 3), bool))


# ------------------------------------------------------------------ NaN order statistics

NAN_CASES = {
    "median 1-D": ("median", {"size": 5}, "x", lambda a: ndi.median_filter(a, 5)),
    "median 3-D": ("median", {"size": 3}, "zyx", lambda a: ndi.median_filter(a, 3)),
    "minimum": ("minimum", {"size": 4, "mode": "wrap"}, "zyx",
                lambda a: ndi.minimum_filter(a, 4, mode="wrap")),
    "maximum": ("maximum", {"size": (5, 4, 6)}, "zyx",
                lambda a: ndi.maximum_filter(a, (5, 4, 6))),
    "percentile 1-D": ("percentile", {"percentile": 30, "size": 6}, "x",
                       lambda a: ndi.percentile_filter(a, 30, 6)),
    "rank smallest": ("rank_filter", {"rank": 0, "size": 5}, "zyx",
                      lambda a: ndi.rank_filter(a, 0, 5)),
    "grey erosion": ("erosion", {"footprint": "box", "radius": 2}, "zyx",
                     lambda a: ndi.grey_erosion(a, size=(5, 5, 5))),
}


@pytest.mark.parametrize("case", sorted(NAN_CASES))
@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(deadline=None, max_examples=6)
@given(chunks=_chunks, data=st.data())
def test_nan_order_statistics_are_scipys(case, precision, chunks, data):
    name, params, axes, scipy_fn = NAN_CASES[case]
    x = NAN[3, 4] if axes == "x" else NAN
    ref = scipy_fn(x)
    region = data.draw(_regions(x.shape))
    res = lp.apply(name, _zarr(x, chunks[: x.ndim]), data_axes=axes, precision=precision,
                   **params)
    try:
        ours = np.asarray(res[region])
    except ValueError as exc:  # fast: refused where scipy's answer needs the line's start
        assert precision == "fast" and any(res.nan_axes) and axes != "x"
        assert "precision='exact'" in str(exc) and "NaN" in str(exc)
        return
    np.testing.assert_array_equal(ours, ref[region])
    assert ours.tobytes() == ref[region].tobytes()


def test_nan_history_reads_each_line_from_its_start():
    res = lp.apply("minimum", NAN, size=4, precision="exact")
    assert res.prefix == (True, True, True)
    assert res._expanded((slice(5, 7), slice(6, 8), slice(4, 6)))[2] == slice(0, 8)
    assert lp.apply("minimum", NAN, size=4, precision="fast").prefix == (False,) * 3
    line = lp.apply("median", NAN[2, 3], size=5, data_axes="x", precision="fast")
    assert line.prefix == (True,)  # a line: read from its start, bitwise in "fast" too
    np.testing.assert_array_equal(np.asarray(line[4:9]), ndi.median_filter(NAN[2, 3], 5)[4:9])
    assert lp.apply("median", NAN, size=3).nan_axes == (False,) * 3  # a selection
    assert lp.apply("minimum", NAN.astype(np.int32), size=4).nan_axes == (False,) * 3


# ------------------------------------------------------------------ byte order

@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(deadline=None, max_examples=5)
@given(chunks=_chunks, data=st.data())
def test_other_byte_order_in_and_out(precision, chunks, data):
    x = FLOATS.astype(">f4")
    region = data.draw(_regions(x.shape))
    res = lp.apply("median", _zarr(x, chunks), size=3, precision=precision)
    ref = ndi.median_filter(x, 3)  # scipy's output is native
    _meets(np.asarray(res[region]), ref[region], "exact")
    for out in (">f8", ">i8"):
        m = [[1.0, 0.1, 0.0], [0.0, 0.9, 0.2], [0.0, 0.0, 1.1]]
        res = lp.apply("affine_transform", _zarr(FLOATS * 50, chunks), matrix=m,
                       offset=0.4, output=out, precision=precision)
        ref = ndi.affine_transform(FLOATS * 50, m, offset=0.4, output=out)
        assert res.dtype == np.dtype(out)
        _meets(np.asarray(res[region]), ref[region], precision,
               exact=np.dtype(out).kind == "i")


# ------------------------------------------------------------------ LowLevelCallable

def _callables():
    from scipy import LowLevelCallable
    from scipy.ndimage import _ctest, _cytest

    w = np.ones(5) / 5
    return {
        "2d capsule": (lambda: _ctest.filter2d(w)),
        "2d LowLevelCallable": (lambda: LowLevelCallable(
            _cytest.filter2d(w, with_signature=True))),
        "1d capsule": (lambda: _ctest.filter1d(3)),
        "1d LowLevelCallable": (lambda: LowLevelCallable.from_cython(
            _cytest, "_filter1d", _cytest.filter1d_capsule(3))),
    }


@pytest.mark.parametrize("kind", ["2d capsule", "2d LowLevelCallable", "1d capsule",
                                  "1d LowLevelCallable"])
@settings(deadline=None, max_examples=4)
@given(chunks=_chunks, data=st.data())
def test_low_level_callable_per_block(kind, chunks, data):
    x = FLOATS[2]
    fn = _callables()[kind]()
    region = data.draw(_regions(x.shape))
    if kind.startswith("2d"):
        fp = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
        ref = ndi.generic_filter(x, fn, footprint=fp)
        res = lp.apply("generic_filter", _zarr(x, chunks[:2]), function=fn, footprint=fp)
    else:
        ref = ndi.generic_filter1d(x, fn, 3, axis=0)
        res = lp.apply("generic_filter1d", _zarr(x, chunks[:2]), function=fn,
                       filter_size=3, axis=0)
    _meets(np.asarray(res[region]), ref[region], "exact")
    assert json_step(res.steps[-1], functions="name")["function"].startswith("python:")


# ------------------------------------------------------------------ terms in axes' order

TERM_CASES = {
    "laplace (2, 0, 1)": ("laplace", {}, (2, 0, 1),
                          lambda a: ndi.laplace(a, axes=(2, 0, 1))),
    "gaussian_laplace (1, 2, 0)": ("gaussian_laplace", {"sigma": 1.2}, (1, 2, 0),
                                   lambda a: ndi.gaussian_laplace(a, 1.2, axes=(1, 2, 0))),
    "gaussian_laplace modes": ("gaussian_laplace", {"sigma": 0.8,
                                                    "mode": ["wrap", "nearest"]}, (2, 0),
                               lambda a: ndi.gaussian_laplace(a, 0.8, axes=(2, 0),
                                                              mode=["wrap", "nearest"])),
    "ggm (2, 1, 0)": ("gaussian_gradient_magnitude", {"sigma": 1.0}, (2, 1, 0),
                      lambda a: ndi.gaussian_gradient_magnitude(a, 1.0, axes=(2, 1, 0))),
    "ggm subset (2, 0)": ("gaussian_gradient_magnitude", {"sigma": 1.0}, (2, 0),
                          lambda a: ndi.gaussian_gradient_magnitude(a, 1.0, axes=(2, 0))),
    "ggm subset modes": ("gaussian_gradient_magnitude",
                         {"sigma": 0.9, "mode": ["wrap", "mirror"]}, (-1, 1),
                         lambda a: ndi.gaussian_gradient_magnitude(
                             a, 0.9, axes=(-1, 1), mode=["wrap", "mirror"])),
}


@pytest.mark.parametrize("case", sorted(TERM_CASES))
@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(deadline=None, max_examples=5)
@given(chunks=_chunks, data=st.data())
def test_terms_in_axes_order(case, precision, chunks, data):
    name, params, axes, scipy_fn = TERM_CASES[case]
    x = FLOATS.astype(np.float32)
    ref = scipy_fn(x)
    region = data.draw(_regions(x.shape))
    res = lp.apply(name, _zarr(x, chunks), axes=axes, precision=precision, **params)
    _meets(np.asarray(res[region]), ref[region], precision)


def test_gradient_subset_is_scipy_1_17s():
    """scipy 1.17 smooths every axis of the array with axes a subset: the frame is every
    axis, the derivatives those given; letters keep their own frame."""
    x = FLOATS
    res = lp.apply("gaussian_gradient_magnitude", x, sigma=1.0, axes=(1,), precision="exact")
    assert res.spatial_axes == "zyx" and res.params["gradient_axes"] == "y"
    np.testing.assert_array_equal(np.asarray(res[2:5]), ndi.gaussian_gradient_magnitude(
        x, 1.0, axes=(1,))[2:5])
    rows = lp.apply("gaussian_gradient_magnitude", x, sigma=1.0, axes="y")
    assert rows.spatial_axes == "y"
    with pytest.raises(ValueError, match="not all spatial"):
        lp.apply("gaussian_gradient_magnitude", x, sigma=1.0, axes=(1,), data_axes="tyx")
    with pytest.raises(ValueError, match="gradient_axes 'q'"):
        lp.apply("gaussian_gradient_magnitude", x, gradient_axes="q")


def test_mask_given_by_path_replays_from_the_steps(tmp_path):
    x = RNG.random((12, 14)) > 0.3
    path = str(tmp_path / "m.zarr")
    z = zarr.open_array(path, mode="w", shape=x.shape, chunks=(5, 5), dtype=bool)
    z[...] = RNG.random(x.shape) > 0.5
    res = lp.apply("binary_dilation", x, mask=path, iterations=2, precision="exact")
    again = lp.Pipeline([res.steps[-1]])(x)
    ref = ndi.binary_dilation(x, iterations=2, mask=z[...])
    assert again.token == res.token
    np.testing.assert_array_equal(np.asarray(again), ref)


def test_export_resume_identity_holds_the_mask():
    from napari_lazyproc.export._input import ExportInput

    x = RNG.random((10, 12)) > 0.4
    mask = RNG.random(x.shape) > 0.5
    res = lp.apply("binary_erosion", x, mask=mask)
    before = ExportInput(res).identity()
    mask[:5] = ~mask[:5]  # the same array, other bytes: a new stamp (numpy: a CRC)
    assert ExportInput(res).identity()["stamp"] != before["stamp"]
    assert ExportInput(lp.apply("binary_erosion", x)).identity()["token"] != before["token"]

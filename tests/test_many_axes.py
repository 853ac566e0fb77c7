"""0-D inputs and more than three spatial axes, as scipy.ndimage takes them.

A 0-D array (one value) has no axes: every operation scipy runs on it gives scipy's
0-D result, and those scipy refuses (a derivative along an axis, the transforms) are
refused naming why. Four and more spatial axes: scipy's integer ``axes`` (a plain array's
guessed t or c made spatial: ``"wzyx"``) or letters (any letter but t and c), for the
n-D operations; hypothesis draws the shape, the chunks, the axes (all or some, the others
frames) and the region, against scipy on the whole array in both precisions.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import as_f
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_degenerate import regions
from test_ops_exact import assert_within_contract

import napari_lazyproc as lp
from napari_lazyproc.io import guess_axes, positional_axes
from napari_lazyproc.ops._scipy_call import _scipy_smooths_other_axes
from napari_lazyproc.ops.engine._scipy_params import make_footprint

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _cross(k):
    return make_footprint("ball", [1] * k)


#: name -> (params for k spatial axes, scipy on the whole k-D frame, takes a mask)
CASES = {
    "gaussian": (lambda k: {"sigma": 1.0}, lambda a: ndi.gaussian_filter(a, 1.0), False),
    "uniform": (lambda k: {"size": 3}, lambda a: ndi.uniform_filter(a, 3), False),
    "median": (lambda k: {"size": 3}, lambda a: ndi.median_filter(a, 3), False),
    "minimum": (lambda k: {"size": 2, "mode": "nearest"},
                lambda a: ndi.minimum_filter(a, 2, mode="nearest"), False),
    "maximum": (lambda k: {"size": 3, "mode": "constant", "cval": 9},
                lambda a: ndi.maximum_filter(a, 3, mode="constant", cval=9), False),
    "percentile": (lambda k: {"percentile": 30, "size": 3},
                   lambda a: ndi.percentile_filter(a, 30, 3), False),
    "correlate": (lambda k: {"weights": np.full((2,) * k, 1 / 2**k)},
                  lambda a: ndi.correlate(a, np.full((2,) * a.ndim, 1 / 2**a.ndim)), False),
    "laplace": (lambda k: {}, lambda a: ndi.laplace(as_f(a)), False),
    "gaussian_laplace": (lambda k: {"sigma": 1.0},
                         lambda a: ndi.gaussian_laplace(as_f(a), 1.0), False),
    "gaussian_gradient_magnitude": (
        lambda k: {"sigma": 1.0}, lambda a: ndi.gaussian_gradient_magnitude(as_f(a), 1.0),
        False),
    "prewitt": (lambda k: {}, lambda a: np.sqrt(sum(
        ndi.prewitt(as_f(a), axis=i) ** 2 for i in range(a.ndim))), False),
    "erosion": (lambda k: {"radius": 1},
                lambda a: ndi.grey_erosion(a, footprint=_cross(a.ndim)), False),
    "dilation": (lambda k: {"radius": 1, "footprint": "box"},
                 lambda a: ndi.grey_dilation(a, size=3), False),
    "morphological_gradient": (lambda k: {"size": 2},
                               lambda a: ndi.morphological_gradient(a, size=2), False),
    "binary_erosion": (lambda k: {"radius": 1},
                       lambda a: ndi.binary_erosion(a, _cross(a.ndim)), True),
    "binary_dilation": (lambda k: {"radius": 1, "iterations": 2},
                        lambda a: ndi.binary_dilation(a, _cross(a.ndim), 2), True),
    "binary_closing": (lambda k: {"radius": 1, "footprint": "box"},
                       lambda a: ndi.binary_closing(a, np.ones((3,) * a.ndim)), True),
    "fill_holes": (lambda k: {}, lambda a: ndi.binary_fill_holes(a), True),
    "label": (lambda k: {"connectivity": k},
              lambda a: ndi.label(a, np.ones((3,) * a.ndim))[0], True),
}


def _per_frame(fn, a: np.ndarray, spatial: list[int]) -> np.ndarray:
    """``fn`` on each frame of ``a`` over the axes ``spatial``, the others looped over."""
    other = [i for i in range(a.ndim) if i not in spatial]
    moved = np.moveaxis(a, spatial, range(len(other), a.ndim))
    out = None
    for index in np.ndindex(*moved.shape[: len(other)]):
        values = np.asarray(fn(moved[index]))
        if out is None:
            out = np.empty(moved.shape, values.dtype)
        out[index] = values
    return np.moveaxis(out, range(len(other), a.ndim), spatial)


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(CASES))
@SETTINGS
@given(data=st.data())
def test_four_and_five_spatial_axes_any_chunks_and_region(name, precision, data):
    params_for, reference, mask = CASES[name]
    k = data.draw(st.integers(4, 5), "spatial axes")
    frames = data.draw(st.integers(0, 1), "frame axes")  # a leading axis looped over
    nd = k + frames
    shape = tuple(data.draw(st.integers(2, 5 if nd < 6 else 3)) for _ in range(nd))
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 99), "seed"))
    dtype = data.draw(st.sampled_from([np.uint8, np.float32]), "dtype")
    a = (rng.random(shape) * 200).astype(dtype)
    if mask:
        a = a > 90
    spatial = list(range(frames, nd))  # as scipy's integers, or letters
    if data.draw(st.booleans(), "integers"):
        axes, data_axes = tuple(spatial), None
    else:
        data_axes = positional_axes(shape, spatial)
        axes = "".join(data_axes[i] for i in spatial)
    if (name == "gaussian_gradient_magnitude" and frames and data_axes is None
            and _scipy_smooths_other_axes()):
        # scipy >= 1.17 smooths the frame axis too (a subset of integer axes): refused
        # while that axis is a frame (tests/test_scipy_args_second.py has the subset)
        with pytest.raises(ValueError, match="subset"):
            lp.apply(name, a, axes=axes, precision=precision, **params_for(len(spatial)))
        return
    result = lp.apply(name, da.from_array(a, chunks=chunks), axes=axes, data_axes=data_axes,
                      precision=precision, **params_for(len(spatial)))
    assert result.shape == a.shape and len(result.spatial) == len(spatial) >= 4
    key = data.draw(regions(shape), "key")
    ours = np.asarray(result[key])
    ref = _per_frame(reference, a, spatial)[key]
    if name == "label":
        ref = ref.astype(np.int32)
    assert_within_contract(ours, ref, name, precision)


def test_integer_axes_make_a_plain_array_s_axes_spatial():
    x = np.random.default_rng(1).random((3, 4, 5, 6))
    assert guess_axes(x.shape) == "tzyx" and guess_axes(()) == ""
    assert positional_axes(x.shape, (1, 2, 3)) == "tzyx"  # the guess, as before
    assert positional_axes(x.shape, (0, 1, 2, 3)) == "wzyx"
    assert positional_axes((2,) * 5, (0, 2)) == "ytxab"
    sigma = (1.0, 2.0, 0.5, 1.5)
    res = lp.apply("gaussian", x, sigma=sigma, axes=(3, 0, 1, 2), precision="exact")
    assert (res.axes, res.spatial_axes) == ("wzyx", "wzyx")
    ref = ndi.gaussian_filter(x, sigma, axes=(3, 0, 1, 2))  # passes in that order
    assert np.asarray(res).tobytes() == ref.tobytes()
    step = res.steps[-1]  # given by index, so a pipeline replays it on the same array
    assert step["axes"] == [3, 0, 1, 2] and step["sigma"] == list(sigma)
    again = lp.Pipeline.from_json(lp.Pipeline([step]).to_json())(x)
    assert again.token == res.token
    # letters name the same axes; t and c stay out, and a file's named t is never made
    # spatial (only a plain array's guessed letters are)
    by_letters = lp.apply("gaussian", x, sigma=1.0, data_axes="wzyx", axes="wzyx")
    assert by_letters.spatial == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="include time or channel"):
        lp.apply("gaussian", x, axes="tzyx")
    with pytest.raises(ValueError, match="include time or channel"):
        lp.apply("gaussian", x, axes=(0, 1, 2, 3), data_axes="tzyx")
    chained = lp.apply("median", res, size=3, axes=(0, 1, 2, 3))  # a result's own letters
    assert chained.spatial_axes == "wzyx"
    labels = lp.apply("label", x > 0.5, axes=range(4), connectivity=4)
    np.testing.assert_array_equal(np.asarray(labels), ndi.label(x > 0.5, np.ones((3,) * 4))[0])


@SETTINGS
@given(data=st.data())
def test_global_labels_over_four_and_five_axes(data):
    nd = data.draw(st.integers(4, 5), "ndim")
    shape = tuple(data.draw(st.integers(2, 6 if nd == 4 else 4)) for _ in range(nd))
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    connectivity = data.draw(st.integers(1, nd), "connectivity")
    seed = data.draw(st.integers(0, 99), "seed")
    a = np.random.default_rng(seed).random(shape) > 0.55
    job = lp.apply("label", da.from_array(a, chunks=chunks), axes=range(nd),
                   scope="global", connectivity=connectivity).run()
    ref, n = ndi.label(a, ndi.generate_binary_structure(nd, connectivity))
    ours = np.asarray(job)
    assert job.n_labels == n
    pairs = np.unique(np.stack([ours.ravel(), ref.ravel()]), axis=1)
    assert np.array_equal(ours == 0, ref == 0) and pairs.shape[1] == n + 1


def test_more_than_three_axes_refused_where_the_operation_is_3_d():
    x = np.zeros((3, 4, 5, 6), np.float32)
    with pytest.raises(ValueError, match="deskew runs over the 3 axes"):
        lp.apply("deskew", x, axes=(0, 1, 2, 3), angle=30.0)
    with pytest.raises(ValueError, match="rotate"):
        lp.apply("rotate", x, axes=(0, 1, 2, 3), angle=30.0)
    res = lp.apply("sobel", x, axes=(0, 1, 2, 3), axis="w")  # scipy's axis 0
    np.testing.assert_array_equal(np.asarray(res), ndi.sobel(x, 0))


#: operations on a 0-D input: (params, scipy's call, input)
ZERO_D = {
    "gaussian": ({"sigma": 1.0}, lambda a: ndi.gaussian_filter(a, 1.0)),
    "uniform": ({"size": 3}, lambda a: ndi.uniform_filter(a, 3)),
    "median": ({"size": 3}, lambda a: ndi.median_filter(a, 3)),
    "minimum": ({"size": 3}, lambda a: ndi.minimum_filter(a, 3)),
    "rank_filter": ({"rank": 0, "size": 3}, lambda a: ndi.rank_filter(a, 0, 3)),
    "generic_filter": ({"function": np.mean, "size": 3},
                       lambda a: ndi.generic_filter(a, np.mean, 3)),
    "correlate": ({"weights": np.array(2.0)}, lambda a: ndi.correlate(a, np.array(2.0))),
    "laplace": ({}, lambda a: ndi.laplace(as_f(a))),
    "gaussian_laplace": ({"sigma": 1.0}, lambda a: ndi.gaussian_laplace(as_f(a), 1.0)),
    "erosion": ({"size": 3}, lambda a: ndi.grey_erosion(a, 3)),
    "white_tophat": ({"size": 3}, lambda a: ndi.white_tophat(a, 3)),
    "binary_dilation": ({}, lambda a: ndi.binary_dilation(a)),
    "binary_erosion": ({"border_value": 1, "iterations": 2},
                       lambda a: ndi.binary_erosion(a, border_value=1, iterations=2)),
    "binary_closing": ({}, lambda a: ndi.binary_closing(a)),
    "binary_hit_or_miss": ({}, lambda a: ndi.binary_hit_or_miss(a)),
    "fill_holes": ({}, lambda a: ndi.binary_fill_holes(a)),
    "label": ({}, lambda a: ndi.label(a)[0]),
}


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(ZERO_D))
@pytest.mark.parametrize("value", [0, 3, 2.5, True, False])
def test_a_0_d_input_gives_scipy_s_0_d_result(name, precision, value):
    params, reference = ZERO_D[name]
    a = np.array(value)
    a = a.astype(bool) if lp.ops.REGISTRY[name].binary_input else a.astype(
        np.uint8 if a.dtype == bool else a.dtype)
    res = lp.apply(name, a, precision=precision, **params)
    ref = np.asarray(reference(a))
    assert res.shape == () and res.axes == "" and res.spatial == ()
    ours = np.asarray(res)
    assert ours.shape == () and ours.dtype == ref.dtype and ours.tobytes() == ref.tobytes()
    assert np.asarray(res.to_dask().compute()).tobytes() == ref.tobytes()
    assert np.asarray(lp.apply(name, a, axes=(), precision=precision, **params)) == ref


@pytest.mark.parametrize("name, params, message", [
    ("sobel", {}, "no axis to differentiate along"),
    ("correlate1d", {"weights": [1, 2]}, "axis -1 is out of range"),
    ("zoom", {"zoom": 2.0}, "no axes to map"),
    ("shift", {"shift": 1.0}, "no axes to map"),
])
def test_a_0_d_input_is_refused_where_scipy_refuses_it(name, params, message):
    with pytest.raises(ValueError, match=message):
        lp.apply(name, np.array(2.5), **params)


def test_a_0_d_result_reads_and_refuses_export(tmp_path):
    res = lp.apply("binary_dilation", np.array(True))
    assert res[()] == np.True_ and res.compute() == np.True_ and res.chunks == ()
    with pytest.raises(lp.ExportError, match="0-D"):
        lp.export(res, tmp_path / "out.ome.zarr")
    with pytest.raises(ValueError, match="0-D"):
        lp.measure(lp.apply("label", np.array(1)))
    job = lp.apply("label", np.array(1), scope="global").run()
    assert job.n_labels == 1 and np.asarray(job) == 1

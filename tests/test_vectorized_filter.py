"""``vectorized_filter``: a vectorized Python function of each window, lazily, bitwise
scipy's on any chunking and region; its dtype is the function's (a probe) or ``output``."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_degenerate import regions

import napari_lazyproc as lp

FUNCTIONS = {"mean": np.mean, "sum": np.sum, "median": np.median, "ptp": np.ptp,
             "nanmax": np.nanmax}


@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_window_chunking_and_region_is_scipy_s(precision, data):
    nd = data.draw(st.integers(1, 3), "ndim")
    shape = tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    dtype = data.draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64]))
    a = (np.random.default_rng(data.draw(st.integers(0, 99))).random(shape) * 100
         ).astype(dtype)
    fn = FUNCTIONS[data.draw(st.sampled_from(sorted(FUNCTIONS)), "function")]
    # scipy's axes: all (None), or some in any order (the others frames, as scipy
    # batches them); window values follow them, as in scipy
    axes = data.draw(st.one_of(st.none(), st.permutations(range(nd)).flatmap(
        lambda p: st.integers(1, nd).map(lambda k: tuple(p[:k])))), "axes")
    k = nd if axes is None else len(axes)
    size = tuple(data.draw(st.integers(1, 4)) for _ in range(k))
    kw = {"mode": data.draw(st.sampled_from(["reflect", "constant", "nearest", "mirror",
                                              "wrap"]), "mode"),
          "origin": tuple(data.draw(st.integers(-(n // 2), (n - 1) // 2)) for n in size)}
    if kw["mode"] == "constant":
        kw["cval"] = 7.0
    if data.draw(st.booleans(), "footprint"):
        fp = np.random.default_rng(1).random(size) > 0.4
        fp.flat[0] = True
        kw["footprint"] = fp
    else:
        kw["size"] = size
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    ref = ndi.vectorized_filter(a, fn, axes=axes, **kw)
    if "footprint" in kw and axes is not None:  # ours: in the array's order
        ranks = np.argsort(np.argsort(axes))  # footprint axis i is the ranks[i]-th
        kw["footprint"] = kw["footprint"].transpose(np.argsort(ranks))
    res = lp.apply("vectorized_filter", da.from_array(a, chunks=chunks), function=fn,
                   axes=axes, precision=precision, **kw)
    assert res.dtype == ref.dtype
    key = data.draw(regions(shape), "key")
    ours = np.asarray(res[key])
    assert ours.dtype == ref.dtype and ours.tobytes() == ref[key].tobytes()


def test_dtype_is_the_function_s_or_output():
    a = np.arange(60, dtype=np.uint8).reshape(6, 10)
    res = lp.apply("vectorized_filter", a, function=np.sum, size=3)
    assert res.dtype == np.uint64 == ndi.vectorized_filter(a, np.sum, size=3).dtype
    res = lp.apply("vectorized_filter", a, function=np.mean, size=(2, 3), output="float32",
                   axes="yx", batch_memory=np.inf)
    ref = ndi.vectorized_filter(a, np.mean, size=(2, 3), output=np.empty(a.shape, np.float32))
    assert res.dtype == np.float32 and np.asarray(res).tobytes() == ref.tobytes()
    # batch_memory only bounds memory: a whole float (a form's) is scipy's integer
    x = np.random.default_rng(0).random(30)
    res = lp.apply("vectorized_filter", x, function=np.sum, size=3, batch_memory=48.0)
    assert res.params["batch_memory"] == 48 and np.asarray(res).tobytes() == \
        ndi.vectorized_filter(x, np.sum, size=3, batch_memory=48).tobytes()
    # scipy's integer axes: sizes follow them, the other axes frames
    res = lp.apply("vectorized_filter", a, function=np.max, size=(3, 1), axes=(1, 0))
    np.testing.assert_array_equal(np.asarray(res), ndi.maximum_filter(a, size=(1, 3)))
    v = np.random.default_rng(3).random((6, 7, 8))
    fp = np.random.default_rng(4).random((4, 2, 3)) > 0.3  # along axes 2, 0, 1
    ref = ndi.vectorized_filter(v, np.mean, footprint=fp, axes=(2, 0, 1))
    res = lp.apply("vectorized_filter", da.from_array(v, chunks=3), function=np.mean,
                   footprint=fp.transpose(1, 2, 0), axes=(2, 0, 1), precision="exact")
    assert np.asarray(res).tobytes() == ref.tobytes()


@pytest.mark.parametrize("params, message", [
    ({"function": lambda w, axis: np.quantile(w, [0.25, 0.75], axis=axis), "size": 3},
     "not one value per window"),
    ({"function": np.mean, "size": 3, "mode": "valid"}, "mode must be one of"),
    ({"size": 3}, "function must be a Python function"),
    ({"function": np.mean, "size": 3, "batch_memory": 0}, "batch_memory must be"),
    ({"function": lambda w, axis: w.undefined, "size": 3}, "function failed on a"),
])
def test_refusals_name_the_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        lp.apply("vectorized_filter", np.zeros((4, 5)), **params)


def test_a_python_function_stays_out_of_pipeline_json():
    res = lp.apply("vectorized_filter", np.zeros((4, 5)), function=np.mean, size=3)
    with pytest.raises(ValueError, match="Python function"):
        lp.Pipeline(res.steps).to_json()

"""``output=``: scipy's output dtype (each pass stored in it, integers wrapping), bitwise in
"exact"; the default stays each operation's own dtype (floats for the edge filters)."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.ops import REGISTRY
from napari_lazyproc.ops.engine._scipy_params import make_footprint

_W = np.random.default_rng(17).random((3, 2, 4)) / 12
#: op -> (params, scipy with ``output``)
CASES = {
    "gaussian": ({"sigma": 1.5}, lambda a, o: ndi.gaussian_filter(a, 1.5, output=o)),
    "uniform": ({"size": 4}, lambda a, o: ndi.uniform_filter(a, 4, output=o)),
    "median": ({"size": 3}, lambda a, o: ndi.median_filter(a, 3, output=o)),
    "minimum": ({"size": 3}, lambda a, o: ndi.minimum_filter(a, 3, output=o)),
    "maximum": ({"size": (1, 3, 2)}, lambda a, o: ndi.maximum_filter(a, (1, 3, 2), output=o)),
    "percentile": ({"percentile": 25, "size": 3},
                   lambda a, o: ndi.percentile_filter(a, 25, size=3, output=o)),
    "rank_filter": ({"rank": 1, "size": 3}, lambda a, o: ndi.rank_filter(a, 1, size=3, output=o)),
    "generic_filter": ({"function": np.ptp, "size": 2},
                       lambda a, o: ndi.generic_filter(a, np.ptp, size=2, output=o)),
    "sobel": ({"axis": "y"}, lambda a, o: ndi.sobel(a, axis=1, output=o)),
    "prewitt": ({"axis": "x", "mode": "nearest"},
                lambda a, o: ndi.prewitt(a, axis=2, output=o, mode="nearest")),
    "laplace": ({}, lambda a, o: ndi.laplace(a, output=o)),
    "gaussian_laplace": ({"sigma": 1.0}, lambda a, o: ndi.gaussian_laplace(a, 1.0, output=o)),
    "gaussian_gradient_magnitude": (
        {"sigma": 1.2}, lambda a, o: ndi.gaussian_gradient_magnitude(a, 1.2, output=o)),
    "correlate": ({"weights": _W.tolist()}, lambda a, o: ndi.correlate(a, _W, output=o)),
    "convolve": ({"weights": _W.tolist(), "mode": "mirror"},
                 lambda a, o: ndi.convolve(a, _W, output=o, mode="mirror")),
    "correlate1d": ({"weights": [0.5, 1.5, -1.0], "axis": 1},
                    lambda a, o: ndi.correlate1d(a, [0.5, 1.5, -1.0], axis=1, output=o)),
    "generic_filter1d": ({"function": lambda i, o: np.subtract(i[2:], i[:-2], out=o),
                          "filter_size": 3, "axis": 2},
                         lambda a, o: ndi.generic_filter1d(
                             a, lambda i, q: np.subtract(i[2:], i[:-2], out=q), 3, axis=2,
                             output=o)),
    "convolve1d": ({"weights": [0.5, 1.5, -1.0, 2.0], "mode": "wrap"},
                   lambda a, o: ndi.convolve1d(a, [0.5, 1.5, -1.0, 2.0], output=o,
                                               mode="wrap")),
}
for _name, _fn in (("erosion", "grey_erosion"), ("dilation", "grey_dilation"),
                   ("opening", "grey_opening"), ("closing", "grey_closing"),
                   ("white_tophat", "white_tophat"), ("black_tophat", "black_tophat")):
    CASES[_name] = ({"radius": (1, 2, 1)}, lambda a, o, fn=_fn: getattr(ndi, fn)(
        a, footprint=make_footprint("ball", (1, 2, 1)), output=o))
for _name in ("morphological_gradient", "morphological_laplace"):
    def _into(a, o, fn=_name):  # scipy honours output only as an array
        out = np.empty(a.shape, o)
        getattr(ndi, fn)(a, footprint=make_footprint("ball", (1, 2, 1)), output=out)
        return out

    CASES[_name] = ({"radius": (1, 2, 1)}, _into)
CASES["label"] = ({}, lambda a, o: ndi.label(a, output=np.dtype(o))[0])
CASES["vectorized_filter"] = (  # scipy takes output as an array only
    {"function": np.mean, "size": (1, 3, 2)},
    lambda a, o: ndi.vectorized_filter(a, np.mean, size=(1, 3, 2),
                                       output=np.empty(a.shape, o)))
_M = [[1.0, 0.1, 0.0], [0.0, 0.9, 0.2], [0.05, 0.0, 1.1]]
CASES.update({  # linear: bitwise in both precisions (a prefilter would read whole frames)
    "affine_transform": ({"matrix": _M, "offset": [0.5, 1.0, -2.0], "order": 1},
                         lambda a, o: ndi.affine_transform(a, _M, [0.5, 1.0, -2.0], order=1,
                                                           output=o)),
    "shift": ({"shift": [0.5, -1.25, 2.0], "order": 1, "mode": "nearest"},
              lambda a, o: ndi.shift(a, (0.5, -1.25, 2.0), order=1, mode="nearest",
                                     output=o)),
    "zoom": ({"zoom": [1.5, 1.3, 2.0], "order": 1},
             lambda a, o: ndi.zoom(a, (1.5, 1.3, 2.0), order=1, output=o)),
    "rotate": ({"angle": 30.0, "axes": "yx", "order": 1},
               lambda a, o: ndi.rotate(a, 30.0, axes=(1, 2), order=1, output=o)),
})
KEY = (slice(1, 5), slice(7, 23), slice(9, 24))


def _image(dtype=np.uint16):
    a = ndi.gaussian_filter(np.random.default_rng(0).random((6, 24, 26)), 1) * 4000 - 1500
    return a.astype(dtype) if np.dtype(dtype).kind == "f" else np.abs(a).astype(dtype)


def test_every_filter_with_scipys_output_offers_it():
    offered = {name for name, op in REGISTRY.items() if op.output}
    assert offered == set(CASES)
    assert all(REGISTRY[n].param("output").quantity == "dtype" for n in offered)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")  # scipy: wrapped
@pytest.mark.parametrize("output", [np.int16, "uint8", "float64", np.dtype("int32")])
@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_output_dtype_is_scipys(name, precision, output, fast_spy):
    """Exact: bitwise scipy with ``output=`` (on a region, from chunks smaller than the
    halo). Fast: a kernel computes only its own dtype; for another one scipy runs."""
    params, reference = CASES[name]
    a = _image(np.float32 if name == "uniform" else np.uint16)
    answers = fast_spy(name) if REGISTRY[name].fast is not None else []
    result = lp.apply(name, da.from_array(a, chunks=(2, 9, 11)), precision=precision,
                      output=output, **params)
    expected = reference(a, np.dtype(output))
    assert result.dtype == np.dtype(output) and result.params["output"] == np.dtype(output).name
    ours = np.asarray(result[KEY])
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected[KEY])
    assert not any(answers)  # not the kernel's own dtype: scipy ran


@pytest.mark.parametrize("name", ["sobel", "gaussian_laplace", "gaussian"])
def test_output_of_the_operations_own_dtype_keeps_the_fast_kernel(name, fast_spy):
    params, reference = CASES[name]
    a = _image(np.uint8)
    own = REGISTRY[name].dtype(a.dtype, {"output": None})
    answers = fast_spy(name)
    result = lp.apply(name, a, output=own, precision="fast", **params)
    ours = np.asarray(result)
    expected = reference(a, own)
    assert ours.dtype == expected.dtype == own and any(answers)
    if own.kind == "f":
        assert np.abs(ours - expected).max() <= 1e-6 * np.abs(expected).max()
    else:
        assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


def test_default_dtypes_stay_the_operations_own():
    """No ``output``: the edge filters give float32 for integers (derivatives keep their
    sign); ``output=`` the input's dtype gives scipy's wrapped integers."""
    a = _image(np.uint8)
    for name in ("sobel", "prewitt", "laplace", "gaussian_laplace",
                 "gaussian_gradient_magnitude"):
        params, reference = CASES[name]
        default = lp.apply(name, a, precision="exact", **params)
        assert default.dtype == np.float32 and reference(a, None).dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(default), reference(a.astype(np.float32), None))
        scipy_like = lp.apply(name, a, precision="exact", output=a.dtype, **params)
        np.testing.assert_array_equal(np.asarray(scipy_like), reference(a, None))
    assert lp.apply("gaussian", a, sigma=1.0).dtype == np.uint8


@pytest.mark.parametrize("output", ["int16", "uint8", "float64"])
def test_gradient_magnitude_with_output(output):
    """``axis="magnitude"``: scipy's derivatives in that dtype, the square root of the sum
    of their squares in float64 (in the dtype itself for a float), cast to it."""
    a = _image(np.uint16)
    dt = np.dtype(output)
    acc = dt if dt.kind == "f" else np.dtype(np.float64)
    parts = [ndi.sobel(a, axis=i, output=dt).astype(acc) ** 2 for i in range(3)]
    expected = (sum(parts[1:], parts[0]) ** 0.5).astype(dt)
    ours = lp.apply("sobel", da.from_array(a, chunks=(2, 9, 11)), precision="exact",
                    output=output)
    np.testing.assert_array_equal(np.asarray(ours[KEY]), expected[KEY])


def test_output_is_checked_and_recorded_by_name():
    a = _image()
    for bad in ("bogus", bool, 3):
        with pytest.raises(ValueError, match="sobel: output must be one of 'uint8'"):
            lp.apply("sobel", a, output=bad)
    with pytest.raises(ValueError, match="sobel: output complex64 is complex"):
        lp.apply("sobel", a, output="complex64")  # scipy refuses it for a real result
    result = lp.apply("sobel", a, output=np.int16)
    step = json.loads(json.dumps(result.steps[-1]))
    assert step["output"] == "int16"
    again = lp.Pipeline([step])(a)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(result))
    assert "output" not in REGISTRY["difference_of_gaussians"].validate({}, 3).as_dict()

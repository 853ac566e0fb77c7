"""scipy.ndimage's arguments, lazily: ``mode="wrap"`` (and the grid names), a mode per
axis, Gaussian ``order`` / ``radius`` / ``sigma=0`` / ``truncate=0``, ``origin`` of a
box, ``correlate1d`` / ``convolve1d`` / ``generic_filter1d``, complex data, integer
``axes``; any region
of any chunking equals scipy on the whole array (bitwise in "exact", within the
contract in "fast"), and what scipy refuses is refused naming the parameter."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_lazyproc as lp

RNG = np.random.default_rng(26)
IMAGE = RNG.random((7, 13, 11)).astype(np.float32) * 100
COMPLEX = (RNG.random((7, 13, 11)) + 1j * RNG.random((7, 13, 11))).astype(np.complex128)
WEIGHTS_1D = [0.25, -1.0, 0.5, 2.0]
WEIGHTS_C = (RNG.random((2, 3)) + 1j * RNG.random((2, 3))).round(3)

#: (operation, parameters, scipy on the whole array); each over 3-D input unless said
CASES = {
    "gaussian wrap": ("gaussian", {"sigma": 1.5, "mode": "wrap"},
                      lambda a: ndi.gaussian_filter(a, 1.5, mode="wrap")),
    "gaussian grid-wrap, long halo": ("gaussian", {"sigma": (0.5, 4.0, 3.0), "mode": "grid-wrap"},
                                      lambda a: ndi.gaussian_filter(a, (0.5, 4, 3),
                                                                    mode="grid-wrap")),
    "gaussian mode per axis": ("gaussian", {"sigma": 1.2, "mode": ["wrap", "nearest", "mirror"]},
                               lambda a: ndi.gaussian_filter(
                                   a, 1.2, mode=["wrap", "nearest", "mirror"])),
    "gaussian order": ("gaussian", {"sigma": (1.0, 1.5, 0.8), "order": (0, 1, 2)},
                       lambda a: ndi.gaussian_filter(a, (1.0, 1.5, 0.8), order=(0, 1, 2))),
    "gaussian radius": ("gaussian", {"sigma": 2.0, "radius": (1, 3, 0), "mode": "constant",
                                     "cval": 3.0},
                        lambda a: ndi.gaussian_filter(a, 2.0, radius=(1, 3, 0),
                                                      mode="constant", cval=3.0)),
    "gaussian sigma 0": ("gaussian", {"sigma": (0, 1.5, 0.7)},
                         lambda a: ndi.gaussian_filter(a, (0, 1.5, 0.7))),
    "gaussian truncate 0": ("gaussian", {"sigma": 1.5, "truncate": 0},
                            lambda a: ndi.gaussian_filter(a, 1.5, truncate=0)),
    "uniform axes out of order": ("uniform", {"size": (2, 5, 3), "axes": (2, 0, 1),
                                              "mode": ("wrap", "nearest", "mirror")},
                                  lambda a: ndi.uniform_filter(
                                      a, (2, 5, 3), axes=(2, 0, 1),
                                      mode=("wrap", "nearest", "mirror")).astype(a.dtype)),
    "uniform origin": ("uniform", {"size": (3, 4, 2), "origin": (1, -2, 0), "mode": "wrap"},
                       lambda a: ndi.uniform_filter(a, (3, 4, 2), origin=(1, -2, 0),
                                                    mode="wrap")),
    "median wrap": ("median", {"size": 4, "mode": "wrap"},
                    lambda a: ndi.median_filter(a, 4, mode="wrap")),
    "maximum modes": ("maximum", {"size": 3, "mode": ("constant", "wrap", "reflect"),
                                  "cval": 50},
                      lambda a: ndi.maximum_filter(a, 3, mode=("constant", "wrap", "reflect"),
                                                   cval=50)),
    "correlate wrap": ("correlate", {"weights": np.ones((2, 3, 2)) / 7, "mode": "wrap",
                                     "origin": (0, 1, -1)},
                       lambda a: ndi.correlate(a, np.ones((2, 3, 2)) / 7, mode="wrap",
                                               origin=(0, 1, -1))),
    "sobel wrap": ("sobel", {"axis": "y", "mode": "grid-wrap"},
                   lambda a: ndi.sobel(a, axis=1, mode="grid-wrap")),
    "laplace modes": ("laplace", {"mode": ("nearest", "wrap", "constant"), "cval": 2},
                      lambda a: ndi.laplace(a, mode=("nearest", "wrap", "constant"), cval=2)),
    "correlate1d": ("correlate1d", {"weights": WEIGHTS_1D, "axis": 1, "origin": -1},
                    lambda a: ndi.correlate1d(a, WEIGHTS_1D, axis=1, origin=-1)),
    "convolve1d wrap": ("convolve1d", {"weights": WEIGHTS_1D, "mode": "wrap", "origin": 1},
                        lambda a: ndi.convolve1d(a, WEIGHTS_1D, mode="wrap", origin=1)),
    "convolve1d even": ("convolve1d", {"weights": WEIGHTS_1D, "axis": 0, "mode": "nearest"},
                        lambda a: ndi.convolve1d(a, WEIGHTS_1D, axis=0, mode="nearest")),
}


def _diff(line, out, k=1.0):  # generic_filter1d's function
    out[:] = (line[3:] - line[:-3]) * k


CASES["generic_filter1d"] = ("generic_filter1d", {"function": _diff, "filter_size": 4,
                                                  "axis": -2, "origin": 1, "mode": "wrap",
                                                  "extra_keywords": {"k": 0.5}},
                             lambda a: ndi.generic_filter1d(a, _diff, 4, axis=-2, origin=1,
                                                            mode="wrap",
                                                            extra_keywords={"k": 0.5}))
COMPLEX_CASES = {
    "correlate complex": ("correlate", {"weights": WEIGHTS_C, "mode": "wrap"},
                          lambda a: ndi.correlate(a, WEIGHTS_C, mode="wrap", axes=(1, 2))),
    "gaussian complex": ("gaussian", {"sigma": 1.1}, lambda a: ndi.gaussian_filter(a, 1.1)),
    "sobel complex": ("sobel", {"axis": "x"}, lambda a: ndi.sobel(a, axis=2)),
    "convolve1d complex": ("convolve1d", {"weights": [1j, 2, -1]},
                           lambda a: ndi.convolve1d(a, [1j, 2, -1])),
}


def _zarr(x: np.ndarray, chunks) -> zarr.Array:
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=x.shape, dtype=x.dtype,
                          chunks=chunks, fill_value=None)
    z[...] = x
    return z


def _meets(ours: np.ndarray, ref: np.ndarray, precision: str) -> None:
    assert ours.dtype == ref.dtype
    if precision == "exact" or ref.dtype.kind == "c":
        assert ours.tobytes() == ref.tobytes()
    else:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


_chunks = st.tuples(*(st.integers(2, 6) for _ in range(3)))


@st.composite
def _regions(draw, shape):
    out = []
    for n in shape:
        lo = draw(st.integers(0, n - 1))
        out.append(slice(lo, draw(st.integers(lo + 1, n))))
    return tuple(out)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("precision", ["exact", "fast"])
@settings(deadline=None, max_examples=6)
@given(chunks=_chunks, data=st.data())
def test_region_equals_scipy_on_the_whole_array(case, precision, chunks, data):
    name, params, scipy_fn = CASES[case]
    ref = scipy_fn(IMAGE)
    region = data.draw(_regions(IMAGE.shape))
    res = lp.apply(name, _zarr(IMAGE, chunks), precision=precision, **params)
    _meets(np.asarray(res[region]), ref[region], precision)


@pytest.mark.parametrize("case", sorted(COMPLEX_CASES))
@settings(deadline=None, max_examples=5)
@given(chunks=_chunks, data=st.data())
def test_complex_data_as_scipy_filters_it(case, chunks, data):
    name, params, scipy_fn = COMPLEX_CASES[case]
    axes = "yx" if name == "correlate" else None
    ref = scipy_fn(COMPLEX)
    region = data.draw(_regions(COMPLEX.shape))
    res = lp.apply(name, _zarr(COMPLEX, chunks), axes=axes, precision="fast", **params)
    _meets(np.asarray(res[region]), ref[region], "exact")


def test_wrap_reads_the_far_edge_only():
    """A region at the left edge reads its halo from the right edge, not the whole axis."""
    x = np.arange(60.0).reshape(3, 20)
    res = lp.apply("uniform", _zarr(x, (3, 4)), size=(1, 5), mode="wrap", precision="fast")
    assert res._expanded((slice(0, 3), slice(0, 4))) == (slice(0, 3), slice(-2, 6))
    np.testing.assert_array_equal(np.asarray(res[:, :4]),
                                  ndi.uniform_filter(x, (1, 5), mode="wrap")[:, :4])


def test_integer_axes_follow_scipy():
    x = IMAGE
    res = lp.apply("gaussian", x, sigma=(1.0, 2.5), axes=(2, 0), precision="exact")
    assert res.spatial_axes == "zx" and res.params["sigma"] == (2.5, 1.0)
    ref = ndi.gaussian_filter(x, (1.0, 2.5), axes=(2, 0))  # passes along x, then z
    assert np.asarray(res).tobytes() == ref.tobytes()
    assert res.steps[-1]["axes"] == "xz"  # a pipeline keeps the order of the passes
    again = lp.Pipeline([res.steps[-1]])(x)
    assert again.token == res.token and np.asarray(again).tobytes() == ref.tobytes()
    res = lp.apply("median", x, size=3, axes=-1)
    np.testing.assert_array_equal(np.asarray(res), ndi.median_filter(x, (1, 1, 3)))
    assert lp.apply("uniform", x, axes="zx").spatial_axes == "zx"  # letters still work
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        lp.apply("gaussian", x, axes=(0, 3))
    with pytest.raises(ValueError, match="time or channel"):
        lp.apply("gaussian", np.zeros((2, 5, 6)), axes=(0, 1), data_axes="tyx")


def test_complex_output_rules_are_scipys():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lp.apply("gaussian", COMPLEX, sigma=1.0, output="float32")
    assert res.dtype == np.complex64 and "promoting output" in str(caught[0].message)
    ref = ndi.gaussian_filter(COMPLEX, 1.0, output=np.complex64)
    np.testing.assert_array_equal(np.asarray(res), ref)
    res = lp.apply("correlate", IMAGE[0], weights=WEIGHTS_C)
    assert res.dtype == np.complex64
    np.testing.assert_array_equal(np.asarray(res), ndi.correlate(IMAGE[0], WEIGHTS_C))
    with pytest.raises(ValueError, match="output complex64 is complex"):
        lp.apply("gaussian", IMAGE, output="complex64")
    with pytest.raises(ValueError, match="median: the input is complex"):
        lp.apply("median", COMPLEX)
    with pytest.raises(ValueError, match="sobel: the input is complex"):
        lp.apply("sobel", COMPLEX)  # the magnitude: no complex version in scipy


@pytest.mark.parametrize("name, params, message", [
    ("median", {"mode": ("wrap", "nearest", "reflect")}, "mode must be one mode"),
    ("gaussian", {"mode": ("wrap", "nearest")}, "mode has 2 values for 3"),
    ("gaussian", {"mode": "periodic"}, "mode must be one of"),
    ("gaussian", {"order": -1}, "order must be"),
    ("gaussian", {"radius": -1}, "radius must be"),
    ("uniform", {"size": 3, "origin": 2}, "origin 2 on axis 'z' must be between -1 and 1"),
    ("correlate1d", {"weights": [[1, 2]]}, "weights must be 1-D"),
    ("correlate1d", {"weights": [1, 2], "axis": 3}, "axis 3 is out of range"),
    ("convolve1d", {"weights": [1, 2, 3], "origin": 2}, "origin 2 on axis 'x'"),
    ("median", {"size": 3.0}, "median: size must be an integer, not a float"),
    ("correlate", {"weights": np.ones((1, 2, 3)), "origin": 0.0}, "origin must be an integer"),
    ("gaussian", {"radius": 2.0}, "radius must be an integer, not a float"),
    ("rank_filter", {"rank": 1.0}, "rank must be an integer, not a float"),
    ("gaussian", {"cval": 1j}, "cval 1j is complex and the input is real"),
])
def test_what_scipy_refuses_is_refused_by_name(name, params, message):
    with pytest.raises(ValueError, match=message):
        lp.apply(name, IMAGE, **params)


def test_what_scipy_accepts_is_accepted():
    """scipy takes a box's width as a float, and skips axes of width 0 or 1; a negative
    percentile counts from the top."""
    x = IMAGE[0]
    for name, params, ref in (
            ("uniform", {"size": 3.0}, ndi.uniform_filter(x, 3.0)),
            ("maximum", {"size": (3.0, 0)}, ndi.maximum_filter(x, (3.0, 0))),
            ("uniform", {"size": 0}, ndi.uniform_filter(x, 0)),
            ("percentile", {"percentile": -20, "size": 3}, ndi.percentile_filter(x, -20, 3)),
            ("gaussian", {"sigma": 0}, ndi.gaussian_filter(x, 0))):
        for precision in ("exact", "fast"):
            res = lp.apply(name, x, precision=precision, **params)
            _meets(np.asarray(res), ref, precision)

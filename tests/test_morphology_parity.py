"""Grey and binary morphology with every window scipy.ndimage takes (any flat footprint,
even and width-1 sizes, a non-flat structure, an origin) and binary ``border_value`` and
``iterations``: a region read from tiny chunks equals scipy on the whole array, in both
precisions (morphology is exact in "fast" too)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_lazyproc as lp

GREY = {"erosion": "grey_erosion", "dilation": "grey_dilation", "opening": "grey_opening",
        "closing": "grey_closing", "white_tophat": "white_tophat",
        "black_tophat": "black_tophat"}
BINARY = ("binary_erosion", "binary_dilation", "binary_opening", "binary_closing")
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def _case(draw, binary: bool):
    """An image of 1 to 3 dimensions, chunks, a region, a window and its origin."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(4, 13)) for _ in range(ndim))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    a = rng.random(shape) > 0.45 if binary else (rng.random(shape) * 250).astype(
        draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64])))
    chunks = tuple(draw(st.integers(2, 6)) for _ in range(ndim))
    region = []
    for n in shape:
        lo = draw(st.integers(0, n - 1))
        region.append(slice(lo, draw(st.integers(lo + 1, n))))
    wshape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    window = rng.random(wshape) > 0.3
    window.flat[rng.integers(window.size)] = True  # never all-zero
    origin = tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in wshape)
    return a, chunks, tuple(region), window, origin


def _ours(name, a, chunks, region, precision, **kwargs):
    res = lp.apply(name, da.from_array(a, chunks=chunks), precision=precision, **kwargs)
    return np.asarray(res[region])


@SETTINGS
@given(case=_case(binary=False), name=st.sampled_from(sorted(GREY)),
       kind=st.sampled_from(["footprint", "size", "structure"]),
       mode=st.sampled_from(["reflect", "constant", "nearest", "mirror"]),
       precision=st.sampled_from(["exact", "fast"]))
def test_grey_windows_and_origins_equal_scipy_in_any_region(case, name, kind, mode,
                                                            precision):
    a, chunks, region, window, origin = case
    if kind == "footprint":
        kw = {"footprint": window}
    elif kind == "size":
        kw = {"size": window.shape}
    else:  # non-flat: integer heights
        kw = {"structure": (np.arange(window.size).reshape(window.shape) % 3).astype(a.dtype)}
    ref = getattr(ndi, GREY[name])(a, **kw, origin=origin, mode=mode, cval=7)
    ours = _ours(name, a, chunks, region, precision, **kw, origin=origin, mode=mode, cval=7)
    np.testing.assert_array_equal(ours, ref[region])
    assert ours.dtype == ref.dtype


@SETTINGS
@given(case=_case(binary=True), name=st.sampled_from(BINARY),
       border_value=st.sampled_from([0, 1]), iterations=st.integers(1, 3),
       named=st.booleans(), precision=st.sampled_from(["exact", "fast"]))
def test_binary_border_iterations_origin_equal_scipy_in_any_region(
        case, name, border_value, iterations, named, precision):
    a, chunks, region, window, origin = case
    if named:  # our ball of radius 1 (scipy's cross), centred
        structure, origin = ndi.generate_binary_structure(a.ndim, 1), (0,) * a.ndim
        kw = {}
    else:
        structure, kw = window, {"structure": window}
    ref = getattr(ndi, name)(a, structure=structure, iterations=iterations,
                             border_value=border_value, origin=origin)
    ours = _ours(name, a, chunks, region, precision, **kw, iterations=iterations,
                 border_value=border_value, origin=origin)
    np.testing.assert_array_equal(ours, ref[region])


def test_halo_grows_with_iterations_and_origin():
    """The region reads the window's reach (n // 2 + |origin|) per erosion it chains."""
    a = np.zeros((40, 40), bool)
    res = lp.apply("binary_opening", a, structure=np.ones((3, 4)), origin=(0, -2),
                   iterations=3)
    assert res.halo == (2 * 3 * 1, 2 * 3 * (2 + 2))
    res = lp.apply("closing", a.astype(np.uint8), size=(1, 6))
    assert res.halo == (0, 2 * 3)


@pytest.mark.parametrize("kwargs, text", [
    ({"iterations": 0}, "depends on the whole array"),
    ({"structure": np.ones((3, 3)), "origin": (2, 0)}, "origin 2 on axis 'z'"),
    ({"structure": np.ones(3)}, "give a 2-D footprint or structure"),
])
def test_binary_refusals_name_the_parameter(kwargs, text):
    a = np.zeros((3, 6, 6), bool)
    with pytest.raises(ValueError, match=text):
        lp.apply("binary_erosion", a, axes="zy", data_axes="zyx", **kwargs)


def test_grey_refuses_an_all_zero_footprint_as_scipy_does():
    with pytest.raises(ValueError, match="footprint has no nonzero element"):
        lp.apply("erosion", np.zeros((6, 6)), footprint=np.zeros((3, 3)))


def test_fill_holes_takes_structure_and_origin():
    a = np.random.default_rng(3).random((5, 20, 21)) > 0.4
    s = ndi.generate_binary_structure(2, 2)
    ours = np.asarray(lp.apply("fill_holes", a, axes="yx", structure=s, origin=(1, 0)))
    ref = np.stack([ndi.binary_fill_holes(p, structure=s, origin=(1, 0)) for p in a])
    np.testing.assert_array_equal(ours, ref)


@SETTINGS
@given(case=_case(binary=False),
       name=st.sampled_from(["morphological_gradient", "morphological_laplace"]),
       structure=st.booleans(), precision=st.sampled_from(["exact", "fast"]))
def test_morphological_gradient_and_laplace_equal_scipy(case, name, structure, precision):
    a, chunks, region, window, origin = case
    kw = ({"structure": window.astype(a.dtype)} if structure else {"footprint": window})
    ref = getattr(ndi, name)(a, **kw, origin=origin)
    ours = _ours(name, a, chunks, region, precision, **kw, origin=origin)
    np.testing.assert_array_equal(ours, ref[region])
    assert ours.dtype == ref.dtype


@SETTINGS
@given(case=_case(binary=True), second=st.booleans(), precision=st.sampled_from(["exact",
                                                                                 "fast"]))
def test_hit_or_miss_equals_scipy_in_any_region(case, second, precision):
    a, chunks, region, window, origin = case
    kw = {"structure1": window, "origin1": origin}
    if second:
        kw.update(structure2=~window, origin2=tuple(0 for _ in origin))
    ref = ndi.binary_hit_or_miss(a, **kw)
    ours = _ours("binary_hit_or_miss", a, chunks, region, precision, **kw)
    np.testing.assert_array_equal(ours, ref[region])

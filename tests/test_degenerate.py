"""Degenerate regions, sizes and shapes: every operation still equals scipy on the whole array.

Regions 0 voxels wide (what napari asks a coarse level for), 1 voxel wide, at the array
edges; every level of an OME-Zarr pyramid (a sigma of 0.6 is 0.15 at level 2); the
smallest sigma (0.01: a kernel of radius 0), size and radius each operation takes; inputs
of 1 to 5 dimensions, axes of one voxel. Both precisions.

The reference is scipy / scikit-image on the whole array of that level: the cases of
conftest.OP_CASES where their parameters apply (level 0, three spatial axes), else the
operation in "exact" precision on the whole in-memory level, with the parameters the
engine computed for that level (``level.params``), which is scipy's call on whole frames.
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from conftest import OP_CASES, quantile_mask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_ops_exact import assert_within_contract

import napari_lazyproc as lp
from napari_lazyproc.ops import REGISTRY

BINARY_INPUT = {name for name, op in REGISTRY.items() if op.binary_input}
#: exact, yet not bitwise: scipy's spline prefilter runs along whole lines (within 1e-12)
PREFILTERED = {name for name, (params, _) in OP_CASES.items()
               if params.get("order", 1) >= 2 and params.get("prefilter", True)}
DATA_AXES = {1: "x", 2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}
#: operations that need more spatial axes than some inputs have: the error names this
NEEDS_AXES = {"rotate": (2, "axes"), "deskew": (3, "deskew"), "project": (3, "no axis 'z'")}
#: the level-0 pyramid and its factors in y and x (z kept, as light-sheet pyramids do)
SHAPE, FACTORS = (5, 20, 22), (1, 2, 4)

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _smooth(shape, seed, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), 1.5)
    return ((smooth - smooth.min()) / (np.ptp(smooth) or 1) * 250).astype(dtype)


def _input_for(name: str, a: np.ndarray) -> np.ndarray:
    """A mask for the operations on masks, else the grey values."""
    return quantile_mask(a).astype(np.uint8) if name in BINARY_INPUT else a


@pytest.fixture(scope="module")
def pyramids(tmp_path_factory) -> dict[str, tuple]:
    """Two zyx OME-Zarr pyramids of 3 levels written by ome-zarr-py, grey and mask: their
    path and their levels read back with zarr."""
    from ome_zarr.writer import write_multiscale

    out = {}
    for kind in ("grey", "mask"):
        base = _smooth(SHAPE, 7, np.uint16)
        if kind == "mask":
            base = quantile_mask(base).astype(np.uint8)
        levels = [base[:, ::f, ::f] for f in FACTORS]
        path = tmp_path_factory.mktemp("pyramids") / f"{kind}.ome.zarr"
        group = zarr.open_group(path, mode="w", zarr_format=2)
        write_multiscale(levels, group, axes="zyx", storage_options={"chunks": (2, 4, 5)},
                         coordinate_transformations=[
                             [{"type": "scale", "scale": [1.0, f, f]}] for f in FACTORS])
        out[kind] = (path, [np.asarray(zarr.open_array(path / f"s{k}", mode="r"))
                            for k in range(len(FACTORS))])
    return out


def _fit(value, k: int):
    """A per-axis list (or nested kernel) given for 3 axes, for the last ``k`` of them."""
    arr = np.asarray(value)
    if arr.ndim == 1 and len(arr) == 3:
        return arr[3 - k:].tolist()
    if arr.ndim == 3:
        reduce = np.any if arr.dtype == bool else np.sum
        return reduce(arr, axis=tuple(range(3 - k))).tolist()
    return value


def case_params(name: str, k: int, smallest: bool, letters: str) -> dict:
    """OP_CASES' parameters for ``k`` spatial axes ``letters``; with ``smallest``, every
    length at its least value (sigma 0.01: a Gaussian of radius 0; size 1; radius 1)."""
    params = dict(OP_CASES[name][0])
    for key, value in params.items():
        if key == "matrix":
            params[key] = np.asarray(value)[3 - k:, 3 - k:].tolist()
        elif key == "shifts":
            params[key] = [[row[0], *row[4 - k:]] for row in value]
        elif key != "function":
            params[key] = _fit(value, k)
    if name == "sobel" and params["axis"] not in letters:
        params["axis"] = letters[0]
    if name.endswith("1d") and not -k <= params.get("axis", -1) < k:  # scipy's: an index
        params["axis"] = -1
    if smallest:
        for p in REGISTRY[name].params:
            if p.quantity != "length" or p.type not in (int, float) or p.name == "shift":
                continue
            params[p.name] = 0.01 if p.type is float else int(p.min)
        if name == "difference_of_gaussians":
            params["high_sigma"] = 0.02
        if name == "generic_filter":
            params["size"] = 1
    return params


@st.composite
def regions(draw, shape):
    """A key per axis: an index, or a slice empty, one voxel wide, or any, often at an edge."""
    key = []
    for n in shape:
        kind = draw(st.sampled_from(["empty", "one", "index", "edge", "any", "any"]))
        lo = draw(st.integers(0, n))
        if kind == "empty":
            key.append(slice(lo, lo))
        elif n == 0:
            key.append(slice(0, 0))
        elif kind in ("one", "index"):
            lo = min(lo, n - 1)
            key.append(lo if kind == "index" else slice(lo, lo + 1))
        elif kind == "edge":
            width = draw(st.integers(1, n))
            key.append(draw(st.sampled_from([slice(0, width), slice(n - width, n)])))
        else:
            key.append(slice(min(lo, n - 1), draw(st.integers(min(lo, n - 1) + 1, n))))
    return tuple(key)


def _kind(key) -> str:
    sizes = [k.stop - k.start if isinstance(k, slice) else 1 for k in key]
    return "empty" if 0 in sizes else "one voxel wide" if 1 in sizes else "wider"


def _reference(level, whole: np.ndarray, name: str, k: int, default: bool, level_index: int):
    """The operation on the whole level: OP_CASES' scipy reference where its parameters
    are the ones used, else the exact engine on the whole in-memory level."""
    if default and level_index == 0 and k == 3 and whole.ndim == 3:
        return np.asarray(OP_CASES[name][1](whole))
    ref = lp.apply(name, whole, data_axes=level.source.axes, axes=level.spatial_axes,
                   precision="exact", **level.params.as_dict())
    if level.op.prepare is not None:
        # a global statistic is level 0's at every level (one threshold per pyramid),
        # made from the bytes of the whole array given here (no reason to recompute it)
        ref._prepared = dict(level.prepared())
        ref._prepared_check = (ref._whole_stamp()[0], 0.0, 0.0)
    return np.asarray(ref)


def _check(ours: np.ndarray, ref: np.ndarray, name: str, precision: str) -> None:
    assert ours.shape == ref.shape
    if precision == "exact" and name not in PREFILTERED:
        # scipy's labels are int32, ours uint32; otherwise the same dtype (bool: a mask)
        assert ours.dtype == ref.dtype or ref.dtype in (bool, np.int32)
        np.testing.assert_array_equal(ours, ref)
    elif precision == "exact":
        np.testing.assert_allclose(ours, ref, rtol=0,
                                   atol=1e-12 * max(1.0, float(np.abs(ref).max(initial=0))))
    elif ours.size:
        assert_within_contract(ours, ref, name, precision)
    else:
        assert ours.dtype == ref.dtype or ref.dtype in (bool, np.int32)


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(OP_CASES))
@SETTINGS
@given(data=st.data())
def test_every_level_any_region_smallest_sizes(pyramids, name, precision, data):
    path, levels = pyramids["mask" if name in BINARY_INPUT else "grey"]
    axes = data.draw(st.sampled_from(["zyx", "yx"]), "axes")
    if name in ("deskew", "project"):  # a volume's operations (project: along z)
        axes = "zyx"
    smallest = data.draw(st.booleans(), "smallest")
    params = case_params(name, len(axes), smallest, axes)
    if name == "project":
        params["axis"] = "z"
    if name == "rotate":  # a plane's rotation: apply's axes are its two axes
        axes = params.pop("axes")
    img = lp.open_image(path)
    frame = None if name == "project" else axes
    result = lp.apply(name, img, axes=frame, precision=precision, **params)
    assert len(result.levels) == len(FACTORS)
    default = not smallest and axes == "zyx" and params == OP_CASES[name][0]
    for k, level in enumerate(result.levels):
        factors = [1 if a == "z" else FACTORS[k] for a in level.spatial_axes]
        for p in level.op.params:  # float lengths keep their physical size: sigma / factor
            if p.quantity == "length" and p.type is float:
                assert level.params[p.name] == pytest.approx(
                    [v / f for v, f in zip(result.params[p.name], factors, strict=True)])
        key = data.draw(regions(level.shape), f"key at level {k}")
        event(f"smallest {smallest}, level {k} {_kind(key)}")
        ours = np.asarray(level[key])
        ref = _reference(level, levels[k], name, len(axes), default, k)
        _check(ours, ref[key], name, precision)


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("name", sorted(OP_CASES))
@SETTINGS
@given(data=st.data())
@pytest.mark.filterwarnings("ignore:threshold_otsu is expected:UserWarning")  # (1, 3, 3)
def test_inputs_of_1_to_5_dimensions(name, precision, data):
    nd = data.draw(st.integers(1, 5), "ndim")
    letters = DATA_AXES[nd]
    spatial = "".join(a for a in letters if a in "zyx")
    shape = tuple(data.draw(st.integers(1, 4 if nd >= 4 else 7)) for _ in range(nd))
    dtype = data.draw(st.sampled_from([np.uint8, np.uint16, np.float32]), "dtype")
    a = _input_for(name, _smooth(shape, data.draw(st.integers(0, 99), "seed"), dtype))
    if name == "label":
        a = a.astype(bool)
    smallest = data.draw(st.booleans(), "smallest")
    params = case_params(name, len(spatial), smallest, spatial)
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    need = NEEDS_AXES.get(name)
    if need is not None and len(spatial) < need[0]:
        with pytest.raises(ValueError, match=need[1]):
            lp.apply(name, da.from_array(a, chunks=chunks), data_axes=letters,
                     precision=precision, **params)
        return
    if name == "rotate":
        params["axes"] = spatial[-2:]
    if name == "project":  # along z (along t or c it runs too; test_project.py)
        params["axis"] = "z"
    if name == "shift_frames":  # a row per time point
        params["shifts"] = [[t, *params["shifts"][0][1:]] for t in range(
            shape[0] if "t" in letters else 1)]
    result = lp.apply(name, da.from_array(a, chunks=chunks), data_axes=letters,
                      precision=precision, **params)
    assert result.spatial_axes == (params["axis"] if name == "project" else params.get(
        "axes", spatial))
    key = data.draw(regions(result.shape), "key")
    ours = np.asarray(result[key])
    default = not smallest and params == OP_CASES[name][0]
    ref = _reference(result, a, name, len(spatial), default, 0)
    _check(ours, ref[key], name, precision)


# ------------------------------------------------------------------ the reported crashes

def test_gaussian_tile_zero_wide_on_a_coarse_level_of_the_synthetic_sample():
    """Sigma 0.6 on the light-sheet sample: napari asks a coarse level for a tile 0 pixels
    wide; the one-plane pass stacked nothing (``need at least one array to stack``) and
    the fast kernel reduced an empty array (``zero-size array to reduction``)."""
    from napari_lazyproc.synthetic import SMALL, lightsheet

    img = lightsheet(SMALL, levels=3)
    for precision in ("exact", "fast"):
        for sigma in (0.6, 1.0):
            result = lp.apply("gaussian", img, sigma=sigma, precision=precision)
            levels = result.display_levels
            assert len(levels) == 3
            assert levels[2].params["sigma"] == pytest.approx([sigma, sigma / 4, sigma / 4])
            for level in levels:
                for key in ((0, 5, slice(3, 3), slice(0, 0)), (0, slice(0, 0), slice(0, 4),
                                                               slice(0, 4))):
                    out = np.asarray(level[key])
                    assert out.dtype == np.uint16
                    assert out.shape == tuple(
                        k.stop - k.start for k in key if isinstance(k, slice))


def test_an_empty_region_runs_no_kernel(fast_spy):
    answers = fast_spy("gaussian")
    result = lp.apply("gaussian", _smooth((4, 9, 8), 1, np.uint16), sigma=0.6,
                      precision="fast")
    empty = np.asarray(result[1, 3:3, :])
    assert empty.shape == (0, 8) and empty.dtype == np.uint16 and answers == []
    ref = ndi.gaussian_filter(_smooth((4, 9, 8), 1, np.uint16), 0.6)[1, 3:4, :]
    assert_within_contract(np.asarray(result[1, 3:4, :]), ref, "gaussian", "fast")
    assert answers == [True]


def test_gaussian_one_plane_pass_empty_and_radius_zero():
    """The one-plane pass itself: no outputs asked is an empty array, radius 0 a copy."""
    from napari_lazyproc.ops.filters._smoothing import _gaussian_1d_at

    b = _smooth((6, 5, 4), 3, np.uint16)
    empty = _gaussian_1d_at(b, 0, 2, 2, (0.6, 0.6, 0.6), (0, 0, 0), 4.0, None, "reflect", 0.0)
    assert empty.shape == (0, 5, 4) and empty.dtype == np.uint16
    one = _gaussian_1d_at(b, 1, 4, 5, (0.075,) * 3, (0, 0, 0), 4.0, None, "reflect", 0.0)
    np.testing.assert_array_equal(one, ndi.gaussian_filter1d(b, 0.075, axis=1)[:, 4:5])


@pytest.mark.parametrize("faces", ["kept", "read back"])
def test_label_global_on_a_1d_input_of_several_chunks(faces, monkeypatch):
    """A 1-D chunk's face is a single voxel (a 0-d plane): ``'numpy.int64' object does not
    support item assignment``. Labels equal scipy's on the whole array."""
    from napari_lazyproc.ops.jobs import _label_global

    if faces == "read back":
        monkeypatch.setattr(_label_global, "FACE_BYTES", 0)
    a = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1] * 3, bool)
    labels = lp.label_global(da.from_array(a, chunks=4), data_axes="x").run()
    ref, n = ndi.label(a)
    assert labels.n_labels == n
    np.testing.assert_array_equal(np.asarray(labels), ref)


@pytest.mark.parametrize("nd", [1, 2, 3, 4, 5])
def test_label_global_on_1_to_5_dimensions(nd):
    letters = DATA_AXES[nd]
    shape = (9, 7, 5, 6, 8)[:nd] if nd < 4 else (2, 2, 5, 6, 7)[5 - nd:]
    a = quantile_mask(_smooth(shape, nd, np.float32))
    spatial = [i for i, c in enumerate(letters) if c in "zyx"]
    for connectivity in range(1, len(spatial) + 1):
        labels = lp.label_global(da.from_array(a, chunks=2), data_axes=letters,
                                 connectivity=connectivity).run()
        structure = ndi.generate_binary_structure(len(spatial), connectivity)
        ref = np.empty(shape, np.int32)
        for index in np.ndindex(*shape[: nd - len(spatial)]):
            ref[index] = ndi.label(a[index], structure)[0]
        ours = np.asarray(labels)
        # numbered across frames: the same objects, up to a permutation
        np.testing.assert_array_equal(ours == 0, ref == 0)
        for index in np.ndindex(*shape[: nd - len(spatial)]):
            pairs = np.unique(np.stack([ours[index].ravel(), ref[index].ravel()]), axis=1)
            assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_an_image_with_an_empty_axis_gives_numpy_s_answer_or_a_clear_error(precision):
    """Projections along an empty axis are numpy's (zeros, NaN) or its refusal, named;
    a whole-image statistic of no voxel is refused by name, not an IndexError."""
    a = np.zeros((0, 8, 8), np.uint16)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for method in ("sum", "mean", "std"):
            ours = np.asarray(lp.apply("project", a, axis="z", method=method,
                                       precision=precision))
            ref = getattr(np, method)(a, axis=0)
            assert ours.dtype == ref.dtype
            np.testing.assert_array_equal(ours, ref)
    with pytest.raises(ValueError, match="the z axis is empty"):
        np.asarray(lp.apply("project", a, axis="z", method="max", precision=precision))
    for name in ("threshold_otsu", "threshold_li", "threshold_triangle", "rescale"):
        with pytest.raises(ValueError, match="holds no voxel"):
            np.asarray(lp.apply(name, a, precision=precision))
    np.testing.assert_array_equal(np.asarray(lp.apply("gaussian", a, sigma=1.0,
                                                      precision=precision)), a)

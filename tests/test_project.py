"""Projections (max, mean, min, sum, std along z, t or c): numpy's values on the whole
array for any region, chained like any operation, per level, lazy, exported, in napari."""

from __future__ import annotations

import itertools
import json

import dask.array as da
import numpy as np
import pytest
import zarr
from conftest import SERIES, write_zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.ops import as_source
from napari_lazyproc.ops.geometry._project import METHODS

#: values are compared bitwise here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")

RNG = np.random.default_rng(13)


def _data(shape, dtype) -> np.ndarray:
    values = RNG.random(shape) * 4000 - (1000 if np.dtype(dtype).kind in "if" else 0)
    return values.astype(dtype)


def _reference(a, method, axis):
    return getattr(np, method)(a, axis=axis)


def _regions(shape, chunks):
    """Regions everywhere: the whole array, one voxel at each corner, a chunk, regions that
    cross chunk edges, one-voxel-wide strips on the array's edges."""
    out = [tuple(slice(0, n) for n in shape)]
    for corner in itertools.product(*[(0, n - 1) for n in shape]):
        out.append(tuple(slice(i, i + 1) for i in corner))
    pairs = list(zip(chunks, shape, strict=True))
    out.append(tuple(slice(0, min(c, n)) for c, n in pairs))
    out.append(tuple(slice(max(0, c - 1), min(n, c + 2)) for c, n in pairs))
    out.append(tuple(slice(min(c, n - 1), n) for c, n in pairs))
    out.append(tuple(slice(n - 1, n) if i == len(shape) - 1 else slice(0, n)
                     for i, n in enumerate(shape)))
    return out


CASES = [
    # data axes, shape, chunks, the axis projected
    ("zyx", (9, 13, 17), (4, 5, 6), "z"),
    ("tzyx", (3, 7, 11, 10), (2, 3, 4, 4), "z"),
    ("tzyx", (3, 7, 11, 10), (2, 3, 4, 4), "t"),
    ("czyx", (2, 6, 9, 8), (1, 4, 5, 3), "c"),
    ("czyx", (2, 6, 9, 8), (1, 4, 5, 3), "z"),
]


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64, bool])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("data_axes, shape, chunks, axis", CASES)
def test_every_method_and_axis_equals_numpy_on_the_whole_array(data_axes, shape, chunks, axis,
                                                               method, dtype):
    a = _data(shape, dtype) if dtype is not bool else _data(shape, np.float32) > 1500
    res = lp.apply("project", da.from_array(a, chunks=chunks), data_axes=data_axes, axis=axis,
                   method=method)
    i = data_axes.index(axis)
    expected = _reference(a, method, i)
    assert res.axes == data_axes.replace(axis, "") and res.shape == expected.shape
    assert res.dtype == expected.dtype  # numpy's: uint64 sums, float64 means of integers...
    for region in _regions(res.shape, [c for k, c in enumerate(chunks) if k != i]):
        # bitwise numpy's (max, min, sum; mean and std too, summed in numpy's order)
        np.testing.assert_array_equal(np.asarray(res[region]), expected[region],
                                      err_msg=str(region))


def test_dtypes_are_numpys():
    for dtype in (np.uint8, np.uint16, np.int32, np.float32, np.float16, bool):
        a = np.zeros((3, 4, 5), dtype)
        for method in METHODS:
            res = lp.apply("project", a, axis="z", method=method)
            assert res.dtype == _reference(a, method, 0).dtype, (dtype, method)
    assert lp.apply("project", np.zeros((3, 4, 5), np.uint16), method="sum").dtype == np.uint64


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(METHODS), st.sampled_from([np.uint8, np.float32]),
       st.integers(0, 2**16), st.data())
def test_any_region_of_any_chunking_is_exact(method, dtype, seed, data):
    # y and x at least 2: numpy sums an axis whose following axes are all of length 1
    # (a column, not an image) pairwise, 8 at a time, not plane by plane (1e-7 apart)
    shape = tuple(data.draw(st.integers(1 if k < 2 else 2, 9)) for k in range(4))
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    axis = data.draw(st.sampled_from("tz"))
    a = (np.random.default_rng(seed).random(shape) * 250).astype(dtype)
    res = lp.apply("project", da.from_array(a, chunks=chunks), data_axes="tzyx", axis=axis,
                   method=method)
    key = []
    for n in res.shape:
        lo = data.draw(st.integers(0, n - 1))
        key.append(data.draw(st.one_of(st.just(lo), st.integers(lo + 1, n).map(
            lambda hi, lo=lo: slice(lo, hi)))))
    expected = _reference(a, method, "tz".index(axis))
    np.testing.assert_array_equal(np.asarray(res[tuple(key)]), expected[tuple(key)])


def test_keepdims_keeps_the_axis_as_one_plane_spanning_the_stack():
    a = _data((4, 6, 9, 10), np.uint16)
    img = lp.LazyImage(levels=[da.from_array(a, chunks=(1, 2, 5, 5))], axes="tzyx",
                       scale=(2.0, 3.0, 0.5, 0.5), translate=(0, 10.0, 1.0, 2.0),
                       units=("second", "micrometer", "micrometer", "micrometer"), name="s",
                       source={"path": None})
    res = lp.apply("project", img, axis="z", method="max", keepdims=True)
    np.testing.assert_array_equal(np.asarray(res), np.max(a, axis=1, keepdims=True))
    assert res.axes == "tzyx" and res.shape == (4, 1, 9, 10)
    assert res.scale == (2.0, 18.0, 0.5, 0.5)  # 6 planes of 3 µm
    assert res.translate_from((0, 10.0, 1.0, 2.0)) == (0, 17.5, 1.0, 2.0)  # centred
    plain = lp.apply("project", img, axis="z")
    assert plain.scale == (2.0, 0.5, 0.5) and plain.units == ("second",) + ("micrometer",) * 2
    assert plain.translate_from((0, 10.0, 1.0, 2.0)) == (0, 1.0, 2.0)


# ------------------------------------------------------------------ chained


def test_a_gaussian_then_a_max_projection_then_a_threshold():
    a = _data((2, 8, 20, 24), np.float32)
    data = da.from_array(a, chunks=(1, 3, 7, 9))
    smooth = lp.apply("gaussian", data, data_axes="tzyx", sigma=1.0, axes="zyx")
    mip = lp.apply("project", smooth, axis="z", method="max")
    mask = lp.apply("threshold", mip, value=1500.0)
    filtered = np.stack([ndi.gaussian_filter(v, 1.0) for v in a])
    expected = np.max(filtered, axis=1)
    np.testing.assert_array_equal(np.asarray(mip), expected)
    np.testing.assert_array_equal(np.asarray(mask[1, 5:13, 2:20]), expected[1, 5:13, 2:20] > 1500)
    assert [s["op"] for s in mask.steps] == ["gaussian", "project", "threshold"]
    assert mask.axes == "tyx" and mask.spatial_axes == "yx"


def test_a_filter_of_a_projection_grows_its_halo_on_the_projection():
    a = _data((3, 5, 30, 28), np.uint16)
    mean = lp.apply("project", da.from_array(a, chunks=(1, 2, 8, 8)), data_axes="tzyx",
                    axis="t", method="mean")
    smooth = lp.apply("gaussian", mean, sigma=2.0, axes="yx")
    expected = np.stack([ndi.gaussian_filter(p, 2.0) for p in np.mean(a, axis=0)])
    np.testing.assert_array_equal(np.asarray(smooth[2, 10:14]), expected[2, 10:14])
    labels = lp.apply("label", lp.apply("threshold", smooth, value=2000.0))
    np.testing.assert_array_equal(np.asarray(labels[1]) > 0, expected[1] > 2000)


def test_pipeline_json_round_trip():
    a = _data((2, 6, 16, 16), np.uint16)
    data = da.from_array(a, chunks=(1, 2, 8, 8))
    pipe = lp.Pipeline.from_json('[{"op": "gaussian", "sigma": 1, "axes": "yx"}, '
                                 '{"op": "project", "axis": "z", "method": "std"}]')
    res = pipe(as_source(data, "tzyx"))
    again = lp.Pipeline.from_json(json.dumps(res.steps))(as_source(data, "tzyx"))
    assert lp.Pipeline.from_json(pipe.to_json()) == pipe
    assert res.steps[-1] == {"op": "project", "axis": "z", "method": "std", "keepdims": False,
                             "axes": "z", "precision": "exact"}
    assert again.steps == res.steps and again.token == res.token
    expected = np.std(np.stack([[ndi.gaussian_filter(p, 1.0) for p in v] for v in a]), axis=1)
    np.testing.assert_array_equal(np.asarray(again), expected)


@pytest.mark.parametrize("params, message", [
    ({"axis": "t"}, r"project: the data has no axis 't' \(its axes are 'zyx'\)"),
    ({"axis": "y"}, "project: axis must be one of 'z', 't', 'c'"),
    ({"method": "median"}, "project: method must be one of 'max', 'mean'"),
    ({"axes": "zyx"}, r"project runs along the axes its parameters name \('z'\)"),
])
def test_bad_parameters_are_clear_errors(params, message):
    with pytest.raises(ValueError, match=message):
        lp.apply("project", np.zeros((4, 5, 6), np.uint8), **params)


def test_list_ops_describes_it():
    ops = {o["name"]: o for o in lp.list_ops()}
    params = {p["name"]: p for p in ops["project"]["params"]}
    assert params["axis"]["choices"] == ["z", "t", "c"] and params["axis"]["quantity"] == "axis"
    assert params["method"]["choices"] == list(METHODS)


# ------------------------------------------------------------------ levels


def test_each_level_is_the_projection_of_that_input_level(ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    res = lp.apply("project", img, axis="z", method="mean")
    assert len(res.levels) == 3 and all(r.preview for r in res.levels[1:])
    for k, level in enumerate(ome_pyramid_levels):
        np.testing.assert_array_equal(np.asarray(res.levels[k]), np.mean(level, axis=1),
                                      err_msg=f"level {k}")
        assert res.levels[k].scale == pytest.approx((1.0, 0.5 * 2**k, 0.5 * 2**k))
        assert res.levels[k].axes == "tyx"
    per_plane = lp.apply("project", img, axis="t", method="max")
    for k, level in enumerate(ome_pyramid_levels):
        np.testing.assert_array_equal(np.asarray(per_plane.levels[k][3]), np.max(level, axis=0)[3])


def test_a_pyramid_downsampled_in_z_too():
    base = _data((16, 40, 48), np.uint16)
    pyramid = [base, base[::2, ::2, ::2].copy(), base[::4, ::4, ::4].copy()]
    res = lp.apply("project", pyramid, axis="z", method="sum")
    assert [r.shape for r in res.levels] == [(40, 48), (20, 24), (10, 12)]
    for k, level in enumerate(pyramid):
        np.testing.assert_array_equal(np.asarray(res.levels[k]), np.sum(level, axis=0))
    assert res.levels[2].scale == (4.0, 4.0)


# ------------------------------------------------------------------ laziness


@pytest.fixture
def series_zarr(tmp_path):
    """(3, 32, 128, 160) uint16 tzyx, chunks (1, 8, 32, 32): a time point has 4 x 4 x 5
    chunks, and its projection is large enough to be computed in parallel tiles."""
    a = np.random.default_rng(1).integers(0, 4000, (3, 32, 128, 160)).astype(np.uint16)
    write_zarr(tmp_path / "s.zarr", a, (1, 8, 32, 32), dimension_names=list("tzyx"))
    return tmp_path / "s.zarr", a


def _t_chunks(keys) -> set[int]:
    return {int(k.split("/")[1]) for k in keys}


def test_a_z_projection_reads_its_time_point_once(series_zarr, zarr_reads):
    path, a = series_zarr
    res = lp.apply("project", lp.open_image(path), axis="z", method="max")
    assert len(res._tiles(tuple(slice(0, n) for n in (1, 128, 160)))) > 1  # in parallel
    np.testing.assert_array_equal(np.asarray(res[1]), np.max(a[1], axis=0))
    keys = zarr_reads.chunk_keys()
    assert _t_chunks(keys) == {1}  # never another time point
    assert len(keys) == 4 * 4 * 5 and max(zarr_reads.keys[k] for k in keys) == 1
    np.asarray(res[1])  # cached: nothing read again
    np.asarray(lp.apply("project", lp.open_image(path), axis="z", method="min")[1])
    assert max(zarr_reads.keys[k] for k in zarr_reads.chunk_keys()) == 1  # chunks cached


def test_a_region_of_a_projection_reads_only_its_columns(series_zarr, zarr_reads):
    path, a = series_zarr
    res = lp.apply("project", lp.open_image(path), axis="z", method="mean")
    np.testing.assert_array_equal(np.asarray(res[2, 40:60, 100:140]),
                                  np.mean(a[2], axis=0)[40:60, 100:140])
    keys = zarr_reads.chunk_keys()
    # y 40..60: y-chunk 1; x 100..140: x-chunks 3 and 4; every z-chunk of t 2
    assert sorted(keys) == sorted(f"c/2/{z}/1/{x}" for z in range(4) for x in (3, 4))


def test_a_t_projection_reads_its_z_plane_of_every_time_point(series_zarr, zarr_reads):
    path, a = series_zarr
    res = lp.apply("project", lp.open_image(path), axis="t", method="sum")
    np.testing.assert_array_equal(np.asarray(res[9]), np.sum(a, axis=0)[9])
    keys = zarr_reads.chunk_keys()
    assert {k.split("/")[2] for k in keys} == {"1"} and _t_chunks(keys) == {0, 1, 2}
    assert len(keys) == 3 * 4 * 5 == len(set(keys))


# ------------------------------------------------------------------ export


def test_export_of_a_projection_has_its_axes_and_scale(ome_pyramid, ome_pyramid_levels, tmp_path):
    img = lp.open_image(ome_pyramid)
    res = lp.apply("project", img, axis="z", method="max")
    out = lp.export(res, tmp_path / "mip.ome.zarr", levels=2)
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out / "0", mode="r")),
                                  np.max(ome_pyramid_levels[0], axis=1))
    attrs = zarr.open_group(out, mode="r").attrs.asdict()
    ms = (attrs.get("ome") or attrs)["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["t", "y", "x"]
    assert [a.get("unit") for a in ms["axes"]] == ["second", "micrometer", "micrometer"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 0.5, 0.5], [1.0, 1.0, 1.0]]
    back = lp.open_image(out)
    assert back.axes == "tyx" and tuple(back.scale) == (1.0, 0.5, 0.5)
    pipeline = json.dumps(attrs["napari-lazyproc"]["pipeline"])
    assert '"op": "project"' in pipeline


def test_to_dask_has_the_projections_chunks(series_zarr):
    path, a = series_zarr
    res = lp.apply("project", lp.open_image(path), axis="z", method="max")
    d = res.to_dask()
    assert d.shape == (3, 128, 160) and d.chunks == ((1,) * 3, (32,) * 4, (32,) * 5)
    np.testing.assert_array_equal(d[:, :40].compute(), np.max(a, axis=1)[:, :40])


def test_series_fixture_projection():
    """The conftest series, as a plain array: the t projection of a z plane."""
    res = lp.apply("project", SERIES, data_axes="tzyx", axis="t", method="min")
    np.testing.assert_array_equal(np.asarray(res[4, 10:20]), np.min(SERIES, axis=0)[4, 10:20])


# ------------------------------------------------------------------ the engine's Geometry


def _upsample_region(out, frame_shape, params):
    return tuple(slice(r.start // 2, min(n, (r.stop + 1) // 2))
                 for r, n in zip(out, frame_shape, strict=True))


def _upsample(block, region, source_region):
    """Each voxel repeated twice along every frame axis, over ``region`` only."""
    full = block
    for i in range(block.ndim):
        full = full.repeat(2, axis=i)
    return full[tuple(slice(r.start - 2 * s.start, r.stop - 2 * s.start)
                      for r, s in zip(region, source_region, strict=True))]


def test_a_geometry_that_keeps_the_axes_and_changes_their_size(monkeypatch):
    """What geometric transforms (issue 17) build on: an output box mapped to an input box
    (a toy 2x upsampling by repetition over y and x, frame by frame, not batched), with
    its own scale and origin; region-exact, in tiles, chained, per level, to dask."""
    from napari_lazyproc.ops import REGISTRY, Geometry, Op
    from napari_lazyproc.ops.engine import _tiling

    def place(scale, origin, shape, params):
        return (tuple(s / 2 for s in scale),
                tuple(o - s / 4 for o, s in zip(origin, scale, strict=True)))

    geometry = Geometry(shape=lambda frame_shape, p: tuple(2 * n for n in frame_shape),
                        region=_upsample_region, place=place)
    monkeypatch.setitem(REGISTRY, "upsample", Op("upsample", "test", _upsample,
                                                 geometry=geometry))
    monkeypatch.setattr(_tiling, "TILE_VOXELS", 64)  # many tiles
    a = _data((3, 7, 9), np.uint16)
    img = lp.LazyImage(levels=[da.from_array(a, chunks=(2, 3, 4)),
                               da.from_array(a[:, ::2, ::2].copy(), chunks=(2, 3, 4))],
                       axes="zyx", scale=(2.0, 1.0, 1.0), translate=(0, 0, 0),
                       units=(None,) * 3, name="toy", source={"path": None})
    res = lp.apply("upsample", img, axes="yx")
    expected = a.repeat(2, 1).repeat(2, 2)
    assert res.shape == (3, 14, 18) and res.axes == "zyx" and res.spatial_axes == "yx"
    assert res.scale == (2.0, 0.5, 0.5) and res.translate_from((1.0, 0, 0)) == (1.0, -0.25, -0.25)
    assert res.chunks == ((2, 1), (3,) * 4 + (2,), (4,) * 4 + (2,))
    assert len(res._tiles(tuple(slice(0, n) for n in res.shape))) > 1
    for region in _regions(res.shape, (2, 3, 4)):
        np.testing.assert_array_equal(np.asarray(res[region]), expected[region])
    smooth = lp.apply("gaussian", res, sigma=1.0, axes="yx")
    np.testing.assert_array_equal(np.asarray(smooth[1, 3:9]),
                                  ndi.gaussian_filter(expected[1], 1.0)[3:9])
    assert res.levels[1].shape == (3, 8, 10)
    np.testing.assert_array_equal(np.asarray(res.levels[1]),
                                  a[:, ::2, ::2].repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(res.to_dask().compute(), expected)


# ------------------------------------------------------------------ the device path


def test_device_path_tiles_and_chains_with_numpy_standing_in_for_cupy(monkeypatch):
    """The GPU path's plumbing (device tiles cut along any output axis, a chained input
    computed on the device, the geometric function on device blocks), run with numpy
    blocks; tests/test_gpu.py checks CuPy's values on a device."""
    from napari_lazyproc.backend import device
    from napari_lazyproc.ops.engine import _evaluation, _gpu_evaluation, _whole_values

    for _m in (_evaluation, _gpu_evaluation, _whole_values):
        monkeypatch.setattr(_m, "get_backend", lambda: "cupy")
    monkeypatch.setattr(device, "to_device", lambda a: np.asarray(a))
    monkeypatch.setattr(device, "to_host", lambda a: np.asarray(a))
    monkeypatch.setattr(device, "tile_voxels", lambda itemsize: 2000)  # many tiles
    monkeypatch.setattr(device, "fits", lambda voxels, itemsize: True)
    a = _data((2, 6, 30, 28), np.float32)
    data = da.from_array(a, chunks=(1, 4, 8, 8))
    smooth = lp.apply("gaussian", data, data_axes="tzyx", sigma=1.0, axes="yx",
                      precision="fast")
    std = lp.apply("project", smooth, axis="z", method="std", precision="fast")
    assert std.on_gpu and smooth.on_gpu
    assert len(std._tiles(tuple(slice(0, n) for n in std.shape))) > 1
    for _m in (_evaluation, _gpu_evaluation, _whole_values):
        monkeypatch.setattr(_m, "get_backend", lambda: "numpy")
    # on (stand-in) device blocks the Gaussian runs the scipy function, no fast kernel
    expected = np.asarray(lp.apply("project", lp.apply(
        "gaussian", data, data_axes="tzyx", sigma=1.0, axes="yx", precision="exact"),
        axis="z", method="std"))
    for _m in (_evaluation, _gpu_evaluation, _whole_values):
        monkeypatch.setattr(_m, "get_backend", lambda: "cupy")
    lp.ops.CACHE.clear()
    np.testing.assert_array_equal(np.asarray(std), expected)


# ------------------------------------------------------------------ in napari


def _widget(viewer, qtbot, raw, **params):
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing")
    widget.input.value = raw
    widget.operation.value = "project"
    if params:
        widget.set_params(**params)
    return widget


def _shown(qtbot, layer) -> np.ndarray:
    from napari_lazyproc._qt.live_layers import live_states

    states = live_states(layer)
    assert states, "not a live layer"
    qtbot.waitUntil(lambda: not any(s.busy for s in states), timeout=30000)
    qtbot.wait(50)  # the refresh queued on the main thread
    return np.asarray(layer._slice.image.raw)


def test_widget_projection_layer_has_t_y_x_and_overlays(make_napari_viewer, qtbot, ome_pyramid,
                                                        ome_pyramid_levels):
    pytest.importorskip("napari")
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    raw.translate = (0.0, 4.0, 1.0, 2.0)
    widget = _widget(viewer, qtbot, raw)
    assert "project" in widget.operation.choices
    assert widget.params["axis"].choices == ("z", "t")  # the axes the data has
    assert not widget.axes.enabled  # the projection's axis is its own parameter
    widget.set_params(method="mean")
    layer = widget.add_layer()
    assert layer.name == f"{raw.name} · project axis=z method=mean"
    assert tuple(layer.axis_labels) == ("t", "y", "x") and layer.ndim == 3
    assert tuple(layer.scale) == (1.0, 0.5, 0.5)  # z removed
    assert tuple(layer.translate) == (0.0, 1.0, 2.0)
    assert layer.multiscale and len(layer.data) == 3
    assert layer.metadata["pipeline"][-1]["op"] == "project"
    # the layer alone: a t slider and y/x
    viewer.layers.remove(raw)
    assert tuple(viewer.dims.axis_labels) == ("t", "y", "x") and viewer.dims.nsteps[0] == 2
    layer.locked_data_level = 0
    viewer.dims.set_current_step(0, 1)
    np.testing.assert_array_equal(_shown(qtbot, layer), np.mean(ome_pyramid_levels[0][1], axis=0))
    # a chained step on the projection layer
    widget.input.value = layer
    widget.operation.value = "threshold"
    widget.set_params(value=2000.0)
    mask = widget.add_layer()
    assert tuple(mask.axis_labels) == ("t", "y", "x") and tuple(mask.scale) == (1.0, 0.5, 0.5)
    mask.locked_data_level = 0
    np.testing.assert_array_equal(_shown(qtbot, mask),
                                  np.mean(ome_pyramid_levels[0][1], axis=0) > 2000)


def test_widget_keepdims_layer_follows_the_inputs_t_slider(make_napari_viewer, qtbot,
                                                           ome_pyramid, ome_pyramid_levels):
    pytest.importorskip("napari")
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(ome_pyramid), plugin="napari-lazyproc")
    widget = _widget(viewer, qtbot, raw, keepdims=True)
    layer = widget.add_layer()
    raw.visible = False
    assert tuple(layer.axis_labels) == ("t", "z", "y", "x")
    assert tuple(layer.scale) == (1.0, 32.0, 0.5, 0.5)  # one plane as thick as the stack
    assert tuple(layer.translate) == (0.0, 15.0, 0.0, 0.0)
    layer.locked_data_level = 0
    viewer.dims.set_current_step(0, 1)
    for z in (0, 7, 15):  # any plane of the input shows the projection of its time point
        viewer.dims.set_current_step(1, z)
        np.testing.assert_array_equal(_shown(qtbot, layer),
                                      np.max(ome_pyramid_levels[0][1], axis=0))

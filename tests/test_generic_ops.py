"""User kernels and functions: convolve, correlate, rank_filter and generic_filter.

Each equals scipy.ndimage on the whole array, for regions at the edges and chunks smaller
than the kernel, 2D and 3D, every mode, every origin scipy allows; kernels come as lists,
.npy files or arrays and travel through a pipeline's JSON; a Python function does not.
"""

from __future__ import annotations

import itertools
import json
import logging

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.ops.filters._generic import json_step, pipeline_json

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")

MODES = ("reflect", "constant", "nearest", "mirror")
RNG = np.random.default_rng(11)
VOL = (RNG.random((7, 13, 11)) * 200).astype(np.float32)
VOL_U8 = VOL.astype(np.uint8)


def _origins(shape):
    """Every origin scipy allows for a window of ``shape``, per axis: its extremes and 0."""
    per_axis = [sorted({-(n // 2), 0, (n - 1) // 2}) for n in shape]
    return list(itertools.product(*per_axis))


def _per_plane(fn, a):
    return np.stack([fn(plane) for plane in a])


def _regions(shape):
    """Regions at both edges, one inside, and the whole array."""
    yield tuple(slice(0, 2) for _ in shape)
    yield tuple(slice(n - 3, n) for n in shape)
    yield tuple(slice(n // 3, n // 3 + 2) for n in shape)
    yield tuple(slice(0, n) for n in shape)


# ------------------------------------------------------------------------ values


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["convolve", "correlate"])
@pytest.mark.parametrize("axes, kernel_shape", [("zyx", (3, 2, 4)), ("yx", (4, 5))])
def test_kernel_regions_equal_scipy_for_every_origin_mode_and_chunking(name, mode, axes,
                                                                       kernel_shape):
    weights = RNG.standard_normal(kernel_shape)
    ref_fn = getattr(ndi, name)
    for origin, chunks in itertools.product(_origins(kernel_shape), [(2, 3, 1), (7, 5, 4)]):
        res = lp.apply(name, da.from_array(VOL, chunks=chunks), weights=weights, mode=mode,
                       cval=-3.5, origin=list(origin), axes=axes)
        if axes == "zyx":
            ref = ref_fn(VOL, weights, mode=mode, cval=-3.5, origin=origin)
        else:
            ref = _per_plane(lambda p, o=origin: ref_fn(p, weights, mode=mode, cval=-3.5,
                                                        origin=o), VOL)
        assert res.dtype == ref.dtype == VOL.dtype
        for key in _regions(VOL.shape):
            np.testing.assert_array_equal(np.asarray(res[key]), ref[key],
                                          err_msg=f"origin {origin}, chunks {chunks}, {key}")


def test_integer_input_keeps_its_dtype_as_scipy_does():
    weights = [[0.5, 1.0, 0.25], [0.0, 1.0, -0.5]]
    res = lp.apply("convolve", da.from_array(VOL_U8, chunks=(3, 4, 4)), weights=weights,
                   axes="yx")
    ref = _per_plane(lambda p: ndi.convolve(p, np.array(weights)), VOL_U8)
    assert res.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(res), ref)


def test_kernel_larger_than_the_image_uses_the_mode_like_scipy():
    small = VOL[:2, :3, :4]
    weights = RNG.random((5, 7, 9))
    res = lp.apply("correlate", da.from_array(small, chunks=1), weights=weights, mode="mirror")
    np.testing.assert_array_equal(np.asarray(res), ndi.correlate(small, weights, mode="mirror"))


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("mode", MODES)
def test_rank_filter_is_exact_in_both_precisions_with_negative_ranks(precision, mode):
    footprint = RNG.random((2, 3, 4)) > 0.3
    count = int(footprint.sum())
    for rank, origin in itertools.product((0, -1, -count, count // 2),
                                          _origins(footprint.shape)[::3]):
        res = lp.apply("rank_filter", da.from_array(VOL_U8, chunks=(2, 3, 2)), rank=rank,
                       footprint=footprint, mode=mode, cval=9, origin=list(origin),
                       precision=precision)
        ref = ndi.rank_filter(VOL_U8, rank, footprint=footprint, mode=mode, cval=9,
                              origin=origin)
        for key in _regions(VOL.shape):
            np.testing.assert_array_equal(np.asarray(res[key]), ref[key],
                                          err_msg=f"rank {rank}, origin {origin}, {key}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(3, 3, 3), (2, 4, 3), (1, 5, 2)])
def test_fast_rank_filter_of_a_box_runs_the_window_kernel_and_equals_scipy(mode, size):
    """A box window, centred: the fast kernel answers (odd and even widths), values
    exactly scipy's for every rank, at chunk and array edges."""
    from napari_lazyproc.ops.filters._generic import _rank_filter_fast

    n = int(np.prod(size))
    crop = (slice(1, 6), slice(0, 13), slice(2, 9))
    assert _rank_filter_fast(VOL_U8, crop, 0, size, None, mode, 9.0, (0, 0, 0)) is not None
    for rank in (0, -1, n // 2, -2):
        res = lp.apply("rank_filter", da.from_array(VOL, chunks=(2, 5, 4)), rank=rank,
                       size=size, mode=mode, cval=9, precision="fast")
        ref = ndi.rank_filter(VOL, rank, size=size, mode=mode, cval=9)
        np.testing.assert_array_equal(np.asarray(res), ref, err_msg=f"rank {rank}")


def test_rank_filter_with_a_size_per_plane():
    res = lp.apply("rank_filter", da.from_array(VOL, chunks=(1, 2, 2)), rank=-3,
                   size=(4, 3), origin=(1, -1), axes="yx")
    ref = _per_plane(lambda p: ndi.rank_filter(p, -3, size=(4, 3), origin=(1, -1)), VOL)
    np.testing.assert_array_equal(np.asarray(res), ref)


def test_generic_filter_runs_a_python_function_with_its_arguments():
    def spread(values, scale, offset=0.0):
        return scale * np.ptp(values) + offset

    footprint = [[[1, 0, 1], [0, 1, 0]]]
    res = lp.apply("generic_filter", da.from_array(VOL, chunks=(2, 3, 3)), function=spread,
                   footprint=footprint, mode="nearest", origin=(0, -1, 1),
                   extra_arguments=(2.0,), extra_keywords={"offset": 1.5})
    ref = ndi.generic_filter(VOL, spread, footprint=np.array(footprint), mode="nearest",
                             origin=(0, -1, 1), extra_arguments=(2.0,),
                             extra_keywords={"offset": 1.5})
    np.testing.assert_array_equal(np.asarray(res), ref)
    plain = lp.apply("generic_filter", VOL_U8, function=np.ptp, size=3, axes="yx")
    np.testing.assert_array_equal(np.asarray(plain[3]), ndi.generic_filter(VOL_U8[3], np.ptp,
                                                                           size=3))


def test_generic_filter_is_computed_on_the_cpu():
    assert not lp.ops.get_op("generic_filter").on_gpu
    assert all(lp.ops.get_op(n).on_gpu for n in ("convolve", "correlate", "rank_filter"))


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize("weights, message", [
    ([[1.0, float("nan")], [0.0, 1.0]], "convolve: weights holds NaN"),
    ([], "convolve: weights is empty"),
    ([[1, 2], [3]], "convolve: weights must be a nested list of numbers"),
    ([1.0, 2.0, 1.0], r"convolve: weights is 1-D \(3,\) and the spatial axes 'yx' are 2"),
    (np.ones((3, 3, 3)), r"weights is 3-D .* give a 2-D kernel"),
    ("[[1, 2]", "convolve: weights is not a valid nested list"),
    (None, "convolve: weights is required"),
])
def test_bad_kernels_are_errors_naming_the_parameter(weights, message):
    with pytest.raises(ValueError, match=message):
        lp.apply("convolve", VOL, weights=weights, axes="yx")


def test_kernel_files_that_are_missing_or_not_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"correlate: weights file '.*nothere.npy' does not "
                                         r"exist"):
        lp.apply("correlate", VOL, weights=str(tmp_path / "nothere.npy"))
    text = tmp_path / "kernel.npy"
    text.write_text("1 2 3")
    with pytest.raises(ValueError, match=r"correlate: weights file '.*kernel.npy' is not a "
                                         r"\.npy array"):
        lp.apply("correlate", VOL, weights=str(text))
    several = tmp_path / "several.npz"
    np.savez(several, a=np.ones(3), b=np.ones(3))
    with pytest.raises(ValueError, match="is not a .npy array"):
        lp.apply("correlate", VOL, weights=str(several))
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="correlate: weights is empty"):
        lp.apply("correlate", VOL, weights=str(empty), axes="yx")


def test_origins_and_ranks_outside_scipys_range_are_errors():
    with pytest.raises(ValueError, match=r"convolve: origin 2 on axis 'y' must be between "
                                         r"-2 and 1 for a window of 4"):
        lp.apply("convolve", VOL, weights=np.ones((4, 3)), origin=(2, 0), axes="yx")
    with pytest.raises(ValueError, match=r"rank_filter: rank 9 must be between -9 and 8"):
        lp.apply("rank_filter", VOL, rank=9, size=3, axes="yx")
    with pytest.raises(ValueError, match=r"rank_filter: rank -4 must be between -3 and 2"):
        lp.apply("rank_filter", VOL, rank=-4, footprint=[[1, 0, 1], [0, 1, 0]], axes="yx")
    with pytest.raises(ValueError, match="rank_filter: footprint has no nonzero element"):
        lp.apply("rank_filter", VOL, footprint=[[0, 0], [0, 0]], axes="yx")


def test_generic_filter_needs_a_python_function():
    with pytest.raises(ValueError, match=r"generic_filter: function must be a Python "
                                         r"function \(got nothing\).*from Python only"):
        lp.apply("generic_filter", VOL, size=3)
    with pytest.raises(ValueError, match=r"got str 'np.ptp'.*JSON cannot hold"):
        lp.apply("generic_filter", VOL, function="np.ptp", size=3)


# ------------------------------------------------------------------------ JSON


def test_a_list_kernel_round_trips_through_the_pipeline_json():
    weights = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
    res = lp.apply("convolve", VOL, weights=weights, mode="nearest", axes="yx")
    text = json.dumps(res.steps)
    assert json.loads(text)[-1]["weights"] == weights
    again = lp.Pipeline.from_json(text)(VOL)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(res))


def test_an_array_kernel_is_stored_as_a_list():
    weights = RNG.random((2, 3))
    res = lp.apply("correlate", VOL, weights=weights, axes="yx")
    step = json.loads(json.dumps(res.steps))[-1]
    assert step["weights"] == weights.tolist()
    assert json.loads(pipeline_json([{"op": "correlate", "weights": weights}]))[0][
        "weights"] == weights.tolist()
    np.testing.assert_array_equal(np.asarray(lp.Pipeline([step])(VOL)), np.asarray(res))


def test_a_npy_kernel_is_stored_as_its_path(tmp_path):
    path = tmp_path / "kernel.npy"
    weights = RNG.random((3, 3, 2))
    np.save(path, weights)
    res = lp.apply("convolve", da.from_array(VOL, chunks=(2, 4, 4)), weights=str(path),
                   origin=(0, 1, -1))
    np.testing.assert_array_equal(np.asarray(res), ndi.convolve(VOL, weights,
                                                                origin=(0, 1, -1)))
    text = json.dumps(res.steps)
    assert json.loads(text)[-1]["weights"] == str(path)
    again = lp.Pipeline.from_json(text)(VOL)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(res))
    from_path = lp.apply("convolve", VOL, weights=path)  # a pathlib.Path too
    assert from_path.params["weights"] == str(path)


def test_a_python_function_is_refused_by_json_naming_the_step_and_function():
    res = lp.apply("generic_filter", VOL, function=np.ptp, size=3)
    with pytest.raises(ValueError, match=r"pipeline step 1 \(generic_filter\): "
                                         r"function=numpy.ptp is a Python function, which "
                                         r"JSON cannot hold"):
        pipeline_json([{"op": "gaussian"}, res.steps[-1]])
    with pytest.raises(ValueError, match="generic_filter.*cannot be saved"):
        json_step(res.steps[-1])


def test_saving_a_pipeline_with_a_function_says_why_it_cannot():
    pipe = lp.Pipeline([{"op": "generic_filter", "function": np.ptp, "size": 3}])
    np.testing.assert_array_equal(np.asarray(pipe(VOL)), ndi.generic_filter(VOL, np.ptp, 3))
    with pytest.raises(ValueError, match=r"pipeline step 0 \(generic_filter\): "
                                         r"function=numpy.ptp is a Python function"):
        pipe.to_json()


# ------------------------------------------------------------------------ pyramids


def test_a_pyramid_keeps_the_kernel_at_coarse_levels_as_a_preview(ome_pyramid,
                                                                  ome_pyramid_levels, caplog):
    """A user's kernel cannot be rescaled exactly: level k applies it in level k's pixels
    (a preview, said once in the log); level 0 is exact."""
    img = lp.open_image(ome_pyramid)
    weights = RNG.random((3, 4))
    with caplog.at_level(logging.WARNING, logger="napari_lazyproc"):
        res = lp.apply("correlate", img, weights=weights, origin=(1, -1), axes="yx")
        levels = res.levels
        again = lp.apply("correlate", img, weights=weights, origin=(1, -1), axes="yx").levels
    assert len(levels) == len(again) == 3
    assert not levels[0].preview and levels[1].preview and levels[2].preview
    for level, data in zip(levels, ome_pyramid_levels, strict=True):
        ref = np.stack([np.stack([ndi.correlate(p, weights, origin=(1, -1)) for p in vol])
                        for vol in data])
        np.testing.assert_array_equal(np.asarray(level[:, 3]), ref[:, 3])
    notes = [r.getMessage() for r in caplog.records if "correlate at a level" in r.getMessage()]
    assert len(notes) == 2  # one per coarse level, each said once
    assert all("cannot be rescaled exactly" in n for n in notes)


def test_a_rank_filter_size_scales_at_coarse_levels_and_its_footprint_does_not(
        ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    by_size = lp.apply("rank_filter", img, rank=-1, size=5, axes="yx")
    np.testing.assert_array_equal(
        np.asarray(by_size.levels[1][0, 2]),
        ndi.rank_filter(ome_pyramid_levels[1][0, 2], -1, size=3))
    footprint = [[1, 1, 0], [0, 1, 1]]
    by_fp = lp.apply("rank_filter", img, rank=1, footprint=footprint, axes="yx")
    np.testing.assert_array_equal(
        np.asarray(by_fp.levels[2][1, 0]),
        ndi.rank_filter(ome_pyramid_levels[2][1, 0], 1, footprint=np.array(footprint)))


# ------------------------------------------------------------------------ widget


def test_widget_offers_convolve_with_a_kernel_entry(make_napari_viewer, qtbot, tmp_path):
    pytest.importorskip("napari")
    from magicgui.widgets import LineEdit

    from napari_lazyproc._qt.widget import LazyProcessingWidget

    viewer = make_napari_viewer()
    viewer.add_image(VOL, name="v")
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing")
    names = [value for _, value in widget.operation.choices] if isinstance(
        widget.operation.choices[0], tuple) else list(widget.operation.choices)
    assert {"convolve", "correlate", "rank_filter"} <= set(names)
    widget.operation.value = "convolve"
    entry = widget.params["weights"]
    assert isinstance(entry, LineEdit) and ".npy" in entry.tooltip
    widget.axes.value = "yx"
    entry.value = "[[0, 1, 0], [1, -4, 1], [0, 1, 0]]"
    layer = widget.add_layer()
    assert layer is not None
    result = json.loads(json.dumps(layer.metadata["pipeline"]))  # as a saved pipeline
    assert result[-1]["weights"] == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    np.testing.assert_array_equal(
        np.asarray(lp.Pipeline(result)(VOL)[2]), ndi.convolve(VOL[2], kernel))
    path = tmp_path / "k.npy"
    np.save(path, kernel)
    entry.value = str(path)
    assert widget.param_values()["weights"] == str(path)
    widget.operation.value = "generic_filter"  # a Python function: not from the widget
    function = widget.params["function"]
    assert not function.enabled and "Python only" in function.value
    assert widget.param_values()["function"] is None


def test_command_line_takes_a_npy_kernel_and_the_export_records_its_path(zarr_v3_array,
                                                                          tmp_path):
    import zarr
    from conftest import VOLUME

    from napari_lazyproc.cli import main

    kernel = tmp_path / "kernel.npy"
    weights = RNG.random((3, 1, 2))
    np.save(kernel, weights)
    out = tmp_path / "c.ome.zarr"
    assert main(["process", str(zarr_v3_array), "-o", str(out), "--step",
                 f"convolve:weights={kernel}:mode=nearest", "--exact", "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out / "0")),
                                  ndi.convolve(VOLUME, weights, mode="nearest"))
    attrs = dict(zarr.open_group(out, mode="r").attrs)
    assert attrs["napari-lazyproc"]["pipeline"][-1]["weights"] == str(kernel)


def test_an_export_of_a_generic_filter_records_the_function_by_name(tmp_path):
    """An export's provenance says what ran (the function's name); only a pipeline meant
    to be reloaded refuses a function."""
    import json

    out = lp.export(lp.apply("generic_filter", VOL, function=np.ptp, size=3),
                    tmp_path / "ptp.ome.zarr")
    np.testing.assert_array_equal(np.asarray(lp.open_image(out).levels[0]),
                                  ndi.generic_filter(VOL, np.ptp, 3))
    attrs = json.dumps(dict(__import__("zarr").open_group(out, mode="r").attrs))
    assert "python:numpy.ptp" in attrs


def test_a_rewritten_kernel_file_is_a_new_result(tmp_path):
    """The cache keys a kernel file by its path and its modification: tiles computed with
    the old kernel are never served for the new one."""
    import os

    path = tmp_path / "k.npy"
    np.save(path, np.ones((3, 3)) / 9)
    first = lp.apply("convolve", VOL, weights=str(path), axes="yx")
    np.asarray(first)
    np.save(path, np.eye(3))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    second = lp.apply("convolve", VOL, weights=str(path), axes="yx")
    assert second.token != first.token
    np.testing.assert_array_equal(np.asarray(second),
                                  np.stack([ndi.convolve(p, np.eye(3)) for p in VOL]))

"""Results of pyramids are pyramids: level k is the operation on input level k, lengths
kept at their physical size, global statistics shared; virtual pyramids for large files."""

from __future__ import annotations

import logging

import cloudpickle
import numpy as np
import pytest
import zarr
from conftest import write_zarr
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.io._pyramid import MAX_SIDE, MAX_VOLUME, virtual_factors

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


FACTORS = [1, 2, 4]  # of each level in y and x (conftest.ome_pyramid)


def _per_frame(fn, data, ndim):
    """``fn`` on every ``ndim``-D frame of ``data`` (never across t)."""
    out = None
    for index in np.ndindex(*data.shape[: data.ndim - ndim]):
        values = fn(data[index])
        if out is None:
            out = np.empty(data.shape, values.dtype)
        out[index] = values
    return out


def _odd(value: float) -> int:
    return max(1, 2 * round((value - 1) / 2) + 1)


CASES = {
    # name: (op, params, axes, units, expected(level_array, factor))
    "gaussian physical zyx": (
        "gaussian", {"sigma": 1.0}, "zyx", "physical",
        lambda a, f: _per_frame(lambda v: ndi.gaussian_filter(v, (0.5, 2 / f, 2 / f)), a, 3)),
    "gaussian pixels yx": (
        "gaussian", {"sigma": 2.0}, "yx", "pixel",
        lambda a, f: _per_frame(lambda v: ndi.gaussian_filter(v, (2 / f, 2 / f)), a, 2)),
    "median pixels zyx": (
        "median", {"size": 5}, "zyx", "pixel",
        lambda a, f: _per_frame(
            lambda v: ndi.median_filter(v, (5, _odd(5 / f), _odd(5 / f))), a, 3)),
    "uniform physical yx": (
        "uniform", {"size": 2.0}, "yx", "physical",  # 2 µm: 4 px at level 0
        lambda a, f: _per_frame(lambda v: ndi.uniform_filter(v, max(1, round(4 / f))), a, 2)),
    "erosion ball zyx": (
        "erosion", {"radius": [1, 4, 4]}, "zyx", "pixel",
        lambda a, f: _per_frame(lambda v: ndi.grey_erosion(
            v, footprint=_ball((1, max(1, round(4 / f)), max(1, round(4 / f))))), a, 3)),
}


def _ball(radius):
    from napari_lazyproc.ops.engine._scipy_params import make_footprint

    return make_footprint("ball", radius)


@pytest.mark.parametrize("case", list(CASES))
def test_each_level_equals_scipy_on_that_whole_level(ome_pyramid, ome_pyramid_levels, case):
    op, params, axes, units, expected = CASES[case]
    img = lp.open_image(ome_pyramid)
    res = lp.apply(op, img, axes=axes, units=units, **params)
    assert res.multiscale and len(res.levels) == 3
    assert [r.shape for r in res.levels] == [lvl.shape for lvl in ome_pyramid_levels]
    for k, (level, factor) in enumerate(zip(ome_pyramid_levels, FACTORS, strict=False)):
        np.testing.assert_array_equal(np.asarray(res.levels[k]), expected(level, factor),
                                      err_msg=f"level {k}")


def test_result_api_on_level_zero_is_unchanged(ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    res = lp.apply("gaussian", img, sigma=1.5, axes="yx")
    exact = _per_frame(lambda v: ndi.gaussian_filter(v, 1.5), ome_pyramid_levels[0], 2)
    assert res.levels[0] is res and not res.preview
    assert all(r.preview for r in res.levels[1:])
    assert res.shape == ome_pyramid_levels[0].shape and res.dtype == ome_pyramid_levels[0].dtype
    np.testing.assert_array_equal(np.asarray(res[1, 3]), exact[1, 3])
    clone = cloudpickle.loads(cloudpickle.dumps(res))  # as dask.distributed ships it
    np.testing.assert_array_equal(np.asarray(clone[0, 5]), exact[0, 5])
    assert len(clone.levels) == 3
    # physical voxel sizes per level
    assert res.levels[2].scale == pytest.approx((1.0, 2.0, 2.0, 2.0))


def test_single_level_input_gives_one_level():
    res = lp.apply("gaussian", np.ones((16, 64, 80), np.uint16), sigma=1.0)
    assert len(res.levels) == 1 and not res.multiscale and res.levels[0] is res


def test_global_threshold_is_one_value_for_every_level(ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    smooth = lp.apply("gaussian", img, sigma=1.0, axes="zyx")
    mask = lp.apply("threshold_otsu", smooth, sample="exact")
    from skimage.filters import threshold_otsu

    exact = _per_frame(lambda v: ndi.gaussian_filter(v, 1.0), ome_pyramid_levels[0], 3)
    threshold = threshold_otsu(exact)
    assert {lvl.prepared()["threshold"] for lvl in mask.levels} == {threshold}
    for k, (level, f) in enumerate(zip(ome_pyramid_levels, FACTORS, strict=False)):
        smooth_k = _per_frame(lambda v, f=f: ndi.gaussian_filter(v, (1.0, 1 / f, 1 / f)), level, 3)
        np.testing.assert_array_equal(np.asarray(mask.levels[k]), smooth_k > threshold)


def test_chained_steps_per_level(ome_pyramid, ome_pyramid_levels):
    """gaussian -> threshold -> label per frame, each level from the level below it in
    the chain, labels equal to scipy's on that level."""
    img = lp.open_image(ome_pyramid)
    pipe = lp.Pipeline([{"op": "gaussian", "sigma": 1.0, "axes": "yx"},
                        {"op": "threshold", "value": 2000.0},
                        {"op": "label"}])
    labels = pipe(img)
    assert len(labels.levels) == 3 and labels.kind == "labels"
    for k, (level, f) in enumerate(zip(ome_pyramid_levels, FACTORS, strict=False)):
        mask = _per_frame(lambda v, f=f: ndi.gaussian_filter(v, 1.0 / f), level, 2) > 2000
        expected = _per_frame(lambda v: ndi.label(v)[0], mask, 3)
        np.testing.assert_array_equal(np.asarray(labels.levels[k]), expected)


def test_global_labels_are_a_label_preserving_pyramid(ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    mask = lp.apply("threshold", lp.apply("gaussian", img, sigma=1.0, axes="zyx"), value=2000.0)
    job = lp.apply("label", mask, scope="global")
    assert len(job.levels) == 1  # nothing computed before run()
    job.run()
    full = np.asarray(job)
    assert [lvl.shape for lvl in job.levels] == [lvl.shape for lvl in ome_pyramid_levels]
    for k, f in enumerate(FACTORS):
        np.testing.assert_array_equal(np.asarray(job.levels[k][...]), full[..., ::f, ::f])
        assert set(np.unique(np.asarray(job.levels[k][...]))) <= set(np.unique(full))


def test_nonsense_coarse_parameters_give_a_preview_and_one_log_line(
        ome_pyramid, ome_pyramid_levels, caplog):
    """threshold_local's odd block_size of 5 cannot shrink 4x (it must stay >= 3)."""
    img = lp.open_image(ome_pyramid)
    with caplog.at_level(logging.WARNING, logger="napari_lazyproc"):
        res = lp.apply("threshold_local", img, block_size=5, method="mean", axes="yx")
        coarse = np.asarray(res.levels[2])
        again = lp.apply("threshold_local", img, block_size=5, method="mean", axes="yx")
        assert len(again.levels) == 3
    notes = [r.getMessage() for r in caplog.records
             if "threshold_local at level 2" in r.getMessage()]
    assert len(notes) == 1 and "block_size" in notes[0]
    expected = _per_frame(
        lambda v: v > ndi.uniform_filter(v.astype(np.float64), 3, mode="reflect"),
        ome_pyramid_levels[2], 2)
    np.testing.assert_array_equal(coarse, expected)


def test_broken_pyramid_is_a_clear_error(ome_pyramid):
    level2 = zarr.open_array(ome_pyramid / "s2", mode="r")
    zarr.create_array(ome_pyramid / "s2", shape=(2, 16, 128, 160), chunks=level2.chunks,
                      dtype=level2.dtype, zarr_format=2, overwrite=True)
    with pytest.raises(lp.ImageReadError, match=r"series.ome.zarr.*broken pyramid: level 2"):
        lp.open_image(ome_pyramid)


# ------------------------------------------------------------------ virtual pyramids

BIG = np.random.default_rng(5).integers(0, 60000, size=(2304, 200), dtype=np.uint16)


@pytest.fixture
def big_plane(tmp_path):
    return write_zarr(tmp_path / "big.zarr", BIG, (256, 200), dimension_names=["y", "x"])


def test_policy_keeps_the_coarsest_level_small():
    assert virtual_factors((64, 80), "yx") == []
    assert virtual_factors((16384, 16384), "yx")[-1] == (16, 16)
    # a light-sheet stack: y and x are halved first, z only once it is among the longest
    shapes = [tuple(-(-n // f) for n, f in zip((256, 2048, 2048), fs, strict=False))
              for fs in virtual_factors((256, 2048, 2048), "zyx")]
    assert shapes[-1] == (256, 256, 256) and np.prod(shapes[-1]) <= MAX_VOLUME
    assert virtual_factors((5, 2000, 3000, 40), "tyxc")[-1] == (1, 4, 4, 1)
    assert all(n <= MAX_SIDE for n in shapes[-1])


def test_large_single_scale_file_gets_a_virtual_display_pyramid(big_plane):
    img = lp.open_image(big_plane)
    assert len(img.levels) == 1  # the stored levels stay what the file holds
    pyramid = img.display_pyramid()
    assert [p.shape for p in pyramid] == [(2304, 200), (1152, 200), (576, 200)]
    expected = np.rint(BIG.reshape(576, 4, 200).astype(np.float64).mean(axis=1)).astype(np.uint16)
    np.testing.assert_array_equal(np.asarray(pyramid[2][0:576, 0:200]), expected)
    np.testing.assert_array_equal(np.asarray(img.display_levels()[2][100:140, 7]),
                                  expected[100:140, 7])


def test_virtual_levels_of_labels_pick_never_average(tmp_path):
    labels = np.zeros((1, 2100, 64), np.uint32)
    labels[0, ::3] = 7
    labels[0, 1::3] = 9
    path = write_zarr(tmp_path / "labels.zarr", labels, (1, 512, 64))
    img = lp.open_image(path)
    img.kind = "labels"
    coarse = np.asarray(img.display_pyramid()[-1][...])
    np.testing.assert_array_equal(coarse, labels[:, ::4, :])


def test_result_of_a_large_single_scale_file_is_shown_as_a_pyramid(big_plane):
    img = lp.open_image(big_plane)
    res = lp.apply("gaussian", img, sigma=4.0)
    assert len(res.levels) == 1 and len(res.display_levels) == 3
    coarse = np.asarray(img.display_pyramid()[2][...])
    np.testing.assert_array_equal(np.asarray(res.display_levels[2]),
                                  ndi.gaussian_filter(coarse, (1.0, 4.0)))


def test_export_of_a_pyramid_result_computes_level_zero(ome_pyramid, ome_pyramid_levels, tmp_path):
    img = lp.open_image(ome_pyramid)
    res = lp.apply("gaussian", img, sigma=1.0, axes="zyx")
    out = lp.export(res, tmp_path / "out.ome.zarr", levels=2)
    exact = _per_frame(lambda v: ndi.gaussian_filter(v, 1.0), ome_pyramid_levels[0], 3)
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out / "0", mode="r")), exact)
    # the output pyramid downsamples the exact result, not the preview
    level1 = np.asarray(zarr.open_array(out / "1", mode="r"))
    mean = exact.reshape(2, 16, 32, 2, 40, 2).astype(np.float64).mean(axis=(3, 5))
    np.testing.assert_array_equal(level1, np.rint(mean).astype(np.uint16))


def test_a_panned_view_is_cut_from_tiles_already_computed(tmp_path):
    """napari asks a zoomed-in pyramid level for the part on screen only; that part is
    computed in whole tiles, so panning within them computes nothing more."""
    import threading

    from napari_lazyproc._live import TILE, LiveArray

    plane = np.random.default_rng(2).random((1, 3 * TILE, 2 * TILE), dtype=np.float32)
    res = lp.apply("gaussian", plane, sigma=2.0, axes="yx")
    data = LiveArray(res)
    landed = threading.Event()
    data.state.on_ready = lambda state, error: landed.set()
    view = (0, slice(100, 400), slice(50, 700))
    assert not np.asarray(data[view]).any()  # a placeholder at once; computed meanwhile
    assert landed.wait(30)
    exact = ndi.gaussian_filter(plane[0], 2.0)
    np.testing.assert_array_equal(np.asarray(data[view]), exact[100:400, 50:700])
    assert data.state.n_computed == 1
    panned = (0, slice(300, 500), slice(10, 900))  # still inside tiles (0:512, 0:1024)
    np.testing.assert_array_equal(np.asarray(data[panned]), exact[300:500, 10:900])
    assert data.state.n_computed == 1


def test_a_filter_of_global_labels_is_a_pyramid_too(ome_pyramid, ome_pyramid_levels):
    img = lp.open_image(ome_pyramid)
    mask = lp.apply("threshold", img, value=2000.0)
    job = lp.label_global(mask).run()
    grown = lp.apply("dilation", job, radius=1, axes="yx")
    assert len(grown.levels) == 3
    full = np.asarray(job)
    for k, f in enumerate(FACTORS):
        picked = full[..., ::f, ::f]
        expected = _per_frame(lambda v: ndi.grey_dilation(v, footprint=_ball((1, 1))), picked, 2)
        np.testing.assert_array_equal(np.asarray(grown.levels[k]), expected)


def test_a_plane_of_a_virtual_level_reads_only_the_planes_it_needs(tmp_path, zarr_reads):
    """A stack chunked one plane deep, reduced 2x in z too: one coarse plane reads two
    planes of the file, never a hundred."""
    stack = np.random.default_rng(4).integers(0, 500, size=(600, 600, 600), dtype=np.uint16)
    path = write_zarr(tmp_path / "stack.zarr", stack, (1, 600, 600),
                      dimension_names=["z", "y", "x"])
    img = lp.open_image(path)
    level = img.display_pyramid()[1]
    assert level.factors[0] == 2 and level.chunks[0] == 1
    zarr_reads.keys.clear()
    plane = np.asarray(img.display_levels()[1][10])
    assert sorted(zarr_reads.chunk_keys()) == ["c/20/0/0", "c/21/0/0"]
    f = level.factors
    expected = stack[20:22].reshape(1, 2, 600 // f[1], f[1], 600 // f[2], f[2]).astype(
        np.float64).mean(axis=(1, 3, 5))[0]
    np.testing.assert_array_equal(plane, np.rint(expected).astype(np.uint16))


def test_widths_stay_odd_and_radii_just_scale(ome_pyramid):
    img = lp.open_image(ome_pyramid)
    sizes = lp.apply("median", img, size=5, axes="yx").levels
    assert [lvl.params["size"] for lvl in sizes] == [(5, 5), (3, 3), (1, 1)]
    radii = lp.apply("dilation", img, radius=7, axes="yx").levels
    assert [lvl.params["radius"] for lvl in radii] == [(7, 7), (4, 4), (2, 2)]

"""Drift correction: shifts estimated against a reference, applied lazily, exactly as scipy.

The series are Gaussian nuclei, as the synthetic sample draws them, moved by known
sub-pixel shifts (along z too) with fresh camera noise in every frame; a pyramid of two
levels, so that the estimate is coarse first and refined at full resolution.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi

import napari_lazyproc as lp

VOXEL = (1.0, 0.5, 0.5)  # z, y, x in micrometres
#: where the sample is at each time point, in pixels (z, y, x): sub-pixel and along z
DRIFT_PX = np.array([[0, 0, 0], [0.31, 1.27, -0.64], [1.13, 2.41, -1.72], [-0.74, 3.36, 0.43],
                     [0.52, -2.18, 2.83], [1.61, 0.16, -3.29], [2.23, 4.07, 1.12],
                     [-1.34, -0.87, 3.91]])


def nuclei(drift_um, shape, voxel, n=60, seed=0) -> np.ndarray:
    """Frames of Gaussian nuclei at positions + drift_um[t] (µm), plus noise."""
    rng = np.random.default_rng(seed)
    extent = np.array(shape) * np.array(voxel)
    pos = rng.uniform(0.25, 0.75, size=(n, len(shape))) * extent  # inside the embryo
    sigma = rng.uniform(1.5, 2.5, size=n)
    amp = rng.uniform(500, 1500, size=n)
    grids = [np.arange(s) * v for s, v in zip(shape, voxel, strict=True)]
    frames = []
    for d in drift_um:
        frame = np.full(shape, 100.0)
        for p, s, a in zip(pos + np.asarray(d), sigma, amp, strict=True):
            out = np.float64(a)
            for g, c in zip(grids, p, strict=True):
                out = np.multiply.outer(out, np.exp(-0.5 * ((g - c) / s) ** 2))
            frame += out
        frames.append(frame + rng.normal(0, 10, size=shape))
    return np.stack(frames).astype(np.float32)


def series_image(series: np.ndarray, voxel, axes: str) -> lp.LazyImage:
    """A LazyImage of two levels (the second 2x coarser in y and x), one chunk per frame."""
    t, *rest = series.shape
    coarse = series.reshape(t, *rest[:-2], rest[-2] // 2, 2, rest[-1] // 2, 2).mean(axis=(-3, -1))
    levels = [da.from_array(a, chunks=(1, *a.shape[1:])) for a in (series,
                                                                   coarse.astype(np.float32))]
    return lp.LazyImage(levels=levels, axes=axes, scale=(30.0, *voxel),
                        translate=(0.0,) * series.ndim,
                        units=("second",) + ("micrometer",) * len(voxel), name="nuclei",
                        source={"path": None})


@pytest.fixture(scope="module")
def series3d() -> np.ndarray:
    return nuclei(DRIFT_PX * VOXEL, (32, 96, 96), VOXEL)


@pytest.fixture(scope="module")
def series2d() -> np.ndarray:
    drift = DRIFT_PX[:, 1:] * 1.5
    return nuclei(drift * 0.5, (128, 128), (0.5, 0.5), n=80, seed=3)


# ------------------------------------------------------------------ estimation
@pytest.mark.parametrize("reference", ["first", "previous"])
def test_known_3d_drift_is_recovered_within_a_tenth_of_a_pixel(series3d, reference):
    table = lp.estimate_drift(series_image(series3d, VOXEL, "tzyx"), reference=reference)
    assert list(table.columns) == ["t", "dz", "dy", "dx", "dz_px", "dy_px", "dx_px"]
    assert table.attrs["units"]["dy"] == "micrometer" and table.attrs["level"] == 1
    assert table.attrs["refine_level"] == 0 and table.attrs["unrefined"] == []
    # the shift registers the frame onto the reference: minus the sample's drift
    np.testing.assert_allclose(table[["dz_px", "dy_px", "dx_px"]], -DRIFT_PX, atol=0.1)
    np.testing.assert_allclose(table[["dz", "dy", "dx"]], -DRIFT_PX * VOXEL, atol=0.1 * 0.5)


@pytest.mark.parametrize("reference", ["first", "previous"])
def test_known_2d_drift_is_recovered_within_a_tenth_of_a_pixel(series2d, reference):
    table = lp.estimate_drift(series_image(series2d, (0.5, 0.5), "tyx"), reference=reference)
    assert list(table.columns) == ["t", "dy", "dx", "dy_px", "dx_px"]
    np.testing.assert_allclose(table[["dy_px", "dx_px"]], -DRIFT_PX[:, 1:] * 1.5, atol=0.1)


def test_coarse_estimate_alone_is_within_a_coarse_pixel(series3d):
    table = lp.estimate_drift(series_image(series3d, VOXEL, "tzyx"), refine_level=None)
    assert table.attrs["refine_level"] is None
    err = np.abs(table[["dz_px", "dy_px", "dx_px"]].to_numpy() + DRIFT_PX)
    assert (err <= [0.5, 1.0, 1.0]).all()  # level 1 is 2x coarser in y and x


def test_a_refinement_that_does_not_match_keeps_the_coarse_estimate():
    """Unrelated frames (the content changed, it did not move): the crops' residual is
    larger than a coarse voxel, so the coarse estimate stays and the table says so."""
    rng = np.random.default_rng(5)
    frames = ndi.gaussian_filter(rng.random((4, 16, 64, 64)), (0, 2, 3, 3)).astype(np.float32)
    img = series_image(frames, VOXEL, "tzyx")
    refined = lp.estimate_drift(img)
    coarse = lp.estimate_drift(img, refine_level=None)
    assert refined.attrs["unrefined"]
    for t in refined.attrs["unrefined"]:
        np.testing.assert_allclose(refined.loc[t, ["dz", "dy", "dx"]],
                                   coarse.loc[t, ["dz", "dy", "dx"]])


def test_no_time_axis_or_bad_parameters_are_clear_errors(series3d):
    with pytest.raises(ValueError, match="drift needs a time axis 't'"):
        lp.estimate_drift(series3d[0], data_axes="zyx")
    img = series_image(series3d, VOXEL, "tzyx")
    with pytest.raises(ValueError, match="reference must be one of 'first', 'previous'"):
        lp.drift_job(img, reference="last")
    with pytest.raises(ValueError, match="refine_level must be in -2..1"):
        lp.drift_job(img, refine_level=5)


def test_progress_and_cancel(series3d):
    img = series_image(series3d, VOXEL, "tzyx")
    seen = []
    job = lp.drift_job(img, refine_level=None)
    job.run(progress=lambda done, total: seen.append((done, total)))
    assert max(seen) == (8, 8) and job.done

    cancel = threading.Event()
    job = lp.drift_job(img)

    def stop_after_two(done, total):
        if done >= 2:
            cancel.set()

    with pytest.raises(lp.Cancelled):
        job.run(progress=stop_after_two, cancel=cancel)
    assert job.table is None and not job.done


def test_shift_table_csv_round_trip(series3d, tmp_path):
    table = lp.estimate_drift(series_image(series3d, VOXEL, "tzyx"))
    path = tmp_path / "drift.csv"
    lp.save_shifts(table, path)
    header = path.read_text().splitlines()[0]
    assert header == ("t,dz (micrometer),dy (micrometer),dx (micrometer),"
                      "dz (pixel),dy (pixel),dx (pixel)")
    back = lp.load_shifts(path)
    pd.testing.assert_frame_equal(back, table[back.columns], check_exact=False, rtol=1e-12)
    assert back.attrs["units"]["dx"] == "micrometer"
    np.testing.assert_allclose(back.attrs["spacing"], VOXEL)


def test_load_shifts_names_a_bad_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv' is not a shift table"):
        lp.load_shifts(bad)
    with pytest.raises(ValueError, match="cannot read the shift table"):
        lp.load_shifts(tmp_path / "missing.csv")


# ------------------------------------------------------------------ applying the shifts
SHIFTS = [[0, 0.0, 0.0, 0.0], [1, 1.3, -2.6, 0.4], [2, -0.7, 3.25, -4.1], [3, 2.0, 0.5, 1.75]]


def _reference(a, rows, **kwargs):
    return np.stack([ndi.shift(a[t], rows[t][1:], **kwargs) for t in range(len(a))])


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("order, mode", [(1, "constant"), (1, "nearest"), (0, "reflect"),
                                         (3, "mirror"), (3, "constant")])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_shift_frames_equals_scipy_on_the_whole_frame(precision, order, mode, dtype):
    rng = np.random.default_rng(order)
    a = (ndi.gaussian_filter(rng.random((4, 12, 40, 44)), (0, 1, 2, 2)) * 4000).astype(dtype)
    ref = _reference(a, SHIFTS, order=order, mode=mode, cval=7.0)
    res = lp.apply("shift_frames", da.from_array(a, chunks=(1, 5, 9, 13)), shifts=SHIFTS,
                   order=order, mode=mode, cval=7.0, precision=precision)
    assert res.dtype == a.dtype
    # the whole array, and regions (tiles with halos inside the frames)
    np.testing.assert_array_equal(np.asarray(res), ref)
    for key in [(2, slice(3, 9), slice(10, 30), slice(5, 40)), (3, 6), (1, slice(None), 20),
                (slice(0, 4), slice(0, 3), slice(30, 40), slice(0, 7))]:
        np.testing.assert_array_equal(np.asarray(res[key]), ref[key], err_msg=str(key))


def test_shift_frames_in_2d_and_per_plane():
    a = np.random.default_rng(1).random((4, 3, 30, 32)).astype(np.float32)
    rows = [[t, dy, dx] for t, _, dy, dx in SHIFTS]
    res = lp.apply("shift_frames", da.from_array(a, chunks=(1, 1, 11, 7)), data_axes="tzyx",
                   axes="yx", shifts=rows)
    ref = np.stack([[ndi.shift(a[t, z], rows[t][1:], order=1) for z in range(3)]
                    for t in range(4)])
    np.testing.assert_array_equal(np.asarray(res), ref)


def test_shift_frames_takes_the_table_and_its_csv(series3d, tmp_path):
    img = series_image(series3d[:3], VOXEL, "tzyx")
    table = lp.estimate_drift(img)
    lp.save_shifts(table, tmp_path / "drift.csv")
    by_table = lp.apply("shift_frames", img, shifts=table)
    by_path = lp.apply("shift_frames", img, shifts=str(tmp_path / "drift.csv"))
    rows = table[["dz_px", "dy_px", "dx_px"]].to_numpy()
    ref = np.stack([ndi.shift(series3d[t], rows[t], order=1) for t in range(3)])
    np.testing.assert_array_equal(np.asarray(by_table), ref)
    np.testing.assert_array_equal(np.asarray(by_path[1, 10]), ref[1, 10])
    # registered: every frame now lies where the first one does
    core = (slice(6, -6), slice(16, -16), slice(16, -16))
    before = np.abs(series3d[2][core] - series3d[0][core]).mean()
    after = np.abs(ref[2][core] - series3d[0][core]).mean()
    assert after < 0.5 * before


def test_coarse_levels_shift_by_the_same_physical_amount(series3d):
    img = series_image(series3d[:4], VOXEL, "tzyx")
    res = lp.apply("shift_frames", img, shifts=SHIFTS)
    assert res.multiscale
    coarse = res.levels[1]
    assert coarse.params["shifts"][1] == (1, 1.3, -1.3, 0.2)  # y and x 2x coarser
    level1 = np.asarray(img.levels[1])
    ref = _reference(level1, [[t, dz, dy / 2, dx / 2] for t, dz, dy, dx in SHIFTS], order=1)
    np.testing.assert_array_equal(np.asarray(coarse), ref)


def test_missing_time_point_and_bad_rows_are_clear_errors():
    a = np.zeros((5, 8, 9, 10), np.float32)
    with pytest.raises(ValueError, match="each row of shifts must be \\[t, dz, dy, dx\\]"):
        lp.apply("shift_frames", a, data_axes="tzyx", shifts=[[0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="shifts is required"):
        lp.apply("shift_frames", a, data_axes="tzyx")
    res = lp.apply("shift_frames", a, data_axes="tzyx", shifts=SHIFTS)
    np.asarray(res[3, 0])
    with pytest.raises(ValueError, match="no time point 4 \\(it covers t = 0..3"):
        np.asarray(res[4, 0])


def test_pipeline_json_round_trip(series3d):
    img = series_image(series3d[:3], VOXEL, "tzyx")
    table = lp.estimate_drift(img)
    res = lp.apply("shift_frames", lp.apply("gaussian", img, sigma=1.0), shifts=table, order=3)
    text = lp.Pipeline([{k: v for k, v in s.items() if k != "precision"}
                        for s in res.steps]).to_json()
    assert '"op": "shift_frames"' in text and '"shifts": [[0, ' in text
    again = lp.Pipeline.from_json(text)(img)
    assert again.token == res.token
    np.testing.assert_array_equal(np.asarray(again[2, 10]), np.asarray(res[2, 10]))


@pytest.mark.parametrize("order", [2, 3, 5])
def test_cubic_spline_prefilter_margin_keeps_interior_regions_bitwise(order):
    """Far from the frame's edges a fast region reads less than the frame: the spline
    prefilter's margin keeps it within 1e-12 of scipy's. An exact region reads its whole
    frame (the prefilter runs along whole lines): bitwise scipy's."""
    a = np.random.default_rng(order).random((3, 180, 190)).astype(np.float32) * 1000
    rows = [[t, dy, dx] for t, _, dy, dx in SHIFTS[:3]]
    data = da.from_array(a, chunks=(1, 20, 20))
    ref = _reference(a, rows, order=order, mode="reflect")
    keys = [(1, slice(80, 100), slice(85, 110)), (2, 90), (0, slice(60, 120), 100)]
    exact = lp.apply("shift_frames", data, data_axes="tyx", shifts=rows, order=order,
                     mode="reflect", precision="exact")
    assert exact.whole_frame
    fast = lp.apply("shift_frames", data, data_axes="tyx", shifts=rows, order=order,
                    mode="reflect", precision="fast")
    assert max(fast.halo) < 70  # a region reads less than the frame
    for key in keys:
        np.testing.assert_array_equal(np.asarray(exact[key]), ref[key], err_msg=str(key))
        np.testing.assert_allclose(np.asarray(fast[key]), ref[key], rtol=0,
                                   atol=1e-12 * np.abs(ref).max(), err_msg=str(key))


# ------------------------------------------------------------------ the widget
@pytest.fixture
def drift_panel(make_napari_viewer, series3d):
    """The Drift correction dock widget over a 4-frame series (scaled, axes named)."""
    pytest.importorskip("napari")
    from napari_lazyproc._qt.drift import DriftPanel

    viewer = make_napari_viewer()
    viewer.add_image(series3d[:4], name="series", scale=(30.0, *VOXEL),
                     axis_labels=("t", "z", "y", "x"),
                     units=("second", "micrometer", "micrometer", "micrometer"))
    panel = DriftPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Drift correction")
    return panel


def test_correct_drift_adds_the_registered_layer_and_saves_the_table(drift_panel, qtbot,
                                                                     series3d, tmp_path):
    from napari_lazyproc._layer_data import layer_source

    viewer = drift_panel.viewer
    series = viewer.layers["series"]
    assert drift_panel.layer.value is series
    job = drift_panel.correct_drift()
    assert job is not None and drift_panel.cancel_button.enabled
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.outcome == "done", job.message
    table = drift_panel.table
    np.testing.assert_allclose(table[["dz_px", "dy_px", "dx_px"]], -DRIFT_PX[:4], atol=0.1)
    assert drift_panel.view.shape[0] == 4  # the table is shown
    layer = viewer.layers[-1]
    assert layer.name == "series · drift corrected" and layer is drift_panel.result_layer
    assert layer.metadata["pipeline"][-1]["op"] == "shift_frames"
    assert tuple(layer.scale) == tuple(series.scale)
    rows = table[["dz_px", "dy_px", "dx_px"]].to_numpy()
    result = layer_source(layer)
    np.testing.assert_allclose(np.asarray(result[2, 15]),
                               ndi.shift(series3d[2], rows[2], order=1)[15], rtol=1e-6)
    assert drift_panel.save_table(str(tmp_path / "shifts.csv"))
    pd.testing.assert_frame_equal(lp.load_shifts(tmp_path / "shifts.csv")[table.columns],
                                  table, check_exact=False, rtol=1e-12)


def test_display_only_translate_follows_the_time_slider(drift_panel, qtbot):
    viewer = drift_panel.viewer
    series = viewer.layers["series"]
    drift_panel.show.value = "translate"
    job = drift_panel.correct_drift()
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.outcome == "done", job.message
    assert len(viewer.layers) == 1  # nothing resampled
    table = drift_panel.table
    for t in (3, 1):
        viewer.dims.set_point(0, t * 30.0)
        expected = [0.0, *table.loc[t, ["dz", "dy", "dx"]]]
        np.testing.assert_allclose(series.translate, expected, atol=1e-9)
    drift_panel.follower.stop()
    np.testing.assert_allclose(series.translate, 0.0)


def test_cancelled_drift_keeps_nothing(drift_panel, qtbot):
    viewer = drift_panel.viewer
    job = drift_panel.correct_drift()
    job.cancel()  # before the first frame is done
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.outcome == "cancelled" and drift_panel.table is None
    assert len(viewer.layers) == 1 and "cancelled" in drift_panel.status.value
    assert drift_panel.run_button.enabled and not drift_panel.cancel_button.enabled

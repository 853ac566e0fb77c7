"""Global statistics (Otsu, Li, triangle, rescale percentiles): "exact" is scikit-image /
numpy on the whole array, bitwise, even where the sample "fast" reads would mislead."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import zarr
from skimage import filters

import napari_lazyproc as lp
from napari_lazyproc.ops import Cancelled
from napari_lazyproc.ops.stats import _global_stats, _percentiles
from napari_lazyproc.ops.stats._global_stats import GlobalStats
from napari_lazyproc.ops.stats._histogram import SAMPLE_VOXELS, sample_regions

SHAPE = (72, 256, 256)  # 4.7 Mi voxels: just above the sample's 4 Mi
CHUNKS = (8, 128, 128)
METHODS = {"otsu": filters.threshold_otsu, "li": filters.threshold_li,
           "triangle": filters.threshold_triangle}
SCALE = {np.uint8: 1.0, np.uint16: 100.0, np.float32: 1 / 255}


def _hidden_planes() -> list[int]:
    """The planes the sample skips (it reads central crops of a few planes)."""
    picked = {r[0].start for r in sample_regions(SHAPE)}
    return [z for z in range(SHAPE[0]) if z not in picked]


def _misleading(dtype) -> np.ndarray:
    """Dim noise, and bright discs (and a dark corner) only on planes the sample skips."""
    rng = np.random.default_rng(7)
    a = rng.normal(40, 8, SHAPE)
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    disc = (yy - 128) ** 2 + (xx - 128) ** 2 < 90**2
    hidden = _hidden_planes()
    for z in hidden:
        a[z][disc] = rng.normal(200, 5, disc.sum())
    a[hidden[3], :20, :20] = 0
    a *= SCALE[dtype]
    if np.dtype(dtype).kind == "u":
        a = np.clip(np.rint(a), 0, np.iinfo(dtype).max)
    return a.astype(dtype)


@pytest.fixture(scope="module", params=[np.uint8, np.uint16, np.float32],
                ids=["uint8", "uint16", "float32"])
def misleading(request, tmp_path_factory):
    """(values, a multi-chunk zarr array of them) per dtype."""
    a = _misleading(request.param)
    path = tmp_path_factory.mktemp("stats") / f"{a.dtype.name}.zarr"
    z = zarr.create_array(path, shape=a.shape, chunks=CHUNKS, dtype=a.dtype)
    z[:] = a
    return a, zarr.open_array(path, mode="r")


@pytest.fixture(autouse=True)
def _fresh():
    _global_stats.clear()
    yield
    _global_stats.clear()


def _reads(monkeypatch) -> list:
    """Every region a statistics job reads from its input."""
    seen = []
    load = GlobalStats._load
    monkeypatch.setattr(GlobalStats, "_load", lambda self, i: seen.append(i) or load(self, i))
    return seen


@pytest.mark.parametrize("method", list(METHODS))
def test_exact_threshold_is_skimage_on_the_whole_array(misleading, method):
    a, z = misleading
    assert a.size > SAMPLE_VOXELS and len(z.chunks) == 3
    exact = lp.apply(f"threshold_{method}", z, precision="exact")
    want = METHODS[method](a)
    got = exact.prepared()["threshold"]
    assert got == want  # bitwise: the same float (a float32 image: the same float32)
    if a.dtype.kind == "f":
        assert np.float32(got) == want and float(np.float32(got)) == got
    plane = _hidden_planes()[0]
    np.testing.assert_array_equal(np.asarray(exact[plane]), a[plane] > want)
    # the sample only sees dim planes: another threshold, another mask (so this can fail)
    fast = lp.apply(f"threshold_{method}", z, precision="fast")
    assert fast.prepared()["threshold"] != want
    assert np.count_nonzero(np.asarray(fast[plane]) != np.asarray(exact[plane])) > 100


def test_exact_rescale_percentiles_are_numpy_on_the_whole_array(misleading):
    a, z = misleading
    exact = lp.apply("rescale", z, precision="exact")
    lo, hi = np.percentile(a, (0.1, 99.9))
    assert (exact.prepared()["in_low"], exact.prepared()["in_high"]) == (lo, hi)
    fast = lp.apply("rescale", z, precision="fast").prepared()
    assert fast["in_high"] < 0.5 * hi  # the bright discs are beyond the sample
    plane = _hidden_planes()[1]
    ref = np.rint(np.clip((a[plane].astype(np.float64) - lo) / (hi - lo), 0, 1) * 255)
    np.testing.assert_array_equal(np.asarray(exact[plane]), ref.astype(np.uint8))


def test_float_li_over_chunks_without_gathering(misleading, monkeypatch):
    """Above GATHER_BYTES a float image's Li sums over chunks in float64: close to
    scikit-image (documented as not bitwise); integers stay bitwise (histogram form)."""
    a, z = misleading
    monkeypatch.setattr(_global_stats, "GATHER_BYTES", 0)
    got = lp.apply("threshold_li", z, precision="exact").prepared()["threshold"]
    want = filters.threshold_li(a)
    if a.dtype.kind == "f":
        assert got == pytest.approx(float(want), rel=1e-5)
    else:
        assert got == want


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32,
                                   np.float64])
def test_percentile_selection_in_several_passes_is_numpy(tmp_path, monkeypatch, dtype):
    """Few keys collected per pass: 32- and 64-bit values take several 16-bit passes."""
    monkeypatch.setattr(_percentiles, "COLLECT", 50)
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1000, (9, 31, 27))
    a[0, 0, :5] = [-1e30, 1e30, 0.5, -0.0, 3e-9]
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        a = np.clip(np.rint(a), info.min, info.max)
    a = a.astype(dtype)
    path = tmp_path / "p.zarr"
    zarr.create_array(path, shape=a.shape, chunks=(4, 10, 8), dtype=a.dtype)[:] = a
    src = lp.ops.as_source(zarr.open_array(path, mode="r"))
    q = (0.0, 0.1, 3.7, 50.0, 99.9, 100.0)
    got = GlobalStats(src, "percentiles", q=q).run()
    assert got == tuple(np.percentile(a, q))


def test_statistics_mode_is_in_the_provenance_and_the_token(misleading):
    _, z = misleading
    exact = lp.apply("threshold_otsu", z, precision="exact")
    fast = lp.apply("threshold_otsu", z, precision="fast")
    forced = lp.apply("threshold_otsu", z, precision="fast", sample="exact")
    assert exact.steps[-1]["statistics"] == "whole" == forced.steps[-1]["statistics"]
    assert fast.steps[-1]["statistics"] == "sampled"
    assert exact.token != fast.token  # never each other's cached tiles
    assert json.loads(json.dumps(exact.steps)) == exact.steps
    again = lp.Pipeline(exact.steps)(z)  # replayable: "statistics" is a record
    assert again.token == exact.token
    given = lp.apply("rescale", z, in_low=0, in_high=10, precision="exact")
    assert "statistics" not in given.steps[-1]
    small = lp.apply("threshold_otsu", np.zeros((4, 8, 8), np.uint8), precision="fast")
    assert small.steps[-1]["statistics"] == "whole"  # the "sample" reads every voxel


def test_computed_once_and_shared_by_levels_and_new_results(misleading, monkeypatch):
    a, z = misleading
    reads = _reads(monkeypatch)
    coarse = a[:, ::2, ::2]
    pyramid = [z, coarse]
    mask = lp.apply("threshold_otsu", pyramid, precision="exact")
    n_chunks = len(_global_stats.source_chunk_regions(mask.source))
    assert len(mask.levels) == 2
    threshold = mask.levels[1].prepared()["threshold"]  # a coarse level asks first
    assert threshold == filters.threshold_otsu(a)  # level 0's, not the coarse level's
    assert [lvl.steps[-1]["statistics"] for lvl in mask.levels] == ["whole", "whole"]
    sampled = lp.apply("threshold_otsu", pyramid, precision="fast")
    assert [lvl.steps[-1]["statistics"] for lvl in sampled.levels] == ["sampled"] * 2
    assert sorted(reads) == list(range(n_chunks))  # every chunk read once (both passes)
    again = lp.apply("threshold_otsu", pyramid, precision="exact")  # a widget's new result
    assert {lvl.prepared()["threshold"] for lvl in (*again.levels, *mask.levels)} == {threshold}
    np.asarray(again.levels[1][3])
    assert len(reads) == n_chunks  # not computed again
    lp.apply("threshold_li", z, precision="exact").prepared()
    assert len(reads) > n_chunks  # another statistic is another job


def test_a_new_input_is_computed_anew():
    a = _misleading(np.uint8)[:8]
    t = lp.apply("threshold_otsu", a, precision="exact").prepared()["threshold"]
    b = a // 2
    u = lp.apply("threshold_otsu", b, precision="exact").prepared()["threshold"]
    assert (t, u) == (filters.threshold_otsu(a), filters.threshold_otsu(b)) and t != u


def test_progress_and_cancel(misleading, monkeypatch):
    a, z = misleading
    reads = _reads(monkeypatch)
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 3:
            cancel.set()

    res = lp.apply("threshold_triangle", z, precision="exact")
    with pytest.raises(Cancelled):
        res.prepared(progress=progress, cancel=cancel)
    assert len(reads) < len(_global_stats.source_chunk_regions(res.source))
    assert res._prepared is None and not _global_stats._done  # nothing kept
    seen.clear()
    got = res.prepared(progress=progress)  # runs again, to the end
    assert got["threshold"] == filters.threshold_triangle(a)
    assert seen[-1][0] == seen[-1][1] and seen[-1][0] >= len(res.chunks[0])
    # a display read whose region went stale stops waiting; the job goes on, once
    _global_stats.clear()
    reads.clear()
    stale = threading.Event()
    stale.set()
    other = lp.apply("threshold_triangle", z, precision="exact")
    with pytest.raises(Cancelled):
        other.read((slice(0, 1), slice(0, 8), slice(0, 8)), cancel=stale)
    again = lp.apply("threshold_triangle", z, precision="exact")
    assert again.prepared()["threshold"] == filters.threshold_triangle(a)
    assert sorted(reads) == list(range(len(_global_stats.source_chunk_regions(res.source))))


def test_widget_runs_an_exact_statistic_as_a_job(make_napari_viewer, qtbot, tmp_path):
    """The widget's exact Otsu of an input larger than the sample: a job with progress,
    whose value the layer (and a re-created result) uses."""
    from napari_lazyproc._qt.live_layers import live_states
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    a = _misleading(np.uint8)
    path = tmp_path / "big.zarr"
    zarr.create_array(path, shape=a.shape, chunks=CHUNKS, dtype=a.dtype)[:] = a
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    widget = LazyProcessingWidget(viewer)
    widget.exact.value = True
    widget.axes.value = "zyx"
    widget.operation.value = "threshold_otsu"
    layer = widget.add_layer()
    job = widget.controls.job
    assert job is not None and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "done" and job.bar.n == job.bar.total == 36
    assert layer.metadata["pipeline"][-1]["statistics"] == "whole"
    state = live_states(layer)[0]
    assert state.result.prepared()["threshold"] == filters.threshold_otsu(a)
    widget.set_params(sample="exact")  # a new result of the same input: no new job
    assert widget.controls.job is None


@pytest.mark.skipif(not hasattr(lp.ops.ArraySource, "stamp"),
                    reason="sources have no stamp yet (data identity work)")
def test_a_rewritten_input_is_computed_anew(tmp_path):
    """Same path, same token, new bytes: the stamp tells, and the statistic follows."""
    a = _misleading(np.uint8)[:16]
    path = tmp_path / "rewritten.zarr"
    zarr.create_array(path, shape=a.shape, chunks=(4, 128, 128), dtype=a.dtype)[:] = a
    before = lp.apply("threshold_otsu", zarr.open_array(path, mode="r"), precision="exact")
    assert before.prepared()["threshold"] == filters.threshold_otsu(a)
    b = a // 2
    zarr.open_array(path, mode="r+")[:] = b
    after = lp.apply("threshold_otsu", zarr.open_array(path, mode="r"), precision="exact")
    assert after.prepared()["threshold"] == filters.threshold_otsu(b)


def test_a_preview_samples_whole_chunks_where_chunks_are_deeper_than_a_plane(tmp_path):
    """A plane's crop of chunks 8 planes deep decodes 8 planes per plane used: the preview's
    sample (segment's Otsu) reads whole chunks instead, spread through z, within the
    budget; the stitched run still takes every voxel."""
    from napari_lazyproc.ops.engine._as_source import as_source
    from napari_lazyproc.ops.jobs._segment_methods import _otsu_prepare
    from napari_lazyproc.ops.stats._global_stats import (
        CHUNKS as CHUNK_SAMPLE,
    )
    from napari_lazyproc.ops.stats._global_stats import (
        SAMPLED,
        WHOLE,
        preview_mode_for,
    )
    from napari_lazyproc.ops.stats._histogram import chunk_sample_regions

    a = _misleading(np.uint16)
    deep = zarr.create_array(tmp_path / "deep.zarr", shape=a.shape, chunks=CHUNKS,
                             dtype=a.dtype)
    deep[:] = a
    planes = zarr.create_array(tmp_path / "planes.zarr", shape=a.shape,
                               chunks=(1, *SHAPE[1:]), dtype=a.dtype)
    planes[:] = a
    source = as_source(deep, "zyx")
    assert preview_mode_for(source, False) == CHUNK_SAMPLE
    assert preview_mode_for(source, True) == WHOLE
    assert preview_mode_for(as_source(planes, "zyx"), False) == SAMPLED
    regions = chunk_sample_regions(source)
    # one chunk per layer of chunks (9 here, within the budget's 16), at the plane's centre
    assert len(regions) == len({r[0].start for r in regions}) == SHAPE[0] // CHUNKS[0]
    for box in regions:  # whole chunks, nothing more
        assert all(b.start % c == 0 and b.stop - b.start == c for b, c in
                   zip(box, CHUNKS, strict=True))
    assert sum(a[box].size for box in regions) <= SAMPLE_VOXELS
    sample = np.concatenate([a[box].ravel() for box in regions])
    assert _otsu_prepare(source, {}, whole=False) == {
        "threshold": float(filters.threshold_otsu(sample))}
    assert _otsu_prepare(source, {}, whole=True) == {
        "threshold": float(filters.threshold_otsu(a))}

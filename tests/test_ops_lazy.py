"""Laziness by counting chunk reads, the cache, pipelines, jobs and parameter errors."""

from __future__ import annotations

import json
import threading

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr

import napari_lazyproc as lp
from napari_lazyproc.ops import CACHE, Cancelled

#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


@pytest.fixture
def volume_zarr(tmp_path):
    """(40, 64, 64) uint16 with chunks (4, 32, 32): ten z-chunks of four tiles."""
    rng = np.random.default_rng(0)
    a = (ndi.gaussian_filter(rng.random((40, 64, 64)), 2) * 4000).astype(np.uint16)
    arr = zarr.create_array(tmp_path / "v.zarr", shape=a.shape, chunks=(4, 32, 32), dtype=a.dtype)
    arr[:] = a
    return tmp_path / "v.zarr", a


def _z_chunks(keys):
    return sorted({int(k.split("/")[1]) for k in keys})


def test_one_plane_reads_only_the_chunks_of_the_plane_and_halo(volume_zarr, zarr_reads):
    path, a = volume_zarr
    img = lp.open_image(path)
    res = lp.apply("gaussian", img, sigma=2.0)  # halo 8 in z
    plane = np.asarray(res[17])
    np.testing.assert_array_equal(plane, ndi.gaussian_filter(a, 2.0)[17])
    # z 17 +- 8 = 9..25 -> z-chunks 2..6, each of its 4 tiles read exactly once
    assert _z_chunks(zarr_reads.chunk_keys()) == [2, 3, 4, 5, 6]
    assert len(zarr_reads.chunk_keys()) == 5 * 4
    assert max(zarr_reads.keys[k] for k in zarr_reads.chunk_keys()) == 1


def test_scrolling_reuses_input_chunks(volume_zarr, zarr_reads):
    path, a = volume_zarr
    res = lp.apply("gaussian", lp.open_image(path), sigma=1.0)  # halo 4
    np.asarray(res[19])  # z 15..23: z-chunks 3..5
    first = len(zarr_reads.chunk_keys())
    np.asarray(res[20])  # z 16..24: z-chunks 4..6, only 6 is new
    assert len(zarr_reads.chunk_keys()) - first == 4


def test_parameters_are_part_of_the_cache_key(volume_zarr):
    path, a = volume_zarr
    img = lp.open_image(path)
    one = np.asarray(lp.apply("gaussian", img, sigma=1.0)[5])
    two = np.asarray(lp.apply("gaussian", img, sigma=3.0)[5])
    np.testing.assert_array_equal(one, ndi.gaussian_filter(a, 1.0)[5])
    np.testing.assert_array_equal(two, ndi.gaussian_filter(a, 3.0)[5])


def test_cache_is_bounded(volume_zarr):
    path, a = volume_zarr
    lp.set_cache_bytes(200_000)
    try:
        np.asarray(lp.apply("median", lp.open_image(path), size=3)[:, :, :])
        assert CACHE.nbytes <= 200_000
    finally:
        lp.set_cache_bytes(2**30)


def test_chained_halos_add_up(volume_zarr, zarr_reads):
    path, a = volume_zarr
    pipe = lp.Pipeline([{"op": "gaussian", "sigma": 1.0}, {"op": "median", "size": 5}])
    plane = np.asarray(pipe(lp.open_image(path))[12])
    np.testing.assert_array_equal(plane, ndi.median_filter(ndi.gaussian_filter(a, 1.0), 5)[12])
    # 12 +- (4 + 2) = 6..18 -> z-chunks 1..4
    assert _z_chunks(zarr_reads.chunk_keys()) == [1, 2, 3, 4]


def test_global_label_reads_each_input_chunk_a_bounded_number_of_times(
    volume_zarr, zarr_reads, tmp_path
):
    path, a = volume_zarr
    lp.set_cache_bytes(0)  # no cache: count what the job itself reads
    try:
        mask = lp.apply("threshold", lp.open_image(path), value=2000)
        job = lp.apply("label", mask, scope="global", connectivity=3).run()
    finally:
        lp.set_cache_bytes(2**30)
    ref, n = ndi.label(a > 2000, structure=np.ones((3, 3, 3)))
    assert job.n_labels == n
    labels = np.asarray(job[...])
    pairs = np.unique(np.stack([labels.ravel(), ref.ravel()]), axis=1)
    assert pairs.shape[1] == n + 1 == len(np.unique(pairs[0])) == len(np.unique(pairs[1]))
    input_reads = [c for (root, k), c in zarr_reads.by_store.items()
                   if root.endswith("v.zarr") and k.startswith("c/")]
    assert len(input_reads) == 40  # every chunk
    assert max(input_reads) == 1  # and each once


@pytest.mark.parametrize("face_bytes", [2**29, 0])
def test_global_label_in_face_pieces(monkeypatch, face_bytes):
    """Faces too large for one read are split into overlapping pieces; diagonals still join
    (the pieces from the planes pass 1 kept, or read back from the stored labels)."""
    from napari_lazyproc.ops.jobs import _label_global

    monkeypatch.setattr(_label_global, "SLAB_VOXELS", 10)
    monkeypatch.setattr(_label_global, "FACE_BYTES", face_bytes)
    a = np.zeros((12, 12, 12), bool)
    idx = np.arange(12)
    a[idx, idx, idx] = True  # a diagonal line: joined only with connectivity 3
    a[2, 9, 1] = True
    job = lp.apply("label", da.from_array(a, chunks=4), scope="global", connectivity=3).run()
    assert job.n_labels == 2
    job1 = lp.apply("label", da.from_array(a, chunks=4), scope="global", connectivity=1).run()
    assert job1.n_labels == 13


def test_global_label_is_never_triggered_by_slicing():
    job = lp.apply("label", da.from_array(np.ones((4, 4, 4), bool), chunks=2), scope="global")
    with pytest.raises(RuntimeError, match="has not run yet"):
        job[0]
    assert not job.done


def test_global_label_progress_and_cancel():
    a = da.from_array(np.ones((8, 8, 8), bool), chunks=2)
    seen = []
    lp.apply("label", a, scope="global").run(
        progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1][0] == seen[-1][1] == 64 + 9
    cancel = threading.Event()

    def stop_early(done, total):
        if done == 3:
            cancel.set()

    job = lp.apply("label", a, scope="global")
    with pytest.raises(Cancelled):
        job.run(progress=stop_early, cancel=cancel)
    assert not job.done


def test_pipeline_json_round_trip_and_provenance(volume_zarr):
    path, a = volume_zarr
    text = '[{"op": "gaussian", "sigma": 2}, {"op": "threshold_otsu"}, {"op": "label"}]'
    pipe = lp.Pipeline.from_json(text)
    assert lp.Pipeline.from_json(pipe.to_json()) == pipe
    res = pipe(lp.open_image(path))
    assert res.kind == "labels" and res.dtype == np.int32
    steps = res.steps
    assert [s["op"] for s in steps] == ["gaussian", "threshold_otsu", "label"]
    assert steps[0]["sigma"] == [2.0, 2.0, 2.0] and steps[0]["axes"] == "zyx"
    assert json.loads(json.dumps(steps)) == steps
    # and it is exact: label of (gaussian > otsu of the sampled histogram)
    mask = ndi.gaussian_filter(a, 2) > res.source.prepared()["threshold"]
    ours = np.asarray(res[10])
    ref = ndi.label(mask)[0][10]
    np.testing.assert_array_equal(ours > 0, ref > 0)


def test_list_ops_describes_parameters():
    ops = {o["name"]: o for o in lp.list_ops()}
    sigma = next(p for p in ops["gaussian"]["params"] if p["name"] == "sigma")
    assert sigma == {"name": "sigma", "type": "float", "default": 1.0, "min": 0,
                     "quantity": "length",
                     "help": "Gaussian standard deviation (0: that axis is not filtered)",
                     "per_axis": True}
    label = {p["name"]: p for p in ops["label"]["params"]}
    assert label["scope"]["choices"] == ["frame", "global"]
    assert ops["label"]["kind"] == "labels"


def test_to_dask_has_one_task_per_output_chunk(volume_zarr):
    path, a = volume_zarr
    res = lp.apply("gaussian", lp.open_image(path), sigma=1.0)
    d = res.to_dask()
    assert d.chunks == lp.open_image(path).levels[0].chunks
    assert len(d.__dask_graph__()) == 40
    np.testing.assert_array_equal(d.compute(), ndi.gaussian_filter(a, 1.0))


@pytest.mark.parametrize("name, params, message", [
    ("gaussian", {"sigma": -1}, "gaussian: sigma must be a number >= 0"),
    ("gaussian", {"sigma": float("nan")}, "gaussian: sigma must be a number >= 0 and finite"),
    ("median", {"size": 0}, "median: size must be an integer >= 1"),
    ("gaussian", {"sigma": (1, 2)}, "gaussian: sigma has 2 values for 3 spatial axes"),
    ("gaussian", {"sigmaa": 1}, "gaussian: unknown parameter(s) sigmaa"),
    ("median", {"mode": "periodic"}, "median: mode must be one of 'reflect', 'constant'"),
    ("label", {"connectivity": 4}, "connectivity must be between 1 and 3"),
    ("threshold_local", {"block_size": 4}, "block_size must be odd"),
    ("percentile", {"percentile": 120},
     "percentile: percentile must be a number >= -100 and <= 100"),
    ("nope", {}, "unknown operation 'nope'"),
])
def test_bad_parameters_raise_a_clear_value_error(name, params, message):
    a = np.zeros((4, 5, 6), np.uint16)
    with pytest.raises(ValueError) as info:
        lp.apply(name, a, **params)
    assert message in str(info.value)


def test_3d_operation_on_2d_data_is_refused():
    with pytest.raises(ValueError, match="over axes 'zyx' needs a 3-D image.*axes 'yx'"):
        lp.apply("gaussian", np.zeros((5, 5)), axes="zyx")
    with pytest.raises(ValueError, match="include time or channel"):
        lp.apply("gaussian", np.zeros((3, 5, 5, 5)), axes="tzyx")


def test_input_is_never_modified(volume_zarr):
    path, a = volume_zarr
    before = zarr.open_array(path, mode="r")[:]
    np.asarray(lp.apply("white_tophat", lp.open_image(path), radius=2)[3])
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], before)


def test_precision_switch_per_call_and_global_with_clear_errors():
    a = np.random.default_rng(0).random((6, 20, 20)).astype(np.float32)
    lp.set_precision("fast")
    assert lp.apply("gaussian", a, sigma=1.0).precision == "fast"
    lp.set_precision("exact")
    exact = lp.apply("gaussian", a, sigma=1.0)
    assert exact.precision == "exact" and exact.steps[-1]["precision"] == "exact"
    fast = lp.apply("gaussian", a, sigma=1.0, precision="fast")
    assert fast.token != exact.token  # never a cached value of the other mode
    np.testing.assert_array_equal(np.asarray(exact), ndi.gaussian_filter(a, 1.0))
    assert fast.levels[0].precision == "fast"
    with pytest.raises(ValueError, match="precision must be 'fast' or 'exact' \\(got 'quick'\\)"):
        lp.apply("gaussian", a, precision="quick")
    with pytest.raises(ValueError, match="precision must be 'fast' or 'exact'"):
        lp.set_precision("double")
    # provenance round-trips through a pipeline
    again = lp.Pipeline(fast.steps)(a)
    assert again.precision == "fast" and again.token == fast.token


def test_old_names_still_work_with_a_deprecation_warning():
    from napari_lazyproc.ops import WHOLE, WHOLE_FRAME, get_op

    op = get_op("gaussian")
    with pytest.warns(DeprecationWarning, match="use Op.function"):
        assert op.cpu is op.function
    with pytest.warns(DeprecationWarning, match="use Param.quantity"):
        assert op.param("sigma").unit == "length"
    assert WHOLE is WHOLE_FRAME


def test_label_pairs_are_the_distinct_rows_numpy_finds():
    from napari_lazyproc.ops.jobs._label_merge import _unique_pairs

    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 50, 10000), rng.integers(1, 50, 10000)
    for x in (a, a + 2**40):  # 64-bit keys, and labels too large for them
        np.testing.assert_array_equal(_unique_pairs(x, b),
                                      np.unique(np.stack([x, b], axis=1), axis=0))


def test_global_labels_of_frames_sharing_a_chunk_are_numbered_apart():
    """A chunk holding several time points labels each frame on its own; the later
    frames' labels follow the earlier ones', never reusing a number."""
    rng = np.random.default_rng(3)
    mask = ndi.gaussian_filter(rng.random((3, 8, 24, 24)), (0, 1, 2, 2)) > 0.5
    job = lp.apply("label", da.from_array(mask, chunks=(3, 4, 12, 12)), data_axes="tzyx",
                   axes="zyx", scope="global").run()
    values = np.asarray(job)
    seen = set()
    for t in range(3):
        ref, n = ndi.label(mask[t])
        ours = values[t]
        pairs = np.unique(np.stack([ours.ravel(), ref.ravel()]), axis=1)
        assert pairs.shape[1] == n + 1  # a permutation of scipy's labels (and 0 for 0)
        labels = set(np.unique(ours)) - {0}
        assert len(labels) == n and not labels & seen
        seen |= labels
    assert job.n_labels == len(seen)

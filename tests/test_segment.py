"""lp.segment: per-block segmentation stitched across blocks, against the whole array."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from skimage.filters import threshold_otsu

import napari_lazyproc as lp
from napari_lazyproc.ops import Cancelled, as_source, list_methods
from napari_lazyproc.ops.jobs._segment_methods import watershed_block
from napari_lazyproc.synthetic_nuclei import touching_nuclei

SHAPE, BLOCK, DIAMETER = (128, 128, 128), 64, 12


@pytest.fixture(scope="module")
def nuclei():
    image, _, _ = touching_nuclei(SHAPE, seed=3)
    return image


@pytest.fixture(scope="module")
def whole(nuclei):
    """scikit-image's seeded watershed of the whole array (Otsu of every voxel)."""
    return watershed_block(nuclei, diameter=(DIAMETER,) * 3, threshold=threshold_otsu(nuclei),
                           kernels="skimage")


@pytest.fixture(scope="module")
def stitched(nuclei):
    job = lp.segment(nuclei, "watershed", diameter=DIAMETER, axes="zyx", block=BLOCK)
    return job.run()


def best_iou(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """For each object of ``ref``, the best IoU with an object of ``out``."""
    r, o = ref.ravel().astype(np.int64), out.ravel().astype(np.int64)
    both = (r > 0) & (o > 0)
    base = int(o.max()) + 1
    keys, inter = np.unique(r[both] * base + o[both], return_counts=True)
    ri, oi = keys // base, keys % base
    area_r, area_o = np.bincount(r), np.bincount(o)
    iou = inter / (area_r[ri] + area_o[oi] - inter)
    best = np.zeros(len(area_r))
    np.maximum.at(best, ri, iou)
    ids = np.flatnonzero(area_r)
    return best[ids[ids > 0]]


def crossing_objects(labels: np.ndarray, block: int) -> list[int]:
    """Labels whose voxels lie in more than one block of the grid."""
    out = []
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is not None and any(s.start // block != (s.stop - 1) // block for s in where):
            out.append(label)
    return out


@pytest.mark.slow  # the whole array's watershed and the stitched one: about 12 s
def test_stitched_watershed_matches_the_whole_array(whole, stitched):
    out = np.asarray(stitched)
    assert out.shape == SHAPE and out.dtype == np.uint32
    assert stitched.n_labels == int(out.max()) == len(np.unique(out)) - 1  # consecutive
    best = best_iou(whole, out)
    assert len(best) > 250
    assert (best >= 0.9).mean() >= 0.99
    crossing = crossing_objects(whole, BLOCK)
    assert len(crossing) > 100  # many objects cross block faces
    for label in crossing:  # each is one stitched label: never split
        inside = out[whole == label]
        values, counts = np.unique(inside[inside > 0], return_counts=True)
        assert counts.max() >= 0.9 * inside.size, (label, values, counts)
    # never merged with a neighbour: no stitched label holds two whole objects
    assert (best_iou(out, whole) >= 0.9).mean() >= 0.99


def test_a_user_callable_equals_it_on_the_whole_array(nuclei):
    def components(block):
        return ndi.label(block > 80)[0]

    out = np.asarray(lp.segment(nuclei, components, halo=24, block=BLOCK).run())
    ref, n = ndi.label(nuclei > 80)
    assert out.max() == n > 300
    assert len(crossing_objects(ref, BLOCK)) > 100
    # label for label after relabeling: a one-to-one map between the two
    pairs = np.unique(np.stack([ref.ravel(), out.ravel()]), axis=1)
    assert pairs.shape[1] == n + 1
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == n + 1


def test_two_block_sizes_give_the_same_objects(nuclei, stitched):
    other = lp.segment(nuclei, "watershed", diameter=DIAMETER, block=(48, 64, 80)).run()
    assert other.block == (48, 64, 80)
    assert (best_iou(np.asarray(stitched), np.asarray(other)) >= 0.9).mean() >= 0.99


def test_the_result_is_exported_and_measured(stitched, tmp_path):
    out = np.asarray(stitched)
    lp.export(stitched, tmp_path / "seg.ome.zarr")
    back = zarr.open_group(tmp_path / "seg.ome.zarr", mode="r")["0"][:]
    np.testing.assert_array_equal(back, out)
    table = lp.measure(stitched, properties=("label", "area"))
    assert len(table) == stitched.n_labels
    np.testing.assert_array_equal(table["area"].to_numpy(),
                                  np.bincount(out.ravel())[table["label"].to_numpy()])
    assert len(stitched.levels) >= 1 and stitched.steps[-1]["op"] == "segment"
    # to a dask worker: the labels travel by their store's path
    import pickle

    travelled = pickle.loads(pickle.dumps(stitched))
    np.testing.assert_array_equal(np.asarray(travelled[60:70]), out[60:70])
    assert "watershed" in repr(travelled)


def test_the_preview_shows_per_block_labels_with_stable_ids(nuclei):
    job = lp.segment(nuclei, "watershed", diameter=DIAMETER, block=BLOCK)
    preview = job.preview
    assert preview.is_preview and preview.steps[-1]["preview"] is True
    plane = np.asarray(preview[70])
    assert plane.shape == SHAPE[1:] and len(np.unique(plane)) > 20
    # panning: a shifted window shows the same ids at the same voxels
    window = np.asarray(preview[70, 30:110, 20:120])
    np.testing.assert_array_equal(window, plane[30:110, 20:120])
    # a plane's labels are its blocks' watershed (with their 3D halo), numbered per block
    core = (slice(70, 71), slice(0, 64), slice(0, 64))
    ext = job.extended(core)
    own = watershed_block(nuclei[ext], diameter=(DIAMETER,) * 3,
                          threshold=threshold_otsu(nuclei))
    inner = tuple(slice(c.start - e.start, c.stop - e.start)
                  for c, e in zip(core, ext, strict=True))
    mine = plane[:64, :64]
    pairs = np.unique(np.stack([own[inner][0].ravel(), mine.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
    # the faster look: each plane in 2D (here one block covers the plane)
    flat = np.asarray(job.plane_preview[70])
    assert job.plane_preview.steps[-1]["axes"] == "yx"
    own = watershed_block(nuclei[70], diameter=(DIAMETER,) * 2,
                          threshold=threshold_otsu(nuclei))
    pairs = np.unique(np.stack([own.ravel(), flat.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(own)) == len(np.unique(flat)) > 20


KILLED = textwrap.dedent("""
    import os, signal, sys
    import napari_lazyproc as lp
    from napari_lazyproc.synthetic_nuclei import touching_nuclei

    image, _, _ = touching_nuclei((96, 96, 96), seed=5)
    job = lp.segment(image, "watershed", diameter=12, block=48)

    def progress(done, total):
        if done >= 3:  # mid-run, no chance to tidy up
            os.kill(os.getpid(), signal.SIGKILL)

    job.run(progress=progress, store=sys.argv[1])
""")


@pytest.mark.slow  # a subprocess
def test_resume_after_sigkill_gives_the_same_labels(tmp_path):
    store = tmp_path / "job"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(store)], capture_output=True,
                          timeout=120)
    assert proc.returncode == -9
    assert not (store / "complete.json").exists()
    kept = len(list((store / "done").glob("*.json")))
    assert 3 <= kept < 8
    image, _, _ = touching_nuclei((96, 96, 96), seed=5)
    seen = []
    resumed = lp.segment(image, "watershed", diameter=12, block=48).run(
        progress=lambda done, total: seen.append(done), store=store)
    assert seen[0] >= kept  # the stored blocks were not segmented again
    assert json.loads((store / "complete.json").read_text())["n_labels"] == resumed.n_labels
    fresh = lp.segment(image, "watershed", diameter=12, block=48).run()
    np.testing.assert_array_equal(np.asarray(resumed), np.asarray(fresh))


def test_cancel_leaves_nothing_that_looks_complete(tmp_path):
    image, _, _ = touching_nuclei((96, 96, 96), seed=6)
    job = lp.segment(image, "watershed", diameter=12, block=48)
    cancel = threading.Event()

    def progress(done, total):
        if done >= 3:
            cancel.set()

    with pytest.raises(Cancelled):
        job.run(progress=progress, cancel=cancel, store=tmp_path / "job")
    assert job.result is None
    assert not (tmp_path / "job" / "complete.json").exists()
    assert not (tmp_path / "job" / "lut.npy").exists()
    done = job.run(store=tmp_path / "job")  # and it resumes from there
    np.testing.assert_array_equal(np.asarray(done), np.asarray(job.run()))


def test_diameter_in_physical_units_and_refusals(nuclei):
    src = as_source(nuclei, "zyx", scale=[2.0, 0.5, 0.5], units=["micrometer"] * 3)
    job = lp.segment(src, diameter=6, units="physical")
    assert job.diameter == (3.0, 12.0, 12.0)
    assert job.halo == [7, 16, 16]  # a diameter plus 4 sigma of smoothing, per axis
    with pytest.raises(ValueError, match="unknown method 'nope'; available: .*watershed"):
        lp.segment(nuclei, "nope", diameter=12)
    with pytest.raises(ValueError, match="callable method needs halo="):
        lp.segment(nuclei, lambda b: b > 0)
    with pytest.raises(ValueError, match="has no parameter 'sigmaa'"):
        lp.segment(nuclei, diameter=12, sigmaa=2)
    with pytest.raises(ValueError, match="pass diameter="):
        lp.segment(nuclei)


PLUGIN = textwrap.dedent("""
    import numpy as np
    from scipy import ndimage as ndi
    from napari_lazyproc.ops import SegmentMethod

    def _blobs(block, *, diameter, level=50):
        return ndi.label(block > level)[0]

    METHOD = SegmentMethod("blobs", _blobs, lambda d, p: tuple(int(x) for x in d),
                           params={"level": 50})
""")


def test_a_package_offers_a_method_through_an_entry_point(tmp_path, monkeypatch, nuclei):
    (tmp_path / "fakeseg_plugin.py").write_text(PLUGIN)
    info = tmp_path / "fakeseg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeseg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[napari_lazyproc.segmenters]\nblobs = fakeseg_plugin:METHOD\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "blobs" in list_methods()
    out = np.asarray(lp.segment(nuclei, "blobs", diameter=24, level=80, block=BLOCK).run())
    assert out.max() == ndi.label(nuclei > 80)[1]


def test_cellpose_and_stardist_appear_only_when_installed():
    methods = list_methods()
    for name in ("cellpose", "stardist"):
        assert (name in methods) == (importlib.util.find_spec(name) is not None)


def test_a_pipeline_step_and_the_command_line_run_the_job(tmp_path):
    from napari_lazyproc.cli import main

    image, _, _ = touching_nuclei((64, 96, 96), seed=7)
    zarr.create_array(tmp_path / "in.zarr", shape=image.shape, chunks=(32, 48, 48),
                      dtype=image.dtype)[:] = image
    fresh = np.asarray(lp.segment(image, diameter=12, block=48).run())
    labels = lp.Pipeline([{"op": "segment", "diameter": 12, "block": 48}])(image)
    assert not labels.done  # lp.export runs it
    lp.export(labels, tmp_path / "api.ome.zarr")
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "api.ome.zarr" / "0")[:], fresh)
    out = tmp_path / "cli.ome.zarr"
    assert main(["process", str(tmp_path / "in.zarr"), "-o", str(out), "--step",
                 "segment:method=watershed:diameter=12:block=48", "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out / "0")[:], fresh)
    step = dict(zarr.open_group(out, mode="r").attrs)["napari-lazyproc"]["pipeline"][-1]
    assert step["op"] == "segment" and step["method"] == "watershed"
    # the provenance replays
    again = lp.Pipeline([step])(image).run()
    np.testing.assert_array_equal(np.asarray(again), fresh)


@pytest.mark.parametrize("sampling", [(1.0, 1.0, 1.0), (4.0, 1.0, 1.0), (0.3, 1.0, 1.0),
                                      (0.5, 0.7, 0.7), (1.0, 1.0)])
def test_the_distance_transform_is_scipys(sampling):
    from napari_lazyproc.ops.jobs._segment_methods import distance_transform

    rng = np.random.default_rng(len(sampling))
    shape = (20, 70, 90)[-len(sampling):]
    mask = ndi.gaussian_filter(rng.random(shape), 2) > 0.48
    np.testing.assert_array_equal(distance_transform(mask, sampling),
                                  ndi.distance_transform_edt(mask, sampling=sampling))
    full = mask.copy()
    full[3] = True  # a plane with no background: scipy's own
    np.testing.assert_array_equal(distance_transform(full, sampling),
                                  ndi.distance_transform_edt(full, sampling=sampling))


def test_planes_and_time_series():
    def same(x, y):  # one-to-one after relabeling
        pairs = np.unique(np.stack([x.ravel(), y.ravel()]), axis=1)
        return pairs.shape[1] == len(np.unique(x)) == len(np.unique(y))

    plane = touching_nuclei((300, 260), seed=3)[0]
    out = np.asarray(lp.segment(plane, diameter=12, block=64).run())
    ref = watershed_block(plane, diameter=(12, 12), threshold=threshold_otsu(plane))
    assert out.max() > 150 and same(out, ref)
    # each time point on its own: never joined across t
    a, b = (touching_nuclei((32, 64, 64), seed=s)[0] for s in (1, 2))
    both = np.asarray(lp.segment(as_source(np.stack([a, b]), "tzyx"), diameter=12,
                                 block=32, axes="zyx", threshold=50).run())
    alone = [np.asarray(lp.segment(v, diameter=12, block=32, threshold=50).run())
             for v in (a, b)]
    assert same(both[0], alone[0]) and same(both[1], alone[1])
    assert both.max() == alone[0].max() + alone[1].max()


@pytest.mark.slow  # starts a local cluster of two worker processes
def test_blocks_on_a_dask_cluster_give_the_same_labels(tmp_path):
    image, _, _ = touching_nuclei((64, 96, 96), seed=8)
    job = lp.segment(image, diameter=12, block=48)
    here = np.asarray(job.run())
    there = lp.segment(image, diameter=12, block=48).run(store=tmp_path / "job", workers=2)
    np.testing.assert_array_equal(np.asarray(there), here)

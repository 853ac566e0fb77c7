"""The preview napari shows by default (``seg.live_preview``): each plane's 2D look at
once, replaced block by block by the 3D preview, with the look's ids kept."""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu

import napari_lazyproc as lp
from napari_lazyproc.ops.jobs._segment_live_preview import adopt_ids
from napari_lazyproc.ops.jobs._segment_methods import watershed_block
from napari_lazyproc.ops.jobs._segment_preview import SegmentPreview
from napari_lazyproc.synthetic_nuclei import touching_nuclei

IMAGE = touching_nuclei((48, 128, 128), seed=11)[0]


def one_to_one(x: np.ndarray, y: np.ndarray) -> bool:
    """The same partition of the voxels (labels equal after relabeling)."""
    pairs = np.unique(np.stack([x.ravel(), y.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(x)) == len(np.unique(y))


def test_the_plane_look_first_then_the_3d_preview_with_its_ids():
    job = lp.segment(IMAGE, "watershed", diameter=12, block=64)
    live = job.live_preview
    assert live.is_preview and live.block == (8, 128, 128)
    view = (slice(20, 21), slice(0, 128), slice(0, 128))
    stamp = live.stamp(view)
    first = live.read(view)[0]
    # at first: the plane look, each plane segmented in 2D, the same ids
    np.testing.assert_array_equal(first, np.asarray(job.plane_preview[20]))
    look_ids = set(np.unique(first)) - {0}
    assert len(look_ids) > 20
    assert live.wait(view, timeout=120) and live.showing(view) == "3D"
    assert live.stamp(view) != stamp  # a live layer reads the region again
    final = live.read(view)[0]
    np.testing.assert_array_equal(live.cached(view)[0], final)
    # then the 3D preview: its block's planes (8 of them) segmented in 3D with the halo
    core = (slice(16, 24), slice(0, 128), slice(0, 128))
    ext = job.extended(core)
    own = watershed_block(IMAGE[ext], diameter=(12.0,) * 3,
                          threshold=live.prepared()["threshold"])
    assert one_to_one(own[20 - ext[0].start], final)
    # ids kept: the 3D objects take the look's ids, one to one
    ids = set(np.unique(final)) - {0}
    kept = ids & look_ids
    assert len(kept) >= 0.8 * len(ids)
    assert all(i >= live.own_offset for i in ids - look_ids)
    # every plane of the block is ready now, its ids stable while panning
    other = (slice(23, 24), slice(30, 100), slice(10, 128))
    assert live.showing(other) == "3D"
    np.testing.assert_array_equal(live.read(other), live.read((slice(23, 24),))[:, 30:100, 10:])
    # the next block is not computed until asked for
    assert live.showing((slice(24, 25),)) == "plane look"
    live.close()


def test_the_3d_labels_adopt_the_looks_ids_largest_overlap_first():
    raw = np.array([[[1, 1, 2, 2, 3, 0]]], np.uint32)
    look = np.array([[[7, 7, 7, 0, 9, 9]]], np.uint32)
    out = adopt_ids(raw, look, 0, 100)
    # 1 overlaps 7 most (2 voxels, 2 only 1): 1 takes 7; 2 keeps its own (100 + 2);
    # 3 takes 9
    np.testing.assert_array_equal(out, [[[7, 7, 102, 102, 9, 0]]])


def test_a_2d_image_has_one_preview():
    plane = touching_nuclei((96, 96), seed=2)[0]
    job = lp.segment(plane, diameter=12)
    assert isinstance(job.live_preview, SegmentPreview) and job.live_preview is job.preview
    ref = watershed_block(plane, diameter=(12.0, 12.0), threshold=threshold_otsu(plane))
    assert one_to_one(np.asarray(job.live_preview), ref)

"""The watershed's fast kernels (numba) give scikit-image's labels exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from napari_lazyproc.ops.jobs._segment_methods import squared_distance, watershed_block
from napari_lazyproc.synthetic_nuclei import touching_nuclei

pytest.importorskip("numba")
from napari_lazyproc.ops.kernels._watershed import watershed_ranks  # noqa: E402


def test_the_linear_flood_is_scikit_images_when_no_two_seeds_tie():
    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(int(v) for v in rng.integers(2, 9, rng.integers(1, 4)))
        n = min(int(np.prod(shape)), int(rng.integers(1, 6)))
        ranks = rng.integers(n, n + 4, shape)  # plateaus everywhere: ties by age
        markers = np.zeros(shape, np.int32)
        at = np.unravel_index(rng.choice(ranks.size, n, replace=False), shape)
        markers[at] = np.arange(1, n + 1)
        ranks[at] = rng.permutation(n)  # seeds: each its own value, below the rest
        mask = rng.random(shape) > 0.15
        np.testing.assert_array_equal(watershed_ranks(ranks, markers, mask, n + 4),
                                      watershed(ranks, markers, mask=mask))


@pytest.mark.parametrize("shape", [(40, 96, 96), (150, 170)])
def test_the_nuclei_watershed_is_the_same_with_either_kernels(shape):
    image = touching_nuclei(shape, seed=4)[0]
    thr = threshold_otsu(image)
    fast = watershed_block(image, diameter=12, threshold=thr)
    reference = watershed_block(image, diameter=12, threshold=thr, kernels="skimage")
    assert reference.max() > 40
    np.testing.assert_array_equal(fast, reference)


def test_the_squared_distance_is_scipys():
    mask = touching_nuclei((30, 60, 70), seed=2)[0] > 60
    mask[:, 0] = False  # every plane has background
    expected = ndi.distance_transform_edt(mask) ** 2
    np.testing.assert_array_equal(squared_distance(mask, (1, 1, 1)), np.rint(expected))

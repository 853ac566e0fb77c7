"""The synthetic light-sheet series: lazy, deterministic per region, and biology-like."""

from __future__ import annotations

import pickle

import numpy as np
from scipy import ndimage as ndi

from napari_lazyproc._sample_data import lightsheet_large, lightsheet_small
from napari_lazyproc.synthetic import LARGE, SMALL, LightSheetVolume, _lineage, lightsheet


def test_large_sample_is_at_least_200_gb_virtual_and_lazy():
    (data, kwargs, kind), = lightsheet_large()
    assert kind == "image" and kwargs["multiscale"]
    assert data[0].shape == (100, 256, 2048, 2048) and data[0].dtype == np.uint16
    assert data[0].nbytes >= 200e9
    assert kwargs["scale"] == [30.0, 2.0, 0.406, 0.406]
    assert kwargs["contrast_limits"] == (100.0, 1360.0)  # given, so napari makes no pass
    assert [lvl.shape[-1] for lvl in data] == [2048, 1024, 512, 256]


def test_small_sample():
    (data, kwargs, _), = lightsheet_small()
    assert data.shape == (10, 64, 256, 256)


def test_any_region_equals_the_same_cut_of_a_larger_region():
    vol = LightSheetVolume(SMALL)
    big = vol[3, 10:40, 50:200, 20:230]
    np.testing.assert_array_equal(vol[3, 25, 100:120, 60:61], big[15, 50:70, 40:41])
    np.testing.assert_array_equal(vol[3, 10:40, 50:200, 20:230], big)  # deterministic


def test_chunked_dask_equals_direct_render():
    img = lightsheet(SMALL, levels=1)
    np.testing.assert_array_equal(img.levels[0][4, 30:34].compute(), LightSheetVolume(SMALL)[4, 30:34])


def test_volume_pickles_for_workers():
    vol = pickle.loads(pickle.dumps(LightSheetVolume(SMALL, factor=2)))
    assert vol.shape == (10, 64, 128, 128)
    np.testing.assert_array_equal(vol[1, 5], LightSheetVolume(SMALL, 2)[1, 5])


def test_looks_like_nuclei_not_noise():
    frame = LightSheetVolume(SMALL)[0].astype(np.float32)
    smooth = ndi.gaussian_filter(frame, 2)
    blobs, n = ndi.label(smooth > 600)
    assert 20 < n < 2000  # separate bright objects
    background = np.median(frame)
    assert 100 < background < 400  # a dim background
    assert frame.max() > 5 * background
    # noise: neighbouring background voxels differ
    assert np.std(np.diff(frame[:, :5, :5], axis=-1)) > 1


def test_nuclei_drift_and_divide_over_time():
    lineage = _lineage(LARGE)
    p0, _, _ = lineage.at(0.0)
    p99, _, _ = lineage.at(99.0)
    assert len(p99) > len(p0) * 1.3  # divisions add nuclei
    assert len(p0) == LARGE.nuclei or len(p0) > 0.9 * LARGE.nuclei
    # frames differ: the image moves
    a, b = LightSheetVolume(SMALL)[0, 32], LightSheetVolume(SMALL)[9, 32]
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5

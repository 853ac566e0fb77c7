"""The synthetic light-sheet series: lazy, deterministic per region, and biology-like."""

from __future__ import annotations

import pickle

import numpy as np
from scipy import ndimage as ndi

from napari_lazyproc._sample_data import lightsheet_large, lightsheet_small
from napari_lazyproc.synthetic import (
    LARGE,
    SMALL,
    LightSheetSpec,
    LightSheetVolume,
    _lineage,
    lightsheet,
)


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


def test_coarse_volume_equals_region_by_region_renders():
    # the whole coarsest level of the large series at one time point (all ~20000 nuclei),
    # against halves in z and odd-sized pieces in y and x, each rendered on its own
    vol = LightSheetVolume(LARGE, 8)
    whole = vol[2]
    assert whole.shape == (256, 256, 256) and whole.dtype == np.uint16
    np.testing.assert_array_equal(np.concatenate([vol[2, :128], vol[2, 128:]]), whole)
    pieces = [[vol[2, 90:130, y0:y1, x0:x1] for x0, x1 in ((0, 97), (97, 256))]
              for y0, y1 in ((0, 131), (131, 256))]
    np.testing.assert_array_equal(np.block(pieces), whole[90:130])
    np.testing.assert_array_equal(vol[2, 117], whole[117])  # one plane, as the viewer asks


def test_levels_render_at_their_own_resolution():
    # level 1 is not level 0 downsampled: its noise is its own (smaller, as binning would)
    full, half = LightSheetVolume(SMALL, 1)[0, 32], LightSheetVolume(SMALL, 2)[0, 32]
    assert half.shape == (128, 128)
    assert not np.array_equal(half, full[::2, ::2])
    flat = (slice(0, 8), slice(0, 8))  # background corner: neighbour differences are noise
    noise_full = np.std(np.diff(full[flat].astype(float), axis=-1))
    noise_half = np.std(np.diff(half[flat].astype(float), axis=-1))
    assert noise_half < 0.75 * noise_full
    # and the image agrees with level 0 binned 2 x 2
    binned = full.astype(float).reshape(128, 2, 128, 2).mean(axis=(1, 3))
    assert np.corrcoef(binned.ravel(), half.astype(float).ravel())[0, 1] > 0.95


def test_noise_is_white_and_deterministic_across_wide_rows():
    # rows wider than one noise segment, and a region cut across a segment boundary
    spec = LightSheetSpec(shape=(2, 3, 40, 9000), nuclei=0, seed=3, background=0.0,
                          read_noise=10.0)
    vol = LightSheetVolume(spec)
    big = vol[1]
    np.testing.assert_array_equal(vol[1, 1:3, 5:30, 4000:8300], big[1:3, 5:30, 4000:8300])
    np.testing.assert_array_equal(vol[1, :, 7, 5000:], big[:, 7, 5000:])
    noise = big.astype(float) - 100.0
    assert abs(noise.mean() + 0.5) < 0.2 and 9 < noise.std() < 11  # (conversion truncates)
    # no correlation between neighbours in x, y or z, and no repeats between rows
    for a, b in ((noise[..., 1:], noise[..., :-1]), (noise[:, 1:], noise[:, :-1]),
                 (noise[1:], noise[:-1])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    a, b = noise[..., :4096], noise[..., 4096:8192]  # segments of a row differ
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    rows = noise.reshape(-1, 9000)
    c = np.corrcoef(rows)
    assert np.abs(c[~np.eye(len(rows), dtype=bool)]).max() < 0.1
    # time points and levels have their own noise
    assert not np.array_equal(vol[0], big)


def test_chunked_dask_equals_direct_render():
    img = lightsheet(SMALL, levels=1)
    np.testing.assert_array_equal(img.levels[0][4, 30:34].compute(),
                                  LightSheetVolume(SMALL)[4, 30:34])


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

"""Laziness, by counting real reads: opening reads no pixel chunk; a plane reads its chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import VOLUME

import napari_lazyproc as lp
from napari_lazyproc.io import sample_contrast_limits


def test_zarr_open_reads_no_chunk_and_a_plane_reads_its_chunks(zarr_v3_array, zarr_reads):
    img = lp.open_image(zarr_v3_array)
    assert zarr_reads.chunk_keys() == []
    plane = np.asarray(img.levels[0][5])  # chunks (4, 32, 32): z-chunk 1, 2 x 3 tiles
    np.testing.assert_array_equal(plane, VOLUME[5])
    assert sorted(zarr_reads.chunk_keys()) == sorted(
        f"c/1/{y}/{x}" for y in range(2) for x in range(3)
    )


def test_ome_zarr_open_reads_no_chunk(ome_zarr_v04, zarr_reads):
    img = lp.open_image(ome_zarr_v04)
    assert zarr_reads.chunk_keys() == []
    np.asarray(img.levels[1][0, :16, :16])
    assert zarr_reads.chunk_keys() == ["s1/0/0/0"]  # ome-zarr writes "/" separators


def test_contrast_sample_is_bounded(tmp_path, zarr_reads):
    """A large array: the sample reads a few central chunks, not the array."""
    import zarr

    arr = zarr.create_array(tmp_path / "big.zarr", shape=(64, 1024, 1024),
                            chunks=(1, 256, 256), dtype="uint16", fill_value=0)
    arr[32] = 500
    img = lp.open_image(tmp_path / "big.zarr")
    zarr_reads.keys.clear()
    (limits,) = sample_contrast_limits(img, max_bytes=2**20)
    assert limits == (500.0, 501.0)
    chunks = zarr_reads.chunk_keys()
    assert 1 <= len(chunks) <= 8
    assert all(k.startswith("c/32/") for k in chunks)


def test_tiff_plane_reads_only_its_tiles(bigtiff_tiled, tiff_reads):
    img = lp.open_image(bigtiff_tiled)
    assert tiff_reads.chunk_keys() == []
    np.testing.assert_array_equal(np.asarray(img.levels[0][7, :32, 32:64]), VOLUME[7, :32, 32:64])
    assert tiff_reads.chunk_keys() == ["c/7/0/1"] or tiff_reads.chunk_keys() == ["7.0.1"]


def test_tiff_folder_reads_only_needed_files(tiff_folder, monkeypatch):
    import tifffile

    opened: list[str] = []
    original = tifffile.TiffFile.__init__

    def counting_init(self, arg, *args, **kwargs):
        opened.append(str(arg))
        original(self, arg, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "__init__", counting_init)
    img = lp.open_image(tiff_folder)
    assert [p.rsplit("/", 1)[-1] for p in opened] == ["plane_t0.tif"]  # metadata of the first
    opened.clear()
    np.testing.assert_array_equal(np.asarray(img.levels[0][10]), VOLUME[10])
    assert {p.rsplit("/", 1)[-1] for p in opened} == {"plane_t10.tif"}


def test_hdf5_open_reads_no_data_and_reads_are_thread_safe(hdf5_file, monkeypatch):
    import h5py

    reads = []
    original = h5py.Dataset.__getitem__

    def counting_getitem(self, key):
        reads.append((self.name, threading.get_ident()))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting_getitem)
    img = lp.open_image(hdf5_file)
    assert reads == []
    # many concurrent chunk reads of one handle from dask's thread pool: values exact
    import dask

    with dask.config.set(scheduler="threads", num_workers=8):
        for _ in range(3):
            np.testing.assert_array_equal(img.levels[0].rechunk((1, 16, 16)).compute(), VOLUME)
    assert {name for name, _ in reads} == {"/volumes/raw"}
    img.close()


def test_readers_pickle_by_path(hdf5_file, bigtiff_tiled, tiff_folder, zarr_v2_array):
    """Graphs travel to dask.distributed workers: file handles reopen by path."""
    import pickle

    for path in (hdf5_file, bigtiff_tiled, tiff_folder, zarr_v2_array):
        img = lp.open_image(path)
        np.asarray(img.levels[0][0])  # open the handle first
        clone = pickle.loads(pickle.dumps(img.levels[0]))
        np.testing.assert_array_equal(np.asarray(clone[3]), VOLUME[3])
        img.close()


@pytest.mark.parametrize("fixture", ["ome_tiff_pyramid", "ome_zarr_v05_channels"])
def test_coarsest_level_gives_contrast(request, fixture):
    img = lp.open_image(request.getfixturevalue(fixture))
    limits = sample_contrast_limits(img)
    assert len(limits) == 2  # one per channel
    if img.contrast_limits:
        assert limits == img.contrast_limits
    else:
        coarse = np.asarray(img.levels[-1])
        assert limits[0] == (float(coarse[0].min()), float(coarse[0].max()))

"""A file that is claimed but cannot be read gives one clear error naming the path and cause."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import tifffile
import zarr

import napari_lazyproc as lp
from napari_lazyproc.io import ImageReadError, find_format


def _error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    assert info.value.path == os.fspath(path)
    message = str(info.value)
    assert os.fspath(path) in message
    assert "\n" not in message
    return message


def test_truncated_tiff(tmp_path, volume):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, volume, tile=(32, 32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(path)


def test_tiff_with_garbage_header(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 64)
    assert "TIFF" in _error(path)


def test_zarr_json_that_is_not_json(tmp_path):
    path = tmp_path / "broken.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{ not json")
    assert "zarr.json is not valid JSON" in _error(path)


def test_ome_zarr_with_missing_level(tmp_path):
    path = tmp_path / "missing.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", shape=(4, 4), dtype="uint8")
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}, {"path": "1"}],
                                   "axes": [{"name": "y"}, {"name": "x"}]}]
    assert "multiscale dataset '1' is missing" in _error(path)


def test_hdf5_without_numeric_dataset(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=np.array([b"a", b"b"]))
        f.create_dataset("vector", data=np.arange(5))
    assert "no numeric dataset of 2 or more dimensions" in _error(path)


def test_hdf5_unknown_dataset_lists_the_others(hdf5_file):
    message = _error(hdf5_file, dataset="/nope")
    assert "'/nope'" in message and "/volumes/raw" in message


def test_not_really_hdf5(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_text("hello")
    assert "HDF5" in _error(path)


def test_missing_path(tmp_path):
    assert "no such file or directory" in _error(tmp_path / "nowhere.zarr")
    assert "no such file or directory" in _error(tmp_path / "nowhere.tif")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path, volume):
    path = tmp_path / "locked.tif"
    tifffile.imwrite(path, volume)
    path.chmod(0)
    assert "permission" in _error(path).lower()


def test_unknown_option_is_named(tiff_plain):
    assert "dataset" in _error(tiff_plain, dataset="x")


def test_tiff_folder_with_a_mismatched_file(tiff_folder, volume):
    odd = tiff_folder / "plane_t5.tif"
    tifffile.imwrite(odd, volume[5, :10, :10])
    img = lp.open_image(tiff_folder)  # opening reads the first file's metadata only
    np.asarray(img.levels[0][4])
    with pytest.raises(ImageReadError) as info:
        np.asarray(img.levels[0][5])
    assert info.value.path == str(odd)
    assert "differs from the first file" in str(info.value)


def test_files_not_claimed_are_not_claimed(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "empty_dir").mkdir()
    for p in ("notes.txt", "image.png", "empty_dir", "fake.file"):
        assert find_format(tmp_path / p) is None
    message = _error(tmp_path / "notes.txt")
    assert "not a zarr store, HDF5 / Imaris / BigDataViewer file, TIFF file" in message

"""zarrs decodes and encodes local zarr chunks where it can; values never change."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr

import napari_lazyproc as lp
from napari_lazyproc.io import _codecs
from napari_lazyproc.ops.engine._as_source import image_source

pytest.importorskip("zarrs")

DATA = np.random.default_rng(3).integers(0, 60000, (9, 40, 52), dtype=np.uint16)


def _write(path, **kwargs):
    arr = zarr.create_array(path, shape=DATA.shape, chunks=(4, 16, 16),
                            dtype=kwargs.pop("dtype", DATA.dtype), **kwargs)
    arr[:] = DATA
    return path


@pytest.mark.parametrize("kind", ["v3", "v2", "sharded", "big-endian v2"])
def test_local_arrays_read_through_zarrs_with_the_same_values(tmp_path, kind):
    options = {"v3": {}, "v2": {"zarr_format": 2},
               "sharded": {"shards": (8, 32, 32)},
               "big-endian v2": {"zarr_format": 2, "dtype": ">u2"}}[kind]
    path = _write(tmp_path / "a.zarr", **options)
    src = image_source(lp.open_image(path))
    # zarrs reads native byte order only: a big-endian array keeps zarr-python's pipeline
    assert _codecs.uses_zarrs(src.reader) == (kind != "big-endian v2")
    region = (slice(1, 8), slice(3, 39), slice(5, 50))
    np.testing.assert_array_equal(src.read(region), DATA[region])
    np.testing.assert_array_equal(np.asarray(lp.open_image(path).levels[0]), DATA)


def test_switched_off_every_array_keeps_zarr_pythons_pipeline(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.zarr")
    monkeypatch.setitem(_codecs._state, "enabled", False)
    src = image_source(lp.open_image(path))
    assert not _codecs.uses_zarrs(src.reader)
    np.testing.assert_array_equal(src.read((slice(0, 9), slice(0, 40), slice(0, 52))), DATA)


def test_fortran_ordered_v2_arrays_keep_zarr_pythons_pipeline(tmp_path):
    path = _write(tmp_path / "f.zarr", zarr_format=2, order="F")
    src = image_source(lp.open_image(path))
    assert not _codecs.uses_zarrs(src.reader)
    region = (slice(1, 8), slice(3, 39), slice(5, 50))
    np.testing.assert_array_equal(src.read(region), DATA[region])


def test_stores_zarrs_cannot_run_are_left_alone():
    arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(5,), dtype="int32")
    assert _codecs.fast_codecs(arr) is arr


@pytest.mark.parametrize("fmt", ["zarr", "ome-zarr"])
def test_exports_write_through_zarrs_and_read_back_with_zarr_python(tmp_path, monkeypatch,
                                                                   fmt):
    from napari_lazyproc.export import _chunks

    writers = []
    array = _chunks.ChunkJob.array

    def spy(self):
        arr = array(self)
        writers.append(_codecs.uses_zarrs(arr))
        return arr

    monkeypatch.setattr(_chunks.ChunkJob, "array", spy)
    res = lp.apply("gaussian", lp.open_image(_write(tmp_path / "a.zarr")), sigma=1.0)
    out = lp.export(res, tmp_path / f"o.{fmt}", format=fmt)
    assert writers and all(writers)
    monkeypatch.setitem(_codecs._state, "enabled", False)
    back = zarr.open_array(out if fmt == "zarr" else out / "0", mode="r")
    np.testing.assert_array_equal(back[:], ndi.gaussian_filter(DATA, 1.0))


def test_zarrs_os_errors_are_oserrors():
    with pytest.raises(OSError) as info, _codecs.os_errors():
        raise RuntimeError("failed to write chunk c/0/1: No space left on device (os error 28)")
    assert info.value.errno == errno.ENOSPC and "c/0/1" in str(info.value)  # zarrs' text kept
    with pytest.raises(RuntimeError, match="not a file error"), _codecs.os_errors():
        raise RuntimeError("not a file error")

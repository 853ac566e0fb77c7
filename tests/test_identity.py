"""One identity for data: the same bytes are one source however they are passed, and a
file changed on disk is never answered from what was cached of its old bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorstore as ts
import tifffile
import zarr
from conftest import VOLUME
from test_io_imaris import LEVELS as IMS_LEVELS
from test_io_imaris import write_ims
from test_io_n5 import SERIES as N5_SERIES
from test_io_n5 import write_bdv_n5

import napari_lazyproc as lp
from napari_lazyproc.export import ExportError
from napari_lazyproc.ops import CACHE, as_source

NEW = (VOLUME // 3 + 7).astype(VOLUME.dtype)  # same shape and dtype, other values


def _zarr_rewrite(path):
    zarr.open_array(path, mode="r+")[:] = NEW


def _ome_rewrite(path):
    first = lp.open_image(path).source["datasets"][0]
    zarr.open_array(path / first, mode="r+")[:] = NEW


def _hdf5_rewrite(path):
    """In another process, as an acquisition would (HDF5 refuses a second opening for
    writing in a process that has the file open)."""
    np.save(path.with_suffix(".npy"), NEW)
    code = ("import sys, h5py, numpy as np\n"
            "with h5py.File(sys.argv[1], 'r+') as f:\n"
            "    f['volumes/raw'][...] = np.load(sys.argv[2])\n")
    subprocess.run([sys.executable, "-c", code, str(path), str(path.with_suffix(".npy"))],
                   check=True, env={**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE"})


def _tiff_rewrite(path):
    tifffile.imwrite(path, NEW)


def _bigtiff_rewrite(path):
    tifffile.imwrite(path, NEW, bigtiff=True, tile=(32, 32), compression="zlib")


def _folder_rewrite(folder):
    for z in range(NEW.shape[0]):
        tifffile.imwrite(folder / f"plane_t{z}.tif", NEW[z], tile=(16, 16))


#: fixture -> (in-place rewrite of its level 0 with NEW, the image's level-0 key for a
#: plane, the plane's values after the rewrite)
FORMATS = {
    "zarr_v2_array": (_zarr_rewrite, (5,), NEW[5]),
    "zarr_v3_array": (_zarr_rewrite, (5,), NEW[5]),
    "zarr_v3_sharded": (_zarr_rewrite, (5,), NEW[5]),
    "ome_zarr_v04": (_ome_rewrite, (5,), NEW[5]),
    "hdf5_file": (_hdf5_rewrite, (5,), NEW[5]),
    "tiff_plain": (_tiff_rewrite, (5,), NEW[5]),
    "bigtiff_tiled": (_bigtiff_rewrite, (5,), NEW[5]),
    "tiff_folder": (_folder_rewrite, (5,), NEW[5]),
}


def _gaussian_plane(img, key):
    return np.asarray(lp.apply("gaussian", img, sigma=1.5, precision="exact")[key])


@pytest.mark.parametrize("fixture", sorted(FORMATS))
def test_a_file_rewritten_in_place_reads_new_values(fixture, request):
    """Image and result, through the image already open and through a new opening."""
    path = request.getfixturevalue(fixture)
    rewrite, key, expected = FORMATS[fixture]
    img = lp.open_image(path)
    old = np.asarray(img.levels[0][key])
    old_source = np.asarray(as_source(img)[key])
    _gaussian_plane(img, key)  # cached now: tiles and chunks of the old bytes
    rewrite(path)
    reference = ndi.gaussian_filter(NEW, 1.5)[key]
    assert not np.array_equal(old, expected)
    for image in (img, lp.open_image(path)):
        np.testing.assert_array_equal(np.asarray(image.levels[0][key]), expected)
        np.testing.assert_array_equal(np.asarray(as_source(image)[key]), expected)
        np.testing.assert_array_equal(_gaussian_plane(image, key), reference)
    assert not np.array_equal(old_source, expected)


def test_a_bdv_n5_rewritten_in_place_reads_new_values(tmp_path):
    root = write_bdv_n5(tmp_path / "dataset.n5")
    img = lp.open_image(root)
    key = (1, 0, 5)
    np.testing.assert_array_equal(np.asarray(as_source(img)[key]), N5_SERIES[1, 0, 5])
    _gaussian_plane(img, key)
    new = (N5_SERIES // 2 + 1).astype(N5_SERIES.dtype)
    for s in range(new.shape[1]):  # level 0 of every view, written over its blocks
        for t in range(new.shape[0]):
            where = root / f"setup{s}" / f"timepoint{t}" / "s0"
            store = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": str(where)}},
                            open=True).result()
            store.write(new[t, s].T).result()
    for image in (img, lp.open_image(root)):
        np.testing.assert_array_equal(np.asarray(as_source(image)[key]), new[1, 0, 5])
        expected = ndi.gaussian_filter(new[1, 0], 1.5)[5]
        np.testing.assert_array_equal(_gaussian_plane(image, key), expected)


def test_an_imaris_file_rewritten_reads_new_values(tmp_path):
    path = write_ims(tmp_path / "a.ims")
    img = lp.open_image(path)
    key = (0, 1, 3)
    np.testing.assert_array_equal(np.asarray(as_source(img)[key]), IMS_LEVELS[0][0, 1, 3])
    new = [(lvl // 2 + 1).astype(lvl.dtype) for lvl in IMS_LEVELS]
    write_ims(tmp_path / "saved.ims", levels=new)  # saved beside it, then moved over it
    os.replace(tmp_path / "saved.ims", path)
    for image in (img, lp.open_image(path)):
        np.testing.assert_array_equal(np.asarray(as_source(image)[key]), new[0][0, 1, 3])


def test_an_acquisition_filling_an_open_zarr_shows_each_frame(tmp_path):
    """Frames written while the image is open (and shown) appear; a frame not written yet
    reads as the fill value and is never cached as data."""
    path = tmp_path / "acq.zarr"
    arr = zarr.create_array(path, shape=(4, 32, 40), chunks=(1, 16, 16), dtype="uint16",
                            dimension_names=["t", "y", "x"])
    img = lp.open_image(path)
    result = lp.apply("gaussian", img, sigma=1.0, axes="yx")
    rng = np.random.default_rng(1)
    for t in range(4):
        assert not np.asarray(as_source(img)[t]).any()
        assert not np.asarray(result[t]).any()
        frame = rng.integers(1, 1000, (32, 40), dtype=np.uint16)
        arr[t] = frame
        np.testing.assert_array_equal(np.asarray(as_source(img)[t]), frame)
        np.testing.assert_array_equal(np.asarray(img.levels[0][t]), frame)
        np.testing.assert_array_equal(np.asarray(result[t]),
                                      ndi.gaussian_filter(frame, 1.0))


def test_global_statistics_follow_a_rewritten_input(zarr_v3_array):
    from skimage.filters import threshold_otsu

    img = lp.open_image(zarr_v3_array)
    result = lp.apply("threshold_otsu", img, precision="exact")
    np.testing.assert_array_equal(np.asarray(result[5]), VOLUME[5] > threshold_otsu(VOLUME))
    _zarr_rewrite(zarr_v3_array)
    np.testing.assert_array_equal(np.asarray(result[5]), NEW[5] > threshold_otsu(NEW))


# ----------------------------------------------------------------------------- one identity


def test_every_way_of_passing_a_zarr_is_one_source(zarr_v3_array):
    """A LazyImage, its dask level, zarr.open_array and da.from_zarr share one token, so
    one cache: what one of them read is not read again through another."""
    img = lp.open_image(zarr_v3_array)
    ways = [img, img.levels[0], zarr.open_array(zarr_v3_array, mode="r"),
            da.from_zarr(str(zarr_v3_array)), img.display_levels()[0]]
    sources = [as_source(w) for w in ways]
    assert len({s.token for s in sources}) == 1
    assert all(s.chunks == sources[0].chunks for s in sources)
    region = (slice(4, 8), slice(0, 64), slice(0, 80))
    np.testing.assert_array_equal(sources[0].read(region), VOLUME[region])
    misses = CACHE.misses
    for src in sources[1:]:
        np.testing.assert_array_equal(src.read(region), VOLUME[region])
    assert CACHE.misses == misses  # every chunk came from the cache
    # and results of any of them are one result
    assert len({lp.apply("gaussian", w, sigma=1.0).token for w in ways[:4]}) == 1


def test_a_raw_zarr_array_rewritten_gives_new_results(tmp_path):
    path = tmp_path / "raw.zarr"
    arr = zarr.create_array(path, shape=VOLUME.shape, chunks=(4, 32, 32), dtype=VOLUME.dtype)
    arr[:] = VOLUME
    result = lp.apply("gaussian", arr, sigma=1.0, precision="exact")
    np.testing.assert_array_equal(np.asarray(result[3]), ndi.gaussian_filter(VOLUME, 1.0)[3])
    arr[:] = NEW
    np.testing.assert_array_equal(np.asarray(result[3]), ndi.gaussian_filter(NEW, 1.0)[3])


def test_a_numpy_array_changed_in_place_gives_new_results():
    data = VOLUME.copy()
    result = lp.apply("gaussian", data, sigma=1.0, precision="exact")
    np.testing.assert_array_equal(np.asarray(result[3]), ndi.gaussian_filter(data, 1.0)[3])
    data[2:5] = 17
    np.testing.assert_array_equal(np.asarray(result[3]), ndi.gaussian_filter(data, 1.0)[3])


def test_precision_and_backend_are_part_of_a_result_identity(zarr_v3_array):
    """Operations with no fast kernel (a projection) still keep fast and exact apart, and
    a cache key names the backend that computed it (an exact read after a GPU read never
    gets the GPU's values)."""
    img = lp.open_image(zarr_v3_array)
    fast = lp.apply("project", img, axis="z", method="mean", precision="fast")
    exact = lp.apply("project", img, axis="z", method="mean", precision="exact")
    assert fast.op.fast is None and fast.token != exact.token
    region = (slice(0, 64), slice(0, 80))
    assert fast._key(region)[1] == "numpy"
    np.testing.assert_array_equal(np.asarray(exact), VOLUME.mean(axis=0))


# ----------------------------------------------------------------------------- exports


def test_an_export_never_writes_into_its_input_however_it_is_passed(tmp_path):
    path = tmp_path / "in.zarr"
    group = zarr.open_group(path, mode="w")
    arr = group.create_array("raw", shape=VOLUME.shape, chunks=(4, 32, 32), dtype=VOLUME.dtype)
    arr[:] = VOLUME
    for given in (arr, da.from_zarr(arr), lp.open_image(path).levels[0]):
        for target in (path, path / "raw", tmp_path):
            with pytest.raises(ExportError, match="exports never write into their input"):
                lp.export(lp.apply("gaussian", given, sigma=1.0), target, format="zarr",
                          overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(path / "raw")[:], VOLUME)


def test_resume_after_the_input_changed_is_refused_never_mixed(tmp_path):
    path = tmp_path / "in.zarr"
    arr = zarr.create_array(path, shape=(16, 128, 128), chunks=(2, 32, 32), dtype="uint16")
    data = np.random.default_rng(2).integers(0, 4000, arr.shape, dtype=np.uint16)
    arr[:] = data
    out = tmp_path / "out.zarr"
    cancel = threading.Event()

    def stop_half_way(done, total):
        if done >= total // 2:
            cancel.set()

    with pytest.raises(lp.ops.Cancelled):
        lp.export(lp.apply("median", lp.open_image(path), size=3), out, format="zarr",
                  progress=stop_half_way, cancel=cancel)
    arr[8:] = 0  # the input changes between the two halves
    with pytest.raises(ExportError, match="before its data changed"):
        lp.export(lp.apply("median", lp.open_image(path), size=3), out, format="zarr",
                  resume=True)
    assert not out.exists()
    done = lp.export(lp.apply("median", lp.open_image(path), size=3), out, format="zarr",
                     overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(done)[:], ndi.median_filter(arr[:], 3))


def test_a_layer_never_shows_a_plane_of_the_old_bytes(zarr_v3_array):
    """The display keeps the planes around the one on screen; after the file changes,
    each is computed again rather than shown from that memory."""
    from napari_lazyproc._live import live_levels

    img = lp.open_image(zarr_v3_array)
    raw = live_levels([as_source(img)])[0]
    result = live_levels(lp.apply("gaussian", img, sigma=1.0, precision="exact").levels)[0]
    for z in (4, 5, 6):
        np.asarray(raw[z]), np.asarray(result[z])
    _zarr_rewrite(zarr_v3_array)
    np.testing.assert_array_equal(np.asarray(raw[5]), NEW[5])
    np.testing.assert_array_equal(np.asarray(result[5]), ndi.gaussian_filter(NEW, 1.0)[5])


def test_an_input_written_during_its_export_never_looks_complete(tmp_path):
    path = tmp_path / "in.zarr"
    arr = zarr.create_array(path, shape=(16, 64, 64), chunks=(2, 32, 32), dtype="uint16")
    arr[:] = 100
    written = []

    def write_half_way(done, total):
        if done >= total // 2 and not written:
            arr[10:] = 7  # an acquisition writes while the export reads
            written.append(done)

    out = tmp_path / "out.zarr"
    with pytest.raises(ExportError, match="changed while it was exported"):
        lp.export(lp.apply("gaussian", lp.open_image(path), sigma=1.0), out, format="zarr",
                  progress=write_half_way)
    assert written and not out.exists()


@pytest.mark.parametrize("form", ["inline", "rechunk", "astype", "slice"])
def test_a_dask_array_derived_from_a_file_follows_it_and_guards_it(form, tmp_path):
    """Graphs built on a stored array (rechunked, cast, sliced) are stamped by the stores
    they read: a rewrite is seen, and an export never writes over them."""
    path = tmp_path / "in.zarr"
    arr = zarr.create_array(path, shape=VOLUME.shape, chunks=(4, 32, 32), dtype=VOLUME.dtype)
    arr[:] = VOLUME
    make = {"inline": lambda: da.from_zarr(str(path), inline_array=True),
            "rechunk": lambda: da.from_zarr(str(path)).rechunk((6, 64, 80)),
            "astype": lambda: da.from_zarr(str(path)).astype("float32"),
            "slice": lambda: lp.open_image(path).levels[0][2:10]}[form]
    key = 3
    first = np.asarray(lp.apply("gaussian", make(), sigma=1.0, precision="exact")[key])
    arr[:] = NEW
    again = np.asarray(lp.apply("gaussian", make(), sigma=1.0, precision="exact")[key])
    base = NEW[2:10] if form == "slice" else NEW
    np.testing.assert_allclose(again, ndi.gaussian_filter(base.astype(again.dtype), 1.0)[key],
                               rtol=0, atol=1e-3)
    assert not np.array_equal(first, again)
    with pytest.raises(ExportError, match="exports never write into their input"):
        lp.export(lp.apply("gaussian", make(), sigma=1.0), path, format="zarr",
                  overwrite=True)


def test_an_export_of_a_layer_s_data_never_writes_into_the_file_it_shows(zarr_v3_array):
    """A napari layer of a file holds display arrays (``LiveArray``) over its source: the
    export of a result of them knows the file behind."""
    from napari_lazyproc._live import live_levels

    layer_data = live_levels([as_source(lp.open_image(zarr_v3_array))])
    with pytest.raises(ExportError, match="exports never write into their input"):
        lp.export(lp.apply("gaussian", layer_data, sigma=1.0), zarr_v3_array, format="zarr",
                  overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(zarr_v3_array)[:], VOLUME)


# ----------------------------------------------------------------------------- review fixes


def test_stamps_keep_no_array_alive():
    import gc
    import weakref

    refs = []
    for _ in range(5):
        arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 64, 64), chunks=(4, 32, 32),
                                dtype="uint16")
        arr[:] = 1
        np.asarray(lp.apply("gaussian", arr, sigma=1.0)[2])
        refs.append(weakref.ref(arr))
        del arr
    CACHE.clear()
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_in_memory_stores_never_share_a_token():
    """A store's number, not its id(): Python reuses ids, so a new store could have
    answered with an old one's cached tiles."""
    seen = set()
    for value in range(20):
        arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 16, 16),
                                chunks=(2, 8, 8), dtype="uint16")
        arr[:] = value
        source = as_source(arr)
        assert source.token not in seen
        seen.add(source.token)
        result = lp.apply("gaussian", arr, sigma=1.0, precision="exact")
        assert np.asarray(result[1]).max() == value
        del arr, source, result


def test_a_chain_on_whole_input_values_is_cached_from_its_first_read(zarr_v3_array):
    img = lp.open_image(zarr_v3_array)
    res = lp.apply("gaussian", lp.apply("rescale", img), sigma=1.0)
    np.asarray(res[3])
    assert res.cached(3) is not None


def test_an_expensive_whole_input_check_due_is_never_answered_from_the_cache(
        zarr_v3_array, monkeypatch):
    """Where checking the whole input costs much, it is made at most every so often;
    once it is due, cached results of the values it guards (a chain on them too) miss,
    and the next read makes the check."""
    import time

    from napari_lazyproc.ops.engine import _whole_values

    monkeypatch.setattr(_whole_values, "RECHECK_COST", -1.0)  # every check counts as expensive
    monkeypatch.setattr(_whole_values, "RECHECK_EVERY", 0.05)
    from skimage.filters import threshold_otsu

    img = lp.open_image(zarr_v3_array)
    otsu = lp.apply("threshold_otsu", img, precision="exact")
    res = lp.apply("gaussian", otsu, sigma=1.0)
    np.asarray(res[0])
    zarr.open_array(zarr_v3_array, mode="r+")[6:] = NEW[6:]  # outside plane 0's reach
    time.sleep(0.2)
    assert res.cached(0) is None and otsu.cached(0) is None
    truth = np.concatenate([VOLUME[:6], NEW[6:]])
    np.testing.assert_array_equal(np.asarray(otsu[0]), truth[0] > threshold_otsu(truth))


def test_reads_through_a_tiff_handle_survive_its_file_changing(tiff_plain):
    """A handle on old bytes is let go, not closed under the threads reading it."""
    import time

    reader = lp.open_image(tiff_plain).sources[0]
    errors, stop = [], threading.Event()

    def work():
        rng = np.random.default_rng()
        while not stop.is_set():
            try:
                reader[int(rng.integers(0, VOLUME.shape[0]))]
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(60):
        os.utime(tiff_plain, None)  # a new stamp: every handle goes stale
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_a_zarr_resized_since_it_was_given_is_read_as_given(tmp_path):
    path = tmp_path / "grow.zarr"
    arr = zarr.create_array(path, shape=(4, 16, 16), chunks=(1, 16, 16), dtype="uint16")
    arr[:] = 3
    given = zarr.open_array(path, mode="r")
    arr.resize((8, 16, 16))  # an acquisition grows the array on disk
    source = as_source(given)
    assert source.shape == (4, 16, 16) == tuple(source.reader.shape)
    np.testing.assert_array_equal(np.asarray(lp.apply("gaussian", given, sigma=1.0)[3]),
                                  np.full((16, 16), 3))

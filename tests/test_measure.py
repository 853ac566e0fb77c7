"""``measure``: scikit-image's regionprops_table, chunk by chunk, each chunk read once."""

from __future__ import annotations

import json
import threading

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from conftest import write_zarr
from skimage.measure import regionprops_table

import napari_lazyproc as lp
from napari_lazyproc.measure import PROPERTIES, save_table

RNG = np.random.default_rng(11)
#: objects much larger than the chunks below: each spans many chunks
MASK3 = ndi.gaussian_filter(RNG.random((30, 80, 90)), 4) > 0.505
LABELS3 = ndi.label(MASK3)[0].astype(np.uint32)
IMAGE3 = RNG.integers(0, 4000, LABELS3.shape).astype(np.uint16)
MASK2 = ndi.gaussian_filter(RNG.random((150, 170)), 5) > 0.5
LABELS2 = ndi.label(MASK2)[0].astype(np.int32)
IMAGE2 = RNG.normal(100, 20, LABELS2.shape)  # float64

COMMON = ("label", "area", "num_pixels", "bbox", "area_bbox", "extent", "centroid",
          "centroid_local", "inertia_tensor", "inertia_tensor_eigvals", "axis_major_length",
          "axis_minor_length", "equivalent_diameter_area")
INTENSITY = ("intensity_mean", "intensity_std", "intensity_min", "intensity_max",
             "centroid_weighted", "centroid_weighted_local")
EXACT = ("label", "area", "num_pixels", "bbox", "area_bbox", "intensity_min", "intensity_max")


def assert_like_skimage(ours, ref: dict) -> None:
    """Exactly equal counts, boxes, minima and maxima; the rest within 1e-9 relative to
    the column's largest magnitude (axis lengths on their squares: the square root of a
    near-zero value, a flat object's, magnifies rounding that both sides have;
    orientation modulo pi, where the sign of a zero covariance picks +-pi/2)."""
    assert list(ours.columns) == list(ref)
    assert len(ours) == len(ref["label"]) > 3
    for name, expected in ref.items():
        got, expected = ours[name].to_numpy(), np.asarray(expected)
        if name in EXACT or name.startswith("bbox"):
            np.testing.assert_array_equal(got, expected, err_msg=name)
            continue
        if name.startswith("axis_"):
            got, expected = got**2, expected**2
        if name == "orientation":  # an angle modulo pi: +-pi/2 is one orientation
            got = expected + (got - expected + np.pi / 2) % np.pi - np.pi / 2
        scale = np.abs(expected).max() or 1.0
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * scale, err_msg=name)


@pytest.fixture
def labels3_zarr(tmp_path):
    return zarr.open_array(write_zarr(tmp_path / "labels.zarr", LABELS3, (7, 16, 19)))


@pytest.fixture
def image3_zarr(tmp_path):
    return zarr.open_array(write_zarr(tmp_path / "image.zarr", IMAGE3, (7, 16, 19)))


def test_3d_equals_regionprops_table_on_objects_spanning_many_chunks(labels3_zarr,
                                                                     image3_zarr):
    props = COMMON + INTENSITY
    ours = lp.measure(labels3_zarr, image3_zarr, props)
    assert_like_skimage(ours, regionprops_table(LABELS3, IMAGE3, properties=props))
    # the objects do span many chunks: the largest box covers several along every axis
    extent = (ours[["bbox-3", "bbox-4", "bbox-5"]].to_numpy()
              - ours[["bbox-0", "bbox-1", "bbox-2"]].to_numpy()).max(axis=0)
    assert (extent > 2 * np.array([7, 16, 19])).all()


def test_2d_with_float_intensity_and_spacing_on_a_dask_array():
    props = COMMON + INTENSITY + ("eccentricity", "orientation")
    spacing = (0.4, 1.3)
    ours = lp.measure(da.from_array(LABELS2, chunks=(23, 31)),
                      da.from_array(IMAGE2, chunks=(23, 31)), props, spacing=spacing)
    ref = regionprops_table(LABELS2, IMAGE2, properties=props, spacing=spacing)
    assert_like_skimage(ours, ref)
    assert ours.attrs["spacing"] == list(spacing)


def test_physical_units_come_from_the_image_and_are_said(tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    path = tmp_path / "cells.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    write_image(LABELS3, group, axes="zyx", fmt=FormatV04(), scale_factors=[],
                scale={"z": 2.0, "y": 0.5, "x": 0.5},
                axes_units={a: "micrometer" for a in "zyx"},
                storage_options={"chunks": (8, 32, 32)})
    img = lp.open_image(path)
    ours = lp.measure(img, None, ("label", "area", "centroid", "bbox", "axis_major_length"))
    ref = regionprops_table(LABELS3, properties=("label", "area", "centroid", "bbox",
                                                 "axis_major_length"),
                            spacing=(2.0, 0.5, 0.5))
    assert_like_skimage(ours, ref)
    units = ours.attrs["units"]
    assert units["area"] == "micrometer**3" and units["centroid-0"] == "micrometer"
    assert units["axis_major_length"] == "micrometer" and units["bbox-0"] == "pixel"
    assert "label" not in units
    plain = lp.measure(LABELS3, properties=("area",))  # no units: pixels
    assert plain.attrs["units"]["area"] == "pixel**3"


def test_time_series_is_measured_per_time_point():
    series = np.stack([LABELS3[:, :40], LABELS3[:, 40:]])  # label 5 may be in both
    image = np.stack([IMAGE3[:, :40], IMAGE3[:, 40:]])
    props = ("label", "area", "centroid", "bbox", "intensity_mean")
    ours = lp.measure(da.from_array(series, chunks=(1, 7, 16, 19)), image, props,
                      data_axes="tzyx")
    assert list(ours.columns[:2]) == ["t", "label"]
    assert ours.attrs["axes"] == "zyx"
    for t in range(2):
        ref = regionprops_table(series[t], image[t], properties=props)
        assert_like_skimage(ours[ours.t == t].drop(columns="t").reset_index(drop=True), ref)
    keys = list(zip(ours.t, ours.label, strict=True))
    assert keys == sorted(keys)


def test_global_labels_job_is_run_and_measured(tmp_path):
    path = write_zarr(tmp_path / "mask.zarr", MASK3.astype(np.uint8), (8, 20, 20))
    job = lp.label_global(lp.open_image(path))
    seen = []
    ours = lp.measure(job, IMAGE3, ("label", "area", "centroid", "intensity_mean"),
                      progress=lambda done, total: seen.append((done, total)))
    assert job.done and len(ours) == job.n_labels == LABELS3.max()
    expected = np.asarray(job)  # the same labels as scipy's, up to a permutation
    assert_like_skimage(ours, regionprops_table(expected, IMAGE3, properties=(
        "label", "area", "centroid", "intensity_mean")))
    assert seen[-1][0] == seen[-1][1]


def test_per_frame_labels_lazy_result():
    mask = np.stack([MASK3, MASK3[::-1]])
    labels = lp.apply("label", mask, axes="zyx", data_axes="tzyx")
    ours = lp.measure(labels, properties=("label", "area", "bbox"))
    for t in range(2):
        ref = regionprops_table(ndi.label(mask[t])[0], properties=("label", "area", "bbox"))
        assert_like_skimage(ours[ours.t == t].drop(columns="t").reset_index(drop=True), ref)


def test_each_chunk_is_read_once(tmp_path, zarr_reads):
    write_zarr(tmp_path / "l.zarr", LABELS3, (7, 16, 19))
    write_zarr(tmp_path / "i.zarr", IMAGE3, (7, 16, 19))
    labels = lp.open_image(tmp_path / "l.zarr")
    image = lp.open_image(tmp_path / "i.zarr")
    zarr_reads.keys.clear()
    zarr_reads.by_store.clear()
    lp.measure(labels, image, ("label", "area", "intensity_mean"))
    chunks = [k for k in zarr_reads.by_store.elements() if "/c/" in k[1] or k[1].startswith("c/")]
    n_chunks = 5 * 5 * 5  # ceil(30/7) x ceil(80/16) x ceil(90/19), per array
    assert len(set(chunks)) == 2 * n_chunks
    assert max(zarr_reads.by_store[k] for k in set(chunks)) == 1


class CountingSource:
    """A label image that counts the regions read (the ``Source`` protocol)."""

    def __init__(self, data: np.ndarray, block) -> None:
        self.data = data
        self.shape, self.dtype = data.shape, data.dtype
        self.chunks = tuple(
            tuple(min(b, n - i) for i in range(0, n, b))
            for n, b in zip(data.shape, block, strict=True))
        self.token, self.axes = "counting", "zyx"
        self.scale, self.units, self.steps = (1.0,) * 3, (None,) * 3, []
        self.reads: list = []
        self.lock = threading.Lock()

    def read(self, region, cancel=None):
        with self.lock:
            self.reads.append(tuple((s.start, s.stop) for s in region))
        return self.data[region]


def test_regions_are_whole_chunks_joined_and_never_read_twice():
    source = CountingSource(LABELS3, (5, 10, 90))
    ours = lp.measure(source, properties=("label", "area"))
    assert_like_skimage(ours, regionprops_table(LABELS3, properties=("label", "area")))
    assert len(source.reads) == len(set(source.reads))
    covered = np.zeros(LABELS3.shape, int)
    for region in source.reads:
        covered[tuple(slice(a, b) for a, b in region)] += 1
        assert region[0][0] % 5 == 0 and region[1][0] % 10 == 0  # chunk boundaries
    assert (covered == 1).all()


def test_cancel_stops_the_job(monkeypatch):
    from napari_lazyproc.measure import _measure

    monkeypatch.setattr(_measure, "REGION_VOXELS", 80 * 90)  # a region per plane
    cancel = threading.Event()
    source = CountingSource(np.tile(LABELS3, (4, 1, 1)), (1, 80, 90))
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(lp.Cancelled):
        lp.measure(source, properties=("label", "area"), progress=progress, cancel=cancel)
    assert len(source.reads) < 40


def test_unsupported_property_names_it_and_lists_the_supported():
    with pytest.raises(ValueError) as err:
        lp.measure(LABELS2, properties=("area", "perimeter", "solidity"))
    message = str(err.value)
    assert "'perimeter', 'solidity'" in message
    for name in PROPERTIES:
        assert name in message
    with pytest.raises(ValueError, match="intensity_mean need an intensity image"):
        lp.measure(LABELS2, properties=("intensity_mean",))
    with pytest.raises(ValueError, match="eccentricity is defined for 2D"):
        lp.measure(LABELS3, properties=("eccentricity",))
    with pytest.raises(ValueError, match="same"):
        lp.measure(LABELS2, IMAGE2[:10])
    with pytest.raises(ValueError, match="integers"):
        lp.measure(IMAGE2)
    job = lp.label_global(MASK3)
    with pytest.raises(ValueError, match="perimeter"):  # told before the job runs
        lp.measure(job, properties=("perimeter",))
    assert not job.done


def test_memory_is_bounded_by_the_labels_not_the_volume(monkeypatch):
    import tracemalloc

    from napari_lazyproc.measure import _measure

    monkeypatch.setattr(_measure, "REGION_VOXELS", 2**16)  # regions far smaller than this

    shape = (64, 256, 256)  # 4 Mvox of labels, objects in every chunk
    labels = da.from_array(ndi.label(MASK3)[0].astype(np.uint32), chunks=(8, 40, 45))
    big = da.tile(labels, (2, 3, 3))[: shape[0], : shape[1], : shape[2]]
    tracemalloc.start()
    # (the chunk cache, bounded by cache_bytes, is held empty to count the job alone)
    table = lp.measure(big, properties=("label", "area", "centroid", "bbox"), cache_bytes=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(table) > 10
    assert peak < 0.25 * np.prod(shape) * 4  # a quarter of the labels' size in memory


def test_empty_labels_give_an_empty_table():
    table = lp.measure(np.zeros((10, 12), np.uint16), properties=("label", "area", "centroid"))
    assert list(table.columns) == ["label", "area", "centroid-0", "centroid-1"]
    assert len(table) == 0


def test_save_csv_and_parquet(tmp_path):
    import pandas as pd

    table = lp.measure(LABELS2, IMAGE2, ("label", "area", "intensity_mean"), spacing=0.5,
                       unit="micrometer")
    csv = save_table(table, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(pd.read_csv(csv), table, check_dtype=False)
    units = json.loads((tmp_path / "t.csv.units.json").read_text())
    assert units["units"] == {"area": "micrometer**2"} and units["spacing"] == [0.5, 0.5]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs pyarrow"):
            save_table(table, tmp_path / "t.parquet")
    else:
        back = pd.read_parquet(save_table(table, tmp_path / "t.parquet"))
        pd.testing.assert_frame_equal(back, table)
    with pytest.raises(ValueError, match=".csv or .parquet"):
        save_table(table, tmp_path / "t.xlsx")


@pytest.mark.slow
def test_on_a_local_dask_cluster_as_export(labels3_zarr, image3_zarr):
    props = ("label", "area", "centroid", "bbox", "intensity_mean", "inertia_tensor")
    ours = lp.measure(labels3_zarr, image3_zarr, props, workers=2)
    assert_like_skimage(ours, regionprops_table(LABELS3, IMAGE3, properties=props))

"""Fixtures that write real files with the libraries that write them in the wild."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import background
import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
import zarr
from skimage import filters, morphology

RNG = np.random.default_rng(42)
VOLUME = RNG.integers(0, 4000, size=(12, 64, 80), dtype=np.uint16)
"""A (z, y, x) volume shared by the single-volume fixtures."""

UM = "micrometer"


def pytest_collection_modifyitems(items) -> None:
    background.order(items)  # the tests that wait for a background run go last


def pytest_collection_finish(session) -> None:
    # peers' suites run meanwhile (tests/background.py); not for a listing, nor in an
    # xdist worker (each would run them: ``background.result`` runs them when needed)
    if not session.config.option.collectonly and not hasattr(session.config, "workerinput"):
        background.start(session.items)


def pytest_sessionfinish(session) -> None:
    background.stop()


@pytest.fixture
def volume() -> np.ndarray:
    return VOLUME


def write_zarr(path: Path, data: np.ndarray, chunks, **kwargs) -> Path:
    """A zarr array at ``path`` holding ``data`` (zarr v3 unless ``zarr_format=2``)."""
    zarr.create_array(path, shape=data.shape, chunks=chunks, dtype=data.dtype, **kwargs)[:] = data
    return path


@pytest.fixture
def zarr_v2_array(tmp_path) -> Path:
    return write_zarr(tmp_path / "v2.zarr", VOLUME, (4, 32, 32), zarr_format=2)


@pytest.fixture
def zarr_v3_array(tmp_path) -> Path:
    return write_zarr(tmp_path / "v3.zarr", VOLUME, (4, 32, 32), dimension_names=["z", "y", "x"])


@pytest.fixture
def zarr_v3_sharded(tmp_path) -> Path:
    path = tmp_path / "sharded.zarr"
    arr = zarr.create_array(path, shape=VOLUME.shape, chunks=(2, 16, 16), shards=(4, 32, 80),
                            dtype=VOLUME.dtype)
    arr[:] = VOLUME
    return path


@pytest.fixture
def zarr_v2_consolidated_pyramid(tmp_path) -> Path:
    """A plain group of arrays whose shapes form a pyramid, with consolidated metadata."""
    path = tmp_path / "pyramid.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    for i, data in enumerate((VOLUME, VOLUME[:, ::2, ::2], VOLUME[:, ::4, ::4])):
        group.create_array(str(i), shape=data.shape, chunks=(4, 16, 16),
                           dtype=data.dtype)[:] = data
    zarr.consolidate_metadata(path)
    return path


@pytest.fixture
def zarr_group_mixed(tmp_path) -> Path:
    """A plain group whose arrays do not form a pyramid: the largest one opens."""
    path = tmp_path / "mixed.zarr"
    group = zarr.open_group(path, mode="w")
    group.create_array("raw", shape=VOLUME.shape, chunks=(4, 32, 32),
                       dtype=VOLUME.dtype)[:] = VOLUME
    group.create_array("mask", shape=(5, 5), dtype="uint8")[:] = 1
    group.create_array("other", shape=(40, 90), dtype="float32")[:] = 0.5
    return path


def _write_ome(path: Path, data: np.ndarray, fmt, channels: bool) -> Path:
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = {"0.4": FormatV04(), "0.5": FormatV05()}[fmt]
    group = zarr.open_group(path, mode="w", zarr_format=3 if fmt.version == "0.5" else 2)
    axes = "czyx" if channels else "zyx"
    extra = {}
    if channels:
        extra["omero"] = {"channels": [
            {"label": "DAPI", "color": "0000FF",
             "window": {"start": 10, "end": 900, "min": 0, "max": 4000}},
            {"label": "GFP", "color": "00FF00",
             "window": {"start": 20, "end": 3000, "min": 0, "max": 4000}},
        ]}
    write_image(
        data, group, axes=axes, scale_factors=[2, 4], fmt=fmt,
        scale={"z": 2.0, "y": 0.5, "x": 0.5}, axes_units={a: UM for a in "zyx"},
        storage_options={"chunks": (1, 4, 32, 32) if channels else (4, 32, 32)},
        **extra,
    )
    labels = (VOLUME > 3000).astype("uint32")
    write_labels(labels, group, name="cells", axes="zyx", fmt=fmt, scale_factors=[2],
                 scale={"z": 2.0, "y": 0.5, "x": 0.5}, axes_units={a: UM for a in "zyx"})
    return path


SERIES = np.random.default_rng(3).integers(0, 4000, size=(2, 16, 64, 80), dtype=np.uint16)
"""A (t, z, y, x) series for the pyramid fixture."""


@pytest.fixture
def ome_pyramid(tmp_path) -> Path:
    """A tzyx OME-Zarr 0.4 pyramid of 3 levels (1, 2 and 4 times coarser in y and x; z
    kept, as light-sheet pyramids do), anisotropic, written by ome-zarr-py."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    path = tmp_path / "series.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    write_image(SERIES, group, axes="tzyx", scale_factors=[2, 4], fmt=FormatV04(),
                scale={"t": 1.0, "z": 2.0, "y": 0.5, "x": 0.5},
                axes_units={"t": "second", "z": UM, "y": UM, "x": UM},
                storage_options={"chunks": (1, 4, 16, 16)})
    return path


@pytest.fixture
def ome_pyramid_levels(ome_pyramid) -> list[np.ndarray]:
    """The stored levels of ``ome_pyramid`` as numpy arrays, read with zarr itself."""
    return [np.asarray(zarr.open_array(ome_pyramid / f"s{k}", mode="r")) for k in range(3)]


@pytest.fixture
def ome_zarr_v04(tmp_path) -> Path:
    return _write_ome(tmp_path / "image.ome.zarr", VOLUME, "0.4", channels=False)


@pytest.fixture
def ome_zarr_v05_channels(tmp_path) -> Path:
    data = np.stack([VOLUME, VOLUME // 2])
    return _write_ome(tmp_path / "channels.ome.zarr", data, "0.5", channels=True)


@pytest.fixture
def tiff_plain(tmp_path) -> Path:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, VOLUME)
    return path


@pytest.fixture
def bigtiff_tiled(tmp_path) -> Path:
    path = tmp_path / "tiled.btf"
    tifffile.imwrite(path, VOLUME, bigtiff=True, tile=(32, 32), compression="zlib")
    return path


@pytest.fixture
def ome_tiff_pyramid(tmp_path) -> Path:
    """OME-TIFF (czyx, two channels) with two sub-IFD pyramid levels and physical sizes."""
    path = tmp_path / "pyramid.ome.tif"
    data = np.stack([VOLUME, VOLUME // 2])
    meta = {
        "axes": "CZYX",
        "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.25, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 1.5, "PhysicalSizeZUnit": "µm",
        "Channel": {"Name": ["DAPI", "GFP"]},
    }
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tif:
        tif.write(data, subifds=2, tile=(32, 32), metadata=meta, compression="zlib")
        for factor in (2, 4):
            tif.write(data[..., ::factor, ::factor], subfiletype=1, tile=(16, 16),
                      compression="zlib")
    return path


@pytest.fixture
def imagej_hyperstack(tmp_path) -> Path:
    """ImageJ hyperstack (t, z, c, y, x) with pixel size and z spacing."""
    path = tmp_path / "hyperstack.tif"
    data = RNG.integers(0, 255, size=(3, 4, 2, 32, 40), dtype=np.uint8)
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / 0.3, 1 / 0.3),
        metadata={"axes": "TZCYX", "spacing": 2.5, "unit": "um", "finterval": 10.0},
    )
    return path


@pytest.fixture
def hdf5_file(tmp_path) -> Path:
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("volumes/raw", data=VOLUME, chunks=(2, 32, 40), compression="gzip")
        d.attrs["element_size_um"] = [2.0, 0.5, 0.5]
        f.create_dataset("volumes/small", data=VOLUME[:2, :10, :10])
        f.create_dataset("table", data=np.arange(10))  # 1-D: not an image
        f.create_dataset("names", data=np.array([b"a", b"b"]))  # not numeric
    return path


@pytest.fixture
def bdv_file(tmp_path) -> Path:
    """BigDataViewer layout: 3 timepoints, 2 setups, 2 levels, plus the XML with voxel size."""
    path = tmp_path / "dataset.h5"
    with h5py.File(path, "w") as f:
        for s in range(2):
            f.create_dataset(f"s{s:02d}/resolutions", data=np.array([[1, 1, 1], [2, 2, 1]], float))
            f.create_dataset(f"s{s:02d}/subdivisions", data=np.array([[32, 32, 4], [16, 16, 4]]))
        for t in range(3):
            for s in range(2):
                base = (VOLUME + t * 10 + s).astype(np.int16)
                f.create_dataset(f"t{t:05d}/s{s:02d}/0/cells", data=base, chunks=(4, 32, 32))
                f.create_dataset(f"t{t:05d}/s{s:02d}/1/cells", data=base[:, ::2, ::2],
                                 chunks=(4, 16, 16))
    xml = textwrap.dedent("""\
        <SpimData version="0.2"><SequenceDescription><ViewSetups>
        <ViewSetup><id>0</id>
        <voxelSize><unit>µm</unit><size>0.4 0.4 2.0</size></voxelSize></ViewSetup>
        </ViewSetups></SequenceDescription></SpimData>""")
    path.with_suffix(".xml").write_text(xml)
    return path


@pytest.fixture
def tiff_folder(tmp_path) -> Path:
    """One 2-D TIFF per plane, named so that plain sorting would put t10 before t2."""
    folder = tmp_path / "planes"
    folder.mkdir()
    for z in range(VOLUME.shape[0]):
        tifffile.imwrite(folder / f"plane_t{z}.tif", VOLUME[z], tile=(16, 16))
    (folder / "notes.txt").write_text("not an image")
    return folder


class ReadCounter:
    """Counts real chunk reads by wrapping the store's (or file's) read method."""

    def __init__(self) -> None:
        self.keys: Counter = Counter()
        self.by_store: Counter = Counter()  # (store root, key)

    def chunk_keys(self) -> list[str]:
        meta = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")
        return [k for k in self.keys.elements() if not k.endswith(meta)]


@pytest.fixture
def exact_precision():
    """Results made during the test are bitwise scipy (``set_precision("exact")``), for
    tests that compare values with ``assert_array_equal``; the fast kernels' contract is
    tested on every operation in test_ops_exact.py."""
    from napari_lazyproc.ops import set_precision

    set_precision("exact")
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty chunk cache, so read counts are its own, with
    nothing said yet by the once-per-process notes (a preview's caveat), and with nothing
    held in the prefetch budget (a live state that no viewer held, left playing by a
    previous test, would keep its frames ahead reserved)."""
    from napari_lazyproc._live._prefetch import PREFETCH
    from napari_lazyproc.ops import CACHE, get_precision, set_precision
    from napari_lazyproc.ops.engine import _levels

    CACHE.clear()
    _levels._said.clear()
    PREFETCH.reset()
    precision = get_precision()
    yield
    CACHE.clear()
    set_precision(precision)


def _count_gets(monkeypatch, store_class) -> ReadCounter:
    """Wrap ``store_class.get`` so every key read (and from which store) is counted."""
    counter = ReadCounter()
    original = store_class.get

    async def counting_get(self, key, *args, **kwargs):
        counter.keys[key] += 1
        counter.by_store[(str(getattr(self, "root", "")), key)] += 1
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(store_class, "get", counting_get)
    return counter


@pytest.fixture
def zarr_reads(monkeypatch) -> ReadCounter:
    """Every key read from a local zarr store (zarr.storage.LocalStore.get). zarrs, which
    reads the files itself, is off meanwhile: zarr-python reads the same chunks for the
    same selections (test_codecs.py checks that both give the same values)."""
    from zarr.storage import LocalStore

    from napari_lazyproc.io import _codecs

    monkeypatch.setitem(_codecs._state, "enabled", False)
    return _count_gets(monkeypatch, LocalStore)


@pytest.fixture
def tiff_reads(monkeypatch) -> ReadCounter:
    """Every chunk key decoded from a TIFF through tifffile's zarr store."""
    from tifffile.zarr import ZarrTiffStore

    return _count_gets(monkeypatch, ZarrTiffStore)


# ------------------------------------------------------------------ operation cases

F32 = np.float32


def as_f(a):
    """What the edge filters compute in by default: floats as they are, others float32."""
    return a if a.dtype.kind == "f" else a.astype(F32)


def ball(r, ndim=3):
    """scikit-image's ball or disk footprint."""
    return morphology.ball(r) if ndim == 3 else morphology.disk(r)


def quantile_mask(a):
    """The brightest 40 % of ``a``."""
    return a > np.percentile(a, 60)


def per_frame(fn, a, nframe_axes):
    """``fn`` on each block of the last axes, after ``nframe_axes`` leading ones."""
    out = None
    for idx in np.ndindex(*a.shape[:nframe_axes]):
        r = fn(a[idx])
        if out is None:
            out = np.empty(a.shape, r.dtype)
        out[idx] = r
    return out


#: op name -> (params, reference on a whole spatial block), for every registered operation
OP_CASES = {
    "gaussian": ({"sigma": 1.5}, lambda a: ndi.gaussian_filter(a, 1.5)),
    "median": ({"size": 3}, lambda a: ndi.median_filter(a, size=3)),
    "uniform": ({"size": 4}, lambda a: ndi.uniform_filter(a, size=4)),
    "minimum": (
        {"size": 3, "mode": "constant", "cval": 7},
        lambda a: ndi.minimum_filter(a, size=3, mode="constant", cval=7),
    ),
    "maximum": ({"size": 5}, lambda a: ndi.maximum_filter(a, size=5)),
    "percentile": (
        {"percentile": 25, "size": 3},
        lambda a: ndi.percentile_filter(a, 25, size=3),
    ),
    "sobel": ({"axis": "y"}, lambda a: ndi.sobel(as_f(a), axis=a.ndim - 2)),
    "prewitt": (
        {},
        lambda a: np.sqrt(sum(ndi.prewitt(as_f(a), axis=i) ** 2 for i in range(a.ndim))),
    ),
    "laplace": ({"mode": "nearest"}, lambda a: ndi.laplace(as_f(a), mode="nearest")),
    "gaussian_laplace": ({"sigma": 1.0}, lambda a: ndi.gaussian_laplace(as_f(a), 1.0)),
    "gaussian_gradient_magnitude": (
        {"sigma": 1.2},
        lambda a: ndi.gaussian_gradient_magnitude(as_f(a), 1.2),
    ),
    "difference_of_gaussians": (
        {"low_sigma": 1, "high_sigma": 2},
        lambda a: (
            ndi.gaussian_filter(as_f(a), 1, mode="nearest")
            - ndi.gaussian_filter(as_f(a), 2, mode="nearest")
        ),
    ),
    "erosion": ({"radius": 1}, lambda a: ndi.grey_erosion(a, footprint=ball(1, a.ndim))),
    "dilation": ({"radius": 2, "footprint": "box"}, lambda a: ndi.grey_dilation(a, size=5)),
    "opening": ({"radius": 1}, lambda a: ndi.grey_opening(a, footprint=ball(1, a.ndim))),
    "closing": ({"radius": 1}, lambda a: ndi.grey_closing(a, footprint=ball(1, a.ndim))),
    "white_tophat": ({"radius": 2}, lambda a: morphology.white_tophat(a, ball(2, a.ndim))),
    "black_tophat": ({"radius": 1}, lambda a: morphology.black_tophat(a, ball(1, a.ndim))),
    "binary_erosion": (
        {"radius": 1},
        lambda a: ndi.binary_erosion(a != 0, structure=ball(1, a.ndim)),
    ),
    "binary_dilation": (
        {"radius": 1},
        lambda a: ndi.binary_dilation(a != 0, structure=ball(1, a.ndim)),
    ),
    "binary_opening": (
        {"radius": 1},
        lambda a: ndi.binary_opening(a != 0, structure=ball(1, a.ndim)),
    ),
    "binary_closing": (
        {"radius": 1, "footprint": "box"},
        lambda a: ndi.binary_closing(a != 0, structure=np.ones((3,) * a.ndim)),
    ),
    "morphological_gradient": (
        {"size": 2}, lambda a: ndi.morphological_gradient(a, size=2)),
    "morphological_laplace": (
        {"radius": 1, "footprint": "box"}, lambda a: ndi.morphological_laplace(a, size=3)),
    "binary_hit_or_miss": (
        {}, lambda a: ndi.binary_hit_or_miss(a != 0, ball(1, a.ndim))),
    "fill_holes": ({}, lambda a: ndi.binary_fill_holes(a != 0)),
    "threshold": ({"value": 100}, lambda a: a > 100),
    "threshold_otsu": ({"sample": "exact"}, lambda a: a > filters.threshold_otsu(a)),
    "threshold_li": ({"sample": "exact"}, lambda a: a > filters.threshold_li(a)),
    "threshold_triangle": ({"sample": "exact"}, lambda a: a > filters.threshold_triangle(a)),
    "threshold_local": (
        {"block_size": 5, "offset": 2},
        lambda a: a > filters.threshold_local(a, 5, offset=2),
    ),
    "rescale": (
        {"in_low": 10, "in_high": 200, "out_dtype": "uint8"},
        lambda a: np.rint(
            np.clip((a.astype(np.float64) - 10) / 190, 0, 1) * 255
        ).astype(np.uint8),
    ),
    "convert_dtype": (
        {"dtype": "uint8"},
        lambda a: np.clip(np.rint(a) if a.dtype.kind == "f" else a, 0, 255).astype(np.uint8),
    ),
    "label": ({"connectivity": 1}, lambda a: ndi.label(a != 0)[0]),
    "shift_frames": (
        {"shifts": [[0, 1.5, -0.75, 2.25]]},
        lambda a: ndi.shift(a, (1.5, -0.75, 2.25), order=1, mode="constant"),
    ),
}

# a projection changes the shape (z removed): the reference is numpy on the whole array,
# and tests that index a result index it on the axes it keeps (``result.axes``)
OP_CASES["project"] = ({"axis": "z", "method": "std"}, lambda a: np.std(a, axis=0))

# user kernels (ops/_generic.py): 3-D kernels for the 3-D cases, of uneven sizes, with
# origins that shift the window (so the halo is not symmetric), weights summing under 1
_WEIGHTS = np.random.default_rng(17).random((3, 2, 4)) / 12
_WINDOW = np.random.default_rng(18).random((2, 3, 3)) > 0.4
OP_CASES["convolve"] = (
    {"weights": _WEIGHTS.tolist(), "mode": "mirror", "origin": [1, 0, -2]},
    lambda a: ndi.convolve(a, _WEIGHTS, mode="mirror", origin=[1, 0, -2]),
)
OP_CASES["correlate"] = (
    {"weights": _WEIGHTS.tolist(), "mode": "constant", "cval": 5, "origin": [-1, -1, 1]},
    lambda a: ndi.correlate(a, _WEIGHTS, mode="constant", cval=5, origin=[-1, -1, 1]),
)
OP_CASES["rank_filter"] = (
    {"rank": -2, "footprint": _WINDOW.tolist(), "mode": "nearest", "origin": [-1, 1, 0]},
    lambda a: ndi.rank_filter(a, -2, footprint=_WINDOW, mode="nearest", origin=[-1, 1, 0]),
)
# one axis (ops/filters/_one_axis.py): an even kernel, moved by its origin
OP_CASES["correlate1d"] = (
    {"weights": [0.5, -1.0, 2.0, 0.25], "axis": 1, "mode": "wrap", "origin": 1},
    lambda a: ndi.correlate1d(a, [0.5, -1.0, 2.0, 0.25], axis=1, mode="wrap", origin=1),
)
OP_CASES["convolve1d"] = (
    {"weights": [0.5, -1.0, 2.0, 0.25], "mode": "nearest", "origin": -2},
    lambda a: ndi.convolve1d(a, [0.5, -1.0, 2.0, 0.25], mode="nearest", origin=-2),
)
def _spread(line, out, k):  # generic_filter1d's function: a line extended by size - 1
    out[:] = line[2:] * k - line[:-2]


OP_CASES["generic_filter1d"] = (
    {"function": _spread, "filter_size": 3, "axis": 0, "origin": 1, "mode": "mirror",
     "extra_arguments": (2.0,)},
    lambda a: ndi.generic_filter1d(a, _spread, 3, axis=0, origin=1, mode="mirror",
                                   extra_arguments=(2.0,)),
)
# a Python function: not JSON, so it lives in Python cases only (never in a pipeline file)
OP_CASES["generic_filter"] = (
    {"function": np.ptp, "size": [3, 2, 3], "mode": "constant", "cval": 1},
    lambda a: ndi.generic_filter(a, np.ptp, size=(3, 2, 3), mode="constant", cval=1),
)
# a vectorized function of the windows (scipy >= 1.15): its dtype is the function's
OP_CASES["vectorized_filter"] = (
    {"function": np.mean, "size": [3, 2, 3], "mode": "wrap"},
    lambda a: ndi.vectorized_filter(a, np.mean, size=(3, 2, 3), mode="wrap"),
)

# geometric transforms (ops/_transforms.py, ops/_deskew.py): outputs at least as large as
# the input along every axis, so the hypothesis test's key (drawn on the input) indexes them
_AFFINE = np.array([[1.05, 0.1, -0.2], [0.05, 0.95, 0.3], [0.1, -0.25, 1.1]])
OP_CASES["affine_transform"] = (
    {"matrix": _AFFINE.tolist(), "offset": [0.5, -1.0, 2.0], "order": 1, "mode": "nearest"},
    lambda a: ndi.affine_transform(a, _AFFINE, [0.5, -1.0, 2.0], order=1, mode="nearest"),
)
OP_CASES["shift"] = (
    {"shift": [1.5, -0.75, 2.25], "order": 3, "mode": "mirror"},
    lambda a: ndi.shift(a, (1.5, -0.75, 2.25), order=3, mode="mirror"),
)
OP_CASES["zoom"] = (
    {"zoom": [1.5, 1.3, 2.0], "order": 1, "mode": "reflect"},
    lambda a: ndi.zoom(a, (1.5, 1.3, 2.0), order=1, mode="reflect"),
)
# rotate turns the plane of its two spatial axes: ``axes`` is apply's (each z plane)
OP_CASES["rotate"] = (
    {"angle": 30.0, "axes": "yx", "order": 1, "mode": "grid-wrap"},
    lambda a: ndi.rotate(a, 30.0, axes=(a.ndim - 2, a.ndim - 1), order=1, mode="grid-wrap"),
)


def _deskewed(a):
    from napari_lazyproc.ops import deskew_transform

    t = deskew_transform(a.shape, 31.8, (1.0, 1.0, 0.8))
    return ndi.affine_transform(a, t.matrix, output_shape=t.output_shape, order=1)


OP_CASES["deskew"] = ({"angle": 31.8, "voxel_size": [1.0, 1.0, 0.8], "order": 1}, _deskewed)


@pytest.fixture
def fast_spy(monkeypatch):
    """``fast_spy(name)``: a list that records, for each call of that operation's fast
    kernel, whether it answered (a kernel returning None falls back to scipy silently)."""
    import dataclasses

    from napari_lazyproc.ops import REGISTRY

    def spy(name: str) -> list[bool]:
        answers: list[bool] = []
        kernel = REGISTRY[name].fast

        def recorded(*args, **kwargs):
            out = kernel(*args, **kwargs)
            answers.append(out is not None)
            return out

        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], fast=recorded))
        return answers

    return spy

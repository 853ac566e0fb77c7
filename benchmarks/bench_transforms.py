"""Deskew of a stage-scan lattice light-sheet stack: the first plane, and the export.

A synthetic raw stack of 256 x 1024 x 1024 uint16 (stage step 0.4 µm, pixel 0.104 µm,
sheet angle 31.8°; 512 MB) is written to a zarr store in chunks of 8 x 256 x 256 (blosc),
then deskewed (linear interpolation, ``order=1``, mode constant) to 256 x 1024 x 1858.

Peers, in the same run:

- napari-lazyproc: ``np.asarray(lp.apply("deskew", img, ...)[0])`` from a cold cache
  (what napari asks for when the layer appears), and ``lp.export`` of the whole result
  to zarr (8 x 256 x 256 chunks).
- dask-image: ``dask_image.ndinterp.affine_transform`` with the same matrix on the
  zarr's dask array (output chunks as ours): the whole volume computed, then the plane
  taken; the plane sliced lazily (``[0].compute()``, dask culls the graph to the chunks
  of plane 0); and ``.to_zarr()`` of the whole result.
- scipy: ``scipy.ndimage.affine_transform`` of the whole in-memory volume, then the
  plane (timed on the full volume when that fits in a minute, else on the largest
  stack of planes that does and scaled by the number of planes, said so).

Targets (issue 17): the first plane at least 20x faster than dask-image's (whole
volume, then the plane); the export at least as fast as dask-image's ``to_zarr()``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import code_version, cpu_snapshot, foreign_note, median, table, timeit

SHAPE = (256, 1024, 1024)
CHUNKS = (8, 256, 256)
ANGLE = 31.8
VOXEL = (0.4, 0.104, 0.104)
SCIPY_BUDGET_S = 60.0


def _raw(shape, seed: int = 0):
    """Noise over a dim background with bright beads, uint16, plane by plane."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty(shape, np.uint16)
    for z in range(shape[0]):
        out[z] = rng.integers(90, 130, shape[1:], dtype=np.uint16)
    beads = rng.integers(0, np.array(shape) - 4, (400, 3))
    for z, y, x in beads:
        out[z:z + 3, y:y + 4, x:x + 4] += 2000
    return out


def _fresh() -> None:
    from napari_lazyproc.ops import CACHE

    CACHE.clear()


def main(shape=SHAPE) -> str:
    import dask.array as da
    import numpy as np
    import zarr
    from dask_image.ndinterp import affine_transform as dask_affine
    from scipy import ndimage as ndi

    import napari_lazyproc as lp
    from napari_lazyproc.ops import deskew_transform

    start, version = cpu_snapshot(), code_version()
    work = Path(tempfile.mkdtemp(prefix="bench_transforms_"))
    try:
        raw = _raw(shape)
        store = work / "raw.zarr"
        z = zarr.create_array(store, shape=raw.shape, chunks=CHUNKS, dtype=raw.dtype,
                              dimension_names=list("zyx"))
        z[:] = raw
        t = deskew_transform(shape, ANGLE, VOXEL)
        out_chunks = (CHUNKS[0], CHUNKS[1], CHUNKS[2])

        def ours():
            img = lp.open_image(store)
            return lp.apply("deskew", img, angle=ANGLE, voxel_size=VOXEL, order=1)

        res = ours()
        assert res.shape == t.output_shape
        plane_times = timeit(lambda: np.asarray(ours()[0]), repeats=5, setup=_fresh)
        ours_plane = np.asarray(ours()[0])

        def dask_result():
            return dask_affine(da.from_zarr(str(store)), t.matrix,
                               output_shape=t.output_shape, output_chunks=out_chunks, order=1)

        lazy_times = timeit(lambda: dask_result()[0].compute(), repeats=3)
        t0 = time.perf_counter()
        whole = dask_result().compute()
        dask_whole_s = time.perf_counter() - t0
        dask_plane = whole[0]
        del whole

        # scipy on the whole in-memory volume: the full stack if a probe says it fits
        probe_n = min(shape[0], 32)
        tp = deskew_transform((probe_n, *shape[1:]), ANGLE, VOXEL)
        t0 = time.perf_counter()
        ndi.affine_transform(raw[:probe_n], tp.matrix, output_shape=tp.output_shape, order=1)
        probe_s = time.perf_counter() - t0
        if probe_s * shape[0] / probe_n < SCIPY_BUDGET_S:
            t0 = time.perf_counter()
            full = ndi.affine_transform(raw, t.matrix, output_shape=t.output_shape, order=1)
            scipy_s, scipy_note = time.perf_counter() - t0, "whole volume, timed"
            scipy_plane = full[0]
            del full
        else:
            n_fit = max(1, int(probe_n * SCIPY_BUDGET_S / probe_s))
            n_fit = min(n_fit, shape[0])
            tf = deskew_transform((n_fit, *shape[1:]), ANGLE, VOXEL)
            t0 = time.perf_counter()
            part = ndi.affine_transform(raw[:n_fit], tf.matrix, output_shape=tf.output_shape,
                                        order=1)
            scipy_s = (time.perf_counter() - t0) * shape[0] / n_fit
            scipy_note = f"timed on {n_fit} planes, scaled x{shape[0] / n_fit:.1f}"
            scipy_plane = ndi.affine_transform(raw[:2], t.matrix, output_shape=(
                1, *t.output_shape[1:]), order=1)[0]
            del part
        equal = (np.array_equal(ours_plane, scipy_plane), np.array_equal(dask_plane,
                                                                            scipy_plane))
        del raw

        # exports: the whole result to zarr, each once
        _fresh()
        t0 = time.perf_counter()
        lp.export(ours(), work / "ours.zarr", format="zarr")
        ours_export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        dask_result().to_zarr(str(work / "dask.zarr"))
        dask_export_s = time.perf_counter() - t0
        check = shape[0] // 2
        written = np.asarray(zarr.open_array(work / "ours.zarr", mode="r")[check])
        theirs = np.asarray(zarr.open_array(work / "dask.zarr", mode="r")[check])
        export_equal = bool(np.array_equal(written, theirs))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plane_s, lazy_s = median(plane_times), median(lazy_times)
    rows = [
        ["napari-lazyproc, plane 0 (cold cache)", f"{plane_s * 1000:.0f} ms", "1.0x"],
        ["dask-image affine_transform, plane 0 sliced lazily (`[0].compute()`)",
         f"{lazy_s * 1000:.0f} ms", f"{lazy_s / plane_s:.1f}x"],
        ["dask-image affine_transform, whole volume `.compute()`, then plane 0",
         f"{dask_whole_s:.1f} s", f"{dask_whole_s / plane_s:.0f}x"],
        [f"scipy affine_transform, whole volume ({scipy_note}), then plane 0",
         f"{scipy_s:.1f} s", f"{scipy_s / plane_s:.0f}x"],
    ]
    export_rows = [
        ["napari-lazyproc `lp.export(..., format='zarr')`", f"{ours_export_s:.1f} s", "1.00x"],
        ["dask-image `affine_transform(...).to_zarr()`", f"{dask_export_s:.1f} s",
         f"{dask_export_s / ours_export_s:.2f}x"],
    ]
    first_ok = dask_whole_s / plane_s >= 20
    export_ok = ours_export_s <= dask_export_s
    gigabytes = np.prod(shape) * 2 / 1e9
    lines = [
        "## Deskew (`bench_transforms.py`)", "",
        f"Stage-scan stack {shape} uint16 ({gigabytes:.2f} GB) in a zarr store, chunks "
        f"{CHUNKS}; sheet angle {ANGLE}°, voxel {VOXEL} µm; deskewed with `order=1` to "
        f"{t.output_shape} (voxel {tuple(round(v, 4) for v in t.scale)} µm). Medians of 5 "
        "(ours) and 3 (dask-image sliced) runs; the whole-volume peers and the exports run "
        "once each. Plane 0 equals scipy's bitwise: "
        f"ours {equal[0]}, dask-image {equal[1]}; the two exports agree (the middle plane): "
        f"{export_equal}.", "",
        "First deskewed plane (what napari shows first):", "",
        table(["path", "time", "time / ours"], rows), "",
        "Export of the whole deskewed volume to zarr:", "",
        table(["path", "time", "time / ours"], export_rows), "",
        f"Targets: first plane >= 20x faster than dask-image's whole volume: "
        f"{'met' if first_ok else 'MISSED'} ({dask_whole_s / plane_s:.0f}x; "
        f"{lazy_s / plane_s:.1f}x against dask-image's lazily sliced plane); export at least "
        f"as fast as dask-image's `to_zarr()`: {'met' if export_ok else 'MISSED'} "
        f"({dask_export_s / ours_export_s:.2f}x).", "",
        f"{foreign_note(start)} {version}",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    import sys

    main(tuple(int(v) for v in sys.argv[1:4]) if len(sys.argv) >= 4 else SHAPE)

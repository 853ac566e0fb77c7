"""Measuring global labels: ``lp.measure`` against scikit-image and dask-image.

Area, centroid, bbox and mean intensity of every object of the global labels of a blobs
mask, 128 x 1024 x 1024 (chunks 32 x 256 x 256, ``bench_ops``' data), with intensities
from the smoothed noise volume of the same shape. Peers, side by side in one run:

- napari-lazyproc: ``lp.measure(labels, image, props)`` on the labels as stored (a zarr
  written from the global labeling job), chunk by chunk on the worker threads; also on
  the ``GlobalLabels`` job itself;
- scikit-image: ``skimage.measure.regionprops_table`` on the whole arrays in memory;
- dask-image: ``ndmeasure.area``, ``center_of_mass``, ``mean`` and ``find_objects`` on
  ``da.from_zarr`` of the same arrays. It is far too slow for the whole volume, so it is
  timed on a crop, against ours on the same crop, and scaled to the volume linearly in
  voxels (its cost grows faster than that, so the scaled figure is a lower bound).

Times are medians of a few runs in this process; peak memory is the peak RSS of a fresh
process doing one run (inputs read into memory included for scikit-image, which needs
them), beside that of a process that only imports the libraries.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time

import numpy as np
from _common import DATA, code_version, cpu_snapshot, foreign_note, median, table

SHAPE, CHUNKS = (128, 1024, 1024), (32, 256, 256)
PROPS = ("label", "area", "centroid", "bbox", "intensity_mean")
REPEATS = 3
#: the crop dask-image is timed on (and ours beside it), 1/16 of the volume
CROP = (slice(0, 32), slice(0, 512), slice(0, 512))
#: issue targets: at most this x scikit-image's time, at most this fraction of its peak
#: memory, at least this x faster than dask-image
SKIMAGE_TIME, SKIMAGE_MEMORY, DASK_RATIO = 2.0, 0.5, 20.0

RUN = textwrap.dedent("""
    import json, sys, time
    import numpy as np, zarr
    import napari_lazyproc as lp
    from skimage.measure import regionprops_table
    which, labels, noise = sys.argv[1:4]
    props = tuple(sys.argv[4].split(","))
    t0 = time.perf_counter()
    if which == "ours":
        lp.measure(lp.open_image(labels), lp.open_image(noise), props)
    elif which == "skimage":
        regionprops_table(zarr.open_array(labels, mode="r")[:],
                          zarr.open_array(noise, mode="r")[:], properties=props)
    took = time.perf_counter() - t0
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, inherited at fork)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM"))
    rss = hwm * 1024
    print(json.dumps({"time": took, "rss": rss}))
""")


def _fresh() -> None:
    from napari_lazyproc.ops import CACHE

    CACHE.clear()


def _timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        _fresh()
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return median(times), value


def _peak(which: str, labels, noise) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN, which, str(labels), str(noise),
                           ",".join(PROPS)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check(ours, ref: dict) -> None:
    """Our table is scikit-image's: counts and boxes exactly, the rest within 1e-9."""
    assert list(ours.columns) == list(ref)
    for name, expected in ref.items():
        got = ours[name].to_numpy()
        if name in ("label", "area") or name.startswith("bbox"):
            assert np.array_equal(got, expected), name
        else:
            assert np.allclose(got, expected, rtol=1e-9, atol=0), name


def _skimage(labels_path, noise_path) -> tuple[float, float, dict, int]:
    """scikit-image on the whole arrays in memory: the read time, the median time, the
    table and the bytes the arrays take (freed on return)."""
    import zarr
    from skimage.measure import regionprops_table

    t0 = time.perf_counter()
    lab = zarr.open_array(labels_path, mode="r")[:]
    img = zarr.open_array(noise_path, mode="r")[:]
    read = time.perf_counter() - t0
    took, ref = _timed(lambda: regionprops_table(lab, img, properties=PROPS))
    return read, took, ref, lab.nbytes + img.nbytes


def labels_zarr(job):
    """The job's labels stored as a plain zarr (what ours, scikit-image and dask-image
    read), written once."""
    import zarr

    path = DATA / "measure-labels-128x1024x1024.zarr"
    if not (path / ".bench-done").exists():
        arr = zarr.create_array(path, shape=SHAPE, chunks=CHUNKS, dtype="uint32",
                                overwrite=True)
        for z in range(0, SHAPE[0], CHUNKS[0]):
            arr[z:z + CHUNKS[0]] = np.asarray(job[z:z + CHUNKS[0]])
        (path / ".bench-done").touch()
    return path


def dask_image_crop(labels_path, noise_path) -> dict[str, float | str]:
    """dask-image's four measures on the crop (each computed on its own), and ours on
    the same dask arrays."""
    import dask.array as da
    import zarr
    from dask_image import ndmeasure

    import napari_lazyproc as lp

    lab = da.from_zarr(zarr.open_array(labels_path, mode="r"))[CROP]
    img = da.from_zarr(zarr.open_array(noise_path, mode="r"))[CROP]
    index = np.unique(lab.compute())
    index = index[index > 0]
    out: dict[str, float | str] = {"labels": float(len(index))}
    runs = {
        "area": lambda: ndmeasure.area(img, lab, index).compute(),
        "center_of_mass": lambda: ndmeasure.center_of_mass(
            da.ones(lab.shape, chunks=lab.chunks), lab, index).compute(),
        "mean": lambda: ndmeasure.mean(img, lab, index).compute(),
        "find_objects": lambda: ndmeasure.find_objects(lab).compute(),
    }
    for name, fn in runs.items():
        try:
            t0 = time.perf_counter()
            fn()
            out[name] = time.perf_counter() - t0
        except ImportError:  # find_objects needs dask[dataframe], thus pyarrow
            out[name] = "not run: it needs dask[dataframe] (pyarrow), not installed here"
    out["ours"], _ = _timed(lambda: lp.measure(lab, img, PROPS))
    return out


def main() -> str:
    from bench_ops import make_data

    import napari_lazyproc as lp

    noise, blobs = make_data()
    start, version = cpu_snapshot(), code_version()
    t0 = time.perf_counter()
    job = lp.label_global(lp.open_image(blobs)).run()
    label_time = time.perf_counter() - t0
    stored = labels_zarr(job)
    image = lp.open_image(noise)

    ours_t, ours = _timed(lambda: lp.measure(lp.open_image(stored), image, PROPS))
    job_t, from_job = _timed(lambda: lp.measure(job, image, PROPS))
    read_t, sk_t, ref, in_memory = _skimage(stored, noise)
    _check(ours, ref)
    _check(from_job, ref)
    peaks = {w: _peak(w, stored, noise) for w in ("baseline", "ours", "skimage")}
    crop = dask_image_crop(stored, noise)

    voxels = math.prod(SHAPE)
    crop_voxels = math.prod(s.stop - s.start for s in CROP)
    dask_parts = {k: v for k, v in crop.items()
                  if k in ("area", "center_of_mass", "mean", "find_objects")}
    dask_crop = sum(v for v in dask_parts.values() if isinstance(v, float))
    dask_full = dask_crop * voxels / crop_voxels
    mib = 2**20
    base = peaks["baseline"]["rss"]
    rows = [
        ["napari-lazyproc, labels zarr", f"{ours_t:.2f} s", f"{voxels / ours_t / 1e6:.0f}",
         f"{peaks['ours']['rss'] / mib:.0f} MiB", f"{(peaks['ours']['rss'] - base) / mib:.0f} MiB",
         "1.00x"],
        ["napari-lazyproc, the GlobalLabels job", f"{job_t:.2f} s",
         f"{voxels / job_t / 1e6:.0f}", "", "", f"{job_t / ours_t:.2f}x"],
        ["scikit-image regionprops_table, in memory", f"{sk_t:.2f} s",
         f"{voxels / sk_t / 1e6:.0f}", f"{peaks['skimage']['rss'] / mib:.0f} MiB",
         f"{(peaks['skimage']['rss'] - base) / mib:.0f} MiB", f"{sk_t / ours_t:.2f}x"],
        ["dask-image (area + center_of_mass + mean), scaled from the crop",
         f"{dask_full:.0f} s", f"{voxels / dask_full / 1e6:.2f}", "", "",
         f"{dask_full / ours_t:.0f}x"],
    ]
    time_ratio = ours_t / sk_t
    mem_ratio = (peaks["ours"]["rss"] - base) / max(1, peaks["skimage"]["rss"] - base)
    mem_ratio_total = peaks["ours"]["rss"] / peaks["skimage"]["rss"]
    crop_ratio = dask_crop / crop["ours"]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    dask_rows = [[k, f"{v:.2f} s" if isinstance(v, float) else v] for k, v in dask_parts.items()]
    dask_rows.append(["napari-lazyproc, all of them at once", f"{crop['ours']:.2f} s"])
    lines = [
        "## Measurements (`bench_measure.py`)", "",
        f"Properties {', '.join(PROPS)} of the {job.n_labels} global labels of the blobs "
        f"mask {SHAPE} (chunks {CHUNKS}), intensities from the noise volume (uint16). "
        f"Labeling itself (not timed below) took {label_time:.2f} s. Median of {REPEATS} runs "
        "(chunk cache emptied before each); peak RSS of a fresh process doing one run; "
        f"\"above baseline\" subtracts a process that only imports "
        f"({base / mib:.0f} MiB). Reading both arrays into memory for scikit-image takes "
        f"another {read_t:.2f} s ({in_memory / mib:.0f} MiB), not counted in its time. "
        "Every value of both our tables equals scikit-image's (area and bbox exactly, "
        "centroid and mean within 1e-9).", "",
        table(["path", "time", "Mvox/s", "peak RSS", "above baseline", "time / ours"], rows),
        "",
        f"Targets: at most {SKIMAGE_TIME:g}x scikit-image's time "
        f"({verdict(time_ratio <= SKIMAGE_TIME)}: {time_ratio:.2f}x); "
        f"at most {SKIMAGE_MEMORY:g} of its peak memory "
        f"({verdict(mem_ratio <= SKIMAGE_MEMORY)}: {mem_ratio:.2f} above the baseline, "
        f"{mem_ratio_total:.2f} of the whole RSS); at least {DASK_RATIO:g}x faster than "
        f"dask-image ({verdict(crop_ratio >= DASK_RATIO)}: {crop_ratio:.0f}x on the crop, "
        f"measured; {dask_full / ours_t:.0f}x on the volume, scaled).", "",
        f"dask-image on the crop {tuple((s.start, s.stop) for s in CROP)} "
        f"({crop_voxels / 1e6:.1f} Mvox, {int(crop['labels'])} labels), each measure computed "
        "on its own, against ours computing all the properties in one pass over the same "
        "dask arrays. Scaled to the volume linearly in voxels: its cost grows faster "
        "(more labels per chunk), so the scaled time is a lower bound.", "",
        table(["dask-image on the crop", "time"], dask_rows), "",
        f"{foreign_note(start)} {version}",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    from _common import machine

    print(machine())
    main()

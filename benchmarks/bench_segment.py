"""Instance segmentation: ``lp.segment`` (stitched) against scikit-image and dask.

A volume of touching nuclei (``synthetic_nuclei.touching_nuclei``, radii 6-12 px,
uint16, stored as zarr, chunks 64 x 256 x 256) is segmented by the built-in seeded
watershed (diameter 12 px: Gaussian sigma 1, Otsu's threshold of every voxel, distance
transform, maxima 6 px apart, watershed in the mask). Peers, each in a fresh process
(time and peak RSS, ``VmHWM``):

- napari-lazyproc: ``lp.segment(img, diameter=12).run()`` (blocks of 128^3 with a
  16-voxel halo, on the worker threads, stitched), then the stitched labels exported
  to zarr (timed apart);
- scikit-image: the same watershed on the whole array in memory, scikit-image's own
  kernels throughout (the reference; ours use the linear-time flood where they can);
- dask: ``map_overlap`` of the same watershed over the same blocks and halo, threaded,
  written to zarr: the naive way, whose labels are per block (an object crossing a block
  face becomes two).

Objects are compared with the whole-array result: the share with a partner of IoU
>= 0.9, and the objects crossing block faces that come out split. The first preview:
a fresh process opens the zarr and reads ``seg.live_preview`` (the panel's: the plane
look, then the 3D preview) over a 512 x 512 view of the middle plane, cold (the sampled
Otsu included), then browses; the same of ``seg.preview`` (3D blocks only) and of
``seg.plane_preview`` (each plane in 2D).

    python benchmarks/bench_segment.py            # 256 x 1024 x 1024
    python benchmarks/bench_segment.py --small    # 128 x 512 x 512
    python benchmarks/bench_segment.py --shape 128,1024,1024
    python benchmarks/bench_segment.py --no-preview     # the stitched job and peers only
    python benchmarks/bench_segment.py --preview-only   # the preview figures only
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from _common import DATA, code_version, cpu_snapshot, foreign_note, table

BIG, SMALL = (256, 1024, 1024), (128, 512, 512)
CHUNKS, BLOCK, DIAMETER = (64, 256, 256), 128, 12
#: issue targets: time and peak memory against scikit-image's, first preview plane
TIME_RATIO, MEMORY_RATIO, PREVIEW_S = 1.5, 0.25, 1.0

RUN = textwrap.dedent("""
    import json, sys, time
    import numpy as np, zarr
    which, path, out, block, diameter, thr = sys.argv[1:7]
    block, diameter, thr = int(block), float(diameter), float(thr)
    import napari_lazyproc as lp
    from napari_lazyproc.ops.jobs._segment_methods import watershed_block, watershed_halo
    extra = {}
    def BROWSE(z, n):  # five planes away from z (in other preview blocks), in the volume
        return [k for k in (20, -20, 40, -40, 60, -60, 12, -12) if 0 <= z + k < n][:5]
    t0 = time.perf_counter()
    if which == "ours":
        seg = lp.segment(lp.open_image(path), "watershed", diameter=diameter, block=block)
        labels = seg.run(store=out + ".work")
        extra["run"] = time.perf_counter() - t0
        extra["n"] = labels.n_labels
        t1 = time.perf_counter()
        lp.export(labels, out, levels=1)
        extra["export"] = time.perf_counter() - t1
    elif which == "skimage":
        from skimage.filters import threshold_otsu
        image = zarr.open_array(path, mode="r")[:]
        t0 = time.perf_counter()
        labels = watershed_block(image, diameter=(diameter,) * 3,
                                 threshold=threshold_otsu(image), kernels="skimage")
        extra["run"] = time.perf_counter() - t0
        np.save(out, labels)
    elif which == "dask":
        import dask, dask.array as da
        image = da.from_zarr(zarr.open_array(path, mode="r")).rechunk(block)
        t0 = time.perf_counter()  # the threshold is given (ours computes its own)
        halo = watershed_halo((diameter,) * 3, {"sigma": 1.0})
        def one(b, block_info=None):
            k = np.ravel_multi_index(block_info[0]["chunk-location"],
                                     block_info[0]["num-chunks"])
            lab = watershed_block(b, diameter=(diameter,) * 3, threshold=thr)
            return np.where(lab > 0, lab.astype(np.uint64) + (np.uint64(k) << np.uint64(32)), 0)
        res = image.map_overlap(one, depth=halo, boundary="none", dtype=np.uint64)
        with dask.config.set(scheduler="threads", num_workers=2):
            res.to_zarr(out, overwrite=True)
        extra["run"] = time.perf_counter() - t0
    elif which in ("preview", "planes"):
        seg = lp.segment(lp.open_image(path), "watershed", diameter=diameter, block=block)
        preview = seg.preview if which == "preview" else seg.plane_preview
        z = seg.source.shape[0] // 2
        y, x = seg.source.shape[1] // 2, seg.source.shape[2] // 2
        t0 = time.perf_counter()
        view = np.asarray(preview[z, y - 256:y + 256, x - 256:x + 256])
        extra["view"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        plane = np.asarray(preview[z])
        extra["plane"] = time.perf_counter() - t1 + extra["view"]
        extra["labels"] = int(len(np.unique(plane)) - 1)
        nexts = []
        for k in BROWSE(z, seg.source.shape[0]):  # browsing on: other planes (threshold done)
            t2 = time.perf_counter()
            np.asarray(preview[z + k, y - 256:y + 256, x - 256:x + 256])
            nexts.append(time.perf_counter() - t2)
        extra["next"], extra["next_range"] = float(np.median(nexts)), [min(nexts), max(nexts)]
    elif which == "live":  # the panel's default: the plane look first, then the 3D
        seg = lp.segment(lp.open_image(path), "watershed", diameter=diameter, block=block)
        live = seg.live_preview
        z = seg.source.shape[0] // 2
        y, x = seg.source.shape[1] // 2, seg.source.shape[2] // 2
        def view(k):
            return (slice(k, k + 1), slice(y - 256, y + 256), slice(x - 256, x + 256))
        t0 = time.perf_counter()
        first = live.read(view(z))
        extra["view"] = time.perf_counter() - t0
        live.wait(view(z), 600)
        extra["view_3d"] = time.perf_counter() - t0
        final = live.read(view(z))
        ids = set(np.unique(final)) - {0}
        extra["kept"] = len(ids & set(np.unique(first))) / max(1, len(ids))
        t1 = time.perf_counter()  # the next plane: in the same 3D block
        live.read(view(z + 1))
        extra["same_block"] = time.perf_counter() - t1
        extra["same_block_3d"] = live.showing(view(z + 1)) == "3D"
        looks, threes, cpus = [], [], []
        for k in BROWSE(z, seg.source.shape[0]):  # browsing on: planes in other blocks
            t2, c2 = time.perf_counter(), time.process_time()
            live.read(view(z + k))
            looks.append(time.perf_counter() - t2)
            live.wait(view(z + k), 600)
            threes.append(time.perf_counter() - t2)
            cpus.append(time.process_time() - c2)  # every thread's: not the machine's load
        extra["next"], extra["next_3d"] = float(np.median(looks)), float(np.median(threes))
        extra["next_cpu"] = float(np.median(cpus))
        extra["next_range"] = [min(looks), max(looks), min(threes), max(threes)]
    took = time.perf_counter() - t0
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM"))
    print(json.dumps({"time": took, "rss": hwm * 1024, **extra}))
""")


def _run(which: str, path, out, threshold=0.0, block=BLOCK) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN, which, str(path), str(out), str(block),
                           str(DIAMETER), repr(threshold)], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{which} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"[{which}] {json.dumps(result)}", file=sys.stderr, flush=True)  # partial figures
    return result


def make_data(shape) -> str:
    import zarr

    from napari_lazyproc.synthetic_nuclei import touching_nuclei

    path = DATA / f"nuclei_{'x'.join(map(str, shape))}.zarr"
    if not (path / "zarr.json").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        image = touching_nuclei(shape, seed=0)[0]
        zarr.create_array(path, shape=shape, chunks=CHUNKS, dtype=image.dtype,
                          overwrite=True)[:] = image
    return str(path)


def best_iou(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each object of ``ref``: the best IoU with an object of ``out``."""
    r = ref.ravel().astype(np.int64)
    _, o = np.unique(out.ravel(), return_inverse=True)
    both = (r > 0) & (o > 0)
    base = int(o.max()) + 1
    keys, inter = np.unique(r[both] * base + o[both], return_counts=True)
    ri, oi = keys // base, keys % base
    area_r, area_o = np.bincount(r), np.bincount(o)
    iou = inter / (area_r[ri] + area_o[oi] - inter)
    best = np.zeros(len(area_r))
    np.maximum.at(best, ri, iou)
    ids = np.flatnonzero(area_r)
    return best[ids[ids > 0]]


def split_crossing(ref: np.ndarray, out: np.ndarray, block: int) -> tuple[int, int]:
    """(objects of ``ref`` crossing a block face, those ``out`` splits: no one label of
    it covers 90% of the object)."""
    from scipy import ndimage as ndi

    crossing = split = 0
    for label, where in enumerate(ndi.find_objects(ref), start=1):
        if where is None or all(s.start // block == (s.stop - 1) // block for s in where):
            continue
        crossing += 1
        inside = out[where][ref[where] == label]
        _, counts = np.unique(inside, return_counts=True)
        if counts.max() < 0.9 * inside.size:
            split += 1
    return crossing, split


def preview_text(path: str, shape) -> str:
    """The preview figures, each mode in a fresh process (cold, then browsing)."""
    live = _run("live", path, "-")
    preview, planes = _run("preview", path, "-"), _run("planes", path, "-")
    from napari_lazyproc.ops.jobs._segment_live_preview import DEPTH as depth

    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    return (
        f"First preview plane on screen under {PREVIEW_S:g} s "
        f"({verdict(live['next'] <= PREVIEW_S)} while browsing; medians of 5 planes, "
        f"range in brackets). The panel's preview (`live_preview`: the plane look at once, "
        f"the 3D preview replacing it, blocks of {depth} planes): a 512 x 512 view of a "
        f"plane in a new block shows its plane look in {live['next']:.2f} s "
        f"[{live['next_range'][0]:.2f}-{live['next_range'][1]:.2f}] and its 3D preview "
        f"{live['next_3d']:.2f} s [{live['next_range'][2]:.2f}-{live['next_range'][3]:.2f}]"
        f" after the request ({live['next_cpu']:.2f} CPU-seconds of this process, so "
        f"{live['next_cpu'] / 2:.2f} s at best on 2 idle cores); a plane in a block "
        f"already computed at once "
        f"({live['same_block']:.3f} s, 3D: {live['same_block_3d']}); in a fresh process, "
        f"the first view's look in "
        f"{live['view']:.2f} s (the sampled Otsu threshold included, imports not), its 3D "
        f"at {live['view_3d']:.2f} s; {100 * live['kept']:.0f}% of the 3D objects kept "
        f"the look's ids. The 3D blocks alone (`preview`, one plane deep): the view in "
        f"{preview['next']:.2f} s [{preview['next_range'][0]:.2f}-"
        f"{preview['next_range'][1]:.2f}] while browsing "
        f"({verdict(preview['next'] <= PREVIEW_S)})"
        f", {preview['view']:.2f} s first; the whole {shape[1]} x {shape[2]} plane in "
        f"{preview['plane']:.2f} s ({preview['labels']} labels). The plane look alone "
        f"(`plane_preview`): the view in {planes['next']:.2f} s [{planes['next_range'][0]:.2f}"
        f"-{planes['next_range'][1]:.2f}] while browsing "
        f"({verdict(planes['next'] <= PREVIEW_S)}), {planes['view']:.2f} s first; the "
        f"whole plane in {planes['plane']:.2f} s.")


def _shape():
    if "--shape" in sys.argv:
        return tuple(int(n) for n in sys.argv[sys.argv.index("--shape") + 1].split(","))
    return SMALL if "--small" in sys.argv else BIG


def main(shape=None) -> str:
    import zarr

    shape = tuple(shape or _shape())
    path = make_data(shape)
    start, version = cpu_snapshot(), code_version()
    if "--preview-only" in sys.argv:
        text = "\n".join([f"Preview of {shape} touching nuclei (`bench_segment.py "
                          f"--preview-only`).", "", preview_text(path, shape), "",
                          f"{foreign_note(start)} {version}"])
        print(text)
        return text
    with tempfile.TemporaryDirectory(prefix="bench-segment-", dir=DATA) as tmp:
        ours = _run("ours", path, os.path.join(tmp, "ours.zarr"))
        sk = _run("skimage", path, os.path.join(tmp, "skimage.npy"))
        from skimage.filters import threshold_otsu

        otsu = float(threshold_otsu(zarr.open_array(path, mode="r")[:]))
        dk = _run("dask", path, os.path.join(tmp, "dask.zarr"), otsu)
        previews = "" if "--no-preview" in sys.argv else preview_text(path, shape)
        baseline = _run("baseline", path, "-")
        ref = np.load(os.path.join(tmp, "skimage.npy"))
        n_ref = int(ref.max())
        mine = zarr.open_group(os.path.join(tmp, "ours.zarr"), mode="r")["0"][:]
        ours_iou = best_iou(ref, mine)
        crossing, ours_split = split_crossing(ref, mine, BLOCK)
        del mine  # one result in memory at a time, beside the reference
        naive = zarr.open_array(os.path.join(tmp, "dask.zarr"), mode="r")[:]
        dask_iou = best_iou(ref, naive)
        _, dask_split = split_crossing(ref, naive, BLOCK)
        del naive, ref
    gib, base = 2**30, baseline["rss"]
    rows = [
        ["napari-lazyproc: segment + stitch (run)", f"{ours['run']:.1f} s",
         f"{ours['rss'] / gib:.2f}", f"{(ours['rss'] - base) / gib:.2f}",
         f"{(ours_iou >= 0.9).mean():.4f}", f"{ours_split} of {crossing}"],
        ["napari-lazyproc: + export of the labels", f"{ours['export']:.1f} s", "", "", "", ""],
        ["scikit-image, whole array in memory", f"{sk['run']:.1f} s",
         f"{sk['rss'] / gib:.2f}", f"{(sk['rss'] - base) / gib:.2f}", "1 (reference)", "0"],
        ["dask map_overlap (naive, per-block labels)", f"{dk['run']:.1f} s",
         f"{dk['rss'] / gib:.2f}", f"{(dk['rss'] - base) / gib:.2f}",
         f"{(dask_iou >= 0.9).mean():.4f}", f"{dask_split} of {crossing}"],
    ]
    time_ratio = ours["run"] / sk["run"]
    mem_ratio = (ours["rss"] - base) / max(1, sk["rss"] - base)
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    voxels = math.prod(shape)
    lines = [
        "## Instance segmentation (`bench_segment.py`)", "",
        f"Seeded watershed (diameter {DIAMETER} px) of {shape} touching nuclei "
        f"({voxels / 1e6:.0f} Mvox uint16, zarr chunks {CHUNKS}; {n_ref} "
        f"objects in the whole-array result, {crossing} of them crossing a face of the "
        f"{BLOCK}^3 blocks). Each peer in a fresh process; peak RSS (VmHWM), and above a "
        f"process that only imports ({base / gib:.2f} GiB). Ours: {ours['n']} objects.", "",
        table(["path", "time", "peak RSS GiB", "above baseline", "objects IoU>=0.9",
               "crossing objects split"], rows), "",
        f"Targets: at most {TIME_RATIO:g}x scikit-image's time on 2 cores "
        f"({verdict(time_ratio <= TIME_RATIO)}: {time_ratio:.2f}x); at most "
        f"{MEMORY_RATIO:g} of its peak memory ({verdict(mem_ratio <= MEMORY_RATIO)}: "
        f"{mem_ratio:.2f} above the baseline). {previews}", "",
        f"{foreign_note(start)} {version}",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    from _common import machine

    print(machine())
    main()

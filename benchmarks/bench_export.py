"""Export: gaussian sigma=2 of a volume to zarr, peak memory, and global labeling export.

Peers, side by side in one run (each in a fresh subprocess, so peak RSS is its own):

- napari-lazyproc, both precisions: ``lp.export(lp.apply("gaussian", img, sigma=2,
  precision=...), out, format="zarr")`` ("fast": OpenCV kernels, the default; "exact":
  bitwise scipy);
- scipy: load the whole array, ``scipy.ndimage.gaussian_filter`` single-threaded, write;
- dask-image: ``dask_image.ndfilters.gaussian_filter(da.from_zarr(arr), 2).to_zarr(out)``;
- floors: read + decode the whole input (chunk row by chunk row, zarr's concurrent
  decode), and encode + write the finished result from memory (same chunks and codec);
- labeling: ``lp.export(lp.apply("label", mask, scope="global"), out)`` against
  ``dask_image.ndmeasure.label(mask)[0].to_zarr(out)``.

Data: 256 x 1024 x 1024 uint16 (chunks 32 x 256 x 256); for memory, 512 x 2048 x 2048
uint16 (4 GiB); a blobs mask 128 x 1024 x 1024 (chunks 32 x 256 x 256) for labeling.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import scipy.ndimage as ndi
from _common import DATA, code_version, cpu_snapshot, foreign_note, profile_rows, table

CHUNKS = (32, 256, 256)
VOLUMES = {"1k": (256, 1024, 1024), "4g": (512, 2048, 2048)}
#: issue targets: fast export at least this x faster than dask-image, at least this many
#: Mvox/s, and at most this peak RSS (bytes) on the 4 GiB input
DASK_RATIO, MVOX_S, RSS_MAX = 3.0, 100.0, 1.5e9
#: runs per peer on the 512 MiB volume (median time, highest peak RSS); scipy runs once
REPEATS = 3

RUN = textwrap.dedent("""
    import json, sys, threading, time
    import dask, dask.array as da, numpy as np, zarr, scipy.ndimage as ndi
    from dask_image import ndfilters, ndmeasure
    import napari_lazyproc as lp
    which, src, out = sys.argv[1:4]
    phases, lock = {}, threading.Lock()

    def timed(cls, name, label):  # wall and the calling thread's CPU, summed over threads
        fn = getattr(cls, name)

        def wrapper(*args, **kwargs):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - t, time.thread_time() - c
                with lock:
                    phases[label + " wall"] = phases.get(label + " wall", 0.0) + wall
                    phases[label + " cpu"] = phases.get(label + " cpu", 0.0) + cpu

        setattr(cls, name, wrapper)

    if which.endswith("-profile"):
        from napari_lazyproc.ops.engine._lazy import LazyResult
        from napari_lazyproc.export._resume import ResumeRecord
        timed(zarr.Array, "__getitem__", "read")
        for name in ("_apply_fast", "_apply_separable", "_apply"):
            timed(LazyResult, name, "compute")
        timed(zarr.Array, "__setitem__", "write")
        timed(ResumeRecord, "mark_done", "digest")
        which = which[: -len("-profile")]
    from napari_lazyproc.io._codecs import fast_codecs

    codecs = fast_codecs if which.endswith("-zarrs") else (lambda arr: arr)
    which = which.removesuffix("-zarrs")
    if which == "write-floor":  # the finished result in memory; only the write is timed
        a = zarr.open_array(src, mode="r")
        values = a[:]
    t0, cpu0 = time.perf_counter(), time.process_time()  # imports done: only the work
    if which in ("ours", "ours-exact"):
        precision = "exact" if which == "ours-exact" else "fast"
        lp.export(lp.apply("gaussian", lp.open_image(src), sigma=2.0, precision=precision),
                  out, format="zarr")
    elif which == "scipy":
        a = zarr.open_array(src, mode="r")
        r = ndi.gaussian_filter(a[:], 2.0)
        z = zarr.create_array(out, shape=r.shape, chunks=a.chunks, dtype=r.dtype)
        z[:] = r
    elif which == "dask-image":
        a = da.from_zarr(zarr.open_array(src, mode="r"))
        with dask.config.set(scheduler="threads"):
            ndfilters.gaussian_filter(a, 2.0).to_zarr(out)
    elif which == "read-floor":
        a = codecs(zarr.open_array(src, mode="r"))
        for z in range(0, a.shape[0], a.chunks[0]):
            a[z : z + a.chunks[0]]
    elif which == "write-floor":
        z = codecs(zarr.create_array(out, shape=a.shape, chunks=a.chunks, dtype=a.dtype))
        for k in range(0, a.shape[0], a.chunks[0]):
            z[k : k + a.chunks[0]] = values[k : k + a.chunks[0]]
    elif which == "ours-label":
        lp.export(lp.apply("label", lp.open_image(src), scope="global"), out, format="zarr")
    elif which == "dask-image-label":
        a = da.from_zarr(zarr.open_array(src, mode="r"))
        with dask.config.set(scheduler="threads"):
            ndmeasure.label(a)[0].to_zarr(out)
    took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, inherited at fork)
    hwm = next(
        int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")
    )
    print(json.dumps({"s": took, "cpu": cpu, "rss": hwm * 1024, "phases": phases}))
""")


def make(name: str, shape, kind: str = "noise"):
    import zarr

    path = DATA / f"export-{name}-{kind}-{'x'.join(map(str, shape))}.zarr"
    if (path / "zarr.json").exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arr = zarr.create_array(path, shape=shape, chunks=CHUNKS,
                            dtype="uint8" if kind == "blobs" else "uint16", overwrite=True)
    for z in range(0, shape[0], CHUNKS[0]):
        slab = rng.random((CHUNKS[0], *shape[1:]), dtype=np.float32)
        if kind == "blobs":
            low = ndi.gaussian_filter(slab, 4)
            arr[z : z + CHUNKS[0]] = low > np.percentile(low, 80)
        else:
            arr[z : z + CHUNKS[0]] = (ndi.uniform_filter(slab, 3) * 60000).astype(np.uint16)
    return path


def run(which: str, src, tag: str) -> dict:
    out = DATA / f"out-{tag}-{which}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", RUN, which, str(src), str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{which} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["out"] = out
    return result


def _mvox(shape, seconds: float) -> float:
    return math.prod(shape) / seconds / 1e6


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _profile_rows(profiles: dict[str, dict]) -> list[list[str]]:
    rows = []
    for name, r in profiles.items():
        ph = r["phases"]
        rows.append([name, f"{r['s']:.1f}", f"{r['cpu']:.1f}",
                     *(f"{ph.get(k, 0.0):.1f}" for k in (
                         "compute cpu", "compute wall", "digest cpu", "read wall", "write wall"))])
    return rows


def _median_run(runs: list[dict]) -> dict:
    """The run of median time, with the highest peak RSS of all of them."""
    out = dict(sorted(runs, key=lambda r: r["s"])[len(runs) // 2])
    out["rss"] = max(r["rss"] for r in runs)
    return out


def kernel_box(src, top: int = 5) -> tuple[str, dict[str, float]]:
    """The gaussian kernels alone on one export task's box (4 chunks along z, 128 x 256 x
    256, plus the halo; in memory, one thread): fast against exact, and a cProfile of the
    fast one. Returns the text and each precision's Mvox/s."""

    import zarr

    import napari_lazyproc as lp
    from napari_lazyproc.ops import get_op

    halo, z0, y0 = 8, 64, 256
    region = (slice(z0, z0 + 128), slice(y0, y0 + 256), slice(y0, y0 + 256))
    expanded = tuple(slice(s.start - halo, s.stop + halo) for s in region)
    block = zarr.open_array(src, mode="r")[expanded]
    crop = tuple(slice(halo, n - halo) for n in block.shape)
    res = lp.apply("gaussian", lp.open_image(src), sigma=2.0, precision="exact")
    kwargs = {k: v for k, v in res._call_params().items() if k not in ("axes", "output")}
    fast = get_op("gaussian").fast
    paths = {"fast": lambda: fast(block, crop, **kwargs),
             "exact": lambda: res._apply_separable(block, region, expanded)}
    rate = {}
    for name, fn in paths.items():
        fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rate[name] = 128 * 256 * 256 / sorted(times)[1] / 1e6
    rows = profile_rows(paths["fast"], top)
    vox = math.prod(VOLUMES["1k"]) / 1e6
    text = (f"The kernels alone on one export task's box {tuple(block.shape)} (in memory, one "
            f"thread): fast {rate['fast']:.0f} Mvox/s, exact {rate['exact']:.0f} Mvox/s "
            f"({rate['fast'] / rate['exact']:.1f}x); over the volume that is "
            f"{vox / rate['fast']:.1f} s of CPU (fast) against {vox / rate['exact']:.1f} s "
            f"(exact). cProfile of the fast kernel on that box (top {top} by own time):\n\n"
            + table(["function", "calls", "own ms", "cumulative ms"], rows))
    return text, rate


def main() -> str:
    import zarr

    gib = 2**30
    src = make("1k", VOLUMES["1k"])
    start, version = cpu_snapshot(), code_version()
    res = {"scipy": run("scipy", src, "1k")}  # once: it takes seconds, single-threaded
    runs: dict[str, list[dict]] = {}
    for _ in range(REPEATS):  # peers interleaved run by run
        for w in ("ours", "ours-exact", "dask-image", "read-floor", "write-floor",
                  "read-floor-zarrs", "write-floor-zarrs"):
            runs.setdefault(w, []).append(
                run(w, res["scipy"]["out"] if w.startswith("write-floor") else src, "1k"))
    res.update({w: _median_run(r) for w, r in runs.items()})
    fast = zarr.open_array(res["ours"]["out"], mode="r")
    exact = zarr.open_array(res["ours-exact"]["out"], mode="r")
    ref = zarr.open_array(res["scipy"]["out"], mode="r")
    for z in (0, 100, 255):  # spot-check planes against scipy on the whole array
        assert np.array_equal(exact[z], ref[z]), f"exact plane {z} differs from scipy"
        diff = np.abs(fast[z].astype(np.int64) - ref[z]).max()
        assert diff <= 1, f"fast plane {z} is {diff} grey levels from scipy"
    profiles = {"fast": run("ours-profile", src, "1k-profile"),
                "exact": run("ours-exact-profile", src, "1k-profile")}
    box_text, _ = kernel_box(src)
    big = make("4g", VOLUMES["4g"])
    mem = {w: run(w, big, "4g") for w in ("ours", "read-floor")}
    blobs = make("label", (128, 1024, 1024), "blobs")
    lab = {w: run(w, blobs, "label") for w in ("ours-label", "dask-image-label")}
    for r in [*res.values(), *profiles.values(), *mem.values(), *lab.values()]:
        shutil.rmtree(r["out"], ignore_errors=True)

    shape1k, shape4g = VOLUMES["1k"], VOLUMES["4g"]
    ours = res["ours"]["s"]
    names = (("napari-lazyproc, fast", "ours"), ("napari-lazyproc, exact", "ours-exact"),
             ("scipy (single-threaded)", "scipy"), ("dask-image to_zarr", "dask-image"),
             ("read floor: read + decode the input", "read-floor"),
             ("write floor: encode + write the result", "write-floor"),
             ("read floor, zarrs", "read-floor-zarrs"),
             ("write floor, zarrs", "write-floor-zarrs"))
    rows = [[name, f"{res[k]['s']:.1f}", f"{res[k]['cpu']:.1f}",
             f"{_mvox(shape1k, res[k]['s']):.0f}", f"{res[k]['s'] / ours:.2f}",
             f"{res[k]['rss'] / gib:.2f}"] for name, k in names]
    d_ratio, s_ratio = res["dask-image"]["s"] / ours, res["scipy"]["s"] / ours
    mvox = _mvox(shape1k, ours)
    # the faster of zarr-python's codec pipeline and zarrs (ours), each way
    read_f = min((res[w] for w in ("read-floor", "read-floor-zarrs")), key=lambda r: r["s"])
    write_f = min((res[w] for w in ("write-floor", "write-floor-zarrs")), key=lambda r: r["s"])
    floors = read_f["s"] + write_f["s"]
    floor_cpu = read_f["cpu"] + write_f["cpu"]
    cores = os.cpu_count() or 1
    fast_cpu = profiles["fast"]["phases"].get("compute cpu", 0.0)
    big_s, big_rss = mem["ours"]["s"], mem["ours"]["rss"]
    l_ratio = lab["dask-image-label"]["s"] / lab["ours-label"]["s"]
    text = (
        "## Export: gaussian sigma=2, 256 x 1024 x 1024 uint16 (512 MiB) to zarr\n\n"
        f"Each peer in its own process (imports not timed), median of {REPEATS} runs "
        "interleaved peer by peer (peak RSS: the highest; scipy: one run); fast = OpenCV "
        "kernels (the default), exact = bitwise scipy; time / fast above 1: fast is "
        "quicker; CPU: the process's, all threads. The floors are what any exporter of "
        "this file pays: reading and decoding its chunks, and "
        "encoding and writing the result's (zstd, same chunks), with zarr-python's codec "
        "pipeline (dask-image's) and with zarrs (ours); below, the faster of each.\n\n"
        + table(["peer", "seconds", "CPU s", "Mvox/s", "time / fast", "peak RSS GiB"],
                rows)
        + f"\n\nTargets (fast): >= {DASK_RATIO:g}x dask-image "
        f"({_verdict(d_ratio >= DASK_RATIO)}: {d_ratio:.2f}x), >= {MVOX_S:g} Mvox/s "
        f"({_verdict(mvox >= MVOX_S)}: {mvox:.0f} Mvox/s); {DASK_RATIO:g}x dask-image would "
        f"be {res['dask-image']['s'] / DASK_RATIO:.1f} s. Fast is "
        f"{res['ours-exact']['s'] / ours:.2f}x the exact path's speed and {s_ratio:.2f}x "
        f"scipy's. Read + write floors together: {floors:.1f} s "
        f"({_mvox(shape1k, floors):.0f} Mvox/s): the fast export takes {ours / floors:.2f}x "
        f"their time. CPU: the fast export used {res['ours']['cpu']:.1f} s on {cores} cores "
        f"({res['ours']['cpu'] / ours:.2f} cores busy over its wall); the floors alone use "
        f"{floor_cpu:.1f} s of CPU, i.e. at least {floor_cpu / cores:.1f} s on {cores} cores "
        f"({_mvox(shape1k, floor_cpu / cores):.0f} Mvox/s) before any filtering.\n\n"
        "Where the export's time goes (one more run of each precision with its phases "
        "timed in the export's threads, summed over them: CPU is the thread's own, so "
        "zarr's decode and encode, done in zarr's pool, show as time waiting on read and "
        "write, and count in the process CPU only):\n\n"
        + table(["precision", "wall s", "process CPU s", "compute CPU s", "compute wall s",
                 "resume digest CPU s", "waiting on read s", "waiting on write s"],
                _profile_rows(profiles))
        + f"\n\nCPU budget at {MVOX_S:g} Mvox/s on {cores} cores: "
        f"{math.prod(shape1k) / MVOX_S / 1e6 * cores:.1f} s; the floors (decode + encode) "
        f"use {floor_cpu:.1f} s of it, the fast kernels {fast_cpu:.1f} s in place "
        f"({math.prod(shape1k) / fast_cpu / 1e6:.0f} Mvox/s per core)."
        + "\n\n" + box_text
        + f"\n\n4 GiB input (512 x 2048 x 2048 uint16), fast: export {big_s:.0f} s, "
        f"{_mvox(shape4g, big_s):.0f} Mvox/s ({4 * gib / big_s / 1e6:.0f} MB/s), "
        f"peak RSS {big_rss / gib:.2f} GiB = {big_rss / 1e9:.2f} GB "
        f"(target <= {RSS_MAX / 1e9:g} GB: "
        f"{_verdict(big_rss <= RSS_MAX)}); its read floor {mem['read-floor']['s']:.0f} s "
        f"({_mvox(shape4g, mem['read-floor']['s']):.0f} Mvox/s).\n\n"
        f"Global labeling export, blobs 128 x 1024 x 1024: napari-lazyproc "
        f"{lab['ours-label']['s']:.1f} s ({_mvox((128, 1024, 1024), lab['ours-label']['s']):.0f}"
        f" Mvox/s), dask-image label + to_zarr {lab['dask-image-label']['s']:.1f} s "
        f"({_mvox((128, 1024, 1024), lab['dask-image-label']['s']):.1f} Mvox/s): "
        f"{l_ratio:.0f}x (target >= 20x: {_verdict(l_ratio >= 20)}).\n\n"
        + f"{foreign_note(start)} {version}"
    )
    print(text)
    return text


if __name__ == "__main__":
    main()

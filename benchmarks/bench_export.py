"""Export: gaussian sigma=2 of a volume to zarr, peak memory, and global labeling export.

Peers, side by side in one run (each in a fresh subprocess, so peak RSS is its own):

- napari-lazyproc: ``lp.export(lp.apply("gaussian", img, sigma=2), out, format="zarr")``;
- scipy: load the whole array, ``scipy.ndimage.gaussian_filter`` single-threaded, write;
- dask-image: ``dask_image.ndfilters.gaussian_filter(da.from_zarr(arr), 2).to_zarr(out)``;
- labeling: ``lp.export(lp.apply("label", mask, scope="global"), out)`` against
  ``dask_image.ndmeasure.label(mask)[0].to_zarr(out)``.

Data: 256 x 1024 x 1024 uint16 (chunks 32 x 256 x 256); for memory, 512 x 2048 x 2048
uint16 (4 GiB); a blobs mask 128 x 1024 x 1024 (chunks 32 x 256 x 256) for labeling.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import scipy.ndimage as ndi
from _common import DATA, table

CHUNKS = (32, 256, 256)
VOLUMES = {"1k": (256, 1024, 1024), "4g": (512, 2048, 2048)}

RUN = textwrap.dedent("""
    import json, sys, time
    import dask, dask.array as da, zarr, scipy.ndimage as ndi
    from dask_image import ndfilters, ndmeasure
    import napari_lazyproc as lp
    which, src, out = sys.argv[1:4]
    t0 = time.perf_counter()  # imports done: only the work is timed
    if which == "ours":
        import napari_lazyproc as lp
        lp.export(lp.apply("gaussian", lp.open_image(src), sigma=2.0), out, format="zarr")
    elif which == "scipy":
        import zarr, scipy.ndimage as ndi
        a = zarr.open_array(src, mode="r")
        r = ndi.gaussian_filter(a[:], 2.0)
        z = zarr.create_array(out, shape=r.shape, chunks=a.chunks, dtype=r.dtype)
        z[:] = r
    elif which == "dask-image":
        import dask, dask.array as da, zarr
        from dask_image import ndfilters
        a = da.from_zarr(zarr.open_array(src, mode="r"))
        with dask.config.set(scheduler="threads"):
            ndfilters.gaussian_filter(a, 2.0).to_zarr(out)
    elif which == "ours-label":
        import napari_lazyproc as lp
        lp.export(lp.apply("label", lp.open_image(src), scope="global"), out, format="zarr")
    elif which == "dask-image-label":
        import dask, dask.array as da, zarr
        from dask_image import ndmeasure
        a = da.from_zarr(zarr.open_array(src, mode="r"))
        with dask.config.set(scheduler="threads"):
            ndmeasure.label(a)[0].to_zarr(out)
    took = time.perf_counter() - t0
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, inherited at fork)
    hwm = next(
        int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")
    )
    print(json.dumps({"s": took, "rss": hwm * 1024}))
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


def main() -> str:
    import zarr

    src = make("1k", VOLUMES["1k"])
    res = {w: run(w, src, "1k") for w in ("ours", "scipy", "dask-image")}
    a = zarr.open_array(res["ours"]["out"], mode="r")
    b = zarr.open_array(res["scipy"]["out"], mode="r")
    for z in (0, 100, 255):  # spot-check planes against scipy on the whole array
        assert np.array_equal(a[z], b[z]), f"plane {z} differs from scipy"
    big = make("4g", VOLUMES["4g"])
    mem = run("ours", big, "4g")
    blobs = make("label", (128, 1024, 1024), "blobs")
    lab = {w: run(w, blobs, "label") for w in ("ours-label", "dask-image-label")}
    for r in [*res.values(), mem, *lab.values()]:
        shutil.rmtree(r["out"], ignore_errors=True)

    ours = res["ours"]["s"]
    gib = 2**30
    rows = [[name, f"{r['s']:.1f}", f"{r['s'] / ours:.2f}", f"{r['rss'] / gib:.2f}"]
            for name, r in (("napari-lazyproc", res["ours"]),
                            ("scipy (single-threaded)", res["scipy"]),
                            ("dask-image to_zarr", res["dask-image"]))]
    s_ratio, d_ratio = res["scipy"]["s"] / ours, res["dask-image"]["s"] / ours
    l_ratio = lab["dask-image-label"]["s"] / lab["ours-label"]["s"]
    text = (
        "## Export: gaussian sigma=2, 256 x 1024 x 1024 uint16 (512 MiB) to zarr\n\n"
        + table(["peer", "seconds", "x ours", "peak RSS GiB"], rows)
        + f"\n\nTargets: >= 1.7x scipy ({'met' if s_ratio >= 1.7 else 'MISSED'}: {s_ratio:.2f}x), "
        f">= 1.5x dask-image ({'met' if d_ratio >= 1.5 else 'MISSED'}: {d_ratio:.2f}x).\n\n"
        f"4 GiB input (512 x 2048 x 2048 uint16): export {mem['s']:.0f} s, "
        f"{4 * gib / mem['s'] / 1e6:.0f} MB/s, peak RSS {mem['rss'] / gib:.2f} GiB "
        f"(target <= 1.5 GB: {'met' if mem['rss'] <= 1.5e9 else 'MISSED'}).\n\n"
        f"Global labeling export, blobs 128 x 1024 x 1024: napari-lazyproc "
        f"{lab['ours-label']['s']:.1f} s, dask-image label + to_zarr "
        f"{lab['dask-image-label']['s']:.1f} s: {l_ratio:.0f}x "
        f"(target >= 20x: {'met' if l_ratio >= 20 else 'MISSED'})."
    )
    print(text)
    return text


if __name__ == "__main__":
    main()

"""CPU and GPU (CuPy) side by side in one run: first-plane latency, global labels, export.

Data: a 128 x 1024 x 1024 uint16 volume (smooth noise) and a blobs mask of the same shape,
chunks (32, 256, 256): the first plane (z = 64) of a Gaussian (sigma 2) and a median
(3 x 3 x 3), and global labeling of the mask. A 512 x 2048 x 2048 uint16 volume (4 GiB):
export of a Gaussian and a median to zarr, and the export of the raw volume (read, decode,
encode, write: the floor any export of it has). The CPU path is the default ("fast")
precision. Without CuPy and a CUDA device it measures nothing and says so: GPU numbers are
only ever recorded from a run on a GPU.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.ndimage as ndi
from _common import DATA, code_version, table

CHUNKS = (32, 256, 256)
SMALL, BIG = (128, 1024, 1024), (512, 2048, 2048)
Z = 64
#: first-plane and labeling runs per backend (the best is kept), after one warm-up
REPEATS = 3


def _write(path, shape, kind):
    """A zarr volume of smooth noise (uint16) or blobs (uint8), written slab by slab on
    every core (each slab's generator seeded by its index, so the data is the same)."""
    import zarr

    if (path / "zarr.json").exists():
        return path
    arr = zarr.create_array(path, shape=shape, chunks=CHUNKS, overwrite=True,
                            dtype="uint8" if kind == "blobs" else "uint16")

    def slab(z):
        rng = np.random.default_rng(z)
        values = rng.random((CHUNKS[0], *shape[1:]), dtype=np.float32)
        if kind == "blobs":
            low = ndi.gaussian_filter(values, 4)
            arr[z : z + CHUNKS[0]] = low > np.percentile(low, 80)
        else:
            arr[z : z + CHUNKS[0]] = (ndi.uniform_filter(values, 3) * 60000).astype(np.uint16)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(slab, range(0, shape[0], CHUNKS[0])))
    return path


def _timed(fn) -> float:
    from napari_lazyproc.ops import CACHE

    CACHE.clear()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _best(fn, backend: str) -> float:
    import napari_lazyproc as lp

    lp.set_backend(backend)
    try:
        fn()  # warm-up: CUDA kernels compile on first use
        return min(_timed(fn) for _ in range(REPEATS))
    finally:
        lp.set_backend("numpy")


def _export_seconds(make, out, backend: str) -> float:
    import napari_lazyproc as lp

    lp.set_backend(backend)
    try:
        shutil.rmtree(out, ignore_errors=True)
        return _timed(lambda: lp.export(make(), out, format="zarr"))
    finally:
        lp.set_backend("numpy")
        shutil.rmtree(out, ignore_errors=True)


def main() -> str:
    import napari_lazyproc as lp

    ok, why = lp.gpu_available()
    if not ok:
        text = (f"## GPU (CuPy)\n\nNot measured: {why}. The GPU path is tested only where a "
                f"device is present; no GPU numbers are recorded without one.")
        print(text)
        return text
    import cupy

    DATA.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    noise = _write(DATA / "gpu-noise-128.zarr", SMALL, "noise")
    blobs = _write(DATA / "gpu-blobs-128.zarr", SMALL, "blobs")
    big = _write(DATA / "gpu-noise-512x2048x2048.zarr", BIG, "noise")
    print(f"data written in {time.perf_counter() - t0:.0f} s", flush=True)
    img, mask = lp.open_image(noise), lp.open_image(blobs)

    floor = min(_timed(lambda: np.asarray(img.levels[0][Z - 8 : Z + 9])) for _ in range(REPEATS))
    rows = []
    for label, fn in (
        ("first plane, gaussian sigma=2",
         lambda: np.asarray(lp.apply("gaussian", img, sigma=2.0)[Z])),
        ("first plane, median 3x3x3", lambda: np.asarray(lp.apply("median", img, size=3)[Z])),
        ("global labels (128 Mvox)", lambda: lp.apply("label", mask, scope="global").run()),
    ):
        cpu, gpu = _best(fn, "numpy"), _best(fn, "cupy")
        rows.append([label, f"{cpu * 1000:.0f} ms", f"{gpu * 1000:.0f} ms", f"{cpu / gpu:.1f}x"])
        print(rows[-1], flush=True)

    mvox = np.prod(BIG) / 1e6
    raw = _export_seconds(lambda: lp.open_image(big), DATA / "gpu-raw.zarr", "numpy")
    export_rows = [["raw volume (read + write floor)", f"{mvox / raw:.0f}", "", ""]]
    print(export_rows[-1], flush=True)
    for op, params in (("gaussian", {"sigma": 2.0}), ("median", {"size": 3})):
        seconds = {backend: _export_seconds(
            lambda op=op, params=params: lp.apply(op, lp.open_image(big), **params),
            DATA / f"gpu-{op}-{backend}.zarr", backend) for backend in ("numpy", "cupy")}
        export_rows.append([f"{op} {params}", f"{mvox / seconds['numpy']:.0f}",
                            f"{mvox / seconds['cupy']:.0f}",
                            f"{seconds['numpy'] / seconds['cupy']:.1f}x"])
        print(export_rows[-1], flush=True)
    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    text = (
        f"## GPU (CuPy) on {device}\n\n"
        f"{code_version()}. CPU: the default (fast) precision on all "
        f"{os.cpu_count()} cores of the same machine; GPU: CuPy {cupy.__version__}.\n\n"
        + table(["plane / job", "CPU", "GPU", "GPU speed-up"], rows)
        + f"\n\nReading and decoding the chunks one plane needs (z {Z} +- 8) alone: "
        f"{floor * 1000:.0f} ms.\n\n"
        + table(["export of 512 x 2048 x 2048 uint16 to zarr", "CPU Mvox/s", "GPU Mvox/s",
                 "GPU speed-up"], export_rows)
        + "\n\nTargets: export at least 20x the CPU path for the Gaussian and 10x for the "
        "median, first plane under 50 ms."
    )
    print(text)
    return text


if __name__ == "__main__":
    main()

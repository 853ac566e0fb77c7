"""CPU and GPU (CuPy) side by side in one run: first-plane latency and export throughput.

Data: the 128 x 1024 x 1024 test volume of bench_ops (first plane of gaussian sigma=2,
median 3x3x3, and global labeling of the blobs mask), and the 4 GiB volume of
bench_export (512 x 2048 x 2048 uint16) for export throughput of gaussian and median.
Without CuPy and a CUDA device it measures nothing and says so: GPU numbers are only
ever recorded from a run on a GPU.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
from _common import DATA, table

Z = 64


def _timed(fn) -> float:
    from napari_lazyproc.ops import CACHE

    CACHE.clear()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> str:
    import napari_lazyproc as lp

    ok, why = lp.gpu_available()
    if not ok:
        text = (f"## GPU (CuPy)\n\nNot measured: {why}. The GPU path is tested only where a "
                f"device is present; no GPU numbers are recorded without one.")
        print(text)
        return text
    import cupy
    from bench_export import VOLUMES, make
    from bench_ops import make_data

    noise, blobs = make_data()
    img, mask = lp.open_image(noise), lp.open_image(blobs)
    rows = []
    for label, fn in (
        ("first plane gaussian sigma=2",
         lambda: np.asarray(lp.apply("gaussian", img, sigma=2.0)[Z])),
        ("first plane median 3x3x3", lambda: np.asarray(lp.apply("median", img, size=3)[Z])),
        ("global labeling", lambda: lp.apply("label", mask, scope="global").run()),
    ):
        times = {}
        for backend in ("numpy", "cupy"):
            lp.set_backend(backend)
            fn()  # warm-up (CUDA kernels compile on first use)
            times[backend] = min(_timed(fn) for _ in range(3))
        lp.set_backend("numpy")
        rows.append([label, f"{times['numpy'] * 1000:.0f} ms", f"{times['cupy'] * 1000:.0f} ms",
                     f"{times['numpy'] / times['cupy']:.1f}x"])
    read_floor = min(_timed(lambda: np.asarray(img.levels[0][Z - 8 : Z + 9])) for _ in range(3))

    big = make("4g", VOLUMES["4g"])
    export_rows = []
    for op, params in (("gaussian", {"sigma": 2.0}), ("median", {"size": 3})):
        speeds = {}
        for backend in ("numpy", "cupy"):
            lp.set_backend(backend)
            out = DATA / f"gpu-{op}-{backend}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            t = _timed(lambda op=op, params=params, out=out: lp.export(
                lp.apply(op, lp.open_image(big), **params), out, format="zarr"))
            speeds[backend] = 4 * 2**30 / t / 1e6
            shutil.rmtree(out, ignore_errors=True)
        lp.set_backend("numpy")
        export_rows.append([op, f"{speeds['numpy']:.0f} MB/s", f"{speeds['cupy']:.0f} MB/s",
                            f"{speeds['cupy'] / speeds['numpy']:.1f}x"])
    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    text = (
        f"## GPU (CuPy) on {device}\n\n"
        + table(["plane / job", "CPU", "GPU", "speed-up"], rows)
        + f"\n\nReading the slab for one plane (z +- 8) alone: {read_floor * 1000:.0f} ms.\n\n"
        + table(["export 4 GiB", "CPU", "GPU", "speed-up"], export_rows)
        + "\n\nTargets on an H100: >= 20x CPU export throughput for gaussian, >= 10x for "
        "median, plane latency bound by reading the input."
    )
    print(text)
    return text


if __name__ == "__main__":
    main()

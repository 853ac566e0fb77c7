"""Open a file and show its first plane: napari-lazyproc against napari's readers.

Two OME-Zarr 0.4 files: one of about 1 TB virtual (a few chunks written, zarr fills the
rest) and one of about 1 GB fully written. For each, a real (hidden) napari viewer opens
the file with each peer's reader and slices the first plane; the time until the plane is
loaded is the median of several repeats, with napari's dask cache emptied between runs.

Peers: napari-lazyproc, napari's builtin zarr reader (``napari``), and ``napari-ome-zarr``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from _common import DATA, machine, median, table

REPEATS = 7
PEERS = ["napari-lazyproc", "napari", "napari-ome-zarr"]


def _write_ome(path, shape, chunks, levels, fill: str) -> None:
    import zarr

    if (path / ".zattrs").exists() and "multiscales" in json.loads((path / ".zattrs").read_text()):
        return
    group = zarr.open_group(path, mode="w", zarr_format=2)
    datasets = []
    for i in range(levels):
        f = 2**i
        lshape = (*shape[:-2], -(-shape[-2] // f), -(-shape[-1] // f))
        arr = group.create_array(str(i), shape=lshape, chunks=chunks, dtype="uint16",
                                 fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"})
        if fill == "all":
            rng = np.random.default_rng(i)
            step = chunks[-3]
            for z in range(0, lshape[-3], step):
                block = rng.integers(100, 200, size=(*lshape[:-3], min(step, lshape[-3] - z),
                                                     *lshape[-2:]), dtype=np.uint16)
                arr[..., z : z + step, :, :] = block
        else:  # the first plane's chunks and the centre of the coarsest level
            region = tuple(slice(0, 1) for _ in lshape[:-3]) + (slice(0, chunks[-3]),)
            arr[region] = 150
        datasets.append({"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * (len(shape) - 3) + [2.0, 0.4 * f, 0.4 * f]}]})
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}][: len(shape) - 3]
    axes += [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]
    group.attrs["omero"] = {"channels": [{
        "label": "nuclei", "color": "FFFFFF",
        "window": {"start": 100, "end": 200, "min": 0, "max": 65535},
    }]}


def make_data():
    DATA.mkdir(parents=True, exist_ok=True)
    tb = DATA / "virtual_1tb.ome.zarr"
    gb = DATA / "dense_1gb.ome.zarr"
    # t, c, z, y, x: 100 x 1 x 512 x 4096 x 2560 uint16 = 1.07 TB
    _write_ome(tb, (100, 1, 512, 4096, 2560), (1, 1, 64, 256, 256), 4, fill="first")
    # 4 x 1 x 128 x 1024 x 1024 uint16 = 1.07 GB, same axes (so napari shows the same sliders)
    _write_ome(gb, (4, 1, 128, 1024, 1024), (1, 1, 64, 256, 256), 4, fill="all")
    return {"1 TB virtual": tb, "1 GB": gb}


def measure(path, plugins: list[str]) -> dict[str, list[float]]:
    """Times per plugin, interleaved run by run so that drift hits every peer alike."""
    import time

    import napari
    from napari.utils import resize_dask_cache

    viewer = napari.Viewer(show=False)
    times: dict[str, list[float]] = {p: [] for p in plugins}
    try:
        for _ in range(REPEATS):
            for plugin in plugins:
                viewer.layers.clear()
                resize_dask_cache(0)
                resize_dask_cache(int(2**30))
                t0 = time.perf_counter()
                layer = viewer.open(str(path), plugin=plugin)[0]
                plane = np.asarray(layer._slice.image.raw)
                times[plugin].append(time.perf_counter() - t0)
                assert layer.loaded and plane.size > 0
    finally:
        viewer.close()
    return times


def main() -> str:
    data = make_data()
    rows = []
    results = {}
    for label, path in data.items():
        for plugin in PEERS[1:]:  # a peer that cannot open the file is reported, not fatal
            try:
                measure(path, [plugin])
            except Exception as exc:  # noqa: BLE001
                print(f"{plugin} on {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                results[(label, plugin)] = None
        plugins = [p for p in PEERS if (label, p) not in results]
        for plugin, times in measure(path, plugins).items():
            results[(label, plugin)] = median(times)
    for label in data:
        ours = results[(label, "napari-lazyproc")]
        for plugin in PEERS:
            t = results[(label, plugin)]
            ratio = f"{t / ours:.2f}x" if t and ours else "n/a"
            rows.append([label, plugin, f"{t:.3f} s" if t else "failed", ratio])
    tb, gb = results[("1 TB virtual", "napari-lazyproc")], results[("1 GB", "napari-lazyproc")]
    out = [
        "## Open a file and show its first plane (`bench_open.py`)",
        "",
        f"Median of {REPEATS} runs, peers interleaved run by run in one hidden napari viewer, "
        "napari's dask cache emptied before each open; "
        "ratio = peer time / napari-lazyproc time (above 1: we are faster).",
        "",
        table(["file", "reader", "open + first plane", "peer / ours"], rows),
        "",
        f"napari-lazyproc: 1 TB / 1 GB = {tb / gb:.2f} (target at most 1.5); "
        f"worst {max(tb, gb):.3f} s (target at most 0.5 s).",
    ]
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    print(machine())
    main()

"""The dock widget through napari's own slicing: a parameter change, and scrolling.

Data: the 128 x 1024 x 1024 uint16 zarr of bench_ops (chunks 32 x 256 x 256), opened in
a real viewer (under Xvfb without a screen). The time is from the change (a new sigma
set on the widget's spin box, or ``viewer.dims.set_current_step``) to the new plane in
the layer's slice. Peers, side by side in one run, each a layer in the same viewer:

- napari-lazyproc: the widget's live layer (gaussian over zyx, computed in the background);
- dask-image: a layer holding ``dask_image.ndfilters.gaussian_filter(data, sigma)``,
  replaced on each change (napari slices it synchronously; its dask cache is on);
- eager: ``skimage.filters.gaussian`` of the whole volume, as napari-skimage does it.

Input chunks are warm for all (read once before timing).
"""

from __future__ import annotations

import time

import numpy as np
from _common import table

SIGMAS = [2.0, 2.25, 2.5, 2.75, 3.0, 1.75, 1.5, 2.1, 2.6, 2.4]
Z = 64


def _process(seconds: float = 0.0) -> None:
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    if seconds:
        time.sleep(seconds)


def _wait_live(layer, timeout: float = 60.0) -> None:
    """Until the layer's plane has been computed and napari has re-sliced it (every level
    of a multiscale layer not busy)."""
    from napari_lazyproc._qt.live_layers import live_states

    states = live_states(layer)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        _process()
        if not any(s.busy for s in states):
            break
        time.sleep(0.001)
    _process()  # the queued refresh runs here
    _process()


def main() -> str:
    import dask.array as da
    import napari
    import zarr
    from bench_ops import make_data
    from dask_image import ndfilters
    from napari.utils import resize_dask_cache
    from scipy import ndimage as ndi
    from skimage.filters import gaussian as sk_gaussian

    from napari_lazyproc._qt.widget import LazyProcessingWidget

    noise, _ = make_data()
    resize_dask_cache(int(2**30))
    viewer = napari.Viewer(show=True)
    (raw,) = viewer.open(str(noise), plugin="napari-lazyproc")
    viewer.dims.set_current_step(0, Z)
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.axes.value = "zyx"
    widget.set_params(sigma=SIGMAS[0])
    ours = widget.add_layer()
    _wait_live(ours)
    raw.visible = False
    full = raw.data[0] if raw.multiscale else raw.data
    # read synchronously into the engine's cache (a read of the layer's data would
    # start a background job over the whole aligned region and return a placeholder)
    full.source.read((slice(Z - 16, Z + 16), slice(0, full.shape[1]), slice(0, full.shape[2])))

    # ---- a sigma change
    ours_times = []
    for s in SIGMAS[1:]:
        t0 = time.perf_counter()
        widget.params["sigma"].value = s
        while widget._param_edit.pending:  # an edit held back by coalescing, if any
            _process(0.001)
        _wait_live(ours)
        ours_times.append(time.perf_counter() - t0)
    arr = zarr.open_array(noise, mode="r")
    slab = np.asarray(arr[Z - 16 : Z + 16])
    expected = ndi.gaussian_filter(slab, SIGMAS[-1])[16]
    ours.locked_data_level = 0  # a live update resets it; check the full-resolution plane
    _wait_live(ours)
    shown = np.asarray(ours._slice.image.raw).astype(np.int64)
    (y0, x0), (y1, x1) = ours.corner_pixels[:, -2:]  # napari shows the part on screen
    expected = expected[y0 : y1 + 1, x0 : x1 + 1]
    # precision "fast" (the default): within one grey level of scipy
    diff = np.abs(shown - expected)
    assert diff.max() <= 1, (f"the widget's layer does not show scipy's values: level "
                             f"{ours.data_level}, corners {ours.corner_pixels.tolist()}, "
                             f"{(diff > 1).mean():.3%} differ, max {diff.max()}")
    ours.visible = False

    base = da.from_zarr(arr)
    dimage = viewer.add_image(ndfilters.gaussian_filter(base, SIGMAS[0]), name="dask-image")
    dask_times = []
    for s in SIGMAS[1:5]:
        t0 = time.perf_counter()
        dimage.data = ndfilters.gaussian_filter(base, s)
        _process()
        dask_times.append(time.perf_counter() - t0)
    dimage.visible = False

    volume = np.asarray(arr)
    eager = viewer.add_image(np.zeros_like(volume, dtype=np.float64), name="eager skimage")
    eager_times = []
    for s in SIGMAS[1:3]:
        t0 = time.perf_counter()
        eager.data = sk_gaussian(volume, sigma=s, preserve_range=True)
        _process()
        eager_times.append(time.perf_counter() - t0)
    viewer.layers.remove(eager)
    del volume

    # ---- scrolling z+1, each peer alone on screen
    scroll = {}
    ours.visible = True
    lat = []
    for z in range(Z + 1, Z + 25):
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, z)
        _wait_live(ours)
        lat.append(time.perf_counter() - t0)
    scroll["napari-lazyproc"] = lat
    lat = []  # the same, with a pause between steps (reading a plane): the next is ready
    for z in range(Z + 30, Z + 42):
        _process(0.3)
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, z)
        _wait_live(ours)
        lat.append(time.perf_counter() - t0)
    scroll["napari-lazyproc paused"] = lat
    ours.visible = False
    dimage.visible = True
    viewer.dims.set_current_step(0, Z)
    _process()
    lat = []
    for z in range(Z + 1, Z + 13):
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, z)
        _process()
        lat.append(time.perf_counter() - t0)
    scroll["dask-image"] = lat
    viewer.close()

    def pct(xs, q):
        return float(np.percentile(xs, q)) * 1000

    p50 = pct(ours_times, 50)
    rows = [
        ["napari-lazyproc widget", f"{p50:.0f}", f"{pct(ours_times, 95):.0f}", "1.0",
         f"{pct(scroll['napari-lazyproc'], 50):.0f}", f"{pct(scroll['napari-lazyproc'], 95):.0f}"],
        ["napari-lazyproc, 0.3 s between steps", "", "", "",
         f"{pct(scroll['napari-lazyproc paused'], 50):.0f}",
         f"{pct(scroll['napari-lazyproc paused'], 95):.0f}"],
        ["dask-image layer", f"{pct(dask_times, 50):.0f}", f"{pct(dask_times, 95):.0f}",
         f"{pct(dask_times, 50) / p50:.1f}", f"{pct(scroll['dask-image'], 50):.0f}",
         f"{pct(scroll['dask-image'], 95):.0f}"],
        ["eager skimage (napari-skimage)", f"{pct(eager_times, 50):.0f}",
         f"{pct(eager_times, 95):.0f}", f"{pct(eager_times, 50) / p50:.1f}", "n/a (in memory)",
         ""],
    ]
    text = (
        "## Widget: sigma change and scrolling through napari (128 x 1024 x 1024 uint16, "
        "gaussian over zyx)\n\n"
        + table(["layer", "sigma change p50 ms", "p95 ms", "x slower than ours",
                 "scroll z+1 p50 ms", "p95 ms"], rows)
        + f"\n\nTargets: sigma change p50 <= 100 ms with warm input chunks "
        f"({'met' if p50 <= 100 else 'MISSED'}: {p50:.0f} ms); >= 5x faster than the "
        f"dask-image layer ({'met' if pct(dask_times, 50) / p50 >= 5 else 'MISSED'}: "
        f"{pct(dask_times, 50) / p50:.1f}x). The widget's times run until napari has "
        "re-sliced the layer with the new plane; its displayed plane is checked equal to "
        "scipy's. Scrolling: napari never waits (the previous plane stays on screen until "
        "the new one lands); while idle the planes next to the one on screen are computed "
        "ahead (after a sigma change, once it has settled for 0.3 s: while the spin box "
        "moves, each result is stale at once), so a scroll after a pause finds them "
        "ready. The dask-image layer scrolls "
        "fast within a 32-plane chunk because napari's dask cache holds the whole filtered "
        "chunk, after paying for it on the first plane (the sigma-change column)."
    )
    print(text)
    return text


if __name__ == "__main__":
    from napari_lazyproc.cli.display import ensure_display as _ensure_display

    _ensure_display()
    main()

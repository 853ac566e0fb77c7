"""Playback along t through napari's own play loop, with and without prefetch.

Data: a 20 x 64 x 1024 x 1024 uint16 (t, z, y, x) zarr series (2.7 GB; the synthetic
light-sheet nuclei, chunks 1 x 1 x 512 x 512, zstd), written once to benchmarks/_data.
A real napari viewer (under Xvfb without a screen), full resolution on screen
(``locked_data_level = 0``). Each pass presses play (``QtDims.play(0, FPS,
loop_mode="once")``) at t=0 and runs the 19 frames to t=19 at one z; passes use
different z (other chunks), and the chunk cache is emptied before each peer. Peers, each
alone on screen, side by side in one run:

- raw: the file's layer from our reader, with prefetch (the default budget, 1 GiB) and
  without (``set_prefetch_budget(0)``: a plane is then read when the player reaches it);
- filtered: a Gaussian sigma=2 over yx (per plane) of the file, as the dock widget adds
  it (a live layer, precision "fast"), with and without prefetch;
- dask-image: ``dask_image.ndfilters.gaussian_filter(da.from_zarr(...), (0, 0, 2, 2))``
  added as an image layer; napari slices it on its own thread (its dask cache on).

Per peer: the player's frames per second (frames it moved to per second of playback),
the share of those frames whose real values (read or filtered, not a placeholder) were
handed to napari while the player was on them, the frames per second shown with their
real values, and the longest time napari's thread spent in one ``_set_frame`` (slicing
a frame: what stalls the GUI).
"""

from __future__ import annotations

import time

import numpy as np
from _common import DATA, code_version, cpu_snapshot, foreign_note, median, table

SHAPE = (20, 64, 1024, 1024)
CHUNKS = (1, 1, 512, 512)  # a plane per chunk in z, as a time-lapse is written
SIGMA = 2.0
FPS = 20  # what the player is asked for
Z_PASSES = (4, 20, 36)  # one pass per z, each in other chunks
TARGET_RAW_FPS, TARGET_FILTERED_FPS, TARGET_GAIN = 15.0, 6.0, 2.0


def make_series():
    """The series on disk (written once)."""
    import dask.array as da
    import zarr

    from napari_lazyproc.synthetic import LightSheetSpec, lightsheet

    path = DATA / f"playback-20x64x1024x1024-c{'x'.join(map(str, CHUNKS))}.zarr"
    if not (path / "zarr.json").exists():
        spec = LightSheetSpec(shape=SHAPE, nuclei=1500, seed=3)
        data = lightsheet(spec, levels=1).levels[0].rechunk(CHUNKS)
        out = zarr.create_array(path, shape=SHAPE, chunks=CHUNKS, dtype=np.uint16,
                                dimension_names=["t", "z", "y", "x"], overwrite=True)
        da.store(data, out, lock=False)
    return path


def _process(seconds: float = 0.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while True:
        QApplication.processEvents()
        if time.perf_counter() >= end:
            return
        time.sleep(0.002)


class Recorder:
    """What napari shows while playing: the frames the player moved to, which of them
    were handed to napari with their real values, and how long each ``_set_frame`` kept
    napari's thread."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.dims = viewer.window._qt_viewer.dims
        self.visited: list[int] = []
        self.real: set[int] = set()
        self.frame_s: list[float] = []
        set_frame = self.dims._set_frame

        def timed(axis, frame):
            t0 = time.perf_counter()
            set_frame(axis, frame)
            self.frame_s.append(time.perf_counter() - t0)

        self.dims._set_frame = timed  # before the first play(), which connects it
        viewer.dims.events.current_step.connect(self._on_step)

    def _on_step(self, event=None) -> None:
        t = int(self.viewer.dims.current_step[0])
        if not self.visited or self.visited[-1] != t:
            self.visited.append(t)

    def watch_live(self, state) -> None:
        """Note the frames whose real values ``state`` (the level on screen) hands over."""
        lookup, compute_now = state.lookup, state.compute_now

        def looked(region):
            values = lookup(region)
            if values is not None:
                self.real.add(_t(region))
            return values

        def computed(region):
            self.real.add(_t(region))
            return compute_now(region)

        state.lookup, state.compute_now = looked, computed

    def play(self, z: int, synchronous: bool = False) -> dict:
        """One pass over t at ``z``; napari-sliced layers (``synchronous``) show every
        frame they move to with its values."""
        self.viewer.dims.set_current_step(1, z)
        self.viewer.dims.set_current_step(0, 0)
        _process(0.3)
        self.visited.clear()
        self.real.clear()
        self.frame_s.clear()
        last = SHAPE[0] - 1
        t0 = time.perf_counter()
        self.dims.play(0, FPS, loop_mode="once")
        while (not self.visited or self.visited[-1] != last) and time.perf_counter() - t0 < 300:
            _process(0.002)
        wall = time.perf_counter() - t0  # from play to the last frame
        while self.dims._animation_thread.isRunning() and time.perf_counter() - t0 < 300:
            _process(0.005)
        _process(0.2)  # the stop reaches the layers
        frames = [t for t in self.visited if t != 0]
        real = len(frames) if synchronous else len(self.real & set(frames))
        return {"fps": len(frames) / wall, "share": real / max(1, len(frames)),
                "real_fps": real / wall, "stall": max(self.frame_s, default=0.0)}


def _t(region) -> int:
    r = region[0]
    return int(r.start if isinstance(r, slice) else r)


def main() -> str:
    import dask.array as da
    import napari
    import zarr
    from dask_image import ndfilters

    import napari_lazyproc as lp
    from napari_lazyproc._layer_data import result_layer_data
    from napari_lazyproc._live import PREFETCH, set_prefetch_budget
    from napari_lazyproc._qt.live_layers import add_live_layer, live_states
    from napari_lazyproc.ops import CACHE

    path = make_series()
    start, version = cpu_snapshot(), code_version()
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    (raw,) = viewer.open(str(path), plugin="napari-lazyproc")
    raw.locked_data_level = 0
    rec = Recorder(viewer)
    budget = PREFETCH.max_bytes

    def passes(layer, state=None, prefetch=True, synchronous=False) -> dict:
        set_prefetch_budget(budget if prefetch else 0)
        CACHE.clear()
        if state is not None:
            rec.watch_live(state)
        runs = [rec.play(z, synchronous) for z in Z_PASSES]
        out = {k: median([r[k] for r in runs]) for k in runs[0]}
        out["stall"] = max(r["stall"] for r in runs)
        return out

    results = {}
    (level0, *_) = live_states(raw)
    results["raw, prefetch"] = passes(raw, level0)
    results["raw, no prefetch"] = passes(raw, None, prefetch=False)
    raw.visible = False

    img = lp.open_image(path)
    res = lp.apply("gaussian", img, sigma=SIGMA, axes="yx")
    _, kwargs, kind = result_layer_data(res, f"gaussian σ={SIGMA:g}")
    ours = add_live_layer(viewer, res, kwargs, kind)
    ours.locked_data_level = 0
    results["filtered (ours), prefetch"] = passes(ours, live_states(ours)[0])
    results["filtered (ours), no prefetch"] = passes(ours, live_states(ours)[0],
                                                     prefetch=False)
    ours.visible = False

    base = da.from_zarr(zarr.open_array(path, mode="r"))
    dimage = viewer.add_image(ndfilters.gaussian_filter(base, (0, 0, SIGMA, SIGMA)),
                              name="dask-image", contrast_limits=ours.contrast_limits)
    results["filtered (dask-image)"] = passes(dimage, synchronous=True)
    set_prefetch_budget(budget)
    viewer.close()

    rows = [[name, f"{r['fps']:.1f}", f"{100 * r['share']:.0f}%", f"{r['real_fps']:.1f}",
             f"{1000 * r['stall']:.0f}"] for name, r in results.items()]
    raw_fps = results["raw, prefetch"]["real_fps"]
    filt = results["filtered (ours), prefetch"]["real_fps"]
    without = results["filtered (ours), no prefetch"]["real_fps"]
    gain = filt / without if without else float("inf")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    text = (
        f"## Playback along t: {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} x {SHAPE[3]} uint16 "
        f"zarr (chunks {' x '.join(map(str, CHUNKS))}), napari's play loop at {FPS} fps, "
        f"full resolution on screen\n\n"
        + table(["layer", "player fps", "frames shown with values", "fps with values",
                 "longest napari-thread frame ms"], rows)
        + f"\n\nTargets: raw playback >= {TARGET_RAW_FPS:.0f} fps with values "
        f"({verdict(raw_fps >= TARGET_RAW_FPS)}: {raw_fps:.1f}); filtered >= "
        f"{TARGET_FILTERED_FPS:.0f} fps with values ({verdict(filt >= TARGET_FILTERED_FPS)}: "
        f"{filt:.1f}); prefetch >= {TARGET_GAIN:.0f}x the filtered frames of the same layer "
        f"without it ({verdict(gain >= TARGET_GAIN)}: {gain:.1f}x). Medians of "
        f"{len(Z_PASSES)} passes of 19 frames (one per z: {Z_PASSES}); chunk cache emptied "
        "before each peer, files in the OS page cache. 'player fps' is how fast napari's "
        "player moved (it waits for each frame's draw; a placeholder draws at once); 'fps "
        "with values' counts only frames whose real values were handed to napari while "
        "the player was on them (dask-image's always are: napari waits for them on its "
        "own thread, hence its player fps and its longest frame). Without prefetch a "
        "raw plane is read, and a filtered frame computed, in the background when the "
        "player reaches it (nothing is read on napari's thread), and dropped when it "
        f"moves on first. {foreign_note(start)} {version}"
    )
    print(text)
    return text


if __name__ == "__main__":
    from napari_lazyproc.cli.display import ensure_display as _ensure_display

    _ensure_display()
    main()

"""Multiscale results on screen: toggling a filtered layer to 3D, and a zoomed-out 2D view.

A real napari viewer (1500 x 950 window, under Xvfb without a screen) with a gaussian
layer added through the dock widget. Each peer runs in its own subprocess, so that a peer
that aborts (a GL error, a signal), runs out of time or grows past 12 GiB is recorded
rather than fatal, and its peak RSS (``VmHWM``) is its own. Peers:

- 3D, sample: ``open_sample("napari-lazyproc", "lightsheet")`` (100 x 256 x 2048 x 2048
  uint16, 200 GB virtual, a 4-level yx pyramid) plus a gaussian sigma=2 over zyx
  through the widget, at t=50, z=128 in 2D; then ``viewer.dims.ndisplay = 3``;
- 3D, OME-Zarr: the same on a 3 x 96 x 1024 x 1024 uint16 tzyx pyramid written with
  ome-zarr-py (3 levels in yx, chunks 1 x 32 x 256 x 256), opened with our reader;
- dask-image: ``dask_image.ndfilters.gaussian_filter`` over each file's level-0 dask array
  as a single-scale layer, toggled to 3D the same way; napari slices it synchronously,
  so it gets 120 s from the toggle;
- napari floor: the same 3D picture with the raw and filtered coarsest volumes already
  in memory (two numpy layers at the coarsest voxel size): what napari's renderer alone
  costs on this machine;
- 2D zoomed out: a single-scale 16384 x 16384 uint16 zarr plane (chunks 1024 x 1024,
  512 MB), opened with our reader (virtual display levels), then a gaussian sigma=2
  over yx added through the widget and ``viewer.reset_view()``; given 30 s. Once more
  with napari's cache of a 2-D multiscale layer's coarsest level cleared before each
  refresh of a live layer (patched in that process only), to show what a fix gives.

"On screen" is the first 10 ms tick after the first canvas draw that follows napari's
re-slice with the computed values (the level shown: the coarsest in 3D, ``data_level``
in 2D), i.e. once the frame has been rendered. The longest
stall is the largest gap between ticks of a 10 ms QTimer running from just before the
toggle (or the add) until everything measured is on screen. Before each toggle the 2D
view is on screen and the background work it started (planes next to the one on
screen) has finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from _common import DATA, table

SIGMA = 2.0
WINDOW = (1500, 950)
OME_SHAPE = (3, 96, 1024, 1024)  # t, z, y, x
OME_CHUNKS = (1, 32, 256, 256)
PLANE_SHAPE = (16384, 16384)
PLANE_CHUNKS = (1024, 1024)
SETUP_TIMEOUT = 300.0  # a peer's viewer, file and first 2D view
MEASURE_TIMEOUT = 120.0  # from the toggle (or the add) until on screen
RSS_LIMIT = 12 * 2**30  # a peer above this is stopped: the machine is shared
TARGET_RATIO, TARGET_SLACK = 1.5, 0.5  # filtered 3D within 1.5x raw + 0.5 s
TARGET_STALL = 0.100
TARGET_RSS = 2e9
TARGET_2D = 1.0


# ----------------------------------------------------------------------------- data
def _ome_block(block_info=None) -> np.ndarray:
    """A lattice of blurry nuclei drifting with t, a haze falling off with depth, noise."""
    loc = block_info[None]["array-location"]
    (t, _), (z0, z1), (y0, y1), (x0, x1) = loc
    z = np.arange(z0, z1, dtype=np.float32)
    y = np.arange(y0, y1, dtype=np.float32)
    x = np.arange(x0, x1, dtype=np.float32)

    def lattice(c, period, width, shift):
        d = (c + shift) % period - period / 2
        return np.exp(-0.5 * (d / width) ** 2).astype(np.float32)

    gz, gy, gx = lattice(z, 12, 2.0, 0), lattice(y, 24, 4.0, 3 * t), lattice(x, 24, 4.0, 2 * t)
    haze = (150 * np.exp(-z / 120))[:, None, None] * (0.7 + 0.3 * np.cos(y / 200))[None, :, None]
    vol = 1500 * gz[:, None, None] * gy[None, :, None] * gx[None, None, :] + haze + 100
    rng = np.random.default_rng([t, z0, y0, x0])
    vol += rng.standard_normal(vol.shape, dtype=np.float32) * 8
    return np.clip(vol, 0, 65535).astype(np.uint16)[None]


def _write_ome(path: Path) -> None:
    import shutil

    import dask.array as da
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    if (path / ".bench-done").exists():
        return
    if path.exists():
        shutil.rmtree(path)
    t, z, y, x = OME_SHAPE
    step = OME_CHUNKS[1]
    image = da.map_blocks(_ome_block, dtype=np.uint16,
                          chunks=((1,) * t, (step,) * (z // step), (y,), (x,)))
    write_image(image, str(path), scale_factors=[2, 4], method=Methods.LOCAL_MEAN,
                axes="tzyx", scale={"z": 2.0, "y": 0.4, "x": 0.4},
                axes_units={"t": "second", "z": "micrometer", "y": "micrometer",
                            "x": "micrometer"},
                storage_options={"chunks": OME_CHUNKS}, name="lattice")
    (path / ".bench-done").write_text("")


def _write_plane(path: Path) -> None:
    import zarr

    if (path / ".bench-done").exists():
        return
    arr = zarr.create_array(str(path), shape=PLANE_SHAPE, chunks=PLANE_CHUNKS, dtype="uint16",
                            overwrite=True)
    x = np.arange(PLANE_SHAPE[1], dtype=np.float32)
    gx = np.exp(-0.5 * ((x % 40 - 20) / 5) ** 2)
    for y0 in range(0, PLANE_SHAPE[0], PLANE_CHUNKS[0]):
        y = np.arange(y0, y0 + PLANE_CHUNKS[0], dtype=np.float32)
        gy = np.exp(-0.5 * ((y % 40 - 20) / 5) ** 2)
        strip = 1200 * gy[:, None] * gx[None, :] + 300 + 200 * np.sin(y / 900)[:, None] \
            * np.cos(x / 1300)[None, :]
        rng = np.random.default_rng(y0)
        strip += rng.standard_normal(strip.shape, dtype=np.float32) * 10
        arr[y0 : y0 + PLANE_CHUNKS[0]] = np.clip(strip, 0, 65535).astype(np.uint16)
    (path / ".bench-done").write_text("")


def make_data() -> dict[str, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    ome, plane = DATA / "lattice_3x96x1024x1024.ome.zarr", DATA / "plane_16384.zarr"
    t0 = time.perf_counter()
    _write_ome(ome)
    _write_plane(plane)
    print(f"data ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return {"ome": ome, "plane": plane}


# ----------------------------------------------------------------------------- child side
def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _spin(seconds: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while True:
        QApplication.processEvents()
        if time.perf_counter() >= end:
            break
        time.sleep(0.005)


def _settle(layers, timeout: float = SETUP_TIMEOUT) -> None:
    """Until no live level of ``layers`` is busy and the display thread has drained the
    work queued so far (planes computed ahead), so a measurement starts from idle."""
    from concurrent.futures import Future

    from napari_lazyproc import _live
    from napari_lazyproc._qt.live_layers import live_states

    states = [s for layer in layers for s in live_states(layer)]
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        _spin(0.02)
        if not any(s.busy for s in states):
            break
    while True:  # the single display thread runs work in order: wait for a no-op
        drained: Future = _live._executor.submit(lambda: None)
        while not drained.done() and time.perf_counter() - t0 < timeout:
            _spin(0.02)
        _spin(0.3)
        if not any(s.busy for s in states) or time.perf_counter() - t0 > timeout:
            break


def _key_shape(key) -> tuple:
    """The shape of a computed region (a ``LiveState`` key), without axes of length 1."""
    return tuple(k[1] - k[0] for k in key if isinstance(k, tuple) and k[1] - k[0] != 1)


class _Measure:
    """A 10 ms QTimer's ticks (event-loop stalls) and when each watched layer is on screen:
    the first tick after the first canvas draw that follows napari's re-slice with the
    new values (the tick comes once the frame has been rendered and composited)."""

    def __init__(self, viewer) -> None:
        from qtpy.QtCore import QEventLoop, Qt, QTimer

        self.canvas = viewer.window._qt_viewer.canvas._scene_canvas
        self.canvas.events.draw.connect(self._on_draw)
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.loop = QEventLoop()
        self.recs: dict[str, dict] = {}
        self._after: list = []
        self.ticks: list[float] = []
        self.renderer = None

    def _on_draw(self, event=None) -> None:
        now = time.perf_counter()
        if self.renderer is None:
            try:
                from vispy.gloo import gl

                self.renderer = str(gl.glGetParameter(gl.GL_RENDERER))
            except Exception:  # noqa: BLE001
                self.renderer = "?"
        for rec in self.recs.values():
            if rec["refreshed"] is not None and rec["drawn"] is None:
                rec["drawn"] = now

    def _done(self) -> bool:
        return all(rec["shown"] is not None for rec in self.recs.values())

    def _tick(self) -> None:
        now = time.perf_counter()
        self.ticks.append(now)
        for rec in self.recs.values():
            if rec["drawn"] is not None and rec["shown"] is None:
                rec["shown"] = now
        if self._done():
            self.loop.quit()

    def _rec(self, name: str) -> dict:
        rec = self.recs[name] = {"refreshed": None, "drawn": None, "shown": None,
                                 "computed": {}}
        return rec

    def watch_live(self, name: str, layer, level, fresh: bool = False) -> None:
        """``layer``'s level ``level()`` is refreshed once napari re-slices it and a region
        of that level computed since now (``fresh``: ever, for a new layer) has the shape
        napari shows."""
        from napari_lazyproc._qt.live_layers import live_states

        states = live_states(layer)
        baseline = [set() if fresh else set(s._done) for s in states]
        rec = self._rec(name)
        for k, state in enumerate(states):  # when each level's region lands in the background
            def landed(s, error, _k=k, _orig=state.on_ready):
                rec["computed"].setdefault(_k, time.perf_counter())
                if _orig is not None:
                    return _orig(s, error)
            state.on_ready = landed

        def check(event=None) -> None:
            if rec["refreshed"] is not None:
                return
            k = level()
            shape = tuple(n for n in np.shape(layer._slice.image.raw) if n != 1)
            new = [key for key in list(states[k]._done) if key not in baseline[k]]
            if any(_key_shape(key) == shape for key in new):
                rec["refreshed"] = time.perf_counter()
                rec["level"] = k
                self.canvas.update()  # coalesces with napari's own; one draw even if none is due

        layer.events.set_data.connect(check)
        self._after.append(check)

    def watch_sync(self, name: str) -> None:
        """A layer sliced on napari's thread: its data are in once the action returns."""
        rec = self._rec(name)

        def after() -> None:
            rec["refreshed"] = time.perf_counter()
            self.canvas.update()

        self._after.append(after)

    def run(self, action, timeout: float | None = None) -> dict:
        from qtpy.QtCore import QTimer

        timeout = MEASURE_TIMEOUT if timeout is None else timeout

        t0 = time.perf_counter()
        self.ticks = [t0]
        self.timer.start()
        action()
        returned = time.perf_counter()
        for after in self._after:
            after()
        QTimer.singleShot(int(timeout * 1000), self.loop.quit)
        if not self._done():
            self.loop.exec_()
        self.timer.stop()
        end = time.perf_counter()
        ticks = self.ticks if self.ticks[-1] >= end - 0.02 else [*self.ticks, end]
        gaps = np.diff(ticks)
        out = {
            "action_s": returned - t0,
            "max_stall_s": float(gaps.max()) if len(gaps) else returned - t0,
            "stalls_over_100ms": int((gaps > 0.1).sum()),
            "timed_out": not self._done(),
            "renderer": self.renderer,
        }
        for name, rec in self.recs.items():
            out[f"{name}_s"] = rec["shown"] - t0 if rec["shown"] is not None else None
            for key in ("refreshed", "drawn"):
                out[f"{name}_{key}_s"] = rec[key] - t0 if rec[key] is not None else None
            k = rec.get("level")
            if k is not None and k in rec["computed"]:
                out[f"{name}_computed_s"] = rec["computed"][k] - t0
        return out


def _redraw(viewer) -> dict:
    """The stall of one re-render with nothing to compute: a small camera rotation."""
    _spin(0.5)
    m = _Measure(viewer)
    m.watch_sync("frame")
    angles = tuple(viewer.camera.angles)
    res = m.run(lambda: setattr(viewer.camera, "angles", (angles[0] + 5, *angles[1:])))
    return {"redraw_stall_s": res["max_stall_s"], "redraw_s": res["frame_s"]}


def _viewer():
    import napari

    viewer = napari.Viewer(show=True, title="bench_multiscale")
    viewer.window._qt_window.resize(*WINDOW)
    _spin(0.5)
    return viewer


def _add_gaussian(viewer, raw, axes: str):
    from napari_lazyproc._qt.widget import LazyProcessingWidget

    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing", area="right")
    widget.input.value = raw
    widget.operation.value = "gaussian"
    widget.axes.value = axes
    widget.lengths.value = "pixel"
    widget.set_params(sigma=SIGMA)
    return widget


def _toggle_3d(viewer, raw, ours) -> dict:
    from napari_lazyproc._qt.live_layers import live_states

    m = _Measure(viewer)
    coarsest_raw = len(live_states(raw)) - 1
    coarsest_ours = len(live_states(ours)) - 1
    m.watch_live("raw", raw, lambda: coarsest_raw)
    m.watch_live("filtered", ours, lambda: coarsest_ours)
    res = m.run(lambda: setattr(viewer.dims, "ndisplay", 3))
    shown = np.asarray(ours._slice.image.raw)
    res.update(shown_shape=list(shown.shape), shown_max=float(shown.max()) if shown.size else 0,
               levels=[list(lvl.shape) for lvl in ours.data])
    if not res["timed_out"]:
        res.update(_redraw(viewer))
    return res


def _open_3d(path: str | None):
    viewer = _viewer()
    if path:
        (raw,) = viewer.open(path, plugin="napari-lazyproc")
        steps = (1, 48)
    else:
        (raw,) = viewer.open_sample("napari-lazyproc", "lightsheet")
        steps = (50, 128)
    for axis, step in enumerate(steps):
        viewer.dims.set_current_step(axis, step)
    return viewer, raw, steps


def _ours_3d(path: str | None, mark: Path) -> dict:
    viewer, raw, _ = _open_3d(path)
    widget = _add_gaussian(viewer, raw, "zyx")
    ours = widget.add_layer()
    _settle([raw, ours])
    mark.write_text("")
    return _toggle_3d(viewer, raw, ours)


def peer_sample_3d(path: str, mark: Path) -> dict:
    return _ours_3d(None, mark)


def peer_ome_3d(path: str, mark: Path) -> dict:
    return _ours_3d(path, mark)


def _floor_3d(path: str | None, mark: Path) -> dict:
    """napari's own cost of the same picture: the raw and the filtered coarsest volumes,
    already in memory (numpy), at the same voxel size, toggled to 3D."""
    from scipy import ndimage as ndi

    viewer, raw, (t, z) = _open_3d(path)
    source = raw.data[-1].source  # the coarsest level's array-like
    vol = np.asarray(source[(t, slice(None), slice(None), slice(None))])
    filtered = ndi.gaussian_filter(vol, SIGMA)
    factor = np.array(raw.level_shapes[0][-3:]) / np.array(raw.level_shapes[-1][-3:])
    scale = np.array(raw.scale[-3:]) * factor
    limits = tuple(raw.contrast_limits)
    viewer.layers.clear()
    viewer.add_image(vol, scale=scale, contrast_limits=limits, name="raw (numpy)")
    viewer.add_image(filtered, scale=scale, contrast_limits=limits, name="filtered (numpy)")
    viewer.dims.set_current_step(0, z)
    _spin(1.0)
    mark.write_text("")
    m = _Measure(viewer)
    m.watch_sync("filtered")
    res = m.run(lambda: setattr(viewer.dims, "ndisplay", 3))
    res.update(_redraw(viewer), shape=list(vol.shape))
    return res


def peer_floor_sample_3d(path: str, mark: Path) -> dict:
    return _floor_3d(None, mark)


def peer_floor_ome_3d(path: str, mark: Path) -> dict:
    return _floor_3d(path, mark)


def _dask_image_3d(base, steps, limits, mark: Path) -> dict:
    from dask_image import ndfilters
    from napari.utils import resize_dask_cache

    resize_dask_cache(int(2**30))
    viewer = _viewer()
    sigma = (0,) * (base.ndim - 3) + (SIGMA,) * 3
    layer = viewer.add_image(ndfilters.gaussian_filter(base, sigma), multiscale=False,
                             contrast_limits=limits, name="dask-image gaussian")
    for axis, step in enumerate(steps):
        viewer.dims.set_current_step(axis, step)
    _spin(0.5)
    mark.write_text("")
    m = _Measure(viewer)
    m.watch_sync("filtered")
    res = m.run(lambda: setattr(viewer.dims, "ndisplay", 3))
    res["shown_shape"] = list(np.shape(layer._slice.image.raw))
    if not res["timed_out"]:
        res.update(_redraw(viewer))
    return res


def peer_dask_sample_3d(path: str, mark: Path) -> dict:
    from napari_lazyproc.synthetic import LARGE, lightsheet

    image = lightsheet(LARGE)
    return _dask_image_3d(image.levels[0], (50, 128), (100, 1360), mark)


def peer_dask_ome_3d(path: str, mark: Path) -> dict:
    import dask.array as da

    return _dask_image_3d(da.from_zarr(_ome_level(path, 0)), (1, 48), (100, 1700), mark)


def _ome_level(path, index: int):
    """A level of an OME-Zarr (0.4 or 0.5) as a zarr array, by its multiscales entry."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    attrs = group.attrs.asdict()
    multiscales = attrs.get("ome", attrs)["multiscales"]
    return group[multiscales[0]["datasets"][index]["path"]]


def peer_plane_2d(path: str, mark: Path) -> dict:
    viewer = _viewer()
    m = _Measure(viewer)
    box = {}

    def open_file():
        (raw,) = box["raw"] = viewer.open(path, plugin="napari-lazyproc")
        m.watch_live("raw", raw, lambda: raw.data_level, fresh=True)

    opened = m.run(open_file)
    raw = box["raw"][0]
    widget = _add_gaussian(viewer, raw, "yx")
    _settle([raw])
    mark.write_text("")
    m = _Measure(viewer)

    def add():
        ours = box["layer"] = widget.add_layer()
        viewer.reset_view()
        m.watch_live("filtered", ours, lambda: ours.data_level, fresh=True)

    res = m.run(add)
    ours = box["layer"]
    res.update(raw_open_s=opened["raw_s"], raw_open_stall_s=opened["max_stall_s"],
               raw_level=int(raw.data_level), data_level=int(ours.data_level),
               shown_shape=list(np.shape(ours._slice.image.raw)),
               levels=[list(lvl.shape) for lvl in ours.data])
    return res


def peer_plane_2d_patched(path: str, mark: Path) -> dict:
    """The same, with napari's cache of a 2-D multiscale layer's coarsest level cleared
    before each refresh of a live layer (a patch in this process only): napari 0.9
    reads that level once per data (``_level_materializer``), so a placeholder read
    there stays on screen; this measures what a fix would give."""
    import napari

    from napari_lazyproc._qt.live_layers import live_states

    refresh = napari.layers.Image.refresh

    def patched(self, *args, **kwargs):
        if getattr(self, "_level_materializer", None) is not None and live_states(self):
            self._level_materializer.cache_clear()
        return refresh(self, *args, **kwargs)

    napari.layers.Image.refresh = patched
    return peer_plane_2d(path, mark)


#: name: (function, data key, seconds from the toggle or the add until given up)
PEERS = {
    "sample 3D": (peer_sample_3d, None, MEASURE_TIMEOUT),
    "napari floor, sample 3D": (peer_floor_sample_3d, None, MEASURE_TIMEOUT),
    "dask-image, sample 3D": (peer_dask_sample_3d, None, MEASURE_TIMEOUT),
    "OME-Zarr 3D": (peer_ome_3d, "ome", MEASURE_TIMEOUT),
    "napari floor, OME-Zarr 3D": (peer_floor_ome_3d, "ome", MEASURE_TIMEOUT),
    "dask-image, OME-Zarr 3D": (peer_dask_ome_3d, "ome", MEASURE_TIMEOUT),
    "plane 2D zoomed out": (peer_plane_2d, "plane", 30.0),
    "plane 2D zoomed out, napari cache patched": (peer_plane_2d_patched, "plane", 30.0),
}


def _child(argv: list[str]) -> None:
    global MEASURE_TIMEOUT
    name, out, mark, path = argv
    from napari_lazyproc.cli.display import ensure_display as _ensure_display

    _ensure_display()
    fn, _, MEASURE_TIMEOUT = PEERS[name]
    try:
        res = fn(path, Path(mark))
    except Exception as exc:  # noqa: BLE001 - recorded for the table
        traceback.print_exc()
        res = {"error": f"{type(exc).__name__}: {exc}"}
    res["peak_rss"] = _hwm()
    Path(out).write_text(json.dumps(res))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no teardown: background work and GL contexts need not wind down


# ----------------------------------------------------------------------------- parent side
def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_peer(name: str, path: Path | None) -> dict:
    """One peer in its own process: its result, or why it has none."""
    limit_s = PEERS[name][2]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out, mark, log = Path(tmp) / "result.json", Path(tmp) / "measuring", Path(tmp) / "log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--peer", name, str(out), str(mark),
               str(path or "")]
        with open(log, "w+") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    cwd=Path(__file__).parent)
            start, measuring, peak, stopped = time.monotonic(), None, 0, None
            while proc.poll() is None:
                time.sleep(0.1)
                peak = max(peak, _rss(proc.pid))
                now = time.monotonic()
                if measuring is None and mark.exists():
                    measuring = now
                if peak > RSS_LIMIT:
                    stopped = f"stopped: RSS over {RSS_LIMIT / 2**30:.0f} GiB"
                elif measuring is not None and now - measuring > limit_s + 5:
                    stopped = f"ran out of time ({limit_s:.0f} s)"
                elif measuring is None and now - start > SETUP_TIMEOUT:
                    stopped = f"setup ran out of time ({SETUP_TIMEOUT:.0f} s)"
                if stopped:
                    stopped_after = now - (measuring or start)
                    proc.kill()
                    proc.wait()
                    break
            logf.seek(0)
            tail = logf.read()[-3000:]
        res = json.loads(out.read_text()) if out.exists() else {}
    res.setdefault("peak_rss", peak)
    res["load_before"] = load
    if stopped:
        res["status"] = f"{stopped}, {stopped_after:.0f} s after the " + (
            "toggle" if measuring else "start")
    elif proc.returncode and proc.returncode < 0:
        res["status"] = f"aborted (signal {-proc.returncode})"
    elif proc.returncode:
        res["status"] = f"exited {proc.returncode}"
    elif "error" in res:
        res["status"] = "error: " + res["error"][:120]
    elif res.get("timed_out"):
        res["status"] = f"never on screen ({limit_s:.0f} s)"
    else:
        res["status"] = "finished"
    gl = [ln for ln in tail.splitlines() if "GL" in ln and ("rror" in ln or "exceed" in ln)]
    if gl:
        res["gl"] = gl[-1][:160]
        if res["status"] == "finished":
            res["status"] = "finished, with a GL error"
    print(f"--- {name}: {res['status']}\n{json.dumps(res, indent=1)}", file=sys.stderr)
    if res["status"] != "finished":
        print(tail, file=sys.stderr)
    return res


def _s(x) -> str:
    return "" if x is None else f"{x:.2f}"


def _ms(x) -> str:
    return "" if x is None else f"{x * 1000:.0f}"


def _gb(x) -> str:
    return f"{x / 1e9:.2f}" if x else ""


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> str:
    data = make_data()
    res = {name: run_peer(name, data[key] if key else None) for name, (_, key, _) in PEERS.items()}

    rows = []
    for name, r in res.items():
        ratio = (r["filtered_s"] / r["raw_s"] if r.get("filtered_s") and r.get("raw_s") else None)
        label = (name if name.startswith(("napari floor", "dask-image"))
                 else f"napari-lazyproc, {name}")
        raw = _s(r.get("raw_s"))
        if name.startswith("plane") and r.get("raw_open_s") is not None:
            raw = (f"{r['raw_open_s']:.2f} (open; stall "
                   f"{r['raw_open_stall_s'] * 1000:.0f} ms)")
        rows.append([label, r["status"], raw, _s(r.get("filtered_computed_s")),
                     _s(r.get("filtered_s")), f"{ratio:.2f}" if ratio else "",
                     _ms(r.get("max_stall_s"))
                     or ("whole run" if r["status"] != "finished" else ""),
                     _ms(r.get("redraw_stall_s")), _gb(r.get("peak_rss"))])

    verdicts = []
    for name in ["sample 3D", "OME-Zarr 3D"]:
        r = res[name]
        if r.get("filtered_s") is None or r.get("raw_s") is None:
            verdicts.append(f"{name}: filtered volume on screen MISSED ({r['status']})")
            continue
        bound = TARGET_RATIO * r["raw_s"] + TARGET_SLACK
        verdicts.append(
            f"{name}: filtered volume within 1.5 x raw + 0.5 s = {bound:.2f} s "
            f"({_met(r['filtered_s'] <= bound)}: {r['filtered_s']:.2f} s); no stall over "
            f"100 ms ({_met(r['max_stall_s'] <= TARGET_STALL)}: {_ms(r['max_stall_s'])} ms); "
            f"peak RSS <= 2 GB ({_met(r['peak_rss'] <= TARGET_RSS)}: {_gb(r['peak_rss'])} GB)")
    d = res["plane 2D zoomed out"]
    if d.get("filtered_s") is not None:
        verdicts.append(
            f"16384² plane zoomed out: filtered view within 1 s "
            f"({_met(d['filtered_s'] <= TARGET_2D)}: {d['filtered_s']:.2f} s); no stall over "
            f"100 ms ({_met(d['max_stall_s'] <= TARGET_STALL)}: {_ms(d['max_stall_s'])} ms); "
            f"peak RSS <= 2 GB ({_met(d['peak_rss'] <= TARGET_RSS)}: {_gb(d['peak_rss'])} GB)")
    else:
        verdicts.append(f"16384² plane zoomed out: filtered view within 1 s MISSED "
                        f"({d['status']}); longest stall while waiting "
                        f"{_ms(d.get('max_stall_s'))} ms; peak RSS <= 2 GB "
                        f"({_met(d['peak_rss'] <= TARGET_RSS)}: {_gb(d['peak_rss'])} GB)")
    fixed = res["plane 2D zoomed out, napari cache patched"]
    if fixed.get("filtered_s") is not None:
        verdicts.append(
            f"With napari's coarsest-level cache cleared on refresh (bench-only patch): "
            f"{fixed['filtered_s']:.2f} s ({_met(fixed['filtered_s'] <= TARGET_2D)}), "
            f"longest stall {_ms(fixed['max_stall_s'])} ms "
            f"({_met(fixed['max_stall_s'] <= TARGET_STALL)})")

    renderer = next((r.get("renderer") for r in res.values() if r.get("renderer")), "?")
    detail = (
        f"3D shows the coarsest level: sample {res['sample 3D'].get('levels', ['?'])[-1]}, "
        f"OME-Zarr {res['OME-Zarr 3D'].get('levels', ['?'])[-1]}. The 16384² plane's "
        f"filtered layer showed level {d.get('data_level', '?')} of {d.get('levels', '?')} "
        f"(raw: level {d.get('raw_level', '?')}). GL renderer: {renderer}. 1-minute load "
        f"average before each peer (other work on the machine): "
        + ", ".join(f"{r['load_before']:.1f}" for r in res.values()) + "."
    )
    text = "\n".join([
        "## Multiscale on screen: 3D toggle and zoomed-out 2D (`bench_multiscale.py`)",
        "",
        "Gaussian sigma=2 added through the dock widget in a real 1500 x 950 napari window; "
        "each peer in its own process. Times in seconds from `viewer.dims.ndisplay = 3` "
        "(2D: from adding the layer and `reset_view()`) until the frame with the computed "
        "values has been drawn; \"computed\" is when the filtered region landed in the "
        "background; stall = longest gap between ticks of a 10 ms QTimer over that time; "
        "redraw = the stall of one re-render afterwards (a 5° camera turn, nothing to "
        "compute); peak RSS = VmHWM of the peer's process. The napari floor is the same "
        "picture with both coarsest volumes already in memory (numpy layers): what the "
        "renderer alone costs. dask-image peers get 120 s from the toggle.",
        "",
        table(["peer", "outcome", "raw on screen", "filtered computed", "filtered on screen",
               "filtered / raw", "longest stall ms", "redraw stall ms", "peak RSS GB"], rows),
        "",
        "Targets: " + " ".join(f"{v}." for v in verdicts),
        "",
        detail,
    ])
    print(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        _child(sys.argv[2:])
    else:
        from napari_lazyproc.cli.display import ensure_display as _ensure_display

        xvfb = _ensure_display()
        try:
            main()
        finally:
            if xvfb is not None:
                xvfb.terminate()

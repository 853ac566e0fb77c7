"""How long napari's thread stalls per interaction, against napari's own floor.

Data: the demo's synthetic light-sheet series (100 x 256 x 2048 x 2048 uint16, 200 GB,
generated lazily, four display levels), opened as the demo opens it, and a Gaussian
sigma=2 over yx added from the dock widget. A 10 ms QTimer ticks on napari's thread; each
interaction's stall is the longest gap between ticks from the action until everything it
started has landed on screen (every live level idle, every layer loaded, then 150 ms).
Interactions, in order: add the layer, scroll z (+1, 0.4 s apart), step t, a sigma change
(the widget's spin box), zoom (x2, then back), the 3D toggle and back to 2D.

napari's floor, in the same kind of process (each peer runs in a fresh Python process
under the same display, alternating, repeated): as many in-memory layers of the same plane
size (2048 x 2048 uint16 stacks), the same interactions (a sigma change is a layer's data
replaced by another in-memory stack; adding is ``add_image`` of one); 3D: two in-memory
volumes of the shape the sample's 3D view shows (its coarsest level, 256 x 256 x 256).

``--profile``: one more run per peer with a sampler thread reading napari's thread's stack
every millisecond; each sample inside an interaction's longest stall is charged to the
innermost of: texture upload (vispy's GL commands), thumbnail, contrast, ours
(napari_lazyproc), napari's own code (slicing, or other), drawing (the rest of vispy),
Qt and GL with no Python frame, other. The CPU napari's thread used within each longest
gap is recorded too (``time.thread_time``): on a loaded machine the gap is mostly waiting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _common import code_version, cpu_snapshot, foreign_note, median, table

ROWS = ["add the layer", "scroll z", "step t", "sigma change", "zoom", "3D toggle", "back to 2D"]
CATEGORIES = ["ours", "napari slicing", "napari other", "texture upload", "thumbnail",
              "contrast", "drawing", "Qt, GL (no Python)", "other"]
T0, Z0 = 50, 128  # where the views start
TAIL = 0.15  # seconds of event loop after everything landed (the draw that shows it)
PAUSE = 0.4  # seconds between steps (a user browsing)


# ---------------------------------------------------------------------------- measuring
class Sampler:
    """napari's thread's stack every millisecond, charged to a category (see module doc)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        sys.setswitchinterval(0.0005)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def category(frame) -> tuple[str, str]:
        """(category, the innermost function of it) of a stack."""
        slicing = False
        found = None
        while frame is not None:
            path, name = frame.f_code.co_filename, frame.f_code.co_name
            here = f"{Path(path).name}:{name}"
            if found is None:
                if "vispy" in path and ("gloo" in path or "texture" in name.lower()):
                    found = ("texture upload", here)
                elif "thumbnail" in name:
                    found = ("thumbnail", here)
                elif "contrast" in name or "data_range" in name:
                    found = ("contrast", here)
                elif "napari_lazyproc" in path:
                    found = ("ours", here)
                elif "/napari/" in path:  # napari's own (whatever of ours called it)
                    found = ("napari", here)
                elif "bench_stall" in path and name in ("run", "_process"):
                    # no Python frame above the event loop: Qt's own work (painting,
                    # llvmpipe rasterising at the buffer swap) or our harness sleeping
                    return ("idle", "sleep") if _SLEEPING[0] else ("Qt, GL (no Python)", "")
            if name in ("_slice_dims", "set_view_slice", "_set_view_slice", "_refresh_sync",
                        "refresh", "_update_slice_response", "_on_slice_ready"):
                slicing = True
            if "vispy" in path and name in ("on_draw", "_draw_scene", "draw"):
                found = found or ("drawing", here)
            frame = frame.f_back
        if found and found[0] == "napari":
            return ("napari slicing", found[1]) if slicing else ("napari other", found[1])
        if found:
            return found
        return ("napari slicing", "") if slicing else ("other", "")

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = sys._current_frames().get(self._main)
            if frame is not None:
                self.samples.append((time.perf_counter(), *self.category(frame)))
            del frame
            time.sleep(0.001)

    def breakdown(self, start: float, end: float) -> dict[str, float]:
        """Milliseconds per category between ``start`` and ``end``."""
        out: dict[str, float] = {}
        prev = start
        for t, cat, where in self.samples:
            if t <= start:
                continue
            if t > end:
                break
            out[cat] = out.get(cat, 0.0) + (t - prev) * 1000
            if cat == "ours":
                out[f"ours {where}"] = out.get(f"ours {where}", 0.0) + (t - prev) * 1000
            prev = t
        return out


_SLEEPING = [False]


def _process(seconds: float = 0.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while True:
        QApplication.processEvents()
        if time.perf_counter() >= end:
            return
        _sleep(0.002)


def _sleep(seconds: float) -> None:
    _SLEEPING[0] = True
    time.sleep(seconds)
    _SLEEPING[0] = False


class Stalls:
    """The 10 ms QTimer and the longest gap of its ticks per interaction."""

    def __init__(self, viewer, sampler: Sampler | None = None) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.viewer = viewer
        self.sampler = sampler
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.cpu: list[float] = []  # napari's thread's CPU time at each tick
        self.results: dict[str, list[float]] = {}
        #: the CPU napari's thread used within each longest gap (the rest: waiting for a
        #: core on a loaded machine, for the GIL, or for the X server)
        self.results_cpu: dict[str, list[float]] = {}
        self.parts: dict[str, list[dict]] = {}

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())

    def settled(self) -> bool:
        from napari_lazyproc._qt.live_layers import live_states

        for layer in self.viewer.layers:
            if not getattr(layer, "loaded", True):
                return False
            if any(s.busy for s in live_states(layer)):
                return False
        return True

    def run(self, row: str, action, timeout: float = 60.0) -> float:
        t0 = time.perf_counter()
        self.ticks, self.cpu = [t0], [time.thread_time()]
        self.timer.start()
        action()
        quiet = None
        while True:
            _process()
            now = time.perf_counter()
            if self.settled():
                quiet = quiet or now
                if now - quiet >= TAIL:
                    break
            else:
                quiet = None
            if now - t0 > timeout:
                print(f"{row}: not settled after {timeout} s", file=sys.stderr)
                break
            _sleep(0.002)
        self.timer.stop()
        ticks = np.array([*self.ticks, time.perf_counter()])
        cpu = np.array([*self.cpu, time.thread_time()])
        gaps = np.diff(ticks)
        k = int(np.argmax(gaps))
        self.results.setdefault(row, []).append(float(gaps[k]))
        self.results_cpu.setdefault(row, []).append(float(cpu[k + 1] - cpu[k]))
        if self.sampler is not None:
            self.parts.setdefault(row, []).append(self.sampler.breakdown(ticks[k], ticks[k + 1]))
        return float(gaps[k])


# ---------------------------------------------------------------------------- peers
def _viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    _process(0.5)
    return viewer


def _browse(m: Stalls, viewer, sigma=None, at=(T0, Z0)) -> None:
    """The 2D interactions after the layer is added (``sigma(value)``: a sigma change),
    from slider steps ``at``."""
    for i in range(1, 7):
        _process(PAUSE)
        m.run("scroll z", lambda i=i: viewer.dims.set_current_step(1, at[1] + i))
    for i in range(1, 5):
        _process(PAUSE)
        m.run("step t", lambda i=i: viewer.dims.set_current_step(0, at[0] + i))
    if sigma is not None:
        for s in (2.5, 3.0, 1.5, 2.0):
            _process(PAUSE)
            m.run("sigma change", lambda s=s: sigma(s))
    for factor in (2.0, 0.5):
        _process(PAUSE)
        m.run("zoom", lambda f=factor: setattr(viewer.camera, "zoom", viewer.camera.zoom * f))


def _toggle(m: Stalls, viewer) -> None:
    _process(PAUSE)
    m.run("3D toggle", lambda: setattr(viewer.dims, "ndisplay", 3), timeout=120)
    _process(PAUSE)
    m.run("back to 2D", lambda: setattr(viewer.dims, "ndisplay", 2))


def run_ours(m: Stalls, viewer, filtered: bool) -> None:
    from napari_lazyproc._layer_data import image_layer_data
    from napari_lazyproc._qt.live_layers import adopt, watch
    from napari_lazyproc._qt.widget import LazyProcessingWidget
    from napari_lazyproc.synthetic import LARGE, lightsheet

    image = lightsheet(LARGE, levels=4)
    layers = image_layer_data(image)
    watch(viewer)
    adopt(viewer, layers)
    for data, kwargs, _ in layers:
        viewer.add_image(data, **kwargs)
    viewer.dims.set_current_step(0, T0)
    viewer.dims.set_current_step(1, Z0)
    viewer.reset_view()
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Lazy processing", area="right")
    widget.axes.value = "yx"
    widget.lengths.value = "pixel"
    widget.set_params(sigma=2.0)
    m.run("settle", lambda: None, timeout=120)

    def add():
        layer = widget.add_layer()
        layer.colormap = "magma"
        layer.blending = "additive"

    if filtered:
        m.run("add the layer", add)
    _browse(m, viewer, (lambda s: setattr(widget.params["sigma"], "value", s))
            if filtered else None)
    _toggle(m, viewer)


def run_floor(m: Stalls, viewer, n_layers: int) -> None:
    rng = np.random.default_rng(0)
    shape = (5, 7, 2048, 2048)  # the t and z steps visited, placed at T0, Z0
    place = {"translate": (T0, Z0, 0, 0)}

    def stack():
        return rng.integers(100, 4000, size=shape, dtype=np.uint16)

    shown = [viewer.add_image(stack(), name="floor 0", **place)]
    viewer.dims.set_current_step(0, 0)  # steps count from the layer's start: (T0, Z0)
    viewer.dims.set_current_step(1, 0)
    viewer.reset_view()
    m.run("settle", lambda: None)
    if n_layers > 1:
        second = stack()
        m.run("add the layer", lambda: shown.append(viewer.add_image(
            second, name="floor 1", colormap="magma", blending="additive", **place)))
    others = [shown[-1].data[::-1], shown[-1].data[:, ::-1]]  # views: no new memory
    turn = {"i": 0}

    def replace(_sigma):  # napari showing a new plane of one layer: a data change
        turn["i"] ^= 1
        shown[-1].data = others[turn["i"]]

    _browse(m, viewer, replace if n_layers > 1 else None, at=(0, 0))
    for layer in list(viewer.layers):
        viewer.layers.remove(layer)
    shown.clear()
    others.clear()
    for k in range(n_layers):
        viewer.add_image(rng.integers(100, 4000, size=(256, 256, 256), dtype=np.uint16),
                         name=f"volume {k}", blending="additive")
    viewer.reset_view()
    m.run("settle", lambda: None)
    _toggle(m, viewer)


PEERS = {
    "ours": "raw sample + Gaussian layer",
    "before": "the same before issue 25",
    "floor2": "napari, two in-memory layers",
    "raw": "raw sample alone",
    "floor1": "napari, one in-memory layer",
}


def child(peer: str, profile: bool) -> dict:
    sampler = Sampler() if profile else None
    viewer = _viewer()
    m = Stalls(viewer, sampler)
    if sampler is not None:
        sampler.start()
    if peer in ("ours", "raw", "before"):
        run_ours(m, viewer, filtered=peer != "raw")
    else:
        run_floor(m, viewer, 2 if peer == "floor2" else 1)
    if sampler is not None:
        sampler.stop()
    renderer = "?"
    try:
        from vispy.gloo import gl

        renderer = str(gl.glGetParameter(gl.GL_RENDERER))
    except Exception:  # noqa: BLE001
        pass
    viewer.close()
    for kept in (m.results, m.results_cpu, m.parts):
        kept.pop("settle", None)
    return {"stalls": m.results, "cpu": m.results_cpu, "parts": m.parts, "renderer": renderer}


#: ``LAZYPROC_BENCH_BEFORE``: the ``src`` folder of the code before (a ``git archive`` of
#: an older commit), run as the peer "before"
BEFORE = os.environ.get("LAZYPROC_BENCH_BEFORE")


def _spawn(peer: str, profile: bool = False) -> dict:
    env = dict(os.environ)
    if peer == "before":
        env["PYTHONPATH"] = BEFORE
    cmd = [sys.executable, str(Path(__file__)), "--child", peer] + (
        ["--profile"] if profile else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{peer} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(repeats: int = 3, peers=None, profile: bool = True) -> str:
    if peers is None:
        peers = ("floor2", "ours", "before") if BEFORE else ("floor2", "ours")
    start = cpu_snapshot()
    runs: dict[str, list[dict]] = {p: [] for p in peers}
    for _ in range(repeats):
        for peer in peers:
            runs[peer].append(_spawn(peer))
    prof = {p: _spawn(p, profile=True) for p in peers if p != "before"} if profile else {}

    def med(peer: str, row: str, kind: str = "stalls") -> float | None:
        # the median over runs of each run's median event (events: the steps of a row)
        per_run = [median(r[kind][row]) for r in runs.get(peer, []) if row in r[kind]]
        return median(per_run) * 1000 if per_run else None

    def fmt(v):
        return "-" if v is None else f"{v:.0f}"

    rows, verdicts = [], []
    ours_peer = "ours" if "ours" in peers else "raw"
    floor_peer = "floor2" if ours_peer == "ours" else "floor1"
    for row in ROWS:
        o, f = med(ours_peer, row), med(floor_peer, row)
        cells = [row] + [fmt(med(p, row)) for p in peers] + [
            fmt(med(p, row, "cpu")) for p in peers]
        if o is None:
            target = "-"
        elif row == "add the layer":
            target = 150.0
        elif row == "3D toggle":
            target = f
        else:
            target = None if f is None else 1.2 * f + 30
        if isinstance(target, float):
            ok = o <= target
            verdicts.append(ok)
            cells += [f"{target:.0f}", "met" if ok else "MISSED"]
        else:
            cells += ["-", "-"]
        rows.append(cells)
    header = (["interaction"] + [f"{PEERS[p]} ms" for p in peers]
              + [f"CPU of napari's thread in it, {p} ms" for p in peers] + ["target ms", ""])
    parts_rows = []
    for peer in prof:
        for row in ROWS:
            events = prof[peer]["parts"].get(row)
            if not events:
                continue
            keys = {k for e in events for k in e}
            mean = {c: sum(e.get(c, 0.0) for e in events) / len(events) for c in keys}
            stall = median(prof[peer]["stalls"][row]) * 1000
            top = sorted((k for k in keys if k.startswith("ours ")), key=lambda k: -mean[k])
            parts_rows.append([PEERS[peer], row, f"{stall:.0f}"]
                              + [f"{mean.get(c, 0.0):.0f}" for c in [*CATEGORIES, "idle"]]
                              + ["; ".join(f"`{k[5:]}` {mean[k]:.0f}" for k in top[:3]
                                           if mean[k] >= 1)])
    renderer = next(iter(runs.values()))[0]["renderer"] if runs else "?"
    text = (
        "## Stalls of napari's thread per interaction (`bench_stall.py`)\n\n"
        + table(header, rows)
        + f"\n\nLongest gap between ticks of a 10 ms QTimer on napari's thread, per "
        f"interaction, from the action until everything it started is on screen; the median "
        f"over its events (6 z steps, 4 t steps, 4 sigma changes, 2 zooms) and over "
        f"{repeats} runs per peer, each a fresh process (alternating); the CPU columns are "
        "the CPU time napari's thread used within that gap (time.thread_time between the "
        "two ticks: the rest is waiting for a core, the GIL or the X server). Targets: a 2D "
        "interaction at most 1.2 x napari's floor + 30 ms, the 3D toggle at most napari's, "
        "adding the layer at most 150 ms. Renderer: " + renderer + ". "
        + (f"{sum(verdicts)} of {len(verdicts)} targets met. " if verdicts else "")
        + "\n\n### Where the longest stall goes (ms, mean per event, one sampled run)\n\n"
        + table(["peer", "interaction", "stall ms", *CATEGORIES, "idle", "ours: where"],
                parts_rows)
        + "\n\nEach millisecond sample of napari's thread's stack within the longest gap is "
        "charged to the innermost of: texture upload (vispy's gloo), thumbnail, contrast, "
        "ours (napari_lazyproc), napari's own code (slicing: under a slice or refresh; other: "
        "building a layer, events), drawing (vispy's draw), Qt and GL with "
        "no Python frame (painting, llvmpipe rasterising at the buffer swap), other "
        "(events, widgets); idle is the harness sleeping between event-loop passes. A "
        "C call holding the GIL is charged to the sample after it. "
        "The sampler slows the run (compare the stall column with the table "
        f"above). {foreign_note(start)} {code_version()}"
    )
    print(text)
    return text


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also the raw sample alone")
    args = parser.parse_args()
    if args.child:
        out = child(args.child, args.profile)
        print(json.dumps(out))
        sys.stdout.flush()
        os._exit(0)  # skip Qt's teardown
    from napari_lazyproc.cli.display import ensure_display as _ensure_display

    xvfb = _ensure_display()
    try:
        main(args.repeats, ("floor2", "ours", "floor1", "raw") if args.all else None)
    finally:
        if xvfb is not None:
            xvfb.terminate()

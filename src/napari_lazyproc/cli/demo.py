"""``demo``: napari on the synthetic light-sheet series, or its screenshot rendered headless.

The only command that imports napari (inside ``cmd_demo``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .display import ensure_display, no_screen
from .errors import BadInput

#: where ``demo`` saves its picture on a machine with no screen
HEADLESS_DEMO_PNG = "napari-lazyproc-demo.png"


def register(sub) -> None:
    """Add the ``demo`` command to the subparsers ``sub``."""
    demo = sub.add_parser("demo", help="open napari on a synthetic light-sheet time series")
    demo.add_argument("--screenshot", metavar="PNG", help="render headless, save, and exit")
    demo.add_argument("--small", action="store_true", help="use the small sample")
    demo.add_argument("--3d", dest="volume", action="store_true",
                      help="filter in 3D (zyx) and show the volume")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """The ``demo`` command: open napari on the synthetic light-sheet series.

    The widget is docked and a gaussian of the series is added as a live layer. With
    ``--screenshot`` the viewer renders headless (under Xvfb when there is no screen),
    saves the picture and exits; with no screen at all (no ``DISPLAY``) it does so
    without being asked, to ``napari-lazyproc-demo.png``, rather than fail in Qt.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line: ``screenshot``, ``small`` and ``volume`` (``--3d``).

    Returns
    -------
    int
        The exit status, 0.
    """
    if no_screen() and shutil.which("Xvfb") is None:
        raise BadInput("no screen (DISPLAY is not set) and no Xvfb to render on: run the "
                       "demo on a desktop, or install Xvfb (apt-get install xvfb)")
    if not args.screenshot and no_screen():  # nowhere to show a window: render instead
        args.screenshot = HEADLESS_DEMO_PNG
        print(f"no screen found (DISPLAY is not set): rendering the demo headless to "
              f"{HEADLESS_DEMO_PNG}; on a desktop it opens napari", file=sys.stderr)
    xvfb = ensure_display() if args.screenshot else None
    if args.screenshot and no_screen():
        raise BadInput("no screen (DISPLAY is not set) and Xvfb did not start")
    try:
        return _show(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()


def _show(args: argparse.Namespace) -> int:
    """The viewer, the docked widget and the live gaussian; a screenshot, or napari's
    event loop."""
    import napari

    from .._layer_data import image_layer_data
    from .._qt.live_layers import adopt, watch
    from .._qt.widget import LazyProcessingWidget
    from ..synthetic import LARGE, SMALL, lightsheet

    viewer = napari.Viewer(show=not args.screenshot, title="napari-lazyproc demo")
    image = lightsheet(SMALL if args.small else LARGE, levels=1 if args.small else 4)
    layers = image_layer_data(image)
    watch(viewer)
    adopt(viewer, layers)  # the coarse 3D volume is read in the background
    for data, kwargs, _ in layers:
        viewer.add_image(data, **kwargs)
    viewer.dims.set_current_step(0, image.shape[0] // 2)
    viewer.dims.set_current_step(1, image.shape[1] // 2)
    # the dock widget, and the same series filtered lazily through it: only the plane
    # on screen is ever computed, in the background
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Process", area="right")
    widget.axes.value = "zyx" if args.volume else "yx"
    widget.lengths.value = "pixel"
    widget.set_params(sigma=2.0)
    smoothed = widget.add_layer()
    smoothed.colormap = "magma"
    smoothed.blending = "additive"
    if args.volume:  # 3D shows the coarsest level, computed in the background
        viewer.dims.ndisplay = 3
    if args.screenshot:
        viewer.window._qt_window.resize(1500, 950)
        viewer.reset_view()
        if args.volume:
            viewer.scene.camera.angles = (0.0, -35.0, 60.0)
        _wait_until_shown(viewer.layers)
        out = Path(args.screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        viewer.close()
        print(f"saved {out}")
        return 0
    napari.run()
    return 0


def _wait_until_shown(layers, timeout: float = 120.0) -> None:
    """Let Qt run until the layers' background computations have landed on screen."""
    from qtpy.QtWidgets import QApplication

    from .._qt.live_layers import live_states

    states = [s for layer in layers for s in live_states(layer)]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        QApplication.processEvents()
        if not any(s.busy for s in states) and any(s.n_computed for s in states):
            break
        time.sleep(0.02)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.01)

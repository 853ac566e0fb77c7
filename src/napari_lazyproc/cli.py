"""The ``napari-lazyproc`` command line: ``demo``, ``info``, ``ops`` and ``process``.

Bad input exits with code 2 and a one-line reason; napari is imported only by ``demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dask.utils import format_bytes

from .io import ImageReadError, LazyImage, is_url, open_image
from .ops import Cancelled

EXIT_BAD_INPUT = 2


def _disk_size(image: LazyImage) -> int | None:
    files = image.metadata.get("files")
    if files:
        return sum(os.path.getsize(f) for f in files)
    path = image.source.get("path")
    if not path or not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, names in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return total


def describe(image: LazyImage) -> str:
    """What the reader sees, as the ``info`` command prints it."""
    lines = [
        f"name:      {image.name}",
        f"format:    {image.source.get('format')}",
        f"source:    {image.source.get('path')}"
        + "".join(
            f"  [{k}={v}]" for k, v in image.source.items()
            if k in ("dataset", "series", "files", "version", "arrays")
        ),
        f"kind:      {image.kind}",
        f"axes:      {image.axes}",
        f"shape:     {image.shape}",
        f"dtype:     {image.dtype}",
        f"chunks:    {tuple(c[0] for c in image.levels[0].chunks)}",
        "levels:    " + ", ".join(str(tuple(lvl.shape)) for lvl in image.levels),
        *(["display:   + " + ", ".join(str(tuple(v.shape)) for v in virtual)
           + " (virtual, computed when viewed)"]
          if (virtual := image.display_pyramid()[len(image.levels):]) else []),
        "scale:     " + ", ".join(
            f"{a}={s:g}{' ' + u if u else ''}"
            for a, s, u in zip(image.axes, image.scale, image.units, strict=False)
        ),
        f"translate: {image.translate}",
    ]
    if image.channel_names:
        lines.append(f"channels:  {', '.join(image.channel_names)}")
    for lab in image.labels:
        lines.append(f"labels:    {lab.name} {lab.shape} {lab.dtype}")
    others = image.metadata.get("other_datasets") or image.metadata.get("other_arrays")
    if others:
        lines.append(f"also:      {', '.join(others)}")
    disk = _disk_size(image)
    lines.append(
        f"size:      {format_bytes(image.nbytes)} in memory, "
        + (f"{format_bytes(disk)} on disk" if disk is not None
           else "remote (not listed)" if is_url(image.source.get("path")) else "not on disk")
    )
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """The ``info`` command: print what the reader sees in a file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line: ``path`` and, for HDF5, ``dataset``.

    Returns
    -------
    int
        The exit status, 0.
    """
    options = {}
    if args.dataset:
        options["dataset"] = args.dataset
    with open_image(args.path, **options) as image:
        print(describe(image))
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    """The ``ops`` command: list the operations and their parameters.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``ops`` takes no options).

    Returns
    -------
    int
        The exit status, 0.
    """
    from .ops import list_ops

    for op in list_ops():
        print(f"{op['name']:<28} {op['category']:<11} {op['description']}")
        for p in op["params"]:
            extra = ", ".join(
                f"{k}={v}" for k, v in p.items() if k not in ("name", "type", "default", "help")
            )
            print(f"    {p['name']}: {p['type']} = {p['default']!r}"
                  + (f"  ({extra})" if extra else "")
                  + (f"  {p['help']}" if p.get("help") else ""))
    return 0


def _parse_value(text: str):
    """A step value: JSON (numbers, true, lists), a comma list of numbers, or a string."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "," in text:
        parts = text.split(",")
        try:
            return [json.loads(p) for p in parts]
        except ValueError:
            pass
    return text


def parse_step(text: str) -> dict:
    """``gaussian:sigma=2:mode=nearest`` -> ``{"op": "gaussian", "sigma": 2, "mode": "nearest"}``.

    Parameters are separated by ``:`` or ``;`` (commas belong to per-axis lists:
    ``gaussian:sigma=1,2,2``)."""
    name, _, rest = text.partition(":")
    step: dict = {"op": name.strip()}
    for item in filter(None, (p.strip() for p in rest.replace(";", ":").split(":"))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"step {text!r}: {item!r} is not name=value")
        step[key.strip()] = _parse_value(value.strip())
    return step


def cmd_process(args: argparse.Namespace) -> int:
    """The ``process`` command: run a pipeline over a whole file, export the result and
    (``--measure``) write a table of its labels.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line: ``input``, ``output``, the steps (``step``, ``pipeline``),
        the export options, and ``measure`` and ``properties``.

    Returns
    -------
    int
        The exit status, 0; bad steps or export options raise, and ``main`` exits 2.
    """
    from . import backend
    from .export import ExportError, export
    from .ops import Pipeline, set_precision

    if args.exact:
        set_precision("exact")
    if args.gpu:
        try:
            backend.set_backend("cupy")
        except RuntimeError as exc:
            raise _BadInput(str(exc)) from exc
    steps: list = []
    try:
        if args.pipeline:
            try:
                text = Path(args.pipeline).read_text()
            except OSError as exc:
                raise _BadInput(f"cannot read pipeline {args.pipeline}: {exc.strerror}") from exc
            steps += Pipeline.from_json(text).steps
        steps += [parse_step(s) for s in args.step or []]
        pipeline = Pipeline(steps)
    except ValueError as exc:
        raise _BadInput(str(exc)) from exc
    if not args.output and not args.measure:
        raise _BadInput("process: give -o OUT, --measure TABLE, or both")
    if args.measure:  # told before anything is computed
        table = Path(args.measure)
        if table.suffix.lower() not in (".csv", ".parquet"):
            raise _BadInput(f"--measure {table}: a table is saved as .csv or .parquet")
        if table.exists() and not args.overwrite:
            raise _BadInput(f"--measure {table} exists; pass --overwrite to replace it")
        if not table.resolve().parent.is_dir():
            raise _BadInput(f"--measure {table}: the folder {table.resolve().parent} does "
                            f"not exist")
        from .measure import PROPERTIES, parquet_available

        if table.suffix.lower() == ".parquet" and not parquet_available():
            raise _BadInput(f"--measure {table}: saving Parquet needs pyarrow (pip install "
                            f"'napari-lazyproc[parquet]'); or save as .csv")
        if args.properties:
            bad = [p for p in args.properties.split(",") if p.strip() and p.strip()
                   not in PROPERTIES]
            if bad:
                raise _BadInput(f"--properties: unsupported {', '.join(bad)}; supported "
                                f"(they merge exactly across chunks): {', '.join(PROPERTIES)}")
    options = {"dataset": args.dataset} if args.dataset else {}
    image = open_image(args.input, **options)
    fmt, version = args.format, "0.4"
    if fmt == "ome-zarr-0.5":
        fmt, version = "ome-zarr", "0.5"
    try:
        result = pipeline(image) if steps else image
        if args.measure and not _are_labels(result, bool(steps)):
            raise _BadInput("--measure needs labels: end the pipeline with a label step "
                            "(--step label:scope=global), or give a label image (integers) "
                            "as IN")
        if args.output:
            out = export(result, args.output, format=fmt, version=version, levels=args.levels,
                         overwrite=args.overwrite, resume=args.resume,
                         progress=not args.quiet, scheduler=args.scheduler,
                         workers=args.workers)
            print(f"wrote {out}")
        if args.measure:
            if args.output:  # the labels as written: computed once, read chunk by chunk
                with open_image(out) as written:
                    table = _measure(args, written, image if steps else None)
            else:
                table = _measure(args, result, image if steps else None)
            print(f"wrote {table}")
    except (ValueError, ExportError) as exc:
        raise _BadInput(str(exc)) from exc
    except OSError as exc:  # saving the table
        raise _BadInput(f"cannot write {exc.filename or args.measure}: "
                        f"{exc.strerror or exc}") from exc
    finally:
        image.close()
    return 0


def _are_labels(result, computed: bool) -> bool:
    """Whether ``result`` can be measured: a label result or label image, or (read from a
    file as it is) any image of integers, which is what label images are stored as."""
    if getattr(result, "kind", "image") == "labels":
        return True
    import numpy as np

    return not computed and np.dtype(result.dtype).kind in "iu"


def _measure(args: argparse.Namespace, labels, image) -> Path:
    """The ``--measure`` table of the labels a pipeline produced (or the file it wrote
    them to), with intensities from its input ``image`` (None: the input is the labels)."""
    from .measure import measure, save_table

    path = Path(args.measure)
    properties = None
    if args.properties:
        properties = [p.strip() for p in args.properties.split(",") if p.strip()]
    if image is not None and image.kind == "labels":
        image = None
    table = measure(labels, image, properties, progress=not args.quiet,
                    scheduler=args.scheduler, workers=args.workers)
    return save_table(table, path)


class _BadInput(Exception):
    """Bad input on the command line: exit 2 with this one-line reason."""


#: where ``demo`` saves its picture on a machine with no screen
HEADLESS_DEMO_PNG = "napari-lazyproc-demo.png"


def _no_screen() -> bool:
    """Linux with neither an X nor a Wayland display (a server, a container, CI)."""
    return sys.platform == "linux" and not (os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


def _ensure_display() -> subprocess.Popen | None:
    """Start Xvfb when there is no screen, so ``demo --screenshot`` renders headless."""
    if not _no_screen():
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        return None
    for n in range(99, 140):
        if os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
            continue
        proc = subprocess.Popen(
            [xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if os.path.exists(f"/tmp/.X11-unix/X{n}") or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None or not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            proc.terminate()
            continue  # this display did not start: the next one
        os.environ["DISPLAY"] = f":{n}"
        return proc
    return None


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
    if _no_screen() and shutil.which("Xvfb") is None:
        raise _BadInput("no screen (DISPLAY is not set) and no Xvfb to render on: run the "
                        "demo on a desktop, or install Xvfb (apt-get install xvfb)")
    if not args.screenshot and _no_screen():  # nowhere to show a window: render instead
        args.screenshot = HEADLESS_DEMO_PNG
        print(f"no screen found (DISPLAY is not set): rendering the demo headless to "
              f"{HEADLESS_DEMO_PNG}; on a desktop it opens napari", file=sys.stderr)
    xvfb = _ensure_display() if args.screenshot else None
    if args.screenshot and _no_screen():
        raise _BadInput("no screen (DISPLAY is not set) and Xvfb did not start")
    try:
        import napari

        from ._layer_data import image_layer_data
        from ._qt.live_layers import adopt, watch
        from ._qt.widget import LazyProcessingWidget
        from .synthetic import LARGE, SMALL, lightsheet

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
    finally:
        if xvfb is not None:
            xvfb.terminate()


def _wait_until_shown(layers, timeout: float = 120.0) -> None:
    """Let Qt run until the layers' background computations have landed on screen."""
    from qtpy.QtWidgets import QApplication

    from ._qt.live_layers import live_states

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


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, with its ``demo``, ``info``, ``ops`` and ``process`` commands.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose parsed arguments carry the command to run as ``func``.
    """
    parser = argparse.ArgumentParser(
        prog="napari-lazyproc",
        description="Lazy, parallel processing of large bio-images.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="open napari on a synthetic light-sheet time series")
    demo.add_argument("--screenshot", metavar="PNG", help="render headless, save, and exit")
    demo.add_argument("--small", action="store_true", help="use the small sample")
    demo.add_argument("--3d", dest="volume", action="store_true",
                      help="filter in 3D (zyx) and show the volume")
    demo.set_defaults(func=cmd_demo)

    info = sub.add_parser("info", help="print what the reader sees in a file")
    info.add_argument("path")
    info.add_argument("--dataset", help="HDF5 dataset to open")
    info.set_defaults(func=cmd_info)

    ops = sub.add_parser("ops", help="list the operations and their parameters")
    ops.set_defaults(func=cmd_ops)

    from .measure import PROPERTIES
    from .ops import list_ops

    names = ", ".join(op["name"] for op in list_ops())
    proc = sub.add_parser(
        "process", help="run a pipeline over a whole file; export the result, measure its labels",
        description="Apply steps to IN chunk by chunk and write OUT. Steps: " + names
        + ". `napari-lazyproc ops` lists their parameters.",
    )
    proc.add_argument("input", metavar="IN")
    proc.add_argument("-o", "--output", metavar="OUT",
                      help="output path (e.g. result.ome.zarr); optional with --measure")
    proc.add_argument("--step", action="append", metavar="OP[:K=V...]",
                      help="a step, e.g. gaussian:sigma=2 or label:scope=global (repeatable)")
    proc.add_argument("--pipeline", metavar="JSON", help="a pipeline file (lp.Pipeline.to_json)")
    proc.add_argument("--format", default="ome-zarr",
                      choices=["ome-zarr", "ome-zarr-0.5", "zarr", "tiff", "ome-tiff"],
                      help="OME-Zarr 0.4 (default), 0.5, plain zarr, or tiled (OME-)BigTIFF")
    proc.add_argument("--levels", type=int, default=1, help="pyramid levels (OME-Zarr)")
    proc.add_argument("--gpu", action="store_true", help="compute chunks on the GPU (CuPy)")
    proc.add_argument("--exact", action="store_true",
                      help="bitwise scipy instead of the fast kernels (default: fast, "
                           "floats within 1e-6 of scipy, integers within one grey level)")
    proc.add_argument("--workers", type=int, help="start a local dask cluster of N processes")
    proc.add_argument("--scheduler", default=os.environ.get("LAZYPROC_SCHEDULER"),
                      metavar="ADDRESS",
                      help="a running dask scheduler (default: $LAZYPROC_SCHEDULER)")
    proc.add_argument("--measure", metavar="TABLE",
                      help="also write a regionprops table (.csv, or .parquet with pyarrow) "
                           "of the labels the pipeline produces: it must end in a label step "
                           "(or IN be a label image); intensities are measured in IN, one "
                           "row per label (and time point), computed chunk by chunk")
    proc.add_argument("--properties", metavar="P1,P2",
                      help="with --measure: scikit-image regionprops names (default: label, "
                           "area, centroid, bbox, and intensity mean, min and max); only "
                           "those that merge across chunks: " + ", ".join(PROPERTIES))
    proc.add_argument("--resume", action="store_true", help="finish an interrupted export")
    proc.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    proc.add_argument("--dataset", help="HDF5 dataset to read")
    proc.add_argument("--quiet", action="store_true", help="no progress bar")
    proc.set_defaults(func=cmd_process)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``napari-lazyproc`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 (``EXIT_BAD_INPUT``) for bad input, with a
        one-line reason on stderr, 130 when cancelled.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ImageReadError, _BadInput) as exc:
        print(f"napari-lazyproc: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Cancelled:
        print("napari-lazyproc: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("napari-lazyproc: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

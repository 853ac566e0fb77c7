"""``process``: a pipeline over a whole file, exported, its labels measured; over many
files (paths, globs, an output template) as a batch (``batch_run``)."""

from __future__ import annotations

import argparse
import os
import string

from ..io import open_image
from .errors import BadInput
from .options import export_format, properties_of
from .steps import pipeline_of


def register(sub) -> None:
    """Add the ``process`` command to the subparsers ``sub``."""
    from ..measure import PROPERTIES
    from ..ops import list_ops

    names = ", ".join(op["name"] for op in list_ops())
    proc = sub.add_parser(
        "process", help="run a pipeline over whole files; export the results, measure labels",
        description="Apply steps to each IN chunk by chunk and write OUT. IN: paths and "
        "globs ('data/*.ome.zarr'); with several, OUT is a template of {stem}, {name} and "
        "{parent} ('results/{stem}.ome.zarr'), each dataset runs on its own, a summary "
        "table follows, and the exit status is 0 when all succeeded, 3 when some failed. "
        "Steps: " + names + ". `napari-lazyproc ops` lists their parameters.",
    )
    proc.add_argument("input", metavar="IN", nargs="+",
                      help="input paths or globs (quote globs: 'data/*.zarr')")
    proc.add_argument("-o", "--output", metavar="OUT",
                      help="output path or template (results/{stem}.ome.zarr); optional "
                           "with --measure")
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
    proc.add_argument("--workers", type=int,
                      help="start a local dask cluster of N processes (one for a batch)")
    proc.add_argument("--scheduler", default=os.environ.get("LAZYPROC_SCHEDULER"),
                      metavar="ADDRESS",
                      help="a running dask scheduler (default: $LAZYPROC_SCHEDULER)")
    proc.add_argument("--measure", metavar="TABLE",
                      help="also write a regionprops table (.csv, or .parquet with pyarrow) "
                           "of the labels the pipeline produces: it must end in a label step "
                           "(or IN be a label image); intensities are measured in IN, one "
                           "row per label (and time point), computed chunk by chunk; a "
                           "template, as OUT, for several inputs")
    proc.add_argument("--properties", metavar="P1,P2",
                      help="with --measure: scikit-image regionprops names (default: label, "
                           "area, centroid, bbox, and intensity mean, min and max); only "
                           "those that merge across chunks: " + ", ".join(PROPERTIES))
    proc.add_argument("--resume", action="store_true",
                      help="finish an interrupted export; an output already complete (made "
                           "by this pipeline from this input) is accepted as it is")
    proc.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    proc.add_argument("--dataset", help="HDF5 dataset to read")
    proc.add_argument("--quiet", action="store_true", help="no progress bar")
    proc.set_defaults(func=cmd_process)


def is_batch(args: argparse.Namespace) -> bool:
    """Several inputs, a glob, or a template: a batch (a summary, exit 3 on failures)."""
    import glob

    return (len(args.input) > 1 or any(glob.has_magic(p) for p in args.input)
            or any(_has_fields(t) for t in (args.output, args.measure) if t))


def _has_fields(template: str) -> bool:
    try:
        return any(f is not None for _, f, _, _ in string.Formatter().parse(template))
    except ValueError:  # malformed: ``output_for`` says how
        return True


def cmd_process(args: argparse.Namespace) -> int:
    """The ``process`` command: run a pipeline over a whole file, export the result and
    (``--measure``) write a table of its labels; over several files, a batch.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line: ``input``, ``output``, the steps (``step``, ``pipeline``),
        the export options, and ``measure`` and ``properties``.

    Returns
    -------
    int
        The exit status: 0; for a batch, 3 when some dataset failed. Bad steps or export
        options raise ``BadInput`` (``main`` exits 2).
    """
    from .. import backend
    from ..ops import set_precision

    if args.exact:
        set_precision("exact")
    if args.gpu:
        try:
            backend.set_backend("cupy")
        except RuntimeError as exc:
            raise BadInput(str(exc)) from exc
    pipeline = pipeline_of(args)
    if not args.output and not args.measure:
        raise BadInput("process: give -o OUT, --measure TABLE, or both")
    if args.measure:  # told before anything is computed
        _check_measure(args)
    if is_batch(args):
        from .batch_run import run

        return run(args, pipeline)
    return _process_one(args, pipeline, args.input[0])


def _check_measure(args: argparse.Namespace) -> None:
    """The table's suffix, folder and properties (a template's, for a batch)."""
    from ..batch import check_table, output_for

    try:
        if _has_fields(args.measure):  # a template: what can be told before the datasets
            check_table(output_for(args.measure, "dataset"), overwrite=True,
                        properties=properties_of(args), folder=False)
        else:
            check_table(args.measure, args.overwrite, properties_of(args))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def _process_one(args: argparse.Namespace, pipeline, path: str) -> int:
    """One input, as ``process`` always ran it: errors exit 2 with one line."""
    from ..batch import NOT_LABELS, are_labels, write_table
    from ..export import ExportError, completed, export

    options = {"dataset": args.dataset} if args.dataset else {}
    image = open_image(path, **options)
    fmt, version = export_format(args)
    steps = bool(pipeline.steps)
    try:
        result = pipeline(image) if steps else image
        if args.measure and not are_labels(result, steps):
            raise BadInput(NOT_LABELS)
        common = {"format": fmt, "version": version, "levels": args.levels}
        if args.output:
            if args.resume and not args.overwrite and completed(result, args.output,
                                                                  **common):
                print(f"already complete: {args.output} (made by this pipeline from "
                      f"this input; nothing rewritten)")
            else:
                out = export(result, args.output, overwrite=args.overwrite,
                             resume=args.resume, progress=not args.quiet,
                             scheduler=args.scheduler, workers=args.workers, **common)
                print(f"wrote {out}")
        if args.measure:
            labels = open_image(args.output) if args.output else result  # as written
            try:
                table = write_table(args.measure, labels, image if steps else None,
                                    properties_of(args), progress=not args.quiet,
                                    scheduler=args.scheduler, workers=args.workers)
            finally:
                if args.output:
                    labels.close()
            print(f"wrote {table}")
    except (ValueError, ExportError) as exc:
        raise BadInput(str(exc)) from exc
    except OSError as exc:  # saving the table
        raise BadInput(f"cannot write {exc.filename or args.measure}: "
                       f"{exc.strerror or exc}") from exc
    finally:
        image.close()
    return 0

"""``run_batch``: one pipeline over many datasets, each independent of the others.

A dataset that fails is recorded and the next one runs. An output already complete,
made by the same pipeline from the same input (the identity the export records: the
bytes it read, not only its path), is skipped as "already complete"; one made by
another pipeline or input is refused, naming what differs, unless ``overwrite``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..export import completed, distributed_client, export
from ..io import open_image
from ..ops import Cancelled
from ._measure import NOT_LABELS, are_labels, check_table, write_table
from ._paths import output_for
from ._pipeline import load_pipeline

#: the statuses a row can have
STATUSES = ("done", "already complete", "failed", "cancelled")


@dataclass
class BatchRow:
    """What became of one dataset of a batch.

    Attributes
    ----------
    input, output
        The dataset, and where its result went (None: ``--measure`` only).
    status
        ``"done"``, ``"already complete"`` (made before by the same pipeline from the
        same input: nothing written), ``"failed"`` or ``"cancelled"``.
    seconds, voxels
        The time it took, and the voxels of the result (0 when unknown).
    error
        Why it failed, in one line (None otherwise).
    table
        The ``--measure`` table written for it (None without one).
    """

    input: str
    output: str | None
    status: str = "cancelled"
    seconds: float = 0.0
    voxels: int = 0
    error: str | None = None
    table: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("done", "already complete")


#: progress(dataset index, dataset fraction, overall fraction, message)
ProgressCallback = Callable[[int, float, float, str], object]


def run_batch(pipeline, inputs, output, *, measure=None, overwrite: bool = False,
              resume: bool = False, workers: int | None = None, scheduler=None,
              progress: ProgressCallback | None = None,
              cancel: threading.Event | None = None, format: str = "ome-zarr",
              version: str = "0.4", levels: int = 1, properties=None,
              dataset: str | None = None) -> list[BatchRow]:
    """Apply ``pipeline`` to every dataset of ``inputs`` and export each result.

    Parameters
    ----------
    pipeline
        A ``Pipeline``, its steps (a list, or a dict with ``"steps"``), or the path of
        its JSON (what ``process --pipeline`` reads); None converts the datasets as read.
    inputs
        Dataset paths or URLs (``expand_inputs`` expands globs).
    output
        The output template (``results/{stem}.ome.zarr``: see ``output_for``); None to
        only measure.
    measure
        A table template (``results/{stem}.csv``): the regionprops table of each
        result's labels (the pipeline must end in a label step).
    overwrite, resume
        Replace outputs (and tables) that exist; finish interrupted exports.
    workers, scheduler
        One dask cluster for the whole batch: a local one of ``workers`` processes, or
        the scheduler (a ``Client`` or an address); threads here otherwise.
    progress
        ``progress(index, dataset_fraction, overall_fraction, message)``, called from
        the thread running the batch.
    cancel
        A ``threading.Event``: the dataset running stops within a chunk's time (its
        partial is kept, for ``resume``) and the rest are marked "cancelled".
    format, version, levels, properties, dataset
        The export format (``export``), the ``measure`` properties, and the HDF5
        dataset to read in each input.

    Returns
    -------
    list of BatchRow
        One per input, in order.

    Raises
    ------
    ValueError
        Before anything runs: a bad pipeline or template, neither ``output`` nor
        ``measure``, two datasets sent to the same output, or an output's folder
        that does not exist.
    """
    pipe = load_pipeline(pipeline)
    inputs = [str(p) for p in inputs]
    if output is None and measure is None:
        raise ValueError("give an output template, a measure template, or both")
    rows = [BatchRow(p, output_for(output, p) if output is not None else None,
                     table=output_for(measure, p) if measure is not None else None)
            for p in inputs]
    for attr in ("output", "table"):
        _refuse_collisions(rows, attr)
        _refuse_missing_folders(rows, attr)
    props = [p.strip() for p in properties.split(",") if p.strip()] \
        if isinstance(properties, str) else list(properties or []) or None
    n = len(rows)
    job = _Dataset(pipe, overwrite=overwrite, resume=resume, format=format,
                   version=version, levels=levels, properties=props, dataset=dataset,
                   cancel=cancel)
    with distributed_client(scheduler, workers) as client:
        job.scheduler = client
        for i, row in enumerate(rows):
            if cancel is not None and cancel.is_set():
                break  # this row and the rest stay "cancelled"

            def report(fraction: float, message: str, i=i) -> None:
                if progress is not None:
                    progress(i, fraction, (i + fraction) / n, message)

            start = time.monotonic()
            try:
                job.run(row, report)
            except Cancelled:
                row.status = "cancelled"
                row.seconds = time.monotonic() - start
                break
            except Exception as exc:  # noqa: BLE001 - one dataset's failure, recorded
                row.status, row.error = "failed", _one_line(exc)
            row.seconds = time.monotonic() - start
            report(1.0, row.status)
    return rows


def _refuse_collisions(rows: list[BatchRow], attr: str) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        target = getattr(row, attr)
        if target is None:
            continue
        key = str(Path(target).resolve()) if "://" not in target else target
        if key in seen:
            raise ValueError(f"{seen[key]} and {row.input} would both be written to "
                             f"{target}: put {{stem}} (or {{name}}, {{parent}}) in the "
                             f"template")
        seen[key] = row.input


def _refuse_missing_folders(rows: list[BatchRow], attr: str) -> None:
    """Every dataset would fail the same way: told once, before anything runs."""
    missing = sorted({str(Path(t).parent) for r in rows if (t := getattr(r, attr))
                      and "://" not in t and not Path(t).parent.is_dir()})
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(f"the folder {missing[0]}{more} does not exist: create it, the "
                         f"{'outputs' if attr == 'output' else 'tables'} are written in it")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    known = ("ImageReadError", "ExportError", "ValueError", "OSError", "FileNotFoundError")
    return text if type(exc).__name__ in known else f"{type(exc).__name__}: {text}"


class _Dataset:
    """How each dataset of a batch is processed: read, computed, exported, measured."""

    def __init__(self, pipeline, *, overwrite, resume, format, version, levels, properties,
                 dataset, cancel) -> None:
        self.pipeline, self.overwrite, self.resume = pipeline, overwrite, resume
        self.export_options = {"format": format, "version": version, "levels": levels}
        self.properties, self.dataset, self.cancel = properties, dataset, cancel
        self.scheduler = None

    def run(self, row: BatchRow, report: Callable[[float, str], None]) -> None:
        steps = bool(self.pipeline.steps)
        options = {"dataset": self.dataset} if self.dataset else {}
        report(0.0, f"reading {row.input}")
        with open_image(row.input, **options) as image:
            result = self.pipeline(image) if steps else image
            row.voxels = math.prod(result.shape)
            skipped = row.output is not None and not self.overwrite and completed(
                result, row.output, **self.export_options)
            if row.table is not None:  # told before anything is computed
                if not are_labels(result, steps):
                    raise ValueError(NOT_LABELS)
                if skipped and Path(row.table).exists():  # both made before
                    row.status = "already complete"
                    return
                check_table(row.table, self.overwrite, self.properties)
            if row.output is not None and not skipped:
                export(result, row.output, overwrite=self.overwrite, resume=self.resume,
                       progress=self._fraction(report, f"writing {row.output}"),
                       cancel=self.cancel, scheduler=self.scheduler, **self.export_options)
            if row.table is not None:
                self._measure(row, result, image if steps else None, report)
        row.status = "already complete" if skipped and row.table is None else "done"

    def _measure(self, row: BatchRow, result, image, report) -> None:
        progress = self._fraction(report, f"measuring {row.table}")
        if row.output is None:
            write_table(row.table, result, image, self.properties, progress=progress,
                        cancel=self.cancel, scheduler=self.scheduler)
            return
        # the labels as written: computed once, read back chunk by chunk
        with open_image(row.output) as written:
            write_table(row.table, written, image, self.properties, progress=progress,
                        cancel=self.cancel, scheduler=self.scheduler)

    @staticmethod
    def _fraction(report, message: str):
        def progress(done: int, total: int) -> None:
            report(done / total if total else 1.0, message)
        return progress

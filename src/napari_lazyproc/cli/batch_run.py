"""``process`` over many datasets: a bar per dataset and one overall, a summary table,
and the exit status (0: all succeeded, 3: some failed, 130: cancelled)."""

from __future__ import annotations

import argparse
import sys
import threading

from .errors import EXIT_CANCELLED, EXIT_SOME_FAILED, BadInput
from .options import export_format, properties_of


class _Bars:
    """Two tqdm bars on stderr: the datasets done, and the one running."""

    def __init__(self, n: int) -> None:
        from tqdm.auto import tqdm

        self.n, self.index = n, -1
        self.overall = tqdm(total=n, desc="datasets", unit="dataset", position=0,
                            dynamic_ncols=True)
        self.one = tqdm(total=100, position=1, leave=False, dynamic_ncols=True,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}")

    def __call__(self, index: int, fraction: float, overall: float, message: str) -> None:
        if index != self.index:
            self.index = index
            self.one.reset()
        self.one.set_description_str(f"[{index + 1}/{self.n}] {message}", refresh=False)
        self.one.n = round(100 * fraction)
        self.one.refresh()
        done = index + 1 if fraction >= 1 else index
        if done != self.overall.n:
            self.overall.n = done
            self.overall.refresh()

    def close(self) -> None:
        self.one.close()
        self.overall.close()


def run(args: argparse.Namespace, pipeline) -> int:
    """Run ``pipeline`` over every input of ``args`` (``run_batch``), print the summary
    and return the exit status. Ctrl-C stops the dataset running (its partial is kept,
    for ``--resume``); the summary says what was done."""
    from ..batch import expand_inputs, output_for, run_batch, summary_table
    from ..export import ExportError, distributed_client

    try:
        inputs = expand_inputs(args.input)
        for template in (args.output, args.measure):
            if template:
                output_for(template, inputs[0])  # a bad field: told now
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    fmt, version = export_format(args)
    cancel = threading.Event()
    bars = None if args.quiet else _Bars(len(inputs))
    outcome: dict = {}
    finished = threading.Event()

    def work(client) -> None:
        try:
            outcome["rows"] = run_batch(
                pipeline, inputs, args.output, measure=args.measure,
                overwrite=args.overwrite, resume=args.resume, scheduler=client,
                progress=bars, cancel=cancel, format=fmt, version=version,
                levels=args.levels, properties=properties_of(args), dataset=args.dataset)
        except Exception as exc:  # noqa: BLE001 - told in the main thread
            outcome["error"] = exc
        finally:
            finished.set()

    try:
        # one cluster for the batch, started here (a local cluster wants the main thread)
        with distributed_client(args.scheduler, args.workers) as client:
            thread = threading.Thread(target=work, args=(client,), name="lazyproc-batch")
            thread.start()
            # waited on with an Event: a Ctrl-C inside Thread.join can leave the thread
            # looking finished while it still runs
            while not finished.is_set():
                try:
                    finished.wait(0.1)
                except KeyboardInterrupt:  # stop within a chunk; the summary still comes
                    cancel.set()
            thread.join()
    except ExportError as exc:
        raise BadInput(str(exc)) from exc
    finally:
        if not finished.is_set():  # leaving early (a Ctrl-C outside the wait): stop it
            cancel.set()
        if bars is not None:
            bars.close()
    if "error" in outcome:
        if isinstance(outcome["error"], ValueError):
            raise BadInput(str(outcome["error"])) from outcome["error"]
        raise outcome["error"]
    rows = outcome["rows"]
    print(summary_table(rows))
    if cancel.is_set() or any(r.status == "cancelled" for r in rows):
        print("napari-lazyproc: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    return 0 if all(r.ok for r in rows) else EXIT_SOME_FAILED

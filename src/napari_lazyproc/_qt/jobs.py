"""Background jobs of the dock widget: global labeling, whole-image statistics, export.

Each runs on a napari thread worker, with napari's progress bar (in the activity dock)
and a Cancel that sets a ``threading.Event`` the engine checks between chunks. The end
is told as a napari notification: done, cancelled (and nothing kept), or the error's
message, never a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils.notifications import show_error, show_info
from superqt.utils import ensure_main_thread

from .._layer_data import layer_source, result_levels
from .._live import SYNC_VOXELS, live_levels
from ..ops import Cancelled, label_global

#: ``work(progress, cancel)``: the job's body; ``progress(done, total)`` may be called
#: from any thread
Work = Callable[[Callable[[int, int], None], threading.Event], Any]


class _JobWorker(FunctionWorker):
    """napari's function worker whose ``quit`` (the activity dock's cancel) cancels the
    job too: the body runs in the engine, which only looks at the event."""

    cancel_event: threading.Event | None = None

    def quit(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
        super().quit()


class Job:
    """One background job: its worker, its progress bar, its Cancel and how it ended.

    Parameters
    ----------
    title : str
        What the progress bar and the messages call it.
    work : callable
        ``work(progress, cancel)``, run on the worker's thread; what it returns goes to
        ``on_done``. It raises ``ops.Cancelled`` once ``cancel`` is set.
    total : int
        The progress bar's length (``progress`` may change it).
    on_done : callable, optional
        ``on_done(value)`` on the main thread when ``work`` succeeded (not when cancelled).
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end, however it ended.

    Attributes
    ----------
    outcome : {"running", "done", "cancelled", "failed"}
    message : str
        How it ended, as told to the user.
    finished : bool
        Whether the end has been handled (``on_done`` and ``on_finish`` have run).
    """

    def __init__(self, title: str, work: Work, *, total: int = 0,
                 on_done: Callable[[Any], object] | None = None,
                 on_finish: Callable[[Job], object] | None = None) -> None:
        self.title = title
        self.cancel_event = threading.Event()
        self.outcome = "running"
        self.message = ""
        self.finished = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._ended = threading.Event()  # the body has returned, on the worker's thread
        self._on_done = on_done
        self._on_finish = on_finish
        self.worker = create_worker(self._run, work, _progress={"desc": title},
                                    _worker_class=_JobWorker, _start_thread=False)
        self.worker.cancel_event = self.cancel_event
        self.bar = self.worker.pbar
        self.bar.total = int(total)
        self.worker.finished.connect(self._finish)

    def start(self) -> Job:
        """Start the worker; returns the job."""
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop; what it made so far is dropped."""
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the body to end on its thread (a script's wait; the GUI uses
        ``on_finish``). ``on_done`` runs later, on the main thread.

        Returns
        -------
        bool
            Whether it ended within ``timeout`` seconds.
        """
        return self._ended.wait(timeout)

    def _run(self, work: Work) -> None:
        # errors stay here: a worker's own error signal shows a traceback
        try:
            self._value = work(self._progress, self.cancel_event)
        except Cancelled:
            self.outcome = "cancelled"
        except Exception as exc:  # noqa: BLE001 - told as a notification
            self._error = exc
            self.outcome = "failed"
        else:
            self.outcome = "cancelled" if self.cancel_event.is_set() else "done"
        finally:
            self._ended.set()

    @ensure_main_thread
    def _progress(self, done: int, total: int) -> None:
        if self.finished:
            return
        if self.bar.total != total:
            self.bar.total = total
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def _finish(self) -> None:
        """On the main thread, once the worker has finished."""
        if self.outcome == "done":
            try:
                if self._on_done is not None:
                    self._on_done(self._value)
            except Exception as exc:  # noqa: BLE001 - e.g. napari refused the layer
                self._error, self.outcome = exc, "failed"
        if self.outcome == "done":
            self.message = f"{self.title}: done"
            show_info(self.message)
        elif self.outcome == "cancelled":
            self.message = f"{self.title}: cancelled; nothing was kept"
            show_info(self.message)
        else:
            self.message = f"{self.title} failed: {self._error}"
            show_error(self.message)
        self.bar.close()
        self.finished = True
        if self._on_finish is not None:
            self._on_finish(self)


def label_whole_volume(viewer, layer, *, axes: str, connectivity: int | None = None,
                       on_finish: Callable[[Job], object] | None = None) -> Job:
    """Label ``layer`` (a mask, or a lazy result) across the whole volume, in the
    background; a Labels layer is added when done, nothing when cancelled.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the labels go.
    layer : napari.layers.Layer
        The input; non-zero voxels are foreground.
    axes : str
        The spatial axes that connect (``"zyx"``, or ``"yx"`` for each plane).
    connectivity : int, optional
        The engine's default when None.
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end.

    Returns
    -------
    Job
        Started.

    Raises
    ------
    ValueError
        For no layer or bad parameters, before anything starts.
    """
    if layer is None:
        raise ValueError("no input layer: choose a mask or a thresholded layer")
    params = {} if connectivity is None else {"connectivity": connectivity}
    job = label_global(layer_source(layer), axes=axes, **params)

    def work(progress, cancel):
        return job.run(progress=progress, cancel=cancel)

    def add(labels) -> None:
        levels = live_levels(result_levels(labels), sync_voxels=SYNC_VOXELS)
        viewer.add_labels(
            levels if len(levels) > 1 else levels[0], name=f"{layer.name} · label (whole volume)",
            scale=list(layer.scale), translate=list(layer.translate),
            axis_labels=list(layer.axis_labels), units=[str(u) for u in layer.units],
            metadata={"pipeline": labels.steps, "n_labels": labels.n_labels,
                      "source": {"layer": layer.name, "path": labels.source_path}},
        )

    return Job("label whole volume", work, total=int(np.prod(job.grid)), on_done=add,
               on_finish=on_finish).start()


def whole_statistics(result, *, on_finish: Callable[[Job], object] | None = None) -> Job:
    """Compute a result's whole-image statistic (an exact Otsu, the rescale
    percentiles) in the background, with a progress bar and Cancel; the layer's regions
    wait for it (or find it done), and every later result of the same input reuses it.

    Parameters
    ----------
    result : LazyResult
        A result whose ``statistics`` is "whole".
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end.

    Returns
    -------
    Job
        Started.
    """
    from ..ops import source_chunk_regions

    def work(progress, cancel):
        return result.prepared(progress=progress, cancel=cancel)

    return Job(f"{result.name}: statistics of every voxel", work,
               total=len(source_chunk_regions(result.source)), on_finish=on_finish).start()


def export_layer(layer, path: str, *, on_finish: Callable[[Job], object] | None = None,
                 **options: Any) -> Job:
    """Export ``layer`` (a lazy result included) to OME-Zarr in the background.

    Parameters
    ----------
    layer : napari.layers.Layer
        What to export; a lazy result is computed chunk by chunk from its input.
    path : str
        The output path.
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end.
    **options
        Passed to ``napari_lazyproc.export.export`` (``overwrite``, ``levels``, ...).

    Returns
    -------
    Job
        Started.

    Raises
    ------
    ValueError
        When the layer's data cannot be read by the engine, before anything starts.
    """
    from ..export import export  # the writer's imports (zarr codecs) only when exporting

    source = layer_source(layer)

    def work(progress, cancel):
        return export(source, path, progress=progress, cancel=cancel, **options)

    return Job(f"export {layer.name}", work, total=1, on_finish=on_finish).start()


class JobControls:
    """Run buttons, a cancel button and a status line around one background job at a
    time: the same controls in the Process, Measure and Drift correction widgets.

    Parameters
    ----------
    run_text, cancel_text : str
        The buttons' texts.
    *more_runs : str
        Texts of further run buttons (each starts its own job; all wait while one runs).
    """

    def __init__(self, run_text: str, cancel_text: str, *more_runs: str) -> None:
        from magicgui.widgets import Label, PushButton

        self.run_buttons = [PushButton(text=t) for t in (run_text, *more_runs)]
        self.run_button = self.run_buttons[0]
        self.cancel_button = PushButton(text=cancel_text, enabled=False)
        self.status = Label(value="")
        self.job: Job | None = None
        self.cancel_button.changed.connect(self.cancel)

    def started(self, job: Job) -> Job:
        """``job`` is running: the run buttons wait for it, cancel is offered."""
        self.job = job
        for button in self.run_buttons:
            button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = job.title + "…"
        return job

    def cancel(self, _=None) -> None:
        """Stop the running job; what it would have made is not kept."""
        if self.job is not None:
            self.job.cancel()
            self.status.value = "cancelling…"

    def finished(self, job: Job, detail: str = "") -> None:
        """``job`` ended however it did: say so (with ``detail``), offer running again."""
        if self.job is job:
            self.job = None
        for button in self.run_buttons:
            button.enabled = True
        self.cancel_button.enabled = False
        self.status.value = job.message + detail

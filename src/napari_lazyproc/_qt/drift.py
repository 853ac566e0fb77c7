"""The "Correct drift" panel of the dock widget: a shift table, then a registered layer.

The estimation runs in the background (``jobs.Job``: napari's progress bar, a Cancel).
When it is done the table shows in the panel, can be saved as CSV, and the series is
shown registered in one of two ways:

- **registered layer** (default): a new lazy layer, ``shift_frames`` of the input (each
  time point resampled by ``scipy.ndimage.shift``), exact and exportable like any result;
- **translate per frame** (display only): napari has no per-frame translate for one
  layer, so the panel follows the viewer's time slider and sets the input layer's
  ``translate`` to its original value plus the current time point's shift. Nothing is
  resampled (voxels move by whole physical shifts, sub-pixel included, as napari draws
  them); stepping t moves the layer. Turning it off, or removing the table, restores the
  translate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, SpinBox, Table
from napari.layers import Image
from napari.utils.notifications import show_error

from .._layer_data import layer_source, result_layer_data
from ..ops import apply, drift_job, save_shifts
from . import jobs
from .live_layers import add_live_layer
from .tables import ask_save_path, save_notifying

if TYPE_CHECKING:
    import napari
    import pandas as pd

#: how the registered series is shown
SHOW = (("registered layer (resampled, lazy)", "layer"),
        ("translate per frame (display only)", "translate"))


def _axis_letters(layer) -> str:
    labels = [str(a).lower() for a in layer.axis_labels]
    return "".join(labels) if all(len(a) == 1 for a in labels) else ""


def estimate_layer_drift(layer, *, on_done: Callable[[pd.DataFrame], object] | None = None,
                         on_finish: Callable[[jobs.Job], object] | None = None,
                         **params) -> jobs.Job:
    """Estimate the drift of ``layer`` (a time series) in the background.

    Parameters
    ----------
    layer : napari.layers.Image
        A series with a ``t`` axis (a file's layer or a lazy result).
    on_done : callable, optional
        ``on_done(table)`` on the main thread when it succeeded.
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end, however it ended.
    **params
        ``DriftEstimation``'s parameters (``reference``, ``upsample_factor``, ...).

    Returns
    -------
    Job
        Started.

    Raises
    ------
    ValueError
        No layer, a layer without a time axis, or bad parameters, before anything starts.
    """
    if layer is None:
        raise ValueError("no input layer: choose a time series")
    job = drift_job(layer_source(layer), **params)

    def work(progress, cancel):
        return job.run(progress=progress, cancel=cancel)

    return jobs.Job(f"drift of {layer.name}", work, total=job.n_t, on_done=on_done,
                    on_finish=on_finish).start()


def add_registered_layer(viewer: napari.viewer.Viewer, layer, table: pd.DataFrame, *,
                         order: int = 1, on_ready: Callable | None = None):
    """Add ``shift_frames`` of ``layer`` with ``table``: the series registered, lazily.

    Returns
    -------
    napari.layers.Image
        The new layer (same scale, translate and axes as the input).
    """
    result = apply("shift_frames", layer_source(layer), axes=table.attrs.get("axes"),
                   shifts=table, order=order)
    limits = tuple(layer.contrast_limits) if result.dtype == layer.dtype else None
    _, kwargs, kind = result_layer_data(result, f"{layer.name} · drift corrected",
                                        contrast_limits=limits)
    kwargs["translate"] = list(layer.translate)
    return add_live_layer(viewer, result, kwargs, kind, on_ready)


class FrameTranslate:
    """Show ``layer`` registered by moving it: its translate follows the time slider.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose time slider is followed.
    layer : napari.layers.Layer
        The series (its ``t`` axis and spatial axes named by ``axis_labels``).
    table : pandas.DataFrame
        The shift table (physical shifts ``dz``, ``dy``, ``dx``).
    """

    def __init__(self, viewer, layer, table: pd.DataFrame) -> None:
        letters = _axis_letters(layer)
        if "t" not in letters:
            raise ValueError(f"{layer.name} has no 't' axis label to follow")
        self.viewer, self.layer = viewer, layer
        self.base = list(layer.translate)
        self.t_axis = letters.index("t")
        self.columns = {letters.index(c[1]): c for c in table.columns
                        if c in ("dz", "dy", "dx") and c[1] in letters}
        self.shifts = {int(t): row for t, row in zip(table["t"], table.to_dict("records"),
                                                     strict=True)}
        viewer.dims.events.current_step.connect(self.update)
        self.update()

    def _world_t(self) -> int:
        world = self.viewer.dims.ndim - self.layer.ndim + self.t_axis
        point = self.viewer.dims.point[world]  # world coordinates
        return int(round((point - self.base[self.t_axis]) / self.layer.scale[self.t_axis]))

    def update(self, event=None) -> None:
        """Set the translate for the time point on screen."""
        row = self.shifts.get(self._world_t())
        translate = list(self.base)
        if row is not None:
            for axis, col in self.columns.items():
                translate[axis] += float(row[col])
        if list(self.layer.translate) != translate:
            self.layer.translate = translate

    def stop(self) -> None:
        """Stop following the slider; the layer's translate is restored."""
        self.viewer.dims.events.current_step.disconnect(self.update)
        self.layer.translate = self.base


class DriftPanel(Container):
    """Pick a time series and a reference; Correct drift; then the table and the result.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose layers are registered.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True, label="drift")
        self.viewer = viewer
        self.table: pd.DataFrame | None = None
        self.result_layer = None
        self.follower: FrameTranslate | None = None
        self._controls = jobs.JobControls("Correct drift", "Cancel drift")
        self._input = None
        self.layer = ComboBox(label="series", choices=self._series, nullable=True)
        self.reference = ComboBox(label="reference", choices=["first", "previous"],
                                  value="first",
                                  tooltip="register every frame onto the first one, or each "
                                          "onto the previous one (shifts chained)")
        self.upsample = SpinBox(label="sub-pixel 1/", value=20, min=1, max=1000,
                                tooltip="precision: 1/n of a pixel (skimage's upsample_factor)")
        self.refine = CheckBox(text="Refine at full resolution", value=True,
                               tooltip="the coarse estimate refined on a crop of level 0")
        self.show = ComboBox(label="show", choices=list(SHOW), value="layer")
        self.run_button = self._controls.run_button
        self.cancel_button = self._controls.cancel_button
        self.save_button = PushButton(text="Save shifts (CSV)…", enabled=False)
        self.status = self._controls.status
        self.view = Table(value=None, label="shifts")
        self.extend([self.layer, self.reference, self.upsample, self.refine, self.show,
                     self.run_button, self.cancel_button, self.save_button, self.status,
                     self.view])
        self.run_button.changed.connect(self.correct_drift)
        self.save_button.changed.connect(self._save_dialog)
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _series(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Image) and "t" in _axis_letters(layer)]

    def _refresh(self, event=None) -> None:
        self.layer.reset_choices()
        series = [c for c in self.layer.choices if c is not None]
        if self.layer.value is None and series:
            self.layer.value = series[0]

    # ------------------------------------------------------------------ the job
    def correct_drift(self, _=None) -> jobs.Job | None:
        """Estimate the chosen series' drift in the background; when done, show the table
        and the registered series (see the module's description).

        Returns
        -------
        Job or None
            The running job, or None on bad input (told as a notification).
        """
        layer = self.layer.value
        try:
            job = estimate_layer_drift(
                layer, reference=self.reference.value, upsample_factor=self.upsample.value,
                refine_level=0 if self.refine.value else None,
                on_done=lambda table: self._done(layer, table), on_finish=self._finished)
        except ValueError as exc:
            show_error(str(exc))
            return None
        self._input = layer
        return self._controls.started(job)

    def cancel(self, _=None) -> None:
        """Stop the estimation; no table is kept."""
        self._controls.cancel()

    def _done(self, layer, table: pd.DataFrame) -> None:
        self.table = table
        units = table.attrs.get("units", {})
        self.view.value = {
            "data": table.round(4).to_numpy().tolist(),
            "index": [str(t) for t in table["t"]],
            "columns": [f"{c} ({units[c]})" if units.get(c) else c for c in table.columns],
        }
        self.save_button.enabled = True
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        if self.show.value == "translate":
            self.follower = FrameTranslate(self.viewer, layer, table)
        else:
            self.result_layer = add_registered_layer(self.viewer, layer, table)

    def _finished(self, job: jobs.Job) -> None:
        self._controls.finished(job)

    # ------------------------------------------------------------------ saving
    def save_table(self, path: str) -> bool:
        """Save the shifts as CSV (units in the header); errors are notifications.

        Returns
        -------
        bool
            Whether it was written.
        """
        return save_notifying(save_shifts, self.table, path,
                              "nothing to save: correct drift first")

    def _save_dialog(self, _=None) -> None:
        name = self._input.name if self._input is not None else "drift"
        path = ask_save_path(self.native, "Save the shifts", f"{name} shifts.csv",
                             "CSV (*.csv)")
        if path:
            self.save_table(path)

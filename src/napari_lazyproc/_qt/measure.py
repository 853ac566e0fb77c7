"""The "Measure" panel of the dock widget: a regionprops table of a Labels layer.

The table is computed in the background (``jobs.Job``, with napari's progress bar and a
Cancel), then set as the Labels layer's ``features`` (so napari's features table and
the status bar on hover show it), can be saved as CSV or Parquet, and can be shown as a
Points layer of the centroids coloured by a column.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, Select
from napari.layers import Image, Labels
from napari.utils.notifications import show_error

from .._layer_data import layer_source
from ..measure import PROPERTIES, check_properties, measure, parquet_available, save_table
from . import jobs
from .tables import ask_save_path, save_notifying

if TYPE_CHECKING:
    import napari
    import pandas as pd

#: what the panel measures until the user picks otherwise
DEFAULT_PROPERTIES = ("label", "area", "centroid", "bbox", "intensity_mean")
#: properties that need an intensity image
_INTENSITY = tuple(p for p in PROPERTIES if p.startswith(("intensity", "centroid_weighted")))


def measure_layer(labels: Labels, image: Image | None, properties, *,
                  on_done: Callable[[pd.DataFrame], object] | None = None,
                  on_finish: Callable[[jobs.Job], object] | None = None) -> jobs.Job:
    """Measure ``labels`` (with intensities in ``image``) in the background.

    Parameters
    ----------
    labels : napari.layers.Labels
        The label image (a lazy or whole-volume result included).
    image : napari.layers.Image or None
        The intensities, the same shape as ``labels``.
    properties : sequence of str
        ``measure`` property names.
    on_done : callable, optional
        ``on_done(table)`` on the main thread when it succeeded.
    on_finish : callable, optional
        ``on_finish(job)`` on the main thread at the end, however it ended.

    Returns
    -------
    Job
        Started.

    Raises
    ------
    ValueError
        No labels layer, or properties or shapes ``measure`` refuses, before anything
        starts.
    """
    if labels is None:
        raise ValueError("no labels layer: choose one to measure")
    source = layer_source(labels)
    intensity = None if image is None else layer_source(image)
    if intensity is None:
        properties = [p for p in properties if p not in _INTENSITY]
    elif tuple(intensity.shape) != tuple(source.shape):
        raise ValueError(f"{image.name} has shape {tuple(intensity.shape)}, {labels.name} "
                         f"{tuple(source.shape)}: intensities must be measured in an image "
                         f"of the same shape")
    # checked now, so that a bad choice is told at once rather than from the thread
    check_properties(properties, source.axes, intensity is not None)

    def work(progress, cancel: threading.Event):
        return measure(source, intensity, properties, progress=progress, cancel=cancel)

    return jobs.Job(f"measure {labels.name}", work, total=1, on_done=on_done,
                    on_finish=on_finish).start()


#: the dims callback that keeps each layer's features on the frame shown
_followers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def set_features(layer: Labels, table: pd.DataFrame, viewer=None) -> None:
    """The table as the layer's features, with napari's ``index`` column (the label) that
    the status bar looks labels up by. napari looks a label up by value, one row per
    label, so a table of a time series (a ``t`` column: one row per time point and
    label) gives the features the rows of the frame shown, following the viewer's
    sliders; the whole table is in ``layer.metadata["measurements"]``."""
    layer.metadata["measurements"] = table
    spatial = table.attrs.get("axes", "")
    data_axes = table.attrs.get("data_axes", "")
    keys = [a for a in data_axes if a not in spatial and a in table]
    old = _followers.pop(layer, None)
    if old is not None and viewer is not None:
        viewer.dims.events.current_step.disconnect(old)
    if not keys or len(data_axes) != layer.ndim:
        layer.features = _with_index(table)
        return
    ref = weakref.ref(layer)

    def follow(event=None) -> None:
        lay = ref()
        if lay is None:
            return
        point = lay.world_to_data(viewer.dims.point) if viewer is not None else \
            [0] * lay.ndim
        rows = np.ones(len(table), dtype=bool)
        for a in keys:
            rows &= table[a].to_numpy() == int(round(float(point[data_axes.index(a)])))
        lay.features = _with_index(table[rows].reset_index(drop=True))

    follow()
    if viewer is not None:
        viewer.dims.events.current_step.connect(follow)
        _followers[layer] = follow


def _with_index(table: pd.DataFrame) -> pd.DataFrame:
    features = table.copy()
    features.insert(0, "index", table["label"].to_numpy())
    return features


def centroid_points(viewer: napari.viewer.Viewer, labels: Labels, table: pd.DataFrame,
                    color_by: str | None = None):
    """A Points layer at the objects' centroids (over the labels, same scale), coloured
    by the column ``color_by``; the table is its features. Replaces an earlier one.

    Returns
    -------
    napari.layers.Points or None
        None when the table has no centroid columns.
    """
    axes = table.attrs.get("data_axes", "")
    spatial = table.attrs.get("axes", "")
    spacing = table.attrs.get("spacing", [1.0] * len(spatial))
    if len(axes) != labels.ndim or any(f"centroid-{k}" not in table
                                       for k in range(len(spatial))):
        return None
    coords = [table[f"centroid-{spatial.index(a)}"].to_numpy() / spacing[spatial.index(a)]
              if a in spatial else table[a].to_numpy().astype(float) for a in axes]
    data = np.stack(coords, axis=1) if len(table) else np.zeros((0, len(axes)))
    name = f"{labels.name} · centroids"
    if name in viewer.layers:
        viewer.layers.remove(name)
    color = color_by if color_by in table and len(table) else None
    return viewer.add_points(
        data, name=name, features=table.reset_index(drop=True), size=5,
        face_color=color or "white", face_colormap="viridis", border_width=0,
        scale=list(labels.scale), translate=list(labels.translate),
        axis_labels=list(labels.axis_labels), units=[str(u) for u in labels.units],
    )


class MeasurePanel(Container):
    """Pick a Labels layer (and an image for intensities), properties; Measure.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose layers are measured.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True, label="measure")
        self.viewer = viewer
        self.table: pd.DataFrame | None = None
        self._controls = jobs.JobControls("Measure", "Cancel measuring")
        self.labels = ComboBox(label="labels", choices=self._labels_choices, nullable=True)
        self.image = ComboBox(label="intensities", choices=self._image_choices, nullable=True)
        self.properties = Select(label="properties", choices=list(PROPERTIES),
                                 value=list(DEFAULT_PROPERTIES))
        self.points = CheckBox(text="Points of centroids", value=False)
        self.color_by = ComboBox(label="colour by", choices=self._color_choices,
                                 nullable=True)
        self.measure_button = self._controls.run_button
        why = "" if parquet_available() else " (Parquet needs pyarrow, which is not installed)"
        self.save_button = PushButton(text="Save table…", enabled=False,
                                      tooltip="CSV or Parquet" + why)
        self.cancel_button, self.status = self._controls.cancel_button, self._controls.status
        self.extend([self.labels, self.image, self.properties, self.points, self.color_by,
                     self.measure_button, self.save_button, self.cancel_button, self.status])
        self.measure_button.changed.connect(self.measure)
        self.save_button.changed.connect(self._save_dialog)
        self.color_by.changed.connect(self._recolor)
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    # ------------------------------------------------------------------ choices
    def _labels_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Labels)]

    def _image_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _color_choices(self, _widget=None) -> list[str]:
        if self.table is not None:
            return [c for c in self.table.columns if np.issubdtype(self.table[c].dtype,
                                                                   np.number)]
        return ["label", "area", "intensity_mean"]

    def _refresh(self, event=None) -> None:
        self.labels.reset_choices()
        self.image.reset_choices()
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" \
            else None
        if isinstance(added, Labels):  # a new Labels layer (labeling's result) is the target
            self.labels.value = added
        elif self.labels.value is None and self.labels.choices:
            self.labels.value = self.labels.choices[-1]  # the newest Labels layer

    # ------------------------------------------------------------------ the job
    def measure(self, _=None) -> jobs.Job | None:
        """Measure the chosen Labels layer in the background.

        Returns
        -------
        Job or None
            The running job, or None on bad input (told as a notification).
        """
        layer = self.labels.value
        properties = list(self.properties.value)
        if self.points.value and "centroid" not in properties:
            properties.append("centroid")  # where the points go
        try:
            job = measure_layer(layer, self.image.value, properties,
                                on_done=lambda table: self._done(layer, table),
                                on_finish=self._finished)
        except ValueError as exc:
            show_error(str(exc))
            return None
        return self._controls.started(job)

    def cancel(self, _=None) -> None:
        """Stop the measurement; no table is kept."""
        self._controls.cancel()

    def _done(self, layer: Labels, table: pd.DataFrame) -> None:
        self.table = table
        set_features(layer, table, self.viewer)
        self.color_by.reset_choices()
        if self.points.value:
            centroid_points(self.viewer, layer, table, self.color_by.value)
        self.save_button.enabled = True

    def _finished(self, job: jobs.Job) -> None:
        rows = f" ({len(self.table)} rows)" if job.outcome == "done" and self.table is not None \
            else ""
        self._controls.finished(job, rows)

    def _recolor(self, value=None) -> None:
        layer = self.labels.value
        if self.table is None or layer is None or f"{layer.name} · centroids" not in \
                self.viewer.layers or value not in self.table:
            return
        points = self.viewer.layers[f"{layer.name} · centroids"]
        points.face_color = value
        points.refresh()

    # ------------------------------------------------------------------ saving
    def save_table(self, path: str) -> bool:
        """Save the last table (CSV, or Parquet with pyarrow); errors are notifications.

        Returns
        -------
        bool
            Whether it was written.
        """
        return save_notifying(save_table, self.table, path, "nothing to save: measure first")

    def _save_dialog(self, _=None) -> None:
        filters = "CSV (*.csv)" + (";;Parquet (*.parquet)" if parquet_available() else "")
        name = self.labels.value.name if self.labels.value is not None else "table"
        path = ask_save_path(self.native, "Save the table", f"{name}.csv", filters)
        if path:
            self.save_table(path)

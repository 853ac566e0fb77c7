"""The Segment dock widget: instance segmentation previewed while browsing, then stitched.

*Preview* adds a live Labels layer of the job's per-block labels (``lp.segment``'s
``preview``): the blocks of the plane on screen are segmented on the display threads,
never on napari's, and their ids do not change while panning; the layer's name and
metadata say it is a preview (objects crossing block faces are not joined). *Segment
whole volume* runs the stitched job with napari's progress bar and a Cancel, and adds
the labels as a Labels layer (a pyramid), which Export and Measure take.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error

from .._layer_data import layer_source, result_layer_data, result_levels
from .._live import SYNC_VOXELS, live_levels
from ..ops import list_methods, segment
from . import jobs
from .live_layers import add_live_layer, replace_result

if TYPE_CHECKING:
    import napari

PREVIEW_SUFFIX = " · segment preview"
PREVIEW_MODES = ("3D blocks", "planes (2D, fast)")
PREVIEW_NOTE = ("preview: each block segmented on its own (with its halo); objects "
                "crossing block faces are not joined until 'Segment whole volume'")


def _value(text: str):
    """A parameter typed in the panel: JSON (numbers, null, true), else the text."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class SegmentWidget(Container):
    """Pick an image, a method, the object diameter and the method's parameters;
    preview the labels while browsing, or segment the whole volume.

    Parameters
    ----------
    viewer : napari.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.image = ComboBox(label="image", choices=self._image_choices, nullable=True)
        self.method = ComboBox(label="method", choices=sorted(list_methods()),
                               value="watershed")
        self.diameter = FloatSpinBox(label="diameter", value=12.0, min=1.0, max=10000.0,
                                     step=1.0, tooltip="expected object diameter: sets each "
                                     "block's halo")
        self.units = ComboBox(label="units", choices=["pixel", "physical"], value="pixel")
        self.axes = ComboBox(label="axes", choices=["zyx", "yx"], value="zyx")
        self.block = SpinBox(label="block", value=0, min=0, max=4096,
                             tooltip="core block edge in voxels (0: automatic)")
        self.params = Container(labels=True, label="parameters")
        self.preview = CheckBox(text="Preview (blocks on screen)", value=False)
        self.preview_mode = ComboBox(label="preview", choices=list(PREVIEW_MODES),
                                     value="3D blocks",
                                     tooltip="3D blocks: as the whole-volume job segments "
                                     "them; planes: each plane in 2D, several times faster")
        self._controls = jobs.JobControls("Segment whole volume", "Cancel")
        self.run_button, self.cancel_button = (self._controls.run_button,
                                               self._controls.cancel_button)
        self.status: Label = self._controls.status
        self.extend([self.image, self.method, self.diameter, self.units, self.axes,
                     self.block, self.params, self.preview_mode, self.preview, self.run_button,
                     self.cancel_button, self.status])
        self.preview_layer = None
        self.labels_layer = None
        self._make_params()
        self.method.changed.connect(self._make_params)
        for widget in (self.image, self.method, self.diameter, self.units, self.axes,
                       self.block, self.preview_mode):
            widget.changed.connect(self._update_preview)
        self.preview.changed.connect(self._toggle_preview)
        self.run_button.changed.connect(self.segment_whole)
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    # ---------------------------------------------------------------- inputs
    def _image_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Image)]

    def _refresh(self, event=None) -> None:
        self.image.reset_choices()
        layers = [c for c in self.image.choices if c is not None]
        if self.image.value is None and layers:
            self.image.value = layers[0]
        layer = self.image.value
        if layer is not None and layer.ndim == 2:
            self.axes.value = "yx"

    def _make_params(self, _=None) -> None:
        self.params.clear()
        method = list_methods().get(self.method.value)
        for name, default in (method.params if method else {}).items():
            edit = LineEdit(label=name, value="" if default is None else json.dumps(default),
                            tooltip="empty: the method's default (a threshold: Otsu's)")
            edit.changed.connect(self._update_preview)
            self.params.append(edit)
        self._update_preview()

    def job(self):
        """The ``lp.segment`` job the panel describes (``ValueError`` when it cannot)."""
        layer = self.image.value
        if layer is None:
            raise ValueError("no image layer: choose the image to segment")
        params = {w.label: _value(w.value) for w in self.params}
        params = {k: v for k, v in params.items() if v is not None}
        return segment(layer_source(layer), self.method.value, diameter=self.diameter.value,
                       units=self.units.value, axes=self.axes.value,
                       block=self.block.value or None, **params)

    # ---------------------------------------------------------------- preview
    def _toggle_preview(self, on: bool) -> None:
        if on:
            self.show_preview()
        elif self.preview_layer is not None and self.preview_layer in self.viewer.layers:
            self.viewer.layers.remove(self.preview_layer)
            self.preview_layer = None

    def _update_preview(self, _=None) -> None:
        if self.preview.value:
            self.show_preview()

    def show_preview(self):
        """Add (or update) the preview layer; its blocks compute in the background."""
        try:
            job = self.job()
            preview = job.preview if self.preview_mode.value == "3D blocks" else \
                job.plane_preview
        except ValueError as exc:
            show_error(str(exc))
            return None
        layer = self.preview_layer
        if layer is not None and layer in self.viewer.layers:
            replace_result(layer, preview)
            layer.metadata.update(pipeline=preview.steps)
            return layer
        source = self.image.value
        _, kwargs, _ = result_layer_data(preview, f"{source.name}{PREVIEW_SUFFIX}")
        kwargs.update(scale=list(source.scale), translate=list(source.translate))
        kwargs["metadata"].update(preview=True, note=PREVIEW_NOTE)
        kwargs.pop("multiscale", None)
        self.preview_layer = add_live_layer(self.viewer, preview, kwargs, "labels")
        self.preview_layer.opacity = 0.6
        return self.preview_layer

    # ---------------------------------------------------------------- the job
    def segment_whole(self, _=None) -> jobs.Job | None:
        """Run the stitched job in the background; a Labels layer comes when done.

        Returns
        -------
        Job or None
            The running job, or None on bad input (told as a notification).
        """
        try:
            seg = self.job()
        except ValueError as exc:
            show_error(str(exc))
            return None
        source = self.image.value

        def work(progress, cancel: threading.Event):
            return seg.run(progress=progress, cancel=cancel)

        def add(labels) -> None:
            levels = live_levels(result_levels(labels), sync_voxels=SYNC_VOXELS)
            self.labels_layer = self.viewer.add_labels(
                levels if len(levels) > 1 else levels[0],
                name=f"{source.name} · segment ({seg.method.name})",
                scale=list(source.scale), translate=list(source.translate),
                axis_labels=list(source.axis_labels), units=[str(u) for u in source.units],
                metadata={"pipeline": labels.steps, "n_labels": labels.n_labels,
                          "source": {"layer": source.name, "path": labels.source_path}})

        total = len(seg.blocks())
        job = jobs.Job(f"segment {source.name}", work, total=total, on_done=add,
                       on_finish=self._finished)
        return self._controls.started(job.start())

    def cancel(self, _=None) -> None:
        """Stop the job; nothing is kept."""
        self._controls.cancel()

    def _finished(self, job: jobs.Job) -> None:
        detail = ""
        if job.outcome == "done" and self.labels_layer is not None:
            detail = f" ({self.labels_layer.metadata['n_labels']} objects)"
        self._controls.finished(job, detail)

"""The Segment dock widget: instance segmentation previewed while browsing, then stitched.

*Preview* adds a live Labels layer of the job's per-block labels, computed off napari's
thread, ids unchanged while panning; its name and metadata say it is a preview (objects
crossing block faces are not joined). By default (``live_preview``) each plane shows its
2D look at once and its 3D preview replaces it block by block, ids kept; the panel's
*showing* line says which is on screen. *Segment whole volume* runs the stitched job on
threads, a local dask cluster or a scheduler (``ClusterChoice``), with napari's progress
bar and a Cancel (resumable in a work folder), and adds the labels as a Labels layer (a
pyramid), which Export and Measure take.
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
from superqt.utils import ensure_main_thread

from .._layer_data import layer_source, result_layer_data, result_levels
from .._live import SYNC_VOXELS, live_levels
from ..ops import list_methods, segment
from . import jobs
from .cluster import ClusterChoice
from .live_layers import add_live_layer, live_states, replace_result

if TYPE_CHECKING:
    import napari

PREVIEW_SUFFIX = " · segment preview"
PREVIEW_MODES = ("3D (plane look first)", "3D blocks", "planes (2D, fast)")
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
                                     value=PREVIEW_MODES[0],
                                     tooltip="3D (plane look first): each plane's 2D look "
                                     "at once, replaced by its 3D preview when computed; "
                                     "3D blocks: only the 3D preview (seconds per plane); "
                                     "planes: each plane in 2D")
        self.showing = Label(label="showing", value="")
        self.run_on = ClusterChoice()
        self.work_folder = LineEdit(label="work folder", value="",
                                    tooltip="where the job keeps its blocks, to resume "
                                    "after a cancel or a crash (empty: a temporary folder; "
                                    "on a scheduler, a folder its workers reach)")
        self._controls = jobs.JobControls("Segment whole volume", "Cancel")
        self.run_button, self.cancel_button = (self._controls.run_button,
                                               self._controls.cancel_button)
        self.status: Label = self._controls.status
        self.extend([self.image, self.method, self.diameter, self.units, self.axes,
                     self.block, self.params, self.preview_mode, self.preview, self.showing,
                     self.run_on, self.work_folder, self.run_button, self.cancel_button,
                     self.status])
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
            self._stop(self._shown())
            self.viewer.layers.remove(self.preview_layer)
            self.preview_layer = None
            self.showing.value = ""

    def _shown(self):
        """The preview the layer shows now (None without one)."""
        layer = self.preview_layer
        if layer is None or layer not in self.viewer.layers:
            return None
        states = live_states(layer)
        return states[0].result if states else None

    @staticmethod
    def _stop(preview) -> None:
        close = getattr(preview, "close", None)
        if close is not None:
            close()  # its queued 3D blocks are stale

    def _landed(self, preview) -> None:
        """A 3D block of ``preview`` landed (on its worker thread): refresh the layer."""
        self._refresh_layer(preview)

    @ensure_main_thread
    def _refresh_layer(self, preview) -> None:
        if self._shown() is not preview:
            return  # replaced or removed meanwhile
        self.preview_layer.refresh()
        self._mark(preview)

    def _mark(self, preview) -> None:
        """Say what the plane on screen shows (the layer's metadata too)."""
        showing = getattr(preview, "showing", None)
        region = getattr(preview, "last_region", None)
        if showing is None:  # one kind throughout
            flat = self.preview_mode.value == PREVIEW_MODES[2] and self.axes.value == "zyx"
            what = "plane look (2D)" if flat else "preview"
        elif region is None:
            what = "plane look (2D) until the 3D preview lands"
        else:
            what = {"3D": "3D preview", "plane look": "plane look (2D); 3D computing",
                    }.get(showing(region), "3D preview and plane look (2D); 3D computing")
        self.showing.value = what
        if self.preview_layer is not None:
            self.preview_layer.metadata["showing"] = what

    def _update_preview(self, _=None) -> None:
        if self.preview.value:
            self.show_preview()

    def show_preview(self):
        """Add (or update) the preview layer; its blocks compute in the background."""
        try:
            job = self.job()
            mode = self.preview_mode.value
            preview = (job.live_preview if mode == PREVIEW_MODES[0] else job.preview
                       if mode == PREVIEW_MODES[1] else job.plane_preview)
        except ValueError as exc:
            show_error(str(exc))
            return None
        if hasattr(preview, "on_update"):
            preview.on_update.append(self._landed)
        layer = self.preview_layer
        if layer is not None and layer in self.viewer.layers:
            old = self._shown()
            replace_result(layer, preview)
            if old is not preview:
                self._stop(old)
            layer.metadata.update(pipeline=preview.steps)
            self._mark(preview)
            return layer
        source = self.image.value
        _, kwargs, _ = result_layer_data(preview, f"{source.name}{PREVIEW_SUFFIX}")
        kwargs.update(scale=list(source.scale), translate=list(source.translate))
        kwargs["metadata"].update(preview=True, note=PREVIEW_NOTE)
        kwargs.pop("multiscale", None)
        self.preview_layer = add_live_layer(self.viewer, preview, kwargs, "labels")
        self.preview_layer.opacity = 0.6
        self._mark(preview)
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
            where = self.run_on.options()
        except ValueError as exc:
            show_error(str(exc))
            return None
        source = self.image.value
        store = self.work_folder.value.strip() or None

        def work(progress, cancel: threading.Event):
            return seg.run(progress=progress, cancel=cancel, store=store, **where)

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
        job = jobs.Job(f"segment {source.name} on {self.run_on.describe()}", work,
                       total=total, on_done=add,
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

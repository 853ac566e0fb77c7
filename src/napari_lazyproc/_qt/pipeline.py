"""The Process widget's *Pipeline* view: the selected lazy layer's steps, from its file to
it, and what can be done with them: save them (the JSON ``process --pipeline`` reads),
load a saved pipeline onto another layer (a live lazy layer like any other), copy a
Python script that reproduces the layer, or run them over a folder of datasets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import Container, Label, PushButton, Table
from napari.utils.notifications import show_error, show_info

from .._layer_data import layer_source
from .._pipeline_script import open_options, pipeline_rows, python_script, saved_pipeline
from . import choices
from .tables import ask_save_path

if TYPE_CHECKING:
    import napari

#: ``add_result(result, name, input_layer, metadata)``: the Process widget's way of
#: adding a lazy result as a live layer; returns the layer or None
AddResult = Callable[..., object]


def origin_layer(viewer, layer):
    """The layer a result's chain starts from (a file's layer), following each result's
    ``metadata["source"]["layer"]``; None when it is no longer in the viewer."""
    seen: set[int] = set()
    while layer is not None and choices.is_result(layer) and id(layer) not in seen:
        seen.add(id(layer))
        name = (layer.metadata.get("source") or {}).get("layer")
        layer = viewer.layers[name] if name in viewer.layers else None
    return layer


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


class PipelinePanel(Container):
    """The steps of the selected lazy layer, and Save, Load, Copy as Python, Process a
    folder.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose selected layer is shown.
    add_result : callable
        ``add_result(result, name, input_layer, metadata)`` adds a loaded pipeline's
        result as a live layer (the Process widget's ``add_result``).
    target : callable
        ``target()``: the layer *Load pipeline…* applies to (the widget's input).
    """

    def __init__(self, viewer: napari.viewer.Viewer, add_result: AddResult,
                 target: Callable[[], object]) -> None:
        super().__init__(labels=False, label="")  # its first line says what it is
        self.viewer = viewer
        self._add_result = add_result
        self._target = target
        self.batch = None  # the Process a folder window, once opened
        self.origin = Label(value="")
        self.view = Table(value=None)
        self.view.read_only = True
        self.save_button = PushButton(text="Save pipeline…", enabled=False,
                                      tooltip="the JSON `napari-lazyproc process --pipeline` "
                                              "reads")
        self.load_button = PushButton(text="Load pipeline…",
                                      tooltip="apply a saved pipeline to the input layer "
                                              "chosen above, as a new lazy layer")
        self.copy_button = PushButton(text="Copy as Python", enabled=False,
                                      tooltip="a script that reproduces the layer from its file")
        self.batch_button = PushButton(text="Process a folder…",
                                       tooltip="run a pipeline over many datasets, in the "
                                               "background")
        row1 = Container(layout="horizontal", labels=False,
                         widgets=[self.save_button, self.load_button])
        row2 = Container(layout="horizontal", labels=False,
                         widgets=[self.copy_button, self.batch_button])
        for row in (row1, row2):
            row.margins = (0, 0, 0, 0)
        self.extend([self.origin, self.view, row1, row2])
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.copy_button.changed.connect(self.copy_python)
        self.batch_button.changed.connect(self.open_batch)
        viewer.layers.selection.events.active.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------------ the view
    @property
    def layer(self):
        """The selected layer when it is a lazy result (it records its pipeline), else
        None."""
        layer = self.viewer.layers.selection.active
        return layer if layer is not None and choices.is_result(layer) else None

    @property
    def steps(self) -> list[dict]:
        """The selected layer's steps, from its file to it (empty for none)."""
        layer = self.layer
        return list(layer.metadata["pipeline"]) if layer is not None else []

    def refresh(self, event=None) -> None:
        """Show the selected layer's steps (called when the selection or the layer
        changes)."""
        layer, steps = self.layer, self.steps
        if layer is None:
            self.origin.value = "Pipeline: select a lazy layer to see its steps"
        else:
            path = (layer.metadata.get("source") or {}).get("path")
            self.origin.value = (f"Pipeline of the selected layer, from "
                                 f"{Path(path).name if path else 'data in memory'}:")
            self.origin.tooltip = path or ""
        rows = pipeline_rows(steps)
        self.view.value = {"data": [list(r) for r in rows],
                           "index": [str(i + 1) for i in range(len(rows))],
                           "columns": ["operation", "parameters (lengths in pixels)"]}
        self.view.native.resizeColumnsToContents()
        self.view.native.horizontalHeader().setStretchLastSection(True)
        self.view.native.setMinimumHeight(60)
        self.view.native.setMaximumHeight(40 + 26 * max(len(rows), 1))
        self.save_button.enabled = self.copy_button.enabled = bool(steps)

    # ------------------------------------------------------------------ save, load
    def save(self, path: str) -> bool:
        """Write the selected layer's pipeline to ``path``; errors are notifications.

        Returns
        -------
        bool
            Whether it was written.
        """
        if not self.steps:
            show_error("no pipeline to save: select a lazy layer")
            return False
        try:
            Path(path).write_text(saved_pipeline(self.steps))
        except (ValueError, OSError) as exc:
            show_error(str(exc))
            return False
        show_info(f"saved the pipeline of {self.layer.name} to {path}")
        return True

    def load(self, path: str, layer=None):
        """Apply the pipeline saved in ``path`` to ``layer`` (default: the widget's input)
        and add the result as a live lazy layer.

        Returns
        -------
        napari.layers.Layer or None
            The new layer, or None (told as a notification).
        """
        from ..batch import load_pipeline
        from ..ops import LazyResult

        layer = layer if layer is not None else self._target()
        try:
            if layer is None:
                raise ValueError("no input layer: choose the layer to apply the pipeline to")
            pipeline = load_pipeline(Path(path))  # what `process --pipeline` reads
            if not pipeline.steps:
                raise ValueError(f"{path} holds no steps")
            result = pipeline(layer_source(layer))
            if not isinstance(result, LazyResult):
                raise ValueError(f"{Path(path).name} ends with whole-volume labeling: load "
                                 f"it without that step, then use 'Label whole volume'")
        except ValueError as exc:
            show_error(str(exc))
            return None
        name = f"{layer.name} · " + " → ".join(s["op"] for s in pipeline.steps)
        metadata = {"pipeline": result.steps, "pipeline_file": str(path),
                    "source": {"path": result.source_path, "layer": layer.name}}
        return self._add_result(result, name, layer, metadata)

    # ------------------------------------------------------------------ Python
    def python_text(self) -> str:
        """The script that reproduces the selected layer from its file.

        Raises
        ------
        ValueError
            No lazy layer selected, a chain that starts from data in memory (no file to
            open), or a step a script cannot write (a Python function).
        """
        layer = self.layer
        if layer is None:
            raise ValueError("no lazy layer selected: select the layer to reproduce")
        origin = origin_layer(self.viewer, layer)
        meta = origin.metadata if origin is not None else {}
        source = meta.get("source") or layer.metadata.get("source") or {}
        path = source.get("path")
        if not path:
            raise ValueError(f"{layer.name} starts from data in memory, not a file: save "
                             f"its input first, then a script can open it")
        return python_script(self.steps, _absolute(str(path)), name=layer.name,
                             options=open_options(source), channel=meta.get("channel"))

    def copy_python(self, _=None) -> str | None:
        """Put the script on the clipboard; errors are notifications.

        Returns
        -------
        str or None
            The script, or None.
        """
        from qtpy.QtWidgets import QApplication

        try:
            text = self.python_text()
        except ValueError as exc:
            show_error(str(exc))
            return None
        QApplication.clipboard().setText(text)
        show_info(f"copied a Python script that reproduces {self.layer.name}")
        return text

    # ------------------------------------------------------------------ dialogs
    def _save_dialog(self, _=None) -> None:
        name = self.layer.name if self.layer is not None else "pipeline"
        path = ask_save_path(self.native, "Save the pipeline",
                             f"{name.split(' · ')[0]} pipeline.json", "Pipeline (*.json)")
        if path:
            self.save(path)

    def _load_dialog(self, _=None) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Load a pipeline", "",
                                              "Pipeline (*.json)")
        if path:
            self.load(path)

    def open_batch(self, _=None):
        """Open the *Process a folder* window, set to the selected layer's pipeline."""
        from .batch_window import BatchPanel

        if self.batch is None:
            self.batch = BatchPanel(self.viewer, parent=self.native)
        self.batch.use_steps(self.steps, self.layer.name if self.layer is not None else "")
        self.batch.native.show()
        self.batch.native.raise_()
        return self.batch

"""*Process a folder…*: one pipeline over many datasets, in the background.

The window picks the pipeline (the selected layer's, or a saved file), the inputs (paths
or globs) and the output folder with a name template, then runs ``batch.run_batch`` as a
job (napari's progress bar, Cancel; each dataset independent) and shows its summary
table: input, output, status, time, voxels, error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    Table,
)
from napari.utils.notifications import show_error
from superqt.utils import ensure_main_thread

from . import jobs

if TYPE_CHECKING:
    import napari

#: where the pipeline comes from
PIPELINE_FROM = (("the selected layer's", "layer"), ("a saved pipeline (JSON)", "file"))
#: the summary table's columns: the command line's summary, and why a dataset failed
COLUMNS = ("input", "output", "status", "time", "voxels", "error")


def _patterns(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ";").split(";") if p.strip()]


class BatchPanel(Container):
    """The *Process a folder* window.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose progress bars show the run.
    parent : QWidget, optional
        The window closes with it (the Process widget).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        if parent is not None:
            from qtpy.QtCore import Qt

            self.native.setParent(parent, Qt.WindowType.Window)
        self.steps: list[dict] = []
        self.rows: list | None = None  # the last run's summary (BatchRow)
        self.source = ComboBox(label="pipeline", choices=list(PIPELINE_FROM), value="layer")
        self.pipeline_file = FileEdit(label="pipeline file", mode="r", filter="*.json",
                                      visible=False)
        self.inputs = LineEdit(tooltip="paths or globs, separated by ';' "
                                       "(data/*.ome.zarr; more/embryo_*.tif)")
        self.folder_button = PushButton(text="Folder…", tooltip="every dataset in a folder")
        row = Container(layout="horizontal", labels=False, label="inputs",
                        widgets=[self.inputs, self.folder_button])
        row.margins = (0, 0, 0, 0)
        self.found = Label(value="")
        self.output = FileEdit(label="output folder", mode="d")
        self.template = LineEdit(label="file name", value="{stem}.ome.zarr",
                                 tooltip="{stem}: the input's name without extensions, "
                                         "{name}: with them, {parent}: its folder's name")
        self.overwrite = CheckBox(text="Overwrite outputs made otherwise", value=False)
        self.resume = CheckBox(text="Skip complete outputs, finish partial ones", value=True)
        self.controls = jobs.JobControls("Run", "Cancel")
        self.run_button, self.cancel_button = self.controls.run_button, self.controls.cancel_button
        self.status = self.controls.status
        self.summary = Table(value=None, label="summary")
        self.summary.read_only = True
        self.extend([self.source, self.pipeline_file, row, self.found, self.output,
                     self.template, self.overwrite, self.resume, self.run_button,
                     self.cancel_button, self.status, self.summary])
        self.native.setWindowTitle("Process a folder (napari-lazyproc)")
        self.native.setStyleSheet(_stylesheet(viewer))  # a window of its own: napari's look
        self.native.resize(640, 520)
        self.source.changed.connect(self._on_source)
        self.inputs.changed.connect(self._count_inputs)
        self.run_button.changed.connect(self.run)
        self.folder_button.changed.connect(self._choose_folder)

    def use_steps(self, steps: list[dict], layer_name: str = "") -> None:
        """Offer ``steps`` (the selected layer's) as the pipeline; a file when empty."""
        self.steps = list(steps)
        text = f"the selected layer's ({layer_name})" if layer_name else PIPELINE_FROM[0][0]
        self.source.choices = [(text, "layer"), PIPELINE_FROM[1]]
        self.source.value = "layer" if self.steps else "file"
        self._on_source()

    def _on_source(self, _=None) -> None:
        self.pipeline_file.visible = self.source.value == "file"

    def _choose_folder(self, _=None) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.native, "Datasets in a folder")
        if folder:
            zarrs = any(Path(folder).glob("*.zarr"))
            self.inputs.value = str(Path(folder) / ("*.zarr" if zarrs else "*"))

    def _count_inputs(self, _=None) -> None:
        from ..batch import expand_inputs

        try:
            n = len(expand_inputs(_patterns(self.inputs.value)))
        except ValueError as exc:
            self.found.value = str(exc)
            return
        self.found.value = f"{n} dataset{'s' * (n != 1)} found"

    # ------------------------------------------------------------------ the run
    def pipeline(self):
        """The pipeline to run.

        Raises
        ------
        ValueError
            No steps, or a file that cannot be read or parsed.
        """
        from ..batch import load_pipeline
        from ..ops import Pipeline

        if self.source.value == "layer":
            if not self.steps:
                raise ValueError("no pipeline: select a lazy layer, or choose a saved file")
            return Pipeline(self.steps)
        path = Path(self.pipeline_file.value)
        if not path.is_file():
            raise ValueError(f"no pipeline file: {path} is not a file")
        return load_pipeline(path)

    def run(self, _=None) -> jobs.Job | None:
        """Run the pipeline over the inputs in the background.

        Returns
        -------
        Job or None
            The running job, or None on bad choices (told as a notification).
        """
        from ..batch import expand_inputs, run_batch

        try:
            pipeline = self.pipeline()
            inputs = expand_inputs(_patterns(self.inputs.value))
            if not inputs:
                raise ValueError("no inputs: give paths or globs, such as data/*.ome.zarr")
            folder = Path(self.output.value)
            if not str(self.output.value) or str(self.output.value) == ".":
                raise ValueError("no output folder: choose where the results go")
            template = str(folder / self.template.value)
        except ValueError as exc:
            show_error(str(exc))
            return None
        self.rows = None
        options = {"overwrite": self.overwrite.value, "resume": self.resume.value}

        def work(progress, cancel):
            def report(index, fraction, overall, message=""):
                progress(int(round(1000 * overall)), 1000)
                self._say(f"{index + 1}/{len(inputs)} · {message}" if message else "")

            folder.mkdir(parents=True, exist_ok=True)
            self.rows = run_batch(pipeline, inputs, template, progress=report,
                                  cancel=cancel, **options)
            return self.rows

        job = jobs.Job(f"process {len(inputs)} datasets", work, total=1000,
                       on_finish=self._finished)
        return self.controls.started(job.start())

    @ensure_main_thread
    def _say(self, message: str) -> None:
        if self.controls.job is not None and message:
            self.status.value = message

    def _finished(self, job: jobs.Job) -> None:
        from ..batch import summary_rows

        rows = self.rows or []
        failed = sum(1 for r in rows if r.status == "failed")
        detail = f" ({len(rows)} datasets, {failed} failed)" if rows else ""
        self.controls.finished(job, detail)
        if failed:
            show_error(f"{failed} of {len(rows)} datasets failed: the summary says why")
        cells = [[Path(c).name if i < 2 and c != "-" else c for i, c in enumerate(cells)]
                 + [r.error or ""] for r, cells in zip(rows, summary_rows(rows), strict=True)]
        self.summary.value = {"data": cells, "columns": list(COLUMNS),
                              "index": [str(i + 1) for i in range(len(cells))]}
        self.summary.native.resizeColumnsToContents()


def _stylesheet(viewer) -> str:
    from napari.qt import get_stylesheet

    try:
        return get_stylesheet(viewer.theme)
    except Exception:  # noqa: BLE001 - a theme napari no longer knows: Qt's own look
        return ""

"""The "Process" dock widget: registry operations as live lazy layers.

The widget wires the pieces together: what it offers (``choices``), the parameter form
generated from the registry (``param_form``), result layers whose planes are computed in
the background (``live_layers``), whole-volume jobs (``jobs``) and the selected layer's
pipeline (``pipeline``). Measure and Drift correction are dock widgets of their own
(``measure``, ``drift``).
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, ComboBox, Container, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error

from .. import backend
from .._layer_data import (
    LATER,
    PREVIEW_NOTE,
    layer_source,
    result_layer_data,
    result_layer_name,
    result_levels,
)
from .._live import LiveState
from ..ops import REGISTRY, apply, get_op, get_precision
from . import choices, jobs
from .coalesce import coalesced
from .live_layers import add_live_layer, live_states, recompute, replace_result, watch
from .param_form import ParamForm
from .pipeline import PipelinePanel
from .tables import ask_save_path

if TYPE_CHECKING:
    import napari


class LazyProcessingWidget(Container):
    """Pick a layer and an operation, set its parameters, and add it as a live lazy layer.

    While "Live update" is on, editing a parameter replaces the data of the layer added
    last (the same layer, renamed); only the planes on screen are computed.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers are the inputs and receive the results.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.input = ComboBox(label="input", choices=self._layer_choices, nullable=True)
        self.operation = ComboBox(
            label="operation",
            choices=[(f"{REGISTRY[n].category} · {n}", n) for n in
                     sorted(REGISTRY, key=lambda n: (REGISTRY[n].category, n))],
            value="gaussian",
        )
        self.axes = ComboBox(label="spatial axes", choices=self._axes_choices)
        self.lengths = ComboBox(label="lengths in", choices=self._length_choices)
        self.params = ParamForm()
        self.live = CheckBox(text="Live update", value=True)
        ok, why = backend.gpu_available()
        self.gpu = CheckBox(text="Use GPU (CuPy)", value=backend.get_backend() == "cupy",
                            enabled=ok,
                            tooltip=why if not ok else f"compute chunks on the GPU ({why})")
        # advanced: the precision switch (fast kernels by default, or bitwise scipy)
        self.exact = CheckBox(
            text="Exact (bitwise scipy; slower)", value=get_precision() == "exact",
            tooltip="fast (default): floats within 1e-6 of scipy, integers within one grey "
                    "level, order statistics, thresholds and labels exact")
        self.advanced = Container(label="advanced", widgets=[self.exact], labels=False)
        self.add_button = PushButton(text="Add lazy layer")
        # one job at a time (labeling, export, a whole-image statistic), as in every widget
        self.controls = jobs.JobControls("Label whole volume", "Cancel", "Export to OME-Zarr…")
        self.label_button, self.export_button = self.controls.run_buttons
        self.cancel_button, self.status = self.controls.cancel_button, self.controls.status
        self.extend([self.input, self.operation, self.axes, self.lengths, self.params, self.live,
                     self.gpu, self.advanced, self.add_button, self.label_button,
                     self.export_button, self.cancel_button, self.status])
        # the selected lazy layer's steps: save, load, copy as Python, process a folder
        self.pipeline = PipelinePanel(viewer, self.add_result, lambda: self.input.value)
        self.native.layout().addWidget(self.pipeline.native)  # full width: no label column

        self._live_layer: weakref.ref | None = None

        self.input.changed.connect(self._on_input)
        self.operation.changed.connect(self._on_operation)
        self.axes.changed.connect(self._on_param)
        self.lengths.changed.connect(self._on_lengths)
        self._param_edit = coalesced(self._on_param)  # a dragged value: the last one wins
        self.params.changed.connect(self._param_edit)
        self.exact.changed.connect(self._on_param)
        self.gpu.changed.connect(self._on_gpu)
        self.add_button.changed.connect(self.add_layer)
        self.label_button.changed.connect(self.label_whole_volume)
        self.export_button.changed.connect(self._export_dialog)
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        viewer.layers.events.reordered.connect(self._refresh_layers)
        watch(viewer)  # file layers read in the background too, and removed layers stop
        self._refresh_layers()
        self._on_input()

    # ------------------------------------------------------------------ choices
    def _layer_choices(self, _widget=None) -> list:
        return choices.input_layers(self.viewer)

    def _source(self):
        return choices.source_or_none(self.input.value)

    def _axes_choices(self, _widget=None) -> list:
        return choices.axes_choices(self._source())

    def _length_choices(self, _widget=None) -> list:
        if not hasattr(self, "axes"):  # being built: pixels until an input is chosen
            return choices.length_choices(None, "yx")
        return choices.length_choices(self._source(), self.axes.value)

    def _refresh_layers(self, event=None) -> None:
        current = self.input.value
        self.input.reset_choices()
        if current is None and self.input.choices:
            natural = choices.natural_input(self.input.choices)
            if natural is not None:
                self.input.value = natural

    def _on_input(self, _value=None) -> None:
        self._live_layer = None
        source = self._source()
        self.axes.reset_choices()
        if source is not None:
            self.axes.value = choices.default_axes(source, self.axes.choices)
        self.lengths.reset_choices()
        # lengths in the layer's unit when it has one
        self.lengths.value = "physical" if "physical" in self.lengths.choices else "pixel"
        self._build_params()

    def _on_operation(self, _value=None) -> None:
        self._live_layer = None
        self._fit_axes()
        self._build_params()

    def _fit_axes(self) -> None:
        """When the operation refuses the spatial axes chosen (``rotate`` turns one plane,
        not a volume), choose the first it accepts, as its own check says."""
        op = get_op(self.operation.value)
        if op.check is None or self._named_frame():
            return

        def accepts(axes: str) -> bool:
            try:
                op.check(op.validate({}, len(axes)).as_dict(), axes)
            except (ValueError, TypeError, KeyError):
                return False
            return True

        if not accepts(self.axes.value):
            fitting = [axes for axes in self.axes.choices if accepts(axes)]
            if fitting:
                self.axes.value = fitting[0]

    def _on_lengths(self, _value=None) -> None:
        self._build_params()
        self._on_param()

    # ------------------------------------------------------------------ parameters
    def _length_unit(self) -> str | None:
        """The physical unit lengths are given in, or None for pixels."""
        return self.lengths.current_choice if self.lengths.value == "physical" else None

    def _named_frame(self) -> bool:
        """Whether the operation's parameters name the axes it runs along (a projection's
        ``axis``), so that the spatial axes choice does not apply to it."""
        geometry = get_op(self.operation.value).geometry
        return geometry is not None and geometry.frame is not None

    def _build_params(self) -> None:
        unit = self._length_unit()
        source = self._source()
        scale = choices.length_scale(source, self.axes.value) if unit else 1.0
        self.axes.enabled = not self._named_frame()
        self.params.build(get_op(self.operation.value), length_unit=unit, length_scale=scale,
                          data_axes=None if source is None else source.axes)

    def param_values(self) -> dict[str, Any]:
        """The parameters as the widget shows them.

        Raises
        ------
        ValueError
            For an optional value's text that is not a number.
        """
        return self.params.values()

    def set_params(self, **values) -> None:
        """Set parameters by name; a single live update follows."""
        self.params.set_values(**values)
        self._param_edit.flush()  # at once: coalescing is for a hand on a slider

    def _units(self) -> str:
        return "pixel" if self._length_unit() is None else "physical"

    def _result(self):
        layer = self.input.value
        if layer is None:
            raise ValueError("no input layer: open an image or choose one in 'input'")
        axes = None if self._named_frame() else self.axes.value
        return apply(self.operation.value, layer_source(layer), axes=axes,
                     units=self._units(), precision=self.precision, **self.param_values())

    @property
    def precision(self) -> str:
        """"exact" when the Advanced checkbox asks for bitwise scipy, else "fast"."""
        return "exact" if self.exact.value else "fast"

    def layer_name(self) -> str:
        """The name the current operation's layer gets (see ``result_layer_name``)."""
        base = self.input.value.name if self.input.value is not None else "?"
        return result_layer_name(get_op(self.operation.value), self.param_values(),
                                 input_name=base, length_unit=self._length_unit())

    # ------------------------------------------------------------------ layers
    def _metadata(self, result) -> dict[str, Any]:
        return {
            "pipeline": result.steps,
            "source": {"path": result.source_path, "layer": self.input.value.name},
            "lazyproc": {"op": self.operation.value, "params": self.param_values(),
                         "axes": getattr(result, "spatial_axes", self.axes.value),
                         "units": self._units()},
            **({"levels": PREVIEW_NOTE} if len(result_levels(result)) > 1 else {}),
        }

    def add_layer(self, _=None):
        """Add the current operation as a new lazy layer.

        Returns
        -------
        napari.layers.Image or napari.layers.Labels or None
            The layer (Labels for labeling), or None when the input or the parameters
            were refused (told as a notification).
        """
        try:
            result = self._result()
            name = self.layer_name()
        except ValueError as exc:
            show_error(str(exc))
            return None
        layer_in = self.input.value
        layer = self.add_result(result, name, layer_in, self._metadata(result))
        if layer is not None:
            self.input.value = layer_in  # adding a layer must not change the input
            self._live_layer = weakref.ref(layer)  # after the input: it resets the target
        return layer

    def add_result(self, result, name: str, layer_in, metadata: dict[str, Any]):
        """Add ``result`` (made from ``layer_in``) as a live lazy layer, selected.

        Returns
        -------
        napari.layers.Layer or None
            None when napari refused it (told as a notification).
        """
        limits = None
        if (result.kind != "labels" and result.dtype == layer_in.dtype
                and isinstance(layer_in, Image) and result.op.category != "threshold"
                and result.op.geometry is None):
            limits = tuple(layer_in.contrast_limits)  # the same grey levels look the same
        try:
            _, kwargs, kind = result_layer_data(result, name, contrast_limits=limits or LATER)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable file: tell, don't crash
            show_error(f"{name}: {exc}")
            return None
        # placed where its input layer is (a projection drops its axis; a rotation moves
        # the origin): the result was made from the layer, translate included
        kwargs["translate"] = list(result.translate)
        kwargs["metadata"] = metadata
        self._statistics_job(result)  # first: its bar then follows the job from the start
        layer = add_live_layer(self.viewer, result, kwargs, kind, self._on_ready)
        self.viewer.layers.selection.active = layer
        return layer

    @property
    def live_layer(self):
        """The layer a parameter change updates (the one added last), or None."""
        layer = self._live_layer() if self._live_layer is not None else None
        return layer if layer is not None and layer in self.viewer.layers else None

    def _on_param(self, _value=None) -> None:
        layer = self.live_layer
        if not self.live.value or layer is None:
            return
        try:
            result = self._result()
            name = self.layer_name()
        except ValueError as exc:
            show_error(str(exc))
            return
        if not replace_result(layer, result, self._on_ready):
            return  # another shape or kind: "Add lazy layer" makes a new one
        layer.metadata = self._metadata(result)
        layer.scale, layer.translate = list(result.scale), list(result.translate)
        layer.name = name
        self.pipeline.refresh()
        self.status.value = f"updating {name}…"
        self._statistics_job(result)

    def _on_ready(self, layer, state: LiveState, error: BaseException | None) -> None:
        """A result layer's region landed (on the main thread, after its refresh)."""
        if error is not None:
            show_error(f"{layer.name}: {error}")
            self.status.value = f"error: {error}"
            return
        if not any(s.busy for s in live_states(layer)):
            self.status.value = ""

    def _on_gpu(self, value: bool) -> None:
        try:
            backend.set_backend("cupy" if value else "numpy")
        except RuntimeError as exc:
            show_error(str(exc))
            with self.gpu.changed.blocked():
                self.gpu.value = False
            return
        for layer in list(self.viewer.layers):  # the results on screen, on the new backend
            if choices.is_result(layer) and live_states(layer):
                recompute(layer, self._on_ready)

    # ------------------------------------------------------------------ background jobs
    def _statistics_job(self, result) -> jobs.Job | None:
        """An exact global statistic of an input larger than the sample is a job with a
        progress bar and Cancel, not a silent wait of the layer's first plane."""
        from ..ops import SAMPLE_VOXELS, statistics_known

        if (self.controls.job is not None or getattr(result, "statistics", None) != "whole"
                or math.prod(result.source.shape) <= SAMPLE_VOXELS
                or statistics_known(result)):
            return None
        return self._job_started(jobs.whole_statistics(result, on_finish=self._job_finished))

    def _job_started(self, job: jobs.Job) -> jobs.Job:
        return self.controls.started(job)

    def _job_finished(self, job: jobs.Job) -> None:
        self.controls.finished(job)

    def cancel_job(self, _=None) -> None:
        """Cancel the running job (labeling or export); what it made is dropped."""
        self.controls.cancel()

    def label_whole_volume(self, _=None) -> jobs.Job | None:
        """Label the input (a mask or a lazy result) across the whole volume, in the
        background; a Labels layer is added when done.

        Returns
        -------
        Job or None
            The running job, or None on bad input (told as a notification).
        """
        try:
            connectivity = (self.param_values().get("connectivity")
                            if self.operation.value == "label" else None)
            job = jobs.label_whole_volume(self.viewer, self.input.value, axes=self.axes.value,
                                          connectivity=connectivity,
                                          on_finish=self._job_finished)
        except ValueError as exc:
            show_error(str(exc))
            return None
        return self._job_started(job)

    def export_layer(self, layer, path: str, **options) -> jobs.Job | None:
        """Export ``layer`` (a lazy result included) to OME-Zarr in the background.

        Returns
        -------
        Job or None
            The running job, or None when the layer cannot be read (told as a
            notification).
        """
        try:
            job = jobs.export_layer(layer, path, on_finish=self._job_finished, **options)
        except ValueError as exc:
            show_error(str(exc))
            return None
        return self._job_started(job)

    def _export_dialog(self, _=None) -> None:
        layer = self.viewer.layers.selection.active or self.input.value
        if layer is None:
            show_error("no layer to export: select one")
            return
        path = ask_save_path(self.native, "Export to OME-Zarr", f"{layer.name}.ome.zarr",
                             "OME-Zarr (*.ome.zarr *.zarr)")
        if path:  # the dialog has asked before replacing an existing path
            self.export_layer(layer, path, overwrite=True)

"""The "Lazy processing" dock widget: registry operations as live lazy layers.

Everything here is generated from the operations registry: the operation list, one
parameter widget per ``Param`` (its range, default, unit and help), and the layer name.
Result layers hold a ``LiveArray``: napari's slicing never waits for a computation, the
plane on screen is computed in the background, and stale work is dropped.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    Slider,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_info
from superqt.utils import ensure_main_thread

from . import backend
from ._layer_data import PREVIEW_NOTE, result_layer_data, result_levels
from ._live import SYNC_VOXELS, LiveState, layer_levels, live_levels
from ._qt.live_layers import attach, live_states, watch
from .ops import REGISTRY, Cancelled, Param, apply, get_op
from .ops._sources import as_source

if TYPE_CHECKING:
    import napari

SYMBOLS = {"sigma": "σ", "low_sigma": "σ1", "high_sigma": "σ2"}
#: parameters the widget sets itself (global labeling has its own button)
HIDDEN = {("label", "scope")}
PIXEL_UNITS = {None, "", "pixel", "px"}


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if len(set(value)) == 1:
            return _fmt(value[0])
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def layer_axes_from_labels(axis_labels) -> str | None:
    """Axis letters from a layer's axis labels, when they are single distinct letters."""
    labels = [str(a).lower() for a in axis_labels]
    if labels and all(len(a) == 1 and a in "tczyx" for a in labels) and len(set(labels)) == len(labels):
        return "".join(labels)
    return None


def layer_source(layer):
    """The engine's input for a napari layer: its data (every level of a multiscale
    layer) with its axes, scale and units."""
    return data_source(list(layer.data) if layer.multiscale else layer.data,
                       axis_labels=layer.axis_labels, scale=layer.scale, units=layer.units,
                       name=layer.name, metadata=layer.metadata)


def data_source(data, *, axis_labels, scale, units, name, metadata):
    """The engine's input for layer data and its attributes (a layer, or the ``meta`` a
    napari writer receives). A lazy result's own layer gives back the result itself."""
    return as_source(
        data,
        layer_axes_from_labels(axis_labels or []),
        scale=None if scale is None else tuple(scale),
        units=None if not units else [str(u) for u in units],
        name=name or "",
        source_path=((metadata or {}).get("source") or {}).get("path"),
    )


def _physical_unit(source, spatial: str) -> str | None:
    units = {source.units[source.axes.index(a)] for a in spatial if a in source.axes}
    units.discard(None)
    return units.pop() if len(units) == 1 else None


class LazyProcessingWidget(Container):
    """Pick a layer and an operation, set its parameters, and add it as a live lazy layer."""

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
        self.params = Container(labels=True, layout="vertical")
        self.params.margins = (0, 0, 0, 0)
        self.live = CheckBox(text="Live update", value=True)
        ok, why = backend.gpu_available()
        self.gpu = CheckBox(text="Use GPU (CuPy)", value=backend.get_backend() == "cupy",
                            enabled=ok, tooltip=why if not ok else f"compute chunks on the GPU ({why})")
        self.add_button = PushButton(text="Add lazy layer")
        self.label_button = PushButton(text="Label whole volume")
        self.export_button = PushButton(text="Export to OME-Zarr…")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.extend([self.input, self.operation, self.axes, self.lengths, self.params, self.live,
                     self.gpu, self.add_button, self.label_button, self.export_button,
                     self.cancel_button, self.status])

        self._live_layer: weakref.ref | None = None
        self._job_cancel: threading.Event | None = None
        self._param_widgets: dict[str, Any] = {}

        self.input.changed.connect(self._on_input)
        self.operation.changed.connect(self._on_operation)
        self.axes.changed.connect(self._on_param)
        self.lengths.changed.connect(self._on_lengths)
        self.gpu.changed.connect(self._on_gpu)
        self.add_button.changed.connect(self.add_layer)
        self.label_button.changed.connect(self.label_whole_volume)
        self.export_button.changed.connect(self._export_dialog)
        self.cancel_button.changed.connect(self.cancel_job)
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        watch(viewer)  # file layers read in the background too, and removed layers stop
        viewer.layers.events.reordered.connect(self._refresh_layers)
        self._refresh_layers()
        self._on_input()

    # ------------------------------------------------------------------ choices
    def _layer_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, (Image, Labels)) and not getattr(layer, "rgb", False)]

    def _source_or_none(self):
        layer = self.input.value
        if layer is None:
            return None
        try:
            return layer_source(layer)
        except Exception:  # noqa: BLE001 - an unusual layer: the axes default to yx
            return None

    def _axes_choices(self, _widget=None) -> list:
        source = self._source_or_none()
        letters = source.axes if source is not None else "yx"
        spatial = "".join(a for a in letters if a in "zyx") or "yx"
        choices = []
        if len(spatial) >= 2:
            choices.append((f"2D per plane ({spatial[-2:]})", spatial[-2:]))
        if len(spatial) == 3:
            choices.append(("3D (zyx)", "zyx"))
        if len(spatial) == 1:
            choices.append((f"1D ({spatial})", spatial))
        if "zyx" not in [c[1] for c in choices]:  # offered, refused with a clear message
            choices.append(("3D (zyx)", "zyx"))
        return choices

    def _length_choices(self, _widget=None) -> list:
        source = self._source_or_none()
        choices = [("pixels", "pixel")]
        if source is not None:
            unit = _physical_unit(source, self.axes.value or "yx") if hasattr(self, "axes") else None
            if unit is not None:
                choices.insert(0, (unit, "physical"))
        return choices

    def _refresh_layers(self, event=None) -> None:
        current = self.input.value
        self.input.reset_choices()
        if current is None and self.input.choices:
            # a newly opened image is the natural input; results are chosen explicitly
            layers = [c for c in self.input.choices if c is not None]
            images = [c for c in layers if isinstance(c, Image) and not _is_result(c)]
            if layers:
                self.input.value = (images or layers)[0]

    def _on_input(self, _value=None) -> None:
        self._live_layer = None
        source = self._source_or_none()
        self.axes.reset_choices()
        if source is not None:
            spatial = "".join(a for a in source.axes if a in "zyx")
            chained = getattr(source, "spatial_axes", None)  # a result: follow its steps
            if chained in self.axes.choices:
                self.axes.value = chained
            else:
                self.axes.value = "zyx" if len(spatial) == 3 else self.axes.choices[0]
        self.lengths.reset_choices()
        # lengths in the layer's unit when it has one
        self.lengths.value = "physical" if "physical" in self.lengths.choices else "pixel"
        self._build_params()

    def _on_operation(self, _value=None) -> None:
        self._live_layer = None
        self._build_params()

    def _on_lengths(self, _value=None) -> None:
        self._build_params()
        self._on_param()

    # ------------------------------------------------------------------ parameters
    def _physical(self) -> bool:
        return self.lengths.value == "physical"

    def _length_scale(self) -> float:
        """Pixels to the layer's unit for defaults shown in physical units."""
        source = self._source_or_none()
        if source is None or not self._physical():
            return 1.0
        return min(source.scale[source.axes.index(a)] for a in (self.axes.value or "yx")
                   if a in source.axes)

    def _param_widget(self, op_name: str, p: Param):
        tip = (p.help + "; " if p.help else "") + p.range_text()
        unit = ""
        if p.unit == "length":
            unit = " (" + (self.lengths.current_choice if self._physical() else "px") + ")"
        label = p.name.replace("_", " ") + unit
        if p.choices:
            return ComboBox(label=label, choices=list(p.choices), value=p.default, tooltip=tip)
        if p.type is bool:
            return CheckBox(label=label, value=bool(p.default), tooltip=tip)
        if p.optional:
            return LineEdit(label=label, value="" if p.default is None else str(p.default),
                            tooltip=tip + " (empty: automatic)")
        lo = -1e9 if p.min is None else p.min
        hi = 1e9 if p.max is None else p.max
        if p.unit == "length" and self._physical():
            k = self._length_scale()
            value = float(f"{p.default * k:.3g}")
            return FloatSpinBox(label=label, value=value, min=0, max=hi * k * 10, step=k / 2,
                                tooltip=tip + " in pixels; converted with the voxel size")
        bounded = p.min is not None and p.max is not None
        if p.type is int:
            if bounded:  # a slider with an editable readout
                return Slider(label=label, value=int(p.default), min=int(lo), max=int(hi),
                              tooltip=tip, readout=True)
            return SpinBox(label=label, value=int(p.default), min=int(lo),
                           max=int(min(hi, 2**31 - 1)), tooltip=tip)
        step = 0.5 if p.unit == "length" else 0.1
        if bounded:
            return FloatSlider(label=label, value=float(p.default), min=lo, max=hi, step=step,
                               tooltip=tip, readout=True)
        return FloatSpinBox(label=label, value=float(p.default), min=lo, max=hi, step=step,
                            tooltip=tip)

    def _build_params(self) -> None:
        op = get_op(self.operation.value)
        self.params.clear()
        self._param_widgets = {}
        for p in op.params:
            if (op.name, p.name) in HIDDEN:
                continue
            widget = self._param_widget(op.name, p)
            widget.changed.connect(self._on_param)
            self._param_widgets[p.name] = widget
            self.params.append(widget)
        self.params.tooltip = op.description

    def param_values(self) -> dict[str, Any]:
        """The parameters as the widget shows them (``ValueError`` for unreadable text)."""
        values: dict[str, Any] = {}
        op = get_op(self.operation.value)
        for name, widget in self._param_widgets.items():
            value = widget.value
            if isinstance(widget, LineEdit):
                text = str(value).strip()
                if not text:
                    value = None
                else:
                    try:
                        value = op.param(name).type(text)
                    except ValueError:
                        raise ValueError(f"{op.name}: {name} must be a number or empty "
                                         f"(got {text!r})") from None
            values[name] = value
        return values

    def set_params(self, **values) -> None:
        """Set parameter widgets by name (a single live update follows)."""
        with self.params.changed.blocked():
            for name, value in values.items():
                widget = self._param_widgets[name]
                with widget.changed.blocked():
                    widget.value = value
        self._on_param()

    def _result(self):
        layer = self.input.value
        if layer is None:
            raise ValueError("no input layer: open an image or choose one in 'input'")
        op_name = self.operation.value
        return apply(op_name, layer_source(layer), axes=self.axes.value,
                     units="physical" if self._physical() else "pixel", **self.param_values())

    def layer_name(self) -> str:
        op = get_op(self.operation.value)
        values = self.param_values()
        parts = []
        for i, p in enumerate(op.params):
            if p.name not in values or (op.name, p.name) in HIDDEN:
                continue
            value = values[p.name]
            if i == 0 and p.type is not str or value != p.default:
                unit = " " + self.lengths.current_choice if p.unit == "length" and self._physical() else ""
                parts.append(f"{SYMBOLS.get(p.name, p.name)}={_fmt(value)}{unit}")
        base = self.input.value.name if self.input.value is not None else "?"
        return f"{base} · {op.name}" + (" " + " ".join(parts) if parts else "")

    # ------------------------------------------------------------------ layers
    def _metadata(self, result) -> dict[str, Any]:
        layer = self.input.value
        return {
            "pipeline": result.steps,
            "source": {"path": result.source_path, "layer": layer.name},
            "lazyproc": {"op": self.operation.value, "params": self.param_values(),
                         "axes": self.axes.value,
                         "units": "physical" if self._physical() else "pixel"},
            **({"levels": PREVIEW_NOTE} if len(result_levels(result)) > 1 else {}),
        }

    def add_layer(self, _=None):
        """Add the current operation as a new lazy layer; returns it (None on bad input)."""
        try:
            result = self._result()
            name = self.layer_name()
        except ValueError as exc:
            show_error(str(exc))
            return None
        layer_in = self.input.value
        limits = None
        if result.kind != "labels" and result.dtype == layer_in.dtype and isinstance(layer_in, Image):
            limits = tuple(layer_in.contrast_limits) if result.op.category != "threshold" else None
        try:
            _, kwargs, kind = result_layer_data(result, name, contrast_limits=limits)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable file: tell, don't crash
            show_error(f"{name}: {exc}")
            return None
        levels = live_levels(result_levels(result))
        for level in levels:  # a layer being built is sliced at napari's default position
            level.state.paused = True
        data = levels if len(levels) > 1 else levels[0]
        kwargs["translate"] = list(layer_in.translate)
        kwargs["metadata"] = self._metadata(result)
        if kind == "labels":
            kwargs.pop("contrast_limits", None)
            layer = self.viewer.add_labels(data, **kwargs)
        else:
            layer = self.viewer.add_image(data, **kwargs)
        attach(layer, self._on_ready, replace=True)  # never compute on napari's thread
        for level in levels:
            level.state.paused = False
        layer.refresh()  # now at the viewer's position
        self.viewer.layers.selection.active = layer
        self.input.value = layer_in  # adding a layer must not change the input
        self._live_layer = weakref.ref(layer)  # after the input is set: it resets the target
        return layer

    @property
    def live_layer(self):
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
        old = layer_levels(layer.data)
        old_result = old[0].result
        levels = live_levels(result_levels(result), previous=old)
        if (result.kind != getattr(old_result, "kind", None) or result.shape != old_result.shape
                or len(levels) != len(old)):
            return
        attach(layer, self._on_ready, states=[lvl.state for lvl in levels])
        for level in old:
            level.state.close()
        layer.metadata = self._metadata(result)
        layer.data = levels if len(levels) > 1 else levels[0]
        layer.name = name
        self.status.value = f"updating {name}…"

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
        for layer in list(self.viewer.layers):  # recompute the results on screen
            if not _is_result(layer) or not live_states(layer):
                continue
            old = layer_levels(layer.data)
            levels = live_levels([lvl.result for lvl in old], previous=old)
            attach(layer, self._on_ready, states=[lvl.state for lvl in levels])
            for level in old:
                level.state.close()
            layer.data = levels if len(levels) > 1 else levels[0]

    # ------------------------------------------------------------------ background jobs
    def _start_job(self, title: str, total: int):
        self._job_cancel = threading.Event()
        self.cancel_button.enabled = True
        self.label_button.enabled = self.export_button.enabled = False
        bar = napari_progress(total=total, desc=title)
        self.status.value = title + "…"
        return self._job_cancel, bar

    @ensure_main_thread
    def _job_progress(self, bar, done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        if done > bar.n:
            bar.update(done - bar.n)

    @ensure_main_thread
    def _finish_job(self, bar, message: str, error: BaseException | None = None) -> None:
        bar.close()
        self._job_cancel = None
        self.cancel_button.enabled = False
        self.label_button.enabled = self.export_button.enabled = True
        self.status.value = message
        if error is not None:
            show_error(message)
        else:
            show_info(message)

    def cancel_job(self, _=None) -> None:
        if self._job_cancel is not None:
            self._job_cancel.set()
            self.status.value = "cancelling…"

    def _run_in_background(self, title, total, work, done) -> threading.Thread:
        """``work(progress, cancel)`` in a thread; ``done(value)`` on the main thread."""
        cancel, bar = self._start_job(title, total)

        def target():
            try:
                value = work(lambda d, t: self._job_progress(bar, d, t), cancel)
            except Cancelled:
                self._finish_job(bar, f"{title}: cancelled; nothing was kept")
                return
            except Exception as exc:  # noqa: BLE001 - shown to the user, not a traceback dialog
                self._finish_job(bar, f"{title} failed: {exc}", exc)
                return
            self._finish_job(bar, f"{title}: done")
            _call_main(done, value)

        thread = threading.Thread(target=target, name="lazyproc-job", daemon=True)
        thread.start()
        self._job_thread = thread
        return thread

    def label_whole_volume(self, _=None):
        """Label the input (a mask or a lazy result) across the whole volume, in the
        background; adds a Labels layer when done. Returns the thread (None on bad input)."""
        layer_in = self.input.value
        try:
            if layer_in is None:
                raise ValueError("no input layer: choose a mask or a thresholded layer")
            values = {k: v for k, v in self.param_values().items()} if self.operation.value == "label" else {}
            job = apply("label", layer_source(layer_in), axes=self.axes.value, scope="global",
                        **{k: v for k, v in values.items() if k == "connectivity"})
        except ValueError as exc:
            show_error(str(exc))
            return None
        name = f"{layer_in.name} · label (whole volume)"
        n_blocks = int(np.prod(job.grid))

        def work(progress, cancel):
            return job.run(progress=progress, cancel=cancel)

        def done(labels):
            levels = live_levels(result_levels(labels), sync_voxels=SYNC_VOXELS)
            layer = self.viewer.add_labels(
                levels if len(levels) > 1 else levels[0], name=name, scale=list(layer_in.scale), translate=list(layer_in.translate),
                axis_labels=list(layer_in.axis_labels), units=[str(u) for u in layer_in.units],
                metadata={"pipeline": labels.steps, "n_labels": labels.n_labels,
                          "source": {"layer": layer_in.name, "path": labels.source_path}},
            )
            self.last_job_layer = layer

        return self._run_in_background("label whole volume", n_blocks, work, done)

    def _export_dialog(self, _=None) -> None:
        from qtpy.QtWidgets import QFileDialog

        layer = self.viewer.layers.selection.active or self.input.value
        if layer is None:
            show_error("no layer to export: select one")
            return
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Export to OME-Zarr", f"{layer.name}.ome.zarr", "OME-Zarr (*.ome.zarr *.zarr)"
        )
        if path:  # the dialog has asked before replacing an existing path
            self.export_layer(layer, path, overwrite=True)

    def export_layer(self, layer, path: str, **options):
        """Export ``layer`` (a lazy result included) to OME-Zarr in the background."""
        from .export import export

        try:
            source = layer_source(layer)
        except ValueError as exc:
            show_error(str(exc))
            return None

        def work(progress, cancel):
            return export(source, path, progress=progress, cancel=cancel, **options)

        return self._run_in_background(f"export {layer.name}", 1, work, lambda _: None)


@ensure_main_thread
def _call_main(fn, value) -> None:
    fn(value)


def _is_result(layer) -> bool:
    """Whether ``layer`` shows a lazy result (it records the pipeline that made it)."""
    return "pipeline" in (getattr(layer, "metadata", None) or {})

"""The parameter form: one magicgui widget per ``Param`` of a registry operation.

The registry says each parameter's type, default, range, unit and help; the form turns
that into widgets, so that adding an operation never touches the GUI:

- choices as a combo box, booleans as a check box;
- bounded numbers as sliders with an editable readout, others as spin boxes;
- lengths in pixels, or in the layer's physical unit (the default converted with the
  voxel size);
- optional values as a text field, empty meaning automatic;
- an axis (``quantity="axis"``, a projection's) as a combo box of the input's axes;
- a kernel (``quantity="kernel"``) as a text field: a nested list or a ``.npy`` path;
- a Python object (``quantity="python"``, generic_filter's function) as a disabled field
  saying it is set from Python only.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container, create_widget

from ..ops import Op, Param

#: parameters the dock widget sets itself (global labeling has its own button)
HIDDEN = {("label", "scope")}

#: the range of a spin box with no bound in the registry
_UNBOUNDED = 1e9
_INT_MAX = 2**31 - 1  # Qt's spin boxes hold a C int


def param_widget(p: Param, *, length_unit: str | None = None, length_scale: float = 1.0,
                 data_axes: str | None = None):
    """The widget for one parameter.

    Parameters
    ----------
    p : Param
        The parameter's spec.
    length_unit : str, optional
        The physical unit lengths are given in; None for pixels.
    length_scale : float
        The voxel size in ``length_unit`` (pixels to physical), for the default.
    data_axes : str, optional
        The input's axis letters: an axis parameter offers only those it has.

    Returns
    -------
    magicgui.widgets.bases.ValueWidget
        Named after the parameter; its tooltip gives the help and the range.
    """
    tip = (p.help + "; " if p.help else "") + p.range_text()
    label = p.name.replace("_", " ")
    if p.quantity == "length":
        label += f" ({length_unit or 'px'})"

    def make(value, annotation, widget_type=None, **options):
        return create_widget(value=value, annotation=annotation, name=p.name, label=label,
                             widget_type=widget_type, options={"tooltip": tip, **options})

    if p.choices:
        options = list(p.choices)
        if p.quantity == "axis" and data_axes:  # the axes the input has
            options = [c for c in options if c in data_axes] or options
        return make(p.default if p.default in options else options[0], p.type,
                    choices=options)
    if p.type is bool:
        return make(bool(p.default), bool)
    if p.quantity == "kernel":  # text: the engine reads it and names what is wrong
        return make("", str, "LineEdit", tooltip=tip + ": a nested list such as "
                    "[[0, 1, 0], [1, -4, 1], [0, 1, 0]] (one dimension per spatial axis), "
                    "or the path of a .npy file")
    if p.quantity == "python":  # a function is not something a form can hold
        widget = make("from Python only", str, "LineEdit",
                      tooltip=tip + " (lp.apply from Python; not in the widget)")
        widget.enabled = False
        return widget
    if p.optional:  # text, so that empty can mean automatic
        return make("" if p.default is None else str(p.default), str, "LineEdit",
                    tooltip=tip + " (empty: automatic)")
    lo = -_UNBOUNDED if p.min is None else p.min
    hi = _UNBOUNDED if p.max is None else p.max
    if p.quantity == "length" and length_unit is not None:
        k = length_scale
        # the engine converts with each axis's voxel size, so any positive length goes
        return make(float(f"{p.default * k:.3g}"), float, min=0, max=hi * k * 10, step=k / 2,
                    tooltip=tip + " in pixels; converted with the voxel size")
    bounded = p.min is not None and p.max is not None
    if p.type is int:
        if bounded:
            return make(int(p.default), int, "Slider", min=int(lo), max=int(hi), readout=True)
        return make(int(p.default), int, min=int(lo), max=int(min(hi, _INT_MAX)))
    step = 0.5 if p.quantity == "length" else 0.1
    if bounded:
        return make(float(p.default), float, "FloatSlider", min=lo, max=hi, step=step,
                    readout=True)
    return make(float(p.default), float, min=lo, max=hi, step=step)


class ParamForm(Container):
    """The parameters of one operation, as widgets named after them.

    ``form["sigma"]`` is the widget of ``sigma``; ``changed`` is emitted once per edit.
    """

    def __init__(self) -> None:
        super().__init__(labels=True, layout="vertical")
        self.margins = (0, 0, 0, 0)
        self.op: Op | None = None

    def build(self, op: Op, *, length_unit: str | None = None,
              length_scale: float = 1.0, data_axes: str | None = None) -> None:
        """Replace the widgets with those of ``op`` at their defaults (``changed`` is not
        emitted: the caller decides whether the result changed).

        Parameters
        ----------
        op : Op
            The operation.
        length_unit : str, optional
            The physical unit lengths are given in; None for pixels.
        length_scale : float
            The voxel size in ``length_unit``, to show defaults in that unit.
        data_axes : str, optional
            The input's axis letters, for axis parameters.
        """
        with self.changed.blocked():
            self.clear()
            self.op = op
            for p in op.params:
                # ``output=`` (scipy's dtype) is for scripts: the widget keeps the default
                if (op.name, p.name) not in HIDDEN and p.quantity != "dtype":
                    self.append(param_widget(p, length_unit=length_unit,
                                             length_scale=length_scale,
                                             data_axes=data_axes))
        self.tooltip = op.description

    def values(self) -> dict[str, Any]:
        """The parameters as shown, by name.

        Raises
        ------
        ValueError
            For an optional value's text that is not a number; the message names the
            parameter.
        """
        values: dict[str, Any] = {}
        for widget in self:
            value = widget.value
            p = self.op.param(widget.name)
            if p.quantity in ("kernel", "python"):  # the engine checks it, naming it
                text = str(value).strip() if p.quantity == "kernel" else ""
                values[p.name] = text or None
                continue
            if p.optional:
                text = str(value).strip()
                try:
                    value = p.type(text) if text else None
                except ValueError:
                    raise ValueError(f"{self.op.name}: {p.name} must be a number or empty "
                                     f"(got {text!r})") from None
            values[p.name] = value
        return values

    def set_values(self, **values: Any) -> None:
        """Set parameters by name; ``changed`` is emitted once, after all are set.

        Raises
        ------
        KeyError
            For a name that is not a shown parameter of the operation.
        """
        names = {widget.name for widget in self}
        unknown = sorted(set(values) - names)
        if unknown:
            raise KeyError(f"{self.op.name} has no parameter {', '.join(unknown)} in the form "
                           f"(it has {', '.join(sorted(names))})")
        with self.changed.blocked():
            for name, value in values.items():
                self[name].value = value
        self.changed.emit(self)

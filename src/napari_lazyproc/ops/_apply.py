"""``apply`` and ``Pipeline``: lazy results from a registry name and parameters."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..io import SPATIAL_AXES, convert_unit, positional_axes
from ._scipy_call import gradient_subset, second_images
from .engine._as_source import as_source
from .engine._lazy import LazyResult
from .engine._precision import check_precision, get_precision
from .engine._registry import get_op
from .filters._label import label_structure
from .jobs._label_global import GlobalLabels
from .jobs._segment import segment


def _axis_indices(source, axes, op_name: str) -> list[int]:
    """scipy's integer axes (an int or a sequence of them, negative from the end) as
    indices, in the order given."""
    n = len(source.shape)
    items = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    out = []
    for ax in items:
        if isinstance(ax, (bool, np.bool_)) or not isinstance(ax, (int, np.integer)):
            raise ValueError(f"{op_name}: axes must be axis letters such as 'yx', or "
                             f"integers as in scipy.ndimage (got {axes!r})")
        if not -n <= ax < n:
            raise ValueError(f"{op_name}: axis {ax} is out of range for {n}-D data (axes "
                             f"{source.axes!r})")
        out.append(int(ax) % n)
    return out


def _axis_letters(source, axes, op_name: str) -> str:
    """scipy's integer axes as the data's axis letters, in the order given."""
    return "".join(source.axes[a] for a in _axis_indices(source, axes, op_name))


def _positional(data, source, axes, data_axes, op_name: str):
    """A plain array (its letters guessed from its number of dimensions) whose integer
    ``axes`` name a guessed t or c: scipy's integers make any axis spatial, so its
    letters are those that make them so (``(0, 1, 2, 3)`` of a 4-D array: "wzyx")."""
    if (data_axes is not None or axes is None or isinstance(axes, str)
            or not getattr(source, "guessed_axes", False)):
        return source
    letters = positional_axes(source.shape, _axis_indices(source, axes, op_name))
    if letters == source.axes:
        return source
    relettered = as_source(data, letters)
    if relettered is source:  # a source of its own keeps its letters
        return source
    relettered.positional = True  # its steps say axes by index, as they were given
    return relettered


def _spatial_axes(source, axes, op_name: str) -> tuple[int, ...]:
    letters = source.axes
    if axes is not None and not isinstance(axes, str):
        axes = _axis_letters(source, axes, op_name)
    if axes is None:
        axes = "".join(a for a in letters if a in SPATIAL_AXES)
        if not axes and letters:  # a 0-D input has no axes: scipy runs it as it is
            raise ValueError(f"{op_name}: the data has no spatial axes (axes {letters!r}); "
                             f"pass axes=")
    if set(axes) & set("tc"):
        raise ValueError(f"{op_name}: axes {axes!r} include time or channel; operations "
                         f"filter only over spatial axes (such as 'yx', 'zyx', or 'wzyx' "
                         f"for four: any letter but t and c; a plain array's axes are "
                         f"named with data_axes=)")
    missing = [a for a in axes if a not in letters]
    if missing or len(set(axes)) != len(axes):
        raise ValueError(
            f"{op_name} over axes {axes!r} needs a {len(axes)}-D image with those axes; "
            f"this one has {len(letters)} dimensions with axes {letters!r}"
        )
    return tuple(sorted(letters.index(a) for a in axes))


def _in_array_order(op, params: dict[str, Any], source, axes, spatial) -> dict[str, Any]:
    """Per-axis values in the array's order, as the engine holds them.

    With scipy's integer ``axes`` out of the array's order, per-axis values follow
    ``axes`` as in scipy (``sigma=(1, 2), axes=(2, 0)``: 1 along axis 2). Letters name a
    set of axes: their values are in the array's order already.
    """
    if axes is None or isinstance(axes, str):
        return params
    given = [source.axes.index(a) for a in _axis_letters(source, axes, op.name)]
    if given == list(spatial):
        return params
    out = dict(params)
    for p in op.params:
        value = out.get(p.name)
        if p.per_axis and isinstance(value, Sequence) and not isinstance(value, str) \
                and len(value) == len(given):
            out[p.name] = [value[given.index(a)] for a in spatial]
    return out


def _checked_dtypes(op, dtype, validated, n: int):
    """Complex data and ``output=`` as scipy takes them: complex input only where scipy
    filters it (its linear filters), a complex ``output`` only for a complex result, and
    a real ``output`` of a complex result promoted to complex (scipy warns so too)."""
    dtype = np.dtype(dtype)
    values = validated.as_dict()
    takes = op.complex_input(values) if callable(op.complex_input) else op.complex_input
    if dtype.kind == "c" and takes is False:
        raise ValueError(f"{op.name}: the input is complex ({dtype}); {op.name} with these "
                         f"parameters takes real data only (scipy.ndimage has no complex "
                         f"version of it)")
    if isinstance(values.get("cval"), complex) and dtype.kind != "c":
        raise ValueError(f"{op.name}: cval {values['cval']} is complex and the input is "
                         f"real ({dtype}); scipy.ndimage refuses it too")
    out = values.get("output")
    if out is None:
        return validated
    result = np.dtype(op.own_dtype(dtype, values))
    if np.dtype(out).kind == "c" and result.kind != "c":
        raise ValueError(f"{op.name}: output {out} is complex and the result of this real "
                         f"input is not ({result}); scipy.ndimage refuses it too")
    promoted = np.dtype(op.dtype(dtype, values))
    if promoted != np.dtype(out):
        warnings.warn(f"{op.name}: promoting output dtype {out} to {promoted} (the result "
                      f"is complex)", UserWarning, stacklevel=3)
        return op.validate({**values, "output": promoted.name}, n)
    return validated


def _named_frame(op, source, axes: str | None, params: dict[str, Any]) -> tuple[int, ...]:
    """The frame of an operation whose parameters name its axes (a projection's
    ``axis``): any axes of the data, t and c included; ``axes``, when given, must agree
    (a pipeline saved with its provenance repeats them)."""
    letters = op.geometry.frame(op.validate(params, 1).as_dict())
    missing = [a for a in letters if a not in source.axes]
    if missing:
        raise ValueError(f"{op.name}: the data has no axis {', '.join(map(repr, missing))} "
                         f"(its axes are {source.axes!r})")
    if axes is not None and axes != letters:
        raise ValueError(f"{op.name} runs along the axes its parameters name ({letters!r}); "
                         f"axes={axes!r} does not apply")
    return tuple(sorted(source.axes.index(a) for a in letters))


def _voxel_sizes(source, spatial) -> list[float]:
    """Each spatial axis's voxel size, in the unit of the last one (x) when the file gives
    the axes different units (z in mm, y and x in µm)."""
    sizes = [source.scale[a] for a in spatial]
    units = [source.units[a] for a in spatial]
    if None in units or len(set(units)) == 1:
        return sizes
    try:
        return [convert_unit(s, u, units[-1]) for s, u in zip(sizes, units, strict=True)]
    except Exception as exc:  # noqa: BLE001 - pint's errors name the units
        raise ValueError(f"units='physical': the spatial axes have units {units} that do "
                         f"not convert to one another ({exc}); give lengths in pixels") from exc


def _to_pixels(op, values: dict[str, Any], source, spatial, units: str) -> dict[str, Any]:
    """Lengths given in physical units become pixels with the voxel size of each axis
    (in the unit of the x axis, when the axes' units differ)."""
    if units == "pixel":
        return values
    if units != "physical":
        raise ValueError(f"units must be 'pixel' or 'physical' (got {units!r})")
    sizes = _voxel_sizes(source, spatial)
    out = dict(values)
    for p in op.params:
        if p.quantity != "length" or out.get(p.name) is None:
            continue
        value = out[p.name]
        per_axis = (
            value if isinstance(value, Sequence) and not isinstance(value, str)
            else [value] * len(spatial)
        )
        if len(per_axis) != len(spatial):
            continue  # validation names the mismatch
        converted = [v / size for v, size in zip(per_axis, sizes, strict=True)]
        out[p.name] = [max(1, round(c)) for c in converted] if p.type is int else converted
    return out


def apply(name: str, data, *, axes: str | Sequence[int] | int | None = None,
          units: str = "pixel",
          data_axes: str | None = None, precision: str | None = None, **params):
    """Apply operation ``name`` lazily.

    Parameters
    ----------
    name
        A registered operation (see ``list_ops()``).
    data
        A ``LazyImage``, a lazy result, napari layer data, a dask, zarr or numpy array.
    axes
        The spatial axes to filter over, such as ``"yx"`` (each plane) or ``"zyx"``
        (each volume), any letters but t and c (``"wzyx"``: four), or scipy's integers
        (``(0, 2)``, ``-1``; per-axis values then follow their order, as in scipy; on a
        plain array any axes, a guessed t too: ``(0, 1, 2, 3)`` of a 4-D array is
        ``"wzyx"``). Defaults to the z, y and x axes of the data (none for a 0-D input).
        Never a named T or C.
    units
        ``"pixel"`` (default) or ``"physical"``: lengths (``sigma``, ``size``,
        ``radius``...) in the image's units, converted per axis with its voxel size.
    data_axes
        Axis letters of a plain array (default: guessed from its number of dimensions).
    precision
        ``"fast"`` (fast kernels: floats within 1e-6 of scipy relative to the largest
        value, integers within one grey level, order statistics, thresholds and labels
        exact) or ``"exact"`` (bitwise scipy). Default: ``get_precision()``, "fast"
        unless ``set_precision`` says otherwise.
    **params
        The operation's parameters, named as in scipy.ndimage.

    Returns
    -------
    LazyResult
        Nothing is computed until a region is read. ``label`` with ``scope="global"``
        returns a ``GlobalLabels`` job to ``run()``.

    Raises
    ------
    ValueError
        A bad parameter, naming it and its allowed range; or axes the data lacks.
    """
    op = get_op(name)
    source = _positional(data, as_source(data, data_axes), axes, data_axes, name)
    images = second_images(op, source, params)
    if op.geometry is not None and op.geometry.frame is not None:
        spatial = _named_frame(op, source, axes, params)
    else:
        spatial = _spatial_axes(source, axes, name)
    if axes is not None and not isinstance(axes, str):
        given = _axis_letters(source, axes, name)
        spatial, params, axes = gradient_subset(op, source, given, axes, spatial, params)
    if not spatial and op.geometry is not None:
        raise ValueError(f"{name}: a 0-D input has no axes to map (scipy.ndimage refuses "
                         f"it too)")
    params = _in_array_order(op, params, source, axes, spatial)
    params = _to_pixels(op, params, source, spatial, units)
    validated = _checked_dtypes(op, source.dtype, op.validate(params, len(spatial)),
                                len(spatial))
    letters = "".join(source.axes[a] for a in spatial)
    if op.check is not None:
        op.check(validated.as_dict(), letters)
    if op.name == "label" and validated["scope"] == "global":
        steps = [*getattr(source, "steps", []),
                 {"op": "label", **validated.as_dict(), "axes": letters}]
        return GlobalLabels(source, spatial, validated["connectivity"], steps,
                            label_structure(validated["structure"]),
                            validated["wrap_axes"] or "", validated["output"])
    precision = check_precision(get_precision() if precision is None else precision)
    return LazyResult(op, validated, source, spatial, precision=precision,
                      passes=_pass_order(op, source, axes, spatial), images=images)



def _pass_order(op, source, axes, spatial) -> tuple[int, ...] | None:
    """The order of a separable operation's 1-D passes, of a term-summing one's terms, or
    of a batched one's window axes: ``axes``' as given (scipy runs them so, and the
    rounding follows), None for the array's."""
    if axes is None or (op.separable is None and not op.ordered_terms
                        and not (op.batched and op.geometry is None)):
        return None
    letters = axes if isinstance(axes, str) else _axis_letters(source, axes, op.name)
    given = [source.axes.index(a) for a in letters]
    return None if given == list(spatial) else tuple(spatial.index(a) for a in given)


def label_global(data, *, connectivity: int = 1, axes: str | None = None,
                 data_axes: str | None = None) -> GlobalLabels:
    """Connected components across the whole volume, as one explicit job.

    Unlike ``apply("label", ...)``, which labels each frame when it is shown, labels here
    are consistent across chunks; nothing is computed until ``run()``.

    Parameters
    ----------
    data
        A mask (nonzero is foreground): a lazy result, an image, or an array.
    connectivity
        1: faces; up to the number of spatial axes: edges and corners too.
    axes, data_axes
        As for ``apply``.

    Returns
    -------
    GlobalLabels
        ``run(progress=..., cancel=...)`` labels the volume and returns it; its ``levels``
        are then a label pyramid for display. The same as
        ``apply("label", data, scope="global", ...)``.
    """
    return apply("label", data, scope="global", connectivity=connectivity, axes=axes,
                 data_axes=data_axes)


class Pipeline:
    """Steps applied in order, each ``{"op": name, **params}``; JSON round-trippable."""

    def __init__(self, steps: Iterable[dict[str, Any]]) -> None:
        self.steps = []
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or "op" not in step:
                raise ValueError(
                    f"pipeline step {i} must be a mapping with an 'op' (got {step!r})"
                )
            if step["op"] != "segment":  # a job's step (lp.segment), not an operation
                get_op(step["op"])  # unknown names fail now, not on first use
            self.steps.append(dict(step))

    def __call__(self, data):
        result = data
        for step in self.steps:
            # "statistics" records how a step's whole-image values were computed (it
            # follows from its precision): provenance, not a parameter
            params = {k: v for k, v in step.items() if k not in ("op", "statistics")}
            if step["op"] == "segment":  # the stitched labels, run when exported
                result = segment(result, **{k: v for k, v in params.items()
                                            if k != "preview"}).labels
            else:
                result = apply(step["op"], result, **params)
        return result

    def to_json(self) -> str:
        """The steps as JSON (kernels as lists); a step holding a Python function (a
        ``generic_filter``) raises a ``ValueError`` naming it, as JSON cannot hold it."""
        from .filters._generic import pipeline_json

        return pipeline_json(self.steps)

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        try:
            steps = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"pipeline is not valid JSON: {exc}") from exc
        if not isinstance(steps, list):
            raise ValueError("pipeline JSON must be a list of steps")
        return cls(steps)

    def __eq__(self, other) -> bool:
        return isinstance(other, Pipeline) and other.steps == self.steps

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

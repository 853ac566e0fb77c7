"""Typed functions, one per registered operation: ``ops.gaussian(img, sigma=2.0)``.

Each is built from its declaration in the registry, so it can never disagree with it: a
real signature (the input positional, every parameter keyword-only with its default),
the annotations of ``ANNOTATIONS`` and a numpydoc docstring listing the parameters with
their ranges and units. Each calls ``apply(name, data, ...)``, the one path. Editors read
the same signatures from the checked-in stub ``ops/__init__.pyi`` (``_stub.py`` writes
it; tests/test_typed_ops.py fails when it and the registry disagree).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable

from ._apply import apply
from .engine._params import Param
from .engine._registry import REGISTRY, Op

#: the annotation of each parameter type (``Param.type``'s name); the stub imports them
ANNOTATIONS = {
    "bool": "bool",
    "int": "int",
    "float": "float",
    "str": "str",
    "kernel": "ArrayLike | str",
    "footprint": "Literal['ball', 'box'] | ArrayLike | str",
    "matrix": "ArrayLike",
    "shape": "Sequence[int]",
    "lengths": "Sequence[float]",
    "shift_rows": "pd.DataFrame | str | os.PathLike[str] | Sequence[Sequence[float]]",
    "python_function": "Callable[..., float]",
    "window_function": "Callable[..., ArrayLike]",
    "memory_bytes": "float",
    "line_function": "Callable[..., None]",
    "arguments": "Sequence[Any]",
    "keywords": "Mapping[str, Any]",
}
#: keywords every operation takes (``apply``'s), after its own parameters
COMMON = (
    ("axes", "str | Sequence[int] | int | None", None,
     'the spatial axes to filter over, such as "yx" (each plane), "zyx" (each '
     'volume) or "wzyx" (any letters but t and c), or scipy\'s integers; default: the '
     "z, y and x axes of the data"),
    ("units", 'Literal["pixel", "physical"]', "pixel",
     '"physical": lengths in the image\'s units, converted per axis with its voxel size'),
    ("data_axes", "str | None", None,
     "axis letters of a plain array (default: guessed from its number of dimensions)"),
    ("precision", 'Literal["fast", "exact"] | None', None,
     '"exact": bitwise scipy; "fast": fast kernels within 1e-6 of scipy (relative to the '
     "largest value), one grey level for integers; default: ``get_precision()``"),
)
COMMON_DOC_TYPES = {"axes": "str or sequence of int, optional", "units": "{'pixel', 'physical'}",
                    "data_axes": "str, optional", "precision": "{'fast', 'exact'}, optional"}
DATA = "LazyImage | LazyResult | ArrayLike"


def annotation(p: Param) -> str:
    """The type of a parameter as a string annotation (``Literal`` for choices)."""
    name = getattr(p.type, "__name__", "")
    if name not in ANNOTATIONS:
        raise KeyError(f"parameter {p.name!r} has type {name!r}, which ops._typed."
                       f"ANNOTATIONS does not know: add its annotation there")
    text = ANNOTATIONS[name]
    if p.quantity == "dtype":
        text = "DTypeLike"
    elif p.choices and all(isinstance(c, str) for c in p.choices):
        text = "Literal[" + ", ".join(repr(c) for c in p.choices) + "]"
    if p.per_axis:
        text = f"{text} | Sequence[{text}]"
    if p.optional or p.default is None:
        text = f"{text} | None"
    return text


def returns(op: Op) -> str:
    return "LazyResult | GlobalLabels" if op.name == "label" else "LazyResult"


def signature(op: Op) -> inspect.Signature:
    data = inspect.Parameter("data", inspect.Parameter.POSITIONAL_ONLY, annotation=DATA)
    own = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default,
                             annotation=annotation(p)) for p in op.params]
    own += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=f"{DATA} | None") for name in op.images]
    common = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                annotation=ann) for name, ann, default, _ in COMMON]
    return inspect.Signature([data, *own, *common], return_annotation=returns(op))


#: numpydoc's words for the parameter types
DOC_TYPES = {"ArrayLike | str": "array_like or str (a .npy path)",
             "Sequence[int]": "sequence of int", "Sequence[float]": "sequence of float",
             "Callable[..., float]": "callable", "Sequence[Any]": "sequence",
             "Mapping[str, Any]": "mapping", "ArrayLike": "array_like"}


def doc_type(p: Param) -> str:
    """A parameter's type as numpydoc writes it: ``{'a', 'b'}``, ``float or sequence of
    float``, ``..., optional``."""
    if p.quantity == "dtype":
        text = "dtype"
    elif p.choices and all(isinstance(c, str) for c in p.choices):
        text = "{" + ", ".join(repr(c) for c in p.choices) + "}"
    else:
        base = ANNOTATIONS[getattr(p.type, "__name__", "")]
        text = DOC_TYPES.get(base, base.replace(" | ", " or "))
    if p.per_axis:
        text = f"{text} or sequence of {text}"
    return text + (", optional" if p.optional or p.default is None else "")


def _described(p: Param) -> list[str]:
    text = p.help[:1].upper() + p.help[1:] if p.help else p.name.replace("_", " ")
    words = [text.rstrip(".") + "."]
    if p.quantity == "length":
        words.append("In pixels, or in the image's units with ``units=\"physical\"``.")
    elif p.quantity == "intensity":
        words.append("In grey levels of the input.")
    if p.per_axis:
        words.append("One value, or one per spatial axis.")
    if not p.choices and (p.min is not None or p.max is not None):
        words.append(f"Range: {p.range_text()}.")
    return words


def docstring(op: Op) -> str:
    """numpydoc for ``op``: its description, parameters (type, default, help, range and
    unit), the common keywords, and what it returns."""
    summary = (op.description or op.name).rstrip(".") + "."
    lines = [summary[:1].upper() + summary[1:], "",
             f"Lazy: nothing is computed until a region is read. The same as "
             f"``apply({op.name!r}, data, ...)``.", "",
             "Parameters", "----------", "data : LazyImage, LazyResult or array_like",
             "    The input: an image, a lazy result, napari layer data, a dask, zarr or "
             "numpy array."]
    for p in op.params:
        lines.append(f"{p.name} : {doc_type(p)}")
        lines += textwrap.wrap(" ".join([*_described(p), f"Default: {p.default!r}."]),
                               84, initial_indent="    ", subsequent_indent="    ")
    for name in op.images:
        lines.append(f"{name} : LazyImage, LazyResult or array_like, optional")
        lines += textwrap.wrap("A second image of the input's shape, read over the same "
                               "region (scipy's mask: where it is zero, the input is "
                               "kept). Default: None.", 84, initial_indent="    ",
                               subsequent_indent="    ")
    for name, _, default, help_ in COMMON:
        lines.append(f"{name} : {COMMON_DOC_TYPES[name]}")
        lines += textwrap.wrap(help_[:1].upper() + help_[1:] + f". Default: {default!r}.",
                               84, initial_indent="    ", subsequent_indent="    ")
    lines += ["", "Returns", "-------", returns(op),
              "    Lazy: ``np.asarray`` of a region computes that region only."]
    if op.name == "label":
        lines.append("    ``scope=\"global\"`` gives a ``GlobalLabels`` job to ``run()``.")
    lines += ["", "Raises", "------", "ValueError",
              "    A bad parameter, naming it and its allowed range; or axes the data lacks."]
    return "\n".join(lines) + "\n"


def typed_function(op: Op) -> Callable:
    """``op`` as a function with a real signature, calling ``apply``."""
    name = op.name

    def function(data, /, **params):
        return apply(name, data, **params)

    function.__name__ = function.__qualname__ = name
    function.__module__ = "napari_lazyproc.ops"
    function.__doc__ = docstring(op)
    function.__signature__ = signature(op)
    return function


def typed_functions() -> dict[str, Callable]:
    """One typed function per registered operation, by name."""
    return {name: typed_function(op) for name, op in sorted(REGISTRY.items())}

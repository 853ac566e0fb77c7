"""A lazy layer's pipeline as people read it, as a file, and as a Python script.

What the Process widget's *Pipeline* view shows, saves (the JSON ``napari-lazyproc
process --pipeline`` reads) and copies (a script that reproduces the layer from its file).
No napari, Qt or magicgui import here: the text is plain data, tested headless too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .ops import REGISTRY, Pipeline

#: step keys that are not the operation's parameters: shown apart, or provenance only
_NOT_PARAMS = ("op", "axes", "precision", "statistics")


def _same(value: Any, default: Any) -> bool:
    """Whether a validated value (per axis: ``[1.0, 1.0]``) is its op's default (``1.0``)."""
    if isinstance(value, (list, tuple)) and not isinstance(default, (list, tuple)):
        return len(value) > 0 and all(v == default for v in value)
    return value == default


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if value and len(set(map(repr, value))) == 1 and not isinstance(value[0], list):
            return _text(value[0])
        return "(" + ", ".join(_text(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def step_parameters(step: Mapping[str, Any]) -> str:
    """A step's parameters as one line: those that differ from the operation's defaults,
    then its spatial axes and precision (``sigma=2 · axes yx · fast``)."""
    op = REGISTRY.get(step.get("op"))
    defaults = {p.name: p.default for p in op.params} if op is not None else {}
    parts = [f"{k}={_text(v)}" for k, v in step.items()
             if k not in _NOT_PARAMS and not (k in defaults and _same(v, defaults[k]))
             and not (v is None and k not in defaults)]
    if step.get("axes"):
        parts.append(f"axes {step['axes']}")
    if step.get("precision"):
        parts.append(str(step["precision"]))
    return " · ".join(parts)


def pipeline_rows(steps: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(operation, parameters)`` per step, in order: the Pipeline view's table."""
    return [(str(s.get("op")), step_parameters(s)) for s in steps]


def saved_pipeline(steps: Sequence[Mapping[str, Any]]) -> str:
    """The pipeline file's text (indented JSON ``Pipeline.from_json`` and ``process
    --pipeline`` read).

    Raises
    ------
    ValueError
        A step holding a Python function (a ``generic_filter``), naming it.
    """
    return json.dumps(json.loads(Pipeline(steps).to_json()), indent=2) + "\n"


def python_script(steps: Sequence[Mapping[str, Any]], path: str, *, name: str = "",
                  options: Mapping[str, Any] | None = None,
                  channel: int | None = None) -> str:
    """A short script that reproduces a layer: open its file, apply the steps.

    Parameters
    ----------
    steps : sequence of mapping
        The layer's steps, from its file to it (``result.steps``).
    path : str
        The file the chain starts from.
    name : str
        The layer's name, for the script's first line.
    options : mapping, optional
        ``open_image``'s options (``dataset`` of an HDF5 file, ``series`` of a TIFF).
    channel : int, optional
        The channel the chain starts from, when the file's layer was one channel of it.

    Returns
    -------
    str
        Python source; ``result`` is the lazy result, as the layer's level 0.

    Raises
    ------
    ValueError
        A step holding a Python function, which the script cannot write out.
    """
    # one step a line, as Python literals (None, True), in the order the steps run
    literal = "".join(f"    {step!r},\n" for step in json.loads(Pipeline(steps).to_json()))
    given = "".join(f", {k}={v!r}" for k, v in (options or {}).items())
    opened = f"lp.open_image({str(path)!r}{given})"
    if channel is not None:  # the layer was one channel of the file, without its c axis
        opened = f"lp.ops.image_source({opened}, channel={int(channel)})"
    title = f" {name!r}" if name else ""
    last = steps[-1] if steps else {}
    run = ("result.run()  # the last step labels the whole volume: a job, run now\n"
           if last.get("op") == "label" and last.get("scope") == "global" else "")
    return (
        f'"""Reproduces the napari layer{title} from its file (napari-lazyproc)."""\n'
        "import napari_lazyproc as lp\n\n"
        f"pipeline = lp.Pipeline([\n{literal}])\n"
        f"image = {opened}\n"
        "result = pipeline(image)  # lazy: nothing is computed until read\n"
        f"{run}"
        "# values = numpy.asarray(result)              # the whole array, in memory\n"
        '# lp.export(result, "result.ome.zarr")         # or chunk by chunk to a file\n'
    )


def open_options(source: Mapping[str, Any]) -> dict[str, Any]:
    """What ``open_image`` needs, beyond the path, to open what a file's layer showed (its
    ``metadata["source"]``): an HDF5 file's dataset, a TIFF's series other than the first."""
    options: dict[str, Any] = {}
    if isinstance(source.get("dataset"), str):
        options["dataset"] = source["dataset"]
    if isinstance(source.get("series"), int) and source["series"]:
        options["series"] = source["series"]
    return options

"""A batch's pipeline from whatever names it: a ``Pipeline``, its steps, or its JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..ops import Pipeline


def load_pipeline(pipeline) -> Pipeline:
    """``pipeline`` as a ``Pipeline``.

    Parameters
    ----------
    pipeline
        A ``Pipeline``; a list of steps (``{"op": name, **params}``); one step; a dict
        with ``"steps"``; the path of the JSON ``process --pipeline`` reads
        (``Pipeline.to_json``); or None (no steps: the datasets are converted as read).

    Raises
    ------
    ValueError
        Unreadable JSON, an unknown operation, or a step that is not a mapping.
    """
    if pipeline is None:
        return Pipeline([])
    if isinstance(pipeline, Pipeline):
        return pipeline
    if isinstance(pipeline, str | os.PathLike):
        path = Path(pipeline)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read pipeline {path}: {exc.strerror or exc}") from exc
        try:
            pipeline = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"pipeline {path} is not valid JSON: {exc}") from exc
    if isinstance(pipeline, dict):
        pipeline = pipeline["steps"] if "steps" in pipeline else [pipeline]
    if not isinstance(pipeline, list | tuple):
        raise ValueError(f"a pipeline is a list of steps (got {type(pipeline).__name__})")
    return Pipeline(pipeline)

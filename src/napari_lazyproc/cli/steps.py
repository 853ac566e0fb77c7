"""The steps of ``process``: ``--step op:k=v`` and ``--pipeline FILE`` as one pipeline."""

from __future__ import annotations

import argparse
import json

from .errors import BadInput


def _parse_value(text: str):
    """A step value: JSON (numbers, true, lists), a comma list of numbers, or a string."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "," in text:
        parts = text.split(",")
        try:
            return [json.loads(p) for p in parts]
        except ValueError:
            pass
    return text


def parse_step(text: str) -> dict:
    """``gaussian:sigma=2:mode=nearest`` -> ``{"op": "gaussian", "sigma": 2, "mode": "nearest"}``.

    Parameters are separated by ``:`` or ``;`` (commas belong to per-axis lists:
    ``gaussian:sigma=1,2,2``)."""
    name, _, rest = text.partition(":")
    step: dict = {"op": name.strip()}
    for item in filter(None, (p.strip() for p in rest.replace(";", ":").split(":"))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"step {text!r}: {item!r} is not name=value")
        step[key.strip()] = _parse_value(value.strip())
    return step


def pipeline_of(args: argparse.Namespace):
    """The ``Pipeline`` of ``--pipeline`` then each ``--step``, checked (unknown
    operations, bad parameters and unreadable files raise ``BadInput``)."""
    from ..batch import load_pipeline
    from ..ops import Pipeline

    try:
        steps = list(load_pipeline(args.pipeline).steps) if args.pipeline else []
        steps += [parse_step(s) for s in args.step or []]
        return Pipeline(steps)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc

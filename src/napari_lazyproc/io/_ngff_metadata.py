"""An OME-NGFF multiscale's axes and coordinate transformations, checked against the
spec (0.4, 0.5): a file that breaks a MUST is refused with the spec's reason rather than
read with guessed axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._axes import guess_axes, normalize_unit

#: the order of axis types the spec asks: time, then channel or custom, then space
_ORDER = {"time": 0, "space": 2}


class NgffError(ValueError):
    """Metadata that breaks the OME-NGFF spec; the message gives the spec's reason."""


def axes_and_units(ms: dict[str, Any], ndim: int) -> tuple[str, list[str | None]]:
    """One letter per axis and its unit, after the spec's checks on ``axes``."""
    axes = ms.get("axes")
    if not axes:  # 0.1 / 0.2: always 5-D tczyx
        return guess_axes((0,) * ndim) if ndim != 5 else "tczyx", [None] * ndim
    if not isinstance(axes, list):
        raise NgffError("'axes' must be a list (OME-NGFF)")
    if isinstance(axes[0], str):  # 0.3: a list of names
        names, types, units = list(axes), [None] * len(axes), [None] * len(axes)
    else:
        for i, a in enumerate(axes):
            if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
                raise NgffError(f"axis {i} has no name (OME-NGFF: each axis MUST have a "
                                f"'name')")
        names = [a["name"] for a in axes]
        types = [a.get("type") for a in axes]
        units = [normalize_unit(a.get("unit")) for a in axes]
    _check_axes(names, types)
    letters = "".join(n.lower()[0] for n in names)
    if len(set(letters)) != len(letters):
        clash = [n for n in names if sum(m.lower()[0] == n.lower()[0] for m in names) > 1]
        raise NgffError(f"axes {', '.join(map(repr, clash))} are one axis letter here "
                        f"(names must differ in their first letter, case aside)")
    return letters, units


def _check_axes(names: list[str], types: list[Any]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NgffError(f"axis name {repeated[0]!r} repeats (OME-NGFF: axis names MUST be "
                        f"unique)")
    if not 2 <= len(names) <= 5:
        raise NgffError(f"{len(names)} axes (OME-NGFF: 'axes' MUST hold 2 to 5 entries)")
    if all(t is None for t in types):
        return
    space = sum(t == "space" for t in types)
    if space not in (2, 3):
        raise NgffError(f"{space} axes of type 'space' ({', '.join(names)}) (OME-NGFF: "
                        f"there MUST be 2 or 3 space axes)")
    for kind in ("time", "channel"):
        if sum(t == kind for t in types) > 1:
            raise NgffError(f"more than one axis of type {kind!r} (OME-NGFF: at most one)")
    rank = [_ORDER.get(t, 1) for t in types]
    if rank != sorted(rank):
        raise NgffError(f"axes in the order {', '.join(names)} (OME-NGFF: time first, then "
                        f"channel or custom axes, then space)")


def dataset_paths(ms: dict[str, Any]) -> list[str]:
    """The path of each level, refused when one has none."""
    datasets = ms.get("datasets") or []
    if not datasets:
        raise NgffError("the multiscale lists no datasets (OME-NGFF: 'datasets' MUST hold "
                        "at least one level)")
    paths = []
    for i, ds in enumerate(datasets):
        path = ds.get("path") if isinstance(ds, dict) else None
        if not isinstance(path, str) or not path:
            raise NgffError(f"dataset {i} has no 'path' (OME-NGFF: each dataset MUST have "
                            f"a path)")
        paths.append(path)
    return paths


def transforms(items: list[dict] | None, ndim: int, where: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """(scale, translation) of a list of coordinate transformations, each refused when it
    does not hold one value per axis."""
    scale, translate = np.ones(ndim), np.zeros(ndim)
    for t in items or []:
        kind = t.get("type") if isinstance(t, dict) else None
        if kind not in ("scale", "translation") or kind not in t:
            continue
        values = t[kind]
        if not isinstance(values, list) or len(values) != ndim:
            count = len(values) if isinstance(values, list) else "no list of"
            raise NgffError(f"{where} {kind} has {count} values for {ndim} axes (OME-NGFF: "
                            f"one value per axis)")
        values = np.asarray(values, dtype=float)
        if kind == "scale":
            scale = scale * values
        else:
            translate = translate + values
    return scale, translate

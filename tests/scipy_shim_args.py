"""The arguments of scipy.ndimage calls as our parameters: axes, modes, output dtypes,
windows. ``Unsupported`` names an argument with no parameter of ours to take it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_lazyproc.io import MORE_SPATIAL_AXES
from napari_lazyproc.ops import REGISTRY

#: scipy's filter modes, passed as scipy names them (our ``mode`` takes the grid names)
FILTER_MODES = {m: m for m in ("reflect", "constant", "nearest", "mirror", "wrap",
                               "grid-mirror", "grid-constant", "grid-wrap")}
OTHER_LETTERS = "tcabdefg"


class Unsupported(Exception):  # noqa: N818 - a verdict, not an error
    """The call uses ``arg`` in a way our operation ``op`` has no parameter for."""

    def __init__(self, arg: str, why: str, op: str = "") -> None:
        super().__init__(f"{arg}: {why}")
        self.arg, self.why, self.op = arg, why, op


@dataclass
class Call:
    op: str
    axes: Any  # scipy's integers, as ``lp.apply`` takes them
    data_axes: str
    params: dict[str, Any] = field(default_factory=dict)


def frame(x: np.ndarray, axes, a: dict | None = None) -> tuple[list[int], tuple[int, ...], str]:
    """scipy's axes (None, an int or a sequence) as (axes as given, the axes for
    ``lp.apply``: the same integers, data_axes: those axes spatial)."""
    n = x.ndim
    given = list(range(n)) if axes is None else [int(ax) % n for ax in np.atleast_1d(axes)]
    if len(set(given)) != len(given):
        raise Unsupported("axes", "repeated")
    if a is not None:
        _in_order(a, given)
    if n - len(given) > len(OTHER_LETTERS):
        raise Unsupported("input", f"{n}-D")
    spatial = sorted(given)
    order = MORE_SPATIAL_AXES[::-1] + "zyx"  # 4 and more spatial axes: "wzyx", "vwzyx"
    letters = dict(zip(spatial, order[len(order) - len(spatial):], strict=True))
    others = iter(a for a in OTHER_LETTERS if a not in letters.values())
    data_axes = "".join(letters.get(a) or next(others) for a in range(n))
    return given, tuple(given), data_axes


def per_axis(value, given: list[int]):
    """A scalar, or one value per axis (``_frame`` refused axes out of order)."""
    if np.ndim(value) == 0:
        return value.item() if isinstance(value, np.generic) else value
    value = list(value)
    if len(value) != len(given):
        raise Unsupported("axes", f"{len(value)} values for {len(given)} axes")
    return value


def _in_order(a: dict, given: list[int]) -> None:
    """scipy pairs per-axis values with ``axes`` out of order in ways that differ from
    one argument to another (a footprint's axes stay in the array's order, a size's
    follow ``axes``): such calls are not mapped unless every such value is a scalar."""
    if given == sorted(given):
        return
    for arg in ("sigma", "size", "origin", "footprint", "weights", "structure"):
        if np.ndim(a.get(arg)) > 0:
            raise Unsupported("axes", f"out of order, with {arg} per axis")


def mode_of(a: dict, modes=FILTER_MODES, per_axis: bool = False):
    """scipy's mode as ours; one per axis (in ``axes``' order, as ``lp.apply`` takes it
    with integer axes) where the operation takes that (``per_axis``)."""
    mode = a["mode"]
    if not isinstance(mode, str):
        if len(set(mode)) != 1 and not per_axis:
            raise Unsupported("mode", "one mode per axis")
        if len(set(mode)) != 1:
            return [mode_of({"mode": m}, modes) for m in mode]
        mode = mode[0]
    if mode not in modes:
        raise Unsupported("mode", repr(mode))
    return modes[mode]


def origin_zero(a: dict) -> bool:
    return not np.any(np.asarray(a.get("origin", 0)))


def output_dtype(a: dict, x: np.ndarray, op: str, params: dict, default=None) -> None:
    """scipy's output dtype (``output=``, else ``default``, else the input's): ours when
    the operation gives it, or passed as the operation's ``output`` parameter."""
    out = a.get("output")
    want = (np.dtype(out.dtype if isinstance(out, np.ndarray) else out) if out is not None
            else np.dtype(default or x.dtype))
    ours = REGISTRY[op].dtype(x.dtype, {**_defaults(op), **params})
    if want == ours:
        return
    if "output" in {p.name for p in REGISTRY[op].params}:
        params["output"] = want.name if want.isnative else want.str  # ">f8" kept
        return
    kinds = {"b": "bool", "i": "int", "u": "int", "f": "float"}
    if out is None:
        why = f"scipy's default, the input's {kinds[want.kind]} dtype (ours: {ours})"
    else:
        why = f"{kinds.get(want.kind, want.kind)} from {kinds[x.dtype.kind]} input, " \
              f"another dtype than ours"
    raise Unsupported("output", why)


def _defaults(op: str) -> dict:
    return {p.name: p.default for p in REGISTRY[op].params}


def window(a, given) -> tuple[tuple[int, ...] | None, np.ndarray | None]:
    """(size per axis, None) for a box window, else (None, the footprint as bool)."""
    if a.get("footprint") is None:
        size = a["size"]
        if size is None:
            raise Unsupported("size", "neither size nor footprint")
        size = per_axis(size, given)
        return tuple(size) if np.ndim(size) else (int(size),) * len(given), None
    fp = np.asarray(a["footprint"]).astype(bool)
    if fp.ndim != len(given):
        raise Unsupported("footprint", "dimensions unlike axes")
    return (fp.shape, None) if fp.all() else (None, fp)

"""An operation's parameters at a coarser level: lengths keep their physical size.

Level k of a result is the operation applied to level k of its input. A length of s
pixels at level 0 is s / f pixels at a level downsampled by f along that axis (the same
physical length). Integer lengths round to at least 1, and odd widths stay odd, so that
footprints stay centred. Coarse levels are previews: where the scaled parameters make no
sense (a width below 1, a rule across parameters broken), the level still computes,
and the log says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...io import level_factor
from ._params import Params
from ._registry import Op

log = logging.getLogger("napari_lazyproc")
_said: set[str] = set()


def note_once(message: str) -> None:
    """Log ``message`` once per process (a preview's caveat, not an error)."""
    if message not in _said:
        _said.add(message)
        log.warning(message)


def _scaled_int(value: int, factor: float, width: bool) -> int:
    scaled = value / factor
    if width and value % 2 == 1:  # odd widths stay odd: nearest odd number, at least 1
        return max(1, 2 * round((scaled - 1) / 2) + 1)
    return max(1, round(scaled))


def coarse_params(op: Op, params: Params, factors: Sequence[float], level: int,
                  axes: str) -> Params:
    """``params`` (validated, in level-0 pixels) for a level downsampled by ``factors``
    (one per spatial axis)."""
    values = params.as_dict()
    scaled: dict = {}
    clamped = []
    for p in op.params:
        value = values.get(p.name)
        if p.quantity != "length" or value is None:
            scaled[p.name] = value
            continue
        per_axis = list(value) if isinstance(value, Sequence) else None
        items = per_axis if per_axis is not None else [value]
        fs = factors if per_axis is not None else [sum(factors) / len(factors)]
        out = []
        for v, f in zip(items, fs, strict=False):
            new = _scaled_int(int(v), f, p.width) if p.type is int else float(v) / f
            if p.min is not None and new < p.min:
                new = type(new)(p.min)
            if p.type is int and (v / f < 1 or new > v / f + 1):
                clamped.append(p.name)
            out.append(new)
        scaled[p.name] = out if per_axis is not None else out[0]
    where = f"{op.name} at level {level} ({'x'.join(f'{f:g}' for f in factors)} coarser)"
    if clamped:
        note_once(f"{where}: {', '.join(sorted(set(clamped)))} would be smaller than its "
                  f"least value; the preview uses that")
    try:
        result = op.validate(scaled, len(factors))
        if op.check is not None:
            op.check(result.as_dict(), axes)
        return result
    except ValueError as exc:
        note_once(f"{where}: the scaled parameters do not apply ({exc}); the preview uses "
                  f"level 0's")
        return params


def footprint_note(op: Op, halo, shape, level: int) -> None:
    """Say once when a coarse level is smaller than the operation's footprint."""
    if halo is None:
        return
    if any(2 * h + 1 > n for h, n in zip(halo, shape, strict=False)):
        note_once(f"{op.name} at level {level}: the level {tuple(shape)} is smaller than "
                  f"the footprint; its preview is dominated by the edge mode")


def level_factors(full_shape, shape, spatial) -> tuple[float, ...]:
    """Downsampling of ``shape`` relative to ``full_shape`` along each spatial axis (the
    integer factor a pyramid was made with, when the shapes say so)."""
    return tuple(level_factor(full_shape[a], shape[a]) for a in spatial)


def label_factors(full_shape, shape) -> tuple[int, ...]:
    """Integer factors for a label-preserving pick at ``shape``."""
    return tuple(max(1, round(level_factor(f, n)))
                 for f, n in zip(full_shape, shape, strict=True))

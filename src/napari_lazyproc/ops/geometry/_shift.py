"""``shift_frames``: each time point translated by its own shift (drift correction).

``scipy.ndimage.shift(frame, shift, order=..., mode=..., cval=...)`` on every frame, with
the shift of that frame's time point from a shift table (``estimate_drift``), so the
corrected series is lazy and region-exact like any other operation. The halo is the
largest shift, rounded up, plus the spline's support, plus, for orders above 1, the
reach of scipy's spline prefilter (a recursive filter whose influence falls by its pole,
``|z| = 0.27`` for order 3, per voxel: after the margin it is below double precision).
"""

from __future__ import annotations

import math

from ...backend import ndimage_for
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import CVAL
from ..jobs._drift_table import frame_shift, shift_rows
from ._resample import MODES, prefilter_margin, prefiltered

#: modes a halo reproduces exactly (the wraps read the far edge)
SHIFT_MODES = tuple(m for m in MODES if "wrap" not in m)


def _halo(params, n: int) -> tuple[int, ...]:
    rows = params["shifts"] or ()
    order = int(params["order"])
    reach = order // 2 + 1 + prefilter_margin(order)
    return tuple(
        math.ceil(max((abs(r[1 + i]) for r in rows if len(r) == n + 1), default=0.0)) + reach
        for i in range(n)
    )


def _shift(block, shifts, order, mode, cval, frame):
    shift = frame_shift(shifts, frame.get("t", 0))
    return ndimage_for(block).shift(block, shift, order=order, mode=mode, cval=cval)


def _check(params, axes: str) -> None:
    if not axes:
        raise ValueError("shift_frames: a 0-D input has no axes to shift (scipy.ndimage "
                         "refuses it too)")
    rows = params["shifts"]
    if rows is None:
        raise ValueError("shift_frames: shifts is required: a shift table (estimate_drift), "
                         "its CSV path, or rows [t, dz, dy, dx] in pixels")
    bad = [list(r) for r in rows if len(r) != len(axes) + 1]
    if bad:
        raise ValueError(f"shift_frames: each row of shifts must be [t, "
                         f"{', '.join('d' + a for a in axes)}] for the spatial axes {axes!r} "
                         f"(got {bad[0]})")


def _at_level(values: dict, factors) -> dict:
    """Shifts in pixels of a level downsampled by ``factors``: the same physical shift."""
    rows = values.get("shifts")
    if rows:
        values = dict(values, shifts=[
            (r[0], *(float(s) / f for s, f in zip(r[1:], factors, strict=True)))
            for r in rows])
    return values


register(Op(
    "shift_frames", "registration", _shift,
    (Param("shifts", shift_rows, None, optional=True,
           help="a shift table (estimate_drift), its CSV path, or rows [t, dz, dy, dx] in "
                "pixels; each frame is scipy.ndimage.shift by its time point's row"),
     Param("order", int, 1, min=0, max=5, help="spline order (1: linear; 3: cubic)"),
     Param("mode", str, "constant", choices=SHIFT_MODES, help="how the array edge is extended"),
     CVAL),
    exact_whole=prefiltered,
    halo=_halo, check=_check, needs_frame=True, at_level=_at_level, on_gpu=False,
    description="translate each time point by its shift (scipy.ndimage.shift), e.g. to "
                "correct drift estimated by estimate_drift",
))

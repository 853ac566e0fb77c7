"""Order statistics of NaN, as scipy gives them, region by region.

NaN is not ordered: scipy's running minimum and maximum (``minimum_filter1d``, the
separable passes of a box, sizes of 4 and more) and its 1-D rank filter keep a structure
along each line whose answers, once a NaN has passed, depend on every value since the
line's start, even in windows without NaN. Its per-window selection (an n-D rank
filter, a footprint) does not. So an operation declares ``Op.nan_history``: the axes
along which that happens, for its parameters. On float input, a result computed by
scipy reads those axes from index 0, as an exact running sum does (``Op.prefix``), and
is bitwise scipy's; a fast kernel declines a block holding NaN (scipy runs), and where
the answer depends on the line's start a fast result refuses the block, naming the
reason (``precision="exact"`` computes it), unless it reads it too (a 1-D frame: one
line, read from its start in both precisions).
"""

from __future__ import annotations

import numpy as np


def nan_sensitive(result) -> bool:
    """Whether NaN changes how ``result`` is computed (float input to an operation that
    declares ``nan_history``)."""
    return result.op.nan_history is not None and np.dtype(result.source.dtype).kind == "f"


def nan_axes(result) -> tuple[bool, ...]:
    """Per spatial axis, whether scipy's answer near a NaN depends on the line's start."""
    n = len(result.spatial)
    if not nan_sensitive(result):
        return (False,) * n
    return tuple(bool(v) for v in result.op.nan_history(result.params.as_dict(), n))


def check_block(result, block) -> bool:
    """Whether a fast kernel may compute ``block``: False where it holds NaN (scipy
    runs); a ``ValueError`` where scipy's answer there depends on the line's start."""
    if not nan_sensitive(result) or not np.isnan(block).any():
        return True
    if any(v and not p for v, p in zip(result.nan_axes, result.prefix, strict=True)):
        axes = "".join(a for a, v in zip(result.spatial_axes, result.nan_axes, strict=True)
                       if v)
        raise ValueError(
            f"{result.op.name}: the input holds NaN; scipy's order statistics of NaN here "
            f"depend on every value since the start of each line along {axes!r} (NaN is "
            f"not ordered), which precision 'fast' does not read: use precision='exact' "
            f"(it reads each line from its start and is bitwise scipy's)")
    return False


def every_axis(params, n: int) -> tuple[bool, ...]:
    """``nan_history`` of a running minimum or maximum: every axis."""
    return (True,) * n


def rank_history(rank: int, count: int, n: int) -> tuple[bool, ...]:
    """``nan_history`` of scipy's rank filter: its 1-D path runs along the line, and
    the smallest or largest rank is its minimum or maximum filter; an n-D selection
    per window carries nothing."""
    rank = rank + count if rank < 0 else rank
    return (True,) * n if n == 1 or rank in (0, count - 1) else (False,) * n

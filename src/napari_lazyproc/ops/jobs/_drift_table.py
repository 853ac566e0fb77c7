"""The shift table of drift correction: its columns, its CSV file, and the rows
``shift_frames`` reads (one ``(t, shift...)`` per time point, in pixels of level 0).

A shift follows ``phase_cross_correlation``'s convention: the translation that registers
the frame onto the reference, ``scipy.ndimage.shift(frame, shift) ~ reference``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_CSV_COLUMN = re.compile(r"^(d[zyx])\s*\((.+)\)$")


def shift_columns(axes: str) -> list[str]:
    """The physical shift columns of frames with spatial ``axes`` (``["dz", "dy", "dx"]``)."""
    return [f"d{a}" for a in axes]


def make_table(t, shifts_px, spacing, units, axes: str, **attrs) -> pd.DataFrame:
    """A shift table from per-frame pixel shifts (level 0) and the voxel size.

    Parameters
    ----------
    t : sequence of int
        The time points.
    shifts_px : array-like, shape (n, len(axes))
        The shifts in pixels of level 0.
    spacing : sequence of float
        The voxel size along ``axes`` (physical units per pixel).
    units : sequence of str or None
        The unit of each axis (None: unknown; the shifts are then in scaled pixels).
    axes : str
        The spatial axes, ``"zyx"`` or ``"yx"``.
    **attrs
        Kept in ``DataFrame.attrs`` (how it was estimated).

    Returns
    -------
    pandas.DataFrame
        Columns ``t``, ``d<axis>`` (physical) and ``d<axis>_px`` (pixels); ``attrs``
        holds ``units`` (per column), ``spacing`` and ``axes``.
    """
    import pandas as pd

    px = np.asarray(shifts_px, dtype=np.float64).reshape(len(t), len(axes))
    table = pd.DataFrame({"t": np.asarray(t, dtype=np.int64)})
    for i, col in enumerate(shift_columns(axes)):
        table[col] = px[:, i] * float(spacing[i])
    for i, col in enumerate(shift_columns(axes)):
        table[col + "_px"] = px[:, i]
    table.attrs.update(attrs)
    table.attrs["axes"] = axes
    table.attrs["spacing"] = [float(s) for s in spacing]
    table.attrs["units"] = {
        **{c: u for c, u in zip(shift_columns(axes), units, strict=True)},
        **{c + "_px": "pixel" for c in shift_columns(axes)},
    }
    return table


def save_shifts(table: pd.DataFrame, path) -> None:
    """Write a shift table as CSV, with each column's unit in its header.

    The header reads ``t,dz (micrometer),dy (micrometer),dx (micrometer),dz (pixel),...``
    (a physical column of unknown unit is written bare: ``dz``). ``load_shifts`` reads it
    back.

    Parameters
    ----------
    table : pandas.DataFrame
        As ``estimate_drift`` returns it.
    path : str or os.PathLike
        Where to write.

    Raises
    ------
    ValueError
        For a table without a ``t`` column or shift columns.
    """
    units = table.attrs.get("units", {})
    names = {}
    for col in table.columns:
        if col == "t":
            continue
        base = col[:-3] if col.endswith("_px") else col
        if base not in ("dz", "dy", "dx"):
            continue
        unit = "pixel" if col.endswith("_px") else units.get(col)
        names[col] = f"{base} ({unit})" if unit else base
    if "t" not in table.columns or not names:
        raise ValueError("a shift table needs a 't' column and shift columns (dz, dy, dx)")
    table[["t", *names]].rename(columns=names).to_csv(path, index=False)


def load_shifts(path) -> pd.DataFrame:
    """Read a shift table written by ``save_shifts`` (or any CSV with ``t`` and ``dz``,
    ``dy``, ``dx`` columns, taken as pixels when they name no unit).

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file.

    Returns
    -------
    pandas.DataFrame
        As ``estimate_drift`` returns it (``attrs["units"]`` from the header; the voxel
        size as ``attrs["spacing"]`` where both kinds of columns give it).

    Raises
    ------
    ValueError
        When the file cannot be read or has no ``t`` and shift columns; the message names
        the path.
    """
    import pandas as pd

    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the shift table {os.fspath(path)!r}: {exc}") from exc
    columns, units = {}, {}
    for col in raw.columns:
        name = str(col).strip()
        match = _CSV_COLUMN.match(name)
        if name == "t":
            columns[col] = "t"
        elif match and match.group(2) == "pixel":
            columns[col] = match.group(1) + "_px"
        elif match:
            columns[col], units[match.group(1)] = match.group(1), match.group(2)
        elif name in ("dz", "dy", "dx"):
            columns[col], units[name] = name, None
    table = raw[list(columns)].rename(columns=columns)
    axes = "".join(a for a in "zyx" if f"d{a}" in table or f"d{a}_px" in table)
    if "t" not in table or not axes:
        raise ValueError(f"{os.fspath(path)!r} is not a shift table: it needs a 't' column "
                         f"and dz, dy, dx columns (got {', '.join(map(str, raw.columns))})")
    table["t"] = table["t"].astype(np.int64)
    table.attrs["axes"] = axes
    table.attrs["units"] = {**units, **{c: "pixel" for c in table if c.endswith("_px")}}
    spacing = []
    for a in axes:
        phys, px = table.get(f"d{a}"), table.get(f"d{a}_px")
        nonzero = px is not None and phys is not None and (px.abs() > 1e-9).any()
        spacing.append(float((phys[px.abs() > 1e-9] / px[px.abs() > 1e-9]).median())
                       if nonzero else None)
    if None not in spacing:
        table.attrs["spacing"] = spacing
    return table


def shift_rows(value) -> tuple[tuple, ...]:
    """Per-frame shifts in pixels of level 0, as rows ``(t, dz, dy, dx)`` sorted by t.

    Accepts a shift table (a DataFrame, from its pixel columns, or from its physical
    columns and ``attrs["spacing"]``), the path of its CSV, or rows ``[t, dz, dy, dx]``
    (``[t, dy, dx]`` for 2-D frames) in pixels: what a pipeline's JSON holds.

    Raises
    ------
    ValueError
        For anything else, or rows that are not numbers; the message says what it takes.
    """
    if isinstance(value, (str, os.PathLike)):
        value = load_shifts(value)
    if hasattr(value, "columns") and hasattr(value, "attrs"):  # a DataFrame
        value = _table_rows(value)
    try:
        rows = [tuple(float(v) for v in row) for row in value]
    except (TypeError, ValueError):
        raise ValueError(f"shifts must be a shift table, its CSV path or rows [t, dz, dy, dx] "
                         f"in pixels (got {type(value).__name__})") from None
    out = []
    for row in rows:
        if len(row) < 2 or row[0] != int(row[0]) or not all(map(math.isfinite, row)):
            raise ValueError(f"shifts: each row is [t, dz, dy, dx] (or [t, dy, dx]) with an "
                             f"integer t and finite shifts (got {list(row)})")
        out.append((int(row[0]), *row[1:]))
    ts = [r[0] for r in out]
    if len(set(ts)) != len(ts):
        raise ValueError("shifts: a time point appears more than once")
    return tuple(sorted(out))


def _table_rows(table) -> list[tuple]:
    axes = "".join(a for a in "zyx" if f"d{a}" in table or f"d{a}_px" in table)
    if "t" not in table or not axes:
        raise ValueError("shifts: the table needs a 't' column and dz, dy, dx columns")
    units = table.attrs.get("units", {})
    spacing = table.attrs.get("spacing")
    cols = []
    for i, a in enumerate(axes):
        if f"d{a}_px" in table:
            cols.append(table[f"d{a}_px"].to_numpy(np.float64))
        elif units.get(f"d{a}") in (None, "pixel"):
            cols.append(table[f"d{a}"].to_numpy(np.float64))
        elif spacing is not None:
            cols.append(table[f"d{a}"].to_numpy(np.float64) / float(spacing[i]))
        else:
            raise ValueError(f"shifts: d{a} is in {units[f'd{a}']} and the table has neither "
                             f"pixel columns nor attrs['spacing'] to convert it")
    t = table["t"].to_numpy()
    return [(int(t[k]), *(float(c[k]) for c in cols)) for k in range(len(t))]




def frame_shift(rows: Sequence[tuple], t: int) -> tuple[float, ...]:
    """The shift of time point ``t`` in ``rows`` (as ``shift_rows`` returns them).

    Raises
    ------
    ValueError
        When the table has no row for ``t``.
    """
    found = _lookup(tuple(rows)).get(int(t))
    if found is None:
        ts = [r[0] for r in rows]
        raise ValueError(f"shift_frames: the shift table has no time point {t} (it covers "
                         f"t = {min(ts)}..{max(ts)}, {len(ts)} rows)" if ts else
                         "shift_frames: the shift table is empty")
    return found


@lru_cache(maxsize=16)
def _lookup(rows: tuple) -> dict[int, tuple[float, ...]]:
    return {int(r[0]): tuple(r[1:]) for r in rows}

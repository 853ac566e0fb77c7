"""Axis letters and physical units, normalised across formats."""

from __future__ import annotations

from collections.abc import Sequence

#: the axes operations filter over and pyramids reduce; never T or C
SPATIAL_AXES = "zyx"

_DEFAULT_AXES = {1: "x", 2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}

_UNIT_ALIASES = {
    "micron": "micrometer",
    "microns": "micrometer",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "\\u00b5m": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "a": "angstrom",
    "å": "angstrom",
    "s": "second",
    "sec": "second",
    "ms": "millisecond",
    "min": "minute",
    "h": "hour",
    "hr": "hour",
}


def guess_axes(shape: Sequence[int], rgb_ok: bool = False) -> str:
    """Axis letters for an array whose file gives none."""
    ndim = len(shape)
    if rgb_ok and ndim in (3, 4) and shape[-1] in (3, 4):
        return _DEFAULT_AXES[ndim - 1] + "c"
    if ndim in _DEFAULT_AXES:
        return _DEFAULT_AXES[ndim]
    extra = "".join(chr(ord("k") + i) for i in range(ndim - 5))
    return extra + "tczyx"


def axes_from_names(names: Sequence[str | None] | None, shape: Sequence[int]) -> str:
    """Axis letters from per-dimension names (xarray's ``_ARRAY_DIMENSIONS``, zarr v3
    ``dimension_names``, HDF5 dimension labels) when they are one-letter and distinct."""
    if names and len(names) == len(shape):
        letters = [str(n).strip().lower()[:1] if n else "" for n in names]
        full = [str(n).strip().lower() if n else "" for n in names]
        if all(len(f) == 1 for f in full) and len(set(letters)) == len(letters):
            return "".join(letters)
        aliases = {"time": "t", "channel": "c", "channels": "c", "z": "z", "y": "y", "x": "x"}
        mapped = [aliases.get(f, "") for f in full]
        if all(mapped) and len(set(mapped)) == len(mapped):
            return "".join(mapped)
    return guess_axes(shape)


def normalize_unit(unit: object) -> str | None:
    """A unit name that pint and OME-NGFF understand (``"micrometer"``), or None."""
    if unit is None:
        return None
    text = str(unit).strip()
    if not text or text.lower() in {"pixel", "pixels", "px", "none", "unknown"}:
        return None
    return _UNIT_ALIASES.get(text.lower(), text)


def unit_for_axis(axis: str, spatial: str | None, time: str | None = None) -> str | None:
    if axis in "zyx":
        return spatial
    if axis == "t":
        return time
    return None

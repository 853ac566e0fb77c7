"""Axis letters and physical units, normalised across formats.

Unit names are read and converted by pint (the registry napari's ``layer.units`` uses), so a
unit is written the way pint and OME-NGFF spell it: ``"micrometer"``, ``"second"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

#: the axes operations filter over and pyramids reduce; never T or C
SPATIAL_AXES = "zyx"

#: letters of further spatial axes, named by ``axes=`` (never by default): the fourth
#: from the last first, so that a 4-D volume is "wzyx" and a 5-D one "vwzyx"
MORE_SPATIAL_AXES = "wvusrqponmlkjihgfedba"

_DEFAULT_AXES = {1: "x", 2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}

_NOT_A_UNIT = frozenset({"pixel", "pixels", "px", "none", "unknown"})

# Spellings that image files use and pint reads otherwise: to pint "a" is a year (annum) and
# "å" nothing; some writers leave the µ of µm escaped.
_FILE_SPELLINGS = {"a": "angstrom", "å": "angstrom", "\\u00b5m": "micrometer"}


def guess_axes(shape: Sequence[int], rgb_ok: bool = False) -> str:
    """Axis letters for an array whose file names none.

    Parameters
    ----------
    shape
        The array's shape.
    rgb_ok
        Whether a last axis of 3 or 4 in a 3-D or 4-D array holds RGB(A) channels.

    Returns
    -------
    str
        One distinct lowercase letter per axis, ending in ``"zyx"`` order (``"tczyx"`` for
        5-D; more axes get the letters ``k``, ``l``, ... in front).
    """
    ndim = len(shape)
    if ndim == 0:  # a 0-D array (one value) has no axes
        return ""
    if rgb_ok and ndim in (3, 4) and shape[-1] in (3, 4):
        return _DEFAULT_AXES[ndim - 1] + "c"
    if ndim in _DEFAULT_AXES:
        return _DEFAULT_AXES[ndim]
    extra = "".join(chr(ord("k") + i) for i in range(ndim - 5))
    return extra + "tczyx"


def positional_axes(shape: Sequence[int], given: Sequence[int]) -> str:
    """Axis letters of an array whose file names none, where scipy's integer axes
    ``given`` say which axes are spatial.

    Parameters
    ----------
    shape
        The array's shape.
    given
        Axis indices (0 to ndim - 1) that an operation runs over.

    Returns
    -------
    str
        ``guess_axes(shape)`` when it names none of them t or c; otherwise z, y, x, w,
        v... for the given axes (the last one x), and t, a, b... for the others (never c:
        they hold no channels): ``(0, 1, 2, 3)`` of a 4-D array is ``"wzyx"``.
    """
    guess = guess_axes(shape)
    if all(guess[a] not in "tc" for a in given):
        return guess
    named = sorted(set(given))
    order = MORE_SPATIAL_AXES[::-1] + SPATIAL_AXES
    if len(named) > len(order):
        raise ValueError(f"{len(named)} spatial axes: at most {len(order)} are named")
    letters = dict(zip(named, order[len(order) - len(named):], strict=True))
    others = iter(a for a in "tabdefghijklmnopqrsuvwzyx" if a not in letters.values())
    return "".join(letters.get(a) or next(others) for a in range(len(shape)))


def axes_from_names(names: Sequence[str | None] | None, shape: Sequence[int]) -> str:
    """Axis letters from per-dimension names, or guessed from the shape.

    Parameters
    ----------
    names
        One name per dimension (xarray's ``_ARRAY_DIMENSIONS``, zarr v3
        ``dimension_names``, HDF5 dimension labels), or None.
    shape
        The array's shape.

    Returns
    -------
    str
        The names themselves when they are distinct single letters, or distinct words such
        as ``"time"`` and ``"channel"``; otherwise ``guess_axes(shape)``.
    """
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
    """The name pint and OME-NGFF give a unit of length or time, or None for no unit.

    Parameters
    ----------
    unit
        A unit as a file writes it: ``"µm"``, ``"um"``, ``"micron"``, ``"s"``, ``"sec"``...

    Returns
    -------
    str or None
        ``"micrometer"``, ``"second"``... for a length or time that pint reads (in lower
        case, or as written); None for a missing, empty or pixel unit; any other text as
        given.
    """
    if unit is None:
        return None
    text = str(unit).strip()
    if not text or text.lower() in _NOT_A_UNIT:
        return None
    return _FILE_SPELLINGS.get(text.lower()) or _pint_name(text) or text


@lru_cache(maxsize=256)
def _pint_name(text: str) -> str | None:
    ureg = _registry()
    # lower case first: image files mean "Mm" and "Min" as mm and min, not mega-units
    for spelling in dict.fromkeys((text.lower(), text)):
        try:
            unit = ureg.parse_units(spelling)
            if not (unit.is_compatible_with("meter") or unit.is_compatible_with("second")):
                continue
            # pint keeps old names of SI units ("micron"); OME-NGFF lists the prefixed one
            compact = ureg.Quantity(1, unit).to_base_units().to_compact()
        except Exception:  # noqa: BLE001 - pint raises many kinds on free text
            continue
        if math.isclose(compact.magnitude, 1.0):
            return str(compact.units)
        return str(unit)
    return None


def _registry():
    import pint

    return pint.get_application_registry()


def convert_unit(value: float, unit: str, to: str) -> float:
    """``value`` in ``unit`` expressed in the unit ``to``.

    Parameters
    ----------
    value
        A size, such as a voxel size.
    unit, to
        Unit names that pint reads, such as ``"centimeter"`` and ``"micrometer"``.

    Returns
    -------
    float
    """
    return float(_registry().Quantity(value, unit).m_as(to))


def unit_for_axis(axis: str, unit: str | None) -> str | None:
    """``unit`` for a spatial axis, None for any other (time, channel).

    Parameters
    ----------
    axis
        One axis letter.
    unit
        The file's spatial unit, or None.

    Returns
    -------
    str or None
    """
    return unit if axis in SPATIAL_AXES else None

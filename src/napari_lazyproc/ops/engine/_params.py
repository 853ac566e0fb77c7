"""Parameter specs: type, default, range and unit; validation with errors that name them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Param:
    """One parameter of an operation.

    ``per_axis`` parameters (``sigma``, ``size``, ``radius``) take one value or one per
    spatial axis; ``quantity="length"`` ones may be given in physical units, converted
    with the image's voxel size, and keep their physical size at coarser levels.
    """

    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    per_axis: bool = False
    #: what the value measures: "length" (pixels, or physical with ``units="physical"``),
    #: "intensity" (grey levels), "dtype" (a numpy dtype, given as numpy takes it), or None
    quantity: str | None = None
    #: a window's width in voxels (sizes): an odd width stays odd at coarser levels, so
    #: the window stays centred; other lengths (radii, sigmas) just scale
    width: bool = False
    choices: tuple = ()
    optional: bool = False  # None is allowed
    help: str = ""
    #: an integer given as a float (``3.0``) is refused, as scipy refuses it (TypeError)
    integral: bool = False

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "type": self.type.__name__, "default": self.default}
        for key in ("min", "max", "quantity", "help"):
            if getattr(self, key) not in (None, ""):
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.per_axis:
            out["per_axis"] = True
        if self.min is not None and not self.min_inclusive:
            out["min_exclusive"] = True
        return out

    @property
    def unit(self) -> str | None:
        """Deprecated: the name of ``quantity`` before 0.2."""
        warnings.warn("Param.unit is deprecated; use Param.quantity", DeprecationWarning,
                      stacklevel=2)
        return self.quantity

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = "" if self.min is None else f"{'>=' if self.min_inclusive else '>'} {self.min:g}"
        hi = "" if self.max is None else f"<= {self.max:g}"
        parts = [p for p in (lo, hi) if p]
        kind = ("an integer" if self.type is int
                else "a number" if self.type is float
                else self.type.__name__)
        return f"{kind}" + (f" {' and '.join(parts)}" if parts else "")

    def _scalar(self, op: str, value: Any) -> Any:
        where = f"{op}: {self.name}"
        if self.quantity == "dtype":  # np.int16, "int16", np.dtype("int16"): its name
            try:
                dt = np.dtype(value)
            except TypeError:
                raise ValueError(f"{where} must be {self.range_text()} (got {value!r})") from None
            if self.choices and dt.name not in self.choices:
                raise ValueError(f"{where} must be {self.range_text()} (got {value!r})")
            # the other byte order is kept (">f8"), as scipy's output array keeps it
            return dt.name if dt.isnative else dt.str
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{where} must be {self.range_text()} (got {value!r})")
            return value
        if self.type is bool:
            if not isinstance(value, (bool, int)):
                raise ValueError(f"{where} must be true or false (got {value!r})")
            return bool(value)
        if self.type in (int, float):
            if isinstance(value, bool) or (
                not isinstance(value, (int, float)) and not hasattr(value, "__float__")
            ):
                raise ValueError(f"{where} must be {self.range_text()} (got {value!r})")
            if self.integral and isinstance(value, (float, np.floating)):
                raise ValueError(f"{where} must be an integer, not a float (got {value!r}; "
                                 f"scipy.ndimage refuses it too)")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"{where} must be {self.range_text()} and finite (got {value!r})")
            if self.type is int:
                if number != int(number):
                    raise ValueError(f"{where} must be {self.range_text()} (got {value!r})")
                number = int(number)
            too_low = self.min is not None and (
                number < self.min or (not self.min_inclusive and number == self.min)
            )
            too_high = self.max is not None and number > self.max
            if too_low or too_high:
                raise ValueError(f"{where} must be {self.range_text()} (got {value!r})")
            return number
        return self.type(value)

    def validate(self, op: str, value: Any, n_axes: int) -> Any:
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"{op}: {self.name} is required ({self.range_text()})")
        if self.per_axis:
            if isinstance(value, Sequence) and not isinstance(value, str):
                if len(value) != n_axes:
                    raise ValueError(
                        f"{op}: {self.name} has {len(value)} values for {n_axes} spatial "
                        f"axes; give one value or {n_axes}"
                    )
                return tuple(self._scalar(op, v) for v in value)
            return (self._scalar(op, value),) * n_axes
        return self._scalar(op, value)


@dataclass(frozen=True)
class Params:
    """Validated parameters, hashable (for cache keys) and JSON-able (for provenance)."""

    values: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> Any:
        return dict(self.values)[name]

    def as_dict(self) -> dict[str, Any]:
        # per-axis tuples as lists; a tuple subclass (a LowLevelCallable) kept as it is
        return {k: list(v) if type(v) is tuple else v for k, v in self.values}

"""Intensity: rescale to a range and convert the data type."""

from __future__ import annotations

import numpy as np

from ..engine._params import Param
from ..engine._registry import Op, register
from ..stats._global_stats import mode_for, statistic

#: the default input range: numpy.percentile(image, PERCENTILES)
PERCENTILES = (0.1, 99.9)
DTYPES = ("uint8", "uint16", "int16", "int32", "uint32", "float32", "float64")


def _convert(values: np.ndarray, dtype: str) -> np.ndarray:
    """Round floats to integers and clip to the target type's range."""
    target = np.dtype(dtype)
    if target.kind == "f":
        return values.astype(target)
    info = np.iinfo(target)
    if values.dtype.kind == "f":
        values = np.rint(values)
    return np.clip(values, info.min, info.max).astype(target)


def _rescale(b, in_low, in_high, out_dtype, **_):
    f = (b.astype(np.float64) - in_low) / max(in_high - in_low, np.finfo(np.float64).tiny)
    f = np.clip(f, 0.0, 1.0)
    target = np.dtype(out_dtype)
    if target.kind == "f":
        return f.astype(target)
    return _convert(f * np.iinfo(target).max, out_dtype)


def _rescale_prepare(result, progress=None, cancel=None, stale=None):
    p = result.params
    if p["in_low"] is not None and p["in_high"] is not None:
        return {}
    lo, hi = statistic(result.source, "percentiles", result.statistics, q=PERCENTILES,
                       progress=progress, cancel=cancel, stale=stale)
    return {"in_low": p["in_low"] if p["in_low"] is not None else lo,
            "in_high": p["in_high"] if p["in_high"] is not None else hi}


def _rescale_statistics(result) -> str | None:
    """Percentiles over every voxel under precision "exact", else of a bounded sample."""
    p = result.params
    if p["in_low"] is not None and p["in_high"] is not None:
        return None
    return mode_for(result.source, result.precision == "exact")


_rescale_prepare.statistics = _rescale_statistics
_rescale_prepare.statistic = ("percentiles", PERCENTILES)


register(Op(
    "rescale", "intensity", _rescale,
    (Param("in_low", float, None, optional=True, quantity="intensity",
           help="maps to 0; default: the 0.1st percentile"),
     Param("in_high", float, None, optional=True, quantity="intensity",
           help="maps to the top of out_dtype; default: the 99.9th percentile"),
     Param("out_dtype", str, "uint8", choices=("uint8", "uint16", "float32"))),
    dtype=lambda d, p: np.dtype(p["out_dtype"]), prepare=_rescale_prepare,
    description="linear rescale of [in_low, in_high] to the output type's range, clipped",
))

register(Op(
    "convert_dtype", "intensity", lambda b, dtype: _convert(b, dtype),
    (Param("dtype", str, "float32", choices=DTYPES),),
    dtype=lambda d, p: np.dtype(p["dtype"]),
    description="convert the data type; floats are rounded and values clipped to the range",
))

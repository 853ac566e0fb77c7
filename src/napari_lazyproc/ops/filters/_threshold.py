"""Thresholds: fixed, global (Otsu, Li, triangle: ``_global_stats``), local."""

from __future__ import annotations

import numpy as np

from ...backend import ndimage_for
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import CVAL, MODE
from ..stats._global_stats import mode_for, statistic

BOOL = lambda d, p: np.dtype(bool)  # noqa: E731
SAMPLE = Param("sample", str, "auto", choices=("auto", "exact"),
               help="'auto': over every voxel with precision 'exact', else a bounded "
                    "sample; 'exact': over every voxel")


def statistics_mode(result) -> str:
    """"whole" (every voxel) under precision "exact" or ``sample="exact"``, else
    "sampled" (a bounded sample, when the input is larger than it)."""
    whole = result.precision == "exact" or result.params.as_dict().get("sample") == "exact"
    return mode_for(result.source, whole)


def _above(b, threshold, **_):
    return b > threshold


register(Op(
    "threshold", "threshold", lambda b, value: b > value,
    (Param("value", float, 0.0, quantity="intensity", help="voxels above this are foreground"),),
    dtype=BOOL, description="fixed threshold: value < voxel",
))


def _global(method):
    def prepare(result, progress=None, cancel=None, stale=None):
        return {"threshold": statistic(result.source, method, result.statistics,
                                       progress=progress, cancel=cancel, stale=stale)}

    prepare.statistics = statistics_mode
    prepare.statistic = (method, None)
    return prepare


for _method, _text in (("otsu", "Otsu's"), ("li", "Li's minimum cross entropy"),
                       ("triangle", "the triangle")):
    register(Op(
        f"threshold_{_method}", "threshold", _above, (SAMPLE,), dtype=BOOL,
        prepare=_global(_method),
        description=f"global threshold by {_text} method (as skimage.filters."
                    f"threshold_{_method}); voxels above it are foreground"
                    + ("; statistics over every voxel with precision 'exact', of a "
                       "bounded sample with 'fast' (unless sample='exact')"),
    ))


def _local(b, block_size, method, offset, mode, cval):
    ndi = ndimage_for(b)
    f = b.astype(np.float32 if b.dtype == np.float32 else np.float64, copy=False)
    if method == "gaussian":
        sigma = tuple((s - 1) / 6.0 for s in block_size)
        thresh = ndi.gaussian_filter(f, sigma, mode=mode, cval=cval)
    elif method == "mean":
        thresh = ndi.uniform_filter(f, block_size, mode=mode, cval=cval)
    else:
        thresh = ndi.median_filter(f, block_size, mode=mode, cval=cval)
    return b > thresh - offset


def _local_halo(p, n):
    if p["method"] == "gaussian":
        return tuple(int(4.0 * (s - 1) / 6.0 + 0.5) for s in p["block_size"])
    return tuple(s // 2 for s in p["block_size"])


def _check_local(params, axes):
    if any(s % 2 == 0 for s in params["block_size"]):
        raise ValueError(f"threshold_local: block_size must be odd (got {params['block_size']})")


register(Op(
    "threshold_local", "threshold", _local,
    (Param("block_size", int, 35, min=3, max=1001, per_axis=True, quantity="length", width=True,
           help="odd neighbourhood width"),
     Param("method", str, "gaussian", choices=("gaussian", "mean", "median")),
     Param("offset", float, 0.0, quantity="intensity", help="subtracted from the local threshold"),
     MODE, CVAL),
    halo=_local_halo, dtype=BOOL, check=_check_local,
    # "mean" is scipy's uniform_filter in float: running sums (see ``Op.prefix``)
    prefix=lambda d, p, n: tuple(p["method"] == "mean" for _ in range(n)),
    description="adaptive threshold: voxel > skimage.filters.threshold_local(image, ...)",
))

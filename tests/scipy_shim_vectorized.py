"""scipy's ``vectorized_filter`` calls as our operation of that name (its route; the
others are in ``scipy_shim_map``)."""

from __future__ import annotations

import numpy as np
from scipy_shim_args import Call, Unsupported, frame, output_dtype, per_axis, window


def vectorized(a, x):
    """``vectorized_filter``: one mode; by default the function's dtype; sizes, origins
    and a footprint's axes follow ``axes`` (scipy's windows are laid out in that order)."""
    if a["mode"] == "valid":
        raise Unsupported("mode", "'valid' (an output smaller than the input)")
    if not np.asarray(a["input"]).flags.c_contiguous:  # (our blocks are)
        raise Unsupported("input", "not C-contiguous (scipy's windows then reduce in "
                                   "memory order)")
    given, axes, data_axes = frame(x, a.get("axes"))
    if x.ndim == 0 and a.get("footprint") is not None:
        raise Unsupported("footprint", "on a 0-D input (scipy's result is 1-D then)")
    size, fp = window(a, given)
    if fp is not None:  # scipy's footprint follows ``axes``; ours the array's order
        fp = fp.transpose(np.argsort([sorted(given).index(g) for g in given]))
    params = {"function": a["function"], "mode": a["mode"],
              "origin": per_axis(0 if a.get("origin") is None else a["origin"], given),
              "batch_memory": a["batch_memory"]}
    if a.get("cval") is not None:
        params["cval"] = a["cval"]
    params.update(footprint=fp) if fp is not None else params.update(size=list(size))
    if a.get("output") is not None:  # by default, the function's dtype (ours too)
        output_dtype(a, x, "vectorized_filter", params)
    return Call("vectorized_filter", axes, data_axes, params), {
        "function", "size", "footprint", "origin", "mode", "cval", "axes", "output",
        "batch_memory"}

"""``vectorized_filter`` (scipy >= 1.15): a vectorized Python function of each window.

scipy calls ``function(windows, axis=...)`` on a sliding-window view of the input padded
by ``mode``, so a region computed on its block plus the window's reach (the halo, as
``generic_filter``'s) is bitwise scipy's on the whole array. The result's dtype is the
function's: without ``output=``, one probe call on a block of zeros the window's size,
of the input's dtype, says it (kept per function, dtype and window). A function with
more than one value per window gives an output of another shape than the input's, which
this lazy operation refuses, saying so; so is ``mode="valid"`` (a smaller output).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import CVAL, ORIGIN, SIZE, output_dtype
from ._generic import (
    FOOTPRINT_HELP,
    _footprint,
    _same_kernel_note,
    _window_check,
    _window_halo_of,
)
from ._user_kernels import kernel_array, kernel_param

#: scipy's modes for it (np.pad's, by scipy's names); "valid" shrinks the output
MODES = ("reflect", "constant", "nearest", "mirror", "wrap")


def window_function(value):
    if callable(value):
        return value
    got = "nothing" if value is None else f"{type(value).__name__} {value!r}"
    raise ValueError(f"vectorized_filter: function must be a Python function of the "
                     f"windows taking axis= (got {got}); from Python only: a pipeline's "
                     f"JSON cannot hold it")


def memory_bytes(value) -> float:
    """``batch_memory``: a positive number of bytes (``np.inf``: no limit), as scipy
    takes it; a whole number as an integer (scipy counts windows with it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not value > 0:
        raise ValueError(f"vectorized_filter: batch_memory must be a positive number of "
                         f"bytes (got {value!r})")
    return float(value) if math.isinf(value) else int(value)  # (scipy counts in ints)


def _keywords(size, footprint, mode, cval, origin, batch_memory, axes) -> dict:
    """scipy's keywords for the spatial ``axes`` of a block in the order ``apply``'s
    ``axes`` gave them (scipy lays each window out, and reduces it, in that order), the
    window's values given in the array's order."""
    order = [sorted(axes).index(a) for a in axes]
    fp = _footprint(footprint, "vectorized_filter: footprint")
    window = ({"footprint": fp.transpose(order)} if fp is not None
              else {"size": tuple(size[i] for i in order)})
    if mode == "constant":  # scipy refuses a cval with the other modes
        window["cval"] = cval
    return {**window, "mode": mode, "origin": tuple(origin[i] for i in order),
            "batch_memory": batch_memory, "axes": tuple(axes)}


def _run(b, function, size, footprint, mode, cval, origin, batch_memory, axes,
         output=None):
    """scipy on the whole block (frames and all, as scipy batches them: not frame by
    frame, whose windows would reduce in another order for ``axes`` out of order)."""
    import scipy.ndimage

    out = None if output is None else np.empty(b.shape, output_dtype(output))
    return scipy.ndimage.vectorized_filter(
        b, function, output=out, **_keywords(size, footprint, mode, cval, origin,
                                             batch_memory, axes))


@functools.lru_cache(maxsize=128)
def _probe(function, dtype: str, window: tuple[int, ...]) -> tuple[np.dtype, tuple]:
    """The dtype and shape of the function's result on a block of zeros the window's
    size (``window``; ``()`` for a 0-D input)."""
    import scipy.ndimage

    block = np.zeros(window, dtype)
    out = np.asarray(scipy.ndimage.vectorized_filter(block, function, size=window))
    return out.dtype, out.shape


def _window(params) -> tuple[int, ...]:
    if params.get("footprint") is not None:
        return kernel_array(params["footprint"]).shape
    size = params.get("size")
    return (int(size),) if np.ndim(size) == 0 else tuple(int(s) for s in size)


def _dtype(dtype, params) -> np.dtype:
    """The function's result dtype (a probe); a function with more than one value per
    window is refused (the result would not have the input's shape)."""
    function, window = params.get("function"), _window(params)
    if function is None:
        return np.dtype(dtype)
    try:
        probe = _probe if getattr(function, "__hash__", None) else _probe.__wrapped__
        got, shape = probe(function, np.dtype(dtype).str, window)
    except Exception as exc:  # noqa: BLE001 - the user's function: say which call failed
        raise ValueError(f"vectorized_filter: function failed on a {window} window of "
                         f"{np.dtype(dtype)} zeros ({type(exc).__name__}: {exc})") from exc
    if shape != window:
        raise ValueError(f"vectorized_filter: function gives {shape} values for a {window} "
                         f"input, not one value per window; a lazy result keeps the "
                         f"input's shape (filter with one function per output)")
    return np.dtype(got)


def _check(params, axes: str) -> None:
    if params["function"] is None:
        window_function(None)
    _window_check("vectorized_filter", params, axes)


register(Op(
    "vectorized_filter", "smoothing", _run,
    (Param("function", window_function, None, optional=True, quantity="python",
           help="function(windows, axis=...) -> one value per window, vectorized (numpy "
                "reductions such as np.mean, np.nanmedian); from Python only"),
     SIZE, kernel_param("vectorized_filter", "footprint", FOOTPRINT_HELP),
     Param("mode", str, "reflect", choices=MODES,
           help="how the input is extended beyond its edges, as in scipy.ndimage"),
     CVAL, ORIGIN,
     Param("batch_memory", memory_bytes, 2**30,
           help="the most bytes of windows handed to function at once (memory only; "
                "inf: no limit)")),
    halo=_window_halo_of, check=_check, on_gpu=False, dtype=_dtype, batched=True,
    at_level=_same_kernel_note("vectorized_filter", "footprint"),
    description="a vectorized Python function of each window (scipy.ndimage."
                "vectorized_filter, scipy >= 1.15); from Python only, on the CPU",
    output=True, complex_input=True,
))

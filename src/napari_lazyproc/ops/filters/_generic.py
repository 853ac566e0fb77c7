"""Filters with a user's kernel or function: ``convolve``, ``correlate``, ``rank_filter``
and ``generic_filter``, with parameters named as scipy.ndimage names them.

A kernel (``weights``, a ``footprint``) is a nested list (what a pipeline's JSON holds),
the path of a ``.npy`` file (kept as given, so the JSON stores the path), or, from
Python, an array (stored as a nested list). The halo follows the kernel's shape and
``origin``: scipy's origin shifts the window, so each side reaches at most
``n // 2 + |origin|`` voxels, which is the halo.

A coarser level of a pyramid cannot rescale a user's kernel exactly: its preview applies
the same kernel in that level's pixels (one line in the log says so), as for any
parameter that makes no sense at a coarse level. Level 0 is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...backend import array_module, ndimage_for
from ..engine._levels import note_once
from ..engine._nan_order import rank_history
from ..engine._params import Param
from ..engine._registry import Op, register
from ..engine._scipy_params import (
    CVAL,
    MODE,
    ORIGIN,
    SIZE,
    origin_check,
    output_dtype,
    window_halo,
)
from ..kernels import _correlate as _kernels_correlate
from ..kernels import _rank as _rank_kernels
from ._user_kernels import kernel_array, kernel_param

# ------------------------------------------------------------------------- kernels


def _kernel_check(where: str, arr: np.ndarray, axes: str) -> None:
    if arr.ndim != len(axes):
        raise ValueError(f"{where} is {arr.ndim}-D {arr.shape} and the spatial axes "
                         f"{axes!r} are {len(axes)}: give a {len(axes)}-D kernel, or axes "
                         f"with as many letters as the kernel has dimensions")


_origin_check = origin_check
_window_halo = window_halo


def _same_kernel_note(name: str, what: str):
    """``Op.at_level``: a coarser level keeps the kernel in its own pixels, said once."""

    def at_level(values: dict, factors) -> dict:
        if values.get(what) is not None and any(f != 1 for f in factors):
            scale = "x".join(f"{f:g}" for f in factors)
            note_once(f"{name} at a level {scale} coarser: a user's {what} cannot be "
                      f"rescaled exactly; the preview applies it in that level's pixels")
        return values

    return at_level


# ----------------------------------------------------------- convolve and correlate


def _correlation(name: str):
    def run(b, weights, mode, cval, origin, output=None, **axis):
        w = kernel_array(weights, f"{name}: weights")
        w = array_module(b).asarray(w, np.complex128 if w.dtype.kind == "c" else np.float64)
        return getattr(ndimage_for(b), name)(b, w, output=output_dtype(output), mode=mode,
                                             cval=cval, origin=origin, **axis)

    return run


def _correlation_dtype(dtype, params) -> np.dtype:
    """The input's dtype; complex (of at least the input's precision) with complex
    weights, as scipy gives it."""
    dtype = np.dtype(dtype)
    w = params.get("weights")
    if w is not None and dtype.kind != "c" and kernel_array(w).dtype.kind == "c":
        return np.promote_types(dtype, np.complex64)
    return dtype


def _weights_check(name: str):
    def check(params, axes: str) -> None:
        if params["weights"] is None:
            raise ValueError(f"{name}: weights is required: the kernel as a nested list, a "
                             f".npy path, or an array")
        arr = kernel_array(params["weights"], f"{name}: weights")
        _kernel_check(f"{name}: weights", arr, axes)
        _origin_check(name, params["origin"], arr.shape, axes)

    return check


def _weights_halo(params, n: int) -> tuple[int, ...]:
    if params["weights"] is None:
        return (0,) * n
    return _window_halo(kernel_array(params["weights"]).shape, params["origin"])


for _name, _text in (
        ("convolve", "convolution with a kernel (scipy.ndimage.convolve)"),
        ("correlate", "correlation with a kernel (scipy.ndimage.correlate)")):
    register(Op(
        _name, "kernels", _correlation(_name),
        (kernel_param(_name, "weights", "the kernel: a nested list, a .npy path or an array; "
                                        "one dimension per spatial axis"),
         MODE, CVAL, ORIGIN),
        halo=_weights_halo, check=_weights_check(_name),
        at_level=_same_kernel_note(_name, "weights"),
        fast=getattr(_kernels_correlate, _name),
        description=f"{_text}; output in the input's dtype, as scipy gives it",
        output=True, complex_input=True, dtype=_correlation_dtype,
    ))

# ------------------------------------------------------------ rank and generic filters


def _footprint(footprint, where: str):
    return None if footprint is None else kernel_array(footprint, where) != 0


def _window_shape(params) -> tuple[int, ...]:
    fp = params["footprint"]
    return tuple(params["size"]) if fp is None else kernel_array(fp).shape


def _window_check(name: str, params, axes: str) -> int:
    """The footprint's and origin's rules; returns the number of voxels in the window."""
    fp = _footprint(params["footprint"], f"{name}: footprint")
    if fp is None:
        shape = tuple(params["size"])
        count = math.prod(shape)
    else:
        _kernel_check(f"{name}: footprint", fp, axes)
        shape, count = fp.shape, int(fp.sum())
        if count == 0:
            raise ValueError(f"{name}: footprint has no nonzero element (shape {fp.shape})")
    _origin_check(name, params["origin"], shape, axes)
    return count


def _check_rank(params, axes: str) -> None:
    count = _window_check("rank_filter", params, axes)
    if not -count <= params["rank"] < count:
        raise ValueError(f"rank_filter: rank {params['rank']} must be between {-count} and "
                         f"{count - 1} for a window of {count} voxels (negative ranks count "
                         f"from the largest)")


def _window_halo_of(params, n: int) -> tuple[int, ...]:
    return _window_halo(_window_shape(params), params["origin"])


def _rank_filter(b, rank, size, footprint, mode, cval, origin, output=None):
    fp = _footprint(footprint, "rank_filter: footprint")
    if fp is not None:
        fp, size = array_module(b).asarray(fp), None
    return ndimage_for(b).rank_filter(b, rank, size=size, footprint=fp,
                                      output=output_dtype(output), mode=mode, cval=cval,
                                      origin=origin)


def _rank_nan(params, n: int) -> tuple[bool, ...]:
    fp = _footprint(params["footprint"], "rank_filter: footprint")
    count = math.prod(params["size"]) if fp is None else int(fp.sum())
    return rank_history(int(params["rank"]), count, n)


def _rank_filter_fast(b, crop, rank, size, footprint, mode, cval, origin):
    """A box window, centred: the sliding-window rank kernel (an order statistic of the
    block's own values, so exactly scipy's); a footprint or an origin: scipy."""
    if footprint is not None or any(int(o) for o in np.atleast_1d(origin)):
        return None
    return _rank_kernels.rank(b, crop, size, lambda n: rank + n if rank < 0 else rank, mode, cval)


FOOTPRINT_HELP = ("the window's shape (nonzero is in the window): a nested list, a .npy "
                  "path or an array; replaces size")

register(Op(
    "rank_filter", "smoothing", _rank_filter,
    (Param("rank", int, 0, integral=True,
           help="which value of the sorted window: 0 the smallest, -1 the largest"),
     SIZE, kernel_param("rank_filter", "footprint", FOOTPRINT_HELP), MODE, CVAL, ORIGIN),
    halo=_window_halo_of, check=_check_rank, at_level=_same_kernel_note("rank_filter",
                                                                        "footprint"),
    fast=_rank_filter_fast, nan_history=_rank_nan,
    description="the rank-th value of a window (scipy.ndimage.rank_filter)",
    output=True, complex_input=False,
))


_FROM_PYTHON = ("a pipeline's JSON cannot hold a Python function, so generic_filter runs "
                "from Python only: lp.apply('generic_filter', data, function=np.ptp, size=3)")


def low_level(value) -> bool:
    """Whether ``value`` is a C function as scipy.ndimage takes it: a
    ``scipy.LowLevelCallable`` or a bare ``PyCapsule``; scipy runs it on each block."""
    from scipy import LowLevelCallable

    return isinstance(value, LowLevelCallable) or type(value).__name__ == "PyCapsule"


def is_function(value) -> bool:
    """A Python callable (not a class) or a C function scipy takes (``low_level``)."""
    return (callable(value) and not isinstance(value, type)) or low_level(value)


def python_function(value) -> Callable:
    """``generic_filter``'s function: any Python callable, or a ``LowLevelCallable``."""
    if callable(value) or low_level(value):
        return value
    got = "nothing" if value is None else f"{type(value).__name__} {value!r}"
    raise ValueError(f"generic_filter: function must be a Python function (got {got}); "
                     f"{_FROM_PYTHON}")


def arguments(value) -> tuple:
    """``extra_arguments``: a tuple of positional arguments."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"generic_filter: extra_arguments must be a tuple of arguments "
                         f"(got {type(value).__name__})")
    return tuple(value)


def keywords(value) -> tuple:
    """``extra_keywords``: a dict, kept as sorted (name, value) pairs (hashable)."""
    if isinstance(value, Mapping):
        value = value.items()
    try:
        pairs = [(str(k), v) for k, v in value]
    except (TypeError, ValueError):
        raise ValueError(f"generic_filter: extra_keywords must be a dict of keyword "
                         f"arguments (got {type(value).__name__})") from None
    return tuple(sorted(pairs, key=lambda kv: kv[0]))


def _generic_filter(b, function, size, footprint, mode, cval, origin, extra_arguments,
                    extra_keywords, output=None):
    fp = _footprint(footprint, "generic_filter: footprint")
    if fp is not None:
        size = None
    return ndimage_for(b).generic_filter(
        b, function, size=size, footprint=fp, output=output_dtype(output), mode=mode,
        cval=cval, origin=origin,
        extra_arguments=tuple(extra_arguments or ()),
        extra_keywords=dict(extra_keywords or ()))


def _check_generic(params, axes: str) -> None:
    if params["function"] is None:
        python_function(None)
    _window_check("generic_filter", params, axes)


register(Op(
    "generic_filter", "smoothing", _generic_filter,
    (Param("function", python_function, None, optional=True, quantity="python",
           help="a Python function of the window's values (a 1-D array) returning a number, "
                "or a scipy.LowLevelCallable; from Python only: a pipeline's JSON cannot "
                "hold it"),
     SIZE, kernel_param("generic_filter", "footprint", FOOTPRINT_HELP), MODE, CVAL, ORIGIN,
     Param("extra_arguments", arguments, None, optional=True, quantity="python",
           help="more positional arguments of function"),
     Param("extra_keywords", keywords, None, optional=True, quantity="python",
           help="keyword arguments of function")),
    halo=_window_halo_of, check=_check_generic, on_gpu=False,
    at_level=_same_kernel_note("generic_filter", "footprint"),
    description="a Python function of each window (scipy.ndimage.generic_filter); from "
                "Python only, on the CPU",
    output=True, complex_input=False,
))

# ------------------------------------------------------------------------------ JSON


def json_step(step: Mapping[str, Any], index: int | None = None, *,
              functions: str = "refuse") -> dict[str, Any]:
    """A pipeline step as JSON can hold it: arrays as nested lists; a Python function
    refused.

    Parameters
    ----------
    step : mapping
        ``{"op": name, **params}``.
    index : int, optional
        The step's place in its pipeline, for the message.
    functions : {"refuse", "name"}
        A Python function: a ``ValueError`` (a pipeline to reload), or its qualified
        name as text (provenance, which records what ran but is not reloaded).

    Returns
    -------
    dict
        The step with numpy arrays and scalars as lists and numbers.

    Raises
    ------
    ValueError
        For a value JSON cannot hold (a ``generic_filter``'s function), naming the step,
        the parameter and the value.
    """
    out: dict[str, Any] = {}
    where = f"pipeline step {index} ({step.get('op')})" if index is not None else (
        f"step {step.get('op')}")
    for key, value in step.items():
        if is_function(value):
            fn = getattr(value, "__qualname__", None) or type(value).__name__
            module = getattr(value, "__module__", None) if callable(value) else None
            if functions == "name":
                out[key] = f"python:{module + '.' if module else ''}{fn}"
                continue
            raise ValueError(
                f"{where}: {key}={module + '.' if module else ''}{fn} is a Python "
                f"function, which JSON cannot hold; a pipeline with it runs from Python "
                f"but cannot be saved or reloaded")
        if isinstance(value, np.ndarray) or isinstance(value, np.generic):
            value = value.tolist()
        out[key] = _complex_as_text(value)
    return out


def _complex_as_text(value):
    """Complex numbers (a cval, complex weights) as their text, ``"(1+2j)"``, which
    JSON holds and the parameters read back."""
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [_complex_as_text(v) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def pipeline_json(steps: Sequence[Mapping[str, Any]]) -> str:
    """``steps`` as JSON text (see ``json_step``): what ``Pipeline.to_json`` writes.

    Raises
    ------
    ValueError
        For a step holding a Python function, naming the step and the function.
    """
    return json.dumps([json_step(s, i) for i, s in enumerate(steps)])


def provenance_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``steps`` as an export records them: JSON values, a Python function by its name
    (``"python:numpy.ptp"``): what ran, for reading, not for reloading.

    Parameters
    ----------
    steps : sequence of mapping
        A result's ``steps``.

    Returns
    -------
    list of dict
    """
    return [json_step(s, i, functions="name") for i, s in enumerate(steps)]

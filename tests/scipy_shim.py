"""A pytest plugin that runs scipy's own ndimage tests through napari_lazyproc.

Loaded with ``-p scipy_shim`` into a pytest run of ``scipy.ndimage.tests``: before the
test modules are imported it replaces the public functions of ``scipy.ndimage`` with
wrappers. A wrapper calls scipy's real function (the reference, which it returns, so
scipy's assertions run as before), maps the call to one of our operations
(``scipy_shim_map.route``), runs ``lp.apply`` on the input stored as an in-memory zarr
array with chunks of 3 to 7 voxels (so every halo crosses chunks), reads the result
chunk by chunk (``to_dask``, one task per output chunk, as an export does) in both
precisions and compares it with the reference under the precision contract. A call
that uses an argument we do not support is counted as unsupported, by argument.

The tally is written as JSON to ``$SCIPY_SHIM_REPORT`` at the end of the run
(``tests/test_scipy_ndimage_suite.py`` reads it).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
import time
import zlib
from collections import Counter

import numpy as np
import scipy.ndimage
from scipy_shim_args import Unsupported
from scipy_shim_map import EXACT_IN_FAST, route

#: the functions routed to our operations, or counted as having none
WRAPPED = (
    "gaussian_filter", "gaussian_filter1d", "uniform_filter", "uniform_filter1d",
    "minimum_filter", "minimum_filter1d", "maximum_filter", "maximum_filter1d",
    "median_filter", "percentile_filter", "rank_filter", "generic_filter",
    "correlate", "correlate1d", "convolve", "convolve1d", "sobel", "prewitt", "laplace",
    "gaussian_laplace", "gaussian_gradient_magnitude", "generic_filter1d",
    "generic_laplace", "generic_gradient_magnitude", "vectorized_filter",
    "grey_erosion", "grey_dilation", "grey_opening", "grey_closing", "white_tophat",
    "black_tophat", "morphological_gradient", "morphological_laplace",
    "binary_erosion", "binary_dilation", "binary_opening", "binary_closing",
    "binary_fill_holes", "binary_hit_or_miss", "binary_propagation",
    "distance_transform_edt", "distance_transform_cdt", "distance_transform_bf",
    "label", "zoom", "shift", "affine_transform", "rotate", "map_coordinates",
    "geometric_transform", "spline_filter", "spline_filter1d",
)
PRECISIONS = ("exact", "fast")
#: at most this many chunks: a larger input (scipy's few big-array tests) gets larger
#: chunks, its halos still crossing chunk borders (in chunks of a few voxels it would
#: take minutes)
MAX_CHUNKS = 256

#: held while a call is checked: our engine's own scipy calls (any thread), and calls
#: of scipy's threaded tests meanwhile, pass straight through
_gate = threading.Lock()
_calls = 0
_node = ""
tally: Counter = Counter()  # (function, op, status, detail) -> calls
differences: list[dict] = []
outcomes: Counter = Counter()  # scipy's tests: passed, failed, skipped
seconds: Counter = Counter()  # time spent on our side, by scipy test
_answers: list[bool] = []  # whether each fast-kernel call of this check answered


def _rng() -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(_node.encode()) + _calls)


def _regions(shape, rng) -> list[tuple[slice, ...]]:
    """The output in up to 2**ndim boxes: each axis cut once at a random place, so each
    box has an edge inside the array on every axis, where its halo is read across."""
    cuts = [[0, *([int(rng.integers(1, n))] if n > 1 else []), n] for n in shape]
    return [tuple(slice(c[i], c[i + 1]) for c, i in zip(cuts, index, strict=True))
            for index in np.ndindex(*(len(c) - 1 for c in cuts))]


def _ours(call, x: np.ndarray, precision: str) -> np.ndarray:
    """The operation on ``x`` stored as an in-memory zarr array in chunks of 3 to 7
    voxels, read box by box as napari reads a result (``result[box]``)."""
    import zarr

    import napari_lazyproc as lp

    rng = _rng()

    def stored(values):
        z = zarr.create_array(zarr.storage.MemoryStore(), shape=values.shape,
                              dtype=values.dtype, chunks=_chunks(values.shape, rng),
                              fill_value=None)
        z[...] = values
        return z

    # a mask is a second image, in chunks of its own
    params = {k: stored(v) if k == "mask" else v for k, v in call.params.items()}
    res = lp.apply(call.op, stored(x), axes=call.axes, data_axes=call.data_axes,
                   precision=precision, **params)
    out = np.empty(res.shape, res.dtype)
    for box in _regions(res.shape, rng):
        out[box] = np.asarray(res[box])
    return out


def _chunks(shape, rng) -> tuple[int, ...]:
    """3 to 7 voxels per axis, larger where that would make over ``MAX_CHUNKS`` chunks
    (each axis at most ``MAX_CHUNKS ** (1 / ndim)`` chunks long)."""
    most = max(2, int(MAX_CHUNKS ** (1 / max(1, len(shape)))))
    return tuple(int(min(n, max(rng.integers(3, 8), -(-n // most)))) or 1 for n in shape)


def _same_labels(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]).astype(np.int64), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def compare(op: str, ours: np.ndarray, ref: np.ndarray, precision: str,
            tolerance: float = 1e-6) -> str | None:
    """None when ``ours`` meets the contract for ``ref``, else what differs."""
    if ours.shape != ref.shape:
        return f"shape {ours.shape} != {ref.shape}"
    if ours.dtype != ref.dtype:  # the values are compared too, as scipy's dtype holds them
        why = compare(op, ours.astype(ref.dtype), ref, precision, tolerance)
        return f"dtype {ours.dtype} != {ref.dtype}" + ("" if why is None else f", {why}")
    if op == "label":
        return None if _same_labels(ours, ref) else "labels differ"
    if precision == "exact" or op in EXACT_IN_FAST or ref.dtype.kind in "bc":
        if ours.tobytes() == ref.tobytes():
            return None
        if precision == "fast" and np.array_equal(ours, ref, equal_nan=ref.dtype.kind == "f"):
            return None  # equal values (0.0 and -0.0) meet the fast contract
        return f"not bitwise equal: {_max_diff(ours, ref)}"
    if ref.dtype.kind in "iu":
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        return None if diff.max(initial=0) <= 1 else f"{diff.max():g} grey levels"
    finite = np.isfinite(ref)
    if not np.array_equal(finite, np.isfinite(ours)) or not np.array_equal(
            ours[~finite], ref[~finite], equal_nan=True):
        return "NaN or infinite values differ"
    scale = np.abs(ref[finite]).max(initial=0.0)
    diff = np.abs(ours[finite].astype(np.float64) - ref[finite]).max(initial=0.0)
    return None if diff <= tolerance * scale else f"max diff {diff:.3g} (max |ref| {scale:.3g})"


def _max_diff(a, b) -> str:
    if a.dtype.kind in "biuf":
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d = d[~np.isnan(d)]
        return f"max diff {d.max(initial=0):.3g} in {int((a != b).sum())} voxels"
    return "values differ"


def _check(name: str, bound: dict, x, ref) -> None:
    start = time.perf_counter()
    try:
        _compare_call(name, bound, x, ref)
    finally:
        seconds[_node] += time.perf_counter() - start


def _compare_call(name: str, bound: dict, x, ref) -> None:
    try:
        call = route(name, bound, x)
    except Unsupported as exc:
        tally[name, exc.op, "unsupported", f"{exc.arg}: {exc.why}"] += 1
        return
    except Exception as exc:  # noqa: BLE001 - the shim's own bug: reported, scipy goes on
        what = f"shim: {type(exc).__name__}: {str(exc)[:150]}"
        tally[name, "", "error", what] += 1
        for precision in PRECISIONS:
            differences.append({"function": name, "op": "", "precision": precision,
                                "dtype": str(x.dtype), "shape": list(x.shape), "why": what,
                                "error": True, "test": _node})
        return
    ref = np.asarray(ref)
    for precision in PRECISIONS:
        _answers.clear()
        try:
            ours = _ours(call, x, precision)
        except ValueError as exc:  # our validation refuses what scipy accepts
            tally[name, call.op, "rejected", str(exc).split(";")[0][:110]] += 1
            return
        except Exception as exc:  # noqa: BLE001 - a crash is counted and reported
            what = f"{type(exc).__name__}: {str(exc)[:150]}"
            tally[name, call.op, "error", what] += 1
            differences.append(_record(name, call, x, precision, what, error=True))
            return
        why = compare(call.op, ours, ref, precision)
        status = f"{precision} equal" if why is None else f"{precision} differs"
        tally[name, call.op, status, _fast_detail(precision)] += 1
        if why is not None:
            differences.append(_record(name, call, x, precision, why))


def _fast_detail(precision: str) -> str:
    """Whether a fast kernel answered (a kernel may decline and leave it to scipy)."""
    if precision != "fast":
        return ""
    answered = any(_answers)
    _answers.clear()
    return "fast kernel" if answered else "scipy (no fast kernel answered)"


def _spy(kernel):
    @functools.wraps(kernel)
    def recorded(*args, **kwargs):
        out = kernel(*args, **kwargs)
        _answers.append(out is not None)
        return out

    return recorded


def _record(name, call, x, precision, why, error=False) -> dict:
    params = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
              for k, v in call.params.items() if not callable(v)}
    return {"function": name, "op": call.op, "precision": precision, "dtype": str(x.dtype),
            "shape": list(x.shape), "axes": call.axes, "params": repr(params)[:300],
            "why": why, "error": error, "test": _node}


def wrap(name: str, original):
    sig = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if not _gate.acquire(blocking=False):
            return original(*args, **kwargs)
        try:
            return checked(*args, **kwargs)
        finally:
            _gate.release()

    def checked(*args, **kwargs):
        global _calls
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:
            return original(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        first = next(iter(sig.parameters))
        try:
            x = np.array(values[first], copy=True)  # ``output`` may be the input itself
        except Exception:  # noqa: BLE001 - not an array: scipy says what is wrong
            x = None
        ref = original(*args, **kwargs)  # raises where scipy refuses the call
        _calls += 1
        if x is None:
            tally[name, "", "unsupported", "input: not an array"] += 1
            return ref
        out = values.get("output")
        values = {**values, **values.pop("kwargs", {})}
        _check(name, values, x, out if isinstance(out, np.ndarray) else
               ref[0] if name == "label" and isinstance(ref, tuple) else ref)
        return ref

    return wrapper


# ------------------------------------------------------------------ pytest hooks


def pytest_configure(config):
    import dataclasses

    from scipy._lib._array_api import xp_capabilities_table as table

    # imported before the patch, so the names it imports from scipy stay scipy's
    from napari_lazyproc.ops import REGISTRY

    for name, op in list(REGISTRY.items()):  # to count the calls a fast kernel answered
        if op.fast is not None:
            REGISTRY[name] = dataclasses.replace(op, fast=_spy(op.fast))
    for name in WRAPPED:
        original = getattr(scipy.ndimage, name)
        setattr(scipy.ndimage, name, wrapper := wrap(name, original))
        if original in table:  # scipy's test decorators look functions up there
            table[wrapper] = table[original]


def pytest_runtest_setup(item):
    global _node
    _node = item.nodeid


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        outcomes[report.outcome] += 1
        if report.outcome == "failed":
            outcomes["failed: " + report.nodeid] += 1


def pytest_sessionfinish(session):
    path = os.environ.get("SCIPY_SHIM_REPORT")
    if not path:
        return
    rows = [{"function": f, "op": o, "status": s, "detail": d, "calls": n}
            for (f, o, s, d), n in sorted(tally.items())]
    with open(path, "w") as fh:
        json.dump({"calls": _calls, "tally": rows, "differences": differences,
                   "outcomes": dict(outcomes), "seconds": dict(seconds.most_common(40)),
                   "total_seconds": sum(seconds.values())}, fh, indent=1)

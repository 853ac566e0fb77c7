"""A pytest plugin that runs dask-image's own tests on napari_lazyproc's operations.

Loaded with ``-p dask_image_shim`` into a pytest run of dask-image's test suite (its
``tests/test_dask_image/test_ndfilters``, ``test_ndmorph`` and ``test_ndmeasure``): before
the test modules are imported it replaces the public functions of
``dask_image.ndfilters``, ``dask_image.ndmorph`` and ``dask_image.ndmeasure.label`` with
wrappers. A wrapper first calls dask-image's function (so its argument checks raise as
before), maps the call to one of our operations as the scipy shim does
(``scipy_shim_map.route``: dask-image's functions take scipy's arguments), runs it on the
input in chunks of 3 to 7 voxels (``label``: the global job, ``wrap_axes`` as axis
letters) and **returns our result** in place of dask-image's, with dask-image's chunks: so
dask-image's assertions test our values. Each routed call is also compared with
dask-image's own result in both precisions (``scipy_shim.compare``). A call with an
argument we do not route returns dask-image's result and is counted, by argument.

The tally is written as JSON to ``$DASK_IMAGE_SHIM_REPORT`` at the end of the run
(``tests/test_dask_image_suite.py`` reads it).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
from collections import Counter

import numpy as np
import scipy.ndimage
from scipy_shim import _chunks, _ours, compare
from scipy_shim_args import Unsupported
from scipy_shim_map import route

#: dask-image's names that are not scipy's
SCIPY_NAMES = {"gaussian": "gaussian_filter"}
#: dask-image functions with no operation of ours, and why
NOT_OURS = {"threshold_local": "dask-image returns the threshold image; ours is the mask "
                               "(image > threshold)"}

_gate = threading.Lock()
tally: Counter = Counter()  # (function, op, status, detail) -> calls
differences: list[dict] = []
outcomes: Counter = Counter()
_node = ""


def _numpy(value):
    """A dask array argument (a structure, a mask, a block size) as numpy."""
    return np.asarray(value) if hasattr(value, "compute") else value


def _scipy_arguments(name: str, values: dict, x: np.ndarray) -> dict:
    """dask-image's bound arguments over scipy's defaults for the same function."""
    sig = inspect.signature(getattr(scipy.ndimage, name))
    out = {k: p.default for k, p in sig.parameters.items()
           if p.default is not inspect.Parameter.empty}
    out.update({k: _numpy(v) for k, v in values.items()})
    out["input"] = x
    return out


def _label(call, x, values, precision):
    """Our global labels (scipy's int32, as dask-image gives) and their number."""
    import napari_lazyproc as lp

    wrap = values.get("wrap_axes")
    params = dict(call.params, scope="global", output="int32")
    if wrap is not None:
        params["wrap_axes"] = "".join(call.data_axes[int(a) % x.ndim] for a in wrap)
    rng = np.random.default_rng(x.size)
    chunks = _chunks(x.shape, rng)
    import dask.array as da

    job = lp.apply("label", da.from_array(x, chunks=chunks), axes=call.axes,
                   data_axes=call.data_axes, **params).run()
    return np.asarray(job), job.n_labels


def wrap(name: str, original):
    sig = inspect.signature(original)
    scipy_name = SCIPY_NAMES.get(name, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        ref = original(*args, **kwargs)  # dask-image's checks raise here, as before
        if not _gate.acquire(blocking=False):
            return ref
        try:
            return _ours_instead(args, kwargs, ref)
        finally:
            _gate.release()

    def _ours_instead(args, kwargs, ref):
        import dask.array as da

        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.update(values.pop("kwargs", {}))
        x = np.asarray(values.pop(next(iter(sig.parameters))))
        if name in NOT_OURS:
            tally[name, "", "unsupported", f"function: {NOT_OURS[name]}"] += 1
            return ref
        try:
            call = route(scipy_name, _scipy_arguments(scipy_name, values, x), x)
        except Unsupported as exc:
            tally[name, exc.op, "unsupported", f"{exc.arg}: {exc.why}"] += 1
            return ref
        theirs = ref[0] if name == "label" else ref
        try:
            expected = np.asarray(theirs)
        except Exception as exc:  # noqa: BLE001 - a test of dask-image's laziness only
            tally[name, call.op, "unsupported",
                  f"input: dask-image's own result fails when computed "
                  f"({type(exc).__name__}); the test never computes it"] += 1
            return ref
        ours = None
        for precision in ("exact", "fast"):
            try:
                if name == "label":
                    got, n = _label(call, x, values, precision)
                else:
                    got = _ours(call, x, precision)
            except ValueError as exc:  # our validation refuses what dask-image accepts
                tally[name, call.op, "rejected", str(exc).split(";")[0][:110]] += 1
                return ref
            except Exception as exc:  # noqa: BLE001 - counted, and dask-image's returned
                what = f"{type(exc).__name__}: {str(exc)[:150]}"
                tally[name, call.op, "error", what] += 1
                differences.append({"function": name, "precision": precision,
                                    "why": what, "test": _node})
                return ref
            why = compare(call.op, got, expected, precision)
            if name == "label" and why is None and n != int(ref[1].compute()):
                why = f"{n} labels, dask-image {int(ref[1].compute())}"
            status = f"{precision} equal" if why is None else f"{precision} differs"
            tally[name, call.op, status, ""] += 1
            if why is not None:
                differences.append({"function": name, "op": call.op, "precision": precision,
                                    "why": why, "params": repr(call.params)[:200],
                                    "test": _node})
            if precision == "fast":
                ours = got
        result = da.from_array(ours, chunks=theirs.chunks)
        return (result, da.from_array(np.asarray(n))) if name == "label" else result

    return wrapper


# ------------------------------------------------------------------ pytest hooks


def pytest_configure(config):
    import dask_image.ndfilters
    import dask_image.ndmeasure
    import dask_image.ndmorph

    for module in (dask_image.ndfilters, dask_image.ndmorph):
        for name in module.__all__:
            original = getattr(module, name)
            if callable(original):
                setattr(module, name, wrap(name, original))
    dask_image.ndmeasure.label = wrap("label", dask_image.ndmeasure.label)


def pytest_runtest_setup(item):
    global _node
    _node = item.nodeid


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        outcomes[report.outcome] += 1
        if report.outcome == "failed":
            outcomes["failed: " + report.nodeid] += 1


def pytest_sessionfinish(session):
    path = os.environ.get("DASK_IMAGE_SHIM_REPORT")
    if not path:
        return
    rows = [{"function": f, "op": o, "status": s, "detail": d, "calls": n}
            for (f, o, s, d), n in sorted(tally.items())]
    with open(path, "w") as fh:
        json.dump({"tally": rows, "differences": differences,
                   "outcomes": dict(outcomes)}, fh, indent=1)

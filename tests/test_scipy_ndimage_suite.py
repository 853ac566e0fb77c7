"""scipy's own ndimage tests, with every call of a filter, morphology, label or transform
also run through our operations on tiny chunks and compared with scipy's answer.

``scipy_shim`` (a pytest plugin, ``tests/scipy_shim.py``) runs in a pytest subprocess over
scipy's ``test_filters``, ``test_morphology``, ``test_measurements`` (``label`` only is
routed), ``test_interpolation`` and ``test_datatypes`` (``zoom``, ``shift``,
``affine_transform``, ``rotate``) and ``test_c_api``; see its docstring. This file asserts
on its tally: scipy's tests still pass, no routed call differs from scipy beyond the
precision contract in either precision, and at least ``MIN_ROUTED`` calls were routed,
so a routing that silently broke fails here. The table of calls we do not route, by
function and argument, is printed (``pytest -s``; docs/scipy_parity.md keeps a copy):
the input for parity work.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import background
import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy_shim import compare
from scipy_shim_args import Unsupported
from scipy_shim_map import route

HERE = Path(__file__).parent
MODULES = ("test_filters", "test_morphology", "test_measurements", "test_interpolation",
           "test_datatypes", "test_c_api")
#: calls routed and compared, per precision: 11751 measured (scipy 1.17.1; 11400 before
#: 0-D inputs, 4+ spatial axes, large inputs and vectorized_filter; 3699 before wrap,
#: per-axis modes, Gaussian orders, complex data, correlate1d / convolve1d); a floor a
#: little below (scipy's threaded tests route 1 to 4 calls each), so a lost family shows
MIN_ROUTED = 11600
#: of those, under "fast", calls where a fast kernel answered (3580 measured; the others
#: have no fast kernel, or it declined: a footprint, an origin, a dtype it lacks, complex)
MIN_FAST_KERNEL = 3450

def _suite(tmp: Path) -> dict:
    """scipy's tests under the shim, in a pytest subprocess: its tally."""
    (tmp / "pytest.ini").write_text("[pytest]\n")  # not our pytest settings
    report = tmp / "report.json"
    env = {**os.environ, "SCIPY_SHIM_REPORT": str(report),
           "SCIPY_HYPOTHESIS_PROFILE": "deterministic",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # no napari, Qt or Xvfb plugins
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    env.pop("SCIPY_ARRAY_API", None)  # numpy only
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
            "scipy_shim", "-p", "_hypothesis_pytestplugin", "-W",
            "ignore::pytest.PytestUnknownMarkWarning", "--pyargs",
            *(f"scipy.ndimage.tests.{m}" for m in MODULES)]
    run = background.run(args, cwd=tmp, env=env, timeout=900)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(report.read_text())
    out["log"] = run.stdout[-3000:]
    return out


#: started with the session, beside the other tests (tests/background.py)
pytestmark = pytest.mark.background.with_args(_suite)


@pytest.fixture(scope="module")
def tally() -> dict:
    return background.result(_suite)


def _count(tally: dict, *statuses: str) -> int:
    return sum(r["calls"] for r in tally["tally"] if r["status"] in statuses)


@pytest.mark.slow
def test_scipy_tests_still_pass(tally):
    """The shim returns scipy's own answers, so scipy's tests pass as without it."""
    failed = [k for k in tally["outcomes"] if k.startswith("failed: ")]
    assert not failed, tally["log"]
    assert tally["outcomes"].get("passed", 0) > 5000


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_calls_are_routed(tally, precision):
    routed = _count(tally, f"{precision} equal", f"{precision} differs",
                    "exact within 1e-12 (spline prefilter)" if precision == "exact" else "")
    assert routed >= MIN_ROUTED
    families = {r["op"] for r in tally["tally"] if r["status"] == f"{precision} equal"}
    assert {"gaussian", "median", "correlate", "generic_filter", "rank_filter", "laplace",
            "binary_dilation", "affine_transform", "zoom", "shift", "rotate", "correlate1d",
            "convolve1d", "generic_filter1d", "vectorized_filter", "label"} <= families
    if precision == "fast":
        kernel = sum(r["calls"] for r in tally["tally"] if r["detail"] == "fast kernel")
        assert kernel >= MIN_FAST_KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_no_routed_call_differs(tally, precision):
    """Our result on tiny chunks meets the contract for every call we route (crashes
    included)."""
    differs = [d for d in tally["differences"] if d["precision"] == precision]
    assert not differs, "\n".join(json.dumps(d) for d in differs[:20])


@pytest.mark.slow
def test_unsupported_table(tally):
    """Print the calls we do not route, by function and argument, and the calls routed."""
    table = defaultdict(int)
    for r in tally["tally"]:
        if r["status"] in ("unsupported", "rejected", "skipped"):
            table[r["function"], r["status"], r["detail"]] += r["calls"]
    print(f"\n{'function':28} calls  why not routed")
    for (f, status, detail), n in sorted(table.items()):
        print(f"{f:28} {n:5d}  {status}: {detail}")
    routed, kernel = defaultdict(int), defaultdict(int)
    for r in tally["tally"]:
        if r["status"].startswith("fast "):
            routed[r["function"], r["op"]] += r["calls"]
            kernel[r["function"], r["op"]] += r["calls"] * (r["detail"] == "fast kernel")
    print(f"\n{'function':28} {'operation':28} routed  fast kernel answered")
    for (f, op), n in sorted(routed.items()):
        print(f"{f:28} {op:28} {n:6d}  {kernel[f, op]:6d}")
    assert ("spline_filter", "unsupported", "function: no operation") in table


# ------------------------------------------------------------------ the shim itself


def _args(name: str, *args, **kwargs) -> dict:
    import inspect

    bound = inspect.signature(getattr(ndi, name)).bind(*args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    return {**values, **values.pop("kwargs", {})}


def test_route_maps_scipy_arguments():
    x = np.zeros((4, 5, 6), np.float32)
    call = route("gaussian_filter", _args("gaussian_filter", x, (1.0, 2.0), axes=(0, 2),
                                          mode="grid-mirror"), x)
    assert (call.op, call.axes, call.data_axes) == ("gaussian", (0, 2), "ytx")
    assert call.params["sigma"] == [1.0, 2.0] and call.params["mode"] == "grid-mirror"
    call = route("gaussian_filter", _args("gaussian_filter", x, 1.0, order=(0, 1, 2),
                                          mode=["wrap", "nearest", "reflect"]), x)
    assert call.params["order"] == [0, 1, 2]
    assert call.params["mode"] == ["wrap", "nearest", "reflect"]
    call = route("correlate1d", _args("correlate1d", x, [1, 2], axis=-2, origin=-1), x)
    assert (call.op, call.params["axis"], call.params["origin"]) == ("correlate1d", 1, -1)
    cross = ndi.generate_binary_structure(3, 1)
    call = route("minimum_filter", _args("minimum_filter", x, footprint=cross), x)
    assert call.op == "rank_filter" and call.params["rank"] == 0
    call = route("median_filter", _args("median_filter", x, size=3), x)
    assert (call.op, call.params["size"]) == ("median", [3, 3, 3])
    call = route("grey_erosion", _args("grey_erosion", x, size=(3, 5, 3)), x)
    assert call.params["footprint"] == "box" and call.params["radius"] == [1, 2, 1]
    call = route("binary_erosion", _args("binary_erosion", x), x)
    assert call.params == {"footprint": "ball", "radius": [1, 1, 1]}
    call = route("label", _args("label", x, np.ones((3, 3, 3))), x)
    assert call.params == {"connectivity": 3}


def test_route_maps_masks_subsets_and_term_order():
    x = np.zeros((6, 7), np.uint8)
    mask = np.ones((6, 7), bool)
    call = route("binary_dilation", _args("binary_dilation", x, mask=mask), x)
    assert call.params["mask"] is not None and call.params["mask"].shape == (6, 7)
    # scipy 1.17 smooths every axis: both spatial, the derivative along axis 1 only
    call = route("gaussian_gradient_magnitude",
                 _args("gaussian_gradient_magnitude", x, 1.0, axes=(1,)), x)
    assert (call.axes, call.data_axes) == ((1,), "yx")
    call = route("gaussian_laplace", _args("gaussian_laplace", x, 1.0, axes=(1, 0)), x)
    assert call.axes == (1, 0)


@pytest.mark.parametrize("name, kwargs, arg", [
    ("median_filter", {"size": 3, "mode": ("wrap", "nearest")}, "mode"),
    ("binary_dilation", {"iterations": 0}, "iterations"),
])
def test_route_refuses_what_we_lack(name, kwargs, arg):
    """(scipy's integer output of an edge filter is no longer one: ``output=`` gives it,
    see test_route_passes_scipy_s_output_dtype.)"""
    x = np.zeros((6, 7), np.uint8)
    with pytest.raises(Unsupported) as info:
        route(name, _args(name, x, **kwargs), x)
    assert info.value.arg == arg


def test_route_passes_scipy_s_output_dtype():
    x = np.zeros((6, 7), np.uint8)
    call = route("sobel", _args("sobel", x), x)
    assert call.params["output"] == "uint8"  # scipy keeps the input's dtype; ours is float


def test_compare_holds_the_contract():
    ref = np.linspace(-1, 1, 24, dtype=np.float64).reshape(4, 6)
    ulp = np.nextafter(ref, np.inf)
    assert compare("gaussian", ref.copy(), ref, "exact") is None
    assert "bitwise" in compare("gaussian", ulp, ref, "exact")
    assert compare("gaussian", ulp, ref, "fast") is None
    assert "max diff" in compare("gaussian", ref + 2e-6, ref, "fast")
    assert "bitwise" in compare("median", ulp, ref, "fast")  # order statistics: exact
    zero = np.zeros(3)
    assert compare("correlate", -zero, zero, "exact") is not None  # -0.0 is not 0.0
    ints = np.arange(6, dtype=np.uint8)
    assert compare("gaussian", ints + 1, ints, "fast") is None
    assert compare("gaussian", ints + 2, ints, "fast") is not None
    labels = np.array([0, 1, 1, 0, 2], np.int32)
    assert compare("label", np.array([0, 2, 2, 0, 1], np.int32), labels, "exact") is None
    assert compare("label", np.array([0, 2, 1, 0, 1], np.int32), labels, "exact") is not None
    assert compare("label", labels.astype(np.uint32), labels, "exact") == \
        "dtype uint32 != int32"

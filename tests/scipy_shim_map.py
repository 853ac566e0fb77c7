"""scipy.ndimage calls as napari_lazyproc operations: ``route(name, arguments, input)``.

Each scipy function maps to one operation (or, for a footprint or an origin our box
filters lack, to ``rank_filter``), its arguments to the operation's parameters: scipy's
integer ``axes`` to our axis letters (``scipy_shim_args``), ``size`` and ``footprint``
to a ball or box ``radius``, ``structure`` to a label ``connectivity``. An argument we
have no parameter for, with anything but scipy's default value, raises ``Unsupported``
naming it; nothing is approximated.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from scipy_shim_args import (
    Call,
    Unsupported,
    frame,
    mode_of,
    origin_zero,
    output_dtype,
    per_axis,
    window,
)
from scipy_shim_vectorized import vectorized

from napari_lazyproc.ops import REGISTRY
from napari_lazyproc.ops.engine._scipy_params import make_footprint

#: exactly equal in "fast" too: order statistics, morphology, thresholds and labels
EXACT_IN_FAST = {name for name, op in REGISTRY.items()
                 if op.category in ("morphology", "binary", "threshold", "labeling")
                 or name in ("median", "minimum", "maximum", "percentile", "rank_filter")}

# ------------------------------------------------------------------ filters


def _sigma_filter(op, axis_arg=None):
    def route(a, x):
        # passes and terms run in ``axes``' order, as scipy's
        ours = op == "gaussian"
        given, axes, data_axes = frame(x, [a[axis_arg]] if axis_arg else a.get("axes"),
                                       None if ours else a)
        if op == "gaussian_gradient_magnitude" and len(given) < x.ndim <= 3:
            data_axes = "zyx"[3 - x.ndim:]  # scipy 1.17 smooths every axis: all spatial
        params = {"sigma": per_axis(a["sigma"], given), "truncate": a.get("truncate", 4.0),
                  "mode": mode_of(a, per_axis=True), "cval": a["cval"]}
        if op == "gaussian":
            params["order"] = per_axis(a.get("order", 0), given)
            if a.get("radius") is not None:
                params["radius"] = per_axis(a["radius"], given)
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), {"sigma", "order", "radius", "truncate",
                                                   axis_arg, "axes", "mode", "cval", "output"}
    return route


def _rank_route(op, rank_of=None, axis_arg=None):
    """Box filters; a footprint or an origin goes to ``rank_filter`` (same values).

    With ``axes`` out of the array's order scipy's separable minimum and maximum pair
    sizes, origins and modes with ``axes`` (as ``lp.apply`` does with integer axes);
    its other rank filters lay the window (a footprint, or a box of ``size``) along the
    axes in the array's order, origins following ``axes`` only for a subset of them."""
    def route(a, x):
        given, axes, data_axes = frame(x, [a[axis_arg]] if axis_arg else a.get("axes"))
        if axis_arg:
            size, fp = (int(a["size"]),), None
        else:
            size, fp = window(a, given)
        params = {"mode": mode_of(a, per_axis=op in ("minimum", "maximum")), "cval": a["cval"]}
        name = op
        box = op in ("minimum", "maximum")  # a box of any origin: ours
        if fp is not None or op == "rank_filter" or (not origin_zero(a) and not box):
            if not isinstance(params["mode"], str):
                raise Unsupported("mode", "one mode per axis, with a footprint or an origin")
            name = "rank_filter"
            count = int(fp.sum()) if fp is not None else int(np.prod(size))
            params.update(rank=rank_of(a, count), origin=per_axis(a.get("origin", 0), given))
            params.update(footprint=fp) if fp is not None else params.update(size=list(size))
        elif op == "percentile":
            params.update(percentile=a["percentile"], size=list(size))
        else:
            params.update(size=list(size))
            if box:
                params["origin"] = per_axis(a.get("origin", 0), given)
        if name not in ("minimum", "maximum") and given != sorted(given):
            axes = tuple(sorted(given))
            if "origin" in params and len(given) < x.ndim and np.ndim(params["origin"]):
                params["origin"] = [params["origin"][given.index(g)] for g in axes]
        output_dtype(a, x, name, params)
        return Call(name, axes, data_axes, params), {
            "size", "footprint", "origin", "mode", "cval", "axes", axis_arg, "output",
            "rank", "percentile"}
    return route


def _percentile_rank(a, count):  # scipy's _rank_filter
    p = a["percentile"] + 100.0 if a["percentile"] < 0 else a["percentile"]
    rank = int(float(count) * p / 100.0)
    return rank - 1 if rank == count else rank


def _uniform(axis_arg=None):
    def route(a, x):
        given, axes, data_axes = frame(x, [a[axis_arg]] if axis_arg else a.get("axes"))
        params = {"size": per_axis(a["size"], given), "mode": mode_of(a, per_axis=True),
                  "cval": a["cval"], "origin": per_axis(a.get("origin", 0), given)}
        output_dtype(a, x, "uniform", params)
        return Call("uniform", axes, data_axes, params), {
            "size", "origin", "mode", "cval", "axes", axis_arg, "output"}
    return route


def _correlation(op, axis_arg=None):
    def route(a, x):
        w = np.asarray(a["weights"])
        given, axes, data_axes = frame(x, [a[axis_arg]] if axis_arg else a.get("axes"))
        if len(given) == x.ndim:  # scipy pairs origins with the array's axes then
            given, axes, data_axes = frame(x, sorted(given))
        params = {"weights": w, "mode": mode_of(a), "cval": a["cval"],
                  "origin": per_axis(a.get("origin", 0), given)}
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), {
            "weights", "origin", "mode", "cval", "axes", axis_arg, "output"}
    return route


def _correlation1d(op):
    """``correlate1d`` / ``convolve1d``: scipy's ``axis`` among the spatial axes (all of
    them up to 3-D; beyond, the one axis is the frame)."""
    def route(a, x):
        if x.ndim <= 3:
            given, axes, data_axes = frame(x, None)
            axis = int(a["axis"]) % x.ndim
        else:
            given, axes, data_axes = frame(x, [a["axis"]])
            axis = 0
        params = {"weights": np.asarray(a["weights"]), "axis": axis, "mode": mode_of(a),
                  "cval": a["cval"], "origin": int(a["origin"])}
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), {
            "weights", "axis", "origin", "mode", "cval", "output"}
    return route


def _generic1d(a, x):
    call, used = _correlation1d("generic_filter1d")(
        {**a, "weights": None}, x)
    call.params.pop("weights")
    call.params.update(function=a["function"], filter_size=int(a["filter_size"]),
                       extra_arguments=tuple(a["extra_arguments"] or ()),
                       extra_keywords=dict(a["extra_keywords"] or {}))
    return call, used | {"function", "filter_size", "extra_arguments", "extra_keywords"}


def _generic(a, x):
    given, axes, data_axes = frame(x, a.get("axes"), a)
    size, fp = window(a, given)
    params = {"function": a["function"], "mode": mode_of(a), "cval": a["cval"],
              "origin": per_axis(a.get("origin", 0), given),
              "extra_arguments": tuple(a["extra_arguments"] or ()),
              "extra_keywords": dict(a["extra_keywords"] or {})}
    params.update(footprint=fp) if fp is not None else params.update(size=list(size))
    output_dtype(a, x, "generic_filter", params)
    return Call("generic_filter", axes, data_axes, params), {
        "function", "size", "footprint", "origin", "mode", "cval", "axes", "output",
        "extra_arguments", "extra_keywords"}


def _edge(op):
    def route(a, x):
        given, axes, data_axes = frame(x, None)
        params = {"mode": mode_of(a, per_axis=True), "cval": a["cval"]}
        if op != "laplace":
            params["axis"] = data_axes[a["axis"] % x.ndim]
        else:
            given, axes, data_axes = frame(x, a.get("axes"), a)
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), {"axis", "axes", "mode", "cval", "output"}
    return route


# ------------------------------------------------------------------ morphology


def _ball_or_box(fp: np.ndarray) -> tuple[str, list[int]] | None:
    """A named window where it is one (odd sides, a box or our ball), else None."""
    if any(n % 2 == 0 or n == 1 for n in fp.shape):
        return None
    radius = [n // 2 for n in fp.shape]
    if fp.all():
        return "box", radius
    if np.array_equal(fp, make_footprint("ball", radius)):
        return "ball", radius
    return None


def _grey(op):
    def route(a, x):
        given, axes, data_axes = frame(x, a.get("axes"), a)
        params = {"mode": mode_of(a), "cval": a["cval"]}
        if not origin_zero(a):
            params["origin"] = per_axis(a.get("origin", 0), given)
        if a.get("structure") is not None:
            params["structure"] = np.asarray(a["structure"])
        if a.get("footprint") is not None:
            fp = np.asarray(a["footprint"]).astype(bool)
            named = None if "structure" in params else _ball_or_box(fp)
            params.update({"footprint": named[0], "radius": named[1]} if named
                          else {"footprint": fp})
        elif "structure" not in params:
            size = per_axis(a["size"], given)
            size = list(size) if np.ndim(size) else [int(size)] * len(given)
            named = _ball_or_box(np.ones(size, bool))
            params.update({"footprint": named[0], "radius": named[1]} if named
                          else {"size": size})
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), {
            "size", "footprint", "structure", "origin", "mode", "cval", "axes", "output"}
    return route


def _binary(op):
    def route(a, x):
        if op != "fill_holes" and a.get("iterations", 1) < 1:
            raise Unsupported("iterations", "< 1: until nothing changes (the whole array)")
        given, axes, data_axes = frame(x, a.get("axes"), a)
        params = {}
        if not origin_zero(a):
            params["origin"] = per_axis(a.get("origin", 0), given)
        s = a.get("structure")
        if s is not None:
            s = np.asarray(s).astype(bool)
            named = None if op == "fill_holes" else _ball_or_box(s)
            params.update({"footprint": named[0], "radius": named[1]} if named
                          else {"structure": s})
        elif op != "fill_holes":
            params.update(footprint="ball", radius=[1] * len(given))
        if op != "fill_holes":
            if a.get("iterations", 1) != 1:
                params["iterations"] = int(a["iterations"])
            if a.get("border_value", 0):
                params["border_value"] = int(a["border_value"])
            if a.get("mask") is not None:
                params["mask"] = np.asarray(a["mask"])
        output_dtype(a, x, op, params, default=bool)
        return Call(op, axes, data_axes, params), {
            "structure", "iterations", "mask", "border_value", "origin", "brute_force",
            "axes", "output"}
    return route


def _hit_or_miss(a, x):
    given, axes, data_axes = frame(x, a.get("axes"), a)
    params = {k: np.asarray(a[k]).astype(bool) for k in ("structure1", "structure2")
              if a.get(k) is not None}
    params["origin1"] = per_axis(a.get("origin1", 0), given)
    if a.get("origin2") is not None:
        params["origin2"] = per_axis(a["origin2"], given)
    output_dtype(a, x, "binary_hit_or_miss", params, default=bool)
    return Call("binary_hit_or_miss", axes, data_axes, params), {
        "structure1", "structure2", "origin1", "origin2", "axes", "output"}


def _label(a, x):
    given, axes, data_axes = frame(x, None)
    s = a.get("structure")
    params = {"connectivity": 1}
    if s is not None:
        s = np.asarray(s).astype(bool)
        found = [c for c in range(1, x.ndim + 1)
                 if s.shape == (3,) * x.ndim
                 and np.array_equal(s, ndi.generate_binary_structure(x.ndim, c))]
        params = {"connectivity": found[0]} if found else {"structure": s}
    output_dtype(a, x, "label", params, default=np.int32)
    return Call("label", axes, data_axes, params), {"structure", "output"}


# ------------------------------------------------------------------ transforms

TRANSFORM_MODES = {m: m for m in REGISTRY["zoom"].param("mode").choices}


def _transform(op):
    def route(a, x):
        if x.dtype.kind == "b":
            raise Unsupported("input", "bool")
        given, axes, data_axes = frame(x, None)
        params = {"order": a["order"], "mode": mode_of(a, TRANSFORM_MODES), "cval": a["cval"],
                  "prefilter": a["prefilter"]}
        used = {"order", "mode", "cval", "prefilter", "output"}
        if op == "zoom":
            params.update(zoom=per_axis(a["zoom"], given), grid_mode=a["grid_mode"])
            used |= {"zoom", "grid_mode"}
        elif op == "shift":
            params.update(shift=per_axis(a["shift"], given))
            used |= {"shift"}
        elif op == "affine_transform":
            m = np.asarray(a["matrix"], dtype=np.float64)
            out = a["output_shape"]
            if out is None and isinstance(a["output"], np.ndarray):
                out = a["output"].shape  # scipy takes the output array's shape
            params.update(matrix=m.tolist(), offset=per_axis(a["offset"], given),
                          output_shape=None if out is None else list(out))
            used |= {"matrix", "offset", "output_shape"}
        elif op == "rotate":
            pair = sorted(int(v) % x.ndim for v in a["axes"])
            given, axes, data_axes = frame(x, pair)
            params.update(angle=a["angle"], reshape=a["reshape"])
            used |= {"angle", "reshape", "axes"}
        output_dtype(a, x, op, params)
        return Call(op, axes, data_axes, params), used
    return route


ROUTES = {
    "gaussian_filter": _sigma_filter("gaussian"),
    "gaussian_filter1d": _sigma_filter("gaussian", "axis"),
    "gaussian_laplace": _sigma_filter("gaussian_laplace"),
    "gaussian_gradient_magnitude": _sigma_filter("gaussian_gradient_magnitude"),
    "uniform_filter": _uniform(), "uniform_filter1d": _uniform("axis"),
    "minimum_filter": _rank_route("minimum", lambda a, n: 0),
    "minimum_filter1d": _rank_route("minimum", lambda a, n: 0, "axis"),
    "maximum_filter": _rank_route("maximum", lambda a, n: n - 1),
    "maximum_filter1d": _rank_route("maximum", lambda a, n: n - 1, "axis"),
    "median_filter": _rank_route("median", lambda a, n: n // 2),
    "percentile_filter": _rank_route("percentile", _percentile_rank),
    "rank_filter": _rank_route("rank_filter", lambda a, n: int(a["rank"])),
    "generic_filter": _generic,
    "vectorized_filter": vectorized,
    "correlate": _correlation("correlate"), "convolve": _correlation("convolve"),
    "correlate1d": _correlation1d("correlate1d"), "convolve1d": _correlation1d("convolve1d"),
    "generic_filter1d": _generic1d,
    "sobel": _edge("sobel"), "prewitt": _edge("prewitt"), "laplace": _edge("laplace"),
    **{f"grey_{k}": _grey(k) for k in ("erosion", "dilation", "opening", "closing")},
    "white_tophat": _grey("white_tophat"), "black_tophat": _grey("black_tophat"),
    "morphological_gradient": _grey("morphological_gradient"),
    "morphological_laplace": _grey("morphological_laplace"),
    **{f"binary_{k}": _binary(f"binary_{k}") for k in ("erosion", "dilation", "opening",
                                                        "closing")},
    "binary_fill_holes": _binary("fill_holes"),
    "binary_hit_or_miss": _hit_or_miss,
    "label": _label,
    **{k: _transform(k) for k in ("zoom", "shift", "affine_transform", "rotate")},
}


#: functions with no operation of their own, and why a neighbour's is not used
NO_OPERATION: dict[str, str] = {}


def route(name: str, a: dict, x: np.ndarray) -> Call:
    """The operation call for scipy's ``name(**a)`` on input ``x``, or ``Unsupported``."""
    if name not in ROUTES:
        raise Unsupported("function", NO_OPERATION.get(name, "no operation"))
    if x.dtype.kind not in "biufc":
        raise Unsupported("input", f"dtype {x.dtype}")
    out = a.get("output")
    out = None if out is None else np.dtype(out.dtype if isinstance(out, np.ndarray) else out)
    if out is not None and out.kind not in "biufc":
        raise Unsupported("output", f"dtype {out}")
    try:
        call, used = ROUTES[name](a, x)
    except Unsupported as exc:
        exc.op = exc.op or name
        raise
    defaults = _SIGNATURES.setdefault(name, _signature_defaults(name))
    for arg, value in a.items():
        if arg in used or arg == "input" or arg not in defaults:
            continue
        if not _is_default(value, defaults[arg]):
            raise Unsupported(arg, "not the default", call.op)
    return call


_SIGNATURES: dict[str, dict] = {}


def _signature_defaults(name: str) -> dict:
    import inspect

    fn = getattr(ndi, name)
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _is_default(value, default) -> bool:
    if value is default:
        return True
    try:
        return bool(np.all(value == default)) and np.shape(value) == np.shape(default)
    except Exception:  # noqa: BLE001 - incomparable: not the default
        return False

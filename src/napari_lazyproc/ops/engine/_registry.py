"""The registry: each operation is one declaration of name, parameters, halo and functions."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._params import Param, Params
from ._scipy_params import OUTPUT


class _WholeFrame:
    """The halo of operations that need the whole frame (labeling, hole filling)."""

    def __repr__(self) -> str:
        return "WHOLE_FRAME"


#: ``halo`` returns this when a result needs every voxel of the frame, not a margin
WHOLE_FRAME = _WholeFrame()
WHOLE = WHOLE_FRAME  # the name before 0.2

Region = tuple[slice, ...]


@dataclass(frozen=True)
class Geometry:
    """An output whose shape (and axes) differ from the input's: a projection, and the
    geometric transforms that map an output box to an input box rather than a halo.

    The operation runs over a *frame*, its spatial axes (``apply``'s ``axes``, or the
    axes its parameters name, see ``frame``); the other axes (t, c...) pass through
    unchanged, one output index per input index. The geometry maps the input frame to
    the output frame. Every callable gets the validated parameters as a dict.

    Attributes
    ----------
    shape
        ``shape(frame_shape, params) -> tuple``: the output frame's shape, one size per
        output frame axis (``()`` for a projection, which removes its axis).
    region
        ``region(out_region, frame_shape, params) -> Region``: the input frame box
        (step-1 slices within ``frame_shape``, one per input frame axis) that the output
        frame box ``out_region`` needs. For a projection: all of the projected axis;
        for an affine transform: the bounding box of the output box's corners through
        the inverse transform, grown by the interpolation's support and clipped. The
        operation's ``halo``, when it has one, is added to this box.
    axes
        ``axes(frame_axes, params) -> str``: the output frame's axis letters, the input
        frame's or a subset of them in the same order (default: the same axes).
    frame
        ``frame(params) -> str``: the frame's axis letters when the parameters name them
        (a projection's ``axis``); ``apply`` then takes no other ``axes``. None: the
        frame is ``apply``'s ``axes``, spatial axes only, as for any operation.
    place
        ``place(scale, translate, frame_shape, params) -> (scale, translate)``: the voxel
        size and origin of the output frame's axes from the input frame's (physical
        units); default: those of the axes kept. A result layer uses it to overlay its
        input.
    bind
        ``bind(params, frame_scale) -> params``: parameters that default to the input
        frame's voxel size (a deskew's ``voxel_size``), filled in when the result is
        made, so the token, the provenance and every level see the values used.
    wants_shape
        True to pass the input frame's shape to the function as ``frame_shape=`` (a
        transform whose mapping depends on it: a rotation about the centre, a zoom).

    Notes
    -----
    The operation's ``function`` is then called as ``function(block, region=...,
    source_region=..., **params)``: ``block`` holds the input over ``source_region``
    (slices over the input frame axes, in the whole array's coordinates) and it returns
    the values over ``region`` (slices over the output frame axes). The engine reads,
    tiles (along any output axis), caches and chains it like any other operation.
    """

    shape: Callable[[tuple[int, ...], dict[str, Any]], tuple[int, ...]]
    region: Callable[[Region, tuple[int, ...], dict[str, Any]], Region]
    axes: Callable[[str, dict[str, Any]], str] = lambda letters, p: letters
    frame: Callable[[dict[str, Any]], str] | None = None
    place: Callable[..., tuple[tuple[float, ...], tuple[float, ...]]] | None = None
    bind: Callable[[dict[str, Any], tuple[float, ...]], dict[str, Any]] | None = None
    wants_shape: bool = False


@dataclass(frozen=True)
class Op:
    """One operation.

    function
        ``function(block, **params) -> array``: applied to a block holding only the
        spatial axes (the engine loops over the others). The block carries its halo;
        scipy's ``mode`` handles the true array edges exactly as on the whole array. It
        asks ``ndimage_for(block)`` for scipy.ndimage or cupyx.scipy.ndimage, as
        dask-image does, so the same function runs on numpy and CuPy blocks.
    halo
        ``halo(params, n_axes) -> tuple`` per spatial axis, or ``WHOLE_FRAME`` when a
        result needs the whole frame.
    dtype
        ``dtype(input_dtype, params) -> output dtype``.
    prepare
        Optional ``prepare(result) -> dict`` run once, lazily, for values that depend on
        the whole image (global thresholds); its output is added to the parameters. It
        may take ``progress=``, ``cancel=`` and ``stale=`` (``LazyResult.prepared``),
        and may carry ``statistics(result) -> "whole" | "sampled" | None`` (recorded in
        the steps).
    on_gpu
        False for a function that only runs on numpy blocks: under the GPU backend the
        operation is then computed on the CPU, with one warning.
    geometry
        Optional ``Geometry``: an output frame whose shape (and axes) differ from the
        input's, and the input box each output box needs (projections, transforms).
    batched
        True when ``function`` takes a block with any number of leading frame axes and
        works on its trailing (spatial) axes, so the engine calls it once per block
        rather than once per frame (a projection along z of every time point at once).
        Without a ``geometry``: ``function(block, axes=..., **params)`` gets the whole
        block and its spatial axes as indices, in the order ``apply``'s ``axes`` gave
        them (scipy's ``vectorized_filter`` lays out and reduces windows so).
    """

    name: str
    category: str
    function: Callable[..., np.ndarray]
    params: tuple[Param, ...] = ()
    halo: Callable[[dict[str, Any], int], tuple[int, ...] | _WholeFrame] = (
        lambda p, n: (0,) * n)
    dtype: Callable[[np.dtype, dict[str, Any]], np.dtype] = lambda d, p: np.dtype(d)
    prepare: Callable[..., dict[str, Any]] | None = None
    kind: str = "image"  # "image" or "labels": what the result is shown as
    binary_input: bool = False
    description: str = ""
    #: ``check(params, axes)`` for rules across parameters or axes; raises ValueError
    check: Callable[[dict[str, Any], str], None] | None = None
    #: ``separable(block, i, **params)``: the 1-D pass along spatial axis ``i``. When
    #: given, the engine runs the passes in scipy's order and crops each axis's halo as
    #: soon as that axis is done (bitwise the same; far less work for one plane)
    separable: Callable[..., np.ndarray] | None = None
    #: ``separable_at(block, i, lo, hi, **params)``: the same pass at outputs lo:hi only,
    #: or None where it cannot be done exactly (then ``separable`` runs)
    separable_at: Callable[..., np.ndarray | None] | None = None
    #: ``prefix(input_dtype, params, n_axes) -> tuple[bool, ...]``: per spatial axis,
    #: whether scipy's pass accumulates along the whole line (a running sum) whose
    #: rounding depends on every value before an output, for this dtype. Where it does,
    #: an exact result computes a region from index 0 of that axis (bitwise scipy)
    prefix: Callable[[np.dtype, dict[str, Any], int], tuple[bool, ...]] | None = None
    #: ``exact_whole(params) -> bool``: whether, under precision "exact", a region needs
    #: its whole frame: scipy's spline prefilter is recursive along whole lines, both
    #: ways, so a box grown by a margin is within 1e-15 ("fast"), not bitwise
    exact_whole: Callable[[dict[str, Any]], bool] | None = None
    #: pass the spatial axis letters to ``function`` as ``axes=`` (per-axis operations)
    needs_axes: bool = False
    #: pass the frame's index along the non-spatial axes to ``function`` and ``fast`` as
    #: ``frame=``, by axis letter (``{"t": 3}``; ``{}`` without such axes): parameters
    #: that differ per time point, such as a drift correction's shifts
    needs_frame: bool = False
    #: ``at_level(values, factors) -> values``: parameters at a level downsampled by
    #: ``factors`` (one per spatial axis) beyond lengths, which scale by themselves: a
    #: table of per-frame shifts in pixels
    at_level: Callable[[dict[str, Any], tuple[float, ...]], dict[str, Any]] | None = None
    on_gpu: bool = True
    #: ``fast(block, crop, **params)``: the values over ``crop`` (a slice per spatial
    #: axis of ``block``) by a faster kernel within the "fast" precision contract, or
    #: None where it has no fast path; used for numpy blocks under precision "fast". With
    #: a ``geometry``, it is called as ``function`` is and returns the values (no None)
    fast: Callable[..., np.ndarray | None] | None = None
    #: an output shape and axes of its own, and the input box an output box needs
    geometry: Geometry | None = None
    #: ``function`` handles leading frame axes itself (one call per block)
    batched: bool = False
    #: offer scipy's ``output=`` (a dtype): the ``OUTPUT`` parameter is added, the result
    #: has that dtype, and ``function`` / ``separable`` get ``output=`` (None: their own);
    #: the ``fast`` kernel runs only where its dtype is the same, without ``output``
    output: bool = False
    #: takes complex input as scipy does (its linear filters); False: refused by name
    #: (scipy has no complex version); ``complex_input(params) -> bool``; None: not
    #: declared (scipy says when the values are computed)
    complex_input: bool | Callable[[dict[str, Any]], bool] | None = None
    #: scipy applies the i-th of a sequence of modes to every axis of its i-th term
    #: (``gaussian_laplace``): a wrapped axis is then read whole, not padded
    modes_per_term: bool = False
    #: keywords that take a second image of the input's shape (scipy's ``mask``): read
    #: over the same region as the input and passed to ``function`` as a block by that
    #: name (None when not given); ``apply`` takes any array, image or lazy result
    images: tuple[str, ...] = ()
    #: sums one term per axis in ``axes``' order, as scipy's ``generic_laplace`` and
    #: ``generic_gradient_magnitude`` do: ``function`` and ``fast`` get ``terms=`` (the
    #: spatial axes' indices in that order; the array's by default)
    ordered_terms: bool = False
    #: ``nan_history(params, n_axes) -> tuple[bool, ...]``: an order statistic whose
    #: scipy answer, once a NaN is in the window, depends on the line since its start
    #: along those axes (``engine._nan_order``); None: NaN needs nothing special
    nan_history: Callable[[dict[str, Any], int], tuple[bool, ...]] | None = None

    def __post_init__(self) -> None:
        if self.output and not any(p.name == "output" for p in self.params):
            own = self.dtype
            object.__setattr__(self, "params", (*self.params, OUTPUT))
            object.__setattr__(self, "dtype", lambda d, p: _output_dtype(own, d, p))

    def own_dtype(self, input_dtype, params: dict[str, Any]) -> np.dtype:
        """The result's dtype without ``output=`` (what a fast kernel computes)."""
        return np.dtype(self.dtype(input_dtype, {**params, "output": None}))

    @property
    def gpu_function(self) -> Callable[..., Any] | None:
        """The function for CuPy blocks, or None when the operation has none."""
        return self.function if self.on_gpu else None

    @property
    def cpu(self) -> Callable[..., np.ndarray]:
        """Deprecated: the name of ``function`` before 0.2 (it also runs CuPy blocks)."""
        warnings.warn("Op.cpu is deprecated; use Op.function", DeprecationWarning,
                      stacklevel=2)
        return self.function

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate(self, values: dict[str, Any], n_axes: int) -> Params:
        """Defaults filled in, every value checked; ``ValueError`` names the bad one."""
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(known)) or 'none'}"
            )
        out = []
        for p in self.params:
            out.append((p.name, p.validate(self.name, values.get(p.name, p.default), n_axes)))
        return Params(tuple(out))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "kind": self.kind,
            "params": [p.describe() for p in self.params],
            "gpu": self.gpu_function is not None,
        }


def _output_dtype(own, input_dtype, params) -> np.dtype:
    """``output=`` as scipy takes it: a complex result promotes a real output dtype to
    complex (scipy warns; ``apply`` says so too)."""
    result = np.dtype(own(input_dtype, params))
    if params.get("output") is None:
        return result
    out = np.dtype(params["output"])
    if result.kind == "c" and out.kind != "c":
        return np.promote_types(out, np.complex64)
    return out


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"operation {op.name!r} is already registered")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown operation {name!r}; operations: {', '.join(sorted(REGISTRY))}"
        ) from None


def list_ops() -> list[dict[str, Any]]:
    """Every operation with its category, description and parameter specs."""
    return [REGISTRY[name].describe() for name in sorted(REGISTRY)]

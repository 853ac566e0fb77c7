"""The registry: each operation is one declaration of name, parameters, halo and functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._params import Param, Params

#: the whole extent of every spatial axis (labeling, hole filling need the whole frame)
WHOLE = None


@dataclass(frozen=True)
class Op:
    """One operation.

    cpu
        ``cpu(block, **params) -> array``: applied to a block holding only the spatial
        axes (the engine loops over the others). The block carries its halo; scipy's
        ``mode`` handles the true array edges exactly as on the whole array.
    halo
        ``halo(params, n_axes) -> tuple`` per spatial axis, or ``WHOLE`` (None) when a
        result needs the whole frame.
    dtype
        ``dtype(input_dtype, params) -> output dtype``.
    gpu
        The same contract for CuPy blocks. By default (``gpu_same=True``) the ``cpu``
        function itself, which asks ``ndimage_for(block)`` for scipy.ndimage or
        cupyx.scipy.ndimage, as dask-image does; ``gpu_same=False`` and no ``gpu``: the
        operation runs on the CPU under the GPU backend, with one warning.
    prepare
        Optional ``prepare(result) -> dict`` run once, lazily, for values that depend on
        the whole image (global thresholds); its output is added to the parameters.
    """

    name: str
    category: str
    cpu: Callable[..., np.ndarray]
    params: tuple[Param, ...] = ()
    halo: Callable[[dict[str, Any], int], tuple[int, ...] | None] = lambda p, n: (0,) * n
    dtype: Callable[[np.dtype, dict[str, Any]], np.dtype] = lambda d, p: np.dtype(d)
    gpu: Callable[..., Any] | None = None
    prepare: Callable[..., dict[str, Any]] | None = None
    kind: str = "image"  # "image" or "labels": what the result is shown as
    min_axes: int = 1
    max_axes: int | None = None
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
    #: pass the spatial axis letters to ``cpu`` as ``axes=`` (for per-axis operations)
    needs_axes: bool = False
    #: ``cpu`` is backend-generic (numpy or CuPy blocks): it is also the GPU function
    gpu_same: bool = True

    @property
    def gpu_function(self) -> Callable[..., Any] | None:
        return self.gpu if self.gpu is not None else (self.cpu if self.gpu_same else None)

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
        if n_axes < self.min_axes or (self.max_axes is not None and n_axes > self.max_axes):
            want = f"{self.min_axes}" if self.max_axes == self.min_axes else f"at least {self.min_axes}"
            raise ValueError(f"{self.name} needs {want} spatial axes (got {n_axes})")
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

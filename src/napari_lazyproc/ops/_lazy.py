"""Lazy evaluation: a result computes only the region asked for, exactly as on the whole array.

To compute a region, a result reads its input over the region grown by the operation's
halo (clipped at the array edges, where scipy's ``mode`` then applies exactly as on the
whole array), runs the operation there, and crops. A chained input does the same with
its own halo, so halos add up. Large regions are split into tiles computed in parallel;
input chunks and finished tiles sit in the shared LRU cache, keyed by the parameters.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from dask.base import tokenize

from .._shared.pool import in_worker, n_workers, parallel_map
from .._shared.regions import Region, key_region, region_shape, split_region, within
from .._shared.source import RegionReader
from ..backend import array_module, device, get_backend
from ..io import LazyArray, as_dask
from ._cache import CACHE
from ._jobs import Cancelled
from ._levels import coarse_params, footprint_note, level_factors
from ._params import Params
from ._registry import WHOLE_FRAME, Op

#: regions larger than this many voxels are split into tiles computed in parallel
TILE_VOXELS = 2**19


class LazyResult:
    """An operation applied lazily to an input (a file's array or another result).

    Fits napari's layer data protocol: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__``. Indexing returns a lazy view; ``np.asarray`` on it computes exactly
    that region. ``to_dask()`` gives a dask array with one task per output chunk.
    """

    def __init__(self, op: Op, params: Params, source, spatial: tuple[int, ...], *,
                 base: LazyResult | None = None, precision: str = "exact") -> None:
        self.op = op
        #: "fast" (kernels within the contract of ``ops._precision``) or "exact" (scipy)
        self.precision = precision
        self.params = params
        self.source = source
        self.spatial = tuple(spatial)
        self.shape = tuple(source.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(op.dtype(source.dtype, params.as_dict()))
        self.axes = source.axes
        self.scale = source.scale
        self.units = source.units
        self.chunks = source.chunks or tuple((n,) for n in self.shape)
        self.token = "lp-" + op.name + "-" + tokenize(op.name, params.values, self.spatial,
                                                      source.token, self.fast)
        self._prepared: dict[str, Any] | None = None
        self._lock = threading.Lock()
        halo = op.halo(params.as_dict(), len(self.spatial))
        self.whole_frame = halo is WHOLE_FRAME
        self.halo = tuple(
            (self.shape[a] if self.whole_frame else int(halo[i]))
            for i, a in enumerate(self.spatial)
        )
        #: level 0 when this is a coarser level (a preview), else None
        self.base = base
        self._coarse: dict[str, LazyResult] = {}  # coarser levels, by their input's token
        # its own lock: ``prepared()`` holds ``_lock`` through a whole-image histogram,
        # and asking for the levels (the GUI thread) must not wait for it
        self._coarse_lock = threading.Lock()

    # ---------------------------------------------------------------- levels
    @property
    def preview(self) -> bool:
        """Whether this is a coarse level: a preview for display, not the exact result."""
        return self.base is not None

    @property
    def levels(self) -> list[LazyResult]:
        """One result per level of the input, full resolution (this one) first; level k
        is the operation on input level k with lengths kept at their physical size."""
        return self._at_levels(self.source.levels)

    @property
    def display_levels(self) -> list[LazyResult]:
        """``levels`` plus those over the input's virtual levels (what a viewer shows)."""
        return self._at_levels(self.source.display_levels)

    @property
    def multiscale(self) -> bool:
        return len(self.levels) > 1

    def _at_levels(self, sources) -> list[LazyResult]:
        if self.base is not None:
            return self.base._at_levels(sources)
        out = [self]
        for k, src in enumerate(sources[1:], 1):
            with self._coarse_lock:
                level = self._coarse.get(src.token)
                if level is None:
                    level = self._coarse[src.token] = self._at_level(src, k)
            out.append(level)
        return out

    def _at_level(self, source, k: int) -> LazyResult:
        factors = level_factors(self.shape, source.shape, self.spatial)
        params = coarse_params(self.op, self.params, factors, k, self.spatial_axes)
        level = LazyResult(self.op, params, source, self.spatial, base=self,
                           precision=self.precision)
        footprint_note(self.op, None if level.whole_frame else level.halo,
                       [source.shape[a] for a in self.spatial], k)
        return level

    # ---------------------------------------------------------------- description
    @property
    def name(self) -> str:
        return self.op.name

    @property
    def fast(self) -> bool:
        """Whether a fast kernel computes this result (precision "fast" and one exists)."""
        return self.precision == "fast" and self.op.fast is not None

    @property
    def kind(self) -> str:
        return self.op.kind

    @property
    def spatial_axes(self) -> str:
        return "".join(self.axes[a] for a in self.spatial)

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The pipeline that made this result, as JSON-able steps (provenance)."""
        step = {"op": self.op.name, **self.params.as_dict(), "axes": self.spatial_axes,
                "precision": self.precision}
        return [*getattr(self.source, "steps", []), step]

    @property
    def source_path(self):
        return getattr(self.source, "source_path", None)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __repr__(self) -> str:
        chain = " → ".join(s["op"] for s in self.steps)
        return f"LazyResult({chain}, shape={self.shape}, dtype={self.dtype}, axes={self.axes!r})"

    # ---------------------------------------------------------------- evaluation
    def prepared(self) -> dict[str, Any]:
        """Values computed once from the whole input (e.g. a global threshold)."""
        if self.op.prepare is None:
            return {}
        if self.base is not None:  # one value for every level: a consistent pyramid
            return self.base.prepared()
        with self._lock:
            if self._prepared is None:
                self._prepared = dict(self.op.prepare(self))
            return self._prepared

    def __getitem__(self, key) -> LazyArray:
        return LazyArray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(tuple(slice(0, n) for n in self.shape))
        return out if dtype is None else out.astype(dtype, copy=False)

    def compute(self, key=...) -> np.ndarray:
        """The values of ``self[key]`` as a numpy array."""
        return np.asarray(self[key])

    def cached(self, key) -> np.ndarray | None:
        """``self[key]`` if it is in the cache, else None; never computes."""
        region, squeeze = key_region(key, self.shape)
        hit = CACHE.get((self.token, tuple((s.start, s.stop) for s in region)))
        return None if hit is None else hit[squeeze]

    def read(self, region: Region, cancel: threading.Event | None = None) -> np.ndarray:
        """The values over ``region`` (a tuple of step-1 slices).

        ``cancel``: when set, the read stops before its next tile and raises
        ``Cancelled`` (stale display work is dropped, not finished).
        """
        self.prepared()  # once, before tiles fan out
        top = not in_worker()
        key = (self.token, tuple((s.start, s.stop) for s in region))
        if top:
            hit = CACHE.get(key)
            if hit is not None:
                return hit
        tiles = self._tiles(region) if top else [region]

        def compute(tile: Region) -> np.ndarray:
            if cancel is not None and cancel.is_set():
                raise Cancelled("stale region dropped")
            return self._compute(tile)

        if len(tiles) == 1:
            out = compute(region)
        else:
            out = np.empty(region_shape(region), self.dtype)
            for tile, values in zip(tiles, parallel_map(compute, tiles), strict=False):
                out[within(tile, region)] = values
        if top:
            CACHE.put(key, out)
        return out

    def _tiles(self, region: Region) -> list[Region]:
        """Split along the largest spatial axis so each worker gets a share; on the GPU,
        into tiles that fit the device memory (free memory, or the budget)."""
        n = math.prod(region_shape(region))
        if self.on_gpu and not self.whole_frame:
            limit = device.tile_voxels(self.dtype.itemsize)
            return [region] if n <= limit else split_region(
                region, self.spatial, math.ceil(n / limit)
            )
        if self.whole_frame or n <= TILE_VOXELS:
            return [region]
        parts = max(n_workers(), math.ceil(n / (4 * TILE_VOXELS)))
        return split_region(region, self.spatial, parts)

    def _expanded(self, region: Region) -> Region:
        grown = list(region)
        for a, h in zip(self.spatial, self.halo, strict=False):
            grown[a] = slice(max(0, region[a].start - h), min(self.shape[a], region[a].stop + h))
        return tuple(grown)

    @property
    def on_gpu(self) -> bool:
        """Whether tiles are computed on the device: the cupy backend, an operation with a
        GPU function, and precision "fast". CuPy's kernels are not bitwise scipy (they
        meet the fast contract), so an exact result is computed with scipy on the CPU."""
        return (get_backend() == "cupy" and self.op.gpu_function is not None
                and self.precision == "fast")

    def _compute(self, region: Region) -> np.ndarray:
        if self.on_gpu:
            return self._compute_gpu(region)
        if get_backend() == "cupy":
            why = ("has no GPU function (CuPy or cuCIM)" if self.op.gpu_function is None
                   else "is exact (bitwise scipy), which CuPy's kernels are not")
            device.warn_once(f"{self.op.name}-{self.precision}",
                             f"{self.op.name} {why}; it is computed on the CPU")
        return self._compute_cpu(region)

    def _compute_cpu(self, region: Region) -> np.ndarray:
        expanded = self._expanded(region)
        if self.whole_frame:
            key = (self.token, "frame", tuple((s.start, s.stop) for s in expanded))
            full = CACHE.get(key)
            if full is None:
                full = self._apply(self.source.read(expanded))
                CACHE.put(key, full)
        else:
            block = self.source.read(expanded)
            if self.fast:
                values = self._apply_fast(block, region, expanded)
                if values is not None:
                    return values
            if self.op.separable is not None:
                return self._apply_separable(block, region, expanded)
            full = self._apply(block)
        return full[within(region, expanded)]

    # ---------------------------------------------------------------- GPU
    def _compute_gpu(self, region: Region) -> np.ndarray:
        """On the device; out of memory: the region split in two, and at last the CPU."""
        try:
            voxels = math.prod(region_shape(self._expanded(region)))
            if not device.fits(voxels, self.dtype.itemsize):
                raise MemoryError(f"{voxels} voxels exceed the GPU budget")
            return device.to_host(self._device_values(region))
        except Exception as exc:
            if not device.is_oom(exc):
                raise
            device.free_pool()
        parts = []
        if not self.whole_frame and math.prod(region_shape(region)) > device.MIN_TILE_VOXELS:
            parts = split_region(region, self.spatial, 2)
        if len(parts) < 2:
            device.warn_once(f"oom-{self.op.name}", f"{self.op.name}: out of GPU memory even "
                              f"for small tiles; computing on the CPU")
            return self._compute_cpu(region)
        out = np.empty(region_shape(region), self.dtype)
        for part in parts:
            out[within(part, region)] = self._compute_gpu(part)
        return out

    def _device_values(self, region: Region):
        """A CuPy array over ``region``. A chained input computes on the device too, so
        only the final tile comes back to the host."""
        expanded = self._expanded(region)
        src = self.source
        if isinstance(src, LazyResult) and src.on_gpu:
            block = src._device_values(expanded)
        else:
            block = device.to_device(src.read(expanded))
        fn = self.op.gpu_function
        if self.op.separable is not None:
            return self._apply_separable(block, region, expanded)
        full = self._apply(block, fn)
        return full[within(region, expanded)]

    def _call_params(self) -> dict[str, Any]:
        """Keyword arguments of the operation's functions: parameters, prepared values,
        and the spatial axis letters for operations that ask for them."""
        params = {**self.params.as_dict(), **self.prepared()}
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        if self.op.needs_axes:
            params["axes"] = self.spatial_axes
        return params

    def _frames(self, block, region: Region, expanded: Region, frame):
        """``frame(values)`` on every frame of ``block`` (its spatial axes at one index of
        the others, never across T or C), the other axes cropped from ``expanded`` to
        ``region``; stacked back in the block's axis order. ``frame`` returns the values
        over ``region``'s spatial extent, or None to decline (then this returns None)."""
        nd = block.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        inner = within(region, expanded)
        moved = np.moveaxis(block, self.spatial, range(len(other), nd))[
            tuple(inner[a] for a in other)]
        spatial_shape = tuple(region[a].stop - region[a].start for a in self.spatial)
        out = array_module(block).empty(moved.shape[: len(other)] + spatial_shape, self.dtype)
        for index in np.ndindex(*moved.shape[: len(other)]):
            values = frame(moved[index])
            if values is None:
                return None
            out[index] = values
        return np.moveaxis(out, range(len(other), nd), self.spatial)

    def _apply_fast(self, block: np.ndarray, region: Region, expanded: Region):
        """The fast kernel on every frame over ``region``, or None where it declines."""
        params = {k: v for k, v in self._call_params().items() if k != "axes"}
        inner = within(region, expanded)
        crop = tuple(inner[a] for a in self.spatial)
        return self._frames(block, region, expanded,
                            lambda frame: self.op.fast(frame, crop, **params))

    def _apply_separable(self, block: np.ndarray, region: Region, expanded: Region) -> np.ndarray:
        """1-D passes in scipy's axis order, each axis cropped to the region once done."""
        params = self._call_params()
        k = len(self.spatial)
        bounds = [(region[a].start - expanded[a].start, region[a].stop - expanded[a].start)
                  for a in self.spatial]

        def passes(cur):
            for i, (lo, hi) in enumerate(bounds):
                at = self.op.separable_at
                done = at(cur, i, lo, hi, **params) if at is not None else None
                if done is None:
                    keep = [slice(None)] * k
                    keep[i] = slice(lo, hi)
                    done = self.op.separable(cur, i, **params)[tuple(keep)]
                cur = done
            return cur

        return self._frames(block, region, expanded, passes)

    def _apply(self, block: np.ndarray, fn=None) -> np.ndarray:
        """Run the operation on every spatial sub-block (never across T or C)."""
        fn = fn or self.op.function
        params = self._call_params()
        whole = tuple(slice(0, n) for n in block.shape)
        return self._frames(block, whole, whole, lambda frame: fn(frame, **params))

    # ---------------------------------------------------------------- export
    def to_dask(self):
        """A dask array with one task per output chunk, each reading its input plus halo."""
        return as_dask(RegionReader(self), self.chunks, self.token)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"], state["_coarse_lock"]
        state["_coarse"] = {}  # rebuilt on demand; workers compute level 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._coarse_lock = threading.Lock()

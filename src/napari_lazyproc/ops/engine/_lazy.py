"""Lazy evaluation: a result computes only the region asked for, exactly as on the whole array.

To compute a region, a result reads its input over the region grown by the operation's
halo (clipped at the array edges, where scipy's ``mode`` then applies exactly as on the
whole array), runs the operation there, and crops. A chained input does the same with
its own halo, so halos add up. Large regions are split into tiles computed in parallel;
input chunks and finished tiles sit in the shared LRU cache, keyed by the parameters.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np
from dask.base import tokenize

from ..._shared.pool import in_worker, parallel_map
from ..._shared.regions import Region, key_region, region_shape, within
from ..._shared.source import RegionReader, chain_of, owned
from ...io import LazyArray, as_dask
from ._cache import CACHE
from ._evaluation import Evaluation
from ._gpu_evaluation import GpuEvaluation
from ._levels import coarse_params, footprint_note, level_factors
from ._nan_order import nan_axes
from ._params import Params
from ._progress import Cancelled
from ._registry import WHOLE_FRAME, Op
from ._result_geometry import ResultGeometry
from ._tiling import Tiling
from ._whole_values import WholeInputValues
from ._wrap import wrap_axes


def _token_values(op: Op, params: Params) -> tuple:
    """The parameters as a result's token sees them: a kernel given as a ``.npy`` path by
    the file's modification time and size too, so that a rewritten file is a new result
    rather than the old one's cached tiles (the provenance keeps the path)."""
    kernels = {p.name for p in op.params if p.quantity == "kernel"}
    out = []
    for name, value in params.values:
        if name in kernels and isinstance(value, str):
            try:
                st = os.stat(value)
                value = (value, st.st_mtime_ns, st.st_size)
            except OSError:
                pass
        out.append((name, value))
    return tuple(out)




def _image_levels(images: dict, k: int, shape) -> dict | None:
    """The second images at level ``k`` (each one's own level of that shape), or None
    where one has no such level."""
    out = {}
    for name, image in images.items():
        levels = getattr(image, "levels", [image])
        if k >= len(levels) or tuple(levels[k].shape) != tuple(shape):
            return None
        out[name] = levels[k]
    return out


class LazyResult(ResultGeometry, WholeInputValues, Tiling, Evaluation, GpuEvaluation):
    """An operation applied lazily to an input (a file's array or another result).

    Fits napari's layer data protocol: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__``. Indexing returns a lazy view; ``np.asarray`` on it computes exactly
    that region. ``to_dask()`` gives a dask array with one task per output chunk.
    """

    def __init__(self, op: Op, params: Params, source, spatial: tuple[int, ...], *,
                 base: LazyResult | None = None, precision: str = "exact",
                 passes: tuple[int, ...] | None = None, images: dict | None = None) -> None:
        self.op = op
        #: more inputs read over the same region as ``source`` (scipy's ``mask``), by
        #: the operation's keyword (``Op.images``); their tokens and stamps are this
        #: result's as the input's are
        self.images = dict(sorted((images or {}).items()))
        #: the order of a separable operation's 1-D passes (indices into ``spatial``):
        #: scipy's, the order ``axes`` were given in (the array's by default)
        self.passes = tuple(range(len(spatial))) if passes is None else tuple(passes)
        #: "fast" (kernels within the contract of ``ops._precision``) or "exact" (scipy)
        self.precision = precision
        geo = op.geometry
        if geo is not None and geo.bind is not None:  # values from the input's voxel size
            params = op.validate(geo.bind(params.as_dict(), tuple(
                float(source.scale[a]) for a in spatial)), len(spatial))
        self.params = params
        self.source = source
        #: the input axes the operation runs over (its frame); the others pass through
        self.spatial = tuple(spatial)
        self._layout(source)  # shape, axes, scale, units and chunks of the output
        self.ndim = len(self.shape)
        self.dtype = np.dtype(op.dtype(source.dtype, params.as_dict()))
        if params.as_dict().get("output") is None:  # scipy's own output: native order
            self.dtype = self.dtype.newbyteorder("=")
        #: a fast kernel computes the operation's own dtype: ``output=`` another is scipy's
        self._own_dtype = self.dtype == np.dtype(
            op.own_dtype(source.dtype, params.as_dict())).newbyteorder("=")
        # every value that can change the result's values but the input's bytes (those
        # are in ``stamp``): parameters, axes, the input, the precision and its kernels
        order = () if self.passes == tuple(range(len(spatial))) else (self.passes,)
        if self.images:
            order = (*order, tuple((k, v.token) for k, v in self.images.items()))
        self.token = "lp-" + op.name + "-" + tokenize(op.name, _token_values(op, params),
                                                      self.spatial, source.token,
                                                      self.precision, self.fast, *order)
        self._prepared: dict[str, Any] | None = None
        self._prepared_check = (None, 0.0, 0.0)  # (input stamp, checked at, its cost)
        self._lock = threading.Lock()
        halo = op.halo(params.as_dict(), len(self.spatial))
        self.whole_frame = halo is WHOLE_FRAME
        self.halo = tuple(
            (source.shape[a] if self.whole_frame else int(halo[i]))
            for i, a in enumerate(self.spatial)
        )
        #: an exact region reads its whole frame (scipy's spline prefilter)
        self._exact_whole = (precision == "exact" and op.exact_whole is not None
                             and op.exact_whole(params.as_dict()))
        if self._exact_whole and op.geometry is None:
            self.whole_frame = True
            self.halo = tuple(source.shape[a] for a in self.spatial)
        #: per spatial axis: computed from index 0 (scipy's running sums, exact results)
        self.prefix = ((False,) * len(self.spatial) if op.prefix is None or self.fast
                       else tuple(op.prefix(source.dtype, params.as_dict(), len(self.spatial))))
        #: per spatial axis: scipy's order statistics of NaN depend on the line's start
        #: there (``_nan_order``): read from index 0 too, unless a fast kernel computes
        #: (a 1-D frame, a line, is read from its start by both)
        self.nan_axes = nan_axes(self)
        if not self.fast or len(self.spatial) == 1:
            self.prefix = tuple(p or v for p, v in zip(self.prefix, self.nan_axes, strict=True))
        #: per spatial axis: mode "wrap", a region reads its wrap partner (``_wrap``)
        self.wrapped = wrap_axes(op, params.as_dict(), len(self.spatial))
        #: ... and where it is read padded by its wrap partner (else whole, wrapped by scipy)
        whole = op.modes_per_term and not isinstance(params.as_dict().get("mode"), str)
        self.padded = tuple(w and not p and not whole and not self.whole_frame
                            for w, p in zip(self.wrapped, self.prefix, strict=True))
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
            if self.images and _image_levels(self.images, k, src.shape) is None:
                break  # a mask without that level: no preview there
            with self._coarse_lock:
                level = self._coarse.get(src.token)
                if level is None:
                    level = self._coarse[src.token] = self._at_level(src, k)
            out.append(level)
        return out

    def _at_level(self, source, k: int) -> LazyResult:
        factors = level_factors(self.source.shape, source.shape, self.spatial)
        params = coarse_params(self.op, self.params, factors, k, self.spatial_axes)
        if self.op.at_level is not None:
            params = self.op.validate(self.op.at_level(params.as_dict(), factors),
                                      len(factors))
        level = LazyResult(self.op, params, source, self.spatial, base=self,
                           precision=self.precision, passes=self.passes,
                           images=_image_levels(self.images, k, source.shape))
        footprint_note(self.op, None if level.whole_frame else level.halo,
                       [source.shape[a] for a in self.spatial], k)
        return level

    # ---------------------------------------------------------------- description
    @property
    def name(self) -> str:
        return self.op.name

    @property
    def fast(self) -> bool:
        """Whether a fast kernel computes this result (precision "fast" and one exists;
        not with a second image such as a mask, which scipy takes; nor for a 0-D input,
        with no axes to run along)."""
        return (self.precision == "fast" and self.op.fast is not None and self._own_dtype
                and not self.images and bool(self.spatial))

    @property
    def statistics(self) -> str | None:
        """How whole-image values are computed: "whole" (every voxel, as scikit-image /
        numpy on the whole array) or "sampled" (a bounded sample); None without any."""
        if self.base is not None:  # a coarse level uses level 0's values
            return self.base.statistics
        mode = getattr(self.op.prepare, "statistics", None)
        return mode(self) if callable(mode) else None

    @property
    def kind(self) -> str:
        return self.op.kind

    @property
    def spatial_axes(self) -> str:
        return "".join(self.source.axes[a] for a in self.spatial)

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The pipeline that made this result, as JSON-able steps (provenance)."""
        axes = "".join(self.spatial_axes[i] for i in self.passes)  # letters: pass order
        values = self.params.as_dict()
        if getattr(self.source, "positional", False):  # scipy's integers named them:
            axes = [self.spatial[i] for i in self.passes]  # so do the steps, and the
            for p in self.op.params:  # per-axis values follow them, as in scipy
                if p.per_axis and isinstance(values.get(p.name), list):
                    values[p.name] = [values[p.name][i] for i in self.passes]
        step = {"op": self.op.name, **values, "axes": axes, "precision": self.precision}
        for name, image in self.images.items():  # where it is read from, or its token
            step[name] = str(getattr(image, "source_path", None) or image.token)
        if self.statistics is not None:
            step["statistics"] = self.statistics
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







    def __getitem__(self, key) -> LazyArray:
        return LazyArray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(tuple(slice(0, n) for n in self.shape))  # the cache's: copied
        return owned(out if dtype is None else out.astype(dtype, copy=False))

    def compute(self, key=...) -> np.ndarray:
        """The values of ``self[key]`` as a numpy array."""
        return np.asarray(self[key])

    def cached(self, key) -> np.ndarray | None:
        """``self[key]`` if it is in the cache, else None; never computes."""
        region, squeeze = key_region(key, self.shape)
        hit = CACHE.get(self._key(region))
        return None if hit is None else hit[squeeze]

    def read(self, region: Region, cancel: threading.Event | None = None) -> np.ndarray:
        """The values over ``region`` (a tuple of step-1 slices).

        ``cancel``: when set, the read stops before its next tile and raises
        ``Cancelled`` (stale display work is dropped, not finished).
        """
        for src in chain_of(self):  # every whole-input value of the chain, once, before
            if isinstance(src, LazyResult):  # tiles fan out and before the key is taken
                src.prepared(stale=cancel)
        top = not in_worker()
        if top:  # the stamp is taken before reading: a change meanwhile is a miss next time
            key = self._key(region)
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

















    def locations(self) -> set[str]:
        """The local stores the second images (a mask) read; the input's are found down
        its own chain (``export.input_locations``)."""
        out: set[str] = set()
        for image in self.images.values():
            for src in chain_of(image):
                if hasattr(src, "locations"):
                    out |= set(src.locations())
                if getattr(src, "source_path", None):
                    out.add(str(src.source_path))
        return out

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

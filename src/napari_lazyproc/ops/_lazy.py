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

from .._shared.pool import in_worker, n_workers, parallel_map
from .._shared.regions import Region, key_region, region_shape, split_region, within
from .._shared.source import RegionReader, chain_of, channel_names_of, owned, translate_of
from ..backend import array_module, device, get_backend
from ..io import LazyArray, as_dask, reader_stamp
from ._cache import CACHE
from ._jobs import Cancelled
from ._levels import coarse_params, footprint_note, level_factors
from ._params import Params
from ._registry import WHOLE_FRAME, Op

#: regions larger than this many voxels are split into tiles computed in parallel
TILE_VOXELS = 2**19
#: whole-input values (a threshold) are checked against the input's stamp on every read
#: when that check costs under RECHECK_COST seconds, else at most every RECHECK_EVERY
RECHECK_COST = 0.002
RECHECK_EVERY = 1.0


def _regular(size: int, n: int) -> tuple[int, ...]:
    """A regular chunking of ``n`` voxels in chunks of ``size`` (the last one shorter)."""
    size = max(1, int(size))
    return (size,) * (n // size) + ((n % size,) if n % size else ()) or (0,)


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


def _takes(fn, name: str) -> bool:
    """Whether ``fn`` takes the keyword ``name`` (a ``prepare`` written as
    ``prepare(result)`` gets no progress or cancel)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


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
        #: a fast kernel computes the operation's own dtype: ``output=`` another is scipy's
        self._own_dtype = self.dtype == op.own_dtype(source.dtype, params.as_dict())
        # every value that can change the result's values but the input's bytes (those
        # are in ``stamp``): parameters, axes, the input, the precision and its kernels
        self.token = "lp-" + op.name + "-" + tokenize(op.name, _token_values(op, params),
                                                      self.spatial, source.token,
                                                      self.precision, self.fast)
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
        #: level 0 when this is a coarser level (a preview), else None
        self.base = base
        self._coarse: dict[str, LazyResult] = {}  # coarser levels, by their input's token
        # its own lock: ``prepared()`` holds ``_lock`` through a whole-image histogram,
        # and asking for the levels (the GUI thread) must not wait for it
        self._coarse_lock = threading.Lock()

    # ---------------------------------------------------------------- geometry
    def _layout(self, source) -> None:
        """The output's shape, axes, scale, units and chunks: the input's, or, for an
        operation with a ``Geometry``, the input's with the frame mapped to the output
        frame (its axes kept in place, removed ones dropped)."""
        geo = self.op.geometry
        chunks = source.chunks or tuple((n,) for n in source.shape)
        #: the input axis of each output axis
        self._inputs = tuple(range(len(source.shape)))
        #: the output axes of the frame (the same as ``spatial`` without a geometry)
        self.out_spatial = self.spatial
        self.shape, self.axes = tuple(source.shape), source.axes
        self.scale, self.units, self.chunks = source.scale, source.units, chunks
        if geo is None:
            return
        values = self.params.as_dict()
        frame = "".join(source.axes[a] for a in self.spatial)
        self._frame_shape = tuple(int(source.shape[a]) for a in self.spatial)
        out_frame = geo.axes(frame, values)
        out_shape = tuple(int(n) for n in geo.shape(self._frame_shape, values))
        if len(out_shape) != len(out_frame) or "".join(
                a for a in frame if a in out_frame) != out_frame:
            raise ValueError(f"{self.op.name}: its output frame {out_frame!r} {out_shape} is "
                             f"not the input frame {frame!r} or some of its axes, in order")
        sizes = dict(zip(out_frame, out_shape, strict=True))
        self._inputs = tuple(a for a in range(len(source.shape))
                             if a not in self.spatial or source.axes[a] in out_frame)
        self.axes = "".join(source.axes[a] for a in self._inputs)
        self.out_spatial = tuple(self.axes.index(a) for a in out_frame)
        self.shape = tuple(sizes.get(source.axes[a], source.shape[a]) if a in self.spatial
                           else source.shape[a] for a in self._inputs)
        self.units = tuple(source.units[a] for a in self._inputs)
        self.scale = self._placed(source.scale, (0.0,) * len(source.shape))[0]
        self.chunks = tuple(
            chunks[a] if n == source.shape[a] else _regular(chunks[a][0], n)
            for a, n in zip(self._inputs, self.shape, strict=True))

    def _placed(self, scale, translate) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The output's voxel size and origin from the input's (one per input axis)."""
        geo = self.op.geometry
        if geo is None:
            return tuple(scale), tuple(translate)
        values = self.params.as_dict()
        frame_scale = tuple(float(scale[a]) for a in self.spatial)
        frame_origin = tuple(float(translate[a]) for a in self.spatial)
        if geo.place is not None:
            frame_scale, frame_origin = geo.place(frame_scale, frame_origin,
                                                  self._frame_shape, values)
        else:  # the frame axes kept keep their voxel size and origin
            kept = [i for i, a in enumerate(self.spatial) if a in self._inputs]
            frame_scale = tuple(frame_scale[i] for i in kept)
            frame_origin = tuple(frame_origin[i] for i in kept)
        out_scale, out_origin = [], []
        for k, a in enumerate(self._inputs):
            if k in self.out_spatial:
                i = self.out_spatial.index(k)
                out_scale.append(float(frame_scale[i]))
                out_origin.append(float(frame_origin[i]))
            else:
                out_scale.append(float(scale[a]))
                out_origin.append(float(translate[a]))
        return tuple(out_scale), tuple(out_origin)

    #: an origin set on this result (a layer moved in napari); None: derived from the input
    _translate: tuple[float, ...] | None = None

    @property
    def translate(self) -> tuple[float, ...]:
        """The position of voxel 0: the input's, moved as the geometry places the output
        (a zoom's or rotation's origin; a projection drops its axis), unless set."""
        if self._translate is not None:
            return self._translate
        return self._placed(self.source.scale, translate_of(self.source))[1]

    @translate.setter
    def translate(self, value) -> None:
        self._translate = tuple(float(t) for t in value)

    @property
    def channel_names(self) -> list[str] | None:
        """The input's channel names while the c axis passes through unchanged."""
        names = channel_names_of(self.source)
        if names is None or "c" in self.spatial_axes or "c" not in self.axes:
            return None
        return names if self.shape[self.axes.index("c")] == len(names) else None

    def translate_from(self, translate) -> tuple[float, ...]:
        """The origin of the result (napari's ``translate``) given its input's.

        Parameters
        ----------
        translate : sequence of float
            The input's origin, one value per input axis, in physical units.

        Returns
        -------
        tuple of float
            One value per output axis: the input's for most operations; without the
            projected axis for a projection (the geometry's ``place`` says).
        """
        return self._placed(self.source.scale, translate)[1]

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
        factors = level_factors(self.source.shape, source.shape, self.spatial)
        params = coarse_params(self.op, self.params, factors, k, self.spatial_axes)
        if self.op.at_level is not None:
            params = self.op.validate(self.op.at_level(params.as_dict(), factors),
                                      len(factors))
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
        return self.precision == "fast" and self.op.fast is not None and self._own_dtype

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
        step = {"op": self.op.name, **self.params.as_dict(), "axes": self.spatial_axes,
                "precision": self.precision}
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

    # ---------------------------------------------------------------- evaluation
    def prepared(self, progress=None, cancel: threading.Event | None = None,
                 stale: threading.Event | None = None) -> dict[str, Any]:
        """Values computed once from the whole input (e.g. a global threshold), computed
        again when the input's bytes change (see ``_input_changed``). Global statistics
        are a job kept by the input's identity (``ops._global_stats``): ``progress``:
        True for a bar or ``f(done, total)``; ``cancel``: an Event that stops the job
        (``Cancelled``); ``stale``: one that only stops waiting for it (a display read)."""
        if self.op.prepare is None:
            return {}
        if self.base is not None:  # one value for every level: a consistent pyramid
            return self.base.prepared(progress, cancel, stale)
        prepare = self.op.prepare
        given = (("progress", progress), ("cancel", cancel), ("stale", stale))
        extra = {k: v for k, v in given if v is not None and _takes(prepare, k)}
        with self._lock:
            changed = self._input_changed()  # the stamp is taken before the input is read
            if self._prepared is not None and not changed:
                return self._prepared
            if not _takes(prepare, "stale"):
                self._prepared = dict(prepare(self, **extra))
                return self._prepared
            self._prepared = None  # stale values are never served meanwhile
        # it shares its work itself (ops._global_stats, by the input's stamp): no lock
        # held while it runs, so a stale display read never waits here for another's job
        values = dict(prepare(self, **extra))
        with self._lock:
            self._prepared = values
            return values

    def _whole_stamp(self) -> tuple[str, float]:
        """A digest of the whole input's stamp, and what computing it cost (seconds)."""
        import time

        t0 = time.monotonic()
        whole = tuple(slice(0, n) for n in self.source.shape)
        return tokenize(reader_stamp(self.source, whole)), time.monotonic() - t0

    def _input_changed(self) -> bool:
        """Whether the whole input's stamp differs from the one the prepared values were
        made from (the caller holds ``_lock``). Checked on every read where that costs
        little (a stat per chunk file: under ``RECHECK_COST`` seconds), else at most
        every ``RECHECK_EVERY`` seconds (or a hundred times its cost)."""
        import time

        stamp, at, cost = self._prepared_check
        now = time.monotonic()
        if self._prepared is not None and cost > RECHECK_COST and \
                now - at < max(RECHECK_EVERY, 100 * cost):
            return False
        current, cost = self._whole_stamp()
        self._prepared_check = (current, now, cost)
        return stamp != current

    def _prepared_stamp(self):
        """The prepared values as a cache key sees them, never computing them and never
        waiting for them (the display thread asks): None before they exist; a changed
        input, where checking is cheap, is a value no entry holds; so is an expensive
        check that is due (the next read makes it, in ``prepared``)."""
        import time

        values = self._prepared
        if values is None:
            return None
        stamp, at, cost = self._prepared_check
        if cost <= RECHECK_COST:
            current, _ = self._whole_stamp()
            if current != stamp:
                return ("changed", current)
        elif time.monotonic() - at >= max(RECHECK_EVERY, 100 * cost):
            return ("unchecked", at)
        return tokenize(values)

    def stamp(self, region: Region) -> tuple:
        """What changes when the bytes ``region`` reads change: its input's stamp over
        the region grown by the halo, and the whole-input values it uses (a threshold)."""
        inner = reader_stamp(self.source, self._expanded(region))
        if self.op.prepare is None:
            return inner
        return (inner, (self.base or self)._prepared_stamp())

    def _key(self, region: Region, *extra) -> tuple:
        """A cache key: the token, the backend computing it, the region and its stamp."""
        return (self.token, get_backend(), *extra, tuple((s.start, s.stop) for s in region),
                self.stamp(region))

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

    def _tiles(self, region: Region) -> list[Region]:
        """Split along the largest spatial axis so each worker gets a share; on the GPU,
        into tiles that fit the device memory (free memory, or the budget)."""
        n = math.prod(region_shape(region))
        if self.op.geometry is not None:  # what a tile reads: a projection's whole axis
            n = math.prod(region_shape(self._expanded(region)))
        if self.on_gpu and not self.whole_frame:
            limit = device.tile_voxels(self.dtype.itemsize)
            return [region] if n <= limit else self._split(region, math.ceil(n / limit))
        if self.whole_frame or n <= TILE_VOXELS:
            return [region]
        parts = max(n_workers(), math.ceil(n / (4 * TILE_VOXELS)))
        if self._exact_whole:  # a tile reads its whole frame: cut only the other axes
            axes = [k for k in range(self.ndim) if k not in self.out_spatial]
            return split_region(region, axes, parts) if axes else [region]
        if any(self.prefix):  # a tile reads from index 0: cut only the other axes
            axes = [a for a, p in zip(self.spatial, self.prefix, strict=True) if not p]
            return split_region(region, axes, parts) if axes else [region]
        return self._split(region, parts)

    @property
    def _tile_axes(self) -> tuple[int, ...]:
        """The output axes a region may be cut along: the frame, or, for an operation with
        a ``Geometry``, any axis (the others pass through; the frame is mapped)."""
        return tuple(range(self.ndim)) if self.op.geometry is not None else self.spatial

    def _split(self, region: Region, parts: int) -> list[Region]:
        """``region`` in up to ``parts`` tiles. For a ``Geometry``, cut along an axis that
        passes through at the input's chunk boundaries, so that each input chunk is read
        by one tile (tiles run in parallel; two reading one chunk would both read it)."""
        tiles = split_region(region, self._tile_axes, parts)
        if self.op.geometry is None or len(tiles) < 2 or self.source.chunks is None:
            return tiles
        axis = next(k for k, (t, r) in enumerate(zip(tiles[0], region, strict=True))
                    if t != r)
        a = self._inputs[axis]
        if a in self.spatial:
            return tiles
        bounds = np.cumsum((0, *self.source.chunks[a]))
        lo, hi = region[axis].start, region[axis].stop
        cuts = sorted({int(bounds[np.abs(bounds - t[axis].stop).argmin()]) for t in tiles[:-1]}
                      - {lo, hi})
        edges = [lo, *(c for c in cuts if lo < c < hi), hi]
        return [tuple(slice(e0, e1) if k == axis else s for k, s in enumerate(region))
                for e0, e1 in zip(edges[:-1], edges[1:], strict=True)]

    def _expanded(self, region: Region) -> Region:
        """The input region that output ``region`` needs: grown by the halo and clipped
        (for a ``Geometry``: the box it maps to, then the halo)."""
        if self.op.geometry is not None:
            return self._source_region(region)
        grown = list(region)
        for a, h, p in zip(self.spatial, self.halo, self.prefix, strict=True):
            grown[a] = slice(0 if p else max(0, region[a].start - h),
                             min(self.shape[a], region[a].stop + h))
        return tuple(grown)

    def _source_region(self, region: Region) -> Region:
        """For a ``Geometry``: the other axes as they are, the frame's box from the
        geometry (grown by the halo, clipped to the input)."""
        box: list[slice] = [slice(0, 0)] * len(self.source.shape)
        for k, a in enumerate(self._inputs):
            if a not in self.spatial:
                box[a] = region[k]
        frame = self.op.geometry.region(tuple(region[k] for k in self.out_spatial),
                                        self._frame_shape, self.params.as_dict())
        if self._exact_whole:
            frame = tuple(slice(0, n) for n in self._frame_shape)
        for a, s, h, n in zip(self.spatial, frame, self.halo, self._frame_shape, strict=True):
            box[a] = slice(max(0, int(s.start) - h), min(n, int(s.stop) + h))
        return tuple(box)

    @property
    def on_gpu(self) -> bool:
        """Whether tiles are computed on the device: the cupy backend, an operation with a
        GPU function, and precision "fast". CuPy's kernels are not bitwise scipy (they
        meet the fast contract), so an exact result is computed with scipy on the CPU."""
        return (get_backend() == "cupy" and self.op.gpu_function is not None
                and self.precision == "fast")

    def _compute(self, region: Region) -> np.ndarray:
        if 0 in region_shape(region):  # nothing asked (a tile 0 wide): no kernel runs
            return np.empty(region_shape(region), self.dtype)
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
        if self.op.geometry is not None:  # its ``fast`` takes the function's arguments
            return self._apply_geometric(self.source.read(expanded), region, expanded,
                                         self.op.fast if self.fast else None)
        if self.whole_frame:
            key = self._key(expanded, "frame")
            full = CACHE.get(key)
            if full is None:
                full = self._apply(self.source.read(expanded), where=expanded)
                CACHE.put(key, full)
        else:
            block = self.source.read(expanded)
            if self.fast:
                values = self._apply_fast(block, region, expanded)
                if values is not None:
                    return values
            if self.op.separable is not None:
                return self._apply_separable(block, region, expanded)
            full = self._apply(block, where=expanded)
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
            parts = split_region(region, self._tile_axes, 2)
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
        if 0 in region_shape(region):
            return device.to_device(np.empty(region_shape(region), self.dtype))
        expanded = self._expanded(region)
        src = self.source
        if isinstance(src, LazyResult) and src.on_gpu:
            block = src._device_values(expanded)
        else:
            block = device.to_device(src.read(expanded))
        fn = self.op.gpu_function
        if self.op.geometry is not None:
            return self._apply_geometric(block, region, expanded, fn)
        if self.op.separable is not None:
            return self._apply_separable(block, region, expanded)
        full = self._apply(block, fn, where=expanded)
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
        over ``region``'s spatial extent, or None to decline (then this returns None).
        For an operation with ``needs_frame``, ``frame`` also gets ``frame=`` the frame's
        index along the other axes, by letter and in the whole array (``{"t": 3}``)."""
        nd = block.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        inner = within(region, expanded)
        moved = np.moveaxis(block, self.spatial, range(len(other), nd))[
            tuple(inner[a] for a in other)]
        spatial_shape = tuple(region[a].stop - region[a].start for a in self.spatial)
        if not other and not self.op.needs_frame and isinstance(block, np.ndarray):
            # one frame (a volume's box): its own result, not copied into another array
            values = frame(moved)
            if values is None or (isinstance(values, np.ndarray) and values.dtype == self.dtype
                                  and values.shape == spatial_shape
                                  and not np.may_share_memory(values, block)):
                return values
            out = np.empty(spatial_shape, self.dtype)
            out[...] = values
            return out
        out = array_module(block).empty(moved.shape[: len(other)] + spatial_shape, self.dtype)
        for index in np.ndindex(*moved.shape[: len(other)]):
            at = ({"frame": {self.axes[a]: region[a].start + i
                             for a, i in zip(other, index, strict=True)}}
                  if self.op.needs_frame else {})
            values = frame(moved[index], **at)
            if values is None:
                return None
            out[index] = values
        return np.moveaxis(out, range(len(other), nd), self.spatial)

    def _apply_fast(self, block: np.ndarray, region: Region, expanded: Region):
        """The fast kernel on every frame over ``region``, or None where it declines."""
        params = self._call_params()  # with ``axes`` for operations that need them
        params.pop("output", None)  # the kernel's own dtype (``fast`` checked it)
        inner = within(region, expanded)
        crop = tuple(inner[a] for a in self.spatial)
        return self._frames(block, region, expanded,
                            lambda block, **at: self.op.fast(block, crop, **params, **at))

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

    def _apply(self, block: np.ndarray, fn=None, where: Region | None = None) -> np.ndarray:
        """Run the operation on every spatial sub-block (never across T or C); ``where``:
        the block's region in the array (for ``needs_frame``)."""
        fn = fn or self.op.function
        params = self._call_params()
        whole = where or tuple(slice(0, n) for n in block.shape)
        return self._frames(block, whole, whole, lambda block, **at: fn(block, **params, **at))

    def _apply_geometric(self, block, region: Region, expanded: Region, fn=None):
        """A ``Geometry`` operation: ``block`` (the input over ``expanded``) to the values
        over the output ``region``, frame by frame (all frames in one call for a
        ``batched`` function); the other axes pass through. Numpy or CuPy blocks alike."""
        fn = fn or self.op.function
        params = self._call_params()
        nd = block.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        n_other = len(other)
        moved = np.moveaxis(block, self.spatial, range(n_other, nd))
        where = {"region": tuple(region[k] for k in self.out_spatial),
                 "source_region": tuple(expanded[a] for a in self.spatial)}
        if self.op.geometry.wants_shape:
            where["frame_shape"] = self._frame_shape
        if self.op.batched:
            values = fn(moved, **where, **params)
        else:
            values = array_module(block).empty(
                moved.shape[:n_other] + region_shape(where["region"]), self.dtype)
            for index in np.ndindex(*moved.shape[:n_other]):
                at = ({"frame": {self.source.axes[a]: expanded[a].start + i
                                 for a, i in zip(other, index, strict=True)}}
                      if self.op.needs_frame else {})
                values[index] = fn(moved[index], **where, **params, **at)
        values = values.astype(self.dtype, copy=False)
        k = len(self.out_spatial)
        return np.moveaxis(values, range(n_other, n_other + k), self.out_spatial)

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

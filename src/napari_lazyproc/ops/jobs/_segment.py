"""Instance segmentation of any size: a per-block segmenter, previewed lazily, stitched.

``segment(img, method="watershed", diameter=12)`` makes a ``Segmentation`` job. Its
``preview`` is a lazy source of per-block labels for browsing; ``run()`` segments every
block with a halo from the diameter (in parallel, resumable in a store), matches objects
across block faces by IoU in the overlap (``_segment_stitch``) and returns
``SegmentedLabels``: global labels (``GlobalLabels``' reading, pyramid and relabel on
read), which ``np.asarray``, ``lp.export`` and ``lp.measure`` take.
"""

from __future__ import annotations

import itertools

import numpy as np
from dask.base import tokenize

from ..._shared.cluster import distributed_client
from ..._shared.pool import parallel_map
from ...io import SPATIAL_AXES, convert_unit, reader_stamp
from ..engine._as_source import as_source
from ..engine._progress import Cancelled, Progress
from ._label_global import GlobalLabels
from ._segment_blocks import run_blocks
from ._segment_methods import SegmentMethod, resolve_method
from ._segment_stitch import face_pairs, relabel, strip_width
from ._segment_store import SegmentStore

__all__ = ["SegmentedLabels", "Segmentation", "segment"]


def segment(data, method="watershed", *, diameter=None, axes: str | None = None,
            units: str = "pixel", halo=None, block=None, data_axes: str | None = None,
            **params) -> Segmentation:
    """Instance segmentation as a job: previewed lazily, run block by block, stitched.

    Parameters
    ----------
    data
        An image: a ``LazyImage``, a lazy result, a napari layer's data, dask, zarr, numpy.
    method : str, SegmentMethod or callable
        ``"watershed"`` (built in), a method offered by a package (``list_methods()``:
        ``cellpose``, ``stardist`` when installed), or ``f(block) -> labels`` with ``halo``.
    diameter : float or sequence
        Expected object diameter, in pixels (``units="pixel"``) or in the image's units
        (``"physical"``, per axis with its voxel size). Sets each block's halo.
    axes : str, optional
        The spatial axes segmented together (``"zyx"`` or ``"yx"``); never t or c.
    halo : int or sequence, optional
        Voxels of context per spatial axis (a callable's; else from the diameter).
    block : int or sequence, optional
        Core block shape per spatial axis (default: 128 in 3D, 512 in 2D, rounded up to
        whole chunks of the input).
    **params
        The method's parameters (watershed: ``sigma``, ``threshold``, ``min_distance``).

    Returns
    -------
    Segmentation
        ``.preview`` (lazy, per-block labels), ``.run(progress=, cancel=, store=)``.
    """
    source = as_source(data, data_axes)
    spatial = _spatial_axes(source, axes)
    seg_method = resolve_method(method, halo)
    unknown = sorted(set(params) - set(seg_method.params))
    if unknown:
        raise ValueError(f"segment: method {seg_method.name!r} has no parameter "
                         f"{', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(seg_method.params) or 'none'}")
    if diameter is None and halo is None:
        raise ValueError("segment: pass diameter= (the expected object diameter), which "
                         "sets the halo each block needs")
    if units not in ("pixel", "physical"):
        raise ValueError(f"segment: units must be 'pixel' or 'physical' (got {units!r})")
    n = len(spatial)
    if diameter is None:
        pixels = None
    else:
        d = [float(v) for v in (diameter if np.ndim(diameter) else [diameter] * n)]
        if len(d) != n or min(d) <= 0:
            raise ValueError(f"segment: diameter must be positive, one value or one per "
                             f"spatial axis ({n}); got {diameter}")
        sizes = _voxel_sizes(source, spatial) if units == "physical" else [1.0] * n
        pixels = tuple(v / s for v, s in zip(d, sizes, strict=True))
    return Segmentation(source, spatial, seg_method, {**seg_method.params, **params},
                        pixels, halo, block)


def _spatial_axes(source, axes: str | None) -> tuple[int, ...]:
    letters = source.axes
    axes = axes or "".join(a for a in letters if a in SPATIAL_AXES)
    if not axes or set(axes) & set("tc") or any(a not in letters for a in axes):
        raise ValueError(f"segment: axes {axes!r} must be spatial axes of the image (its "
                         f"axes are {letters!r}), such as 'zyx' or 'yx'")
    return tuple(sorted(letters.index(a) for a in axes))


def _voxel_sizes(source, spatial) -> list[float]:
    """Voxel sizes in the unit of the last spatial axis (z in mm, x in µm: z converted)."""
    units = [source.units[a] for a in spatial]
    sizes = [float(source.scale[a]) for a in spatial]
    if None in units or len(set(units)) == 1:
        return sizes
    return [convert_unit(s, u, units[-1]) for s, u in zip(sizes, units, strict=True)]


class Segmentation:
    """A segmentation job: nothing is computed until ``preview`` is read or ``run()``."""

    def __init__(self, source, spatial, method: SegmentMethod, params: dict, diameter,
                 halo=None, block=None) -> None:
        self.source, self.spatial, self.method = source, tuple(spatial), method
        self.params, self.diameter = dict(params), diameter
        n = len(self.spatial)
        ref = diameter if diameter is not None else (1.0,) * n
        if halo is None:
            spatial_halo = tuple(int(h) for h in method.halo(ref, self.params))
        else:
            spatial_halo = tuple(int(h) for h in (halo if np.ndim(halo) else [halo] * n))
        if len(spatial_halo) != n or min(spatial_halo) < 1:
            raise ValueError(f"segment: halo must be at least 1 voxel per spatial axis "
                             f"(the overlap objects are matched in); got {spatial_halo}")
        self.halo = [0] * len(source.shape)
        for a, h in zip(self.spatial, spatial_halo, strict=True):
            self.halo[a] = h
        self.block = self._block_shape(block)
        self.widths = {a: min(strip_width(self.halo[a]), self.block[a]) for a in self.spatial}
        self.grid = tuple(-(-s // b) for s, b in zip(source.shape, self.block, strict=True))
        letters = "".join(source.axes[a] for a in self.spatial)
        self.steps = [*getattr(source, "steps", []), {
            "op": "segment", "method": method.name, "axes": letters,
            "diameter": None if diameter is None else [round(d, 4) for d in diameter],
            "halo": spatial_halo, "block": [self.block[a] for a in self.spatial],
            **{k: v for k, v in self.params.items()
               if isinstance(v, (int, float, str, type(None)))}}]
        self._labels: SegmentedLabels | None = None
        self._preview = self._plane_preview = self._live_preview = None

    def _block_shape(self, block) -> tuple[int, ...]:
        shape, chunks = self.source.shape, self.source.chunks
        out = [1] * len(shape)
        n = len(self.spatial)
        wanted = (block if np.ndim(block) else [block] * n) if block is not None else None
        for k, a in enumerate(self.spatial):
            if wanted is not None:
                size = int(wanted[k])
            else:  # whole chunks of the input, at least 4 halos (the overlap's cost)
                chunk = int(chunks[a][0]) if chunks else shape[a]
                target = max(128 if n > 2 else 512, 4 * self.halo[a])
                size = chunk * max(1, -(-target // max(1, chunk)))
            out[a] = max(1, min(size, shape[a]))
        return tuple(out)

    def __repr__(self) -> str:
        state = "run" if self.result is not None else "not run"
        return (f"Segmentation(method={self.method.name!r}, diameter={self.diameter}, "
                f"block={self.block}, halo={tuple(self.halo)}, {state})")

    # ---------------------------------------------------------------- geometry
    def blocks(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(g) for g in self.grid)))

    def extended(self, region) -> tuple[slice, ...]:
        """``region`` grown by the halo, clipped to the image."""
        return tuple(slice(max(0, s.start - h), min(n, s.stop + h))
                     for s, h, n in zip(region, self.halo, self.source.shape, strict=True))

    def segment_region(self, region, prepared: dict) -> np.ndarray:
        """The method's labels over ``region`` (each frame's spatial block on its own)."""
        data = np.asarray(self.source.read(region))
        other = [a for a in range(data.ndim) if a not in self.spatial]
        moved = np.moveaxis(data, self.spatial, range(len(other), data.ndim))
        out = np.zeros(moved.shape, np.uint32)
        kwargs = {**self.params, **prepared}
        if self.diameter is not None:
            kwargs["diameter"] = self.diameter
        total = 0
        for frame in np.ndindex(*moved.shape[: len(other)]):
            labels = np.asarray(self.method.segment(moved[frame], **kwargs))
            if labels.shape != moved[frame].shape or labels.dtype.kind not in "biu":
                raise ValueError(f"segment: method {self.method.name!r} returned "
                                 f"{labels.dtype} {labels.shape} for a block of shape "
                                 f"{moved[frame].shape}; it must return integer labels of "
                                 f"the block's shape")
            labels = _compact(labels)
            n = int(labels.max()) if labels.size else 0
            if total:
                labels = np.where(labels > 0, labels + np.uint32(total), 0)
            out[frame] = labels
            total += n
        return np.moveaxis(out, range(len(other), data.ndim), self.spatial)

    def prepare(self, progress=None, cancel=None, whole=True) -> dict:
        if self.method.prepare is None:
            return {}
        return self.method.prepare(self.source, self.params, progress, cancel, whole)

    @property
    def preview(self):
        """Per-block labels, lazily, for browsing (never stitched: an object crossing a
        block face has one label per block). Ids are stable while panning."""
        if self._preview is None:
            from ._segment_preview import SegmentPreview

            self._preview = SegmentPreview(self)
        return self._preview

    @property
    def plane_preview(self):
        """A faster look: each plane across the first spatial axis segmented in 2D (no
        context along that axis), in blocks of at least 256 x 256. Its objects are the
        planes' cross-sections, not the 3D objects ``run()`` finds."""
        if len(self.spatial) < 3:
            return self.preview
        if self._plane_preview is None:
            inner = self.spatial[1:]
            flat = Segmentation(
                self.source, inner, self.method, self.params,
                None if self.diameter is None else self.diameter[1:],
                halo=[self.halo[a] for a in inner],
                block=[max(self.block[a], 256) for a in inner])
            self._plane_preview = flat.preview
        return self._plane_preview

    @property
    def live_preview(self):
        """What the Segment panel shows: each plane's 2D look (``plane_preview``) at
        once, replaced block by block by the 3D preview (blocks of a few planes,
        segmented in 3D with their halo) as it is computed in the background, ids kept
        (``LivePreview``). In 2D, ``preview``."""
        if len(self.spatial) < 3:
            return self.preview
        if self._live_preview is None:
            from ._segment_live_preview import LivePreview

            self._live_preview = LivePreview(self)
        return self._live_preview

    def identity(self, stamp) -> str:
        return tokenize(self.source.token, stamp, self.method.name, self.method.segment,
                        sorted((k, repr(v)) for k, v in self.params.items()), self.diameter,
                        self.spatial, self.halo, self.block, self.widths)

    # ---------------------------------------------------------------- the job
    @property
    def labels(self) -> SegmentedLabels:
        """The stitched labels, to ``run()`` (``lp.export`` and ``lp.measure`` run them)."""
        if self._labels is None:
            self._labels = SegmentedLabels(self)
        return self._labels

    @property
    def result(self) -> SegmentedLabels | None:
        """The stitched labels once run, else None."""
        return self._labels if self._labels is not None and self._labels.done else None

    def run(self, progress=None, cancel=None, store=None, resume: bool = True,
            scheduler=None, workers: int | None = None) -> SegmentedLabels:
        """Segment every block, stitch, and return the labels (``SegmentedLabels``).

        ``progress``: True for a bar, or ``f(done, total)``; ``cancel``: a
        threading.Event (``Cancelled`` is raised and nothing complete is left);
        ``store``: a folder to keep the work in, so a job killed or cancelled resumes
        from its stored blocks (``resume=True``) with the same labels; a temporary
        folder by default. ``scheduler`` / ``workers``: the blocks on a dask cluster
        (as ``lp.export``'s; the store must be a folder the workers can reach).
        """
        return self.labels.run(progress=progress, cancel=cancel, store=store, resume=resume,
                               scheduler=scheduler, workers=workers)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_labels", "_preview", "_plane_preview", "_live_preview"):
            state[name] = None  # to workers: the job, not what it showed
        return state

    def stitch(self, progress=None, cancel=None, store=None, resume: bool = True,
               scheduler=None, workers=None):
        """Run the job into a store: ``(store, lut, offsets, n_labels, run_stamp)``."""
        whole = tuple(slice(0, n) for n in self.source.shape)
        run_stamp = tokenize(reader_stamp(self.source, whole))
        st = SegmentStore(store, self.identity(run_stamp), self.source.shape, self.block,
                          self.spatial, self.widths)
        try:
            finished = st.completed() if resume and store is not None else None
            if finished is None:
                finished = self._compute(st, progress, cancel, resume, scheduler, workers)
        except BaseException:
            st.close()
            raise
        return (st, *finished, run_stamp)

    def _compute(self, st: SegmentStore, progress, cancel, resume: bool, scheduler=None,
                 workers=None):
        prepared = st.open(resume)
        if not prepared:
            prepared = self.prepare(cancel=cancel)
            st.keep_prepared(prepared)
        blocks = self.blocks()
        faces = [(i, a) for i in blocks for a in self.spatial if i[a] < self.grid[a] - 1]
        done = st.done()
        bar = Progress(len(blocks) + len(faces), progress, cancel, desc="segment")
        try:
            if done:
                bar.step(len(done))

            todo = [b for b in blocks if b not in done]
            with distributed_client(scheduler, workers) as client:
                run_blocks(self, st, todo, prepared, bar, client)
            done = st.done()
            if len(done) != len(blocks):  # never: every block wrote its marker
                raise Cancelled("segment: blocks missing after the pass")
            counts = np.array([done[b][0] for b in blocks], np.int64).reshape(self.grid)
            offsets = np.zeros(self.grid, np.int64)
            offsets.flat[1:] = np.cumsum(counts.ravel())[:-1]
            n_total = int(counts.sum())
            present = np.zeros(n_total + 1, bool)
            for b in blocks:
                present[done[b][1] + offsets[b]] = True

            def face(task) -> np.ndarray:
                bar.check()
                pairs = face_pairs(self, st, offsets, *task)
                bar.step()
                return pairs

            pairs = np.concatenate([np.empty((0, 2), np.int64), *parallel_map(face, faces)])
            lut, n_labels = relabel(n_total, pairs, present)
            bar.check()
            st.finish(lut, offsets, n_labels)
        finally:
            bar.close()
        return lut, offsets, n_labels


def _compact(labels: np.ndarray) -> np.ndarray:
    """uint32 labels; renumbered 1..n when a method's ids are sparse (hashes, big ids)."""
    if labels.size and labels.min() < 0:
        raise ValueError("segment: a method returned negative labels; 0 is the background")
    if labels.size and labels.max() > labels.size:
        ids, inverse = np.unique(labels, return_inverse=True)
        labels = inverse.reshape(labels.shape) + (0 if ids[0] == 0 else 1)
    return labels.astype(np.uint32, copy=False)


class SegmentedLabels(GlobalLabels):
    """The stitched labels of a ``Segmentation``: computed by ``run()`` (which
    ``lp.export`` and ``lp.measure`` call when needed), then read (relabelled per
    region), shown as a pyramid, exported and measured like global labels."""

    def __init__(self, job: Segmentation) -> None:
        super().__init__(job.source, job.spatial, 1, job.steps)
        self.job = job
        self.segment_store: SegmentStore | None = None
        self.block = tuple(job.block)
        self.grid = tuple(job.grid)
        self.chunks = tuple(
            tuple(min(b, n - i * b) for i in range(g))
            for n, b, g in zip(self.shape, self.block, self.grid, strict=True))
        self.token = "lp-segmented-" + job.identity(None)

    def run(self, progress=None, cancel=None, store=None, resume: bool = True,
            scheduler=None, workers: int | None = None) -> SegmentedLabels:
        """Segment and stitch (see ``Segmentation.run``); once done, returns at once."""
        if self.done:
            return self
        st, lut, offsets, n_labels, run_stamp = self.job.stitch(
            progress, cancel, store, resume, scheduler, workers)
        self.segment_store, self._store, self._offsets = st, st.labels, offsets
        self.n_labels, self._run_stamp, self._levels = int(n_labels), run_stamp, None
        if self.n_labels >= 2**32 - 1:
            self.dtype = np.dtype(np.uint64)
        self._lut = lut
        return self

    def __repr__(self) -> str:
        state = f"{self.n_labels} labels" if self.done else "not run"
        return f"SegmentedLabels(shape={self.shape}, method={self.method_name!r}, {state})"

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["segment_store"] = None  # its folder travels by path in _store
        state["job"] = None  # done: reading needs the store, offsets and table only
        state["method_name"] = self.method_name
        return state

    @property
    def method_name(self) -> str:
        return self.job.method.name if self.job is not None else self.__dict__.get(
            "method_name", "?")

"""Global labeling: per-chunk labels, a union-find merge across chunk faces, a relabel.

Pass 1 labels every chunk on its own (in parallel) and stores the chunk-local labels in a
zarr array (lz4: cheap to write and read back), keeping each chunk's outer planes in
memory when they fit ``FACE_BYTES``. Each input chunk is read once. Pass 2 takes, for
every internal chunk face, the two voxel planes on either side (those kept planes, or
read back from the stored labels, never the input) and collects the pairs of
provisional labels that touch under the connectivity. The connected
components of that graph give one label per object; a lookup table maps provisional
labels to consecutive final ones when regions are read. Cost is linear in the number of
chunks, and memory is bounded by a few chunks plus the table of labels.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import threading

import numpy as np
from dask.base import tokenize

from ..._shared.pool import parallel_map
from ..._shared.regions import block_region
from ..._shared.source import RegionReader, channel_names_of, translate_of
from ...io import LazyArray, as_dask, fast_codecs, os_errors, reader_stamp
from ..engine._levels import label_factors
from ..engine._progress import Progress
from ..filters._label import label_block
from ._label_merge import _relabel, _touching, neighbours, wrap_pairs

#: a chunk face up to this many voxels (both planes) is read in one piece
SLAB_VOXELS = 2**25
#: pass 1 keeps the chunks' outer planes (the merge's input) in memory up to this many
#: bytes; beyond it the merge reads them back from the stored chunk labels
FACE_BYTES = 2**29


class GlobalLabels:
    """Labels consistent across the whole volume. Computed by ``run()``, never by slicing."""

    kind = "labels"

    def __init__(self, source, spatial: tuple[int, ...], connectivity: int, steps,
                 structure=None, wrap_axes: str = "", output=None) -> None:
        self.source = source
        self.spatial = tuple(spatial)
        self.connectivity = int(connectivity)
        #: scipy's structure (3 x ... x 3, symmetric) where given: it replaces connectivity
        self.structure = None if structure is None else np.asarray(structure, bool)
        #: the array axes along which labels wrap around (dask-image's ``wrap_axes``)
        self.wrap = tuple(source.axes.index(a) for a in wrap_axes)
        self.shape = tuple(source.shape)
        self.ndim = len(self.shape)
        #: scipy's ``output`` dtype where given (checked to hold every label once run)
        self.output = None if output is None else np.dtype(output)
        self.dtype = np.dtype(np.uint32) if output is None else self.output
        self.axes, self.scale, self.units = source.axes, source.scale, source.units
        self.translate = translate_of(source)
        self.channel_names = channel_names_of(source)
        chunks = source.chunks or tuple((n,) for n in self.shape)
        self.block = tuple(int(c[0]) for c in chunks)
        self.grid = tuple(math.ceil(n / b) for n, b in zip(self.shape, self.block, strict=False))
        self.chunks = tuple(
            tuple(min(b, n - i * b) for i in range(g))
            for n, b, g in zip(self.shape, self.block, self.grid, strict=False)
        )
        self.steps = steps
        self.source_path = getattr(source, "source_path", None)
        # the labels depend only on the input and the connectivity (the merge is
        # deterministic): results of the same input share cache entries, never another's
        self.token = "lp-global-labels-" + tokenize(source.token, self.spatial,
                                                    self.connectivity, self.structure,
                                                    self.wrap, str(self.output))
        self._store = None
        self._offsets: np.ndarray | None = None
        self._lut: np.ndarray | None = None
        self.n_labels: int | None = None
        self._levels: list | None = None
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._lut is not None

    @property
    def levels(self) -> list:
        """Once run: the labels, then coarser levels for display, each a pick of every
        f-th label (never a mean), matching the input's display levels (or, for a large
        single-scale input, a virtual pyramid). Before ``run()``: only this one."""
        if not self.done:
            return [self]
        if self._levels is None:
            from ...io import Downsampled, virtual_factors

            coarse = getattr(self.source, "display_levels", [self.source])[1:]
            if coarse:
                factors = [label_factors(self.shape, lvl.shape) for lvl in coarse]
            else:
                factors = virtual_factors(self.shape, self.axes)
            from dask.array.core import normalize_chunks

            from ..engine._sources import ArraySource

            reader = RegionReader(self)
            self._levels = [self]
            for f in factors:
                pick = Downsampled(reader, f, "nearest", chunks=self.block,
                                   name=f"{self.token}-{'x'.join(map(str, f))}")
                self._levels.append(ArraySource(
                    pick, pick.shape, pick.dtype, normalize_chunks(pick.chunks, pick.shape),
                    pick.name, self.axes, [s * k for s, k in zip(self.scale, f, strict=True)],
                    self.units, getattr(self.source, "name", "")))
            for level in self._levels[1:]:
                level.translate = self.translate
        return self._levels

    @property
    def display_levels(self) -> list:
        """The same as ``levels``: the label pyramid already spans what a viewer shows."""
        return self.levels

    @property
    def multiscale(self) -> bool:
        return len(self.levels) > 1

    def __repr__(self) -> str:
        state = f"{self.n_labels} labels" if self.done else "not run"
        return f"GlobalLabels(shape={self.shape}, connectivity={self.connectivity}, {state})"

    # ------------------------------------------------------------------ the job
    def _blocks(self):
        return list(itertools.product(*(range(g) for g in self.grid)))

    def _region(self, index) -> tuple[slice, ...]:
        return block_region(index, self.block, self.shape)

    def run(self, progress=None, cancel=None, store=None) -> GlobalLabels:
        """Label the whole volume. ``progress``: True for a bar, or ``f(done, total)``;
        ``cancel``: a threading.Event; ``store``: where to keep the chunk labels (a path
        or zarr store; a temporary folder by default)."""
        import zarr
        from zarr.codecs import BloscCodec

        # the input's stamp before it is read: these labels are of the bytes it names
        self._run_stamp = tokenize(reader_stamp(self.source,
                                                tuple(slice(0, n) for n in self.shape)))
        blocks = self._blocks()
        n_faces = sum(g - 1 for a, g in enumerate(self.grid) if a in self.spatial)
        bar = Progress(len(blocks) + n_faces, progress, cancel, desc="label")
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lazyproc-labels-")
            store = self._tmp.name
        # lz4 with byte shuffle: labels compress well and this store is written and read
        # once each; zarr's default zstd took as long as the labeling itself
        chunk_store = fast_codecs(zarr.create_array(
            store, shape=self.shape, chunks=self.block, dtype="uint32", fill_value=0,
            overwrite=True,
            compressors=BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")))
        counts = np.zeros(self.grid, np.int64)
        other = [a for a in range(self.ndim) if a not in self.spatial]
        faces = {} if self._face_bytes() <= FACE_BYTES else None

        def label_one(index):
            bar.check()
            region = self._region(index)
            data = np.asarray(self.source.read(region))
            moved = np.moveaxis(data, self.spatial, range(len(other), self.ndim))
            out = np.zeros(moved.shape, np.uint32)
            total = 0
            for frame in np.ndindex(*moved.shape[: len(other)]):
                labels, n = _label_frame(moved[frame], self.connectivity, self.structure)
                if total:  # numbered after the chunk's earlier frames (in place: no copies)
                    np.add(labels, total, out=labels, where=labels > 0)
                out[frame] = labels
                total += n
            out = np.moveaxis(out, range(len(other), self.ndim), self.spatial)
            with os_errors():
                chunk_store[region] = out
            if faces is not None:  # the planes next to a neighbour chunk, for the merge
                for a in self.spatial:
                    if index[a] > 0:
                        faces[index, a, 0] = np.take(out, 0, axis=a)
                    if index[a] < self.grid[a] - 1:
                        faces[index, a, 1] = np.take(out, -1, axis=a)
            counts[index] = total
            bar.step()

        try:
            parallel_map(label_one, blocks)
            offsets = np.zeros(self.grid, np.int64)
            offsets.flat[1:] = np.cumsum(counts.ravel())[:-1]
            self._store, self._offsets = chunk_store, offsets
            n_total = int(counts.sum())
            pairs = self._face_pairs(bar, faces)
            faces = None
            if self.wrap:
                pairs = np.concatenate([pairs, self._wrap_pairs()])
            self._lut, self.n_labels = _relabel(n_total, pairs)
            self._levels = None
            if self.output is not None:
                if self.n_labels > _largest(self.output):
                    self._lut = None
                    raise ValueError(f"label: {self.n_labels} labels do not fit output "
                                     f"{self.output} (at most {_largest(self.output)})")
            elif self.n_labels >= 2**32 - 1:
                self.dtype = np.dtype(np.uint64)
        finally:
            bar.close()
        return self

    def _provisional(self, region) -> np.ndarray:
        """Stored chunk labels over ``region`` with each chunk's offset added."""
        local = np.asarray(self._store[region]).astype(np.int64)
        ranges = [range(s.start // b, (s.stop - 1) // b + 1)
                  for s, b in zip(region, self.block, strict=False)]
        for index in itertools.product(*ranges):
            sub = tuple(
                slice(max(s.start, i * b) - s.start, min(s.stop, (i + 1) * b) - s.start)
                for s, i, b in zip(region, index, self.block, strict=False)
            )
            view = local[sub] if sub else local[...]  # (a 0-D input: a view, not a scalar)
            view[view > 0] += self._offsets[index]
        return local

    def _face_bytes(self) -> int:
        """Bytes of the planes on both sides of every internal chunk face."""
        volume = math.prod(self.shape)
        return sum(2 * (self.grid[a] - 1) * (volume // max(1, self.shape[a])) * 4
                   for a in self.spatial)

    def _kept_planes(self, kept: dict, axis: int, region) -> np.ndarray:
        """Provisional labels over ``region`` (two planes across a chunk face along
        ``axis``) from the planes pass 1 kept: as ``_provisional`` would read them."""
        out = np.zeros([s.stop - s.start for s in region], np.int64)
        k = (region[axis].start + 1) // self.block[axis]
        ranges = [[0] if a == axis else range(region[a].start // self.block[a],
                                              (region[a].stop - 1) // self.block[a] + 1)
                  for a in range(self.ndim)]
        for index in itertools.product(*ranges):
            src, dst = [], []
            for a in range(self.ndim):
                if a == axis:
                    continue
                lo = index[a] * self.block[a]
                start, stop = max(region[a].start, lo), min(region[a].stop, lo + self.block[a])
                src.append(slice(start - lo, stop - lo))
                dst.append(slice(start - region[a].start, stop - region[a].start))
            for side, (i, pos) in enumerate(((k - 1, 1), (k, 0))):
                chunk = index[:axis] + (i,) + index[axis + 1:]
                # an array even where the face is one voxel (1-D input: a 0-d plane)
                piece = np.array(kept[chunk, axis, pos][tuple(src)], np.int64)
                piece[piece > 0] += self._offsets[chunk]
                out[tuple(dst[:axis]) + (side,) + tuple(dst[axis:])] = piece
        return out

    def _structure(self) -> np.ndarray:
        import scipy.ndimage

        return self.structure if self.structure is not None else \
            scipy.ndimage.generate_binary_structure(len(self.spatial), self.connectivity)

    def _wrap_pairs(self) -> np.ndarray:
        """Pairs across the array's edge along the wrap axes: their first and last planes
        (whole planes of the stored labels, read back)."""
        found = [np.empty((0, 2), np.int64)]
        for axis in self.wrap:
            n = self.shape[axis]
            both = [self._provisional(tuple(slice(i, i + 1) if a == axis else slice(0, m)
                                            for a, m in enumerate(self.shape)))
                    for i in (0, n - 1)] if n > 1 else []
            if not both:
                continue
            planes = np.concatenate(both, axis=axis)  # first, last: 2 planes
            found.append(wrap_pairs(planes, self._structure(), self.spatial, self.wrap,
                                    only=(axis,)))
        return np.concatenate(found)

    def _face_pairs(self, bar: Progress, kept: dict | None = None) -> np.ndarray:
        """Pairs of provisional labels that touch across internal chunk faces, the faces
        compared in parallel: from the planes pass 1 kept (``kept``), or read back."""
        faces = []
        for i, axis in enumerate(self.spatial):
            others = [a for a in self.spatial if a != axis]
            offsets = neighbours(self._structure(), i)
            for k in range(1, self.grid[axis]):
                faces.append((axis, others, offsets, k * self.block[axis]))

        def face(task) -> np.ndarray:
            axis, others, offsets, b = task
            bar.check()
            slab = math.prod(2 if a == axis else n for a, n in enumerate(self.shape))
            if slab <= SLAB_VOXELS:  # the whole face in one read
                tiles = [None]
            else:  # face pieces of one chunk, overlapping by a voxel for diagonals
                tiles = itertools.product(*(
                    range(self.grid[a]) if a != axis else [0] for a in range(self.ndim)
                ))
            found = [np.empty((0, 2), np.int64)]
            for tile in tiles:
                region = []
                for a in range(self.ndim):
                    if a == axis:
                        region.append(slice(b - 1, b + 1))
                    elif tile is None:
                        region.append(slice(0, self.shape[a]))
                    else:
                        lo = tile[a] * self.block[a]
                        hi = min(self.shape[a], lo + self.block[a] + (1 if a in others else 0))
                        region.append(slice(lo, hi))
                if kept is None:
                    both = self._provisional(tuple(region))
                else:
                    both = self._kept_planes(kept, axis, tuple(region))
                lo_plane = np.take(both, 0, axis=axis)
                hi_plane = np.take(both, 1, axis=axis)
                in_plane = [o if o < axis else o - 1 for o in others]
                found.append(_touching(lo_plane, hi_plane, in_plane, offsets))
            bar.step()
            return np.concatenate(found)

        return np.concatenate([np.empty((0, 2), np.int64), *parallel_map(face, faces)])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_levels"] = None
        state.pop("_tmp", None)  # the chunk labels must be in a shared store to travel
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def stamp(self, region) -> tuple:
        """The labels are of the input as it was when ``run()`` read it."""
        return (getattr(self, "_run_stamp", None),)

    def read(self, region, cancel=None) -> np.ndarray:
        if not self.done:
            raise RuntimeError(
                "global labeling has not run yet: call .run() (or 'Label whole volume' in "
                "the widget); slicing never starts it"
            )
        # (np.asarray: a 0-D region's lookup is a scalar)
        return np.asarray(self._lut[self._provisional(region)].astype(self.dtype, copy=False))

    def __getitem__(self, key):
        if not self.done:
            self.read(())  # raises the clear error
        return LazyArray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = self.read(tuple(slice(0, n) for n in self.shape))
        return out if dtype is None else out.astype(dtype)

    def to_dask(self):
        if not self.done:
            self.read(())
        return as_dask(RegionReader(self), self.chunks, self.token)


def _largest(dtype: np.dtype) -> int:
    return int(np.iinfo(dtype).max if dtype.kind in "iu" else 2**np.finfo(dtype).nmant)


def _label_frame(frame: np.ndarray, connectivity: int,
                 structure=None) -> tuple[np.ndarray, int]:
    """Per-chunk labels: on the GPU (cupyx.scipy.ndimage.label) under the CuPy backend,
    falling back to the CPU when the device is out of memory. The merge is the same."""
    from ...backend import device, get_backend

    if get_backend() == "cupy":
        try:
            labels, n = label_block(device.to_device(frame), connectivity, structure)
            return device.to_host(labels), n
        except Exception as exc:
            if not device.is_oom(exc):
                raise
            device.free_pool()
            device.warn_once("oom-label", "label: out of GPU memory; labeling chunks on the CPU")
    return label_block(frame, connectivity, structure)

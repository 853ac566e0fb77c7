"""Zarr writers: OME-Zarr 0.4 / 0.5 (with a pyramid) and a plain zarr v3 array.

Chunk by chunk, resumable, in threads or on a dask.distributed cluster.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .._shared.cluster import distributed_client
from ..io import fast_codecs, reduce_block
from ..ops import CACHE, Progress
from . import _chunks, _metadata
from ._input import ExportInput
from ._paths import ExportError
from ._remote_path import zarr_store
from ._resume import ResumeRecord
from ._writer import Writer

#: default output chunks hold about this many bytes
CHUNK_BYTES = 8 << 20


def default_block(shape, dtype, axes: str) -> tuple[int, ...]:
    """About 8 MB chunks: whole planes up to 1024 x 1024, one index of T and C."""
    block = []
    for n, a in zip(shape, axes, strict=True):
        if a in "tc":
            block.append(1)
        elif a in "yx":
            block.append(min(n, 1024))
        else:
            block.append(n)
    itemsize = np.dtype(dtype).itemsize
    for i, a in enumerate(axes):  # shrink z until the chunk is at most 8 MB
        if a == "z":
            rest = math.prod(b for j, b in enumerate(block) if j != i) * itemsize
            block[i] = max(1, min(shape[i], CHUNK_BYTES // max(1, rest)))
    return tuple(block)


class DownsampledLevel:
    """A 2x smaller level (y and x) read from the stored level below, chunk by chunk.

    Labels are picked (every second voxel), never averaged; other values are averaged
    (rounded for integers), by ``io.reduce_block``: the display pyramid's downsampler, so
    an exported level shows what the viewer showed. It pickles by path, for dask workers.
    """

    def __init__(self, store, path: str, axes: str, labels: bool) -> None:
        import zarr

        below = zarr.open_array(store=zarr_store(store), path=path, mode="r")
        self.store, self.path, self.axes, self.labels = store, path, axes, labels
        self.below_shape = tuple(below.shape)
        self.dtype = below.dtype
        self.factors = tuple(2 if a in "yx" else 1 for a in axes)
        self.shape = tuple(math.ceil(n / f)
                           for n, f in zip(self.below_shape, self.factors, strict=True))
        self._below = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_below": None}

    def read(self, region) -> np.ndarray:
        import zarr

        if self._below is None:
            self._below = fast_codecs(zarr.open_array(store=zarr_store(self.store),
                                                      path=self.path, mode="r"))
        src = tuple(slice(s.start * f, min(n, s.stop * f))
                    for s, f, n in zip(region, self.factors, self.below_shape, strict=True))
        return reduce_block(np.asarray(self._below[src]), self.factors,
                            "nearest" if self.labels else "mean")


class ChunkedZarrWriter(Writer):
    """Writes level after level, each chunk once, into a zarr store; resumable."""

    resumable = True
    remote = True
    #: the zarr format written (2 or 3)
    zarr_format = 3
    #: how many levels are written (a plain array has one)
    multiscale = True

    def check(self, data: ExportInput) -> None:
        """Fix the chunk shape, and refuse one that does not match the data."""
        chunks = self.options.chunks
        block = tuple(chunks) if chunks else (
            data.block or default_block(data.shape, data.dtype, data.axes))
        if len(block) != len(data.shape):
            raise ExportError(f"chunks {block} do not match the {len(data.shape)}-D data")
        self.block = tuple(min(int(b), n) if n else 1
                           for b, n in zip(block, data.shape, strict=True))
        self.dtype = data.dtype  # before a labels job runs: what the record says

    def job(self, data: ExportInput) -> dict[str, Any]:
        """What the resume record keeps, to refuse resuming a different export."""
        opts = self.options
        return {**super().job(data), "dtype": str(self.dtype), "block": list(self.block),
                "version": opts.version, "levels": opts.levels}

    def write(self, data: ExportInput, partial: Path) -> None:
        opts = self.options
        record = ResumeRecord(partial)
        job = self.recorded = self.job(data)
        record.begin(job)
        data.ensure_labels(record.labels_store, opts.progress, opts.cancel)
        _prepare_chain(data.source, opts.cancel)  # once here, not once per worker process
        with CACHE.budget(opts.cache_bytes), \
                distributed_client(opts.scheduler, opts.workers) as client:
            scales = self._write_levels(data, partial, record, client)
        if data.identity() != job["input"]:  # written to while it was read: never complete
            raise ExportError(
                f"the input changed while it was exported (its files were written "
                f"meanwhile), so {partial} may mix both; export again with overwrite=True "
                f"once it is complete")
        self.write_attributes(data, partial, scales)
        if isinstance(partial, Path):  # a URL's record goes after its manifest (commit)
            record.finish()

    def _write_levels(self, data: ExportInput, partial: Path, record: ResumeRecord,
                      client) -> list[tuple[float, ...]]:
        """Every level, the first from the data, each next one from the level below;
        returns the scale of each."""
        opts = self.options
        n_levels = opts.levels if self.multiscale else 1
        scales = []
        source, shape = data.source, data.shape
        for level in range(n_levels):
            array_path = str(level) if self.multiscale else ""
            if level > 0:
                source = DownsampledLevel(partial, str(level - 1), data.axes,
                                          data.kind == "labels")
                shape = source.shape
            block = tuple(min(b, n) for b, n in zip(self.block, shape, strict=True))
            self._create_array(partial, array_path, shape, block, data.dtype, data.axes)
            job = _chunks.ChunkJob(source, partial, array_path, block, record, level,
                                   opts.resume, opts.cache_bytes)
            scales.append(tuple(s * (2**level if a in "yx" else 1)
                                for s, a in zip(data.scale, data.axes, strict=True)))
            bar = Progress(job.n_chunks, opts.progress, opts.cancel,
                           desc=f"export{f' level {level}' if n_levels > 1 else ''}")
            try:
                _chunks.run(job, bar, opts.cancel, client, opts.workers)
            finally:
                bar.close()
        return scales

    def _create_array(self, partial: Path, array_path: str, shape, block, dtype, axes: str):
        """The output array; when resuming, the one already there if its shape fits."""
        import zarr

        store = zarr_store(partial)
        if self.options.resume:
            try:
                arr = zarr.open_array(store=store, path=array_path, mode="r+")
                if tuple(arr.shape) == tuple(shape):
                    return arr
            except (FileNotFoundError, KeyError, ValueError, zarr.errors.ArrayNotFoundError):
                pass
        kwargs: dict[str, Any] = {}
        if self.zarr_format == 2:
            kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            kwargs["dimension_names"] = list(axes)
        if array_path:
            group = zarr.open_group(store=store, mode="a", zarr_format=self.zarr_format)
            return group.create_array(array_path, shape=shape, chunks=block, dtype=dtype,
                                      fill_value=0, overwrite=True, **kwargs)
        # the root array of a fresh partial: never overwrite=True, which would empty the
        # whole folder, the resume record included
        return zarr.create_array(store=store, shape=shape, chunks=block, dtype=dtype,
                                 fill_value=0, zarr_format=self.zarr_format, **kwargs)

    @abstractmethod
    def write_attributes(self, data: ExportInput, partial: Path, scales) -> None:
        """The format's attributes, once every level is written."""


class OmeZarrWriter(ChunkedZarrWriter):
    """OME-Zarr: 0.4 on zarr v2, 0.5 on zarr v3 (``version``), ``levels`` levels; an
    image, or an image-label group for labels."""

    def __init__(self, options) -> None:
        super().__init__(options)
        self.version = options.version
        self.zarr_format = 2 if self.version == "0.4" else 3

    def write_attributes(self, data: ExportInput, partial: Path, scales) -> None:
        import zarr

        version = self.version
        group = zarr.open_group(store=zarr_store(partial), mode="r+", zarr_format=self.zarr_format)
        # a level averaged from 2 x 2 voxels is centred between them, half a voxel of level
        # 0 on per halving; a label level picks the first voxel and stays where it is
        shift = 0.0 if data.kind == "labels" else 0.5
        translates = [tuple(t + shift * (2**k - 1) * s0 if a in "yx" else t
                            for t, s0, a in zip(data.translate, data.scale, data.axes,
                                                strict=True))
                      for k in range(len(scales))]
        ome: dict[str, Any] = {
            "multiscales": _metadata.multiscales(data.name, data.axes, data.units, scales,
                                                 translates, version),
        }
        if data.kind == "labels":
            label: dict[str, Any] = {"source": {"image": "../../"}}
            ome["image-label"] = {"version": version, **label} if version == "0.4" else label
        elif "c" in data.axes:
            n = data.shape[data.axes.index("c")]
            windows = data.channel_windows()
            if windows is None and data.channel_names:  # a result's: from what was written
                windows = _written_windows(partial, str(len(scales) - 1), data.axes)
            omero = _metadata.omero(data.channel_names, data.channel_colors, windows, n)
            if omero is not None:
                ome["omero"] = omero
        prov = _metadata.provenance(data.steps, data.source_path, self.recorded)
        group.attrs.update({**_metadata.wrap(ome, version), "napari-lazyproc": prov})


def _written_windows(partial, path: str, axes: str) -> list[tuple[float, float]]:
    """Per-channel display windows of the level written at ``path``, from a bounded
    sample of it (OME-Zarr 0.4 needs one per channel to name the channels)."""
    import dask.array as da
    import zarr

    from ..io import LazyImage, sample_contrast_limits

    arr = zarr.open_array(store=zarr_store(partial), path=path, mode="r")
    n = len(axes)
    image = LazyImage(levels=[da.from_zarr(arr)], axes=axes, scale=(1.0,) * n,
                      translate=(0.0,) * n, units=(None,) * n, name="", source={})
    return sample_contrast_limits(image)


class ZarrWriter(ChunkedZarrWriter):
    """A plain zarr v3 array; its attributes hold the axes, scale, translate, units,
    channel names and provenance (``io``'s zarr reader reads them back)."""

    multiscale = False

    def write_attributes(self, data: ExportInput, partial: Path, scales) -> None:
        import zarr

        arr = zarr.open_array(store=zarr_store(partial), mode="r+")
        prov = _metadata.provenance(data.steps, data.source_path, self.recorded)
        arr.attrs.update({"napari-lazyproc": prov, **_metadata.plain_geometry(data)})


def _prepare_chain(source, cancel=None) -> None:
    """Compute the whole-image values (global thresholds) of every step of a chain, so
    they travel with the pickled results to the workers instead of being recomputed
    (the export's cancel stops them too)."""
    while source is not None:
        prepared = getattr(source, "prepared", None)
        if callable(prepared):
            prepared(cancel=cancel)
        source = getattr(source, "source", None)

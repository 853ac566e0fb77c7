"""``export``: a lazy result (or any input) written chunk by chunk, atomically, resumably."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..ops._cache import CACHE
from ..ops._jobs import Cancelled, Progress
from ..ops._label_global import GlobalLabels
from ..ops._sources import as_source
from . import _chunks, _metadata
from ._paths import ExportError, check_target, commit, partial_path, remove

FORMATS = ("ome-zarr", "zarr", "tiff", "ome-tiff")
JOB_DIR = ".lazyproc"


class _Described:
    """What the writer needs to know about its input, whatever it is."""

    def __init__(self, data, axes: str | None) -> None:
        from ..io import LazyImage

        self.channel_names = self.channel_colors = self.contrast_limits = None
        self.translate = None
        if isinstance(data, LazyImage):
            self.channel_names, self.channel_colors = data.channel_names, data.channel_colors
            self.contrast_limits = data.contrast_limits
            self.translate = tuple(data.translate)
        self.source = data if isinstance(data, GlobalLabels) else as_source(data, axes)
        src = self.source
        self.shape, self.dtype = tuple(src.shape), np.dtype(src.dtype)
        self.axes, self.scale, self.units = src.axes, tuple(src.scale), tuple(src.units)
        self.steps = list(getattr(src, "steps", []) or [])
        self.source_path = getattr(src, "source_path", None)
        self.kind = getattr(src, "kind", "image")
        self.name = getattr(src, "name", "") or "image"
        if self.translate is None:
            self.translate = (0.0,) * len(self.shape)
        chunks = getattr(src, "chunks", None)
        self.block = tuple(int(c[0]) for c in chunks) if chunks else None


def _default_block(shape, dtype, axes: str) -> tuple[int, ...]:
    """About 8 MB chunks: whole planes up to 1024 x 1024, one index of T and C."""
    block = []
    for n, a in zip(shape, axes):
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
            block[i] = max(1, min(shape[i], (8 << 20) // max(1, rest)))
    return tuple(block)


class _Downsample:
    """A 2x smaller level (y and x) read from the level below, chunk by chunk."""

    def __init__(self, store: str, path: str, axes: str, labels: bool) -> None:
        import zarr

        below = zarr.open_array(store=store, path=path, mode="r")
        self.store, self.path, self.axes, self.labels = store, path, axes, labels
        self.below_shape = tuple(below.shape)
        self.dtype = below.dtype
        self.factors = tuple(2 if a in "yx" else 1 for a in axes)
        self.shape = tuple(math.ceil(n / f) for n, f in zip(self.below_shape, self.factors))
        self._below = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_below": None}

    def read(self, region) -> np.ndarray:
        import zarr

        if self._below is None:
            self._below = zarr.open_array(store=self.store, path=self.path, mode="r")
        src = tuple(slice(s.start * f, min(n, s.stop * f))
                    for s, f, n in zip(region, self.factors, self.below_shape))
        block = np.asarray(self._below[src])
        if self.labels:  # labels are picked, never averaged
            return block[tuple(slice(None, None, f) for f in self.factors)]
        pad = [(0, (-n) % f) for n, f in zip(block.shape, self.factors)]
        if any(p[1] for p in pad):
            block = np.pad(block, pad, mode="edge")
        shape = []
        for n, f in zip(block.shape, self.factors):
            shape += [n // f, f]
        mean = block.reshape(shape).mean(axis=tuple(range(1, 2 * block.ndim, 2)))
        if self.dtype.kind in "iu":
            return np.rint(mean).astype(self.dtype)
        return mean.astype(self.dtype)


def _client(scheduler, workers: int | None):
    """(client, owned cluster): a distributed client, or (None, None) for threads."""
    scheduler = scheduler or os.environ.get("LAZYPROC_SCHEDULER") or None
    if scheduler is None and not workers:
        return None, None
    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        return scheduler, None  # a Client given by the caller
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as exc:
            raise ExportError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from exc
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _job_record(desc: _Described, fmt: str, version: str, block, levels: int, dtype) -> dict:
    return {"shape": list(desc.shape), "dtype": str(dtype), "block": list(block),
            "format": fmt, "version": version, "levels": levels, "pipeline": desc.steps,
            "source": desc.source_path}


def export(data, path, *, format: str = "ome-zarr", version: str = "0.4",
           chunks: tuple[int, ...] | None = None, levels: int = 1, overwrite: bool = False,
           resume: bool = False, progress=None, cancel: threading.Event | None = None,
           scheduler=None, workers: int | None = None, axes: str | None = None,
           name: str | None = None, cache_bytes: int = 512 * 2**20) -> Path:
    """Compute ``data`` chunk by chunk and write it to ``path``.

    Parameters
    ----------
    data
        A lazy result, a ``GlobalLabels`` job (run here if needed), a ``LazyImage``, or
        any array ``apply`` accepts.
    format
        ``"ome-zarr"`` (default; ``version="0.4"`` on zarr v2, or ``"0.5"`` on zarr v3),
        ``"zarr"`` (a plain zarr v3 array), ``"tiff"`` or ``"ome-tiff"`` (tiled BigTIFF,
        for results that fit in memory plane by plane).
    chunks
        Output chunk shape; default: the input's chunks (so each output chunk reads one
        input chunk plus the halo).
    levels
        Pyramid levels for OME-Zarr (each halves y and x), built from the level below.
    overwrite, resume
        Replace an existing ``path``; or finish an interrupted export, skipping chunks
        already written and verified.
    progress, cancel
        ``True`` for a bar on stderr, or ``progress(done, total)``; a ``threading.Event``
        that stops the export within a chunk's time.
    scheduler, workers
        A dask.distributed ``Client`` or scheduler address (default: the
        ``LAZYPROC_SCHEDULER`` environment variable), or a number of local worker
        processes to start; threads on this machine otherwise.
    cache_bytes
        The chunk cache is held to this size while exporting (on each worker too), so
        memory stays bounded by a few rows of chunks whatever the array size; input
        chunks shared by neighbouring halos are still read once.

    The output is written to ``<path>.partial`` and renamed to ``path`` when complete;
    until then nothing at ``path`` looks complete. The input is never written.
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)} (got {format!r})")
    if version not in ("0.4", "0.5"):
        raise ExportError(f"OME-Zarr version must be '0.4' or '0.5' (got {version!r})")
    if levels < 1:
        raise ExportError(f"levels must be >= 1 (got {levels})")
    path = Path(path)
    desc = _Described(data, axes)
    if name:
        desc.name = name
    check_target(path, [desc.source_path], overwrite, resume)
    partial = partial_path(path)
    if format in ("tiff", "ome-tiff"):
        if resume:
            raise ExportError(f"{path}: resume is supported for zarr exports only")
        from ._tiff import write_tiff

        if partial.exists():
            remove(partial)
        _ensure_labels(desc, None, progress, cancel)
        try:
            write_tiff(desc, partial, ome=format == "ome-tiff", progress=progress, cancel=cancel)
        except Cancelled:
            remove(partial)
            raise
        except OSError as exc:
            remove(partial)
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
        commit(partial, path)
        return path

    dtype = desc.dtype
    block = tuple(chunks) if chunks else (desc.block or _default_block(desc.shape, dtype, desc.axes))
    if len(block) != len(desc.shape):
        raise ExportError(f"chunks {block} do not match the {len(desc.shape)}-D data")
    block = tuple(min(int(b), n) if n else 1 for b, n in zip(block, desc.shape))
    zarr_format = 2 if format == "ome-zarr" and version == "0.4" else 3
    record = _job_record(desc, format, version, block, levels, dtype)
    try:
        if partial.exists() and not resume:
            remove(partial)  # overwrite=True: start again
        job_file = partial / JOB_DIR / "job.json"
        if partial.exists():
            try:
                previous = json.loads(job_file.read_text())
            except (OSError, ValueError):
                previous = None
            if previous != json.loads(json.dumps(record)):
                raise ExportError(
                    f"{partial} was started by a different export (input, pipeline, format or "
                    f"chunks differ); pass overwrite=True to start again"
                )
        else:
            (partial / JOB_DIR).mkdir(parents=True)
            job_file.write_text(json.dumps(record))
        _ensure_labels(desc, partial / JOB_DIR / "labels-chunks", progress, cancel)
        client, cluster = _client(scheduler, workers)
        held = CACHE.max_bytes
        CACHE.resize(min(held, cache_bytes))
        try:
            scales = _write_levels(desc, partial, format, zarr_format, block, levels, resume,
                                   progress, cancel, client, workers, cache_bytes)
        finally:
            CACHE.resize(held)
            if cluster is not None:
                client.close()
                cluster.close()
        _write_attributes(desc, partial, format, version, zarr_format, scales)
        remove(partial / JOB_DIR)
        commit(partial, path)
    except OSError as exc:
        raise ExportError(
            f"cannot write {path}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")
            + f"; what was written is kept in {partial} and resume=True finishes it"
        ) from exc
    return path


def _ensure_labels(desc: _Described, store, progress, cancel) -> None:
    src = desc.source
    if isinstance(src, GlobalLabels) and not src.done:
        src.run(progress=progress, cancel=cancel, store=str(store) if store else None)
        desc.dtype = src.dtype


def _create_array(partial: Path, array_path: str, shape, block, dtype, zarr_format: int,
                  axes: str, resume: bool):
    import zarr

    store = str(partial)
    if resume:
        try:
            arr = zarr.open_array(store=store, path=array_path, mode="r+")
            if tuple(arr.shape) == tuple(shape):
                return arr
        except (FileNotFoundError, KeyError, ValueError, zarr.errors.ArrayNotFoundError):
            pass
    kwargs: dict[str, Any] = {}
    if zarr_format == 2:
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    else:
        kwargs["dimension_names"] = list(axes)
    if array_path:
        group = zarr.open_group(store=store, mode="a", zarr_format=zarr_format)
        return group.create_array(array_path, shape=shape, chunks=block, dtype=dtype,
                                  fill_value=0, overwrite=True, **kwargs)
    # the root array of a fresh partial: never overwrite=True, which would empty the
    # whole folder, the job record and chunk markers included
    return zarr.create_array(store=store, shape=shape, chunks=block, dtype=dtype, fill_value=0,
                             zarr_format=zarr_format, **kwargs)


def _write_levels(desc, partial: Path, format: str, zarr_format: int, block, levels: int,
                  resume: bool, progress, cancel, client, workers, cache_bytes) -> list[tuple]:
    plain = format == "zarr"
    n_levels = 1 if plain else levels
    scales = []
    source = desc.source
    shape = desc.shape
    jobs = []
    for level in range(n_levels):
        array_path = "" if plain else str(level)
        if level > 0:
            source = _Downsample(str(partial), str(level - 1), desc.axes, desc.kind == "labels")
            shape = source.shape
        lvl_block = tuple(min(b, n) for b, n in zip(block, shape))
        _create_array(partial, array_path, shape, lvl_block, desc.dtype, zarr_format, desc.axes,
                      resume)
        job = _chunks.ChunkJob(source, str(partial), array_path, lvl_block,
                               str(partial / JOB_DIR / f"done-{level}"), resume, cache_bytes)
        jobs.append(job)
        scales.append(tuple(s * (2**level if a in "yx" else 1) for s, a in zip(desc.scale, desc.axes)))
        bar = Progress(job.n_chunks, progress, cancel,
                       desc=f"export{f' level {level}' if n_levels > 1 else ''}")
        try:
            _chunks.run(job, bar, cancel, client, workers)
        finally:
            bar.close()
    return scales


def _write_attributes(desc, partial: Path, format: str, version: str, zarr_format: int,
                      scales) -> None:
    import zarr

    prov = _metadata.provenance(desc.steps, desc.source_path)
    if format == "zarr":
        arr = zarr.open_array(store=str(partial), mode="r+")
        arr.attrs.update({"napari-lazyproc": prov, "axes": desc.axes,
                          "scale": list(desc.scale), "units": list(desc.units)})
        return
    group = zarr.open_group(store=str(partial), mode="r+", zarr_format=zarr_format)
    ome: dict[str, Any] = {
        "multiscales": _metadata.multiscales(desc.name, desc.axes, desc.units, scales,
                                             desc.translate, version),
    }
    if desc.kind == "labels":
        ome["image-label"] = {"version": version, "source": {"image": "../../"}} \
            if version == "0.4" else {"source": {"image": "../../"}}
    elif "c" in desc.axes:
        n = desc.shape[desc.axes.index("c")]
        ome["omero"] = _metadata.omero(desc.channel_names, desc.channel_colors,
                                       desc.contrast_limits, n)
    group.attrs.update({**_metadata.wrap(ome, version), "napari-lazyproc": prov})

"""``export``: a lazy result (or any input) written chunk by chunk, atomically, resumably.

The steps, each in its own module: the options are checked (``_options``), the input is
described (``_input``), the target is refused or cleared (``_paths``), the format's
writer (``_formats.WRITERS``) writes ``<path>.partial``, which is renamed into place.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..ops import Cancelled
from ._complete import check_complete
from ._formats import WRITERS
from ._input import ExportInput
from ._options import CACHE_BYTES, ExportOptions
from ._paths import ExportError
from ._remote import export_target


def export(data, path, *, format: str = "ome-zarr", version: str = "0.4",
           chunks: tuple[int, ...] | None = None, levels: int = 1, overwrite: bool = False,
           resume: bool = False, progress=None, cancel: threading.Event | None = None,
           scheduler=None, workers: int | None = None, axes: str | None = None,
           name: str | None = None, cache_bytes: int = CACHE_BYTES,
           storage_options: dict | None = None) -> Path | str:
    """Compute ``data`` chunk by chunk and write it to ``path``.

    Parameters
    ----------
    data
        A lazy result, a ``GlobalLabels`` job (run here if needed), a ``LazyImage``, or
        any array ``apply`` accepts.
    path
        Where to write (a folder for zarr formats, a file for TIFF); or, for the zarr
        formats, the URL of a store (``s3://bucket/out.ome.zarr``, ``gs://...``).
    format
        ``"ome-zarr"`` (default; ``version="0.4"`` on zarr v2, or ``"0.5"`` on zarr v3),
        ``"zarr"`` (a plain zarr v3 array), ``"tiff"`` or ``"ome-tiff"`` (tiled BigTIFF,
        for results that fit in memory plane by plane).
    version
        The OME-Zarr version, ``"0.4"`` or ``"0.5"``.
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
    axes, name
        The axes of a plain array (default: guessed); the name written in the metadata.
    cache_bytes
        The chunk cache is held to this size while exporting (on each worker too), so
        memory stays bounded by a few rows of chunks whatever the array size; input
        chunks shared by neighbouring halos are still read once.
    storage_options
        For a URL: passed to fsspec (``{"anon": False, "endpoint_url": ...}``);
        credentials otherwise come from the environment (``AWS_*`` variables).

    Returns
    -------
    Path or str
        ``path``, complete (a URL stays a string).

    Raises
    ------
    ExportError
        A bad option (named), a refused target (it exists, or is or holds the input), or
        a failed write (the path and the cause).
    Cancelled
        ``cancel`` was set; a resumable partial is kept.

    Notes
    -----
    The output is written to ``<path>.partial`` and renamed to ``path`` when complete;
    until then nothing at ``path`` looks complete. A URL's store cannot rename: the
    export is written in place and ``lazyproc-manifest.json``, written last, marks it
    complete (``open_image`` refuses it before). The input is never written.
    """
    options = ExportOptions(format=format, version=version, chunks=chunks, levels=levels,
                            overwrite=overwrite, resume=resume, progress=progress,
                            cancel=cancel, scheduler=scheduler, workers=workers, axes=axes,
                            name=name, cache_bytes=cache_bytes)
    target, writer, image = _plan(data, path, options, storage_options)
    path = target.path
    if not options.overwrite and check_complete(target, writer, image):
        if options.resume:  # nothing left to do: nothing is rewritten
            return path
        raise ExportError(f"{path} already exists: already complete, made by this "
                          f"pipeline from this input; pass resume=True (--resume) to accept "
                          f"it, or overwrite=True (--overwrite) to write it again")
    target.check(image.locations, options.overwrite, options.resume)
    if options.resume and not writer.resumable:
        raise ExportError(f"{path}: resume is supported for zarr exports only")
    partial = target.partial
    try:
        target.prepare(options.resume)
        writer.write(image, partial)
        target.commit({"format": options.format, "version": options.version,
                       "levels": options.levels, "shape": list(image.shape),
                       "dtype": str(image.dtype)})
    except (OSError, Cancelled) as exc:
        if not writer.resumable:
            target.discard()
        if isinstance(exc, Cancelled):
            raise
        raise ExportError(_cannot_write(path, partial, exc, writer.resumable)) from exc
    return path


def completed(data, path, *, format: str = "ome-zarr", version: str = "0.4",
              chunks: tuple[int, ...] | None = None, levels: int = 1,
              axes: str | None = None, name: str | None = None,
              storage_options: dict | None = None) -> bool:
    """Whether ``path`` already holds this export, complete: made by the same pipeline
    from the same input (its identity: the bytes it read, not only its path), with the
    same options. ``export`` with ``resume=True`` then writes nothing.

    Parameters are ``export``'s.

    Raises
    ------
    ExportError
        A bad option; or a complete output made by another export (another input or
        pipeline), naming what differs (``overwrite=True`` replaces it).
    """
    options = ExportOptions(format=format, version=version, chunks=chunks, levels=levels,
                            axes=axes, name=name)
    target, writer, image = _plan(data, path, options, storage_options)
    return check_complete(target, writer, image)


def _plan(data, path, options: ExportOptions, storage_options):
    """The target, the writer and the input of an export, checked as far as can be
    before anything is read: the format for the target, the data for the writer, and
    the target against the input (never written into it)."""
    target = export_target(path, storage_options)
    writer = WRITERS[options.format](options)
    if target.remote and not writer.remote:
        raise ExportError(f"{target.path}: only the zarr formats can be written to a URL")
    image = ExportInput(data, options.axes, options.name)
    if not image.shape:
        raise ExportError(f"{target.path}: the data is 0-D (one value, no axes): not an "
                          f"image to write; read it with np.asarray")
    writer.check(image)
    # the input, the folder, permissions: an "already complete" answer needs them too
    target.check(image.locations, overwrite=True, resume=True)
    return target, writer, image


def _cannot_write(path, partial, exc: OSError, kept: bool) -> str:
    message = f"cannot write {path}: {exc.strerror or exc}"
    if kept:
        if getattr(exc, "filename", None):
            message += f" ({exc.filename})"
        where = "" if str(partial) == str(path) else f" in {partial}"
        message += f"; what was written is kept{where} and resume=True finishes it"
    return message

"""The npe2 writer: File > Save Layers writes an image or labels layer (a lazy one too)
to OME-Zarr, chunk by chunk, with napari's progress bar."""

from __future__ import annotations

from typing import Any


def _source(data, meta: dict[str, Any], kind: str):
    from ._widget import data_source
    from .ops._sources import ArraySource

    multiscale = isinstance(data, list)
    src = data_source(data, axis_labels=meta.get("axis_labels"),
                      scale=meta.get("scale"), units=meta.get("units"), name=meta.get("name"),
                      metadata=meta.get("metadata"))
    if isinstance(src, ArraySource):
        src.kind = kind
    return src, (len(data) if multiscale else 1)


def _write(path: str, data, meta: dict[str, Any], kind: str) -> list[str]:
    from napari.utils import progress

    from .export import export

    source, levels = _source(data, meta, kind)
    with progress(total=1, desc=f"saving {meta.get('name') or path}") as bar:
        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        # napari's save dialog has already asked before replacing a file
        out = export(source, path, levels=levels, overwrite=True, progress=report,
                     name=meta.get("name") or None)
    return [str(out)]


def write_image(path: str, data, meta: dict[str, Any]) -> list[str]:
    return _write(path, data, meta, "image")


def write_labels(path: str, data, meta: dict[str, Any]) -> list[str]:
    return _write(path, data, meta, "labels")

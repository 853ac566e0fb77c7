"""The npe2 writer: File > Save Layers writes an image or labels layer (a lazy one too)
to OME-Zarr, chunk by chunk, with napari's progress bar."""

from __future__ import annotations

from typing import Any


def _source(data, meta: dict[str, Any], kind: str):
    from ._live import LiveArray
    from ._widget import layer_axes_from_labels
    from .ops._sources import ArraySource, as_source

    multiscale = isinstance(data, list)
    base = data[0] if multiscale else data
    if isinstance(base, LiveArray) and base.is_whole:
        return base.result, (len(data) if multiscale else 1)
    source_meta = (meta.get("metadata") or {}).get("source") or {}
    src = as_source(base, layer_axes_from_labels(meta.get("axis_labels") or []),
                    scale=meta.get("scale"), units=[str(u) for u in meta.get("units") or []] or None,
                    name=meta.get("name") or "", source_path=source_meta.get("path"))
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

"""The npe2 writer: File > Save Layers writes an image or labels layer (a lazy one too)
to OME-Zarr, chunk by chunk, with napari's progress bar.

Nothing of napari, Qt or magicgui is imported here until a layer is written: napari
loads writers to offer them, and a script may save layers with no GUI.
"""

from __future__ import annotations

from typing import Any

from ._layer_data import data_source
from .ops import ArraySource


def _source(data, meta: dict[str, Any], kind: str):
    src = data_source(data, axis_labels=meta.get("axis_labels"),
                      scale=meta.get("scale"), units=meta.get("units"), name=meta.get("name"),
                      metadata=meta.get("metadata"), translate=meta.get("translate"))
    if isinstance(src, ArraySource):  # plain layer data: the layer type says what it holds
        src.kind = kind
    return src, (len(data) if isinstance(data, list) else 1)


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
    """Write an image layer's data to OME-Zarr at ``path`` (npe2 single-layer writer).

    Parameters
    ----------
    path : str
        The output path (``.ome.zarr`` or ``.zarr``).
    data : array-like or list of array-like
        The layer's data; a list is a multiscale layer, whose level 0 is written and
        downsampled.
    meta : dict
        The layer's attributes (``scale``, ``translate``, ``units``, ``axis_labels``,
        ``metadata``...): the geometry written with the data.

    Returns
    -------
    list of str
        The path written.
    """
    return _write(path, data, meta, "image")


def write_labels(path: str, data, meta: dict[str, Any]) -> list[str]:
    """Write a labels layer's data to OME-Zarr at ``path``; see ``write_image``."""
    return _write(path, data, meta, "labels")

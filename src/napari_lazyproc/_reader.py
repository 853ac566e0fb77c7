"""npe2 reader: claims zarr / OME-Zarr (files or URLs: napari passes a URL as a path),
HDF5, TIFF and TIFF folders, and returns lazy layers."""

from __future__ import annotations

import os
from collections.abc import Callable

from ._layer_data import LayerData, image_layer_data
from .io import find_format, open_image


def napari_get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """Return a reader for ``path`` if one of our formats claims it, else None.

    Decides from the extension, a few bytes or the zarr metadata; never raises and never
    reads pixel data.
    """
    try:
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        if not paths or not all(find_format(p) is not None for p in paths):
            return None
    except Exception:  # noqa: BLE001 - a reader that does not claim says None
        return None
    return read_layers


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Open each path lazily. Raises ``ImageReadError`` naming the path for a broken file.

    A bioformats2raw root gives the layers of every series (series 0 first); an HCS
    plate one grid of its wells (field 0)."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        image = open_image(p)
        layers.extend(image_layer_data(image))
        # a bioformats2raw root (not one series' folder): every series as its own
        # layers, each opened lazily
        if image.source.get("root") == image.source["path"]:
            for index in range(1, len(image.metadata.get("series") or ())):
                layers.extend(image_layer_data(open_image(p, series=index)))
    return watch_viewer(layers)


def watch_viewer(layers: list[LayerData]) -> list[LayerData]:
    """Have the viewer that asked for ``layers`` refresh them when their background reads
    land (3D volumes, virtual levels); without a viewer, reads stay synchronous."""
    try:
        from ._qt.live_layers import watch_current_viewer
    except ImportError:  # no Qt: nothing to refresh
        return layers
    watch_current_viewer(layers)
    return layers

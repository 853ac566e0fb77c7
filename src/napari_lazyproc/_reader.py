"""npe2 reader: claims zarr / OME-Zarr (files or URLs: napari passes a URL as a path),
HDF5, TIFF and TIFF folders, and returns lazy layers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

from ._layer_data import LayerData, image_layer_data
from .io import LazyImage, find_format, open_image

#: the series of a bioformats2raw root opened as layers at most (a slide scanner's root
#: can hold hundreds: each would be a layer, its metadata read at once)
MAX_SERIES = 8


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

    A bioformats2raw root gives the layers of its first ``MAX_SERIES`` series (series 0
    first; a warning names those left out); an HCS plate one grid of its wells (field 0)."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        image = open_image(p)
        layers.extend(image_layer_data(image))
        # a bioformats2raw root (not one series' folder): each series as its own
        # layers, each opened lazily
        if image.source.get("root") == image.source["path"]:
            series = image.metadata.get("series") or ()
            for index in range(1, min(len(series), MAX_SERIES)):
                layers.extend(image_layer_data(open_image(p, series=index)))
            if len(series) > MAX_SERIES:
                warnings.warn(_left_out(image, p), UserWarning, stacklevel=2)
    return watch_viewer(layers)


def _left_out(image: LazyImage, path) -> str:
    """What a root's series beyond ``MAX_SERIES`` are, and how to open one."""
    series = image.metadata["series"]
    first, last = series[MAX_SERIES], len(series) - 1
    which = f"{MAX_SERIES}..{last}" if last > MAX_SERIES else str(last)
    return (f"{path}: {len(series)} series; the first {MAX_SERIES} (0..{MAX_SERIES - 1}) "
            f"are opened, {len(series) - MAX_SERIES} left out ({which}): open one by its "
            f"folder "
            f"({os.path.join(str(path), first['path'])} for series {MAX_SERIES}) or "
            f"with open_image(path, series=N)")


def watch_viewer(layers: list[LayerData]) -> list[LayerData]:
    """Have the viewer that asked for ``layers`` refresh them when their background reads
    land (3D volumes, virtual levels); without a viewer, reads stay synchronous."""
    try:
        from ._qt.live_layers import watch_current_viewer
    except ImportError:  # no Qt: nothing to refresh
        return layers
    watch_current_viewer(layers)
    return layers

"""LazyImage to napari LayerData tuples: lazy data plus scale, units, channels and contrast.

No napari import here: the tuples are plain data, used by the reader and the sample data.
"""

from __future__ import annotations

from typing import Any

from ._live import SYNC_VOXELS, live_levels
from .io import LazyImage, sample_contrast_limits

LayerData = tuple[Any, dict[str, Any], str]


def _data(image: LazyImage, channel: int | None = None):
    """The display pyramid (stored levels, then virtual ones) as live arrays: a plane of
    a file is read at once, a 3D volume or a virtual level in the background once a
    viewer listens (``_qt.live_layers``)."""
    levels = live_levels(image.display_levels(channel), sync_voxels=SYNC_VOXELS)
    return levels if len(levels) > 1 else levels[0]


def _drop(values, axis: int | None) -> list:
    values = list(values)
    if axis is not None:
        del values[axis]
    return values


def image_layer_data(image: LazyImage, contrast: bool = True) -> list[LayerData]:
    """LayerData for ``image`` (one layer per channel) and any labels stored beside it.

    Contrast limits come from the file's metadata or a bounded sample, so napari never
    makes its own pass over the data. Channels are split here, from the level sources,
    rather than by napari's ``channel_axis``, which slices a dask graph of every chunk.
    """
    rgb = bool(image.metadata.get("rgb"))
    c_axis = None if rgb else image.channel_axis
    meta: dict[str, Any] = {
        "source": {k: v for k, v in image.source.items() if k != "files"},
        "axes": image.axes,
        "lazy_image": image,
    }
    meta.update({k: v for k, v in image.metadata.items() if k not in ("files", "rgb")})
    kwargs: dict[str, Any] = {
        "name": image.name,
        "scale": _drop(image.scale, c_axis),
        "translate": _drop(image.translate, c_axis),
        "axis_labels": _drop(image.axes, c_axis),
        "units": [u or "pixel" for u in _drop(image.units, c_axis)],
        "multiscale": len(image.display_pyramid()) > 1,
        "metadata": meta,
    }
    layer_type = "labels" if image.kind == "labels" else "image"
    if layer_type == "image" and rgb:
        kwargs["rgb"] = True
    limits = sample_contrast_limits(image) if layer_type == "image" and contrast else None
    layers: list[LayerData] = []
    if c_axis is None or layer_type == "labels":
        if limits:
            kwargs["contrast_limits"] = limits[0]
        layers.append((_data(image), kwargs, layer_type))
    else:
        n = image.shape[c_axis]
        names = image.channel_names or [f"c{i}" for i in range(n)]
        colors = image.channel_colors or ([None] if n == 1 else _DEFAULT_COLORS)
        for i in range(n):
            channel = dict(kwargs, name=f"{image.name} · {names[i]}" if n > 1 or image.channel_names
                           else image.name, metadata=dict(meta, channel=i),
                           blending="additive" if n > 1 else "translucent")
            if limits:
                channel["contrast_limits"] = limits[i]
            color = colors[i % len(colors)]
            if color:
                channel["colormap"] = _colormap(color)
            layers.append((_data(image, i), channel, "image"))
    for lab in image.labels:
        layers.extend(image_layer_data(lab, contrast=False))
    return layers


_DEFAULT_COLORS = ["#ff00ff", "#00ff00", "#00ffff", "#ffff00", "#0000ff", "#ff0000"]


def _colormap(hex_color: str) -> dict[str, Any]:
    """A black-to-colour colormap napari accepts as a dict."""
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return {"name": hex_color, "colors": [[0, 0, 0, 1], [r, g, b, 1]]}


#: what a result layer's metadata says of its coarse levels
PREVIEW_NOTE = ("level 0 is the exact result; coarser levels are previews (the operation "
                "on the input's coarser levels), never exported")


def result_levels(result) -> list:
    """The levels a viewer shows of a result (a pyramid when its input is one, or when
    its input is large), as ``LazyArray`` views."""
    from .io._lazy_array import LazyArray

    levels = getattr(result, "display_levels", None) or getattr(result, "levels", [result])
    return [level if isinstance(level, LazyArray) else LazyArray(level) for level in levels]


def result_layer_data(result, name: str, contrast_limits=None) -> LayerData:
    """LayerData for a lazy result: scale, axis labels, units and the pipeline carried.

    Multiscale when the result has more than one display level (see ``result_levels``).
    Contrast limits, when not given, come from one central crop of the middle plane.
    """
    import numpy as np

    from .io._lazy_array import LazyArray

    levels = result_levels(result)
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": list(result.scale),
        "axis_labels": list(result.axes),
        "units": [u or "pixel" for u in result.units],
        "metadata": {"pipeline": result.steps, "source": {"path": result.source_path}},
        "multiscale": len(levels) > 1,
    }
    if len(levels) > 1:
        kwargs["metadata"]["levels"] = PREVIEW_NOTE
    layer_type = "labels" if result.kind == "labels" else "image"
    if layer_type == "image":
        if contrast_limits is None:
            key = tuple(n // 2 for n in result.shape[:-2]) + tuple(
                slice(max(0, n // 2 - 256), n // 2 + 256) for n in result.shape[-2:]
            )
            sample = np.asarray(result[key], dtype=np.float64)
            lo, hi = float(np.nanmin(sample)), float(np.nanmax(sample))
            contrast_limits = (lo, hi if hi > lo else lo + 1)
        kwargs["contrast_limits"] = contrast_limits
    data = levels if len(levels) > 1 else LazyArray(result)
    return data, kwargs, layer_type

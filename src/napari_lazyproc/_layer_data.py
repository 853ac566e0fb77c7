"""LazyImage to napari LayerData tuples: lazy data plus scale, units, channels and contrast.

No napari import here: the tuples are plain data, used by the reader and the sample data.
"""

from __future__ import annotations

from typing import Any

from .io import LazyImage, sample_contrast_limits

LayerData = tuple[Any, dict[str, Any], str]


def _data(image: LazyImage):
    return list(image.levels) if image.multiscale else image.levels[0]


def _drop(values, axis: int | None) -> list:
    values = list(values)
    if axis is not None:
        del values[axis]
    return values


def image_layer_data(image: LazyImage, contrast: bool = True) -> list[LayerData]:
    """LayerData for ``image`` and any labels stored beside it.

    Contrast limits come from the file's metadata or a bounded sample, so napari never
    makes its own pass over the data.
    """
    c_axis = None if image.metadata.get("rgb") else image.channel_axis
    axes = list(image.axes)
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
        "axis_labels": _drop(axes, c_axis),
        "units": [u or "pixel" for u in _drop(image.units, c_axis)],
        "multiscale": image.multiscale,
        "metadata": meta,
    }
    if image.kind == "image" and image.metadata.get("rgb"):
        kwargs["rgb"] = True
    layer_type = "labels" if image.kind == "labels" else "image"
    if layer_type == "image" and contrast:
        limits = sample_contrast_limits(image)
        kwargs["contrast_limits"] = limits if c_axis is not None else limits[0]
    if c_axis is not None and layer_type == "image":
        n = image.shape[c_axis]
        names = image.channel_names or [f"{image.name} c{i}" for i in range(n)]
        kwargs["channel_axis"] = c_axis
        kwargs["name"] = [f"{image.name} · {c}" if image.channel_names else c for c in names]
        for key in ("scale", "translate", "axis_labels", "units"):
            kwargs[key] = [kwargs[key]] * n
        kwargs["metadata"] = [meta] * n
        if image.channel_colors:
            kwargs["colormap"] = [_colormap(c) for c in image.channel_colors]
    layers: list[LayerData] = [(_data(image), kwargs, layer_type)]
    for lab in image.labels:
        layers.extend(image_layer_data(lab, contrast=False))
    return layers


def _colormap(hex_color: str) -> dict[str, Any]:
    """A black-to-colour colormap napari accepts as a dict."""
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return {"name": hex_color, "colors": [[0, 0, 0, 1], [r, g, b, 1]]}

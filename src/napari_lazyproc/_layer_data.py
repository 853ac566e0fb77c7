"""napari layers as plain data, both ways: LazyImages and lazy results to LayerData tuples,
and a layer's data and attributes back to the engine's input.

No napari, Qt or magicgui import here: the reader, the sample data and the npe2 writer use
this module, and napari calls them without a GUI (``napari.save_layers`` in a script).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._live import SYNC_VOXELS, LiveArray
from ._shared.source import translate_of
from .io import LazyArray, LazyImage, sample_contrast_limits
from .ops import as_source

LayerData = tuple[Any, dict[str, Any], str]


def _data(image: LazyImage, channel: int | None = None):
    """The display pyramid (stored levels, then virtual ones) as live arrays: a plane of
    a file is read at once, a 3D volume or a virtual level in the background once a
    viewer listens (``_qt.live_layers``)."""
    from .ops import image_source

    stored = image.levels if channel is None else image.channel_levels(channel)
    sources = image_source(image, channel).display_levels
    levels = [LiveArray(src, base=stored[k] if k < len(stored) else None,
                        sync_voxels=SYNC_VOXELS) for k, src in enumerate(sources)]
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
            named = n > 1 or image.channel_names
            channel = dict(kwargs, name=f"{image.name} · {names[i]}" if named else image.name,
                           metadata=dict(meta, channel=i),
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
    levels = getattr(result, "display_levels", None) or getattr(result, "levels", [result])
    return [level if isinstance(level, LazyArray) else LazyArray(level) for level in levels]


def result_layer_data(result, name: str, contrast_limits=None) -> LayerData:
    """LayerData for a lazy result: scale, axis labels, units and the pipeline carried.

    Multiscale when the result has more than one display level (see ``result_levels``).
    Contrast limits, when not given, come from one central crop of the middle plane
    (``sample_limits``); ``LATER`` leaves them to the GUI, which reads that crop in the
    background (``_qt.live_layers.add_live_layer``).
    """
    import numpy as np

    levels = result_levels(result)
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": list(result.scale),
        "translate": list(translate_of(result)),
        "axis_labels": list(result.axes),
        "units": [u or "pixel" for u in result.units],
        "metadata": {"pipeline": result.steps, "source": {"path": result.source_path}},
        "multiscale": len(levels) > 1,
    }
    if len(levels) > 1:
        kwargs["metadata"]["levels"] = PREVIEW_NOTE
    layer_type = "labels" if result.kind == "labels" else "image"
    if layer_type == "image":
        if contrast_limits is None and np.dtype(result.dtype) == bool:
            contrast_limits = (0.0, 1.0)
        elif contrast_limits is None:
            contrast_limits = sample_limits(levels)
        kwargs["contrast_limits"] = contrast_limits
    data = levels if len(levels) > 1 else LazyArray(result)
    return data, kwargs, layer_type


#: ``result_layer_data(contrast_limits=LATER)``: limits read off napari's thread
LATER = "later"


def sample_limits(levels) -> tuple[float, float]:
    """Contrast limits from a central crop of the middle plane of the coarsest level:
    the cheapest sample that still spans the image (it reads that crop)."""
    import numpy as np

    coarse = levels[-1]
    key = tuple(n // 2 for n in coarse.shape[:-2]) + tuple(
        slice(max(0, n // 2 - 256), n // 2 + 256) for n in coarse.shape[-2:]
    )
    sample = np.asarray(coarse[key], dtype=np.float64)
    lo, hi = float(np.nanmin(sample)), float(np.nanmax(sample))
    return (lo, hi if hi > lo else lo + 1)



# ---------------------------------------------------------------------------- layer to input
def layer_axes_from_labels(axis_labels) -> str | None:
    """Axis letters from a layer's axis labels.

    Parameters
    ----------
    axis_labels : sequence of str
        napari's ``layer.axis_labels`` (``("z", "y", "x")``, or its defaults ``("-2", ...)``).

    Returns
    -------
    str or None
        The letters (``"zyx"``) when every label is a distinct letter of ``tczyx``; None
        otherwise, and the engine then guesses the axes from the shape.
    """
    labels = [str(a).lower() for a in axis_labels]
    if (labels and all(len(a) == 1 and a in "tczyx" for a in labels)
            and len(set(labels)) == len(labels)):
        return "".join(labels)
    return None


def data_source(data, *, axis_labels, scale, units, name, metadata, translate=None):
    """The engine's input for layer data and the attributes that describe it.

    Parameters
    ----------
    data : array-like or list of array-like
        A layer's data; a list is a multiscale layer's levels, full resolution first.
    axis_labels, scale, units, name, metadata, translate
        The layer's attributes, or the ``meta`` dict an npe2 writer receives
        (``metadata["channel_names"]``: one name per index of a c axis).

    Returns
    -------
    Source
        The lazy result itself when ``data`` is a result's own layer data (so a chain of
        steps keeps its provenance), else the data read region by region, with the
        layer's axes, scale, units, channel names and source path; either way placed
        where the layer is (its ``translate``).
    """
    source = metadata.get("source") if isinstance(metadata, Mapping) else None
    names = metadata.get("channel_names") if isinstance(metadata, Mapping) else None
    return as_source(
        data,
        layer_axes_from_labels(axis_labels or []),
        scale=None if scale is None else tuple(scale),
        units=None if not units else [str(u) for u in units],
        name=name or "",
        source_path=source.get("path") if isinstance(source, Mapping) else None,
        translate=None if translate is None else tuple(translate),
        channel_names=names if isinstance(names, (list, tuple)) else None,
    )


def layer_source(layer):
    """The engine's input for a napari layer (every level of a multiscale one).

    Parameters
    ----------
    layer : napari.layers.Image or napari.layers.Labels
        Any object with napari's ``data``, ``multiscale``, ``axis_labels``, ``scale``,
        ``translate``, ``units``, ``name`` and ``metadata``.

    Returns
    -------
    Source
        See ``data_source``.
    """
    return data_source(list(layer.data) if layer.multiscale else layer.data,
                       axis_labels=layer.axis_labels, scale=layer.scale, units=layer.units,
                       name=layer.name, metadata=layer.metadata,
                       translate=getattr(layer, "translate", None))


# ---------------------------------------------------------------------------- naming
#: how a result layer's name writes these parameters
SYMBOLS = {"sigma": "σ", "low_sigma": "σ1", "high_sigma": "σ2"}


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if len(set(value)) == 1:
            return _fmt(value[0])
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def result_layer_name(op, values: Mapping[str, Any], *, input_name: str,
                      length_unit: str | None = None) -> str:
    """The name of a result layer: its input, the operation and what sets it apart.

    Parameters
    ----------
    op : ops.Op
        The operation.
    values : mapping
        The parameters set (those not given are left out of the name).
    input_name : str
        The input layer's name.
    length_unit : str, optional
        The physical unit lengths are given in; None for pixels, which go unnamed.

    Returns
    -------
    str
        ``"raw · gaussian σ=2 micrometer"``: the first numeric parameter and an axis
        (a projection's) always, then every parameter that differs from its default.
    """
    parts = []
    for i, p in enumerate(op.params):
        if p.name not in values:
            continue
        value = values[p.name]
        if i == 0 and p.type is not str or value != p.default or p.quantity == "axis":
            unit = f" {length_unit}" if p.quantity == "length" and length_unit else ""
            parts.append(f"{SYMBOLS.get(p.name, p.name)}={_fmt(value)}{unit}")
    return f"{input_name} · {op.name}" + (" " + " ".join(parts) if parts else "")

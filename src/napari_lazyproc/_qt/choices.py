"""What the dock widget offers: input layers, spatial axes, and the unit of lengths.

Each choice follows from the layers in the viewer and the chosen input's axes and units.
"""

from __future__ import annotations

from napari.layers import Image, Labels

from .._layer_data import layer_source


def is_result(layer) -> bool:
    """Whether ``layer`` shows a lazy result (it records the pipeline that made it)."""
    return "pipeline" in (getattr(layer, "metadata", None) or {})


def input_layers(viewer) -> list:
    """The layers the engine can read, as ``(name, layer)`` choices.

    Parameters
    ----------
    viewer : napari.Viewer

    Returns
    -------
    list of (str, Layer)
        Image and Labels layers in the viewer's order; RGB images are left out (an
        operation's spatial axes would mix the colour channels).
    """
    return [(layer.name, layer) for layer in viewer.layers
            if isinstance(layer, (Image, Labels)) and not getattr(layer, "rgb", False)]


def natural_input(layers: list):
    """The input to pick when none is: the first image opened, not a result (results are
    chosen explicitly); else the first layer; else None."""
    layers = [layer for layer in layers if layer is not None]
    images = [layer for layer in layers if isinstance(layer, Image) and not is_result(layer)]
    return (images or layers or [None])[0]


def source_or_none(layer):
    """The engine's input for ``layer``, or None for no layer or an unusual one."""
    if layer is None:
        return None
    try:
        return layer_source(layer)
    except Exception:  # noqa: BLE001 - an unusual layer: the choices fall back to yx
        return None


def _spatial(source) -> str:
    letters = source.axes if source is not None else "yx"
    return "".join(a for a in letters if a in "zyx") or "yx"


def axes_choices(source) -> list[tuple[str, str]]:
    """The spatial axes an operation may run over, as ``(text, axes)`` choices.

    3D is always offered: on a 2D input the engine refuses it with a clear message, which
    says more than a missing choice.
    """
    spatial = _spatial(source)
    choices = []
    if len(spatial) >= 2:
        choices.append((f"2D per plane ({spatial[-2:]})", spatial[-2:]))
    if len(spatial) == 3:
        choices.append(("3D (zyx)", "zyx"))
    if len(spatial) == 1:
        choices.append((f"1D ({spatial})", spatial))
    if "zyx" not in [axes for _, axes in choices]:
        choices.append(("3D (zyx)", "zyx"))
    return choices


def default_axes(source, choices: list[str]) -> str:
    """The axes to start from: a result's own (a chain follows its steps), else 3D for a
    volume, else per plane."""
    chained = getattr(source, "spatial_axes", None)
    if chained in choices:
        return chained
    return "zyx" if len(_spatial(source)) == 3 else choices[0]


def physical_unit(source, spatial: str) -> str | None:
    """The one unit of ``source``'s ``spatial`` axes, or None (pixels, or mixed units)."""
    units = {source.units[source.axes.index(a)] for a in spatial if a in source.axes}
    units.discard(None)
    return units.pop() if len(units) == 1 else None


def length_choices(source, spatial: str) -> list[tuple[str, str]]:
    """The units lengths (``sigma``, ``size``) may be given in: the layer's physical unit
    first when its spatial axes share one, and pixels."""
    choices = [("pixels", "pixel")]
    unit = physical_unit(source, spatial or "yx") if source is not None else None
    if unit is not None:
        choices.insert(0, (unit, "physical"))
    return choices


def length_scale(source, spatial: str) -> float:
    """Pixels to the layer's unit, for defaults shown in physical units: the finest voxel
    size of ``spatial`` (a default of one pixel stays one pixel along the finest axis)."""
    if source is None:
        return 1.0
    return min(source.scale[source.axes.index(a)] for a in (spatial or "yx")
               if a in source.axes)

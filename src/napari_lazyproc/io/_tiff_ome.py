"""OME-TIFF metadata: voxel sizes, units, origin, channel names and colours from the
OME-XML of a series (and the geometry napari-lazyproc's own export keeps beside it)."""

from __future__ import annotations

from typing import Any

from ._axes import convert_unit, normalize_unit


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ome_pixels(tif, series: int) -> dict[str, Any]:
    import tifffile

    ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
    images = _as_list(ome.get("Image"))
    return (images[series] if series < len(images) else images[0]).get("Pixels", {})


def _ome_color(value) -> str | None:
    try:
        rgba = int(value) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return None
    return f"#{rgba >> 24 & 255:02x}{rgba >> 16 & 255:02x}{rgba >> 8 & 255:02x}"


def _own_geometry(tif, series: int, axes: str) -> dict[str, Any] | None:
    """The geometry napari-lazyproc's export keeps in the OME Image's Description."""
    import json

    import tifffile

    images = _as_list(tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image"))
    image = images[series] if series < len(images) else {}
    try:
        geometry = json.loads(image.get("Description") or "")["geometry"]
    except (TypeError, ValueError, KeyError):
        return None
    n = len(axes)
    try:
        out = {"scale": [float(v) for v in geometry["scale"]],
               "translate": [float(v) for v in geometry["translate"]],
               "units": [normalize_unit(u) for u in geometry["units"]]}
    except (TypeError, ValueError, KeyError):
        return None
    if geometry.get("axes") != axes or any(len(v) != n for v in out.values()):
        return None
    return out


def ome_metadata(tif, series: int, axes: str) -> dict[str, Any]:
    px = _ome_pixels(tif, series)
    size = {a: px.get(f"PhysicalSize{a.upper()}") for a in "zyx"}
    unit = {
        a: normalize_unit(px.get(f"PhysicalSize{a.upper()}Unit", "µm")) for a in "zyx"
    }
    scale = [float(size[a]) if a in size and size[a] else 1.0 for a in axes]
    units = [unit[a] if a in unit and size[a] else None for a in axes]
    if "t" in axes and px.get("TimeIncrement"):
        scale[axes.index("t")] = float(px["TimeIncrement"])
        units[axes.index("t")] = normalize_unit(px.get("TimeIncrementUnit", "s"))
    channels = _as_list(px.get("Channel"))
    out: dict[str, Any] = {"scale": scale, "units": units,
                           "translate": _ome_origin(px, axes, units)}
    own = _own_geometry(tif, series, axes)
    for i, a in enumerate(axes):  # axes OME-XML says nothing of: from our own record
        if own is not None and a not in "zyx" and not (a == "t" and px.get("TimeIncrement")):
            for key in ("scale", "translate", "units"):
                out[key][i] = own[key][i]
    n_c = None
    if "c" in axes:
        n_c = tif.series[series].shape[axes.index("c")]
    if channels and n_c == len(channels):
        names = [c.get("Name") for c in channels]
        if all(names):
            out["channel_names"] = [str(n) for n in names]
        colors = [_ome_color(c.get("Color")) for c in channels]
        if all(c is not None for c in channels) and all(colors) and any(
            c.get("Color") is not None for c in channels
        ):
            out["channel_colors"] = colors
    return out


def _ome_origin(px: dict[str, Any], axes: str, units: list) -> list[float]:
    """Voxel 0's position: the first plane's PositionX/Y/Z and DeltaT, in the axis'
    unit (a position in another length converted; one in pixels or an unknown unit
    taken as it is)."""
    origin = [0.0] * len(axes)
    planes = [p for p in _as_list(px.get("Plane")) if isinstance(p, dict)]
    first = next((p for p in planes if all(int(p.get(f"The{k}", 0)) == 0 for k in "CZT")),
                 None)
    if first is None:
        return origin
    for a, key in (("x", "PositionX"), ("y", "PositionY"), ("z", "PositionZ"),
                   ("t", "DeltaT")):
        if a not in axes or first.get(key) is None:
            continue
        value, unit, axis_unit = float(first[key]), normalize_unit(first.get(f"{key}Unit")), \
            units[axes.index(a)]
        if unit and axis_unit and unit != axis_unit:
            try:
                value = convert_unit(value, unit, axis_unit)
            except Exception:  # noqa: BLE001 - a unit that does not convert: as it is
                pass
        origin[axes.index(a)] = value
    return origin

"""Physical metadata of a TIFF series, whichever writer made it: OME-XML, ImageJ's
description, napari-lazyproc's shaped JSON, or the resolution tags."""

from __future__ import annotations

from typing import Any

from ._axes import convert_unit, normalize_unit
from ._tiff_ome import ome_metadata


def _resolution_size(page) -> tuple[float | None, float | None]:
    """Pixel size (y, x) from the XResolution / YResolution tags (pixels per unit)."""
    sizes = []
    for tag in ("YResolution", "XResolution"):
        t = page.tags.get(tag)
        try:
            num, den = t.value
            sizes.append(den / num if num else None)
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            sizes.append(None)
    return sizes[0], sizes[1]


def _imagej_metadata(tif, axes: str) -> dict[str, Any]:
    ij = tif.imagej_metadata or {}
    page = tif.pages.first
    unit = normalize_unit(ij.get("unit"))
    y, x = _resolution_size(page)
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    # ImageJ writes ``spacing=`` (and the resolution) only when it is not 1, and
    # ``yunit=`` / ``zunit=`` only when they differ from ``unit=``: a missing key is
    # 1 of the image's unit. No ``unit=`` is an uncalibrated image.
    for a, v in (("y", y), ("x", x), ("z", ij.get("spacing"))):
        if a not in axes:
            continue
        if v:
            scale[axes.index(a)] = float(v)
        if unit is not None:
            units[axes.index(a)] = normalize_unit(ij.get(f"{a}unit")) or unit
    # no ``finterval=``: ImageJ's frame interval is 0, an uncalibrated time axis
    if "t" in axes and ij.get("finterval"):
        scale[axes.index("t")] = float(ij["finterval"])
        units[axes.index("t")] = normalize_unit(ij.get("tunit", "s"))
    # ImageJ's origin is the pixel at physical 0 (``xorigin=``...): voxel 0 is at -origin
    translate = [0.0] * len(axes)
    for a in "zyx":
        if a in axes and ij.get(f"{a}origin") is not None:
            translate[axes.index(a)] = -float(ij[f"{a}origin"]) * scale[axes.index(a)]
    out: dict[str, Any] = {"scale": scale, "units": units, "translate": translate}
    labels = ij.get("Labels")
    if "c" in axes and isinstance(labels, list):
        n_c = tif.series[0].shape[axes.index("c")]
        if len(labels) == n_c:
            out["channel_names"] = [str(v) for v in labels]
    return out


def _shaped_metadata(tif, axes: str) -> dict[str, Any] | None:
    """What napari-lazyproc's TIFF export keeps in tifffile's shaped JSON: ``scale``,
    ``translate``, ``units`` and ``channel_names`` (as a plain zarr's attributes); None
    for a file without them."""
    shaped = tif.shaped_metadata
    meta = shaped[0] if shaped else None
    if not isinstance(meta, dict) or "scale" not in meta:
        return None
    n = len(axes)
    scale = [float(v) for v in meta["scale"]]
    translate = [float(v) for v in meta.get("translate") or [0.0] * n]
    units = [normalize_unit(u) for u in meta.get("units") or [None] * n]
    if not len(scale) == len(translate) == len(units) == n:
        return None
    out: dict[str, Any] = {"scale": scale, "units": units, "translate": translate}
    names = meta.get("channel_names")
    if "c" in axes and isinstance(names, list) and len(names) == tif.series[0].shape[
            axes.index("c")]:
        out["channel_names"] = [str(v) for v in names]
    return out


def _plain_metadata(tif, axes: str) -> dict[str, Any]:
    """Only a centimetre ResolutionUnit is a physical size; inch values are screen dpi."""
    import tifffile

    page = tif.pages.first
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and res_unit.value == tifffile.RESUNIT.CENTIMETER:
        y, x = _resolution_size(page)
        for a, v in (("y", y), ("x", x)):
            if a in axes and v:
                scale[axes.index(a)] = convert_unit(v, "centimeter", "micrometer")
                units[axes.index(a)] = "micrometer"
    return {"scale": scale, "units": units}


def tiff_metadata(tif, series: int, axes: str) -> dict[str, Any]:
    """Scale, units, origin and channel names from OME-XML, ImageJ metadata, our own
    export's shaped JSON, or resolution tags.

    Parameters
    ----------
    tif
        An open ``tifffile.TiffFile``.
    series
        The index of the series the metadata is for.
    axes
        The series' axis letters, from ``tiff_axes``.

    Returns
    -------
    dict
        ``"scale"``, ``"units"`` and ``"translate"`` (one entry per axis), plus
        ``"channel_names"`` and ``"channel_colors"`` when the file gives one per channel.
        Unreadable metadata gives unit scale and no units: the pixels still open.
    """
    try:
        if tif.is_ome:
            return ome_metadata(tif, series, axes)
        if tif.is_imagej:
            return _imagej_metadata(tif, axes)
        if tif.is_shaped:
            shaped = _shaped_metadata(tif, axes)
            if shaped is not None:
                return shaped
        return _plain_metadata(tif, axes)
    except Exception:  # noqa: BLE001 - metadata is a bonus; pixels still open
        return {"scale": [1.0] * len(axes), "units": [None] * len(axes)}

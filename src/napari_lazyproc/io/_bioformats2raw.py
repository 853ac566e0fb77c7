"""bioformats2raw's layout (``"bioformats2raw.layout": 3``): the OME-Zarr that most
vendor files (CZI, LIF, ND2...) are converted to. Its root holds one OME-Zarr image per
series (``0/``, ``1/``...) and ``OME/METADATA.ome.xml``, the vendor file's OME-XML.

The root opens series 0, or ``series=N``; the OME-XML gives what the series' zarr lacks:
channel names, and the physical size and unit of an axis whose zarr has no unit (older
bioformats2raw wrote scale 1 and no units).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ._axes import normalize_unit
from ._errors import ImageReadError
from ._image import LazyImage
from ._registry import Format, Target, register
from ._remote_target import RemoteTarget
from ._zarr import OmeZarr, ZarrStore, is_zarr_dir, ome_section, read_attrs
from ._zarr_child import child_target

LAYOUT_KEY = "bioformats2raw.layout"
METADATA_XML = "OME/METADATA.ome.xml"
#: OME-XML's units when an attribute gives none
_DEFAULT_UNITS = {"PhysicalSizeX": "µm", "PhysicalSizeY": "µm", "PhysicalSizeZ": "µm",
                  "TimeIncrement": "s"}
_XML_SIZES = {"x": "PhysicalSizeX", "y": "PhysicalSizeY", "z": "PhysicalSizeZ",
              "t": "TimeIncrement"}


def ome_xml_images(text: bytes | str) -> list[dict[str, Any]]:
    """Each ``Image`` of an OME-XML document: its name, its channels' names, and the
    physical size and unit of x, y, z and t where the XML gives them."""
    root = ET.fromstring(text)
    out = []
    for image in root.iter():
        if not image.tag.endswith("}Image") and image.tag != "Image":
            continue
        pixels = next((p for p in image if p.tag.rsplit("}", 1)[-1] == "Pixels"), None)
        attrs = pixels.attrib if pixels is not None else {}
        sizes = {}
        for axis, key in _XML_SIZES.items():
            try:
                value = float(attrs[key])
            except (KeyError, ValueError):
                continue
            if value > 0:
                sizes[axis] = (value, normalize_unit(attrs.get(f"{key}Unit",
                                                              _DEFAULT_UNITS[key])))
        channels = [c.attrib.get("Name") for c in (pixels if pixels is not None else [])
                    if c.tag.rsplit("}", 1)[-1] == "Channel"]
        out.append({"name": image.attrib.get("Name"), "sizes": sizes, "channels": channels})
    return out


def _series_paths(target: Target) -> list[str]:
    """The series' groups: ``OME``'s ``series`` list, else ``0/``, ``1/``... while present."""
    ome = child_target(target, "OME")
    if is_zarr_dir(ome):
        listed = ome_section(read_attrs(ome)).get("series")
        if isinstance(listed, list) and listed:
            return [str(s) for s in listed]
    paths = []
    while is_zarr_dir(child_target(target, str(len(paths)))):
        paths.append(str(len(paths)))
    return paths


def _xml_images(target: Target) -> list[dict[str, Any]]:
    """The OME-XML's images, or none when the file is missing or unreadable (the zarr's
    own metadata is used then)."""
    try:
        text = target.read_member(METADATA_XML)
        return ome_xml_images(text) if text else []
    except (ET.ParseError, ImageReadError, OSError, UnicodeDecodeError):
        return []


def _apply_xml(image: LazyImage, xml: dict[str, Any]) -> None:
    """What the OME-XML says and the zarr does not: channel names, and the size and
    unit of each axis whose zarr has no unit (a size without a unit is in pixels)."""
    scale, translate, units = list(image.scale), list(image.translate), list(image.units)
    for i, axis in enumerate(image.axes):
        if units[i] is None and axis in xml["sizes"]:
            size, unit = xml["sizes"][axis]
            translate[i] = translate[i] / scale[i] * size
            scale[i], units[i] = size, unit
    image.scale, image.translate, image.units = tuple(scale), tuple(translate), tuple(units)
    n_channels = image.shape[image.axes.index("c")] if "c" in image.axes else 1
    names = xml["channels"]
    if image.channel_names is None and "c" in image.axes and len(names) == n_channels \
            and all(names):
        image.channel_names = [str(n) for n in names]


@register(before=ZarrStore)
class Bioformats2raw(Format):
    """bioformats2raw's layout 3: series 0 of the root, or the one asked for."""

    name = "bioformats2raw"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if not is_zarr_dir(target):
            return False
        attrs = ome_section(read_attrs(target))
        return LAYOUT_KEY in attrs and "plate" not in attrs

    @classmethod
    def open(cls, target: Target, *, series: int = 0) -> LazyImage:
        root = target.url if isinstance(target, RemoteTarget) else target.path
        version = ome_section(read_attrs(target)).get(LAYOUT_KEY)
        if version != 3:
            raise ImageReadError(root, f"bioformats2raw layout {version!r}; layout 3 is read")
        paths = _series_paths(target)
        if not paths:
            raise ImageReadError(root, "a bioformats2raw root without series (no 0/ group)")
        if not 0 <= series < len(paths):
            raise ImageReadError(root, f"no series {series}: this file holds series "
                                       f"0..{len(paths) - 1}")
        child = child_target(target, paths[series])
        if not OmeZarr.claims(child):
            raise ImageReadError(root, f"series {paths[series]!r} is not an OME-Zarr image")
        image = OmeZarr.open(child)
        xml = _xml_images(target)
        if series < len(xml):
            _apply_xml(image, xml[series])
            if xml[series]["name"]:
                image.name = str(xml[series]["name"])
        image.source.update(path=str(root), format=f"bioformats2raw ({image.source['format']})",
                            series=series, root=str(root))
        image.metadata["series"] = [
            {"path": p, "name": xml[i]["name"] if i < len(xml) else None}
            for i, p in enumerate(paths)]
        return image


@register(before=OmeZarr)
class Bioformats2rawSeries(Format):
    """A series folder of a local bioformats2raw root (``data.zarr/1``): the series, with
    its OME-XML metadata, as the root's ``series=1`` gives it."""

    name = "bioformats2raw series"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if isinstance(target, RemoteTarget) or not OmeZarr.claims(target):
            return False
        parent = Target(target.path.parent)
        return Bioformats2raw.claims(parent) and target.path.name in _series_paths(parent)

    @classmethod
    def open(cls, target: Target) -> LazyImage:
        parent = Target(target.path.parent)
        image = Bioformats2raw.open(parent, series=_series_paths(parent).index(
            target.path.name))
        image.source["path"] = str(target.path)
        return image

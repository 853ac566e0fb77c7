"""BigDataViewer / BigStitcher ``dataset.xml`` (SpimData): what the HDF5 and N5 readers read.

The XML says where the pixels are (its ``ImageLoader``: ``bdv.hdf5`` names an ``<hdf5>``
file, ``bdv.n5`` an ``<n5>`` container, relative to ``BasePath``), what each view setup
is called and its voxel size. The pixels' own file says the rest (setups, time points,
levels), so a container opened without its XML still opens.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ._axes import normalize_unit, unit_for_axis
from ._image import LazyImage

#: ImageLoader format -> the element naming its container
CONTAINER_TAG = {"bdv.hdf5": "hdf5", "bdv.n5": "n5"}


def loader_format(xml: Path) -> str | None:
    """The ``format`` of a SpimData XML's ``ImageLoader``, reading no further than it.

    Never raises: a missing, unreadable or foreign file gives None.
    """
    try:
        for _, elem in ET.iterparse(xml, events=("start",)):
            if elem.tag == "ImageLoader":
                return elem.get("format")
    except (ET.ParseError, OSError):
        return None
    return None


def _resolve(base: Path, node: ET.Element) -> Path:
    text = (node.text or "").strip()
    return base / text if node.get("type", "relative") == "relative" else Path(text)


def container_path(xml: Path, loader: str) -> Path | None:
    """The file or folder a BigDataViewer XML of image loader ``loader`` points to, or
    None when its loader is another (or names no container)."""
    root = ET.parse(xml).getroot()
    node = root.find(".//ImageLoader")
    if node is None or node.get("format") != loader:
        return None
    base = xml.parent
    base_node = root.find("BasePath")
    if base_node is not None and base_node.text:
        base = _resolve(base, base_node)
    where = node.find(CONTAINER_TAG[loader])
    if where is None or not (where.text or "").strip():
        return None
    return _resolve(base, where).resolve()


def xml_for(container: Path, loader: str) -> Path | None:
    """The BigDataViewer XML beside ``container`` that points to it, if any: the one
    named like it first, then up to 50 others in its folder."""
    here = container.resolve()
    candidates = [container.with_suffix(".xml")]
    candidates += sorted(p for p in container.parent.glob("*.xml") if p != candidates[0])[:50]
    for xml in candidates:
        if xml.is_file() and loader_format(xml) == loader:
            try:
                if container_path(xml, loader) == here:
                    return xml
            except (ET.ParseError, OSError):
                continue
    return None


def setup_names(xml: Path | None, setups: list[int]) -> list[str]:
    """Each setup's name in the XML: its ``<name>``, else ``channel <name>`` from its
    channel attribute (as BigDataViewer's own setup list shows it), else ``setup <id>``."""
    names: dict[int, str] = {}
    if xml is not None:
        try:
            root = ET.parse(xml).getroot()
            channels = {c.findtext("id"): (c.findtext("name") or c.findtext("id"))
                        for c in root.iterfind(".//Attributes[@name='channel']/Channel")}
            for vs in root.iter("ViewSetup"):
                sid, name = vs.findtext("id"), vs.findtext("name")
                if sid is None:
                    continue
                channel = vs.findtext("attributes/channel")
                if name and name.strip():
                    names[int(sid)] = name.strip()
                elif channel is not None and channel.strip():
                    names[int(sid)] = f"channel {channels.get(channel.strip(), channel.strip())}"
        except (ET.ParseError, OSError, ValueError):
            pass
    return [names.get(s, f"setup {s}") for s in setups]


def voxel_size(xml: Path | None) -> tuple[tuple[float, float, float], str | None] | None:
    """Voxel size (z, y, x) and unit of the first view setup of a BigDataViewer XML.

    Parameters
    ----------
    xml
        A BigDataViewer / BigStitcher ``dataset.xml`` (HDF5 or N5 image loader alike).

    Returns
    -------
    tuple or None
        ``((z, y, x), unit)``, or None when the file is missing or records no voxel size.
    """
    if xml is None or not xml.is_file():
        return None
    try:
        root = ET.parse(xml).getroot()
        node = root.find(".//ViewSetup/voxelSize")
        size = [float(v) for v in node.findtext("size").split()]  # x y z
        return (size[2], size[1], size[0]), normalize_unit(node.findtext("unit"))
    except (ET.ParseError, AttributeError, ValueError, IndexError):
        return None


def bdv_image(levels, sources, setups: list[int], voxel, unit, name: str, xml: Path | None,
              source: dict) -> LazyImage:
    """A BigDataViewer dataset (HDF5 or N5 alike) as one image: ``t[c]zyx``, the setups
    as channels named by the XML, the voxel size and unit on z, y and x.

    Parameters
    ----------
    levels, sources
        The pyramid's dask levels and the arrays behind them, full resolution first.
    setups
        The setups read (one channel each when more than one).
    voxel, unit
        ``(z, y, x)`` voxel size and its unit (``None``: pixels).
    name
        The image's name.
    xml
        The dataset's XML, if any (names the setups).
    source
        What ``LazyImage.source`` records (path, format, container...).
    """
    axes = "tczyx" if len(setups) > 1 else "tzyx"
    spatial = dict(zip("zyx", voxel, strict=True))
    return LazyImage(
        levels=levels,
        axes=axes,
        scale=tuple(spatial.get(a, 1.0) for a in axes),
        translate=(0.0,) * len(axes),
        units=tuple(unit_for_axis(a, unit) for a in axes),
        name=name,
        channel_names=setup_names(xml, setups) if len(setups) > 1 else None,
        source=source,
        sources=sources,
    )

"""OME-NGFF 0.4 / 0.5 attributes and the provenance record written with every export."""

from __future__ import annotations

import datetime
from importlib import metadata as importlib_metadata
from typing import Any

AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def provenance(steps: list[dict], source_path: str | None,
               job: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ran, from what, with which versions, and when; ``job``: the export's resume
    record (its input's identity), kept as ``"export"`` so a re-run tells an output it
    already made (``_complete``)."""
    versions = {}
    for pkg in ("napari-lazyproc", "numpy", "scipy", "dask", "zarr", "tifffile"):
        try:
            versions[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return {
        "pipeline": steps,
        "source": source_path,
        "versions": versions,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **({"export": job} if job is not None else {}),
    }


def plain_geometry(data) -> dict[str, Any]:
    """The geometry as a plain zarr array's attributes (and a TIFF's shaped metadata):
    ``axes``, ``scale``, ``translate``, ``units`` (None: pixels) and ``channel_names``."""
    out: dict[str, Any] = {"axes": data.axes, "scale": [float(s) for s in data.scale],
                           "translate": [float(t) for t in data.translate],
                           "units": [u or None for u in data.units]}
    if data.channel_names:
        out["channel_names"] = list(data.channel_names)
    return out


def _axes(axes: str, units) -> list[dict[str, Any]]:
    out = []
    for a, u in zip(axes, units, strict=True):
        entry: dict[str, Any] = {"name": a, "type": AXIS_TYPES.get(a, "space")}
        if u and AXIS_TYPES.get(a) in ("space", "time"):
            entry["unit"] = u
        out.append(entry)
    return out


def multiscales(name: str, axes: str, units, scales: list[tuple], translates: list[tuple],
                version: str) -> list[dict[str, Any]]:
    """The ``multiscales`` block: one dataset per level with its voxel size and origin."""
    datasets = []
    placed = any(any(t) for t in translates)
    for i, (scale, translate) in enumerate(zip(scales, translates, strict=True)):
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [float(s) for s in scale]}]
        if placed:
            transforms.append({"type": "translation",
                               "translation": [float(t) for t in translate]})
        datasets.append({"path": str(i), "coordinateTransformations": transforms})
    ms: dict[str, Any] = {"axes": _axes(axes, units), "datasets": datasets, "name": name}
    if version == "0.4":
        ms["version"] = "0.4"
    return [ms]


def omero(channel_names, channel_colors, windows, n_channels: int) -> dict[str, Any] | None:
    """The ``omero`` block: a label, color and window per channel, or None when the
    windows are unknown (the schema requires a color and a window for every channel)."""
    if not windows or len(windows) != n_channels:
        return None
    if channel_colors and len(channel_colors) == n_channels:
        colors = [c.lstrip("#").upper() for c in channel_colors]
    else:
        colors = default_colors(n_channels)
    channels = []
    for i, (lo, hi) in enumerate(windows):
        channels.append({
            "label": channel_names[i] if channel_names else f"c{i}",
            "active": True,
            "color": colors[i],
            "window": {"start": float(lo), "end": float(hi), "min": float(lo), "max": float(hi)},
        })
    return {"channels": channels}


def default_colors(n_channels: int) -> list[str]:
    """napari's defaults: white for one channel, magenta and green for two, else a cycle
    of cyan, magenta, yellow, red, green and blue."""
    if n_channels == 1:
        return ["FFFFFF"]
    cycle = ["FF00FF", "00FF00"] if n_channels == 2 else [
        "00FFFF", "FF00FF", "FFFF00", "FF0000", "00FF00", "0000FF"]
    return [cycle[i % len(cycle)] for i in range(n_channels)]


def wrap(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    """0.5 keeps OME attributes under ``"ome"``; 0.4 at the top level."""
    if version == "0.5":
        return {"ome": {"version": "0.5", **attrs}}
    return attrs

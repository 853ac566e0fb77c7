"""OME-NGFF 0.4 / 0.5 attributes and the provenance record written with every export."""

from __future__ import annotations

import datetime
from importlib import metadata as importlib_metadata
from typing import Any

AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def provenance(steps: list[dict], source_path: str | None) -> dict[str, Any]:
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
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _axes(axes: str, units) -> list[dict[str, Any]]:
    out = []
    for a, u in zip(axes, units):
        entry: dict[str, Any] = {"name": a, "type": AXIS_TYPES.get(a, "space")}
        if u and AXIS_TYPES.get(a) in ("space", "time"):
            entry["unit"] = u
        out.append(entry)
    return out


def multiscales(name: str, axes: str, units, scales: list[tuple], translate, version: str
                ) -> list[dict[str, Any]]:
    datasets = []
    for i, scale in enumerate(scales):
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [float(s) for s in scale]}]
        if any(translate):
            transforms.append({"type": "translation", "translation": [float(t) for t in translate]})
        datasets.append({"path": str(i), "coordinateTransformations": transforms})
    ms: dict[str, Any] = {"axes": _axes(axes, units), "datasets": datasets, "name": name}
    if version == "0.4":
        ms["version"] = "0.4"
    return [ms]


def omero(channel_names, channel_colors, contrast_limits, n_channels: int) -> dict[str, Any]:
    channels = []
    for i in range(n_channels):
        ch: dict[str, Any] = {"label": channel_names[i] if channel_names else f"c{i}",
                              "active": True}
        if channel_colors:
            ch["color"] = channel_colors[i].lstrip("#").upper()
        if contrast_limits:
            lo, hi = contrast_limits[i]
            ch["window"] = {"start": float(lo), "end": float(hi), "min": float(lo), "max": float(hi)}
        channels.append(ch)
    return {"channels": channels}


def wrap(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    """0.5 keeps OME attributes under ``"ome"``; 0.4 at the top level."""
    if version == "0.5":
        return {"ome": {"version": "0.5", **attrs}}
    return attrs

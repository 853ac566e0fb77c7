"""zarr v2 / v3 stores: OME-Zarr multiscales (0.4 and 0.5), plain groups and plain arrays."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ._axes import axes_from_names, guess_axes, normalize_unit
from ._errors import ImageReadError
from ._file_array import as_dask
from ._image import LazyImage
from ._registry import Format, Target, register

_V3_META = "zarr.json"
_V2_META = (".zgroup", ".zarray")


def _is_zarr_dir(target: Target) -> bool:
    return target.has_member(_V3_META) or any(target.has_member(m) for m in _V2_META)


def _read_attrs(root: Path) -> dict[str, Any]:
    """The user attributes of a zarr node, read from its metadata file (v3 or v2)."""
    meta = root / _V3_META
    if meta.is_file():
        return json.loads(meta.read_text()).get("attributes", {}) or {}
    attrs = root / ".zattrs"
    if attrs.is_file():
        return json.loads(attrs.read_text())
    return {}


def _ome_section(attrs: dict[str, Any]) -> dict[str, Any]:
    """OME-Zarr 0.5 nests everything under "ome"; 0.4 keeps it at the top."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else attrs


def _check_metadata(root: Path) -> None:
    """Parse every metadata file at the root so a broken one is named in the error."""
    for name in (_V3_META, *_V2_META, ".zattrs", ".zmetadata"):
        f = root / name
        if f.is_file():
            try:
                json.loads(f.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ImageReadError(root, f"{name} is not valid JSON ({exc})") from exc


def _open_node(root: Path):
    import zarr

    _check_metadata(root)
    return zarr.open(str(root), mode="r")


def _array_to_dask(arr, store_root: Path) -> da.Array:
    """One dask task per zarr chunk (the inner chunk for sharded arrays), no read at creation."""
    meta_file = store_root / arr.path / (_V3_META if arr.metadata.zarr_format == 3 else ".zarray")
    try:
        mtime = os.stat(meta_file).st_mtime_ns
    except OSError:
        mtime = 0
    name = "lp-zarr-" + tokenize(str(store_root), arr.path, arr.shape, str(arr.dtype), mtime)
    return as_dask(arr, arr.chunks, name)


def _array_dim_names(arr) -> list[str] | None:
    names = getattr(arr.metadata, "dimension_names", None)
    if names:
        return list(names)
    dims = arr.attrs.get("_ARRAY_DIMENSIONS")
    return list(dims) if dims else None


def _level_name(target: Target) -> str:
    name = target.path.name
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# ---------------------------------------------------------------------------------- OME-Zarr


def _axes_and_units(ms: dict[str, Any], ndim: int) -> tuple[str, list[str | None]]:
    axes = ms.get("axes")
    if not axes:  # 0.1 / 0.2: always 5-D tczyx
        return guess_axes((0,) * ndim) if ndim != 5 else "tczyx", [None] * ndim
    if isinstance(axes[0], str):  # 0.3: a list of names
        return "".join(a.lower()[0] for a in axes), [None] * ndim
    letters = "".join(str(a.get("name", "?")).lower()[0] for a in axes)
    units = [normalize_unit(a.get("unit")) for a in axes]
    if len(set(letters)) != len(letters):
        letters = guess_axes((0,) * ndim)
    return letters, units


def _transforms(transforms: list[dict] | None, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    scale, translate = np.ones(ndim), np.zeros(ndim)
    for t in transforms or []:
        if t.get("type") == "scale" and "scale" in t:
            scale = scale * np.asarray(t["scale"], dtype=float)
        elif t.get("type") == "translation" and "translation" in t:
            translate = translate + np.asarray(t["translation"], dtype=float)
    return scale, translate


def _hex_color(value: Any) -> str | None:
    if isinstance(value, str) and len(value.lstrip("#")) == 6:
        return "#" + value.lstrip("#").lower()
    return None


def _open_multiscale(group, root: Path, name: str, kind: str) -> LazyImage:
    attrs = _ome_section(dict(group.attrs))
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise ImageReadError(root, "no 'multiscales' in the OME-Zarr attributes")
    ms = multiscales[0]
    datasets = ms.get("datasets") or []
    if not datasets:
        raise ImageReadError(root, "the OME-Zarr multiscale lists no datasets")
    arrays = []
    for ds in datasets:
        try:
            arrays.append(group[ds["path"]])
        except KeyError as exc:
            raise ImageReadError(root, f"multiscale dataset {ds['path']!r} is missing") from exc
    ndim = arrays[0].ndim
    axes, units = _axes_and_units(ms, ndim)
    if len(axes) != ndim:
        raise ImageReadError(root, f"axes {axes!r} do not match the {ndim}-D array")
    scale0, translate0 = _transforms(datasets[0].get("coordinateTransformations"), ndim)
    gscale, gtranslate = _transforms(ms.get("coordinateTransformations"), ndim)
    scale = scale0 * gscale
    translate = translate0 * gscale + gtranslate

    channel_names = channel_colors = contrast = None
    omero = attrs.get("omero") or {}
    channels = omero.get("channels") or []
    n_channels = arrays[0].shape[axes.index("c")] if "c" in axes else 1
    if channels and len(channels) == n_channels:
        channel_names = [str(c.get("label", f"channel {i}")) for i, c in enumerate(channels)]
        colors = [_hex_color(c.get("color")) for c in channels]
        channel_colors = colors if all(colors) else None
        windows = [c.get("window") or {} for c in channels]
        if all("start" in w and "end" in w for w in windows):
            contrast = [(float(w["start"]), float(w["end"])) for w in windows]

    levels = [_array_to_dask(a, root) for a in arrays]
    return LazyImage(
        levels=levels,
        sources=arrays,
        axes=axes,
        scale=tuple(scale),
        translate=tuple(translate),
        units=tuple(units),
        name=name,
        kind=kind,
        channel_names=channel_names,
        channel_colors=channel_colors,
        contrast_limits=contrast,
        source={
            "path": str(root),
            "format": "ome-zarr",
            "version": str(ms.get("version") or attrs.get("version") or ""),
            "datasets": [d["path"] for d in datasets],
        },
        metadata={"ome": {k: v for k, v in attrs.items() if k in ("omero", "image-label")}},
    )


@register
class OmeZarr(Format):
    """OME-NGFF images: 0.4 (zarr v2) and 0.5 (zarr v3) multiscales, with ``labels/``."""

    name = "OME-Zarr"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if not _is_zarr_dir(target):
            return False
        try:
            attrs = _ome_section(_read_attrs(target.path))
        except (OSError, ValueError):
            return False
        return bool(attrs.get("multiscales"))

    @classmethod
    def open(cls, target: Target, **options: Any) -> LazyImage:
        if options:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(options)}")
        group = _open_node(target.path)
        kind = "labels" if "image-label" in _ome_section(dict(group.attrs)) else "image"
        image = _open_multiscale(group, target.path, _level_name(target), kind)
        image.labels = cls._labels(group, target.path)
        return image

    @staticmethod
    def _labels(group, root: Path) -> list[LazyImage]:
        if "labels" not in group:
            return []
        labels_group = group["labels"]
        names = _ome_section(dict(labels_group.attrs)).get("labels") or []
        out = []
        for name in names:
            if name in labels_group:
                out.append(
                    _open_multiscale(labels_group[name], root / "labels" / name, name, "labels")
                )
        return out


# ------------------------------------------------------------------------------- plain zarr


def _is_pyramid(arrays: list) -> bool:
    """Same ndim and dtype, and each level no larger than the one before on every axis."""
    if len(arrays) < 2:
        return False
    first = arrays[0]
    for prev, cur in pairwise(arrays):
        if cur.ndim != first.ndim or cur.dtype != first.dtype:
            return False
        if cur.shape == prev.shape or any(
            c > p for c, p in zip(cur.shape, prev.shape, strict=True)
        ):
            return False
    return True


@register
class ZarrStore(Format):
    """A plain zarr array, or a group of arrays (a pyramid if their shapes form one)."""

    name = "zarr"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return _is_zarr_dir(target) or target.has_suffix(".zarr", ".zarr/")

    @classmethod
    def open(cls, target: Target, *, array: str | None = None) -> LazyImage:
        import zarr

        root = target.path
        if not _is_zarr_dir(target):
            if target.is_dir:
                raise ImageReadError(root, "no zarr.json, .zgroup or .zarray in this folder")
            raise ImageReadError(root, "a .zarr path must be a folder")
        node = _open_node(root)
        others: list[str] = []
        if isinstance(node, zarr.Array):
            arrays = [node]
        else:
            found = sorted(
                (a for _, a in node.arrays() if a.ndim >= 2 and a.dtype.kind in "biuf"),
                key=lambda a: int(np.prod(a.shape, dtype=np.int64)),
                reverse=True,
            )
            if array is not None:
                if array.strip("/") not in node:
                    listed = ", ".join(a.path for a in found) or "none"
                    raise ImageReadError(root, f"no array {array!r}; arrays: {listed}")
                found = [node[array.strip("/")]]
            if not found:
                raise ImageReadError(root, "the zarr group holds no numeric array of 2-D or more")
            if _is_pyramid(found):
                arrays = found
            else:
                arrays, others = [found[0]], [a.path for a in found[1:]]
        first = arrays[0]
        axes = axes_from_names(_array_dim_names(first), first.shape)
        if len(axes) != first.ndim:
            axes = guess_axes(first.shape)
        return LazyImage(
            levels=[_array_to_dask(a, root) for a in arrays],
            sources=arrays,
            axes=axes,
            scale=(1.0,) * first.ndim,
            translate=(0.0,) * first.ndim,
            units=(None,) * first.ndim,
            name=_level_name(target) if not first.path else f"{_level_name(target)}/{first.path}",
            source={
                "path": str(root),
                "format": f"zarr v{first.metadata.zarr_format}",
                "arrays": [a.path for a in arrays],
            },
            metadata={"other_arrays": others} if others else {},
        )

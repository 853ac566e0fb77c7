"""zarr v2 / v3 stores: OME-Zarr multiscales (0.4 and 0.5), plain groups and plain arrays."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ._axes import axes_from_names, guess_axes, normalize_unit
from ._codecs import fast_codecs
from ._errors import ImageReadError
from ._file_array import as_dask
from ._identity import zarr_token
from ._image import LazyImage
from ._ngff_metadata import NgffError, axes_and_units, dataset_paths, transforms
from ._registry import Format, Target, register
from ._remote_store import read_block
from ._remote_target import RemoteTarget, store_version

_V3_META = "zarr.json"
_V2_META = (".zgroup", ".zarray")


def is_zarr_dir(target: Target) -> bool:
    return target.has_member(_V3_META) or any(target.has_member(m) for m in _V2_META)


def read_attrs(target: Target) -> dict[str, Any]:
    """The user attributes of a zarr node, read from its metadata file (v3 or v2)."""
    meta = target.read_member(_V3_META)
    if meta is not None:
        return json.loads(meta).get("attributes", {}) or {}
    attrs = target.read_member(".zattrs")
    if attrs is not None:
        return json.loads(attrs)
    return {}


def store_root(target: Target) -> Path | str:
    """Where the store is, as errors and ``source["path"]`` name it: a path or a URL."""
    return target.url if isinstance(target, RemoteTarget) else target.path


def _join(root: Path | str, *parts: str) -> Path | str:
    return "/".join((root, *parts)) if isinstance(root, str) else root.joinpath(*parts)


def _node_keys(prefix: str, v3: bool) -> list[str]:
    """The metadata documents zarr reads to open the node at ``prefix``."""
    names = (_V3_META,) if v3 else (".zarray", ".zgroup", ".zattrs")
    return [f"{prefix}/{n}" if prefix else n for n in names]


def ome_section(attrs: dict[str, Any]) -> dict[str, Any]:
    """OME-Zarr 0.5 nests everything under "ome"; 0.4 keeps it at the top."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else attrs


_DRAFT = ("a zarr v3 draft store (zarr.json says zarr_format "
          "'https://purl.org/zarr/spec/protocol/core/3.0', a layout from before the v3 "
          "spec was final, written by zarr-python 2's experimental v3 API); zarr v2 and "
          "the final v3 are read: convert it with zarr-python 2 to v2")


def check_numeric(arr, root: Path | str) -> None:
    """Refuse an array of text, objects or records: an image holds numbers."""
    if arr.dtype.kind not in "biuf":
        raise ImageReadError(root, f"the zarr array {arr.path or '/'!r} holds {arr.dtype} "
                                   f"values, not numbers: only numeric arrays are images")


def _check_metadata(target: Target) -> None:
    """Parse every metadata file at the root so a broken one is named in the error."""
    for name in (_V3_META, *_V2_META, ".zattrs", ".zmetadata"):
        text = target.read_member(name)
        if text is not None:
            try:
                json.loads(text)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ImageReadError(store_root(target),
                                     f"{name} is not valid JSON ({exc})") from exc
            if name == _V3_META and json.loads(text).get("zarr_format") != 3:
                raise ImageReadError(store_root(target), _DRAFT)


def open_node(target: Target):
    import zarr

    _check_metadata(target)
    if not isinstance(target, RemoteTarget):
        return zarr.open(str(target.path), mode="r")
    if target.unfinished_export:
        raise ImageReadError(target.url, "an unfinished export (it has no manifest yet); "
                             "export(..., resume=True) finishes it")
    v3 = target.has_member(_V3_META)
    return zarr.open(store=target.store, mode="r", zarr_format=3 if v3 else 2)


def _prefetch_multiscale(target: Target, prefix: str, attrs: dict[str, Any]) -> None:
    """A remote multiscale's array documents (and its ``labels`` group), fetched at once
    before zarr opens them one after another; consolidated metadata needs none."""
    if not isinstance(target, RemoteTarget) or target.has_member(".zmetadata"):
        return
    root_meta = target.read_member(_V3_META)
    if root_meta is not None and json.loads(root_meta).get("consolidated_metadata"):
        return
    v3 = root_meta is not None
    paths = [d.get("path", "") for ms in attrs.get("multiscales") or [] if isinstance(ms, dict)
             for d in ms.get("datasets") or [] if isinstance(d, dict)]
    keys = [k for p in paths for k in _node_keys(f"{prefix}{p}", v3)]
    if not prefix:
        keys += _node_keys("labels", v3)
    target.prefetch(keys)


def _array_to_dask(arr, root: Path | str, opening: Any = None) -> da.Array:
    """One dask task per zarr chunk (the inner chunk for sharded arrays), no read at creation.

    Its name is the array's token (``io._identity``): a local array's is its folder and
    metadata, so every way of opening it shares one cache (chunk stamps keep that cache
    true to the files). A remote store cannot be stamped cheaply: its token holds
    ``opening`` (this opening of it) and its version, a snapshot that reopening renews.
    A remote array's task reads a block of chunks (``read_block``) in one call, so that
    zarr fetches them concurrently.
    """
    if isinstance(root, str):
        name = zarr_token(arr, (root, store_version(root), opening))
        return as_dask(arr, read_block(arr.shape, arr.chunks, arr.dtype.itemsize), name)
    return as_dask(arr, arr.chunks, zarr_token(arr))


def _array_dim_names(arr) -> list[str] | None:
    names = getattr(arr.metadata, "dimension_names", None)
    if names:
        return list(names)
    dims = arr.attrs.get("_ARRAY_DIMENSIONS")
    return list(dims) if dims else None


def level_name(target: Target) -> str:
    name = target.path.name
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# ---------------------------------------------------------------------------------- OME-Zarr


def _hex_color(value: Any) -> str | None:
    if isinstance(value, str) and len(value.lstrip("#")) == 6:
        return "#" + value.lstrip("#").lower()
    return None


def _open_multiscale(group, root: Path | str, name: str, kind: str,
                     opening: Any = None) -> LazyImage:
    attrs = ome_section(dict(group.attrs))
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise ImageReadError(root, "no 'multiscales' in the OME-Zarr attributes")
    ms = multiscales[0]
    try:
        paths = dataset_paths(ms)
    except NgffError as exc:
        raise ImageReadError(root, str(exc)) from exc
    datasets = ms["datasets"]
    arrays = []
    for path in paths:
        try:
            arrays.append(group[path])
        except KeyError as exc:
            raise ImageReadError(root, f"multiscale dataset {path!r} is missing") from exc
    check_numeric(arrays[0], root)
    ndim = arrays[0].ndim
    try:
        axes, units = axes_and_units(ms, ndim)
        if len(axes) != ndim:
            raise NgffError(f"{len(axes)} axes for the {ndim}-D array {paths[0]!r}")
        scale0, translate0 = transforms(datasets[0].get("coordinateTransformations"), ndim,
                                        f"dataset {paths[0]!r}")
        gscale, gtranslate = transforms(ms.get("coordinateTransformations"), ndim,
                                        "the multiscale's")
    except NgffError as exc:
        raise ImageReadError(root, str(exc)) from exc
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

    arrays = [fast_codecs(a) for a in arrays]
    levels = [_array_to_dask(a, root, opening) for a in arrays]
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
            "datasets": paths,
        },
        metadata={"ome": {k: v for k, v in attrs.items() if k in ("omero", "image-label")}},
    )


@register
class OmeZarr(Format):
    """OME-NGFF images: 0.4 (zarr v2) and 0.5 (zarr v3) multiscales, with ``labels/``."""

    name = "OME-Zarr"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if not is_zarr_dir(target):
            return False
        try:
            attrs = ome_section(read_attrs(target))
        except (OSError, ValueError):
            return False
        return bool(attrs.get("multiscales"))

    @classmethod
    def open(cls, target: Target) -> LazyImage:
        group = open_node(target)
        attrs = ome_section(dict(group.attrs))
        _prefetch_multiscale(target, "", attrs)
        kind = "labels" if "image-label" in attrs else "image"
        root = store_root(target)
        image = _open_multiscale(group, root, level_name(target), kind,
                                 getattr(target, "opening", None))
        image.labels = cls._labels(group, root, target)
        return image

    @staticmethod
    def _labels(group, root: Path | str, target: Target) -> list[LazyImage]:
        if "labels" not in group:
            return []
        labels_group = group["labels"]
        names = ome_section(dict(labels_group.attrs)).get("labels") or []
        if isinstance(target, RemoteTarget):  # each label's group at once, then its arrays
            v3 = target.has_member(_V3_META)
            target.prefetch([k for n in names for k in _node_keys(f"labels/{n}", v3)])
            for n in names:
                key = f"labels/{n}/" + (_V3_META if v3 else ".zattrs")
                meta = target.read_member(key)
                if meta is not None:
                    doc = json.loads(meta)
                    _prefetch_multiscale(target, f"labels/{n}/",
                                         ome_section(doc.get("attributes", doc) or {}))
        out = []
        for name in names:
            if name in labels_group:
                out.append(_open_multiscale(labels_group[name], _join(root, "labels", name),
                                            name, "labels", getattr(target, "opening", None)))
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


def _plain_geometry(attrs: dict[str, Any], shape) -> dict[str, Any]:
    """What a plain array's attributes say of its geometry (napari-lazyproc's export
    writes ``axes``, ``scale``, ``translate``, ``units`` and ``channel_names``); each
    entry only when it is well formed, one value per axis."""
    ndim, out = len(shape), {}
    axes = attrs.get("axes")
    if isinstance(axes, str) and len(axes) == ndim:
        out["axes"] = list(axes)
    for key, ok in (("scale", lambda v: v > 0), ("translate", lambda v: True)):
        values = attrs.get(key)
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            continue
        if len(values) == ndim and all(np.isfinite(v) and ok(v) for v in values):
            out[key] = tuple(values)
    units = attrs.get("units")
    if isinstance(units, list) and len(units) == ndim:
        out["units"] = tuple(normalize_unit(u) for u in units)
    names = attrs.get("channel_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        out["channel_names"] = names
    return out


@register
class ZarrStore(Format):
    """A plain zarr array, or a group of arrays (a pyramid if their shapes form one)."""

    name = "zarr"

    @classmethod
    def claims(cls, target: Target) -> bool:
        return is_zarr_dir(target) or target.has_suffix(".zarr", ".zarr/")

    @classmethod
    def open(cls, target: Target, *, array: str | None = None) -> LazyImage:
        import zarr

        root = store_root(target)
        if not is_zarr_dir(target):
            if target.is_dir:
                raise ImageReadError(root, "no zarr.json, .zgroup or .zarray in this folder")
            raise ImageReadError(root, "a .zarr path must be a folder")
        node = open_node(target)
        others: list[str] = []
        if isinstance(node, zarr.Array):
            check_numeric(node, root)
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
        arrays = [fast_codecs(a) for a in arrays]
        first = arrays[0]
        geometry = _plain_geometry(dict(first.attrs), first.shape)
        names = _array_dim_names(first) or geometry.get("axes")
        axes = axes_from_names(names, first.shape)
        if len(axes) != first.ndim:
            axes = guess_axes(first.shape)
        return LazyImage(
            levels=[_array_to_dask(a, root, getattr(target, "opening", None))
                    for a in arrays],
            sources=arrays,
            axes=axes,
            scale=geometry.get("scale", (1.0,) * first.ndim),
            translate=geometry.get("translate", (0.0,) * first.ndim),
            units=geometry.get("units", (None,) * first.ndim),
            channel_names=geometry.get("channel_names") if "c" in axes and len(
                geometry.get("channel_names", ())) == first.shape[axes.index("c")] else None,
            name=level_name(target) if not first.path else f"{level_name(target)}/{first.path}",
            source={
                "path": str(root),
                "format": f"zarr v{first.metadata.zarr_format}",
                "arrays": [a.path for a in arrays],
            },
            metadata={"other_arrays": others} if others else {},
        )

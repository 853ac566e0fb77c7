"""What becomes a source: ``as_source`` wraps any input the engine takes (a LazyImage,
a result, napari layer data, dask, zarr, numpy) and gives each store one token,
whichever way it is passed (``image_source`` for a LazyImage's levels)."""

from __future__ import annotations

import numpy as np
from dask.base import tokenize

from ..._shared.source import Source, translate_of
from ...io import (
    LazyArray,
    LazyImage,
    dask_reader,
    fast_codecs,
    guess_axes,
    is_zarr_array,
    zarr_location,
    zarr_token,
)
from ._sources import ArraySource, _DaskReader


def as_source(data, axes: str | None = None, *, scale=None, units=None, name: str = "",
              source_path: str | None = None, translate=None, channel_names=None):
    """Wrap any supported input (LazyImage, lazy result, napari layer data, dask, zarr,
    numpy) as something the engine reads region by region.

    A list is a pyramid (napari's multiscale layer data): full resolution first.
    ``scale``, ``units``, ``name``, ``source_path`` and ``channel_names`` describe a plain
    array (a napari layer's data with the layer's scale and units); results and images
    carry their own. ``translate`` (a layer's position) is the origin of any source: where
    the layer is shown is where its export is placed.
    """
    if isinstance(data, (list, tuple)) and data and hasattr(data[0], "shape"):
        src = _as_source(data[0], axes)
        known = [lvl.token for lvl in getattr(src, "display_levels", [])]
        parts = [_as_source(level, src.axes) for level in data[1:]]
        if [src.token, *(p.token for p in parts)] == known:
            pass  # the layer shows this source's own pyramid: keep it as it is
        elif isinstance(src, ArraySource) and len(data) > 1:
            src.set_levels([src.coarser(p.reader, p.shape, p.dtype, p.chunks, p.token)
                            for p in parts])
    else:
        src = _as_source(data, axes)
    if isinstance(src, ArraySource):
        if scale is not None:
            src.scale = tuple(float(s) for s in scale)
        if units is not None:
            src.units = tuple(None if u in (None, "", "pixel") else str(u) for u in units)
        src.name = name or src.name
        src.source_path = source_path or src.source_path
        if channel_names is not None:
            src.channel_names = [str(n) for n in channel_names]
    if translate is not None and len(translate) == len(src.shape) and \
            tuple(float(t) for t in translate) != translate_of(src):
        try:
            src.translate = tuple(float(t) for t in translate)
        except AttributeError:  # a source whose origin cannot be set keeps its own
            pass
    return src


def _as_source(data, axes: str | None):
    if isinstance(data, Source):
        return data
    if isinstance(data, LazyArray):
        data = data.plain()  # a display wrapper's reads go to its source directly
    if isinstance(data, LazyArray) and isinstance(data.source, Source) and data.is_whole:
        return data.source
    if isinstance(data, LazyImage):
        return image_source(data)
    src = _plain_source(data, axes)
    #: its letters are a guess from its number of dimensions: scipy's integer ``axes``
    #: may make any of them spatial (``apply``)
    src.guessed_axes = axes is None
    return src


def _plain_source(data, axes: str | None) -> ArraySource:
    import dask.array as da

    if isinstance(data, LazyArray) and data.is_whole:
        data = data.to_dask()  # a file's level shown by a viewer: its reader, below
    if isinstance(data, da.Array):
        found = dask_reader(data)  # a file's level, or da.from_zarr: read it directly
        if found is not None:
            return _reader_source(_readable(found), data.chunks, _dask_token(data, found),
                                  axes)
    shape = tuple(data.shape)
    letters = _letters(axes, shape)
    unit = (None,) * len(shape)
    if isinstance(data, LazyArray):
        base = data.to_dask()
        return ArraySource(data, shape, data.dtype, base.chunks, base.name, letters,
                           (1.0,) * len(shape), unit)
    if isinstance(data, da.Array):
        return ArraySource(_DaskReader(data), shape, data.dtype, data.chunks, data.name,
                           letters, (1.0,) * len(shape), unit)
    if is_zarr_array(data) or (hasattr(data, "chunks") and hasattr(data, "store")):
        from dask.array.core import normalize_chunks

        token = (zarr_token(data) if is_zarr_array(data) else "zarr-" + tokenize(
            str(data.store), data.path, shape, str(data.dtype)))  # zarr-like: a snapshot
        return _reader_source(_readable(data), normalize_chunks(data.chunks, shape),
                              token, axes)
    array = np.asarray(data)
    return ArraySource(array, shape, array.dtype, None, "np-" + tokenize(array), letters,
                       (1.0,) * len(shape), unit)


def _dask_token(data, reader) -> str:
    """A local or in-memory zarr array's own token (``open_image`` gives the same);
    otherwise the dask array's name (a remote level's holds its snapshot)."""
    if is_zarr_array(reader) and (zarr_location(reader) or ("",))[0] in ("local", "memory"):
        return zarr_token(reader)
    return data.name


def _letters(axes: str | None, shape) -> str:
    letters = axes or guess_axes(shape)
    if len(letters) != len(shape):
        raise ValueError(f"data_axes {letters!r} do not match a {len(shape)}-D array")
    return letters


def _readable(reader):
    """A zarr array in a local folder reopened read-only with the fast codecs (the path
    ``open_image`` takes: the same speed, and nothing can write through it)."""
    if not is_zarr_array(reader):
        return reader
    loc = zarr_location(reader)
    store = reader.store
    if type(store).__name__ == "LocalStore" and getattr(store, "read_only", False):
        return fast_codecs(reader)  # opened as ``open_image`` opens it already
    if loc is not None and loc[0] == "local":
        import zarr

        try:
            reopened = zarr.open_array(loc[1], mode="r")
        except Exception:  # noqa: BLE001 - keep the array as given
            return reader
        if zarr_token(reopened) == zarr_token(reader):  # not resized or recoded since
            reader = reopened
    return fast_codecs(reader)


def _reader_source(reader, chunks, token: str, axes: str | None) -> ArraySource:
    shape = tuple(reader.shape)
    return ArraySource(reader, shape, reader.dtype, chunks, token, _letters(axes, shape),
                       (1.0,) * len(shape), (None,) * len(shape))


def image_source(image, channel: int | None = None) -> ArraySource:
    """A LazyImage's level 0 (or one channel's, without the channel axis) as the engine
    reads it, knowing its stored levels and its display pyramid.

    Viewer layers read through these too, so a coarse level a layer has shown (a virtual
    level, costly to compute) is in the chunk cache when a filter of it needs it.
    """
    from dask.array.core import normalize_chunks

    levels = image.levels if channel is None else image.channel_levels(channel)
    pyramid = image.display_pyramid(channel)
    readers = [r if image.sources else _DaskReader(r) for r in pyramid[: len(levels)]]
    keep = [i for i, a in enumerate(image.axes) if channel is None or a != "c"]
    axes = "".join(image.axes[i] for i in keep)
    level = levels[0]
    src = ArraySource(readers[0], level.shape, level.dtype, level.chunks, level.name, axes,
                      [image.scale[i] for i in keep], [image.units[i] for i in keep],
                      image.name)
    src.source_path = image.source.get("path")
    src.translate = [image.translate[i] for i in keep]
    if channel is None:
        src.channel_names = image.channel_names
    stored = [src.coarser(r, lvl.shape, lvl.dtype, lvl.chunks, lvl.name)
              for r, lvl in zip(readers[1:], levels[1:], strict=True)]
    virtual = [
        src.coarser(r, r.shape, r.dtype, normalize_chunks(r.chunks, r.shape), r.name)
        for r in pyramid[len(levels):]
    ]
    src.set_levels(stored, virtual)
    return src

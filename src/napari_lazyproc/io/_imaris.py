"""Imaris ``.ims`` files (HDF5, Imaris 5.5 layout), as written by Imaris and ImarisWriter.

Layout: ``DataSet/ResolutionLevel r/TimePoint t/Channel c/Data`` holds one (z, y, x) array
per level, time point and channel, padded to whole chunks; the group's ``ImageSizeX/Y/Z``
attributes give the true size. ``DataSetInfo/Image`` holds the extents and unit,
``DataSetInfo/Channel c`` the name, colour and display range. Attributes are arrays of
single bytes (``|S1``), not strings.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ._axes import normalize_unit, unit_for_axis
from ._errors import ImageReadError, OptionError
from ._file_array import open_hdf5
from ._image import LazyImage
from ._registry import Format, Target, register
from ._views import ViewStack

IMS_SUFFIXES = (".ims",)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_EPOCH = datetime(1970, 1, 1)
#: what ImarisWriter writes when a channel has no name
_NO_NAME = "(name not specified)"


def _open_h5(path: str):
    return open_hdf5(path)


def attr_text(node, name: str) -> str | None:
    """An Imaris attribute as text: an array of single bytes joined, or None if absent.

    Parameters
    ----------
    node
        An h5py group or dataset.
    name
        The attribute's name.

    Returns
    -------
    str or None
    """
    if name not in node.attrs:
        return None
    value = node.attrs[name]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            raw = b"".join(value.ravel().tolist())
        else:
            return " ".join(str(v) for v in value.ravel().tolist())
    elif isinstance(value, bytes | np.bytes_):
        raw = bytes(value)
    else:
        return str(value)
    raw = raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _attr_floats(node, name: str) -> list[float] | None:
    text = attr_text(node, name)
    if text is None:
        return None
    try:
        return [float(v) for v in text.split()]
    except ValueError:
        return None


class ImarisArray(ViewStack):
    """One resolution level of an Imaris file, cropped to its ``ImageSize``."""

    serialize = True  # h5py: one read at a time per handle

    def __init__(self, path, level, shape, dtype, chunks, handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        self.level = int(level)

    def _identity(self) -> tuple:
        return (self.level, *super()._identity())

    def _open(self):
        return _open_h5(self.path)

    def _read_views(self, handle, views, zyx):
        level = f"DataSet/ResolutionLevel {self.level}"
        return [handle[f"{level}/TimePoint {t}/Channel {c}/Data"][zyx] for t, c in views]


def _numbered(group, word: str) -> list[int]:
    """The numbers of the members named ``"<word> <n>"``, sorted."""
    pattern = re.compile(rf"{word} (\d+)")
    return sorted(int(m.group(1)) for k in group if (m := pattern.fullmatch(k)))


def _claims_layout(target: Target) -> bool:
    with open_hdf5(target.path) as f:
        return "DataSet/ResolutionLevel 0" in f and "DataSetInfo" in f


@register
class Imaris(Format):
    """Imaris ``.ims``: every resolution level, time point and channel as one image."""

    name = "Imaris"

    @classmethod
    def claims(cls, target: Target) -> bool:
        # local files only: a URL's target names a PurePosixPath, never a Path
        if not isinstance(target.path, Path) or target.is_dir:
            return False
        if target.has_suffix(*IMS_SUFFIXES):
            return True  # a broken .ims gets an Imaris error, not "unknown format"
        return target.head.startswith(_HDF5_SIGNATURE) and _claims_layout(target)

    @classmethod
    def open(cls, target: Target, **options: Any) -> LazyImage:
        if options:
            raise OptionError(f"unexpected keyword argument(s) {', '.join(options)}")
        try:
            handle = _open_h5(str(target.path))
        except OSError as exc:
            raise ImageReadError(target.path, f"not a readable Imaris file ({exc})") from exc
        try:
            return _open_imaris(target, handle)
        except Exception:
            handle.close()
            raise


def _open_imaris(target: Target, handle) -> LazyImage:
    path = target.path
    if "DataSet/ResolutionLevel 0" not in handle:
        raise ImageReadError(path, "not an Imaris file: no DataSet/ResolutionLevel 0 group")
    dataset = handle["DataSet"]
    levels_n = _numbered(dataset, "ResolutionLevel")
    timepoints = _numbered(dataset["ResolutionLevel 0"], "TimePoint")
    if not timepoints:
        raise ImageReadError(path, "the Imaris file has no time point")
    channels = _numbered(dataset[f"ResolutionLevel 0/TimePoint {timepoints[0]}"], "Channel")
    if not channels:
        raise ImageReadError(path, "the Imaris file has no channel")
    if timepoints != list(range(len(timepoints))) or channels != list(range(len(channels))):
        raise ImageReadError(path, "the Imaris time points or channels are not numbered 0, 1, ...")
    info = handle.get("DataSetInfo/Image")
    n_t, n_c = len(timepoints), len(channels)
    lead = (n_t, n_c) if n_c > 1 else (n_t,)

    levels, sources = [], []
    for r in levels_n:
        group = dataset[f"ResolutionLevel {r}/TimePoint 0/Channel 0"]
        if "Data" not in group:
            raise ImageReadError(path, f"ResolutionLevel {r}/TimePoint 0/Channel 0 has no Data")
        data = group["Data"]
        if data.ndim != 3:
            raise ImageReadError(path, f"ResolutionLevel {r} Data is {data.ndim}-D, not 3-D")
        size = [_attr_floats(group, f"ImageSize{a}") for a in "ZYX"]
        if any(s is None for s in size):
            if r == 0 and info is not None:  # older files: the size of the whole image
                size = [_attr_floats(info, a) for a in "ZYX"]
            if any(s is None for s in size):
                size = [[n] for n in data.shape]
        zyx = tuple(min(int(s[0]), n) for s, n in zip(size, data.shape, strict=True))
        block = data.chunks or zyx
        chunks = (1,) * len(lead) + tuple(min(b, n) for b, n in zip(block, zyx, strict=True))
        arr = ImarisArray(path, r, lead + zyx, data.dtype, chunks, handle)
        sources.append(arr)
        levels.append(arr.to_dask())

    full = levels[0].shape[-3:]
    voxel, translate, unit = _voxel_size(info, full)
    axes = "tczyx" if n_c > 1 else "tzyx"
    interval = _time_interval(handle, n_t)
    scale_of = dict(zip("zyx", voxel, strict=True), t=interval or 1.0)
    shift_of = dict(zip("zyx", translate, strict=True))
    names, colors, ranges = _channel_info(handle, n_c)
    contrast = _histogram_limits(dataset, n_c, levels[0].dtype) or ranges
    return LazyImage(
        levels=levels,
        axes=axes,
        scale=tuple(scale_of.get(a, 1.0) for a in axes),
        translate=tuple(shift_of.get(a, 0.0) for a in axes),
        units=tuple("second" if a == "t" and interval else unit_for_axis(a, unit)
                    for a in axes),
        name=path.stem,
        channel_names=names if n_c > 1 else None,
        channel_colors=colors if n_c > 1 else None,
        contrast_limits=contrast,
        source={
            "path": str(path),
            "format": "imaris",
            "timepoints": n_t,
            "channels": n_c,
            "levels": len(levels),
        },
        metadata={"imaris_version": attr_text(handle, "ImarisVersion")},
        sources=sources,
    )


def _voxel_size(info, full_zyx) -> tuple[tuple, tuple, str | None]:
    """Voxel size and the centre of the first voxel (z, y, x), and the unit, from
    ``DataSetInfo/Image``: the extent ``ExtMax - ExtMin`` along X, Y, Z over the size.

    The extent spans whole voxels from ``ExtMin``; a viewer places voxel centres, so the
    first one sits half a voxel in (where Imaris's own spots and surfaces put it).
    """
    if info is None:
        return (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), None
    unit = normalize_unit(attr_text(info, "Unit"))
    voxel, centre = [], []
    for i, axis, n in zip((2, 1, 0), "ZYX", full_zyx, strict=True):  # Ext*0 is X, Ext*2 Z
        lo, hi = _attr_floats(info, f"ExtMin{i}"), _attr_floats(info, f"ExtMax{i}")
        size = _attr_floats(info, axis)
        count = int(size[0]) if size else n
        if lo is None or hi is None or count <= 0 or hi[0] == lo[0]:
            voxel.append(1.0)
            centre.append(0.0)
            continue
        voxel.append(abs(hi[0] - lo[0]) / count)
        centre.append(min(lo[0], hi[0]) + voxel[-1] / 2)
    return tuple(voxel), tuple(centre), unit


def _time_interval(handle, n_t: int) -> float | None:
    """Seconds between time points: the median step of ``DataSetInfo/TimeInfo``'s
    ``TimePoint1..N`` stamps (``2024-05-01 10:00:02.500``), or None if they do not say."""
    times = handle.get("DataSetInfo/TimeInfo")
    if times is None or n_t < 2:
        return None
    stamps = []
    for t in range(1, n_t + 1):
        text = (attr_text(times, f"TimePoint{t}") or "").strip()
        for layout in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
            try:
                # naive times: differences need no time zone (and no DST jump)
                stamps.append((datetime.strptime(text, layout) - _EPOCH).total_seconds())
                break
            except ValueError:
                continue
        else:
            return None
    steps = np.diff(stamps)
    if steps.size == 0 or np.any(steps <= 0):
        return None
    return float(np.median(steps))


def _hex_color(rgb: list[float] | None) -> str | None:
    if not rgb or len(rgb) < 3:
        return None
    values = [min(255, max(0, round(v * 255))) for v in rgb[:3]]
    return "#" + "".join(f"{v:02x}" for v in values)


def _channel_info(handle, n_c: int):
    """Names, colours (``#rrggbb``) and display ranges from ``DataSetInfo/Channel c``."""
    names, colors, ranges = [], [], []
    for c in range(n_c):
        group = handle.get(f"DataSetInfo/Channel {c}")
        name = attr_text(group, "Name") if group is not None else None
        names.append(name if name and name != _NO_NAME else f"Channel {c}")
        colors.append(_hex_color(_attr_floats(group, "Color")) if group is not None else None)
        span = _attr_floats(group, "ColorRange") if group is not None else None
        ranges.append((span[0], span[1]) if span and len(span) == 2 and span[1] > span[0]
                      else None)
    return (
        names,
        colors if all(colors) else None,
        ranges if all(ranges) else None,
    )


def _histogram_limits(dataset, n_c: int, dtype) -> list[tuple[float, float]] | None:
    """Per channel, the range of values the stored histogram of level 0, time point 0
    counts: a contrast window without reading a pixel.

    ImarisWriter bins the values ``HistogramMin..HistogramMax`` into the bins of
    ``Histogram`` evenly (integers: ``max - min + 1`` values).
    """
    out = []
    for c in range(n_c):
        group = dataset[f"ResolutionLevel 0/TimePoint 0/Channel {c}"]
        lo, hi = _attr_floats(group, "HistogramMin"), _attr_floats(group, "HistogramMax")
        if "Histogram" not in group or not lo or not hi:
            return None
        counts = np.asarray(group["Histogram"][()]).ravel()
        filled = np.flatnonzero(counts)
        if filled.size == 0 or hi[0] < lo[0]:
            return None
        first, last, n = int(filled[0]), int(filled[-1]), counts.size
        if np.dtype(dtype).kind in "iub":
            values = hi[0] - lo[0] + 1
            low = lo[0] + np.ceil(first * values / n)
            high = lo[0] + np.ceil((last + 1) * values / n) - 1
        else:
            width = (hi[0] - lo[0]) / n
            low, high = lo[0] + first * width, lo[0] + (last + 1) * width
        low, high = float(low), float(min(high, hi[0]))
        out.append((low, high if high > low else low + 1.0))
    return out

"""Zeiss ``.czi`` files, read subblock by subblock through ``czifile`` (BSD-3).

A CZI file is a directory of subblocks, each a tile of one plane (one time point,
channel, z, scene) placed at its x, y start. ``CziArray`` indexes the directory when the
file opens (metadata only) and a read decodes only the subblocks its region overlaps,
pasted in the order czifile's own ``asarray`` pastes them (mosaic tiles by index).
Subblocks of a stored pyramid (smaller than their extent) are not level 0 and are left
out. Scenes (``S``) are series (``series=N``), each its own tiles' extent, placed by
``translate``. czifile decodes JPEG, LZW and JPEG XR; ZEN's zstd (ZStd0, ZStd1) is
decoded here with imagecodecs. The voxel size comes from the metadata's ``Scaling``
(metres, given in micrometres), the channel names from its ``Channel`` elements, the
time step from the image's ``T`` positions or the ``TimeStamps`` attachment.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ImageReadError
from ._frames import FrameStack
from ._image import LazyImage
from ._registry import register
from ._vendor import VendorFormat

_KNOWN = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x"}
_DIMENSIONS = "./Metadata/Information/Image/Dimensions"  # from the ImageDocument root


def _open_czi(path: str):
    import czifile

    return czifile.CziFile(path)


class CziArray(FrameStack):
    """One scene of a CZI file: the leading axes pick a plane, then y, x (and samples)."""

    serialize = True  # czifile seeks one file handle

    def __init__(self, path, series: int, tiles: dict, n_lead: int, shape, dtype, chunks,
                 handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        #: lead index -> [(y0, x0, height, width, directory position)], in paste order
        self.series, self.tiles, self.n_lead = int(series), tiles, int(n_lead)

    def _identity(self) -> tuple:
        return (self.series, self.n_lead, *super()._identity())

    def _open(self):
        czi = _open_czi(self.path)
        # reopened after the file changed (or after pickling): its subblocks may have
        # moved, so the tile index is the new file's
        self.tiles = _layout(czi, self.series, self.path)[2]
        return czi

    def _read_frame(self, handle, lead, inner):
        ys, xs = inner[0], inner[1]
        ys = ys if isinstance(ys, slice) else slice(ys, ys + 1)
        xs = xs if isinstance(xs, slice) else slice(xs, xs + 1)
        n_samples = self.shape[-1] if len(self.shape) - self.n_lead == 3 else 1
        out = np.zeros((ys.stop - ys.start, xs.stop - xs.start, n_samples), self.dtype)
        directory = handle.filtered_subblock_directory
        for y0, x0, h, w, where in self.tiles.get(lead, ()):
            top, bottom = max(y0, ys.start), min(y0 + h, ys.stop)
            left, right = max(x0, xs.start), min(x0 + w, xs.stop)
            if top >= bottom or left >= right:
                continue  # this tile lies outside the region: never read
            tile = _decode(directory[where]).reshape(h, w, -1)
            out[top - ys.start:bottom - ys.start, left - xs.start:right - xs.start] = \
                tile[top - y0:bottom - y0, left - x0:right - x0]
        drop = (0 if not isinstance(inner[0], slice) else slice(None),
                0 if not isinstance(inner[1], slice) else slice(None))
        out = out[drop]
        if n_samples == 1 and len(self.shape) - self.n_lead == 2:
            return out[..., 0]
        return out[..., inner[2]]


def _layout(czi, series: int, path: str):
    """Which czifile axes are kept (size > 1, and y, x), their letters, the scene picked,
    and each level-0 subblock's plane index and tile box."""
    axes, start, full = czi.axes, czi.start, czi.shape  # samples last, as '0'
    n_series = full[axes.index("S")] if "S" in axes else 1
    if not 0 <= series < n_series:
        raise ImageReadError(path, f"series={series} is out of range; the file has "
                                   f"{n_series} (scenes)")
    keep = [i for i, a in enumerate(axes[:-1]) if a != "S" and (full[i] > 1 or a in "YX")]
    letters = [_KNOWN.get(axes[i]) for i in keep]
    for j in range(len(keep)):  # other CZI dimensions (V, H, R, I, B...) of size > 1
        if letters[j] is None:
            letters[j] = next(c for c in "qruvw" if c not in letters)
    samples = full[-1]
    if samples > 1:
        letters.append("c" if "c" not in letters else next(c for c in "qruvw"
                                                          if c not in letters))
    _check_codecs(czi, path)
    iy, ix = axes.index("Y"), axes.index("X")
    lead = [i for i in keep if i not in (iy, ix)]
    tiles: dict[tuple[int, ...], list] = {}
    for where, entry in enumerate(czi.filtered_subblock_directory):
        if tuple(entry.stored_shape) != tuple(entry.shape):
            continue  # a pyramid tile, not level 0
        rel = [s - o for s, o in zip(entry.start, start, strict=False)]
        if "S" in axes and rel[axes.index("S")] != series:
            continue
        index = tuple(rel[i] for i in lead)
        box = (rel[iy], rel[ix], entry.shape[iy], entry.shape[ix], where)
        tiles.setdefault(index, []).append(box)
    shape = [full[i] for i in keep] + ([samples] if samples > 1 else [])
    origin = (0, 0)
    boxes = [b for plane in tiles.values() for b in plane]
    if n_series > 1 and boxes:
        # scenes lie apart on the stage: each opens as its own tiles' extent, placed by
        # ``translate`` (a well plate's canvas would be mostly zeros)
        origin = (min(b[0] for b in boxes), min(b[1] for b in boxes))
        shape[keep.index(iy)] = max(b[0] + b[2] for b in boxes) - origin[0]
        shape[keep.index(ix)] = max(b[1] + b[3] for b in boxes) - origin[1]
        tiles = {k: [(y - origin[0], x - origin[1], h, w, where)
                     for y, x, h, w, where in plane] for k, plane in tiles.items()}
    return "".join(letters), tuple(shape), tiles, len(lead), n_series, origin


#: ZEN's zstd compressions, which czifile 2019 does not decode: decoded here
ZSTD0, ZSTD1 = 5, 6


def _check_codecs(czi, path: str) -> None:
    """Refuse at opening, by name, a compression neither czifile nor this module decodes."""
    import czifile

    codecs = {e.compression for e in czi.filtered_subblock_directory}
    unknown = sorted(codecs - set(czifile.czifile.DECOMPRESS) - {ZSTD0, ZSTD1})
    if unknown:
        found = ", ".join(str(czifile.czifile.COMPRESSION.get(c, c)) for c in unknown)
        raise ImageReadError(path, f"its subblocks are compressed with {found}, which "
                                   "czifile cannot decode (uncompressed, JPEG, LZW, JPEG XR "
                                   "and zstd are read)")


def _decode(entry) -> np.ndarray:
    """One subblock's pixels as stored: czifile's decode, or zstd's (ZStd0: plain zstd;
    ZStd1: a header, then zstd of the pixels, maybe as all low bytes then all high
    bytes; libCZI's ZISRAW specification)."""
    if entry.compression not in (ZSTD0, ZSTD1):
        return entry.data_segment().data()
    import imagecodecs

    raw = entry.data_segment().data(raw=True)
    hilo = False
    if entry.compression == ZSTD1:
        size = raw[0]
        if size == 3 and raw[1] == 1:  # chunk 1: its lowest bit is the byte packing
            hilo = bool(raw[2] & 1)
        elif size != 1:
            raise ValueError(f"not a ZStd1 header (size {size})")
        raw = raw[size:]
    data = np.frombuffer(imagecodecs.zstd_decode(raw), np.uint8)
    dtype = np.dtype(entry.dtype).base  # a BGR pixel type is samples of one type
    if hilo and dtype.itemsize == 2:
        half = data.size // 2
        data = np.stack([data[:half], data[half:]], axis=-1).reshape(-1)  # lo, hi
    pixels = data.view(dtype.newbyteorder("<")).reshape(entry.stored_shape)
    if pixels.shape[-1] in (3, 4):  # BGR(A) as stored, as czifile turns it
        pixels = pixels[..., [2, 1, 0, 3][:pixels.shape[-1]]]
    return pixels


def _metadata(czi, axes: str, shape) -> dict[str, Any]:
    """Scale, units, channel names and time step from the CZI's XML metadata."""
    try:
        root = ET.fromstring(czi.metadata())
    except Exception:  # noqa: BLE001 - metadata is a bonus; the pixels still open
        root = ET.Element("none")
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    for a in "zyx":
        # the image's own scaling, not the PSF's ``OriginalScaling`` (a deskewed
        # lattice light-sheet stack has both)
        value = root.findtext(f"./Metadata/Scaling/Items/Distance[@Id='{a.upper()}']/Value")
        if a in axes and value:
            scale[axes.index(a)] = float(value) * 1e6  # metres
            units[axes.index(a)] = "micrometer"
    out: dict[str, Any] = {"scale": scale, "units": units}
    if "t" in axes:
        step = _time_step(czi, root, shape[axes.index("t")])
        if step is not None:
            scale[axes.index("t")], units[axes.index("t")] = step, "second"
    if "c" in axes:
        channels = root.findall(f"{_DIMENSIONS}/Channels/Channel")
        names = [c.get("Name") or c.get("Id") for c in channels]
        if len(names) == shape[axes.index("c")] and all(names):
            out["channel_names"] = names
    return out


def _time_step(czi, root, n_t: int) -> float | None:
    """Seconds between time points: from the image's T positions (a list of offsets or
    an interval), else the TimeStamps attachment (when each frame was taken)."""
    if n_t < 2:
        return None
    times = None
    offsets = root.findtext(f"{_DIMENSIONS}/T/Positions/List/Offsets")
    increment = root.findtext(f"{_DIMENSIONS}/T/Positions/Interval/Increment")
    if offsets:
        times = [float(v) for v in offsets.split()]
    elif increment and float(increment) > 0:
        return float(increment)
    else:
        for attachment in czi.attachments():
            if attachment.attachment_entry.name == "TimeStamps":
                times = [float(v) for v in attachment.data()]
                break
    if not times or len(times) < n_t:
        return None
    step = (times[n_t - 1] - times[0]) / (n_t - 1)
    return step if step > 0 else None


@register
class Czi(VendorFormat):
    """A Zeiss ``.czi`` file (needs ``czifile``: ``pip install napari-lazyproc[czi]``)."""

    name = "CZI"
    suffix, module, extra = ".czi", "czifile", "czi"

    @classmethod
    def open_file(cls, path: str):
        return _open_czi(path)

    @classmethod
    def image(cls, handle, path: str, series: int) -> LazyImage:
        return _image(handle, path, series)


def _image(czi, path: str, series: int) -> LazyImage:
    """The image of a CZI file opened as ``czi``: one series, its tiles per frame."""
    axes, shape, tiles, n_lead, n_series, origin = _layout(czi, series, path)
    chunks = (1,) * n_lead + shape[n_lead:]
    arr = CziArray(path, series, tiles, n_lead, shape, czi.dtype, chunks, czi)
    meta = _metadata(czi, axes, shape)
    translate = [0.0] * len(axes)
    for a, pixels in zip("yx", origin, strict=True):  # the scene's place on the stage
        translate[axes.index(a)] = pixels * meta["scale"][axes.index(a)]
    return LazyImage(
        levels=[arr.to_dask()],
        axes=axes,
        scale=tuple(meta["scale"]),
        translate=tuple(translate),
        units=tuple(meta["units"]),
        name=Path(path).stem,
        channel_names=meta.get("channel_names"),
        source={"path": path, "format": "czi", "series": series, "czi_axes": czi.axes},
        metadata={"n_series": n_series, "rgb": shape[-1] in (3, 4) and axes[-1] == "c"},
        sources=[arr],
    )

"""Leica ``.lif`` files, read frame by frame through ``liffile`` (BSD-3).

A LIF file holds several images (series: ``series=N``), each stored uncompressed in one
memory block. A frame is an image's two innermost dimensions (y, x; z, x for an xz
scan); ``liffile``'s ``LifImage.frame`` seeks to one frame and reads its bytes alone.
Axes are liffile's, in the order stored; a spectral axis (``λ`` emission, ``Λ``
excitation) is the channel axis where the image has no ``C``, its channels named by
wavelength. The voxel size and time step come from the dimensions' extents (metres and
seconds), the channel names from each channel's lookup table (``Green``, ``Red``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ImageReadError
from ._frames import FrameStack
from ._image import LazyImage
from ._registry import register
from ._vendor import VendorFormat

_KNOWN = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x"}
_SPECTRAL = ("λ", "Λ")


def _open_lif(path: str):
    import liffile

    return liffile.LifFile(path)


class LifArray(FrameStack):
    """One image of a LIF file: the leading dimensions pick a frame, the rest index it."""

    serialize = True  # liffile seeks one file handle

    def __init__(self, path, series: int, dims: list[str], n_lead: int, shape, dtype,
                 chunks, handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        self.series, self.dims, self.n_lead = int(series), list(dims), int(n_lead)

    def _identity(self) -> tuple:
        return (self.series, tuple(self.dims), *super()._identity())

    def _open(self):
        return _open_lif(self.path)

    def _read_frame(self, handle, lead, inner):
        image = handle.images[self.series]
        frame = image.frame(**dict(zip(self.dims, lead, strict=True)))
        return np.asarray(frame.reshape(self.shape[self.n_lead:])[inner])


def _frame_dims(image) -> int:
    """How many trailing dimensions make one frame: two, plus RGB samples."""
    return 3 if image.dims[-1] == "S" else 2


def _letters(dims) -> str:
    letters: list[str | None] = [_KNOWN.get(d) for d in dims]
    has_c = "C" in dims
    for i, d in enumerate(dims):
        if letters[i] is None and (d in _SPECTRAL or d == "S") and not has_c \
                and "c" not in letters:
            letters[i] = "c"
    for i in range(len(dims)):  # other dimensions (M tiles, a second spectrum...)
        if letters[i] is None:
            letters[i] = next(c for c in "qruvw" if c not in letters)
    return "".join(letters)  # type: ignore[arg-type]


def _step(coords, dim: str) -> float | None:
    values = coords.get(dim)
    if values is None or len(values) < 2:
        return None
    step = (float(values[-1]) - float(values[0])) / (len(values) - 1)
    return abs(step) or None


def _metadata(image, axes: str) -> dict[str, Any]:
    coords = image.coords
    dims = list(image.dims)
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    for i, d in enumerate(dims):
        step = _step(coords, d)
        if d in ("Z", "Y", "X") and step is not None:
            scale[i], units[i] = step * 1e6, "micrometer"  # metres
        elif d == "T" and step is not None:
            scale[i], units[i] = step, "second"
    out: dict[str, Any] = {"scale": scale, "units": units}
    if "c" in axes:
        d = dims[axes.index("c")]
        n = image.shape[axes.index("c")]
        if d == "C":
            luts = [ch.get("LUTName") for ch in image.xml_element.iterfind(
                "./Data/Image/ImageDescription/Channels/ChannelDescription")]
            if len(luts) == n and all(luts):
                out["channel_names"] = luts
        elif d in _SPECTRAL and d in coords and len(coords[d]) == n:
            out["channel_names"] = [f"{d} {float(v) * 1e9:g} nm" for v in coords[d]]
    return out


@register
class Lif(VendorFormat):
    """A Leica ``.lif`` file (needs ``liffile``: ``pip install napari-lazyproc[lif]``)."""

    name = "LIF"
    suffix, module, extra = ".lif", "liffile", "lif"

    @classmethod
    def open_file(cls, path: str):
        return _open_lif(path)

    @classmethod
    def image(cls, handle, path: str, series: int) -> LazyImage:
        return _open(handle, path, series)


def _open(lif, path: str, series: int) -> LazyImage:
    images = list(lif.images)
    if not images:
        raise ImageReadError(path, "the LIF file holds no image")
    if not 0 <= series < len(images):
        raise ImageReadError(path, f"series={series} is out of range; the file has "
                                   f"{len(images)} images")
    image = images[series]
    if not hasattr(image, "frame"):
        raise ImageReadError(path, f"image {series} ({image.name}) is a "
                                   f"{type(image).__name__}, not an image of frames")
    dims = list(image.dims)
    axes = _letters(dims)
    n_lead = len(dims) - _frame_dims(image)
    shape = tuple(int(n) for n in image.shape)
    arr = LifArray(path, series, dims[:n_lead], n_lead, shape, image.dtype,
                   (1,) * n_lead + shape[n_lead:], lif)
    meta = _metadata(image, axes)
    return LazyImage(
        levels=[arr.to_dask()],
        axes=axes,
        scale=tuple(meta["scale"]),
        translate=(0.0,) * len(axes),
        units=tuple(meta["units"]),
        name=f"{Path(path).stem} · {image.name}",
        channel_names=meta.get("channel_names"),
        source={"path": path, "format": "lif", "series": series, "lif_axes": "".join(dims),
                "image": image.name},
        metadata={"n_series": len(images), "series_names": [im.name for im in images],
                  "rgb": dims[-1] == "S"},
        sources=[arr],
    )

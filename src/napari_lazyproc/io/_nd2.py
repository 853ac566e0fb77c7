"""Nikon NIS-Elements ``.nd2`` files, read frame by frame through ``nd2`` (BSD-3).

An ND2 file stores one frame per point of its experiment's loops (time, z, stage
position...), each frame holding every channel of that point. ``nd2`` finds each frame's
offset in the file's chunk map and reads it alone (memory-mapped when uncompressed), so
a plane on screen reads one frame. Stage positions (``P``) are series: ``series=N``.
Axes, voxel size and channel names are ``nd2``'s; the time step is the experiment's
period, or, where NIS-Elements ran "as fast as possible" (period 0), the mean interval
of the frames' own time stamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ImageReadError
from ._frames import FrameStack, frame_chunks
from ._image import LazyImage
from ._registry import register
from ._vendor import VendorFormat

#: nd2's axis names -> ours (``S``, RGB samples, is the channel axis of an RGB file)
_AXES = {"T": "t", "Z": "z", "C": "c", "Y": "y", "X": "x"}


def _open_nd2(path: str):
    import nd2

    return nd2.ND2File(path)


class Nd2Array(FrameStack):
    """One stage position of an ND2 file: the loop axes pick a frame, then (c,) y, x."""

    serialize = True  # one ND2File handle, one read at a time

    def __init__(self, path, position: int, loops: list[str], n_lead: int, shape, dtype,
                 chunks, handle=None) -> None:
        super().__init__(path, shape, dtype, chunks, handle)
        self.position, self.loops, self.n_lead = int(position), list(loops), int(n_lead)
        #: (position, loop indices) -> frame number, for the handle ``_frames_of``
        self._frames: dict[tuple[int, ...], int] | None = None
        self._frames_of: Any = None

    def _identity(self) -> tuple:
        return (self.position, tuple(self.loops), *super()._identity())

    def _open(self):
        return _open_nd2(self.path)

    def _frame_index(self, handle, lead: tuple[int, ...]) -> int | None:
        if self._frames is None or self._frames_of is not handle:
            self._frames = {tuple(c.get(k, 0) for k in ("P", *self.loops)): i
                            for i, c in enumerate(handle.loop_indices)}
            self._frames_of = handle
        return self._frames.get((self.position, *lead))

    def _read_frame(self, handle, lead, inner):
        index = self._frame_index(handle, lead)
        if index is None:  # a point the experiment never reached
            shape = tuple(k.stop - k.start for k in inner if isinstance(k, slice))
            return np.zeros(shape, self.dtype)
        frame = handle.read_frame(index)
        return np.asarray(frame.reshape(self.shape[self.n_lead:])[inner])

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_frames"] = state["_frames_of"] = None
        return state

    def __del__(self) -> None:
        # the handle is ours alone: close it with us (nd2 warns of a file left open)
        handle = self.__dict__.get("_handle")
        if handle is not None:
            try:
                handle.close()
            except Exception:  # noqa: BLE001 - at interpreter exit, anything goes
                pass


def _time_step(f, sizes: dict[str, int]) -> float | None:
    """Seconds between time points: the time loop's period, else the frames' time stamps."""
    for loop in f.experiment or []:
        if loop.type == "TimeLoop" and loop.parameters.periodMs > 0:
            return loop.parameters.periodMs / 1000.0
    n_t = sizes.get("T", 1)
    if n_t < 2:
        return None
    first = {"T": 0}
    last = {"T": n_t - 1}
    indices = [i for want in (first, last) for i, c in enumerate(f.loop_indices)
               if all(c.get(k, 0) == v for k, v in want.items())
               and all(v == 0 for k, v in c.items() if k != "T")][:2]
    if len(indices) < 2:
        return None
    times = [f.frame_metadata(i).channels[0].time.relativeTimeMs for i in indices]
    step = (times[1] - times[0]) / (n_t - 1) / 1000.0
    return step if step > 0 else None


@register
class Nd2(VendorFormat):
    """A Nikon ``.nd2`` file (needs the ``nd2`` package: ``pip install napari-lazyproc[nd2]``)."""

    name = "ND2"
    suffix, module, extra = ".nd2", "nd2", "nd2"

    @classmethod
    def open_file(cls, path: str):
        return _open_nd2(path)

    @classmethod
    def image(cls, handle, path: str, series: int) -> LazyImage:
        return _open(handle, path, series)


def _open(f, path: str, series: int) -> LazyImage:
    sizes = dict(f.sizes)
    n_series = sizes.pop("P", 1)
    if not 0 <= series < n_series:
        raise ImageReadError(path, f"series={series} is out of range; the file has "
                                   f"{n_series} (stage positions)")
    frame_axes = [k for k in sizes if k in ("C", "Y", "X", "S")]
    loops = [k for k in sizes if k not in frame_axes]
    names = [_AXES.get(k, "c" if k == "S" and "C" not in sizes else k.lower()) for k in sizes]
    axes = "".join(names)
    if len(set(axes)) != len(axes):
        raise ImageReadError(path, f"ND2 axes {''.join(sizes)} do not map to distinct axes")
    shape = tuple(sizes.values())
    arr = Nd2Array(path, series, loops, len(loops), shape, f.dtype,
                   frame_chunks(shape, len(loops)), f)
    voxel = f.voxel_size()  # x, y, z in micrometres
    spatial = {"x": voxel.x, "y": voxel.y, "z": voxel.z}
    scale = [float(spatial.get(a, 1.0)) for a in axes]
    units: list[str | None] = ["micrometer" if a in spatial else None for a in axes]
    step = _time_step(f, sizes) if "t" in axes else None
    if step is not None:
        scale[axes.index("t")], units[axes.index("t")] = step, "second"
    channel_names = None
    if "c" in axes and "C" in sizes:
        channels = (f.metadata.channels or []) if f.metadata else []
        if len(channels) == sizes["C"]:
            channel_names = [ch.channel.name for ch in channels]
    return LazyImage(
        levels=[arr.to_dask()],
        axes=axes,
        scale=tuple(scale),
        translate=(0.0,) * len(axes),
        units=tuple(units),
        name=Path(path).stem,
        channel_names=channel_names,
        source={"path": path, "format": "nd2", "series": series, "nd2_axes": "".join(sizes)},
        metadata={"n_series": n_series, "rgb": bool(f.is_rgb)},
        sources=[arr],
    )

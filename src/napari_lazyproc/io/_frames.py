"""Files that store an image as frames (planes) picked by loop indices, read frame by frame.

Vendor formats (ND2, CZI, LIF) store one frame per (time point, z, channel...) at a
known place in the file. ``FrameStack`` shows them as one N-D array whose leading axes
pick a frame and whose last axes index within it, and reads only the frames, and the
part of each, that a key asks for.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._file_array import FileArray


class FrameStack(FileArray):
    """An array whose first ``n_lead`` axes pick a stored frame.

    Subclasses implement ``_open()`` and ``_read_frame(handle, lead, inner)``, which
    returns ``frame[inner]`` of the frame at the leading indices ``lead`` (a tuple of
    ints), where ``inner`` holds the key's entries for the frame's own axes.
    """

    n_lead = 0

    def _read_frame(self, handle, lead: tuple[int, ...], inner: tuple) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - interface

    def _read(self, handle, key: tuple) -> np.ndarray:
        n = self.n_lead
        lead_key, inner = key[:n], key[n:]
        ranges = [range(k.start, k.stop) if isinstance(k, slice) else range(k, k + 1)
                  for k in lead_key]
        inner_shape = tuple(k.stop - k.start for k in inner if isinstance(k, slice))
        out = np.empty(tuple(len(r) for r in ranges) + inner_shape, dtype=self.dtype)
        for pos, lead in zip(itertools.product(*(range(len(r)) for r in ranges)),
                             itertools.product(*ranges), strict=True):
            out[pos] = self._read_frame(handle, lead, inner)
        # integer keys drop their axis, as numpy does
        drop = tuple(slice(None) if isinstance(k, slice) else 0 for k in lead_key)
        return out[drop]


def frame_chunks(shape: tuple[int, ...], n_lead: int) -> tuple[int, ...]:
    """One chunk per frame: 1 along the leading axes, whole along the frame's own."""
    return (1,) * n_lead + tuple(shape[n_lead:])

"""Files that store one 3-D array per view (time point, channel), read as one array.

Imaris and BigDataViewer N5 keep each (time point, channel) of each resolution level in a
dataset of its own. ``ViewStack`` shows one level as a single (t, [c,] z, y, x) array and
reads only the views and the region a key asks for.
"""

from __future__ import annotations

import numpy as np

from ._file_array import FileArray


class ViewStack(FileArray):
    """One resolution level as a (t, [c,] z, y, x) array over one 3-D array per view.

    Subclasses implement ``_open()`` and ``_read_views(handle, views, zyx)``, which returns
    the (z, y, x) region ``zyx`` of each (time index, channel index) in ``views``.
    """

    @property
    def has_channels(self) -> bool:
        return len(self.shape) == 5

    def _read_views(self, handle, views: list[tuple[int, int]], zyx: tuple) -> list[np.ndarray]:
        raise NotImplementedError  # pragma: no cover - interface

    def _read(self, handle, key: tuple) -> np.ndarray:
        has_c = self.has_channels
        t_key, c_key = key[0], (key[1] if has_c else 0)
        zyx = key[2:] if has_c else key[1:]
        t_idx = range(t_key.start, t_key.stop) if isinstance(t_key, slice) else [t_key]
        c_idx = range(c_key.start, c_key.stop) if isinstance(c_key, slice) else [c_key]
        views = [(t, c) for t in t_idx for c in c_idx]
        region = tuple(k.stop - k.start for k in zyx if isinstance(k, slice))
        out = np.empty((len(t_idx), len(c_idx), *region), dtype=self.dtype)
        for (t, c), block in zip(views, self._read_views(handle, views, zyx), strict=True):
            out[t - t_idx[0], c - c_idx[0]] = block
        # integer keys drop their axis, as numpy does
        drop = (0 if not isinstance(t_key, slice) else slice(None),
                0 if not (has_c and isinstance(c_key, slice)) else slice(None))
        return out[drop]

"""Contrast limits from a bounded sample, so a viewer never makes its own pass over the data."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np

from ._image import LazyImage

#: The most bytes read to estimate contrast limits.
SAMPLE_BYTES = 32 * 2**20


def _central_blocks(arr: da.Array, max_bytes: int, keep_axis: int | None) -> tuple:
    """Block ranges (for ``arr.blocks``) around the centre of ``arr``, within ``max_bytes``.

    One central chunk along every axis but the last two, which grow one chunk at a time
    on each side while the budget allows. ``keep_axis`` (channels) is kept whole.
    """
    spans: dict[int, tuple[int, int]] = {}
    for i, (n, chunks) in enumerate(zip(arr.shape, arr.chunks, strict=True)):
        if i != keep_axis:
            mid = int(np.searchsorted(np.cumsum(chunks), n // 2, side="right"))
            spans[i] = (mid, mid + 1)

    def nbytes(spans) -> int:
        sizes = [sum(arr.chunks[i][lo:hi]) for i, (lo, hi) in spans.items()]
        channels = arr.shape[keep_axis] if keep_axis is not None else 1
        return math.prod(sizes) * channels * arr.dtype.itemsize

    growable = [i for i in range(max(0, arr.ndim - 2), arr.ndim) if i in spans]
    grew = True
    while grew:
        grew = False
        for i in growable:
            lo, hi = spans[i]
            for new in ((lo - 1, hi), (lo, hi + 1)):
                if new[0] < 0 or new[1] > arr.numblocks[i]:
                    continue
                trial = {**spans, i: new}
                if nbytes(trial) <= max_bytes:
                    spans, (lo, hi) = trial, new
                    grew = True
    return tuple(slice(*spans[i]) if i in spans else slice(None) for i in range(arr.ndim))


def sample_contrast_limits(
    image: LazyImage, max_bytes: int = SAMPLE_BYTES
) -> list[tuple[float, float]]:
    """Per-channel (low, high) from the coarsest level if small, else a central sample.

    Parameters
    ----------
    image
        An opened image. Limits it records (OME-Zarr ``omero`` windows) are returned as
        they are, without a read.
    max_bytes
        About the most bytes read: the coarsest level whole when it fits, otherwise the
        whole chunks around its centre.

    Returns
    -------
    list of (float, float)
        One (low, high) pair per channel, or a single pair when there is no channel axis
        (or the channels are RGB). ``high`` is above ``low`` even for a constant sample.
    """
    if image.contrast_limits:
        return list(image.contrast_limits)
    level = image.levels[-1]
    c_axis = image.channel_axis
    if image.metadata.get("rgb"):
        c_axis = None
    if level.nbytes <= max_bytes:
        sample = level
    else:
        sample = level.blocks[_central_blocks(level, max_bytes, c_axis)]
    with dask.config.set(scheduler="threads"):
        values = np.asarray(sample.compute())
    if c_axis is None or values.ndim == 0:
        return [_limits(values)]
    values = np.moveaxis(values, c_axis, 0)
    return [_limits(v) for v in values]


def _limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)

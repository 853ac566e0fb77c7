"""Contrast limits from a bounded sample, so a viewer never makes its own pass over the data."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np

from ._image import LazyImage

#: The most bytes read to estimate contrast limits.
SAMPLE_BYTES = 32 * 2**20


def _central_sample(arr: da.Array, max_bytes: int, keep_axis: int | None) -> tuple:
    """Slices that pick whole chunks around the centre of ``arr``, within ``max_bytes``.

    One central chunk along every axis but the last two, which grow one chunk at a time
    on each side while the budget allows. ``keep_axis`` (channels) is kept whole.
    """
    spans: dict[int, list] = {}
    for i, (n, chunks) in enumerate(zip(arr.shape, arr.chunks)):
        if i != keep_axis:
            bounds = np.cumsum((0, *chunks))
            mid = int(np.searchsorted(bounds, n // 2, side="right") - 1)
            spans[i] = [mid, mid + 1, bounds]

    def nbytes(spans) -> int:
        sizes = [int(b[hi] - b[lo]) for lo, hi, b in spans.values()]
        channels = arr.shape[keep_axis] if keep_axis is not None else 1
        return math.prod(sizes) * channels * arr.dtype.itemsize

    growable = [i for i in range(max(0, arr.ndim - 2), arr.ndim) if i in spans]
    grew = True
    while grew:
        grew = False
        for i in growable:
            lo, hi, bounds = spans[i]
            for new in ((lo - 1, hi), (lo, hi + 1)):
                if new[0] < 0 or new[1] >= len(bounds):
                    continue
                trial = {**spans, i: [*new, bounds]}
                if nbytes(trial) <= max_bytes:
                    spans, (lo, hi) = trial, new
                    grew = True
    return tuple(
        slice(None) if i not in spans
        else slice(int(spans[i][2][spans[i][0]]), int(spans[i][2][spans[i][1]]))
        for i in range(arr.ndim)
    )


def sample_contrast_limits(
    image: LazyImage, max_bytes: int = SAMPLE_BYTES
) -> list[tuple[float, float]]:
    """Per-channel (low, high) from the coarsest level if small, else a central sample.

    Reads at most about ``max_bytes``: the coarsest level whole when it fits, otherwise the
    chunks around its centre. Returns one pair per channel (a single pair when there is
    no channel axis).
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
        sample = level[_central_sample(level, max_bytes, c_axis)]
    with dask.config.set(scheduler="threads"):
        values = np.asarray(sample.compute())
    if c_axis is None or values.ndim == 0:
        return [_limits(values, image.dtype)]
    values = np.moveaxis(values, c_axis, 0)
    return [_limits(v, image.dtype) for v in values]


def _limits(values: np.ndarray, dtype) -> tuple[float, float]:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)

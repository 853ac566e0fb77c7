"""Histograms of a lazy input: a bounded sample by default, or exact over every chunk.

Integer images get one bin per value (as scikit-image does), floats 256 bins over the
value range, so thresholds computed from the exact histogram equal scikit-image's on the
whole array.
"""

from __future__ import annotations

import math

import numpy as np

from .._shared.pool import parallel_map
from .._shared.regions import chunk_regions

#: the most voxels read for a sampled histogram
SAMPLE_VOXELS = 4 * 2**20
FLOAT_BINS = 256


def sample_regions(shape, max_voxels: int = SAMPLE_VOXELS) -> list[tuple[slice, ...]]:
    """Central crops of planes spread evenly through the array, within ``max_voxels``."""
    if math.prod(shape) <= max_voxels:
        return [tuple(slice(0, n) for n in shape)]
    plane = shape[-2:] if len(shape) >= 2 else shape
    outer = shape[: len(shape) - len(plane)]
    n_outer = math.prod(outer) if outer else 1
    side = [min(n, 1024) for n in plane]
    per = math.prod(side)
    count = max(1, min(n_outer, max_voxels // per, 16))
    picks = np.unique(np.linspace(0, n_outer - 1, count).round().astype(int))
    regions = []
    for flat in picks:
        idx = np.unravel_index(int(flat), outer) if outer else ()
        crop = tuple(
            slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(plane, side, strict=False)
        )
        regions.append(tuple(slice(int(i), int(i) + 1) for i in idx) + crop)
    return regions


def _chunk_regions(source) -> list[tuple[slice, ...]]:
    return chunk_regions(source.chunks or tuple((n,) for n in source.shape))


class Histogram:
    """Counts and bin centres, merged from blocks."""

    def __init__(self, counts: np.ndarray, centers: np.ndarray) -> None:
        self.counts, self.centers = counts, centers


def histogram(source, exact: bool = False) -> Histogram:
    regions = _chunk_regions(source) if exact else sample_regions(source.shape)
    integer = np.dtype(source.dtype).kind in "biu"
    if integer:
        def block(region):
            values = np.asarray(source.read(region)).ravel().astype(np.int64)
            lo = int(values.min())
            return lo, np.bincount(values - lo)

        parts = parallel_map(block, regions)
        lo = min(p[0] for p in parts)
        hi = max(p[0] + len(p[1]) for p in parts)
        counts = np.zeros(hi - lo, np.int64)
        for start, c in parts:
            counts[start - lo : start - lo + len(c)] += c
        centers = np.arange(lo, hi)
        nonzero = np.flatnonzero(counts)  # trim to the image's range, as scikit-image does
        first, last = nonzero[0], nonzero[-1] + 1
        return Histogram(counts[first:last], centers[first:last])

    def extent(region):
        v = np.asarray(source.read(region), dtype=np.float64)
        v = v[np.isfinite(v)]
        return (float(v.min()), float(v.max())) if v.size else (np.inf, -np.inf)

    ranges = parallel_map(extent, regions)
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    edges = np.histogram_bin_edges(np.array([lo, hi]), bins=FLOAT_BINS, range=(lo, hi))

    def block_f(region):
        v = np.asarray(source.read(region)).ravel()
        return np.histogram(v, bins=edges)[0]

    counts = np.sum(parallel_map(block_f, regions), axis=0)
    return Histogram(counts, (edges[:-1] + edges[1:]) / 2)


def otsu(h: Histogram) -> float:
    """scikit-image's threshold_otsu, from a histogram."""
    counts, centers = h.counts.astype(np.float64), h.centers.astype(np.float64)
    if np.count_nonzero(counts) == 1:
        return float(centers[np.flatnonzero(counts)[0]])
    weight1 = np.cumsum(counts)
    weight2 = np.cumsum(counts[::-1])[::-1]
    mean1 = np.cumsum(counts * centers) / weight1
    mean2 = (np.cumsum((counts * centers)[::-1]) / weight2[::-1])[::-1]
    variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[np.argmax(variance12)])


def li(h: Histogram, integer: bool) -> float:
    """scikit-image's threshold_li (its histogram form, used for integer images)."""
    counts, centers = h.counts.astype(np.float64), h.centers.astype(np.float64)
    if np.count_nonzero(counts) == 1:
        return float(centers[np.flatnonzero(counts)[0]])
    offset = centers[0]
    centers = centers - offset
    tolerance = 0.5 if integer else float(np.min(np.diff(centers))) / 2
    t_next = float(np.sum(counts * centers) / np.sum(counts))
    t_curr = -2 * tolerance
    weights = counts.astype(np.float32)
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        fore = centers > t_curr
        back = ~fore
        mean_fore = np.average(centers[fore], weights=weights[fore])
        mean_back = np.average(centers[back], weights=weights[back])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + offset)


def triangle(h: Histogram) -> float:
    """scikit-image's threshold_triangle, from a histogram."""
    hist, centers = h.counts.astype(np.float64), h.centers
    nbins = len(hist)
    peak = int(np.argmax(hist))
    peak_height = hist[peak]
    low, high = np.flatnonzero(hist)[[0, -1]]
    if low == high:
        return float(centers[low])
    flip = peak - low < high - peak
    if flip:
        hist = hist[::-1]
        low = nbins - high - 1
        peak = nbins - peak - 1
    width = peak - low
    x1 = np.arange(width)
    y1 = hist[x1 + low]
    norm = np.sqrt(peak_height**2 + width**2)
    length = (peak_height / norm) * x1 - (width / norm) * y1
    level = int(np.argmax(length)) + low
    if flip:
        level = nbins - level - 1
    return float(centers[level])

"""Histograms and the thresholds computed from them, as scikit-image computes them.

Integer images get one bin per value (as scikit-image does, whatever ``nbins``), floats
256 bins over [min, max] in the image's own dtype (numpy's ``histogram`` edges), so
thresholds computed from a histogram merged over chunks equal scikit-image's on the whole
array, bitwise. The sample that precision "fast" reads is chosen here too.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..._shared.regions import chunk_regions

#: the most voxels read for a sampled statistic
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


def chunk_sample_regions(source, max_voxels: int = SAMPLE_VOXELS) -> list[tuple[slice, ...]]:
    """Whole chunks of ``source`` spread through its outer axes at the centre of its plane,
    within ``max_voxels`` (one chunk at least): for chunks deeper than a plane, where a
    plane's crop decodes every chunk it crosses whole (a 1024 x 1024 crop of chunks
    64 x 256 x 256 decodes 64 planes' worth)."""
    shape = tuple(source.shape)
    chunks = source.chunks or tuple((n,) for n in shape)
    per = math.prod(max(c) for c in chunks)
    count = max(1, min(max_voxels // per, 16))
    n_outer = max(1, len(shape) - 2)
    seen, regions = set(), []
    for k in range(count):
        at = [int((k + 0.5) / count * n) if i < n_outer and len(shape) > 2 else n // 2
              for i, n in enumerate(shape)]
        box = []
        for c, x in zip(chunks, at, strict=True):
            edges = np.cumsum((0, *c))
            j = int(np.searchsorted(edges, x, side="right")) - 1
            box.append(slice(int(edges[j]), int(edges[j + 1])))
        key = tuple((b.start, b.stop) for b in box)
        if key not in seen:
            seen.add(key)
            regions.append(tuple(box))
    return regions


def source_chunk_regions(source) -> list[tuple[slice, ...]]:
    """One region per chunk of ``source`` (the whole array when it has no chunks)."""
    return chunk_regions(source.chunks or tuple((n,) for n in source.shape))


class ValueCounts:
    """An exact histogram of integer values (one bin per value), merged from blocks."""

    def __init__(self) -> None:
        self.lo, self.counts = 0, np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values).ravel()
        if not values.size:
            return
        lo = int(values.min())
        counts = np.bincount((values.astype(np.int64) - lo) if lo else values)
        with self._lock:
            if not self.counts.size:
                self.lo, self.counts = lo, counts.astype(np.int64)
                return
            start, stop = min(self.lo, lo), max(self.lo + self.counts.size, lo + counts.size)
            if (start, stop) != (self.lo, self.lo + self.counts.size):
                grown = np.zeros(stop - start, np.int64)
                grown[self.lo - start : self.lo - start + self.counts.size] = self.counts
                self.lo, self.counts = start, grown
            self.counts[lo - self.lo : lo - self.lo + counts.size] += counts

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin centres trimmed to the image's range, as ``skimage.exposure.
        histogram(image, source_range='image')`` gives them for an integer image."""
        nonzero = np.flatnonzero(self.counts)
        first, last = nonzero[0], nonzero[-1] + 1
        return self.counts[first:last], np.arange(self.lo + first, self.lo + last)


def float_edges(lo, hi) -> np.ndarray:
    """numpy's 256 bin edges for an image whose min and max (of its dtype) are lo, hi."""
    return np.histogram_bin_edges(np.array([lo, hi]), bins=FLOAT_BINS, range=(lo, hi))


def float_counts(values: np.ndarray, lo, hi) -> np.ndarray:
    """The counts ``np.histogram(image, 256)`` gives for the voxels in ``values`` when the
    whole image's min and max are ``lo``, ``hi`` (numpy scalars of its dtype): the same
    edges and the same arithmetic per voxel, so counts add up over blocks exactly."""
    return np.histogram(np.asarray(values).ravel(), bins=FLOAT_BINS, range=(lo, hi))[0]


def otsu(counts: np.ndarray, centers: np.ndarray) -> float:
    """scikit-image's threshold_otsu, from the image's histogram."""
    from skimage.filters import threshold_otsu

    if np.count_nonzero(counts) == 1:
        return float(centers[np.flatnonzero(counts)[0]])
    return float(threshold_otsu(hist=(counts, centers)))


def li(counts: np.ndarray, centers: np.ndarray) -> float:
    """scikit-image's threshold_li of an integer image (its histogram form), from the
    exact histogram: the same float32 weights and float64 means."""
    if np.count_nonzero(counts) == 1:
        return float(centers[np.flatnonzero(counts)[0]])
    offset = int(centers[0])
    centers = centers - offset  # skimage subtracts the image's min first
    tolerance = 0.5
    # np.mean of the shifted image: an exact float64 sum (integers below 2**53)
    t_next = float(int(np.dot(counts, centers)) / int(counts.sum()))
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


def triangle(counts: np.ndarray, centers: np.ndarray, first=None) -> float:
    """scikit-image's threshold_triangle, from the image's histogram; ``first``: the
    value skimage returns for a constant image (its first voxel)."""
    hist = counts.astype(np.int64)
    nbins = len(hist)
    peak = int(np.argmax(hist))
    peak_height = hist[peak]
    low, high = np.flatnonzero(hist)[[0, -1]]
    if low == high:
        return float(centers[low] if first is None else first)
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

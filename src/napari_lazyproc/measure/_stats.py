"""Per-label statistics of blocks of a label image, and their exact merge.

A block gives, for every label in it: the voxel count, the sums of coordinates and of
their products (relative to a reference point, as integers), the bounding box, and, with
an intensity image, the intensity sum, its sum of squared deviations, minimum, maximum and
the intensity-weighted coordinate sums. All are accumulated with ``np.bincount`` and
``ufunc.at`` over the block's foreground voxels: no per-label Python loop.

Merging shifts each part's coordinate sums to the first part's reference point (integer
arithmetic, so exact) and adds them; deviations of intensities merge with the parallel
variance formula. Memory is one row per label and part, never the volume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: what a row can hold, by need: "s1" coordinate sums, "s2" sums of coordinate
#: products, "bbox", "isum" intensity sums, "im2" squared deviations, "iminmax",
#: "weighted" intensity-weighted coordinate sums
NEEDS = ("s1", "s2", "bbox", "isum", "im2", "iminmax", "weighted")

#: float64 sums of integer coordinates stay exact below this
_EXACT = 2.0**52


class Partial:
    """Per-label statistics: one row per (key, label), sorted, as a dict of arrays.

    ``keys`` holds the indices along the non-spatial axes (t, c), ``origin`` the
    reference point of the coordinate sums (global voxel coordinates), ``lo`` and ``hi``
    the bounding box (``hi`` exclusive).
    """

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["label"])

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.data.values())


def _empty(ndim: int, nkeys: int, needs: frozenset[str]) -> dict[str, np.ndarray]:
    d = {"key": np.zeros((0, nkeys), np.int64), "label": np.zeros(0, np.int64),
         "origin": np.zeros((0, ndim), np.int64), "count": np.zeros(0, np.int64)}
    if "s1" in needs or "s2" in needs:
        d["s1"] = np.zeros((0, ndim), np.int64)
    if "s2" in needs:
        d["s2"] = np.zeros((0, ndim, ndim), np.int64)
    if "bbox" in needs:
        d["lo"] = np.zeros((0, ndim), np.int64)
        d["hi"] = np.zeros((0, ndim), np.int64)
    if needs & {"isum", "im2", "weighted"}:
        d["isum"] = np.zeros(0)
    if "im2" in needs:
        d["im2"] = np.zeros(0)
    if "iminmax" in needs:
        d["imin"] = np.zeros(0)
        d["imax"] = np.zeros(0)
    if "weighted" in needs:
        d["ws1"] = np.zeros((0, ndim))
    return d


def empty(ndim: int, nkeys: int, needs: frozenset[str]) -> Partial:
    """A table with no rows."""
    return Partial(_empty(ndim, nkeys, needs))


def _pieces(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The block cut along its longest axis until float64 coordinate sums stay exact."""
    todo, out = [tuple(slice(0, n) for n in shape)], []
    while todo:
        region = todo.pop()
        sizes = [s.stop - s.start for s in region]
        if math.prod(sizes) * max(sizes) ** 2 < _EXACT or max(sizes) < 2:
            out.append(region)
            continue
        a = int(np.argmax(sizes))
        mid = region[a].start + sizes[a] // 2
        todo += [region[:a] + (slice(region[a].start, mid),) + region[a + 1:],
                 region[:a] + (slice(mid, region[a].stop),) + region[a + 1:]]
    return out


def block_stats(labels: np.ndarray, intensity: np.ndarray | None, origin: Sequence[int],
                key: Sequence[int], needs: frozenset[str]) -> Partial:
    """The statistics of every label (> 0) in one spatial block.

    Parameters
    ----------
    labels : ndarray
        Integer (or bool) labels of the block's spatial axes; 0 and below is background.
    intensity : ndarray or None
        Values of the same shape.
    origin : sequence of int
        The block's position in the whole image (its first voxel).
    key : sequence of int
        The block's indices along the non-spatial axes (t, c), kept per row.
    needs : frozenset of str
        Which statistics to compute (see ``NEEDS``).

    Returns
    -------
    Partial
        One row per label present, sorted by label.
    """
    parts = [_piece_stats(labels[p], None if intensity is None else intensity[p],
                          [o + s.start for o, s in zip(origin, p, strict=True)], key, needs)
             for p in _pieces(labels.shape)]
    return parts[0] if len(parts) == 1 else merge(parts)


def _piece_stats(labels, intensity, origin, key, needs) -> Partial:
    ndim = labels.ndim
    flat = labels.reshape(-1)
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
    fg = np.flatnonzero(flat > 0) if flat.dtype.kind == "i" else np.flatnonzero(flat)
    if not fg.size:
        return empty(ndim, len(key), needs)
    lab = flat[fg].astype(np.int64, copy=False)
    first, last = int(lab.min()), int(lab.max())
    if last - first < 4 * fg.size + 4096:  # a dense span: count straight into it
        idx = lab - first
        count = np.bincount(idx, minlength=last - first + 1)
        present = np.flatnonzero(count)
        rank = np.zeros(len(count), np.intp)
        rank[present] = np.arange(len(present))
        ids, count, idx = present + first, count[present], rank[idx]
    else:
        ids, idx = np.unique(lab, return_inverse=True)
        count = np.bincount(idx)
    m = len(ids)
    org = np.asarray(origin, np.int64)
    d: dict[str, np.ndarray] = {
        "key": np.broadcast_to(np.asarray(key, np.int64), (m, len(key))).copy(),
        "label": ids.astype(np.int64, copy=False),
        "origin": np.broadcast_to(org, (m, ndim)).copy(),
        "count": count.astype(np.int64, copy=False),
    }
    coords = np.unravel_index(fg, labels.shape) if needs - {"isum", "im2", "iminmax"} else ()

    def total(weights) -> np.ndarray:
        return np.bincount(idx, weights=weights, minlength=m)

    if "s1" in needs or "s2" in needs:
        d["s1"] = np.stack([np.rint(total(c)) for c in coords], axis=1).astype(np.int64)
    if "s2" in needs:
        s2 = np.empty((m, ndim, ndim), np.int64)
        for a in range(ndim):
            for b in range(a, ndim):
                s2[:, a, b] = s2[:, b, a] = np.rint(total(coords[a] * coords[b]))
        d["s2"] = s2
    if "bbox" in needs:
        lo = np.empty((m, ndim), np.int64)
        hi = np.empty((m, ndim), np.int64)
        for a, c in enumerate(coords):
            low = np.full(m, np.iinfo(np.intp).max, np.intp)
            high = np.full(m, -1, np.intp)
            np.minimum.at(low, idx, c)
            np.maximum.at(high, idx, c)
            lo[:, a], hi[:, a] = low, high + 1
        d["lo"], d["hi"] = lo + org, hi + org
    if intensity is not None and needs & {"isum", "im2", "iminmax", "weighted"}:
        values = intensity.reshape(-1)[fg].astype(np.float64)
        if needs & {"isum", "im2", "weighted"}:
            d["isum"] = total(values)
        if "im2" in needs:
            dev = values - (d["isum"] / count)[idx]
            d["im2"] = total(dev * dev)
        if "iminmax" in needs:
            low, high = np.full(m, np.inf), np.full(m, -np.inf)
            np.minimum.at(low, idx, values)
            np.maximum.at(high, idx, values)
            d["imin"], d["imax"] = low, high
        if "weighted" in needs:
            d["ws1"] = np.stack([total(values * c) for c in coords], axis=1)
    return Partial(d)


def merge(parts: list[Partial]) -> Partial:
    """One row per (key, label) from many tables: sums shifted to the first row's
    reference point and added; minima, maxima and bounding boxes combined.

    Parameters
    ----------
    parts : list of Partial
        Tables with the same fields (the first's reference points are kept).

    Returns
    -------
    Partial
        Sorted by key, then label.
    """
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    d = {k: np.concatenate([p.data[k] for p in parts]) for k in parts[0].data}
    keys, labels = d["key"], d["label"]
    order = np.lexsort((labels, *keys.T[::-1]))  # stable: earlier parts first
    d = {k: v[order] for k, v in d.items()}
    keys, labels = d["key"], d["label"]
    new = np.ones(len(labels), bool)
    new[1:] = labels[1:] != labels[:-1]
    if keys.shape[1]:
        new[1:] |= (keys[1:] != keys[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    out: dict[str, np.ndarray] = {"key": keys[starts], "label": labels[starts],
                                  "origin": d["origin"][starts]}
    count = d["count"]
    n = np.add.reduceat(count, starts)
    out["count"] = n
    shift = d["origin"] - out["origin"][group]  # to each group's reference point
    if "s1" in d:
        s1 = d["s1"]
        out["s1"] = np.add.reduceat(s1 + count[:, None] * shift, starts)
        if "s2" in d:
            moved = (d["s2"] + shift[:, :, None] * s1[:, None, :]
                     + s1[:, :, None] * shift[:, None, :]
                     + count[:, None, None] * shift[:, :, None] * shift[:, None, :])
            out["s2"] = np.add.reduceat(moved, starts)
    if "lo" in d:
        out["lo"] = np.minimum.reduceat(d["lo"], starts)
        out["hi"] = np.maximum.reduceat(d["hi"], starts)
    if "isum" in d:
        isum = np.add.reduceat(d["isum"], starts)
        if "im2" in d:
            between = d["isum"] / count - (isum / n)[group]
            out["im2"] = np.add.reduceat(d["im2"] + count * between * between, starts)
        out["isum"] = isum
    if "imin" in d:
        out["imin"] = np.minimum.reduceat(d["imin"], starts)
        out["imax"] = np.maximum.reduceat(d["imax"], starts)
    if "ws1" in d:
        out["ws1"] = np.add.reduceat(d["ws1"] + d["isum"][:, None] * shift, starts)
    return Partial(out)


class Accumulator:
    """Tables of finished blocks merged as they come, in batches (each merge is a sort
    of the rows so far, so batching keeps the total cost near linear)."""

    def __init__(self, ndim: int, nkeys: int, needs: frozenset[str]) -> None:
        self.total = empty(ndim, nkeys, needs)
        self._pending: list[Partial] = []
        self._rows = 0

    def add(self, part: Partial | None) -> None:
        if part is None or not len(part):
            return
        self._pending.append(part)
        self._rows += len(part)
        if self._rows >= max(2**16, len(self.total)):
            self.flush()

    def flush(self) -> Partial:
        if self._pending:
            self.total = merge([self.total, *self._pending])
            self._pending, self._rows = [], 0
        return self.total

"""A seeded watershed equal to scikit-image's, label for label, in linear time.

scikit-image floods from the markers with a binary heap ordered by (value, age): a
marker enters at its own value with age 0, a voxel at the larger of its own value and
its parent's, with the next age. Where no two markers share a value, no two entries
ever share a key, so every exact priority queue pops the same sequence: here a bucket
queue over integer ranks (FIFO per bucket: ages ascending), O(n). The caller gives the
ranks (small non-negative integers ordered and tied as the image's values) and keeps
the markers' values distinct (the nuclei watershed floods its seeds first, one rank
each); where markers tie, scikit-image's heap may order them otherwise.

Needs numba (the ``fast-segment`` extra); without it, ``watershed_ranks`` is None and
callers use scikit-image's.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

try:  # optional: scikit-image's watershed otherwise
    from numba import njit
except ImportError:  # pragma: no cover - numba absent
    njit = None


def _push(bucket, index, used, where, nxt, head, tail):  # pragma: no cover - numba
    """Append ``index`` to ``bucket``'s FIFO list in slot ``used``; the next free slot."""
    where[used] = index
    if tail[bucket] < 0:
        head[bucket] = used
    else:
        nxt[tail[bucket]] = used
    tail[bucket] = used
    return used + 1


if njit is not None:  # _flood's compiled code calls the compiled _push, inlined
    _push = njit(inline="always", cache=True, nogil=True)(_push)


def _flood(rank, mask, output, markers, nbrs, n_ranks):  # pragma: no cover - numba
    slots = markers.shape[0] + int(mask.sum()) + 1
    nxt = np.full(slots, -1, np.int64)
    where = np.empty(slots, np.int64)
    head = np.full(n_ranks, -1, np.int64)
    tail = np.full(n_ranks, -1, np.int64)
    used = 0
    for m in range(markers.shape[0]):  # each marker at its own value, in raveled order
        used = _push(rank[markers[m]], markers[m], used, where, nxt, head, tail)
    b = 0
    while b < n_ranks:
        s = head[b]
        if s < 0:
            b += 1
            continue
        head[b] = nxt[s]
        if head[b] < 0:
            tail[b] = -1
        idx = where[s]
        for k in range(nbrs.shape[0]):
            j = idx + nbrs[k]
            if mask[j] == 0 or output[j] != 0:
                continue
            output[j] = output[idx]
            used = _push(max(rank[j], b), j, used, where, nxt, head, tail)


_flood_jit = None if njit is None else njit(cache=True, nogil=True)(_flood)


def _watershed_ranks(rank: np.ndarray, markers: np.ndarray, mask: np.ndarray,
                     n_ranks: int) -> np.ndarray:
    """``skimage.segmentation.watershed(rank, markers, mask=mask)`` (connectivity 1, no
    compactness, no lines): ``rank`` integers in ``[0, n_ranks)``; labels of
    ``markers``' dtype, as scikit-image returns them."""
    from skimage.morphology._util import _offsets_to_raveled_neighbors

    markers = np.asanyarray(markers) * mask.astype(bool)
    pad = [(1, 1)] * rank.ndim
    ranks = np.pad(rank.astype(np.int64, copy=False), pad).ravel()
    flat_mask = np.pad(mask.astype(np.int8, copy=False), pad).ravel()
    output = np.pad(markers, pad)
    structure = ndi.generate_binary_structure(rank.ndim, 1)
    nbrs = _offsets_to_raveled_neighbors(output.shape, structure,
                                         center=(1,) * rank.ndim).astype(np.int64)
    flat = output.ravel()
    _flood_jit(ranks, flat_mask, flat, np.flatnonzero(flat).astype(np.int64), nbrs,
               int(n_ranks))
    return output[tuple(slice(1, -1) for _ in range(rank.ndim))].copy()


watershed_ranks = None if njit is None else _watershed_ranks

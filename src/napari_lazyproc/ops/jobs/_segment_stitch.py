"""Stitching per-block segmentations: objects matched by IoU in the overlap of two blocks.

Every block is segmented over its core grown by a halo; its core's labels are kept, and
so are its labels over a thin strip (``strip_width``) just beyond each core face, inside
the neighbour's core. Across a face, the two blocks then both labelled the slab of
``2 * w`` planes around it, each with its own segmentation; an object crossing the face
is found in both, nearly voxel for voxel (each block saw it whole, thanks to the halo).
Two labels are one object when their IoU in the slab exceeds ``MIN_IOU`` = 0.5, which
pairs each label with at most one label of the other block (two disjoint labels cannot
both cover more than half of it): touching neighbours are never merged. The pairs of all
faces form a graph whose connected components are the objects (``_relabel``, shared
with global labeling). The table of pairs holds only objects on block faces.
(cellpose's distributed segmentation instead crops blocks and joins labels that touch
across faces after shrinking them; matching whole overlaps is what lets two touching
nuclei on a face stay two.)
"""

from __future__ import annotations

import math

import numpy as np

from ..._shared.regions import block_region

#: two labels of neighbouring blocks are one object above this IoU in their overlap
MIN_IOU = 0.5

__all__ = ["MIN_IOU", "block_rims", "face_pairs", "matched_pairs", "relabel", "strip_width"]


def strip_width(halo: int) -> int:
    """Planes each side of a face compared: well inside both blocks' context (a quarter
    of the halo), so neither sees the slab near the edge of what it segmented."""
    return max(1, min(int(halo), math.ceil(int(halo) / 4)))


def matched_pairs(lo: np.ndarray, hi: np.ndarray, min_iou: float = MIN_IOU) -> np.ndarray:
    """Pairs ``(label in lo, label in hi)`` whose IoU over the voxels of the slab (the
    same voxels labelled by two blocks) exceeds ``min_iou``; labels are each block's own."""
    a = lo.ravel()
    b = hi.ravel()
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.empty((0, 2), np.int64)
    keys = (a[both].astype(np.uint64) << np.uint64(32)) | b[both].astype(np.uint64)
    pair_keys, inter = np.unique(keys, return_counts=True)
    ia = (pair_keys >> np.uint64(32)).astype(np.int64)
    ib = (pair_keys & np.uint64(2**32 - 1)).astype(np.int64)
    ids_a, area_a = np.unique(a[a > 0], return_counts=True)
    ids_b, area_b = np.unique(b[b > 0], return_counts=True)
    union = (area_a[np.searchsorted(ids_a, ia)] + area_b[np.searchsorted(ids_b, ib)]
             - inter)
    keep = inter > min_iou * union
    return np.stack([ia[keep], ib[keep]], axis=1)


def relabel(n_total: int, pairs: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, int]:
    """A lookup table from provisional ids (block offsets added, 0..n_total) to
    consecutive final labels, one per connected component of the matched pairs, numbered
    in the order of their smallest id. ``present``: a boolean per id, whether it labels
    any voxel of its block's core (an object a block saw only in its halo is numbered
    only through its partner, or not at all)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    root = np.arange(n_total + 1, dtype=np.int64)
    if len(pairs):
        ids, inverse = np.unique(pairs, return_inverse=True)
        inverse = inverse.reshape(pairs.shape)
        graph = coo_matrix((np.ones(len(pairs), bool), (inverse[:, 0], inverse[:, 1])),
                           shape=(len(ids),) * 2)
        _, component = connected_components(graph, directed=False)
        smallest = np.full(component.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, component, ids)
        root[ids] = smallest[component]
    present = np.asarray(present, bool).copy()
    present[0] = False
    roots, final = np.unique(root[present], return_inverse=True)
    dtype = np.uint32 if len(roots) < 2**32 - 1 else np.uint64
    lut = np.zeros(n_total + 1, dtype)
    lut[present] = final.astype(dtype) + 1
    return lut, len(roots)


def block_rims(job, index, core, ext, labels) -> dict:
    """A block's labels over the strips just beyond its core faces, along each
    spatial axis (zeros where it has no neighbour)."""
    rims = {}
    for a in job.spatial:
        w = job.widths[a]
        shape = [2 * w if k == a else s.stop - s.start for k, s in enumerate(core)]
        strip = np.zeros(shape, np.uint32)
        cross = [slice(c.start - e.start, c.stop - e.start) for c, e in zip(core, ext,
                                                                            strict=True)]
        lo_start = core[a].start - ext[a].start
        if index[a] > 0:
            cross[a] = slice(lo_start - w, lo_start)
            put = [slice(None)] * len(core)
            put[a] = slice(0, w)
            strip[tuple(put)] = labels[tuple(cross)]
        if index[a] < job.grid[a] - 1:
            hi_start = core[a].stop - ext[a].start
            w2 = min(w, job.source.shape[a] - core[a].stop)
            cross[a] = slice(hi_start, hi_start + w2)
            put = [slice(None)] * len(core)
            put[a] = slice(w, w + w2)
            strip[tuple(put)] = labels[tuple(cross)]
        rims[a] = strip
    return rims


def face_pairs(job, st, offsets, index, a) -> np.ndarray:
    """Matched provisional ids across the face between block ``index`` and the next
    along axis ``a``: both blocks' labels over the slab around the face."""
    nxt = tuple(i + 1 if k == a else i for k, i in enumerate(index))
    lo_r = block_region(index, job.block, job.source.shape)
    hi_r = block_region(nxt, job.block, job.source.shape)
    w = job.widths[a]
    w2 = min(w, hi_r[a].stop - hi_r[a].start)

    def along(region, sl):
        return tuple(sl if k == a else s for k, s in enumerate(region))

    lo_core = np.asarray(st.labels[along(lo_r, slice(lo_r[a].stop - w, lo_r[a].stop))])
    lo_rim = np.asarray(st.rims[a][along(lo_r, slice(index[a] * 2 * w + w,
                                                     index[a] * 2 * w + w + w2))])
    hi_rim = np.asarray(st.rims[a][along(hi_r, slice(nxt[a] * 2 * w, nxt[a] * 2 * w + w))])
    hi_core = np.asarray(st.labels[along(hi_r, slice(hi_r[a].start, hi_r[a].start + w2))])
    pairs = matched_pairs(np.concatenate([lo_core, lo_rim], axis=a),
                          np.concatenate([hi_rim, hi_core], axis=a))
    return pairs + np.array([offsets[index], offsets[nxt]], np.int64)

"""The merge of global labeling: label pairs that touch across a chunk face (or across
the array's edge along an axis that wraps around), and the lookup table from provisional
labels to consecutive final ones (connected components of the graph of those pairs)."""

from __future__ import annotations

import itertools

import numpy as np


def neighbours(structure: np.ndarray, i: int) -> list[tuple[int, ...]]:
    """The in-plane offsets e such that a voxel and the one at +1 along axis ``i`` and
    ``e`` along the others are neighbours under ``structure`` (3 per axis, symmetric)."""
    out = []
    for e in itertools.product((-1, 0, 1), repeat=structure.ndim - 1):
        index = [1 + d for d in e]
        index.insert(i, 2)
        if structure[tuple(index)]:
            out.append(e)
    return out


def wrap_pairs(labels: np.ndarray, structure: np.ndarray, spatial, wrap,
               only=None) -> np.ndarray:
    """Label pairs that touch across the array's edge along the ``wrap`` axes (periodic
    labeling, dask-image's ``wrap_axes``): the last plane against the first, with the
    in-plane offsets wrapping along the other ``wrap`` axes too (corners). ``only``: the
    wrap axes to cross (default: all)."""
    found = [np.empty((0, 2), np.int64)]
    for i, axis in enumerate(spatial):
        if axis not in (wrap if only is None else only):
            continue
        others = [a for a in spatial if a != axis]
        in_plane = [o if o < axis else o - 1 for o in others]
        wraps = {p for p, o in zip(in_plane, others, strict=True) if o in wrap}
        lo, hi = np.take(labels, -1, axis=axis), np.take(labels, 0, axis=axis)
        found.append(_touching(lo, hi, in_plane, neighbours(structure, i), wraps))
    return np.concatenate(found)


def _touching(lo: np.ndarray, hi: np.ndarray, axes: list[int], offsets,
              wraps=frozenset()) -> np.ndarray:
    """Label pairs (lo[i], hi[i + e]) for every in-plane offset e, both foreground; along
    the in-plane axes in ``wraps``, i + e wraps around."""
    out = []
    for e in offsets:
        a_sl, b_sl = [slice(None)] * lo.ndim, [slice(None)] * lo.ndim
        shifted = hi
        for ax, d in zip(axes, e, strict=False):
            if d and ax in wraps:
                shifted = np.roll(shifted, -d, axis=ax)
            elif d > 0:
                a_sl[ax], b_sl[ax] = slice(0, -d), slice(d, None)
            elif d < 0:
                a_sl[ax], b_sl[ax] = slice(-d, None), slice(0, d)
        a, b = lo[tuple(a_sl)].ravel(), shifted[tuple(b_sl)].ravel()
        keep = (a > 0) & (b > 0)
        if keep.any():
            out.append(_unique_pairs(a[keep], b[keep]))
    return np.concatenate(out) if out else np.empty((0, 2), np.int64)


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distinct rows of (a, b): as one 64-bit key each when the labels fit 32 bits
    (a 1-D unique, many times faster than numpy's unique of rows)."""
    if a.max() < 2**32 and b.max() < 2**32:
        keys = np.unique((a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64))
        return np.stack([(keys >> np.uint64(32)).astype(np.int64),
                         (keys & np.uint64(2**32 - 1)).astype(np.int64)], axis=1)
    return np.unique(np.stack([a, b], axis=1), axis=0)


def _relabel(n_total: int, pairs: np.ndarray) -> tuple[np.ndarray, int]:
    """A lookup table from provisional labels (0..n_total) to consecutive final labels."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    dtype = np.uint32 if n_total < 2**32 - 1 else np.uint64
    root = np.arange(n_total + 1, dtype=np.int64)
    if len(pairs):
        ids, inverse = np.unique(pairs, return_inverse=True)
        inverse = inverse.reshape(pairs.shape)
        graph = coo_matrix(
            (np.ones(len(pairs), bool), (inverse[:, 0], inverse[:, 1])), shape=(len(ids),) * 2
        )
        _, component = connected_components(graph, directed=False)
        smallest = np.full(component.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, component, ids)
        root[ids] = smallest[component]
    _, final = np.unique(root[1:], return_inverse=True)
    lut = np.zeros(n_total + 1, dtype)
    lut[1:] = final.astype(dtype) + 1
    return lut, int(final.max() + 1) if n_total else 0

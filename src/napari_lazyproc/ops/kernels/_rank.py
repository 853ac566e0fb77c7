"""Fast CPU kernels of the rank filters for the "fast" precision: minimum, maximum,
grey and binary morphology with a flat footprint (OpenCV's erode and dilate), and the
rank, median and percentile filters (a partition of each window). All exact: an order
statistic is one of the block's own values. Same signature as ``_separable``'s kernels.
"""

from __future__ import annotations

import numpy as np

from ._separable import _BORDERS, _indices, _offsets, _usable, cv2


def _rank(block, crop, footprint, origin, mode, cval, reduce, cv_op):
    """A flat minimum or maximum over ``footprint`` (any flat window) shifted by
    ``origin`` as scipy shifts it: exact, since only values of the block are compared.
    3-D: per plane, the reduction over z of each plane's 2-D filter with that z-slice of
    the footprint."""
    if not _usable(block, mode, cval) or footprint.ndim != block.ndim or not footprint.any():
        return None
    border = _BORDERS[mode]
    dtype = block.dtype
    value = float(cval)
    if mode == "constant" and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max or value != int(value):
            return None  # scipy's cval cast differs; leave it to scipy
    fp = footprint if footprint.ndim >= 2 else footprint[None]
    org = tuple(int(o) for o in origin)
    org = org if footprint.ndim >= 2 else (0, *org)
    # OpenCV's anchor is the window's voxel over the output: scipy's centre plus origin
    anchor = (fp.shape[-1] // 2 + org[-1], fp.shape[-2] // 2 + org[-2])

    def plane(img, kernel):
        return cv_op(img, kernel.astype(np.uint8), anchor=anchor, borderType=border,
                     borderValue=value)

    if block.ndim < 3:
        f = block if block.ndim == 2 else block[None]
        c = crop if block.ndim == 2 else (slice(0, 1), *crop)
        out = plane(np.ascontiguousarray(f), fp)[c]
        return out if block.ndim == 2 else out[0]
    n = block.shape[0]
    offsets = _offsets(fp.shape[0]) - org[0]
    out = np.empty((crop[0].stop - crop[0].start, crop[1].stop - crop[1].start,
                    crop[2].stop - crop[2].start), dtype)
    for k, z in enumerate(range(crop[0].start, crop[0].stop)):
        acc = None
        for j, i in enumerate(_indices(n, z + offsets, mode)):
            if not fp[j].any():
                continue
            src = (np.full(block.shape[1:], value, dtype) if i < 0
                   else np.ascontiguousarray(block[i]))
            values = plane(src, fp[j])[crop[1:]]
            acc = values if acc is None else reduce(acc, values, out=acc)
        out[k] = acc
    return out


def minimum(block, crop, size, mode, cval):
    """scipy.ndimage.minimum_filter over ``crop``."""
    fp = np.ones(tuple(int(s) for s in size), bool)
    return _erode(block, crop, fp, (0,) * fp.ndim, mode, cval)


def maximum(block, crop, size, mode, cval):
    """scipy.ndimage.maximum_filter over ``crop``."""
    fp = np.ones(tuple(int(s) for s in size), bool)
    return _rank(block, crop, fp, (0,) * fp.ndim, mode, cval, np.maximum,
                 cv2.dilate if cv2 else None)


def _erode(block, crop, fp, origin, mode, cval):
    """scipy's grey_erosion: the minimum over ``fp`` shifted by ``origin``."""
    return _rank(block, crop, fp, origin, mode, cval, np.minimum, cv2.erode if cv2 else None)


def _dilate(block, crop, fp, origin, mode, cval):
    """scipy's grey_dilation: the maximum over ``fp`` mirrored, its origin mirrored too
    (one voxel further along an even side)."""
    flipped = fp[(slice(None, None, -1),) * fp.ndim]
    mirrored = tuple(-int(o) - (1 - n % 2) for o, n in zip(origin, fp.shape, strict=True))
    return _rank(block, crop, flipped, mirrored, mode, cval, np.maximum,
                 cv2.dilate if cv2 else None)


def _chain(block, crop, steps, fp, origin, mode, cval):
    """``steps`` (erosions and dilations) one after the other, each over ``crop`` grown
    by the reach of the steps still to come (clipped to the block: where the block ends
    inside the array, its halo covers them)."""
    reach = [int(n) // 2 + abs(int(o)) for n, o in zip(fp.shape, origin, strict=True)]
    cur, box = block, tuple(slice(0, n) for n in block.shape)
    for i, step in enumerate(steps):
        left = len(steps) - 1 - i
        want = tuple(slice(max(0, c.start - left * r), min(n, c.stop + left * r))
                     for c, r, n in zip(crop, reach, block.shape, strict=True))
        inner = tuple(slice(w.start - b.start, w.stop - b.start)
                      for w, b in zip(want, box, strict=True))
        cur = step(cur, inner, fp, origin, mode, cval)
        if cur is None:
            return None
        box = want
    return cur


_STEPS = {"erosion": [_erode], "dilation": [_dilate], "opening": [_erode, _dilate],
          "closing": [_dilate, _erode], "white_tophat": [_erode, _dilate],
          "black_tophat": [_dilate, _erode]}


def grey(name: str):
    """A fast grey erosion, dilation, opening, closing or tophat with a flat window
    ``fp`` (a boolean array) shifted by ``origin``."""

    def run(block, crop, fp, origin, mode, cval):
        out = _chain(block, crop, _STEPS[name], fp, origin, mode, cval)
        if out is None or not name.endswith("tophat"):
            return out
        here = block[crop]
        return here - out if name == "white_tophat" else out - here

    return run


def binary(name: str):
    """A fast binary erosion, dilation, opening or closing, each repeated ``iterations``
    times: the grey one on the 0/1 mask, outside the array ``border_value``."""
    op = name.removeprefix("binary_")

    def run(block, crop, structure, origin, border_value=False, iterations=1):
        if not isinstance(block, np.ndarray):
            return None
        mask = (block != 0).view(np.uint8)
        steps = [s for s in _STEPS[op] for _ in range(iterations)]
        out = _chain(mask, crop, steps, structure, origin, "constant", float(border_value))
        return None if out is None else out.view(bool)

    return run


#: the most bytes the window stack of one output plane of a rank filter may take
RANK_BYTES = 2**28
#: scipy's boundary modes as numpy.pad modes
_PADS = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "constant": "constant"}


def rank(block, crop, size, rank_of, mode, cval):
    """scipy.ndimage.rank_filter over ``crop`` with a box of ``size``: each output plane
    from a sliding window of its neighbours, partitioned at the rank (exact: an order
    statistic of the block's own values). ``rank_of(n)`` gives the rank among n values."""
    if not isinstance(block, np.ndarray) or block.dtype.kind not in "iuf" or block.size == 0:
        return None
    from numpy.lib.stride_tricks import sliding_window_view

    size = tuple(int(s) for s in size)
    n = int(np.prod(size))
    k = rank_of(n)
    plane = int(np.prod([c.stop - c.start for c in crop[-2:]]))
    if plane * n * block.itemsize > RANK_BYTES:
        return None  # the window stack of one plane would be too large: scipy runs
    if mode == "constant" and block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        if not info.min <= cval <= info.max or cval != int(cval):
            return None  # scipy's cast of an out-of-range cval: leave it to scipy
    before = [s // 2 for s in size]
    after = [s - 1 - s // 2 for s in size]
    # the mode extends the block's edges; at an edge inside the array the halo is there
    # already and the padding is never reached by the outputs asked for
    pad = [(b, a) for b, a in zip(before, after, strict=True)]
    kwargs = {"constant_values": block.dtype.type(cval)} if mode == "constant" else {}
    lead = crop[0] if block.ndim > 1 else None
    if block.ndim == 3:  # only the planes the crop needs
        lo, hi = lead.start, lead.stop + before[0] + after[0]
        padded = np.pad(block, pad, mode=_PADS[mode], **kwargs)[lo:hi]
    else:
        padded = np.pad(block, pad, mode=_PADS[mode], **kwargs)
    spatial_crop = crop[1:] if block.ndim == 3 else crop
    out_shape = tuple(c.stop - c.start for c in crop)
    out = np.empty(out_shape, block.dtype)
    planes = range(out_shape[0]) if block.ndim == 3 else [None]
    for z in planes:
        if z is None:
            src = padded
        else:
            src = padded[z : z + size[0]]
        sub = tuple(slice(c.start, c.stop + b + a)
                    for c, b, a in zip(spatial_crop, before[-len(spatial_crop):],
                                       after[-len(spatial_crop):], strict=True))
        window = src[(slice(None),) * (src.ndim - len(sub)) + sub] if z is not None else src[sub]
        views = sliding_window_view(window, size)
        views = views.reshape(*views.shape[: window.ndim], n)
        if z is not None:
            views = views[0]
        values = np.partition(views, k, axis=-1)[..., k]
        if z is None:
            out[...] = values
        else:
            out[z] = values
    return out


def median(block, crop, size, mode, cval):
    """scipy.ndimage.median_filter over ``crop`` (the element at index n // 2 of n)."""
    return rank(block, crop, size, lambda n: n // 2, mode, cval)


def percentile(block, crop, percentile, size, mode, cval):
    """scipy.ndimage.percentile_filter over ``crop``, with scipy's rank rule."""
    if percentile < 0:
        percentile += 100.0

    def rank_of(n):
        return n - 1 if percentile == 100.0 else int(float(n) * percentile / 100.0)

    return rank(block, crop, size, rank_of, mode, cval)

"""``measure``: a regionprops table of a label image of any size, one chunk at a time.

The label image (and the intensity image beside it) is cut into regions that are whole
chunks of both, so each stored chunk is read once. Each region gives per-label partial
statistics (``_stats.block_stats``), computed in parallel on threads or on a
dask.distributed cluster; the main thread merges them as they come. Memory is bounded by
the number of labels and a few regions, never by the volume.
"""

from __future__ import annotations

import itertools
import math
import threading
from contextlib import closing, nullcontext

import numpy as np

from .._shared.cluster import distributed_client
from .._shared.pool import bounded_unordered, n_workers, one_task
from .._shared.regions import Region
from ..io import SPATIAL_AXES, convert_unit
from ..ops import CACHE, Cancelled, GlobalLabels, Progress, as_source
from ._props import columns, needs_of, resolve, unit_of
from ._stats import Accumulator, Partial, block_stats, empty, merge

#: the properties measured when none are named (and, with an intensity image, these)
DEFAULT = ("label", "area", "centroid", "bbox")
DEFAULT_INTENSITY = ("intensity_mean", "intensity_min", "intensity_max")
#: regions smaller than this many voxels are joined with their neighbours (whole chunks)
REGION_VOXELS = 2**21
#: the chunk cache is held to this while measuring: regions are whole chunks, read once
CACHE_BYTES = 32 * 2**20


def measure(labels, intensity=None, properties=None, *, spacing=None, unit: str | None = None,
            axes: str | None = None, data_axes: str | None = None, progress=None,
            cancel: threading.Event | None = None, scheduler=None, workers: int | None = None,
            cache_bytes: int = CACHE_BYTES):
    """A table of properties of every labelled object, computed chunk by chunk.

    Equal to ``skimage.measure.regionprops_table`` on the whole arrays in memory, for
    the properties that merge exactly across chunks, but reading each chunk once, in
    parallel, with memory bounded by the number of labels.

    Parameters
    ----------
    labels
        A label image (0 is background): a ``GlobalLabels`` job (run here if it has not
        run) or its result, per-frame labels (a lazy result), a ``LazyImage``, or a
        dask, zarr or numpy array of integers.
    intensity
        An image of the same shape, for the ``intensity_*`` and ``centroid_weighted*``
        properties.
    properties
        scikit-image names: ``label``, ``num_pixels``, ``area``, ``bbox``, ``area_bbox``,
        ``extent``, ``equivalent_diameter_area``, ``centroid``, ``centroid_local``,
        ``inertia_tensor``, ``inertia_tensor_eigvals``, ``axis_major_length``,
        ``axis_minor_length``, ``eccentricity`` and ``orientation`` (2D), and with an
        intensity image ``intensity_mean``, ``intensity_std``, ``intensity_min``,
        ``intensity_max``, ``centroid_weighted``, ``centroid_weighted_local``. Default:
        label, area, centroid and bbox, plus intensity mean, min and max with an image.
        ``label`` is always included.
    spacing
        Voxel size per spatial axis (or one number for all). Default: the image's
        scale when its spatial axes have physical units, else 1 (pixels).
    unit
        The unit of ``spacing`` when it is given (recorded in ``attrs["units"]``).
    axes
        The spatial axes objects extend over (default: every spatial axis, such as
        ``"zyx"``). Other axes (t, c, or z with ``axes="yx"``) are measured index by
        index and become columns named by their letter.
    data_axes
        Axis letters of a plain array (default: guessed from its number of dimensions).
    progress, cancel
        ``True`` for a bar on stderr, or ``progress(done, total)`` (regions done); a
        ``threading.Event`` that stops the job within a region's time.
    scheduler, workers
        A dask.distributed ``Client`` or scheduler address, or a number of local worker
        processes to start, as for ``export``; threads on this machine otherwise.
    cache_bytes
        The chunk cache is held to this size while measuring.

    Returns
    -------
    pandas.DataFrame
        One row per label (per label and index of the other axes), sorted by them; the
        columns named as ``regionprops_table`` names them. ``attrs["units"]`` maps each
        column with a unit to it (lengths in the spacing's unit, or "pixel"; areas as
        ``"micrometer**3"``; ``bbox`` always in pixels, as scikit-image gives it);
        ``attrs["spacing"]``, ``attrs["axes"]`` (the spatial axes) and
        ``attrs["data_axes"]`` (every axis of the labels) say the rest.

    Raises
    ------
    ValueError
        An unsupported property (named, with the supported ones listed), an intensity
        property without an image, images of different shapes, or a bad spacing.
    Cancelled
        ``cancel`` was set.

    Notes
    -----
    Counts, bounding boxes, minima and maxima are exact. Coordinate sums are integers
    relative to a reference point per label, so centroids and second moments are exact
    up to the final float64 divisions (within 1e-9 relative of scikit-image's); intensity
    sums are float64 (scikit-image averages float32 images in float32).
    """
    import pandas as pd

    source = labels if isinstance(labels, GlobalLabels) else as_source(labels, data_axes)
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "biu":
        raise ValueError(f"measure: labels must be integers (got {dtype}); label a mask "
                         f"first (lp.label_global)")
    spatial = _spatial_axes(source.axes, axes)
    image = None
    if intensity is not None:
        same_ndim = len(getattr(intensity, "shape", ())) == len(source.shape)
        image = as_source(intensity, data_axes or (source.axes if same_ndim else None))
        if tuple(image.shape) != tuple(source.shape):
            raise ValueError(f"measure: the intensity image has shape {tuple(image.shape)}, "
                             f"the labels {tuple(source.shape)}; they must be the same")
    if properties is None:
        properties = DEFAULT + (DEFAULT_INTENSITY if image is not None else ())
    props = resolve(properties, len(spatial), image is not None)
    needs = needs_of(props)
    sizes, length_unit = _spacing(source, spatial, spacing, unit)
    other = [a for a in range(len(source.shape)) if a not in spatial]
    if isinstance(source, GlobalLabels) and not source.done:  # everything checked first
        source.run(progress=progress, cancel=cancel)
    regions = _regions(source, image, spatial)
    task = RegionTask(source, image, spatial, needs, cache_bytes)
    bar = Progress(len(regions), progress, cancel, desc="measure")
    try:
        with distributed_client(scheduler, workers) as client:
            if client is None:
                table = _run_threads(task, regions, bar, cancel, len(other), len(spatial))
            else:
                table = _run_cluster(client, task, regions, bar, len(other), len(spatial))
    finally:
        bar.close()
    cols = {source.axes[a]: table.data["key"][:, i] for i, a in enumerate(other)}
    for name, values in columns(props, table, sizes).items():
        cols[name] = values
    frame = pd.DataFrame(cols)
    frame.attrs["units"] = {
        c: u for p in props if (u := unit_of(p, length_unit, len(spatial))) is not None
        for c in columns([p], empty(len(spatial), len(other), needs), sizes)
    }
    frame.attrs["spacing"] = [float(s) for s in sizes]
    frame.attrs["axes"] = "".join(source.axes[a] for a in spatial)
    frame.attrs["data_axes"] = source.axes
    return frame


# ---------------------------------------------------------------------------- inputs
def check_properties(properties, axes: str, intensity: bool) -> None:
    """Check property names before measuring (the widget tells a bad choice at once).

    Parameters
    ----------
    properties : sequence of str
        Names, as for ``measure``.
    axes : str
        The label image's axis letters (its spatial ones count).
    intensity : bool
        Whether an intensity image is given.

    Raises
    ------
    ValueError
        As ``measure`` would for these names.
    """
    resolve(properties, len(_spatial_axes(axes, None)), intensity)


def _spatial_axes(letters: str, axes: str | None) -> tuple[int, ...]:
    if not letters:
        raise ValueError("measure: the labels are 0-D (one value, no axes): no regions to "
                         "measure")
    if axes is None:
        axes = "".join(a for a in letters if a in SPATIAL_AXES) or letters
    missing = [a for a in axes if a not in letters]
    if missing or len(set(axes)) != len(axes) or not axes:
        raise ValueError(f"measure: axes {axes!r} are not distinct axes of the labels, "
                         f"whose axes are {letters!r}")
    return tuple(sorted(letters.index(a) for a in axes))


def _spacing(source, spatial, spacing, unit) -> tuple[np.ndarray, str | None]:
    """The voxel size per spatial axis and the unit of lengths ("pixel" without one)."""
    if spacing is not None:
        sizes = np.broadcast_to(np.asarray(spacing, np.float64), (len(spatial),)).copy() \
            if np.ndim(spacing) == 0 else np.asarray(spacing, np.float64)
        if sizes.shape != (len(spatial),) or not np.all(np.isfinite(sizes)) or np.any(
                sizes <= 0):
            raise ValueError(f"measure: spacing must be one positive number or one per "
                             f"spatial axis ({len(spatial)}); got {spacing!r}")
        return sizes, unit
    units = [source.units[a] for a in spatial]
    if None in units:
        return np.ones(len(spatial)), "pixel"
    scale = [float(source.scale[a]) for a in spatial]
    try:  # axes in different units (z in mm): all in x's unit
        sizes = [convert_unit(s, u, units[-1]) for s, u in zip(scale, units, strict=True)]
    except Exception:  # noqa: BLE001 - units that do not convert: pixels, said so
        return np.ones(len(spatial)), "pixel"
    return np.asarray(sizes, np.float64), units[-1]


def _bounds(grid, axis: int) -> set[int]:
    return {int(b) for b in np.cumsum((0, *grid[axis]))}


def _regions(source, image, spatial) -> list[Region]:
    """Whole chunks of the labels and of the image (each chunk read once), joined with
    their neighbours up to ``REGION_VOXELS``; whole frames for per-frame results."""
    shape = tuple(source.shape)
    grids = [g for g in (source.chunks, getattr(image, "chunks", None)) if g is not None]
    whole_frame = bool(getattr(source, "whole_frame", False))
    edges = []
    for a, n in enumerate(shape):
        if whole_frame and a in spatial:
            edges.append([0, n])
        elif grids:
            edges.append(sorted(set.intersection(*(_bounds(g, a) for g in grids))))
        else:  # in memory: every voxel is its own chunk
            edges.append(list(range(n + 1)))
    if len(grids) > 1 and math.prod(max(np.diff(e)) for e in edges) > 16 * REGION_VOXELS:
        # chunk grids too far out of step: the labels' chunks (the cache shares the rest)
        return _regions(source, None, spatial)
    # join neighbours, last axis first, while a region stays under the target size
    for a in reversed(range(len(shape))):
        other = math.prod(max(np.diff(e)) for i, e in enumerate(edges) if i != a)
        joined = [edges[a][0]]
        for stop in edges[a][1:]:
            if len(joined) > 1 and (stop - joined[-2]) * other <= REGION_VOXELS:
                joined[-1] = stop  # the last region grows by this chunk
            else:
                joined.append(stop)
        edges[a] = joined
    return [tuple(slice(lo, hi) for lo, hi in box) for box in itertools.product(
        *(list(zip(e[:-1], e[1:], strict=True)) for e in edges))]


# ---------------------------------------------------------------------------- the work
class RegionTask:
    """The statistics of one region: read the labels (and the image), then every frame
    (the spatial block at one index of the other axes). Picklable, for dask workers."""

    def __init__(self, labels, image, spatial, needs, cache_bytes: int | None) -> None:
        self.labels, self.image = labels, image
        self.spatial = tuple(spatial)
        self.needs = needs
        self.cache_bytes = cache_bytes

    def __call__(self, region: Region, cancel: threading.Event | None = None) -> Partial:
        budget = nullcontext() if self.cache_bytes is None else CACHE.budget(self.cache_bytes)
        with budget, one_task():
            if cancel is not None and cancel.is_set():
                raise Cancelled("measure cancelled")
            lab = np.asarray(self.labels.read(region))
            img = None if self.image is None else np.asarray(self.image.read(region))
        nd = lab.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        k = len(other)
        lab = np.moveaxis(lab, self.spatial, range(k, nd))
        if img is not None:
            img = np.moveaxis(img, self.spatial, range(k, nd))
        origin = [region[a].start for a in self.spatial]
        parts = [
            block_stats(lab[index], None if img is None else img[index], origin,
                        [region[a].start + i for a, i in zip(other, index, strict=True)],
                        self.needs)
            for index in np.ndindex(*lab.shape[:k])
        ]
        return merge(parts) if parts else empty(len(self.spatial), k, self.needs)


def _run_threads(task: RegionTask, regions, bar: Progress, cancel, nkeys: int,
                 ndim: int) -> Partial:
    """Every region on threads, a bounded number in flight, merged as they finish."""
    acc = Accumulator(ndim, nkeys, task.needs)
    with closing(bounded_unordered(task, regions, n_workers(), "lazyproc-measure")) as results:
        for result in results:
            acc.add(result)
            bar.step()  # raises Cancelled when asked to stop
            if cancel is not None and cancel.is_set():
                raise Cancelled("measure cancelled")
    return acc.flush()


def _run_cluster(client, task: RegionTask, regions, bar: Progress, nkeys: int,
                 ndim: int) -> Partial:
    """Every region on a dask.distributed cluster, merged here as they finish."""
    from distributed import as_completed

    acc = Accumulator(ndim, nkeys, task.needs)
    futures = client.map(task, regions, pure=False, retries=3)
    try:
        for future in as_completed(futures):
            acc.add(future.result())
            bar.step()
    except BaseException:
        client.cancel(futures)
        raise
    return acc.flush()

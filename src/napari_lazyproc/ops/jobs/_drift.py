"""Drift estimation: each time point's translation against a reference, as a shift table.

An explicit job, like global labeling: nothing runs until ``run()``, never by slicing.
Every frame is registered by phase correlation (``skimage.registration.
phase_cross_correlation``, with sub-pixel upsampling) on a coarse level, block-averaged
down to ``max_voxels``; then, at ``refine_level``, a crop of the reference around its
content is registered with the same crop of the frame moved by the coarse estimate, so
that only a residual of under a voxel or so is left to find. Frames run in parallel on
the worker pool, each read once per level.

The table (a pandas DataFrame) has one row per time point: ``t``, then ``dz``, ``dy``,
``dx`` in physical units (``dz`` only for 3-D frames), and the same shifts in pixels of
level 0 (``dz_px``, ...). A shift follows ``phase_cross_correlation``'s convention: the
translation that registers the frame onto the reference, ``scipy.ndimage.shift(frame,
shift) ~ reference``; the sample itself drifted by minus the shift. The ``shift_frames``
operation applies it, and napari's ``translate`` by the physical shift shows the frame
registered.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._shared.pool import n_workers, parallel_map
from ...io import SPATIAL_AXES
from ..engine._as_source import as_source
from ..engine._progress import Progress
from ._drift_table import make_table

if TYPE_CHECKING:
    import pandas as pd

#: the coarse estimate works on frames block-averaged down to this many voxels
ESTIMATE_VOXELS = 2**21
#: the refinement registers crops of about this many voxels
REFINE_VOXELS = 2**21
REFERENCES = ("first", "previous")


class DriftEstimation:
    """Each time point's translation against a reference frame; computed by ``run()``.

    Parameters
    ----------
    source : Source
        The engine's input (``ops.as_source`` of an image, result or array) with a ``t``
        axis and two or three spatial axes (plus, at most, a ``c`` axis).
    reference : {"first", "previous"}
        Register every frame onto the first one, or each onto the previous one and chain
        the shifts (a cumulative sum: for slow changes of the sample itself).
    level : int, optional
        The level of the input's display pyramid the coarse estimate reads (negative
        counts from the coarsest); default: the coarsest.
    refine_level : int or None
        The finer level the estimate is refined at (default 0: full resolution); None,
        or the same level, skips the refinement.
    upsample_factor : int
        Sub-pixel precision: 1 / upsample_factor of a pixel, at each level.
    channel : int, optional
        The channel registered when the input has a ``c`` axis (default 0).
    max_voxels : int
        The coarse level is block-averaged (finest axes first) to at most this many
        voxels per frame.
    refine_voxels : int
        The size of the refinement's crop.
    normalization : {None, "phase"}
        None (default): cross-correlation of the mean-subtracted frames; "phase": phase
        correlation proper, which whitens the spectrum, and so the camera noise: on
        noisy light-sheet frames of smooth nuclei it is the less precise.
    """

    def __init__(self, source, *, reference: str = "first", level: int | None = None,
                 refine_level: int | None = 0, upsample_factor: int = 20,
                 channel: int | None = None, max_voxels: int = ESTIMATE_VOXELS,
                 refine_voxels: int = REFINE_VOXELS, normalization: str | None = None) -> None:
        if normalization not in (None, "phase"):
            raise ValueError(f"normalization must be None or 'phase' (got {normalization!r})")
        self.normalization = normalization
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))} "
                             f"(got {reference!r})")
        if int(upsample_factor) != upsample_factor or upsample_factor < 1:
            raise ValueError(f"upsample_factor must be an integer >= 1 (got {upsample_factor!r})")
        axes = source.axes
        if "t" not in axes:
            raise ValueError(f"drift needs a time axis 't'; the data has axes {axes!r}")
        spatial = "".join(a for a in axes if a in SPATIAL_AXES)
        others = [a for a in axes if a not in spatial and a not in "tc"]
        if len(spatial) not in (2, 3) or others:
            raise ValueError(f"drift registers 2-D (yx) or 3-D (zyx) frames of a series; the "
                             f"data has axes {axes!r}")
        self.source = source
        self.axes = spatial
        self.spatial = tuple(axes.index(a) for a in spatial)
        self.n_t = int(source.shape[axes.index("t")])
        if "c" in axes:
            n_c = source.shape[axes.index("c")]
            channel = 0 if channel is None else int(channel)
            if not 0 <= channel < n_c:
                raise ValueError(f"channel must be in 0..{n_c - 1} (got {channel})")
        self.channel = channel
        levels = list(getattr(source, "display_levels", None) or [source])
        self.levels = levels
        self.level = self._level_index(len(levels) - 1 if level is None else level, "level")
        self.refine_level = (None if refine_level is None
                             else self._level_index(refine_level, "refine_level"))
        if self.refine_level is not None and self.refine_level > self.level:
            raise ValueError(f"refine_level ({refine_level}) must be a finer level than level "
                             f"({level}): a lower index")
        if self.refine_level == self.level:
            self.refine_level = None
        self.reference = reference
        self.upsample_factor = int(upsample_factor)
        self.max_voxels = int(max_voxels)
        self.refine_voxels = int(refine_voxels)
        self.table: pd.DataFrame | None = None
        self._lock = threading.Lock()

    def _level_index(self, k: int, name: str) -> int:
        n = len(self.levels)
        if not -n <= int(k) < n:
            raise ValueError(f"{name} must be in {-n}..{n - 1} for this input's {n} levels "
                             f"(got {k})")
        return int(k) % n

    @property
    def done(self) -> bool:
        return self.table is not None

    def __repr__(self) -> str:
        state = f"{len(self.table)} shifts" if self.done else "not run"
        return (f"DriftEstimation(t={self.n_t}, axes={self.axes!r}, reference="
                f"{self.reference!r}, level={self.level}, refine_level={self.refine_level}, "
                f"{state})")

    # ------------------------------------------------------------------ reading
    def _spacing(self, k: int) -> np.ndarray:
        scale = self.levels[k].scale
        return np.array([float(scale[a]) for a in self.spatial])

    def _read(self, k: int, t: int, box=None, raw: bool = False) -> np.ndarray:
        """Frame ``t`` of level ``k`` (its spatial axes only; ``box``: a crop) as float32
        (``raw``: in its own dtype)."""
        src = self.levels[k]
        region = []
        for a, letter in enumerate(src.axes):
            if letter == "t":
                region.append(slice(t, t + 1))
            elif letter == "c":
                region.append(slice(self.channel, self.channel + 1))
            elif box is not None:
                region.append(box[self.spatial.index(a)])
            else:
                region.append(slice(0, src.shape[a]))
        values = np.asarray(src.read(tuple(region)))
        keep = tuple(0 if a not in self.spatial else slice(None) for a in range(values.ndim))
        return values[keep] if raw else values[keep].astype(np.float32, copy=False)

    def _bins(self) -> tuple[int, ...]:
        """Integer block-mean factors for the coarse level: the finest axis (in physical
        size) is halved first, until a frame has at most ``max_voxels``."""
        shape = [self.levels[self.level].shape[a] for a in self.spatial]
        size = list(self._spacing(self.level))
        bins = [1] * len(shape)
        while math.prod(n // b for n, b in zip(shape, bins, strict=True)) > self.max_voxels:
            open_axes = [i for i in range(len(shape)) if shape[i] // (bins[i] * 2) >= 8]
            if not open_axes:
                break
            i = min(open_axes, key=lambda i: (size[i] * bins[i], -shape[i]))
            bins[i] *= 2
        return tuple(bins)

    def _coarse(self, t: int, bins) -> np.ndarray:
        """Frame ``t`` at the coarse level, block-averaged by ``bins``, mean subtracted."""
        frame = self._read(self.level, t, raw=True)
        for axis, b in enumerate(bins):
            while b > 1:  # halving by pairwise sums: far cheaper than a reshaped mean
                n = frame.shape[axis] // 2 * 2
                lead = (slice(None),) * axis
                even = frame[(*lead, slice(0, n, 2))].astype(np.float32)
                even += frame[(*lead, slice(1, n, 2))]
                frame, b = even, b // 2
        frame = frame.astype(np.float32, copy=False)
        return frame - np.float32(frame.mean())

    # ------------------------------------------------------------------ the job
    def run(self, progress=None, cancel: threading.Event | None = None) -> pd.DataFrame:
        """Estimate every frame's shift.

        Parameters
        ----------
        progress : bool or callable, optional
            True for a bar, or ``progress(done, total)`` (frames).
        cancel : threading.Event, optional
            When set, the job stops before its next frame and raises ``Cancelled``;
            ``table`` stays None.

        Returns
        -------
        pandas.DataFrame
            The shift table (see the module's description); also kept as ``table``.
        """
        from scipy import fft

        bar = Progress(self.n_t, progress, cancel, desc="drift")
        bins = self._bins()
        coarse_size = self._spacing(self.level) * np.array(bins)
        ffts: dict[int, np.ndarray] = {}
        unrefined: list[int] = []  # time points whose refinement was rejected

        def transform(t: int) -> np.ndarray:
            bar.check()
            return fft.fftn(self._coarse(t, bins))

        try:
            ffts[0] = transform(0)
            box = self._refine_box(ffts[0], bins) if self.refine_level is not None else None
            pair = np.zeros((self.n_t, len(self.axes)))  # physical, frame onto its reference
            bar.step()
            batch = max(1, n_workers())
            for start in range(1, self.n_t, batch):
                ts = list(range(start, min(self.n_t, start + batch)))
                for t, f in zip(ts, parallel_map(transform, ts), strict=True):
                    ffts[t] = f

                def register(t: int) -> np.ndarray:
                    bar.check()
                    ref = 0 if self.reference == "first" else t - 1
                    shift = self._phase(ffts[ref], ffts[t], space="fourier") * coarse_size
                    if box is not None:
                        refined = self._refine(ref, t, shift, box, coarse_size)
                        if refined is None:
                            unrefined.append(t)
                        else:
                            shift = refined
                    bar.step()
                    return shift

                for t, shift in zip(ts, parallel_map(register, ts), strict=True):
                    pair[t] = shift
                for t in [t for t in ffts if t != 0 and t < ts[-1]]:
                    del ffts[t]  # only the first frame's and the last one's are needed again
            physical = np.cumsum(pair, axis=0) if self.reference == "previous" else pair
        finally:
            bar.close()
        spacing0 = self._spacing(0)
        units = [self.source.units[a] for a in self.spatial]
        self.table = make_table(
            range(self.n_t), physical / spacing0, spacing0, units,
            self.axes, reference=self.reference, level=self.level,
            refine_level=self.refine_level, upsample_factor=self.upsample_factor,
            bins=list(bins), unrefined=sorted(unrefined))
        return self.table

    def _phase(self, ref, moving, space: str = "real") -> np.ndarray:
        from skimage.registration import phase_cross_correlation

        shift, _, _ = phase_cross_correlation(ref, moving, upsample_factor=self.upsample_factor,
                                              space=space, normalization=self.normalization)
        return np.asarray(shift, dtype=np.float64)

    def _refine_box(self, first_fft: np.ndarray, bins) -> tuple[np.ndarray, np.ndarray]:
        """The refinement crop (centre and size, in pixels of the refine level): about
        ``refine_voxels``, centred on the first frame's content (its brightness above the
        median, weighted)."""
        from scipy import fft

        coarse = np.real(fft.ifftn(first_fft)).astype(np.float32)
        weight = np.clip(coarse - np.median(coarse), 0, None)
        total = float(weight.sum())
        shape = np.array([self.levels[self.refine_level].shape[a] for a in self.spatial])
        if total > 0:
            grids = np.indices(weight.shape, sparse=True)
            centroid = np.array([float((weight * g).sum()) / total for g in grids])
            physical = (centroid + 0.5) * self._spacing(self.level) * np.array(bins)
            centre = physical / self._spacing(self.refine_level)
        else:
            centre = shape / 2
        factor = min(1.0, (self.refine_voxels / float(np.prod(shape))) ** (1 / len(shape)))
        size = np.minimum(shape, np.maximum(16, np.round(shape * factor))).astype(int)
        return centre, size

    def _refine(self, ref_t: int, t: int, coarse: np.ndarray, box,
                coarse_size: np.ndarray) -> np.ndarray | None:
        """The physical shift of frame ``t`` onto ``ref_t`` from crops at the refine level:
        the frame's crop is moved by the coarse estimate, rounded, so the residual that
        phase correlation finds is small. None when the residual is larger than a coarse
        voxel: the crops did not match (the content changed more than it moved), and the
        coarse estimate is kept."""
        k = self.refine_level
        spacing = self._spacing(k)
        shape = np.array([self.levels[k].shape[a] for a in self.spatial])
        centre, size = box
        offset = -np.round(coarse / spacing).astype(int)  # moving crop = reference + offset
        offset = np.clip(offset, -(shape - 16), shape - 16)
        size = np.minimum(size, shape - np.abs(offset))
        lo = np.round(centre - size / 2).astype(int)
        lo = np.clip(lo, np.maximum(0, -offset), shape - size - np.maximum(0, offset))
        ref_box = [slice(int(a), int(a + n)) for a, n in zip(lo, size, strict=True)]
        mov_box = [slice(int(a + o), int(a + o + n))
                   for a, o, n in zip(lo, offset, size, strict=True)]
        ref = self._read(k, ref_t, ref_box)
        moving = self._read(k, t, mov_box)
        residual = self._phase(ref - ref.mean(), moving - moving.mean())
        shift = (residual - offset) * spacing
        if np.any(np.abs(shift - coarse) > np.maximum(coarse_size, spacing) + spacing):
            return None
        return shift


def estimate_drift(data, *, reference: str = "first", level: int | None = None,
                   refine_level: int | None = 0, upsample_factor: int = 20,
                   channel: int | None = None, data_axes: str | None = None,
                   progress=None, cancel: threading.Event | None = None,
                   **options: Any) -> pd.DataFrame:
    """Estimate each time point's translation against a reference frame.

    Phase correlation (``skimage.registration.phase_cross_correlation``, sub-pixel by
    ``upsample_factor``) on a coarse level, refined on a crop at ``refine_level``. The
    job reads each frame once per level, in parallel; ``DriftEstimation`` is the same job
    as an object, to ``run(progress=..., cancel=...)`` later (the widget does).

    Parameters
    ----------
    data
        A time series: a ``LazyImage``, a lazy result, napari layer data, a dask, zarr or
        numpy array with a ``t`` axis and 2-D (yx) or 3-D (zyx) frames.
    reference : {"first", "previous"}
        Register onto the first frame, or onto the previous one with the shifts chained.
    level : int, optional
        The display level of the coarse estimate (default: the coarsest).
    refine_level : int or None
        The level it is refined at (default 0, full resolution); None: no refinement.
    upsample_factor : int
        Sub-pixel precision, 1 / upsample_factor of a pixel.
    channel : int, optional
        The channel to register when there is a ``c`` axis (default 0).
    data_axes : str, optional
        Axis letters of a plain array (default: guessed from its dimensions).
    progress : bool or callable, optional
        True for a bar, or ``progress(done, total)``.
    cancel : threading.Event, optional
        Stops the job (``Cancelled`` is raised).
    **options
        ``max_voxels``, ``refine_voxels`` and ``normalization`` of ``DriftEstimation``.

    Returns
    -------
    pandas.DataFrame
        One row per time point: ``t``, ``dz``, ``dy``, ``dx`` in physical units (no ``dz``
        for 2-D frames) and ``dz_px``, ``dy_px``, ``dx_px`` in pixels of level 0: the
        shift that registers the frame onto the reference (``scipy.ndimage.shift(frame,
        shift)``; the sample drifted by minus it). ``save_shifts`` writes it as CSV, and
        ``apply("shift_frames", data, shifts=table)`` corrects the series lazily.

    Raises
    ------
    ValueError
        For data without a time axis, or a bad parameter (named).
    """
    job = DriftEstimation(as_source(data, data_axes), reference=reference, level=level,
                          refine_level=refine_level, upsample_factor=upsample_factor,
                          channel=channel, **options)
    return job.run(progress=progress, cancel=cancel)


def drift_job(data, *, data_axes: str | None = None, **params: Any) -> DriftEstimation:
    """``DriftEstimation`` of ``data`` (any input ``apply`` takes), not run yet.

    Parameters
    ----------
    data
        As for ``estimate_drift``.
    data_axes : str, optional
        Axis letters of a plain array.
    **params
        ``reference``, ``level``, ``refine_level``, ``upsample_factor``, ``channel``,
        ``max_voxels``, ``refine_voxels``, ``normalization``.

    Returns
    -------
    DriftEstimation
        ``run(progress=..., cancel=...)`` returns the shift table.
    """
    return DriftEstimation(as_source(data, data_axes), **params)



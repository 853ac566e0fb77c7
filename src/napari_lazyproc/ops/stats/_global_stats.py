"""Global statistics of a lazy input: Otsu, Li and triangle thresholds, rescale percentiles.

- ``"whole"`` (precision "exact", or ``sample="exact"``): a job over every chunk, read in
  parallel on the worker pool, with progress and cancellation, equal to scikit-image's
  ``threshold_otsu`` / ``threshold_li`` / ``threshold_triangle`` and ``numpy.percentile``
  on the whole in-memory array, bitwise: an exact histogram merged over chunks (integers:
  one bin per value; floats: a first pass for min and max, then numpy's 256 bins), and a
  radix selection for percentiles. Li on a float image iterates over the voxels' values,
  so it is computed by scikit-image on the whole array gathered in memory up to
  ``GATHER_BYTES``; above that, each iteration sums over the chunks in float64, which is
  close to but not bitwise scikit-image (it sums float32 in numpy's pairwise order).
- ``"sampled"`` (precision "fast"): the same functions on a bounded sample
  (``sample_regions``), which may miss what lies between the planes it reads.

A statistic is kept by the input's identity (its token and, when it has one, the stamp
of its whole region), so every pyramid level and every new result of the same input and
parameters share one computation, and a rewritten input computes anew.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
from dask.base import tokenize

from ..._shared.pool import in_worker, parallel_map
from ..engine._cache import CACHE
from ..engine._progress import Cancelled, Progress
from ._histogram import (
    SAMPLE_VOXELS,
    ValueCounts,
    chunk_sample_regions,
    float_counts,
    float_edges,
    li,
    otsu,
    sample_regions,
    source_chunk_regions,
    triangle,
)
from ._percentiles import Selection, from_keys, key_bits, lerp, ranks_for, to_keys

#: "chunks": the sample as whole chunks (``chunk_sample_regions``), for a preview of
#: an input chunked deeper than a plane
WHOLE, SAMPLED, CHUNKS = "whole", "sampled", "chunks"
KINDS = ("otsu", "li", "triangle", "percentiles")
#: a float image up to this many bytes is gathered for Li (scikit-image's own iteration)
GATHER_BYTES = 2**29
#: the statistics kept (each a few numbers), most recently used last
KEEP = 256

_done: OrderedDict = OrderedDict()
_running: dict = {}
_lock = threading.Lock()


def mode_for(source, whole: bool) -> str:
    """"whole" when asked for, or when the sample would read every voxel anyway."""
    return WHOLE if whole or math.prod(source.shape) <= SAMPLE_VOXELS else SAMPLED


def preview_mode_for(source, whole: bool) -> str:
    """``mode_for``, but a sample of whole chunks where the input is chunked deeper than a
    plane along an outer axis (a preview's first view waits for it: the plane sample
    decodes tens of times the voxels it uses there)."""
    mode = mode_for(source, whole)
    chunks = source.chunks
    if mode == SAMPLED and chunks and len(chunks) > 2 and any(
            max(c) > 1 for c in chunks[:-2]):
        return CHUNKS
    return mode


def whole_region(source) -> tuple[slice, ...]:
    return tuple(slice(0, int(n)) for n in source.shape)


def stats_key(source, kind: str, mode: str, q=None) -> tuple:
    """The input's identity (token, stamp of the whole region) and what is computed."""
    stamp = getattr(source, "stamp", None)  # a digest: a stamp may hold a stat per chunk
    return (source.token, tokenize(stamp(whole_region(source))) if callable(stamp) else None,
            kind, mode, None if q is None else tuple(float(v) for v in q))


class _Running:
    """A statistic being computed: its callers wait for ``done``; any caller's
    ``cancel`` stops it, and every caller's ``progress(done, total)`` hears of it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None
        self.cancels: list[threading.Event] = []
        self.listeners: list = []

    def is_set(self) -> bool:  # the job's cancel event: any of its callers'
        return any(e.is_set() for e in self.cancels)

    def progress(self, done: int, total: int) -> None:
        for listener in list(self.listeners):
            listener(done, total)

    def join(self, progress, cancel) -> None:
        if cancel is not None:
            self.cancels.append(cancel)
        if callable(progress):
            self.listeners.append(progress)


def statistic(source, kind: str, mode: str = WHOLE, q=None, progress=None, cancel=None,
              stale=None):
    """The statistic ``kind`` of ``source`` (a threshold, or the percentiles ``q``),
    computed once per input identity; callers of a running one wait for it.

    ``progress``: True for a bar, or ``f(done, total)``. ``cancel`` stops the job
    (``Cancelled``; nothing is kept). ``stale`` (a display read's event) only stops this
    caller's wait: the job then runs on a thread of its own and goes on, so the next
    read finds it done or running instead of starting it over. A worker-pool task
    computes on its own (serially) rather than hold a pool thread the job may need.
    """
    if math.prod(source.shape) == 0:  # scikit-image and numpy fail on it obscurely
        raise ValueError(f"{kind}: the image {tuple(source.shape)} holds no voxel; a "
                         f"whole-image statistic needs at least one")
    key = stats_key(source, kind, mode, q)
    while True:
        with _lock:
            if key in _done:
                _done.move_to_end(key)
                return _done[key]
            job = _running.get(key)
            mine = job is None
            if mine:
                job = _running[key] = _Running()
            elif not in_worker():
                job.join(progress, cancel)
        if not mine and in_worker():
            return GlobalStats(source, kind, mode, q).run(progress, cancel)
        if mine:
            job.join(progress, cancel)
            _start(job, key, GlobalStats(source, kind, mode, q),
                   True if progress is True else job.progress,
                   detach=stale is not None and cancel is None and not in_worker())
        while not job.done.wait(0.05):
            for event in (cancel, stale):
                if event is not None and event.is_set():
                    raise Cancelled("cancelled")
        if job.error is None:
            return job.value
        if mine or not isinstance(job.error, Cancelled) or stale is not None or (
                cancel is not None and cancel.is_set()):
            raise job.error
        # another caller cancelled it: this one (a script, another job) computes it


def _start(job: _Running, key, stats: GlobalStats, progress, detach: bool) -> None:
    def work():
        try:
            job.value = stats.run(progress, job)
            with _lock:
                _done[key] = job.value
                while len(_done) > KEEP:
                    _done.popitem(last=False)
        except BaseException as exc:  # told to the callers waiting
            job.error = exc
        finally:
            with _lock:
                _running.pop(key, None)
            job.done.set()

    if detach:
        threading.Thread(target=work, daemon=True, name="lazyproc-stats").start()
    else:
        work()


def known(result) -> bool:
    """Whether the statistic ``result``'s operation needs (its ``prepare`` names it as
    ``statistic = (kind, q)``) is computed already, or not needed. By the
    input's token only: a stamp may stat every chunk file, too slow for the GUI thread
    that asks (a rewritten input's statistic is then computed by its first read)."""
    what = getattr(result.op.prepare, "statistic", None)
    if result.statistics is None or what is None:
        return True
    tail = (what[0], result.statistics, None if what[1] is None else
            tuple(float(v) for v in what[1]))
    token = result.source.token
    with _lock:
        return any(k[0] == token and k[2:] == tail for k in _done)


def clear() -> None:
    """Forget every statistic computed (they are recomputed when asked for)."""
    with _lock:
        _done.clear()


class GlobalStats:
    """One global statistic of ``source`` as a job: ``run(progress, cancel)``."""

    def __init__(self, source, kind: str, mode: str = WHOLE, q=None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown statistic {kind!r}; one of {KINDS}")
        self.source, self.kind, self.mode = source, kind, mode
        self.q = tuple(q) if q is not None else (0.1, 99.9)
        self.dtype = np.dtype(source.dtype)
        self.regions = (source_chunk_regions(source) if mode == WHOLE
                        else chunk_sample_regions(source) if mode == CHUNKS
                        else sample_regions(source.shape))
        self._kept: dict | None = None

    # ------------------------------------------------------------------ passes
    def _read(self, i: int) -> np.ndarray:
        """The values of region ``i`` (from the first pass's copy when it was kept)."""
        if self._kept is not None and i in self._kept:
            return self._kept[i]
        return self._load(i)

    def _load(self, i: int) -> np.ndarray:
        return np.asarray(self.source.read(self.regions[i]))

    def _pass(self, fn, bar: Progress, keep: bool = False) -> list:
        """``fn(values)`` for every region, in parallel; ``keep``: hold the values for
        the next passes when they fit a quarter of the chunk cache (not read again)."""
        nbytes = math.prod(self.source.shape) * self.dtype.itemsize
        if keep and self._kept is None and nbytes <= CACHE.max_bytes // 4:
            self._kept = {}

        def one(i):
            bar.check()
            values = self._read(i)
            if self._kept is not None:
                self._kept[i] = values
            out = fn(values)
            bar.step()
            return out

        return parallel_map(one, list(range(len(self.regions))))

    def run(self, progress=None, cancel=None):
        """Compute it. ``progress``: True for a bar, or ``f(done, total)``; ``cancel``:
        a threading.Event (then ``Cancelled`` is raised and nothing is kept)."""
        bar = Progress(len(self.regions), progress, cancel, desc=self.kind)
        try:
            if self.mode != WHOLE:
                return self._sampled(bar)
            if self.kind == "percentiles":
                return self._percentiles(bar)
            if self.dtype.kind in "biu":
                counts = ValueCounts()
                self._pass(counts.add, bar)
                hist = counts.histogram()
                return {"otsu": otsu, "triangle": triangle, "li": li}[self.kind](*hist)
            return self._float_threshold(bar)
        finally:
            self._kept = None
            bar.close()

    def _gather(self, bar: Progress) -> np.ndarray:
        """The regions' values in one 1-D array, in C order for the whole array."""
        if self.mode == WHOLE:
            out = np.empty(self.source.shape, self.dtype)

            def put(i):
                bar.check()
                out[self.regions[i]] = self._read(i)
                bar.step()

            parallel_map(put, list(range(len(self.regions))))
            return out.ravel()
        return np.concatenate(self._pass(np.ravel, bar)) if self.regions else \
            np.empty(0, self.dtype)

    def _sampled(self, bar: Progress):
        from skimage import filters

        values = self._gather(bar)
        if self.kind == "percentiles":
            return tuple(float(v) for v in np.percentile(values, self.q))
        if self.dtype.kind == "f":
            values = values[np.isfinite(values)]
        fn = {"otsu": filters.threshold_otsu, "li": filters.threshold_li,
              "triangle": filters.threshold_triangle}[self.kind]
        return float(fn(values))

    # ------------------------------------------------------------------ floats
    def _extent(self, bar: Progress):
        """Min and max of the finite values (numpy scalars of the dtype) and their count."""
        def extent(v):
            v = v[np.isfinite(v)]
            return (v.min(), v.max(), v.size) if v.size else None

        parts = [p for p in self._pass(extent, bar, keep=True) if p is not None]
        if not parts:
            raise ValueError(f"threshold_{self.kind}: the image has no finite value")
        lo = min(p[0] for p in parts)
        hi = max(p[1] for p in parts)
        return self.dtype.type(lo), self.dtype.type(hi), sum(p[2] for p in parts)

    def _float_threshold(self, bar: Progress) -> float:
        if self.kind == "li" and math.prod(self.source.shape) * self.dtype.itemsize \
                <= GATHER_BYTES:
            from skimage.filters import threshold_li

            return float(threshold_li(self._gather(bar)))
        lo, hi, n = self._extent(bar)
        if lo == hi:  # skimage returns the (constant) first voxel
            return float(lo)
        if self.kind == "li":
            return self._li_chunked(bar, lo, n)
        bar.extend(len(self.regions))
        edges = float_edges(lo, hi)
        counts = np.zeros(len(edges) - 1, np.int64)
        merge = threading.Lock()

        def count(v):
            c = float_counts(v, lo, hi)
            with merge:
                counts[:] += c

        self._pass(count, bar)
        centers = (edges[:-1] + edges[1:]) / 2.0
        return otsu(counts, centers) if self.kind == "otsu" else triangle(counts, centers)

    def _li_chunked(self, bar: Progress, image_min, n: int) -> float:
        """threshold_li's iteration with each mean summed over the chunks in float64."""
        t = self.dtype.type

        def shifted(v):
            return v[np.isfinite(v)] - image_min

        def first(v):
            x = shifted(v)
            gaps = np.diff(np.unique(x))
            return float(np.sum(x, dtype=np.float64)), (gaps.min() if gaps.size else np.inf)

        bar.extend(len(self.regions))
        parts = self._pass(first, bar)
        # the smallest gap within a chunk: at least the whole image's smallest gap
        tolerance = min(p[1] for p in parts) / 2
        t_next = t(sum(p[0] for p in parts) / n)
        t_curr = -2 * tolerance
        while abs(t_next - t_curr) > tolerance:
            t_curr = t_next

            def sums(v, at=t_curr):
                x = shifted(v)
                fore = x > at
                return (float(np.sum(x[fore], dtype=np.float64)), int(fore.sum()),
                        float(np.sum(x[~fore], dtype=np.float64)), int((~fore).sum()))

            bar.extend(len(self.regions))
            s = np.sum(np.array(self._pass(sums, bar), dtype=np.float64), axis=0)
            mean_fore, mean_back = t(s[0] / s[1]), t(s[2] / s[3])
            if mean_back == 0.0:
                break
            t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
        return float(t_next + image_min)

    # ------------------------------------------------------------------ percentiles
    def _percentiles(self, bar: Progress) -> tuple[float, ...]:
        n = math.prod(self.source.shape)
        previous, nxt, gamma = ranks_for(n, self.q)
        select = Selection(set(previous.tolist()) | set(nxt.tolist()), key_bits(self.dtype), n)
        nan = [False]
        first = True
        while not select.done:
            select.start_pass()
            if not first:
                bar.extend(len(self.regions))

            def add(v):
                if v.dtype.kind == "f" and np.isnan(v).any():
                    nan[0] = True
                    return
                select.add(to_keys(v))

            self._pass(add, bar, keep=first)
            first = False
            if nan[0]:  # numpy: NaN for every percentile
                return tuple(float("nan") for _ in self.q)
            select.end_pass()
        values = {r: from_keys(np.array([k]), self.dtype)[0] for r, k in select.found.items()}
        a = np.array([values[r] for r in previous], self.dtype)
        b = np.array([values[r] for r in nxt], self.dtype)
        return tuple(float(v) for v in lerp(a, b, gamma))

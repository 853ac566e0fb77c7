"""A result's identity over a region (its ``stamp`` and cache ``_key``) and the values it
computes once from the whole input (a global threshold: ``prepared``), recomputed when
the input's bytes change."""

from __future__ import annotations

import threading
from typing import Any

from dask.base import tokenize

from ..._shared.regions import Region
from ...backend import get_backend
from ...io import reader_stamp
from ._wrap import input_boxes

#: whole-input values (a threshold) are checked against the input's stamp on every read
#: when that check costs under RECHECK_COST seconds, else at most every RECHECK_EVERY
RECHECK_COST = 0.002
RECHECK_EVERY = 1.0


def _takes(fn, name: str) -> bool:
    """Whether ``fn`` takes the keyword ``name`` (a ``prepare`` written as
    ``prepare(result)`` gets no progress or cancel)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class WholeInputValues:
    """Part of ``LazyResult`` (a mixin over its attributes)."""

    def prepared(self, progress=None, cancel: threading.Event | None = None,
                 stale: threading.Event | None = None) -> dict[str, Any]:
        """Values computed once from the whole input (e.g. a global threshold), computed
        again when the input's bytes change (see ``_input_changed``). Global statistics
        are a job kept by the input's identity (``ops._global_stats``): ``progress``:
        True for a bar or ``f(done, total)``; ``cancel``: an Event that stops the job
        (``Cancelled``); ``stale``: one that only stops waiting for it (a display read)."""
        if self.op.prepare is None:
            return {}
        if self.base is not None:  # one value for every level: a consistent pyramid
            return self.base.prepared(progress, cancel, stale)
        prepare = self.op.prepare
        given = (("progress", progress), ("cancel", cancel), ("stale", stale))
        extra = {k: v for k, v in given if v is not None and _takes(prepare, k)}
        with self._lock:
            changed = self._input_changed()  # the stamp is taken before the input is read
            if self._prepared is not None and not changed:
                return self._prepared
            if not _takes(prepare, "stale"):
                self._prepared = dict(prepare(self, **extra))
                return self._prepared
            self._prepared = None  # stale values are never served meanwhile
        # it shares its work itself (ops._global_stats, by the input's stamp): no lock
        # held while it runs, so a stale display read never waits here for another's job
        values = dict(prepare(self, **extra))
        with self._lock:
            self._prepared = values
            return values

    def _whole_stamp(self) -> tuple[str, float]:
        """A digest of the whole input's stamp, and what computing it cost (seconds)."""
        import time

        t0 = time.monotonic()
        whole = tuple(slice(0, n) for n in self.source.shape)
        return tokenize(reader_stamp(self.source, whole)), time.monotonic() - t0

    def _input_changed(self) -> bool:
        """Whether the whole input's stamp differs from the one the prepared values were
        made from (the caller holds ``_lock``). Checked on every read where that costs
        little (a stat per chunk file: under ``RECHECK_COST`` seconds), else at most
        every ``RECHECK_EVERY`` seconds (or a hundred times its cost)."""
        import time

        stamp, at, cost = self._prepared_check
        now = time.monotonic()
        if self._prepared is not None and cost > RECHECK_COST and \
                now - at < max(RECHECK_EVERY, 100 * cost):
            return False
        current, cost = self._whole_stamp()
        self._prepared_check = (current, now, cost)
        return stamp != current

    def _prepared_stamp(self):
        """The prepared values as a cache key sees them, never computing them and never
        waiting for them (the display thread asks): None before they exist; a changed
        input, where checking is cheap, is a value no entry holds; so is an expensive
        check that is due (the next read makes it, in ``prepared``)."""
        import time

        values = self._prepared
        if values is None:
            return None
        stamp, at, cost = self._prepared_check
        if cost <= RECHECK_COST:
            current, _ = self._whole_stamp()
            if current != stamp:
                return ("changed", current)
        elif time.monotonic() - at >= max(RECHECK_EVERY, 100 * cost):
            return ("unchecked", at)
        return tokenize(values)

    def stamp(self, region: Region) -> tuple:
        """What changes when the bytes ``region`` reads change: its input's stamp over
        the region grown by the halo, and the whole-input values it uses (a threshold)."""
        boxes = input_boxes(self._expanded(region), self.source.shape)  # wrap: the far edge
        inner = (reader_stamp(self.source, boxes[0]) if len(boxes) == 1
                 else tuple(reader_stamp(self.source, box) for box in boxes))
        if self.images:  # a mask is read over the same boxes
            inner = (inner, *(tuple(reader_stamp(image, box) for box in boxes)
                              for image in self.images.values()))
        if self.op.prepare is None:
            return inner
        return (inner, (self.base or self)._prepared_stamp())

    def _key(self, region: Region, *extra) -> tuple:
        """A cache key: the token, the backend computing it, the region and its stamp."""
        return (self.token, get_backend(), *extra, tuple((s.start, s.stop) for s in region),
                self.stamp(region))

"""Slow runs that tests wait for (a peer's whole test suite in a pytest subprocess), started
as soon as the session has collected the tests that need them and run on a thread beside
the rest of the suite: on CI's 2 cores the second core does them meanwhile.

A test is marked ``pytest.mark.background.with_args(fn)`` (``with_args``, or pytest takes
``fn`` for the function to mark; a module whose tests share a module-scoped fixture is
marked whole, ``pytestmark``, so that it stays in one piece when moved last), where
``fn(tmp: Path)`` does the run (``run`` in place of ``subprocess.run``, so that the run is
stopped if the session ends first) and returns its result; a fixture gets that result
with ``result(fn)``, which waits for it and raises what ``fn`` raised (a skip, a failed
assertion). Runs go one after another, in the order their tests were collected, and the
tests that wait for them run last (``order``), so the rest of the suite runs meanwhile.
A run no collected test needs never starts; ``result`` does a run not started yet at once.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_lock = threading.Lock()
_runs: dict[Callable, _Run] = {}
_procs: list[subprocess.Popen] = []
_stopping = threading.Event()


class _Run:
    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"lazyproc-{fn.__name__.strip('_')}-"))

    def __call__(self) -> None:
        try:
            self.value = self.fn(self.tmp)
        except BaseException as exc:  # noqa: BLE001 - raised again where the result is asked
            self.error = exc
        finally:
            self.done.set()


def _skipped(item) -> bool:
    """Whether ``item`` is marked to skip for sure (``skip``, or ``skipif(True, ...)``)."""
    return item.get_closest_marker("skip") is not None or any(
        mark.args and mark.args[0] is True for mark in item.iter_markers("skipif"))


def _needed(items) -> list[Callable]:
    """The runs the tests ``items`` need (those not skipped for sure), in collection order."""
    out: list[Callable] = []
    for item in items:
        for mark in () if _skipped(item) else item.iter_markers("background"):
            if mark.args[0] not in out:
                out.append(mark.args[0])
    return out


def order(items: list) -> None:
    """Put the tests that wait for a run last (stable otherwise), in place."""
    items.sort(key=lambda item: item.get_closest_marker("background") is not None)


def start(items) -> None:
    """Start, on one thread, the runs that ``items`` need (call once collected)."""
    with _lock:
        todo = [_Run(fn) for fn in _needed(items) if fn not in _runs]
        for run_ in todo:
            _runs[run_.fn] = run_
    if todo:
        threading.Thread(target=lambda: [r() for r in todo], daemon=True,
                         name="lazyproc-tests-background").start()


def result(fn: Callable):
    """What ``fn`` returned (waiting for its run; doing it now if never started)."""
    with _lock:
        run_ = _runs.get(fn)
        if run_ is None:
            run_ = _runs[fn] = _Run(fn)
            now = True
        else:
            now = False
    if now:
        run_()
    run_.done.wait()
    if run_.error is not None:
        raise run_.error
    return run_.value


def run(args: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)``, stopped by ``stop``."""
    if _stopping.is_set():
        raise RuntimeError("the test session ended before this run started")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)
    with _lock:
        _procs.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    finally:
        with _lock:
            _procs.remove(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def stop() -> None:
    """At the session's end: kill runs still going (the session stopped early) and remove
    their folders."""
    _stopping.set()
    with _lock:
        procs, runs = list(_procs), list(_runs.values())
    for proc in procs:
        proc.kill()
    for run_ in runs:
        run_.done.wait(10)
        shutil.rmtree(run_.tmp, ignore_errors=True)

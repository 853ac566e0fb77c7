"""Shared helpers for the benchmarks: timing, machine description, result tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(os.environ.get("LAZYPROC_BENCH_DATA", Path(__file__).parent / "_data"))


def machine() -> str:
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, "
            f"numpy {np.__version__}")


def timeit(fn: Callable[[], object], repeats: int = 5, setup: Callable[[], object] | None = None
           ) -> list[float]:
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall, busy CPU seconds of the whole machine, CPU seconds of this process and its
    finished children): the difference over a run is what other processes used."""
    import os
    import resource

    fields = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    mine = sum(getattr(resource.getrusage(who), f)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    return time.perf_counter(), busy, mine


def foreign_note(start: tuple[float, float, float]) -> str:
    """A line saying how much CPU other processes took while this benchmark ran."""
    import os

    wall, busy, mine = (b - a for a, b in zip(start, cpu_snapshot(), strict=True))
    other = max(0.0, busy - mine)
    cores = os.cpu_count() or 1
    return (f"Other processes (and VM steal) used {other:.0f} CPU-seconds while this benchmark "
            f"ran, {100 * other / (wall * cores):.0f}% of the {cores} cores over its "
            f"{wall:.0f} s.")


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"Code: git {head}{' with uncommitted changes in src/' if dirty else ''}."


def profile_rows(fn, top: int) -> list[list[str]]:
    """cProfile of one call of ``fn``: the ``top`` functions by own time, as table rows
    (function, calls, own ms, cumulative ms)."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    return [[f"`{path.rsplit('/', 1)[-1]}:{name}`", str(nc), f"{tt * 1000:.1f}",
             f"{ct * 1000:.1f}"]
            for (path, _line, name), (_cc, nc, tt, ct, _callers) in sorted(
                stats.stats.items(), key=lambda kv: -kv[1][2])[:top]]

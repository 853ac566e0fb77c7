"""What checking identity costs: the same reads with stamps taken, and with them off.

Data: the 128 x 1024 x 1024 uint16 zarr of ``bench_ops`` (chunks 32 x 256 x 256). Every
cached chunk and result is keyed by the stamps of what it read (a ``stat`` per chunk
file, ``io._identity``); the peer is the same engine with stamps switched off (every
stamp a constant: what the engine was before issue 23, which served stale data after a
file changed). Paths interleaved run by run, median of several.

Also: the same store passed as ``img.levels[0]`` (a dask array) and as the ``LazyImage``,
one source and one read path now (before, the dask array took a slower path).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from _common import code_version, cpu_snapshot, foreign_note, median, table
from bench_ops import Z, _fresh, make_data

REPEATS = 7
PLANES = 64


@contextmanager
def stamps(on: bool):
    from napari_lazyproc.ops.engine import _sources, _whole_values

    saved = _sources.reader_stamp, _whole_values.reader_stamp
    if not on:
        _sources.reader_stamp = _whole_values.reader_stamp = lambda reader, region: ()
    try:
        yield
    finally:
        _sources.reader_stamp, _whole_values.reader_stamp = saved


def first_plane(noise, given: str) -> float:
    import napari_lazyproc as lp

    img = lp.open_image(noise)
    data = img if given == "LazyImage" else img.levels[0]
    res = lp.apply("gaussian", data, sigma=2.0, axes="zyx")
    _fresh()
    t0 = time.perf_counter()
    np.asarray(res[Z])
    return time.perf_counter() - t0


def scrolling(noise) -> tuple[float, float]:
    import napari_lazyproc as lp

    res = lp.apply("gaussian", lp.open_image(noise), sigma=2.0)
    _fresh()
    np.asarray(res[32])
    lat = []
    for z in range(33, 33 + PLANES):
        t0 = time.perf_counter()
        np.asarray(res[z])
        lat.append(time.perf_counter() - t0)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 95))


def cached_plane(noise) -> float:
    """A plane of the file already in the cache: what the display pays per redraw."""
    import napari_lazyproc as lp

    src = lp.ops.as_source(lp.open_image(noise))
    np.asarray(src[Z])
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        np.asarray(src[Z])
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> str:
    noise, _ = make_data()
    start, version = cpu_snapshot(), code_version()
    runs: dict[str, list[float]] = {}
    for _ in range(REPEATS):
        for on in (True, False):
            tag = "stamps" if on else "no stamps"
            with stamps(on):
                runs.setdefault(f"first plane, {tag}", []).append(first_plane(noise, "LazyImage"))
                p50, p95 = scrolling(noise)
                runs.setdefault(f"scroll p50, {tag}", []).append(p50)
                runs.setdefault(f"scroll p95, {tag}", []).append(p95)
                runs.setdefault(f"cached plane, {tag}", []).append(cached_plane(noise))
        runs.setdefault("first plane, given img.levels[0]", []).append(
            first_plane(noise, "levels[0]"))
    t = {k: median(v) for k, v in runs.items()}
    rows = []
    for what in ("first plane", "scroll p50", "scroll p95", "cached plane"):
        on, off = t[f"{what}, stamps"], t[f"{what}, no stamps"]
        rows.append([what, f"{on * 1000:.1f} ms", f"{off * 1000:.1f} ms", f"{on / off:.2f}x"])
    given = t["first plane, given img.levels[0]"]
    first = t["first plane, stamps"]
    lines = ["## Identity checks (`bench_identity.py`)", "",
             f"Gaussian sigma=2 (fast) on the `bench_ops` zarr; median of {REPEATS} runs, "
             "stamps on and off interleaved (cache emptied before each first plane; "
             f"scrolling z+1 over {PLANES} planes after one plane).", "",
             table(["path", "stamps checked", "stamps off (peer)", "ratio"], rows), "",
             f"Target (issue 23): first plane and scrolling within 10 % of the engine "
             f"without identity checks: first plane {first / t['first plane, no stamps']:.2f}x, "
             f"scroll p50 {t['scroll p50, stamps'] / t['scroll p50, no stamps']:.2f}x, p95 "
             f"{t['scroll p95, stamps'] / t['scroll p95, no stamps']:.2f}x. A cached plane "
             f"of the file (the display's redraw: 16 chunk files stat'ed) costs "
             f"{(t['cached plane, stamps'] - t['cached plane, no stamps']) * 1000:.2f} ms "
             f"more.", "",
             f"One identity: the first plane given `img.levels[0]` (a dask array) takes "
             f"{given * 1000:.0f} ms, {given / first:.2f}x the LazyImage's (before issue 23 "
             f"the dask array was read through dask, at about 1.9x).", "",
             f"{foreign_note(start)} {version}"]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    from _common import machine

    print(machine())
    main()

"""The chunk cache: LRU by bytes, read-only values, and budgets that always restore the limit."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc.ops import CACHE, ChunkCache


def block(n_bytes: int, value: int = 0) -> np.ndarray:
    return np.full(n_bytes, value, np.uint8)


def test_evicts_the_least_recently_used_by_bytes():
    cache = ChunkCache(2500)
    for key in "abc":
        cache.put(key, block(1000))
    assert cache.get("a") is None and len(cache) == 2 and cache.nbytes == 2000
    assert cache.get("b") is not None  # b is now more recent than c
    cache.put("d", block(1000))
    assert cache.get("c") is None and cache.get("b") is not None and cache.get("d") is not None
    assert (cache.hits, cache.misses) == (3, 2)


def test_a_value_over_the_limit_is_not_stored_and_evicts_nothing():
    cache = ChunkCache(2000)
    cache.put("small", block(1000))
    cache.put("big", block(2001))
    assert cache.get("big") is None and cache.get("small") is not None


def test_replacing_a_key_counts_its_bytes_once():
    cache = ChunkCache(3000)
    cache.put("a", block(1000))
    cache.put("a", block(2000, 1))
    assert cache.nbytes == 2000 and len(cache) == 1 and cache.get("a")[0] == 1


def test_values_are_read_only_for_every_caller():
    cache = ChunkCache(2**20)
    value = np.arange(10)
    cache.put("k", value)
    with pytest.raises(ValueError, match="read-only"):
        cache.get("k")[0] = 99
    with pytest.raises(ValueError, match="read-only"):
        value[0] = 99
    assert cache.get("k")[0] == 0


def test_clear_keeps_the_limit():
    cache = ChunkCache(5000)
    cache.put("a", block(1000))
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.max_bytes == 5000
    assert (cache.hits, cache.misses) == (0, 0)


def test_a_budget_evicts_down_to_it_and_leaving_restores_the_limit():
    cache = ChunkCache(10_000)
    for key in "abcd":
        cache.put(key, block(2000))
    with cache.budget(3000):
        assert cache.max_bytes == 3000 and cache.nbytes <= 3000
        assert cache.get("d") is not None  # the most recent one stays
        cache.put("e", block(4000))  # over the budget: not stored
        assert cache.get("e") is None
    assert cache.max_bytes == 10_000
    cache.put("e", block(4000))
    assert cache.get("e") is not None


def test_a_budget_above_the_limit_never_raises_it():
    cache = ChunkCache(1000)
    with cache.budget(5000):
        assert cache.max_bytes == 1000
    assert cache.max_bytes == 1000


@pytest.mark.parametrize("first_out", ["larger", "smaller"])
def test_overlapping_budgets_in_threads_restore_the_right_limit(first_out):
    """Thread A holds 4000, thread B then 2000; whichever leaves first, the limit is the
    smallest budget still held, and the base once both have left."""
    cache = ChunkCache(10_000)
    steps = {name: threading.Event() for name in ("a_in", "b_in", "a_out", "b_out")}
    seen: dict[str, int] = {}

    def hold(budget: int, entered: str, leave: str) -> None:
        with cache.budget(budget):
            steps[entered].set()
            steps[leave].wait(5)
        seen[f"after {entered}"] = cache.max_bytes

    a = threading.Thread(target=hold, args=(4000, "a_in", "a_out"))
    b = threading.Thread(target=hold, args=(2000, "b_in", "b_out"))
    a.start()
    steps["a_in"].wait(5)
    assert cache.max_bytes == 4000
    b.start()
    steps["b_in"].wait(5)
    assert cache.max_bytes == 2000
    if first_out == "larger":
        steps["a_out"].set()
        a.join(5)
        assert cache.max_bytes == 2000  # B still holds its budget
        steps["b_out"].set()
        b.join(5)
    else:
        steps["b_out"].set()
        b.join(5)
        assert cache.max_bytes == 4000  # A still holds its budget
        steps["a_out"].set()
        a.join(5)
    assert cache.max_bytes == 10_000


def test_many_threads_entering_and_leaving_budgets_leave_the_base_limit():
    cache = ChunkCache(2**20)
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            budget = rng.randrange(1000, 2**21)
            with cache.budget(budget):
                cache.put((seed, rng.random()), block(rng.randrange(100, 3000)))
                if cache.max_bytes > budget:
                    errors.append(f"limit {cache.max_bytes} over the budget {budget}")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.max_bytes == 2**20 and cache.nbytes <= 2**20


def test_set_cache_bytes_during_a_budget_sets_the_limit_found_after_it():
    base = CACHE.base_bytes
    try:
        with CACHE.budget(1000):
            lp.set_cache_bytes(5000)
            assert CACHE.max_bytes == 1000
        assert CACHE.max_bytes == 5000
    finally:
        lp.set_cache_bytes(base)
    assert CACHE.max_bytes == base


def test_negative_limits_are_refused():
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        lp.set_cache_bytes(-1)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"), CACHE.budget(-1):
        pass


def test_concurrent_reads_of_the_same_chunk_read_it_once():
    """Two tiles of a plane share the chunks of their halos: asked at the same time, each
    chunk is read and decoded once, the second caller waiting for the first."""
    import threading
    import time
    from collections import Counter

    from napari_lazyproc._shared.pool import one_task
    from napari_lazyproc.ops import as_source

    data = np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64)
    reads: Counter = Counter()

    class SlowArray:  # a zarr-like chunked array whose reads take a while, counted
        shape, dtype, ndim, chunks = data.shape, data.dtype, 3, (8, 16, 16)
        store, path = "memory://slow", "slow"

        def __getitem__(self, key):
            reads[tuple((k.start, k.stop) for k in key)] += 1
            time.sleep(0.05)
            return data[key]

    source = as_source(SlowArray(), "zyx")
    CACHE.clear()
    regions = [(slice(0, 8), slice(16, 48), slice(0, 64)),
               (slice(0, 8), slice(16, 64), slice(0, 64))]
    out = [None, None]

    def read(i):  # as a tile does on a pool thread: its chunks one after another
        with one_task():
            out[i] = source.read(regions[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for region, values in zip(regions, out, strict=True):
        np.testing.assert_array_equal(values, data[region])
    assert reads and max(reads.values()) == 1, reads  # the 8 shared chunks too
    assert len(reads) == 12


def test_waiters_get_the_loaded_value_even_when_it_is_too_large_to_keep():
    import threading
    import time

    cache = ChunkCache(max_bytes=0)  # keeps nothing
    loads = []

    def load():
        loads.append(1)
        time.sleep(0.1)
        return np.ones(1000)

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get_or_load("k", load)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 4 and all(g.sum() == 1000 for g in got)
    assert len(cache) == 0


def test_a_failed_load_is_retried_by_the_next_caller_not_shared():
    cache = ChunkCache()
    with pytest.raises(OSError, match="flaky"):
        cache.get_or_load("k", lambda: (_ for _ in ()).throw(OSError("flaky")))
    assert cache.get_or_load("k", lambda: np.arange(3)).tolist() == [0, 1, 2]


def test_a_zarr_region_is_read_in_one_call_and_each_chunk_once(tmp_path, zarr_reads,
                                                               monkeypatch):
    """The chunks of a region not cached are read by one zarr call over their box (zarr
    then fetches and decodes them concurrently); chunks already cached are not read
    again, and each lands in the cache on its own."""
    import zarr

    from napari_lazyproc.ops import as_source

    data = np.arange(8 * 96 * 96, dtype=np.uint16).reshape(8, 96, 96)
    arr = zarr.create_array(tmp_path / "a.zarr", shape=data.shape, chunks=(4, 32, 32),
                            dtype=data.dtype)
    arr[:] = data
    arr = zarr.open_array(tmp_path / "a.zarr", mode="r")
    calls = []
    original = type(arr).__getitem__
    monkeypatch.setattr(type(arr), "__getitem__",
                        lambda self, key: calls.append(key) or original(self, key))
    source = as_source(arr, "zyx")
    CACHE.clear()
    zarr_reads.keys.clear()
    first = (slice(0, 8), slice(0, 64), slice(10, 96))  # 2 x 2 x 3 chunks
    np.testing.assert_array_equal(source.read(first), data[first])
    assert len(calls) == 1
    chunk_keys = zarr_reads.chunk_keys()
    assert len(chunk_keys) == 12 and len(set(chunk_keys)) == 12
    calls.clear()
    second = (slice(0, 8), slice(40, 96), slice(0, 96))  # half of it cached already
    np.testing.assert_array_equal(source.read(second), data[second])
    assert len(calls) == 1  # the 2 x 1 x 3 chunks not cached, in one box
    chunk_keys = zarr_reads.chunk_keys()
    assert len(chunk_keys) == 18 and len(set(chunk_keys)) == 18


def test_under_a_tight_budget_a_large_box_is_read_chunk_by_chunk(tmp_path, monkeypatch):
    """A box read in one call holds several times its bytes at once: under a cache budget
    (an export bounding its memory) a box over its share is read a chunk at a time."""
    import zarr

    from napari_lazyproc.ops import as_source

    data = np.arange(8 * 96 * 96, dtype=np.uint16).reshape(8, 96, 96)
    zarr.create_array(tmp_path / "a.zarr", shape=data.shape, chunks=(4, 32, 32),
                      dtype=data.dtype)[:] = data
    arr = zarr.open_array(tmp_path / "a.zarr", mode="r")
    calls = []
    original = type(arr).__getitem__
    monkeypatch.setattr(type(arr), "__getitem__",
                        lambda self, key: calls.append(key) or original(self, key))
    source = as_source(arr, "zyx")
    region = (slice(0, 8), slice(0, 64), slice(0, 96))  # 12 chunks, 96 KiB
    with CACHE.budget(16 * 96 * 2**10 - 1):
        np.testing.assert_array_equal(source.read(region), data[region])
    assert len(calls) == 12
    CACHE.clear()
    calls.clear()
    with CACHE.budget(16 * 96 * 2**10):
        np.testing.assert_array_equal(source.read(region), data[region])
    assert len(calls) == 1

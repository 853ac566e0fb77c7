"""Chunk decoding and encoding by zarrs (Rust, multi-threaded) where it can run them.

zarr-python decodes a call's chunks through its own asyncio pipeline; the ``zarrs``
package's pipeline does the same work 2-3x faster here, reading and writing (measured in
``benchmarks/bench_ops.py`` and ``bench_export.py``). It is used for arrays in local
stores (those it supports); remote stores, and anything zarrs cannot run (a codec,
dtype or byte order it lacks), stay with zarr-python's pipeline, values unchanged.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import warnings
from contextlib import contextmanager

#: zarr's config value that selects the zarrs pipeline
PIPELINE = "zarrs.ZarrsCodecPipeline"
_state = {"enabled": True}
#: zarr's config and the warnings filters are process-wide: one thread at a time swaps them
_config_lock = threading.Lock()


def available() -> bool:
    """Whether the zarrs pipeline is installed and switched on."""
    return _state["enabled"] and importlib.util.find_spec("zarrs") is not None


def set_enabled(on: bool) -> None:
    """Use zarrs where it can run (the default), or zarr-python's pipeline everywhere."""
    _state["enabled"] = bool(on)


def uses_zarrs(arr) -> bool:
    """Whether the zarr array ``arr`` decodes and encodes through zarrs."""
    return type(arr.async_array.codec_pipeline).__module__.startswith("zarrs")


def fast_codecs(arr):
    """``arr`` (a ``zarr.Array``) reading and writing its chunks through zarrs when it can:
    a local store, and metadata zarrs runs. Otherwise ``arr`` itself."""
    import zarr
    from zarr.storage import LocalStore

    if (not available() or not isinstance(arr.store, LocalStore) or uses_zarrs(arr)
            or not arr.dtype.isnative  # zarrs reads native byte order only
            or getattr(arr.metadata, "order", "C") != "C"):  # and C-ordered chunks only
        return arr
    # "unsupported by ZarrsCodecPipeline" warnings are ignored: impl is checked below
    with _config_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zarr.config.set({"codec_pipeline.path": PIPELINE}):
            fast = zarr.Array(zarr.AsyncArray(arr.metadata, arr.async_array.store_path,
                                              arr.async_array.config))
    impl = getattr(fast.async_array.codec_pipeline, "impl", None)
    return fast if impl is not None else arr


@contextmanager
def os_errors():
    """zarrs reports a failed file operation as ``RuntimeError("... (os error N)")``:
    raise it as the ``OSError`` zarr-python gives (a full disk is ENOSPC either way),
    zarrs' own text (which names the chunk) kept in the message."""
    try:
        yield
    except RuntimeError as exc:
        found = re.search(r"\(os error (\d+)\)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, str(exc)) from exc

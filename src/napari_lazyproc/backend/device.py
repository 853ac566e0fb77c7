"""The CuPy side of the engine: moving blocks, sizing tiles from free memory, OOM retries.

Nothing here imports CuPy at module import; every function imports it on first use.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

_state = {"budget": None}
_warned: set[str] = set()
_lock = threading.Lock()

#: device bytes a tile may use per input voxel byte: the block with its halo, the float
#: intermediates of separable passes and the output (measured on gaussian / median)
BYTES_FACTOR = 12
#: below this many voxels a tile is not split further: it goes to the CPU instead
MIN_TILE_VOXELS = 2**14


def array_module(array):
    """numpy or cupy, whichever holds ``array``."""
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def is_device(array) -> bool:
    """Whether ``array`` lives on the device (is a CuPy array).

    Parameters
    ----------
    array
        A numpy or CuPy array, or any other array-like.

    Returns
    -------
    bool
        True for a CuPy array, False for anything else.
    """
    return type(array).__module__.startswith("cupy")


def to_device(array):
    """``array`` on the device, as a CuPy array (a CuPy array is returned as it is).

    Parameters
    ----------
    array
        A numpy or CuPy array, or any array-like ``cupy.asarray`` accepts.

    Returns
    -------
    cupy.ndarray
        ``array`` itself if it is already on the device, else a copy there.
    """
    import cupy

    return array if is_device(array) else cupy.asarray(array)


def to_host(array) -> np.ndarray:
    """``array`` in host memory, as a numpy array (copied back when it is a CuPy array).

    Parameters
    ----------
    array
        A numpy or CuPy array, or any array-like.

    Returns
    -------
    numpy.ndarray
        The values of ``array`` on the host.
    """
    if is_device(array):
        return array.get()
    return np.asarray(array)


def set_budget(nbytes: int | None) -> None:
    """Cap the device memory one tile may use (None: what is free on the device)."""
    _state["budget"] = None if nbytes is None else int(nbytes)


def free_bytes() -> int:
    """Free device memory, counting what CuPy's pool holds but does not use."""
    import cupy

    free, _total = cupy.cuda.runtime.memGetInfo()
    pool = cupy.get_default_memory_pool()
    return int(free + pool.free_bytes())


def tile_voxels(itemsize: int) -> int:
    """How many voxels one GPU tile may hold, from the budget or half the free memory."""
    budget = _state["budget"]
    if budget is None:
        budget = free_bytes() // 2
    return max(MIN_TILE_VOXELS, int(budget // (BYTES_FACTOR * max(1, itemsize))))


def fits(n_voxels: int, itemsize: int) -> bool:
    """Whether a tile of ``n_voxels`` voxels fits the device memory budget.

    Parameters
    ----------
    n_voxels : int
        Voxels in the tile.
    itemsize : int
        Bytes per voxel of the input.

    Returns
    -------
    bool
        True when no budget is set (tiles are then sized from free memory), else whether
        ``BYTES_FACTOR`` bytes per input byte stay within the budget.
    """
    budget = _state["budget"]
    if budget is None:
        return True
    return n_voxels * BYTES_FACTOR * itemsize <= budget


def free_pool() -> None:
    """Give CuPy's cached blocks back to the device (when the backend is switched off)."""
    try:
        import cupy
    except ImportError:
        return
    cupy.get_default_memory_pool().free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` means the device ran out of memory.

    Parameters
    ----------
    exc : BaseException
        An exception raised while computing on the device.

    Returns
    -------
    bool
        True for CuPy's ``OutOfMemoryError``, a ``MemoryError`` or any error whose message
        says "out of memory"; False when CuPy is not installed.
    """
    try:
        import cupy
    except ImportError:  # pragma: no cover - only called on the GPU path
        return False
    return isinstance(exc, (cupy.cuda.memory.OutOfMemoryError, MemoryError)) or (
        "out of memory" in str(exc).lower()
    )


def warn_once(key: str, message: str) -> None:
    """Warn with ``message`` (a ``RuntimeWarning``) the first time ``key`` is seen.

    Parameters
    ----------
    key : str
        What the warning is about; later calls with the same key are silent.
    message : str
        The warning's text.
    """
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)

"""The chunk backend: numpy (scipy.ndimage) or CuPy (cupyx.scipy.ndimage).

As in dask-image, the backend follows the chunk type: an operation asks for the ndimage
module of the array it was given. ``set_backend`` chooses where chunks are computed; CuPy
is imported only when first asked for.
"""

from __future__ import annotations

import threading
from types import ModuleType

_state = threading.local()
#: the backend chunks are computed with now
_current = {"name": "numpy"}


def gpu_available() -> tuple[bool, str]:
    """Whether CuPy and a CUDA device are usable, and if not, why."""
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install 'napari-lazyproc[gpu]')"
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install raises many things
        return False, f"CuPy failed to import: {exc}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return False, f"no usable CUDA device: {exc}"
    if n < 1:
        return False, "no CUDA device found"
    return True, f"{n} CUDA device(s)"


def set_backend(name: str, memory_budget: int | None = None) -> None:
    """Compute chunks with ``"numpy"`` (default) or ``"cupy"``.

    ``memory_budget``: bytes of device memory one GPU tile may use (default: half of what
    is free, CuPy's pool included). Switching back to numpy frees CuPy's memory pool.
    """
    from . import device

    if name not in ("numpy", "cupy"):
        raise ValueError(f"backend must be 'numpy' or 'cupy', not {name!r}")
    if name == "cupy":
        ok, why = gpu_available()
        if not ok:
            raise RuntimeError(f"cannot use the cupy backend: {why}")
        device.set_budget(memory_budget)
    elif _current["name"] == "cupy":
        device.free_pool()
    _current["name"] = name


def get_backend() -> str:
    """The backend chunks are computed with now.

    Returns
    -------
    str
        ``"numpy"`` (the default) or ``"cupy"``, as last chosen with ``set_backend``.
    """
    return _current["name"]


def ndimage_for(array) -> ModuleType:
    """scipy.ndimage for numpy arrays; for CuPy arrays cupyx.scipy.ndimage, its correlation
    filters summed in double as scipy sums them (``backend.gpu_ndimage``)."""
    if type(array).__module__.startswith("cupy"):
        from . import gpu_ndimage

        return gpu_ndimage
    import scipy.ndimage as ndi

    return ndi


def array_module(array):
    """numpy or cupy, whichever holds ``array``."""
    from .device import array_module as module

    return module(array)


__all__ = ["array_module", "get_backend", "gpu_available", "ndimage_for", "set_backend"]

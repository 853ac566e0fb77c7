"""A user's kernel (``weights``, a ``footprint``): the parameter that takes it, and the
array it stands for. A nested list (what a pipeline's JSON holds), the path of a ``.npy``
file (kept as given, so the JSON stores the path), or, from Python, an array (stored as
a nested list). Used by the operations (``_generic``) and the fast kernels."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine._params import Param


def _nested(values) -> Any:
    """A nested list as nested tuples (hashable; JSON writes them as lists)."""
    return tuple(_nested(v) for v in values) if isinstance(values, list) else values


@functools.lru_cache(maxsize=32)
def _load_npy(path: str, stamp: tuple[int, int]) -> np.ndarray:
    """The array in ``path``; ``stamp`` (mtime, size) makes a rewritten file load again."""
    out = np.load(path, allow_pickle=False)
    if not isinstance(out, np.ndarray):
        raise ValueError("it holds several arrays (an .npz), not one")
    out.setflags(write=False)  # shared between blocks
    return out


@functools.lru_cache(maxsize=32)
def _from_nested(value: tuple) -> np.ndarray:
    arr = np.asarray(value)
    arr.setflags(write=False)  # shared between blocks
    return arr


def _checked(where: str, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind == "U":  # complex numbers as JSON holds them: "(1+2j)"
        try:
            arr = np.char.replace(arr, " ", "").astype(np.complex128)
        except ValueError:
            pass
    if arr.dtype.kind not in "biufc":
        raise ValueError(f"{where} must be an array of numbers (got {what} of dtype "
                         f"{arr.dtype})")
    if arr.size == 0:
        raise ValueError(f"{where} is empty (got {what} of shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{where} holds NaN or infinite values (got {what})")
    return arr


def kernel_array(value, where: str = "kernel") -> np.ndarray:
    """The array a kernel value stands for (a ``.npy`` path or a nested list).

    Parameters
    ----------
    value : str, os.PathLike, sequence or numpy.ndarray
        A validated kernel value (see ``kernel_param``), or any of its inputs.
    where : str
        The operation and parameter, for error messages (``"convolve: weights"``).

    Returns
    -------
    numpy.ndarray
        The kernel, as stored or listed.

    Raises
    ------
    ValueError
        A missing or unreadable file, not an array of numbers, empty, NaN or infinite
        values; the message starts with ``where``.
    """
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        try:
            st = os.stat(path)
        except OSError:
            raise ValueError(f"{where} file {path!r} does not exist; give a .npy file, "
                             f"or the kernel as a nested list") from None
        try:
            arr = _load_npy(path, (st.st_mtime_ns, st.st_size))
        except Exception as exc:  # noqa: BLE001 - numpy says why it is not an array
            raise ValueError(f"{where} file {path!r} is not a .npy array ({exc})") from None
        return _checked(where, arr, f"the file {path!r}")
    if hasattr(value, "device") and hasattr(value, "get"):  # a CuPy array
        value = value.get()
    try:  # nested tuples (a validated kernel) are converted once, not per block
        arr = _from_nested(value) if isinstance(value, tuple) else np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a nested list of numbers, a .npy path or an "
                         f"array (got a ragged or mixed {type(value).__name__})") from None
    return _checked(where, arr, f"a {type(value).__name__}")


def kernel_param(op: str, name: str, help: str, optional: bool = True) -> Param:
    """A kernel parameter: a nested list, a ``.npy`` path, or (from Python) an array.

    The validated value is the path as given (so a pipeline's JSON stores the path) or
    the kernel as nested tuples (JSON lists); a text starting with ``[`` is read as JSON
    (what the widget's text field and the command line give).
    """
    where = f"{op}: {name}"

    def kernel(value):
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where} is not a valid nested list ({exc})") from None
        if isinstance(value, (str, os.PathLike)):
            kernel_array(value, where)  # exists, loads, finite
            return os.fspath(value)
        if isinstance(value, (Sequence, np.ndarray)) or hasattr(value, "__array__"):
            return _nested(kernel_array(value, where).tolist())
        raise ValueError(f"{where} must be a nested list of numbers, a .npy path or an "
                         f"array (got {type(value).__name__})")

    return Param(name, kernel, None, optional=optional, quantity="kernel", help=help)

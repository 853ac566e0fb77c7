"""What makes a path an HDF5 file, and opening one with an error that names it."""

from __future__ import annotations

from ._errors import ImageReadError
from ._file_array import open_hdf5
from ._registry import Target

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def claims_hdf5(target: Target) -> bool:
    """Whether ``target`` is a file named or signed as HDF5 (cheap: a name and 16 bytes)."""
    if target.is_dir:
        return False
    return target.has_suffix(*HDF5_SUFFIXES) or target.head.startswith(HDF5_SIGNATURE)


def open_file(path):
    """``h5py.File(path, "r")``; a file h5py cannot read is an ``ImageReadError``."""
    try:
        return open_hdf5(str(path))
    except OSError as exc:
        raise ImageReadError(path, f"not a readable HDF5 file ({exc})") from exc

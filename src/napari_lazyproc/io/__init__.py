"""Headless readers: any supported file to a ``LazyImage`` of dask arrays, metadata only.

Formats are asked in registration order; each says cheaply whether it claims a path.
"""

from ._contrast import sample_contrast_limits
from ._errors import ImageReadError
from ._image import LazyImage
from ._registry import FORMATS, Format, Target, find_format, open_image, register

# registration order is the order formats are asked
from . import _zarr  # noqa: E402,F401  isort: skip
from . import _hdf5  # noqa: E402,F401  isort: skip
from . import _tiff  # noqa: E402,F401  isort: skip
from . import _tiff_sequence  # noqa: E402,F401  isort: skip

__all__ = [
    "FORMATS",
    "Format",
    "ImageReadError",
    "LazyImage",
    "Target",
    "find_format",
    "open_image",
    "register",
    "sample_contrast_limits",
]

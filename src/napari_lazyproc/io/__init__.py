"""Headless readers: any supported file to a ``LazyImage`` of dask arrays, metadata only.

Formats are asked in registration order; each says cheaply whether it claims a path.
"""

from ._axes import (
    MORE_SPATIAL_AXES,
    SPATIAL_AXES,
    convert_unit,
    guess_axes,
    positional_axes,
)
from ._codecs import fast_codecs, os_errors
from ._contrast import sample_contrast_limits
from ._errors import ImageReadError
from ._file_array import as_dask
from ._identity import (
    dask_reader,
    file_stamp,
    graph_readers,
    is_zarr_array,
    zarr_location,
    zarr_token,
)
from ._identity import location as reader_location
from ._identity import stamp as reader_stamp
from ._image import LazyImage
from ._lazy_array import LazyArray
from ._pyramid import (
    Downsampled,
    display_pyramid,
    level_factor,
    reduce_block,
    virtual_factors,
)
from ._registry import FORMATS, Format, Target, find_format, open_image, register
from ._remote_store import fsspec_options, is_url, open_remote_store
from ._remote_target import EXPORT_MANIFEST, EXPORT_RECORD, RemoteTarget, forget_remote

# registration order is the order formats are asked
from . import _zarr  # noqa: E402,F401  isort: skip
from . import _ngff_plate  # noqa: E402,F401  isort: skip  (asked before plain zarr)
from . import _bioformats2raw  # noqa: E402,F401  isort: skip  (likewise)
from . import _imaris  # noqa: E402,F401  isort: skip  (before _hdf5: .ims is HDF5 too)
from . import _n5  # noqa: E402,F401  isort: skip
from . import _bdv_hdf5  # noqa: E402,F401  isort: skip  (before _hdf5: a BDV .h5 is HDF5 too)
from . import _hdf5  # noqa: E402,F401  isort: skip
from . import _tiff  # noqa: E402,F401  isort: skip
from . import _tiff_sequence  # noqa: E402,F401  isort: skip
from . import _nd2  # noqa: E402,F401  isort: skip
from . import _czi  # noqa: E402,F401  isort: skip
from . import _lif  # noqa: E402,F401  isort: skip

__all__ = [
    "dask_reader",
    "file_stamp",
    "graph_readers",
    "is_zarr_array",
    "reader_location",
    "reader_stamp",
    "zarr_location",
    "zarr_token",
    "EXPORT_MANIFEST",
    "EXPORT_RECORD",
    "MORE_SPATIAL_AXES",
    "SPATIAL_AXES",
    "Downsampled",
    "FORMATS",
    "Format",
    "ImageReadError",
    "LazyArray",
    "LazyImage",
    "RemoteTarget",
    "Target",
    "as_dask",
    "convert_unit",
    "display_pyramid",
    "reduce_block",
    "fast_codecs",
    "find_format",
    "forget_remote",
    "fsspec_options",
    "guess_axes",
    "positional_axes",
    "is_url",
    "level_factor",
    "open_image",
    "open_remote_store",
    "os_errors",
    "register",
    "sample_contrast_limits",
    "virtual_factors",
]

"""napari-lazyproc: lazy, parallel processing of large bio-images, in napari and headless."""

from importlib.metadata import PackageNotFoundError, version

from .backend import gpu_available, set_backend
from .export import ExportError, export
from .io import ImageReadError, LazyImage, open_image
from .measure import measure
from .ops import (
    Cancelled,
    GlobalLabels,
    LazyResult,
    Pipeline,
    apply,
    get_precision,
    label_global,
    list_ops,
    set_cache_bytes,
    set_precision,
)

try:
    __version__ = version("napari-lazyproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Cancelled",
    "ExportError",
    "GlobalLabels",
    "ImageReadError",
    "LazyImage",
    "LazyResult",
    "Pipeline",
    "__version__",
    "apply",
    "export",
    "get_precision",
    "gpu_available",
    "label_global",
    "list_ops",
    "measure",
    "open_image",
    "set_backend",
    "set_cache_bytes",
    "set_precision",
]

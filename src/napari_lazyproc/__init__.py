"""napari-lazyproc: lazy, parallel processing of large bio-images, in napari and headless."""

from importlib.metadata import PackageNotFoundError, version

from .backend import gpu_available, set_backend
from .export import ExportError, export
from .io import ImageReadError, LazyImage, open_image
from .ops import GlobalLabels, LazyResult, Pipeline, apply, list_ops, set_cache_bytes

try:
    __version__ = version("napari-lazyproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ExportError",
    "GlobalLabels",
    "ImageReadError",
    "LazyImage",
    "LazyResult",
    "Pipeline",
    "__version__",
    "apply",
    "export",
    "gpu_available",
    "list_ops",
    "open_image",
    "set_backend",
    "set_cache_bytes",
]

"""napari-lazyproc: lazy, parallel processing of large bio-images, in napari and headless."""

from importlib.metadata import PackageNotFoundError, version

from .io import ImageReadError, LazyImage, open_image

try:
    __version__ = version("napari-lazyproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["ImageReadError", "LazyImage", "__version__", "open_image"]

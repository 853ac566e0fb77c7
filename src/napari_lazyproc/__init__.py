"""napari-lazyproc: lazy, parallel processing of large bio-images, in napari and headless."""

from importlib.metadata import PackageNotFoundError, version

from ._live import get_prefetch_budget, set_prefetch_budget
from .backend import gpu_available, set_backend
from .export import ExportError, export
from .io import ImageReadError, LazyImage, open_image
from .measure import measure
from .ops import (
    Cancelled,
    DriftEstimation,
    GlobalLabels,
    LazyResult,
    Pipeline,
    apply,
    drift_job,
    estimate_drift,
    get_precision,
    label_global,
    list_ops,
    load_shifts,
    save_shifts,
    segment,
    set_cache_bytes,
    set_precision,
)

try:
    __version__ = version("napari-lazyproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Cancelled",
    "DriftEstimation",
    "ExportError",
    "GlobalLabels",
    "ImageReadError",
    "LazyImage",
    "LazyResult",
    "Pipeline",
    "__version__",
    "apply",
    "drift_job",
    "estimate_drift",
    "export",
    "get_precision",
    "get_prefetch_budget",
    "gpu_available",
    "label_global",
    "list_ops",
    "load_shifts",
    "measure",
    "open_image",
    "save_shifts",
    "segment",
    "set_backend",
    "set_cache_bytes",
    "set_precision",
    "set_prefetch_budget",
]

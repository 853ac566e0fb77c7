"""The operations: a registry of operations and their lazy, region-exact evaluation.

Adding an operation is one ``register(Op(...))`` declaration; the widget, the CLI, the
exporter and the typed functions (``ops.gaussian(img, sigma=2.0)``) read the registry.
The rooms: ``engine/`` (lazy results, sources, cache, registry, parameters, precision,
levels), ``kernels/`` (the fast kernels), ``filters/`` and ``geometry/`` (the
declarations), ``stats/`` (whole-input statistics), ``jobs/`` (global labels, drift, segmentation).
"""

from .engine._as_source import as_source, image_source
from .engine._cache import CACHE, ChunkCache, set_cache_bytes
from .engine._lazy import LazyResult
from .engine._params import Param
from .engine._precision import PRECISIONS, get_precision, set_precision
from .engine._progress import Cancelled, Progress
from .engine._registry import (
    REGISTRY,
    WHOLE,
    WHOLE_FRAME,
    Geometry,
    Op,
    get_op,
    list_ops,
    register,
)
from .engine._sources import ArraySource
from .jobs._drift import DriftEstimation, drift_job, estimate_drift
from .jobs._drift_table import load_shifts, save_shifts
from .jobs._label_global import GlobalLabels
from .jobs._segment import Segmentation, SegmentedLabels, segment
from .jobs._segment_methods import SegmentMethod, list_methods, register_method
from .stats._global_stats import known as statistics_known
from .stats._histogram import SAMPLE_VOXELS, source_chunk_regions

# declarations (registration order is the order list_ops shows within a category)
from .filters import _smoothing  # noqa: E402,F401  isort: skip
from .filters import _edges  # noqa: E402,F401  isort: skip
from .filters import _morphology  # noqa: E402,F401  isort: skip
from .filters import _binary_morphology  # noqa: E402,F401  isort: skip
from .filters import _threshold  # noqa: E402,F401  isort: skip
from .filters import _intensity  # noqa: E402,F401  isort: skip
from .filters import _label  # noqa: E402,F401  isort: skip
from .geometry import _shift  # noqa: E402,F401  isort: skip
from .geometry import _project  # noqa: E402,F401  isort: skip
from .filters import _generic  # noqa: E402,F401  isort: skip
from .filters import _one_axis  # noqa: E402,F401  isort: skip
from .filters import _vectorized  # noqa: E402,F401  isort: skip
from .geometry import _transforms  # noqa: E402,F401  isort: skip
from .geometry import _deskew  # noqa: E402,F401  isort: skip

from ._apply import Pipeline, apply, label_global  # noqa: E402
from ._typed import typed_functions as _typed_functions  # noqa: E402
from .filters._generic import provenance_steps  # noqa: E402
from .geometry._deskew import DeskewTransform, deskew_transform  # noqa: E402

__all__ = [
    "ArraySource", "CACHE", "Cancelled", "ChunkCache", "Geometry", "GlobalLabels", "LazyResult",
    "Op", "Param",
    "PRECISIONS", "Pipeline", "Progress", "REGISTRY", "WHOLE", "WHOLE_FRAME", "apply",
    "as_source", "image_source", "label_global", "get_op", "get_precision", "list_ops", "register",
    "set_cache_bytes", "set_precision",
    "DriftEstimation", "drift_job", "estimate_drift", "load_shifts", "save_shifts",
    "provenance_steps", "DeskewTransform", "deskew_transform",
    "SAMPLE_VOXELS", "source_chunk_regions", "statistics_known",
    "SegmentMethod", "SegmentedLabels", "Segmentation", "list_methods", "register_method",
    "segment",
]

# one typed function per operation: ops.gaussian(img, sigma=2.0), ops.median(...), ...
globals().update(_typed_functions())
__all__ += sorted(_typed_functions())

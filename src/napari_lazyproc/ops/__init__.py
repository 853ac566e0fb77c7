"""The operations engine: a registry of operations and their lazy, region-exact evaluation.

Adding an operation is one ``register(Op(...))`` declaration; the widget, the CLI and the
exporter read the registry.
"""

from ._cache import CACHE, ChunkCache, set_cache_bytes
from ._drift import DriftEstimation, drift_job, estimate_drift, load_shifts, save_shifts
from ._global_stats import known as statistics_known
from ._histogram import SAMPLE_VOXELS, source_chunk_regions
from ._jobs import Cancelled, Progress
from ._label_global import GlobalLabels
from ._lazy import LazyResult
from ._params import Param
from ._precision import PRECISIONS, get_precision, set_precision
from ._registry import (
    REGISTRY,
    WHOLE,
    WHOLE_FRAME,
    Geometry,
    Op,
    get_op,
    list_ops,
    register,
)
from ._sources import ArraySource, as_source, image_source

# declarations (registration order is the order list_ops shows within a category)
from . import _filters  # noqa: E402,F401  isort: skip
from . import _morphology  # noqa: E402,F401  isort: skip
from . import _threshold  # noqa: E402,F401  isort: skip
from . import _intensity  # noqa: E402,F401  isort: skip
from . import _label  # noqa: E402,F401  isort: skip
from . import _shift  # noqa: E402,F401  isort: skip
from . import _project  # noqa: E402,F401  isort: skip
from . import _generic  # noqa: E402,F401  isort: skip
from . import _transforms  # noqa: E402,F401  isort: skip
from . import _deskew  # noqa: E402,F401  isort: skip

from ._apply import Pipeline, apply, label_global  # noqa: E402
from ._deskew import DeskewTransform, deskew_transform  # noqa: E402
from ._generic import provenance_steps  # noqa: E402

__all__ = [
    "ArraySource", "CACHE", "Cancelled", "ChunkCache", "Geometry", "GlobalLabels", "LazyResult",
    "Op", "Param",
    "PRECISIONS", "Pipeline", "Progress", "REGISTRY", "WHOLE", "WHOLE_FRAME", "apply",
    "as_source", "image_source", "label_global", "get_op", "get_precision", "list_ops", "register",
    "set_cache_bytes", "set_precision",
    "DriftEstimation", "drift_job", "estimate_drift", "load_shifts", "save_shifts",
    "provenance_steps", "DeskewTransform", "deskew_transform",
    "SAMPLE_VOXELS", "source_chunk_regions", "statistics_known",
]

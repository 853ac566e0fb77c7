"""The precision switch: "fast" kernels (the default) or bitwise scipy ("exact").

- "exact": every operation is scipy.ndimage / scikit-image, bitwise.
- "fast": an operation with a fast kernel uses it: float outputs within 1e-6 of scipy
  relative to the reference's largest magnitude, integer outputs within one grey level;
  order statistics, morphology, thresholds and labels stay exactly equal. Global
  statistics (Otsu, Li, triangle, rescale percentiles) of an input over 4 Mi voxels come
  from a sample under "fast", from every voxel under "exact" (``ops._global_stats``).
"""

from __future__ import annotations

PRECISIONS = ("fast", "exact")
_current = {"mode": "fast"}


def check_precision(mode: str) -> str:
    if mode not in PRECISIONS:
        raise ValueError(f"precision must be 'fast' or 'exact' (got {mode!r})")
    return mode


def set_precision(mode: str) -> None:
    """Compute with ``"fast"`` kernels (the default) or bitwise scipy (``"exact"``), for
    results made from now on; ``apply(..., precision=)`` chooses per result."""
    _current["mode"] = check_precision(mode)


def get_precision() -> str:
    """The precision new results get when ``apply`` is not told."""
    return _current["mode"]

"""Where the dock widget lived before the Qt side moved to ``_qt/``.

Kept as a re-export for scripts and benchmarks that import it from here; new code
imports ``napari_lazyproc._qt.widget``.
"""

from ._qt.widget import LazyProcessingWidget

__all__ = ["LazyProcessingWidget"]

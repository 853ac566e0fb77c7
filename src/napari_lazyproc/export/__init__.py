"""Export: results written chunk by chunk to OME-Zarr, zarr or TIFF, atomically and resumably.

No napari import here; the GUI and the CLI call ``export``.
"""

from ._export import FORMATS, export
from ._paths import ExportError

__all__ = ["FORMATS", "ExportError", "export"]

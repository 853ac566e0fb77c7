"""Export: results written chunk by chunk to OME-Zarr, zarr or TIFF, atomically and resumably.

No napari import here; the GUI and the CLI call ``export``. ``WRITERS`` maps each format
name to its writer class.
"""

from .._shared.cluster import distributed_client
from ._export import completed, export
from ._formats import WRITERS
from ._paths import ExportError

__all__ = ["WRITERS", "ExportError", "completed", "distributed_client", "export"]

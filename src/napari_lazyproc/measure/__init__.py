"""Measurements: a regionprops table of label images of any size, chunk by chunk.

No napari import here; the widget and the CLI call ``measure`` and ``save_table``.
"""

from ._measure import check_properties, measure
from ._props import PROPERTIES
from ._table import parquet_available, save_table

__all__ = ["PROPERTIES", "check_properties", "measure", "parquet_available", "save_table"]

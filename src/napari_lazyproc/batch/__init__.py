"""Batches: one pipeline over many datasets, each exported (and measured) independently.

No napari import here: the command line (``process`` with several inputs) and the GUI's
*Process a folder...* both call ``run_batch``.
"""

from ._measure import NOT_LABELS, are_labels, check_table, write_table
from ._paths import expand_inputs, output_for, stem_of
from ._pipeline import load_pipeline
from ._run import STATUSES, BatchRow, run_batch
from ._table import summary_rows, summary_table

__all__ = ["NOT_LABELS", "STATUSES", "BatchRow", "are_labels", "check_table",
           "expand_inputs", "load_pipeline", "output_for", "run_batch", "stem_of",
           "summary_rows", "summary_table", "write_table"]

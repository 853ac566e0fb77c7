"""``--measure`` for one dataset: its table checked before, and written after."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def check_table(table: str | Path, overwrite: bool, properties: list[str] | None,
                folder: bool = True) -> None:
    """Refuse a table that cannot be written, before anything is computed (``folder``:
    check its folder exists; not for a template's, known per dataset).

    Raises
    ------
    ValueError
        A suffix other than .csv / .parquet, Parquet without pyarrow, a table that exists
        (without ``overwrite``), a missing folder, or an unsupported property.
    """
    from ..measure import PROPERTIES, parquet_available

    table = Path(table)
    if table.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--measure {table}: a table is saved as .csv or .parquet")
    if table.exists() and not overwrite:
        raise ValueError(f"--measure {table} exists; pass --overwrite to replace it")
    if folder and not table.resolve().parent.is_dir():
        raise ValueError(f"--measure {table}: the folder {table.resolve().parent} does "
                         f"not exist")
    if table.suffix.lower() == ".parquet" and not parquet_available():
        raise ValueError(f"--measure {table}: saving Parquet needs pyarrow (pip install "
                         f"'napari-lazyproc[parquet]'); or save as .csv")
    bad = [p for p in properties or [] if p not in PROPERTIES]
    if bad:
        raise ValueError(f"--properties: unsupported {', '.join(bad)}; supported "
                         f"(they merge exactly across chunks): {', '.join(PROPERTIES)}")


def are_labels(result, computed: bool) -> bool:
    """Whether ``result`` can be measured: a label result or label image, or (read from a
    file as it is) any image of integers, which is what label images are stored as."""
    if getattr(result, "kind", "image") == "labels":
        return True
    return not computed and np.dtype(result.dtype).kind in "iu"


NOT_LABELS = ("--measure needs labels: end the pipeline with a label step "
              "(--step label:scope=global), or give a label image (integers) as IN")


def write_table(table: str | Path, labels, image, properties: list[str] | None = None, *,
                progress=None, cancel=None, scheduler=None, workers=None) -> Path:
    """The regionprops table of ``labels`` (a result, or the file it was written to),
    with intensities from ``image`` (None: the input is the labels), saved to
    ``table``."""
    from ..measure import measure, save_table

    if image is not None and getattr(image, "kind", "image") == "labels":
        image = None
    frame = measure(labels, image, properties or None, progress=progress, cancel=cancel,
                    scheduler=scheduler, workers=workers)
    return save_table(frame, Path(table))

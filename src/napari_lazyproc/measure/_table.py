"""Saving a measurement table: CSV always, Parquet when pyarrow is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

#: table formats by file suffix
FORMATS = {".csv": "CSV", ".parquet": "Parquet"}


def parquet_available() -> bool:
    """Whether Parquet can be written (pandas writes it with pyarrow)."""
    return importlib.util.find_spec("pyarrow") is not None


def save_table(table, path) -> Path:
    """Write a ``measure`` table to CSV or Parquet, chosen by the suffix.

    Parameters
    ----------
    table : pandas.DataFrame
        A table from ``measure``.
    path : str or Path
        ``*.csv``, or ``*.parquet`` (needs pyarrow). A CSV cannot hold the units, so
        they go beside it, in ``<path>.units.json``; Parquet keeps them in its metadata
        (``DataFrame.attrs``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Another suffix, or Parquet without pyarrow (saying so, and that CSV works).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: a table is saved as .csv or .parquet (got {suffix or 'no'} "
                         f"suffix)")
    if suffix == ".parquet":
        if not parquet_available():
            raise ValueError(f"{path}: saving Parquet needs pyarrow, which is not installed "
                             f"(pip install pyarrow); save as .csv instead")
        table.to_parquet(path, index=False)
        return path
    table.to_csv(path, index=False)
    if table.attrs.get("units"):
        meta = {k: table.attrs[k] for k in ("units", "spacing", "axes") if k in table.attrs}
        Path(f"{path}.units.json").write_text(json.dumps(meta, indent=1))
    return path

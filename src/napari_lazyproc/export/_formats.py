"""The table of formats: each name ``export(format=...)`` accepts, and its writer."""

from __future__ import annotations

from ._format_names import FORMATS
from ._tiff import OmeTiffWriter, TiffWriter
from ._writer import Writer
from ._zarr import OmeZarrWriter, ZarrWriter

#: format name -> writer class; adding a format is one entry here, its name in
#: ``FORMATS`` (which the options check), and its writer
WRITERS: dict[str, type[Writer]] = {
    "ome-zarr": OmeZarrWriter,
    "zarr": ZarrWriter,
    "tiff": TiffWriter,
    "ome-tiff": OmeTiffWriter,
}
if tuple(WRITERS) != FORMATS:  # pragma: no cover - a format added to one table only
    raise ImportError(f"export formats {tuple(WRITERS)} differ from FORMATS {FORMATS}")

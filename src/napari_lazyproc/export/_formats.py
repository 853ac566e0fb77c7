"""The table of formats: each name ``export(format=...)`` accepts, and its writer."""

from __future__ import annotations

from ._tiff import OmeTiffWriter, TiffWriter
from ._writer import Writer
from ._zarr import OmeZarrWriter, ZarrWriter

#: format name -> writer class; adding a format is one entry (and its writer)
WRITERS: dict[str, type[Writer]] = {
    "ome-zarr": OmeZarrWriter,
    "zarr": ZarrWriter,
    "tiff": TiffWriter,
    "ome-tiff": OmeTiffWriter,
}

"""The names ``export(format=...)`` accepts: what the options check, with no writer
imported (each writer takes the options; ``_formats.WRITERS`` maps a name to its writer)."""

from __future__ import annotations

FORMATS = ("ome-zarr", "zarr", "tiff", "ome-tiff")

"""Writes the OME-Zarr fixtures of tests/data/ngff with the tools named in SOURCES.md:
ome-zarr-py's own writer (plates, wells, images), zarr-python (the bioformats2raw root
and OME groups) and tifffile's OME-XML writer (METADATA.ome.xml). Run once; the output
is committed. ``python tests/data/make_ngff_fixtures.py``"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.scale import Methods
from ome_zarr.writer import (
    add_metadata,
    write_image,
    write_plate_metadata,
    write_well_metadata,
)

HERE = Path(__file__).parent / "ngff"
RNG = np.random.default_rng(27)
OMERO = {"channels": [{"label": "DAPI", "color": "0000FF", "active": True,
                       "window": {"start": 0, "end": 4000, "min": 0, "max": 65535}},
                      {"label": "GFP", "color": "00FF00", "active": True,
                       "window": {"start": 0, "end": 4000, "min": 0, "max": 65535}}]}


def plate(path: Path, fmt, fields: int) -> None:
    """2 rows x 3 columns; well B/2 is not written (an empty well, as in real plates)."""
    rows, cols = ["A", "B"], ["1", "2", "3"]
    wells = ["A/1", "A/2", "A/3", "B/1", "B/3"]
    root = zarr.open_group(path, mode="w", zarr_format=fmt.zarr_format)
    write_plate_metadata(root, rows, cols, wells, fmt=fmt, field_count=fields,
                         name="test plate")
    for well in wells:
        row, col = well.split("/")
        group = root.require_group(row).require_group(col)
        write_well_metadata(group, [{"path": str(f)} for f in range(fields)], fmt=fmt)
        for f in range(fields):
            image = RNG.integers(0, 4000, (2, 16, 20), dtype=np.uint16)
            field = group.require_group(str(f))
            write_image(image, field, scale_factors=(2,), method=Methods.NEAREST, fmt=fmt,
                        axes="cyx", scale={"c": 1.0, "y": 0.5, "x": 0.5},
                        axes_units={"y": "micrometer", "x": "micrometer"},
                        storage_options={"chunks": (1, 16, 16)})
            # write_image of ome-zarr-py 0.18 drops ``metadata={"omero": ...}``
            add_metadata(field, {"omero": OMERO}, fmt=fmt)


def bioformats2raw(path: Path) -> None:
    """bioformats2raw's layout 3: series groups 0/ and 1/, OME/METADATA.ome.xml, and the
    "bioformats2raw.layout" attribute at the root. Series 0 has no physical sizes in its
    zarr (scale 1, no units, as bioformats2raw before 0.5 wrote); series 1 has its own."""
    fmt = FormatV04()
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    first = RNG.integers(0, 60000, (1, 2, 3, 24, 32), dtype=np.uint16)
    write_image(first, root.require_group("0"), scale_factors=(2,),
                method=Methods.NEAREST, fmt=fmt, axes="tczyx",
                storage_options={"chunks": (1, 1, 1, 16, 16)})
    second = RNG.integers(0, 255, (1, 1, 1, 16, 16), dtype=np.uint8)
    write_image(second, root.require_group("1"), scale_factors=(), fmt=fmt, axes="tczyx",
                scale={"t": 1.0, "c": 1.0, "z": 1.0, "y": 2.0, "x": 2.0},
                axes_units={"t": "second", "z": "micrometer", "y": "micrometer",
                            "x": "micrometer"})
    ome = root.require_group("OME")
    ome.attrs["series"] = ["0", "1"]
    xml = tifffile.OmeXml()
    xml.addimage(first.dtype, first.shape, (6, 1, 1, 24, 32, 1), axes="TCZYX",
                 Name="first image", PhysicalSizeX=0.25, PhysicalSizeXUnit="µm",
                 PhysicalSizeY=0.25, PhysicalSizeYUnit="µm", PhysicalSizeZ=1.5,
                 PhysicalSizeZUnit="µm", TimeIncrement=30.0, TimeIncrementUnit="s",
                 Channel={"Name": ["DAPI", "GFP"]})
    xml.addimage(second.dtype, second.shape, (1, 1, 1, 16, 16, 1), axes="TCZYX",
                 Name="overview", PhysicalSizeX=2.0, PhysicalSizeXUnit="µm",
                 PhysicalSizeY=2.0, PhysicalSizeYUnit="µm", Channel={"Name": ["brightfield"]})
    (path / "OME" / "METADATA.ome.xml").write_text(xml.tostring(), encoding="utf-8")


if __name__ == "__main__":
    if HERE.exists():
        shutil.rmtree(HERE)
    HERE.mkdir()
    plate(HERE / "plate_v04.ome.zarr", FormatV04(), fields=2)
    plate(HERE / "plate_v05.ome.zarr", FormatV05(), fields=1)
    bioformats2raw(HERE / "bioformats2raw.zarr")

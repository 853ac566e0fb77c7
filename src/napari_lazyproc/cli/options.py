"""``process`` options as the library takes them, for one input and for a batch."""

from __future__ import annotations

import argparse


def properties_of(args: argparse.Namespace) -> list[str] | None:
    """``--properties a,b`` as a list (None: the default properties)."""
    if not args.properties:
        return None
    return [p.strip() for p in args.properties.split(",") if p.strip()] or None


def export_format(args: argparse.Namespace) -> tuple[str, str]:
    """``--format`` as export's format and OME-Zarr version."""
    if args.format == "ome-zarr-0.5":
        return "ome-zarr", "0.5"
    return args.format, "0.4"

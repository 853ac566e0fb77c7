"""``info``: what the reader sees in a file (format, axes, shape, levels, scale, size)."""

from __future__ import annotations

import argparse
import os

from dask.utils import format_bytes

from ..io import LazyImage, is_url, open_image


def register(sub) -> None:
    """Add the ``info`` command to the subparsers ``sub``."""
    info = sub.add_parser("info", help="print what the reader sees in a file")
    info.add_argument("path")
    info.add_argument("--dataset", help="the dataset to open in an HDF5 file")
    info.add_argument("--series", type=int, metavar="N",
                      help="the series to open (TIFF, OME-TIFF, vendor files, a "
                           "bioformats2raw root: 0 first)")
    info.add_argument("--field", type=int, metavar="N",
                      help="the field of view to show in each well (an HCS plate or "
                           "well: 0 first)")
    info.set_defaults(func=cmd_info)


def _disk_size(image: LazyImage) -> int | None:
    files = image.metadata.get("files")
    if files:
        return sum(os.path.getsize(f) for f in files)
    path = image.source.get("path")
    if not path or not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, names in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return total


def describe(image: LazyImage) -> str:
    """What the reader sees, as the ``info`` command prints it."""
    lines = [
        f"name:      {image.name}",
        f"format:    {image.source.get('format')}",
        f"source:    {image.source.get('path')}"
        + "".join(
            f"  [{k}={v}]" for k, v in image.source.items()
            if k in ("dataset", "series", "field", "files", "version", "arrays")
        ),
        f"kind:      {image.kind}",
        f"axes:      {image.axes}",
        f"shape:     {image.shape}",
        f"dtype:     {image.dtype}",
        f"chunks:    {tuple(c[0] for c in image.levels[0].chunks)}",
        "levels:    " + ", ".join(str(tuple(lvl.shape)) for lvl in image.levels),
        *(["display:   + " + ", ".join(str(tuple(v.shape)) for v in virtual)
           + " (virtual, computed when viewed)"]
          if (virtual := image.display_pyramid()[len(image.levels):]) else []),
        "scale:     " + ", ".join(
            f"{a}={s:g}{' ' + u if u else ''}"
            for a, s, u in zip(image.axes, image.scale, image.units, strict=False)
        ),
        f"translate: {image.translate}",
    ]
    if image.channel_names:
        lines.append(f"channels:  {', '.join(image.channel_names)}")
    if (n_series := image.metadata.get("n_series") or 0) > 1:
        lines.append(f"series:    {image.source.get('series', 0)} of 0..{n_series - 1} "
                     "(--series N opens another)")
    for lab in image.labels:
        lines.append(f"labels:    {lab.name} {lab.shape} {lab.dtype}")
    lines.extend(layout_lines(image))
    others = image.metadata.get("other_datasets") or image.metadata.get("other_arrays")
    if others:
        lines.append(f"also:      {', '.join(others)}")
    disk = _disk_size(image)
    lines.append(
        f"size:      {format_bytes(image.nbytes)} in memory, "
        + (f"{format_bytes(disk)} on disk" if disk is not None
           else "remote (not listed)" if is_url(image.source.get("path")) else "not on disk")
    )
    return "\n".join(lines)


def layout_lines(image: LazyImage) -> list[str]:
    """What a file holds beside the image opened: a bioformats2raw root's series, an HCS
    plate's rows, columns, wells and fields, a well's fields."""
    lines = []
    series = image.metadata.get("series")
    if series:
        shown = image.source.get("series")
        lines.append("series:    " + "; ".join(
            f"{i} {s.get('name') or s['path']}" + (" (opened)" if i == shown else "")
            for i, s in enumerate(series)))
    plate = image.metadata.get("plate")
    if plate:
        rows, cols = plate["rows"], plate["columns"]
        lines += [
            f"plate:     {plate.get('name') or image.name}: {len(rows)} rows "
            f"({', '.join(rows)}) x {len(cols)} columns ({', '.join(cols)})",
            f"wells:     {len(plate['wells'])}: {', '.join(plate['wells'])}",
        ]
    fields = (plate or image.metadata.get("well") or {}).get("fields")
    if fields:
        chosen = (plate or image.metadata["well"])["field"]
        lines.append(f"fields:    {len(fields)} per well ({', '.join(fields)}); field "
                     f"{chosen} shown (--field N shows another)")
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    """The ``info`` command: print what the reader sees in a file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line: ``path``, and ``dataset`` / ``series`` / ``field``,
        passed to ``open_image`` for the formats that take them.

    Returns
    -------
    int
        The exit status, 0.
    """
    options: dict = {}
    if args.dataset:
        options["dataset"] = args.dataset
    if args.series is not None:
        options["series"] = args.series
    if args.field is not None:
        options["field"] = args.field
    with open_image(args.path, **options) as image:
        print(describe(image))
    return 0

"""Which datasets a batch reads (paths and globs) and where each one's output goes."""

from __future__ import annotations

import glob
import os
import string

from ..io import is_url

#: suffixes a dataset's ``{stem}`` drops, all of them (``a.ome.zarr`` -> ``a``)
DATA_SUFFIXES = frozenset({
    ".zarr", ".ome", ".tif", ".tiff", ".btf", ".tf8", ".h5", ".hdf5", ".he5", ".hdf",
    ".n5", ".ims", ".png", ".jpg", ".jpeg", ".csv", ".parquet", ".xml", ".json",
})
#: the fields an output template may name
FIELDS = ("stem", "name", "parent")


def expand_inputs(patterns) -> list[str]:
    """Every dataset ``patterns`` name, in order, each once.

    Parameters
    ----------
    patterns : str or sequence of str
        Paths, URLs and globs (``data/*.ome.zarr``, ``data/**/*.tif``); a glob's matches
        are sorted.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For a glob that matches nothing (a plain path is kept as given: reading it is
        what tells whether it is there).
    """
    if isinstance(patterns, str | os.PathLike):
        patterns = [patterns]
    out: list[str] = []
    for pattern in map(str, patterns):
        if is_url(pattern) or not glob.has_magic(pattern):
            found = [pattern]
        else:
            found = sorted(p.rstrip("/") for p in glob.glob(pattern, recursive=True))
            if not found:
                raise ValueError(f"no dataset matches {pattern!r}")
        out += [p for p in found if p not in out]
    return out


def _name(path: str) -> str:
    return os.path.basename(str(path).rstrip("/\\")) or str(path)


def stem_of(path: str) -> str:
    """The dataset's name without its data suffixes: ``/d/emb1.ome.zarr`` -> ``emb1``,
    ``t.v2.tif`` -> ``t.v2``."""
    stem = _name(path)
    while True:
        base, ext = os.path.splitext(stem)
        if not base or ext.lower() not in DATA_SUFFIXES:
            return stem
        stem = base


def output_for(template, input_path) -> str:
    """Where the dataset at ``input_path`` goes: ``template`` with its fields filled.

    Parameters
    ----------
    template : str
        A path with ``{stem}`` (the name without its data suffixes), ``{name}`` (the
        whole name) and ``{parent}`` (the name of the folder holding it), e.g.
        ``results/{stem}.ome.zarr``. A template without fields is the path itself.
    input_path : str

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A field other than these three, or a malformed template.
    """
    template = str(template)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"output template {template!r}: {exc}") from exc
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise ValueError(f"output template {template!r}: unknown field {{{bad[0]}}}; "
                         f"use {', '.join('{' + f + '}' for f in FIELDS)}")
    path = str(input_path).rstrip("/\\")
    parent = _name(os.path.dirname(os.path.abspath(path))) if not is_url(path) else \
        _name(path.rsplit("/", 1)[0])
    return template.format(stem=stem_of(path), name=_name(path), parent=parent)

"""What an export reads, whatever it was given: a source and what describes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dask.base import tokenize

from .._shared.source import chain_of, channel_names_of, translate_of
from ..io import LazyImage, reader_stamp, sample_contrast_limits
from ..ops import GlobalLabels, as_source, provenance_steps


class ExportInput:
    """The data to export as a source read region by region, with its metadata.

    Parameters
    ----------
    data
        A lazy result, a ``GlobalLabels`` job, a ``LazyImage``, or any array ``apply``
        accepts.
    axes
        The axes of a plain array (default: guessed); results and images carry theirs.
    name
        The name written in the metadata (default: the input's, else ``"image"``).
    """

    def __init__(self, data, axes: str | None = None, name: str | None = None) -> None:
        self.source = data if isinstance(data, GlobalLabels) else as_source(data, axes)
        src = self.source
        self.shape, self.dtype = tuple(src.shape), np.dtype(src.dtype)
        self.axes, self.scale, self.units = src.axes, tuple(src.scale), tuple(src.units)
        #: the steps as the export records them (a Python function by its name)
        self.steps = provenance_steps(getattr(src, "steps", []) or [])
        self.source_path: str | None = getattr(src, "source_path", None)
        #: every file or folder the input reads (never a target): its stores' real paths
        self.locations = sorted(input_locations(src))
        self.kind: str = getattr(src, "kind", "image")
        self.name: str = name or getattr(src, "name", "") or "image"
        chunks = getattr(src, "chunks", None)
        #: the input's chunk shape, the default output chunks
        self.block = tuple(int(c[0]) for c in chunks) if chunks else None
        #: the position of voxel 0 and the channels' names: every source carries them
        self.translate: tuple[float, ...] = translate_of(src)
        self.channel_names: list[str] | None = channel_names_of(src)
        self.channel_colors = self.contrast_limits = None
        self._image: LazyImage | None = None
        if isinstance(data, LazyImage):  # only a file's image carries these
            self.channel_colors = data.channel_colors
            self.contrast_limits = data.contrast_limits
            self._image = data

    def identity(self) -> dict[str, str]:
        """What the resume record keeps of the input: its token (where its bytes are and
        every parameter of the pipeline) and a digest of the stamps of the stores it
        reads (their bytes, now: never a stamp reused from a cache)."""
        leaf = list(chain_of(self.source))[-1]  # the stored array
        whole = tuple(slice(0, n) for n in leaf.shape)
        fresh = getattr(leaf, "_stamp", None)  # never one reused from a cache
        stamp = fresh(whole) if fresh else reader_stamp(leaf, whole)
        # a step's second images (a mask) too: a mask rewritten since is a new input
        masks = [reader_stamp(image, tuple(slice(0, n) for n in image.shape))
                 for src in chain_of(self.source)
                 for image in getattr(src, "images", {}).values()]
        return {"token": self.source.token, "stamp": tokenize([stamp, *masks])}

    def channel_windows(self) -> list[tuple[float, float]] | None:
        """Per-channel display limits: the input's, or, for an image with channels,
        from a bounded sample of it (OME-Zarr 0.4 needs a window for every channel);
        None when unknown (a result)."""
        if self.contrast_limits or "c" not in self.axes or self._image is None:
            return self.contrast_limits
        windows = sample_contrast_limits(self._image)
        n_channels = self.shape[self.axes.index("c")]
        return windows if len(windows) == n_channels else None  # RGB: one pair

    def ensure_labels(self, store: Path | None, progress=None, cancel=None) -> None:
        """Run a global labeling job that has not run yet (its chunk labels in ``store``,
        or a temporary folder)."""
        src = self.source
        if isinstance(src, GlobalLabels) and not src.done:
            src.run(progress=progress, cancel=cancel, store=str(store) if store else None)
            self.dtype = src.dtype


def input_locations(source) -> set[str]:
    """The real local paths of the stores ``source`` reads, through every step of its
    chain: a file's path, a zarr array's folder (given raw, as a dask array, or as a
    napari layer's data)."""
    out: set[str] = set()
    for src in chain_of(source):
        if hasattr(src, "locations"):
            out |= set(src.locations())
        path = getattr(src, "source_path", None)
        if path:
            out.add(str(path))
    return out

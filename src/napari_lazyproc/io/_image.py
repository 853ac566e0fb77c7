"""The result of opening a file: lazy levels plus the metadata a viewer needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dask.array as da

from ._axes import SPATIAL_AXES


@dataclass
class LazyImage:
    """A lazily opened image: one dask array per resolution level, and its metadata.

    Attributes
    ----------
    levels
        Dask arrays, level 0 at full resolution, coarser levels after. Nothing has been
        read from them yet.
    axes
        One lowercase letter per dimension of level 0, such as ``"tczyx"``.
    scale, translate
        Physical size of a level-0 voxel and the position of voxel 0, one value per axis.
    units
        Unit of each axis (``"micrometer"``, ``"second"``) or ``None`` where unknown.
    channel_names, channel_colors
        One name (and colour, as ``"#rrggbb"``) per channel when there is a ``c`` axis.
    contrast_limits
        Per-channel ``(low, high)`` windows when the file records them, else ``None``.
    name
        A short display name.
    kind
        ``"image"`` or ``"labels"``.
    source
        Where it came from: ``{"path": ..., "format": ..., plus what inside was opened}``.
    labels
        Label images stored alongside (OME-Zarr ``labels/``), as ``LazyImage`` of kind labels.
    metadata
        Anything else worth showing (other datasets in the file, raw OME fields).
    sources
        The array-likes the levels read from (one per level), when known. They let a
        channel be taken without slicing a dask graph of every chunk, and ``close()``
        closes the files they hold open.
    """

    levels: list[da.Array]
    axes: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    units: tuple[str | None, ...]
    name: str
    source: dict[str, Any]
    kind: str = "image"
    channel_names: list[str] | None = None
    channel_colors: list[str] | None = None
    contrast_limits: list[tuple[float, float]] | None = None
    labels: list[LazyImage] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    sources: list[Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        ndim = self.levels[0].ndim
        for attr in ("axes", "scale", "translate", "units"):
            if len(getattr(self, attr)) != ndim:
                raise ValueError(
                    f"{attr} has {len(getattr(self, attr))} entries for a {ndim}-D image "
                    f"({self.source.get('path')})"
                )
        if len(set(self.axes)) != ndim:
            raise ValueError(f"axes {self.axes!r} repeat a letter ({self.source.get('path')})")
        for i in range(1, len(self.levels)):
            before, this = tuple(self.levels[i - 1].shape), tuple(self.levels[i].shape)
            if len(this) != ndim or any(t > b for t, b in zip(this, before, strict=False)):
                raise ValueError(
                    f"broken pyramid: level {i} has shape {this}, larger than (or not the "
                    f"same rank as) level {i - 1} {before}; each level must be no larger "
                    f"than the one before it"
                )
        self.scale = tuple(float(s) for s in self.scale)
        self.translate = tuple(float(t) for t in self.translate)
        self.units = tuple(self.units)

    @property
    def data(self) -> da.Array:
        """Level 0, the full-resolution array."""
        return self.levels[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels[0].shape)

    @property
    def dtype(self):
        return self.levels[0].dtype

    @property
    def ndim(self) -> int:
        return self.levels[0].ndim

    @property
    def multiscale(self) -> bool:
        return len(self.levels) > 1

    @property
    def spatial_axes(self) -> str:
        """The spatial axes present, in array order (e.g. ``"zyx"``)."""
        return "".join(a for a in self.axes if a in SPATIAL_AXES)

    @property
    def channel_axis(self) -> int | None:
        return self.axes.index("c") if "c" in self.axes else None

    @property
    def nbytes(self) -> int:
        return int(self.levels[0].nbytes)

    def level_scale(self, level: int) -> tuple[float, ...]:
        """The voxel size of ``levels[level]``, from level 0's and the downsampling."""
        from ._pyramid import level_factor

        full, this = self.levels[0].shape, self.levels[level].shape
        return tuple(s * level_factor(f, t) for s, f, t in zip(self.scale, full, this,
                                                                strict=True))

    def channel_levels(self, index: int) -> list[da.Array]:
        """The levels of one channel, without the channel axis.

        Built from the level sources when known: slicing a dask array of a terabyte
        builds a task for each of its chunks, a new array over a channel view does not.
        """
        from ._file_array import ChannelView, as_dask

        axis = self.channel_axis
        if axis is None:
            raise ValueError(f"{self.name!r} has no channel axis (axes {self.axes!r})")
        if not 0 <= index < self.shape[axis]:
            raise ValueError(f"channel index {index} is out of range 0..{self.shape[axis] - 1}")
        if self.sources is None:
            key = (slice(None),) * axis + (index,)
            return [lvl[key] for lvl in self.levels]
        out = []
        for lvl, src in zip(self.levels, self.sources, strict=False):
            chunks = lvl.chunks[:axis] + lvl.chunks[axis + 1 :]
            out.append(as_dask(ChannelView(src, axis, index), chunks, f"{lvl.name}-c{index}"))
        return out

    def display_pyramid(self, channel: int | None = None) -> list:
        """Array-likes of the levels a viewer shows: the stored levels, then the virtual
        ones computed lazily from the last (see ``io._pyramid``), so that the coarsest
        fits a 3D view and a zoomed-out plane whatever the file holds.

        ``channel``: one channel's levels, without the channel axis.
        """
        from ._file_array import ChannelView
        from ._pyramid import display_pyramid

        if self.sources is None:
            stored = self.levels if channel is None else self.channel_levels(channel)
        elif channel is None:
            stored = list(self.sources)
        else:
            stored = [ChannelView(src, self.channel_axis, channel) for src in self.sources]
        axes = self.axes if channel is None else self.axes.replace("c", "")
        name = self.levels[-1].name + ("" if channel is None else f"-c{channel}")
        sources, _ = display_pyramid(stored, [tuple(s.shape) for s in stored], axes,
                                     self.kind, name)
        return sources

    def display_levels(self, channel: int | None = None) -> list:
        """Levels for a viewer (``display_pyramid``) as array-likes that read each
        requested region in one call. Falls back to the dask levels when the sources
        are unknown."""
        from ._lazy_array import LazyArray

        levels = self.levels if channel is None else self.channel_levels(channel)
        pyramid = self.display_pyramid(channel)
        if self.sources is None:
            return list(levels) + pyramid[len(levels):]
        return [LazyArray(src, lvl) for src, lvl in zip(pyramid, levels, strict=False)] + [
            LazyArray(src) for src in pyramid[len(levels):]
        ]

    def close(self) -> None:
        """Close the files this image holds open. Reading again reopens them."""
        for src in self.sources or []:
            if hasattr(src, "close"):
                src.close()
        for lab in self.labels:
            lab.close()

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(lvl.shape)) for lvl in self.levels)
        return (
            f"LazyImage(name={self.name!r}, kind={self.kind!r}, axes={self.axes!r}, "
            f"dtype={self.dtype}, levels=[{shapes}], scale={self.scale}, units={self.units})"
        )

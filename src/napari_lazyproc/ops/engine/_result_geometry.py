"""Where a result's voxels are: its shape, axes, voxel size and origin from its input's
(through an operation's ``Geometry``), and the input region an output region needs."""

from __future__ import annotations

from ..._shared.regions import Region
from ..._shared.source import channel_names_of, translate_of


def _regular(size: int, n: int) -> tuple[int, ...]:
    """A regular chunking of ``n`` voxels in chunks of ``size`` (the last one shorter)."""
    size = max(1, int(size))
    return (size,) * (n // size) + ((n % size,) if n % size else ()) or (0,)


class ResultGeometry:
    """Part of ``LazyResult`` (a mixin over its attributes)."""

    def _layout(self, source) -> None:
        """The output's shape, axes, scale, units and chunks: the input's, or, for an
        operation with a ``Geometry``, the input's with the frame mapped to the output
        frame (its axes kept in place, removed ones dropped)."""
        geo = self.op.geometry
        chunks = source.chunks or tuple((n,) for n in source.shape)
        #: the input axis of each output axis
        self._inputs = tuple(range(len(source.shape)))
        #: the output axes of the frame (the same as ``spatial`` without a geometry)
        self.out_spatial = self.spatial
        self.shape, self.axes = tuple(source.shape), source.axes
        self.scale, self.units, self.chunks = source.scale, source.units, chunks
        if geo is None:
            return
        values = self.params.as_dict()
        frame = "".join(source.axes[a] for a in self.spatial)
        self._frame_shape = tuple(int(source.shape[a]) for a in self.spatial)
        out_frame = geo.axes(frame, values)
        out_shape = tuple(int(n) for n in geo.shape(self._frame_shape, values))
        if len(out_shape) != len(out_frame) or "".join(
                a for a in frame if a in out_frame) != out_frame:
            raise ValueError(f"{self.op.name}: its output frame {out_frame!r} {out_shape} is "
                             f"not the input frame {frame!r} or some of its axes, in order")
        sizes = dict(zip(out_frame, out_shape, strict=True))
        self._inputs = tuple(a for a in range(len(source.shape))
                             if a not in self.spatial or source.axes[a] in out_frame)
        self.axes = "".join(source.axes[a] for a in self._inputs)
        self.out_spatial = tuple(self.axes.index(a) for a in out_frame)
        self.shape = tuple(sizes.get(source.axes[a], source.shape[a]) if a in self.spatial
                           else source.shape[a] for a in self._inputs)
        self.units = tuple(source.units[a] for a in self._inputs)
        self.scale = self._placed(source.scale, (0.0,) * len(source.shape))[0]
        self.chunks = tuple(
            chunks[a] if n == source.shape[a] else _regular(chunks[a][0], n)
            for a, n in zip(self._inputs, self.shape, strict=True))

    def _placed(self, scale, translate) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The output's voxel size and origin from the input's (one per input axis)."""
        geo = self.op.geometry
        if geo is None:
            return tuple(scale), tuple(translate)
        values = self.params.as_dict()
        frame_scale = tuple(float(scale[a]) for a in self.spatial)
        frame_origin = tuple(float(translate[a]) for a in self.spatial)
        if geo.place is not None:
            frame_scale, frame_origin = geo.place(frame_scale, frame_origin,
                                                  self._frame_shape, values)
        else:  # the frame axes kept keep their voxel size and origin
            kept = [i for i, a in enumerate(self.spatial) if a in self._inputs]
            frame_scale = tuple(frame_scale[i] for i in kept)
            frame_origin = tuple(frame_origin[i] for i in kept)
        out_scale, out_origin = [], []
        for k, a in enumerate(self._inputs):
            if k in self.out_spatial:
                i = self.out_spatial.index(k)
                out_scale.append(float(frame_scale[i]))
                out_origin.append(float(frame_origin[i]))
            else:
                out_scale.append(float(scale[a]))
                out_origin.append(float(translate[a]))
        return tuple(out_scale), tuple(out_origin)

    #: an origin set on this result (a layer moved in napari); None: derived from the input
    _translate: tuple[float, ...] | None = None

    @property
    def translate(self) -> tuple[float, ...]:
        """The position of voxel 0: the input's, moved as the geometry places the output
        (a zoom's or rotation's origin; a projection drops its axis), unless set."""
        if self._translate is not None:
            return self._translate
        return self._placed(self.source.scale, translate_of(self.source))[1]

    @translate.setter
    def translate(self, value) -> None:
        self._translate = tuple(float(t) for t in value)

    @property
    def channel_names(self) -> list[str] | None:
        """The input's channel names while the c axis passes through unchanged."""
        names = channel_names_of(self.source)
        if names is None or "c" in self.spatial_axes or "c" not in self.axes:
            return None
        return names if self.shape[self.axes.index("c")] == len(names) else None

    def translate_from(self, translate) -> tuple[float, ...]:
        """The origin of the result (napari's ``translate``) given its input's.

        Parameters
        ----------
        translate : sequence of float
            The input's origin, one value per input axis, in physical units.

        Returns
        -------
        tuple of float
            One value per output axis: the input's for most operations; without the
            projected axis for a projection (the geometry's ``place`` says).
        """
        return self._placed(self.source.scale, translate)[1]

    def _expanded(self, region: Region) -> Region:
        """The input region that output ``region`` needs: grown by the halo and clipped
        (for a ``Geometry``: the box it maps to, then the halo)."""
        if self.op.geometry is not None:
            return self._source_region(region)
        grown = list(region)
        for a, h, p, w, pad in zip(self.spatial, self.halo, self.prefix, self.wrapped,
                                   self.padded, strict=True):
            if pad:  # mode "wrap": the far edge, read by ``_wrap``
                grown[a] = slice(region[a].start - h, region[a].stop + h)
            elif w:  # a running sum from index 0...: the whole axis, wrapped by scipy
                grown[a] = slice(0, self.shape[a])
            else:
                grown[a] = slice(0 if p else max(0, region[a].start - h),
                                 min(self.shape[a], region[a].stop + h))
        return tuple(grown)

    def _source_region(self, region: Region) -> Region:
        """For a ``Geometry``: the other axes as they are, the frame's box from the
        geometry (grown by the halo, clipped to the input)."""
        box: list[slice] = [slice(0, 0)] * len(self.source.shape)
        for k, a in enumerate(self._inputs):
            if a not in self.spatial:
                box[a] = region[k]
        frame = self.op.geometry.region(tuple(region[k] for k in self.out_spatial),
                                        self._frame_shape, self.params.as_dict())
        if self._exact_whole:
            frame = tuple(slice(0, n) for n in self._frame_shape)
        for a, s, h, n in zip(self.spatial, frame, self.halo, self._frame_shape, strict=True):
            box[a] = slice(max(0, int(s.start) - h), min(n, int(s.stop) + h))
        return tuple(box)

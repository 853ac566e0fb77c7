"""A result's values over a region: its input read over the region grown by the halo,
the operation run frame by frame (a fast kernel, 1-D passes, or scipy), then cropped."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._shared.regions import Region, region_shape, within
from ...backend import array_module, device, get_backend
from ._cache import CACHE
from ._nan_order import check_block
from ._wrap import padded_mode, read_wrapped


class Evaluation:
    """Part of ``LazyResult`` (a mixin over its attributes)."""

    def _compute(self, region: Region) -> np.ndarray:
        if 0 in region_shape(region):  # nothing asked (a tile 0 wide): no kernel runs
            return np.empty(region_shape(region), self.dtype)
        if self.on_gpu:
            return self._compute_gpu(region)
        if get_backend() == "cupy":
            why = ("has no GPU function (CuPy or cuCIM)" if self.op.gpu_function is None
                   else "is exact (bitwise scipy), which CuPy's kernels are not")
            device.warn_once(f"{self.op.name}-{self.precision}",
                             f"{self.op.name} {why}; it is computed on the CPU")
        return self._compute_cpu(region)

    def _compute_cpu(self, region: Region) -> np.ndarray:
        expanded = self._expanded(region)
        if self.op.geometry is not None:  # its ``fast`` takes the function's arguments
            return self._apply_geometric(self.source.read(expanded), region, expanded,
                                         self.op.fast if self.fast else None)
        if self.whole_frame:
            key = self._key(expanded, "frame")
            full = CACHE.get(key)
            if full is None:
                full = self._apply(self._read_input(expanded), where=expanded,
                                   extra=self._read_images(expanded))
                CACHE.put(key, full)
        else:
            block = self._read_input(expanded)
            if self.fast and check_block(self, block):  # not NaN (``_nan_order``)
                values = self._apply_fast(block, region, expanded)
                if values is not None:
                    return values
            if self.op.separable is not None:
                return self._apply_separable(block, region, expanded)
            full = self._apply(block, where=expanded, extra=self._read_images(expanded))
        return full[within(region, expanded)]

    def _read_input(self, expanded: Region, read=None):
        """The input over ``expanded``, whose wrapped axes may reach past the edges; in
        native byte order (the same values, and scipy's output is native too)."""
        block = read_wrapped(read or self.source.read, expanded, self.source.shape)
        if isinstance(block, np.ndarray) and not block.dtype.isnative:
            block = block.astype(block.dtype.newbyteorder("="))
        return block

    def _read_images(self, expanded: Region) -> dict:
        """The second images (a mask) over ``expanded``, each in its own dtype."""
        return {name: read_wrapped(image.read, expanded, image.shape)
                for name, image in self.images.items()}

    def _call_params(self) -> dict[str, Any]:
        """Keyword arguments of the operation's functions: parameters, prepared values,
        and the spatial axis letters for operations that ask for them."""
        params = {**self.params.as_dict(), **self.prepared()}
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        if self.op.needs_axes:
            params["axes"] = self.spatial_axes
        if self.op.ordered_terms:
            params["terms"] = self.passes
        return params

    def _frames(self, block, region: Region, expanded: Region, frame, extra=None):
        """``frame(values)`` on every frame of ``block`` (its spatial axes at one index of
        the others, never across T or C), the other axes cropped from ``expanded`` to
        ``region``; stacked back in the block's axis order. ``frame`` returns the values
        over ``region``'s spatial extent, or None to decline (then this returns None).
        For an operation with ``needs_frame``, ``frame`` also gets ``frame=`` the frame's
        index along the other axes, by letter and in the whole array (``{"t": 3}``).
        ``extra``: blocks of the block's shape (a mask), passed to ``frame`` by name."""
        nd = block.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        inner = within(region, expanded)
        moved = np.moveaxis(block, self.spatial, range(len(other), nd))
        if other:  # (a 0-D block indexed by () would be a scalar)
            moved = moved[tuple(inner[a] for a in other)]
        spatial_shape = tuple(region[a].stop - region[a].start for a in self.spatial)
        extra = {k: np.moveaxis(v, self.spatial, range(len(other), nd))[
            tuple(inner[a] for a in other)] for k, v in (extra or {}).items()}
        if not other and not self.op.needs_frame and isinstance(block, np.ndarray):
            # one frame (a volume's box): its own result, not copied into another array
            values = frame(moved, **extra)
            if values is None or (isinstance(values, np.ndarray) and values.dtype == self.dtype
                                  and values.shape == spatial_shape
                                  and not np.may_share_memory(values, block)):
                return values
            out = np.empty(spatial_shape, self.dtype)
            out[...] = values
            return out
        out = array_module(block).empty(moved.shape[: len(other)] + spatial_shape, self.dtype)
        for index in np.ndindex(*moved.shape[: len(other)]):
            at = ({"frame": {self.axes[a]: region[a].start + i
                             for a, i in zip(other, index, strict=True)}}
                  if self.op.needs_frame else {})
            values = frame(moved[index], **at, **{k: v[index] for k, v in extra.items()})
            if values is None:
                return None
            out[index] = values
        return np.moveaxis(out, range(len(other), nd), self.spatial)

    def _apply_fast(self, block: np.ndarray, region: Region, expanded: Region):
        """The fast kernel on every frame over ``region``, or None where it declines."""
        params = self._call_params()  # with ``axes`` for operations that need them
        params.pop("output", None)  # the kernel's own dtype (``fast`` checked it)
        if any(w and not p for w, p in zip(self.wrapped, self.padded, strict=True)):
            return None  # a wrapped axis read whole (a line's start): scipy wraps it
        if "mode" in params:  # one mode, known to the kernels (a wrapped axis is padded)
            params["mode"] = padded_mode(params["mode"], self.padded)
            if params["mode"] is None:
                return None
        inner = within(region, expanded)
        crop = tuple(inner[a] for a in self.spatial)
        return self._frames(block, region, expanded,
                            lambda block, **at: self.op.fast(block, crop, **params, **at))

    def _apply_separable(self, block: np.ndarray, region: Region, expanded: Region) -> np.ndarray:
        """1-D passes in scipy's axis order, each axis cropped to the region once done."""
        params = self._call_params()
        k = len(self.spatial)
        bounds = [(region[a].start - expanded[a].start, region[a].stop - expanded[a].start)
                  for a in self.spatial]

        def passes(cur):
            for i in self.passes:  # scipy's order: as ``axes`` were given
                lo, hi = bounds[i]
                at = self.op.separable_at
                done = at(cur, i, lo, hi, **params) if at is not None else None
                if done is None:
                    keep = [slice(None)] * k
                    keep[i] = slice(lo, hi)
                    done = self.op.separable(cur, i, **params)[tuple(keep)]
                cur = done
            return cur

        return self._frames(block, region, expanded, passes)

    def _apply(self, block: np.ndarray, fn=None, where: Region | None = None,
               extra=None) -> np.ndarray:
        """Run the operation on every spatial sub-block (never across T or C); ``where``:
        the block's region in the array (for ``needs_frame``); ``extra``: second images
        over the same region (a mask), passed by name."""
        fn = fn or self.op.function
        params = self._call_params()
        if self.op.batched and self.op.geometry is None:  # the function's own frames
            return fn(block, axes=tuple(self.spatial[i] for i in self.passes), **params)
        whole = where or tuple(slice(0, n) for n in block.shape)
        return self._frames(block, whole, whole, lambda block, **at: fn(block, **params, **at),
                            extra)

    def _apply_geometric(self, block, region: Region, expanded: Region, fn=None):
        """A ``Geometry`` operation: ``block`` (the input over ``expanded``) to the values
        over the output ``region``, frame by frame (all frames in one call for a
        ``batched`` function); the other axes pass through. Numpy or CuPy blocks alike."""
        fn = fn or self.op.function
        params = self._call_params()
        nd = block.ndim
        other = [a for a in range(nd) if a not in self.spatial]
        n_other = len(other)
        moved = np.moveaxis(block, self.spatial, range(n_other, nd))
        where = {"region": tuple(region[k] for k in self.out_spatial),
                 "source_region": tuple(expanded[a] for a in self.spatial)}
        if self.op.geometry.wants_shape:
            where["frame_shape"] = self._frame_shape
        if self.op.batched:
            values = fn(moved, **where, **params)
        else:
            values = array_module(block).empty(
                moved.shape[:n_other] + region_shape(where["region"]), self.dtype)
            for index in np.ndindex(*moved.shape[:n_other]):
                at = ({"frame": {self.source.axes[a]: expanded[a].start + i
                                 for a, i in zip(other, index, strict=True)}}
                      if self.op.needs_frame else {})
                values[index] = fn(moved[index], **where, **params, **at)
        values = values.astype(self.dtype, copy=False)
        k = len(self.out_spatial)
        return np.moveaxis(values, range(n_other, n_other + k), self.out_spatial)

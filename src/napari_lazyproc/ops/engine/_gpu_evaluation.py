"""A result's tiles on the GPU (CuPy): chained inputs stay on the device; out of memory,
a tile is split in two, and at last computed on the CPU."""

from __future__ import annotations

import math

import numpy as np

from ..._shared.regions import Region, region_shape, split_region, within
from ...backend import device, get_backend


class GpuEvaluation:
    """Part of ``LazyResult`` (a mixin over its attributes)."""

    @property
    def on_gpu(self) -> bool:
        """Whether tiles are computed on the device: the cupy backend, an operation with a
        GPU function, and precision "fast". CuPy's kernels are not bitwise scipy (they
        meet the fast contract), so an exact result is computed with scipy on the CPU."""
        return (get_backend() == "cupy" and self.op.gpu_function is not None
                and self.precision == "fast" and not self.images)  # a mask: scipy's

    def _compute_gpu(self, region: Region) -> np.ndarray:
        """On the device; out of memory: the region split in two, and at last the CPU."""
        try:
            voxels = math.prod(region_shape(self._expanded(region)))
            if not device.fits(voxels, self.dtype.itemsize):
                raise MemoryError(f"{voxels} voxels exceed the GPU budget")
            return device.to_host(self._device_values(region))
        except Exception as exc:
            if not device.is_oom(exc):
                raise
            device.free_pool()
        parts = []
        if not self.whole_frame and math.prod(region_shape(region)) > device.MIN_TILE_VOXELS:
            parts = split_region(region, self._tile_axes, 2)
        if len(parts) < 2:
            device.warn_once(f"oom-{self.op.name}", f"{self.op.name}: out of GPU memory even "
                              f"for small tiles; computing on the CPU")
            return self._compute_cpu(region)
        out = np.empty(region_shape(region), self.dtype)
        for part in parts:
            out[within(part, region)] = self._compute_gpu(part)
        return out

    def _device_values(self, region: Region):
        """A CuPy array over ``region``. A chained input computes on the device too, so
        only the final tile comes back to the host."""
        if 0 in region_shape(region):
            return device.to_device(np.empty(region_shape(region), self.dtype))
        expanded = self._expanded(region)
        src = self.source
        if isinstance(src, GpuEvaluation) and src.on_gpu:  # a chained result
            block = self._read_input(expanded, src._device_values)
        else:
            block = device.to_device(self._read_input(expanded))
        fn = self.op.gpu_function
        if self.op.geometry is not None:
            return self._apply_geometric(block, region, expanded, fn)
        if self.op.separable is not None:
            return self._apply_separable(block, region, expanded)
        full = self._apply(block, fn, where=expanded)
        return full[within(region, expanded)]

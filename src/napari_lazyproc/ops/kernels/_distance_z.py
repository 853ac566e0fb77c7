"""The z pass of the exact squared distance transform of unit voxels, with numba.

Given each plane's squared in-plane distance ``g2`` (integers), the squared 3D distance
at ``z`` is the least ``g2[z'] + (z - z')**2``; looking outwards from ``z``, offsets
whose square reaches the best so far cannot improve it, so each voxel looks only as far
as its own distance. Integers all the way (in float64, exactly): the values are scipy's.
Without numba, ``squared_z_pass`` is None (numpy's whole-plane passes are used).
"""

from __future__ import annotations

import numpy as np

try:  # optional: the numpy passes otherwise
    from numba import njit
except ImportError:  # pragma: no cover - numba absent
    njit = None


def _z_pass(g2, out):  # pragma: no cover - numba
    nz, ny, nx = g2.shape
    for y in range(ny):
        for x in range(nx):
            for z in range(nz):
                best = g2[z, y, x]
                k = 1
                while k * k < best:
                    step = k * k
                    if z - k >= 0 and g2[z - k, y, x] + step < best:
                        best = g2[z - k, y, x] + step
                    if z + k < nz and g2[z + k, y, x] + step < best:
                        best = g2[z + k, y, x] + step
                    if z - k < 0 and z + k >= nz:
                        break
                    k += 1
                out[z, y, x] = best


_z_pass_jit = None if njit is None else njit(cache=True, nogil=True)(_z_pass)


def _squared_z_pass(g2: np.ndarray) -> np.ndarray:
    """The squared 3D distance from each plane's squared 2D distance (z first)."""
    out = np.empty_like(g2)
    _z_pass_jit(g2, out)
    return out


squared_z_pass = None if njit is None else _squared_z_pass

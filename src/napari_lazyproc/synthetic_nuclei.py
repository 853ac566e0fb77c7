"""Synthetic touching nuclei: bright spheres packed so that many touch (segmentation tests
and benchmarks).

Centres sit on a jittered grid about a mean diameter apart, radii are drawn between the
two given, and each sphere is bright in its centre and dimmer at its rim (so that two
touching nuclei show a neck a watershed can cut), over a noisy background. The same
``seed`` gives the same volume.
"""

from __future__ import annotations

import numpy as np


def touching_nuclei(shape, *, radius=(6.0, 12.0), seed: int = 0, dtype=np.uint16,
                    noise: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A volume (or plane) of touching nuclei.

    Parameters
    ----------
    shape : tuple of int
        2 or 3 axes.
    radius : (float, float)
        The smallest and largest radius, in pixels.
    seed : int
    dtype : numpy dtype
        Of the image (values up to about 110).
    noise : float
        Standard deviation of the background's Gaussian noise.

    Returns
    -------
    image, centres, radii
        The image; one centre (row) and one radius per nucleus.
    """
    shape = tuple(int(n) for n in shape)
    rng = np.random.default_rng(seed)
    lo, hi = float(radius[0]), float(radius[1])
    spacing = lo + hi  # a mean diameter: neighbours with large radii overlap a little
    axes = [np.arange(spacing / 2, n, spacing) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(shape))
    centres = grid + rng.uniform(-0.2 * spacing, 0.2 * spacing, grid.shape)
    radii = rng.uniform(lo, hi, len(centres))
    image = np.zeros(shape, np.float32)
    for c, r in zip(centres, radii, strict=True):
        start = np.maximum(0, np.floor(c - r).astype(int))
        stop = np.minimum(shape, np.ceil(c + r).astype(int) + 1)
        if np.any(stop <= start):
            continue
        where = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        grids = np.ogrid[where]
        d2 = sum((g - x) ** 2 for g, x in zip(grids, c, strict=True)) / (r * r)
        profile = np.where(d2 <= 1, 100 * (1.1 - 0.8 * d2), 0).astype(np.float32)
        np.maximum(image[where], profile, out=image[where])
    image += rng.normal(10, noise, shape).astype(np.float32)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        np.clip(image, info.min, info.max, out=image)
        image = np.round(image)
    return image.astype(dtype), centres, radii

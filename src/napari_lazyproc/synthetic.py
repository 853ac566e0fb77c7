"""A synthetic light-sheet time series, generated lazily and deterministically per region.

Nuclei are Gaussian blobs inside an ellipsoidal embryo. They drift with a slow rotational
flow, condense and brighten just before they divide, and their two daughters move apart.
A dim background falls off with depth, as light-sheet illumination does, and camera noise
(shot noise plus read noise) comes from a hash of each voxel's global index, so any
region computed on its own equals the same region cut from a larger one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .io._file_array import as_dask, normalize_key
from .io._image import LazyImage

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class LightSheetSpec:
    """The parameters of a synthetic time series. Physical units are micrometres and seconds."""

    shape: tuple[int, int, int, int] = (100, 256, 2048, 2048)  # t, z, y, x
    voxel_size: tuple[float, float, float] = (2.0, 0.406, 0.406)  # z, y, x
    frame_interval: float = 30.0
    nuclei: int = 20000
    nucleus_radius: float = 5.0
    seed: int = 0
    background: float = 120.0
    brightness: float = 1800.0
    read_noise: float = 6.0


LARGE = LightSheetSpec()
SMALL = LightSheetSpec(shape=(10, 64, 256, 256), nuclei=120, seed=1)


class _Lineage:
    """Positions, radii and brightness of every nucleus alive at a time point.

    Three generations: each founder divides once at a random time, and each daughter may
    divide again. Everything is drawn once from the seed, so a time point is cheap.
    """

    SEPARATION_FRAMES = 4.0

    def __init__(self, spec: LightSheetSpec) -> None:
        rng = np.random.default_rng(spec.seed)
        t, z, y, x = spec.shape
        extent = np.array([z * spec.voxel_size[0], y * spec.voxel_size[1], x * spec.voxel_size[2]])
        self.center = extent / 2
        self.semi = extent * np.array([0.42, 0.45, 0.45])
        n = spec.nuclei
        # founders, uniform in the ellipsoid
        u = rng.normal(size=(n, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        r = rng.random(n) ** (1 / 3)
        self.p0 = self.center + u * r[:, None] * self.semi
        self.brightness = rng.uniform(0.55, 1.0, size=n)
        self.drift = rng.normal(scale=0.05, size=(n, 3))
        self.omega = 2 * math.pi / (t * 12.0)  # slow rotation about the z axis
        # division times: founders divide once within about 2 series lengths
        self.div1 = rng.uniform(2, max(4, 2.2 * t), size=n)
        self.div2 = self.div1[:, None] + rng.uniform(0.5 * t, 1.5 * t, size=(n, 2))
        self.axis1 = _unit_vectors(rng, n)
        self.axis2 = _unit_vectors(rng, (n, 2))
        self.radius = spec.nucleus_radius * rng.uniform(0.8, 1.2, size=n)

    def _flow(self, p: np.ndarray, t: float | np.ndarray) -> np.ndarray:
        """Rotate about the embryo's z axis by omega * t (a slow, coherent tissue flow)."""
        angle = self.omega * np.asarray(t)
        rel = p - self.center
        c, s = np.cos(angle), np.sin(angle)
        y = rel[..., 1] * c - rel[..., 2] * s
        x = rel[..., 1] * s + rel[..., 2] * c
        return self.center + np.stack([rel[..., 0], y, x], axis=-1)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions (n, 3) in µm, radii (n,), brightness (n,)) at time ``t``."""
        base = self._flow(self.p0 + self.drift * t, t)
        pos, rad, bright = [], [], []

        def condense(t_div):
            # chromatin condenses: smaller and brighter in the 2 frames before division
            k = np.clip((t_div - t) / 2.0, 0, 1)
            return 0.7 + 0.3 * k, 1.6 - 0.6 * k

        g0 = t < self.div1
        shrink, glow = condense(self.div1[g0])
        pos.append(base[g0])
        rad.append(self.radius[g0] * shrink)
        bright.append(self.brightness[g0] * glow)
        for d in (-1.0, 1.0):
            k = 0 if d < 0 else 1
            g1 = (t >= self.div1) & (t < self.div2[:, k])
            sep = np.clip((t - self.div1[g1]) / self.SEPARATION_FRAMES, 0, 1)
            offset = d * self.axis1[g1] * (sep * self.radius[g1] * 1.3)[:, None]
            shrink, glow = condense(self.div2[g1, k])
            pos.append(base[g1] + offset)
            rad.append(self.radius[g1] * 0.85 * shrink)
            bright.append(self.brightness[g1] * glow)
            for e in (-1.0, 1.0):
                g2 = t >= self.div2[:, k]
                sep2 = np.clip((t - self.div2[g2, k]) / self.SEPARATION_FRAMES, 0, 1)
                off1 = d * self.axis1[g2] * (self.radius[g2] * 1.3)[:, None]
                off2 = e * self.axis2[g2, k] * (sep2 * self.radius[g2])[:, None]
                pos.append(base[g2] + off1 + off2)
                rad.append(self.radius[g2] * 0.72)
                bright.append(self.brightness[g2])
        return np.concatenate(pos), np.concatenate(rad), np.concatenate(bright)


def _unit_vectors(rng, shape) -> np.ndarray:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    v = rng.normal(size=(*shape, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@lru_cache(maxsize=4)
def _lineage(spec: LightSheetSpec) -> _Lineage:
    return _Lineage(spec)


@lru_cache(maxsize=16)
def _nuclei_at(spec: LightSheetSpec, t: int):
    return _lineage(spec).at(float(t))


def _hash_normal(index: np.ndarray) -> np.ndarray:
    """Approximately standard-normal values from a splitmix64 hash of each voxel index."""
    z = index + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z ^= z >> np.uint64(31)
    # sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit variance
    mask = np.uint64(0xFFFF)
    s = (z & mask).astype(np.float32)
    for shift in (16, 32, 48):
        s += ((z >> np.uint64(shift)) & mask).astype(np.float32)
    return (s * np.float32(1 / 65535) - np.float32(2.0)) * np.float32(math.sqrt(3.0))


class LightSheetVolume:
    """The series as an array-like (t, z, y, x) uint16, downsampled by ``factor`` in y and x.

    ``volume[t, z0:z1, y0:y1, x0:x1]`` renders exactly that region; nothing is stored.
    """

    def __init__(self, spec: LightSheetSpec = LARGE, factor: int = 1) -> None:
        self.spec = spec
        self.factor = int(factor)
        t, z, y, x = spec.shape
        self.shape = (t, z, -(-y // factor), -(-x // factor))
        self.dtype = np.dtype("uint16")
        self.ndim = 4

    def __getitem__(self, key) -> np.ndarray:
        key = normalize_key(key, self.shape)
        ranges = [range(k.start, k.stop) if isinstance(k, slice) else range(k, k + 1) for k in key]
        out = np.stack([self._render(t, *ranges[1:]) for t in ranges[0]]) if len(ranges[0]) \
            else np.empty((0, len(ranges[1]), len(ranges[2]), len(ranges[3])), self.dtype)
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]

    def _render(self, t: int, zr: range, yr: range, xr: range) -> np.ndarray:
        spec, f = self.spec, self.factor
        dz, dy, dx = spec.voxel_size[0], spec.voxel_size[1] * f, spec.voxel_size[2] * f
        zs = np.arange(zr.start, zr.stop) * dz
        ys = (np.arange(yr.start, yr.stop) + 0.5) * dy - spec.voxel_size[1] / 2
        xs = (np.arange(xr.start, xr.stop) + 0.5) * dx - spec.voxel_size[2] / 2
        shape = (len(zs), len(ys), len(xs))
        if 0 in shape:
            return np.zeros(shape, np.uint16)
        lineage = _lineage(spec)
        attenuation = 0.8 * spec.shape[1] * spec.voxel_size[0]
        depth = np.exp(-zs / attenuation)
        signal = np.empty(shape, np.float32)
        # background: dim haze inside the embryo, brighter at the illuminated side
        by = 0.6 + 0.4 * np.cos((ys - lineage.center[1]) / lineage.semi[1] * 1.2) ** 2
        bx = 0.7 + 0.3 * np.exp(-xs / (spec.shape[3] * spec.voxel_size[2]))
        signal[:] = (spec.background * depth)[:, None, None] * by[None, :, None] * bx[None, None, :]

        pos, rad, bright = _nuclei_at(spec, t)
        sigma = rad / 1.6
        reach = 3.0 * sigma
        hit = (
            (pos[:, 0] + reach >= zs[0]) & (pos[:, 0] - reach <= zs[-1])
            & (pos[:, 1] + reach >= ys[0]) & (pos[:, 1] - reach <= ys[-1])
            & (pos[:, 2] + reach >= xs[0]) & (pos[:, 2] - reach <= xs[-1])
        )
        amp = spec.brightness * bright[hit] * np.exp(-pos[hit, 0] / attenuation)
        for (pz, py, px), s, a, r in zip(pos[hit], sigma[hit], amp, reach[hit]):
            iz = slice(*np.searchsorted(zs, (pz - r, pz + r)))
            iy = slice(*np.searchsorted(ys, (py - r, py + r)))
            ix = slice(*np.searchsorted(xs, (px - r, px + r)))
            gz = np.exp(-0.5 * ((zs[iz] - pz) / s) ** 2)
            gy = np.exp(-0.5 * ((ys[iy] - py) / s) ** 2)
            gx = np.exp(-0.5 * ((xs[ix] - px) / s) ** 2)
            signal[iz, iy, ix] += (a * gz[:, None, None] * gy[None, :, None] * gx[None, None, :])

        # camera noise, from a hash of the voxel's global index (level-salted)
        _, Z, Y, X = self.shape
        zi = np.arange(zr.start, zr.stop, dtype=np.uint64)
        yi = np.arange(yr.start, yr.stop, dtype=np.uint64)
        xi = np.arange(xr.start, xr.stop, dtype=np.uint64)
        salt = np.uint64((spec.seed * 1_000_003 + f) << 40)
        row = ((np.uint64(t) * np.uint64(Z) + zi)[:, None] * np.uint64(Y) + yi[None, :])
        index = (row[:, :, None] * np.uint64(X) + xi[None, None, :]) ^ salt
        noise = _hash_normal(index)
        noise_scale = np.sqrt(signal) / f + np.float32(spec.read_noise / f)
        signal += noise * noise_scale
        signal += 100.0  # camera offset
        return np.clip(signal, 0, 65535).astype(np.uint16)

    def __reduce__(self):
        return (LightSheetVolume, (self.spec, self.factor))


def lightsheet(spec: LightSheetSpec = LARGE, levels: int = 4) -> LazyImage:
    """The synthetic series as a ``LazyImage`` with a pyramid in y and x.

    Chunks are single planes of at most 1024 × 1024, so showing a plane renders only it.
    """
    arrays, sources = [], []
    for i in range(levels):
        vol = LightSheetVolume(spec, 2**i)
        if i and min(vol.shape[2:]) < 64:
            break
        chunks = (1, 1, min(1024, vol.shape[2]), min(1024, vol.shape[3]))
        name = f"lp-lightsheet-{abs(hash(spec)):x}-{2**i}"
        arrays.append(as_dask(vol, chunks, name))
        sources.append(vol)
    z, y, x = spec.voxel_size
    t, zn, yn, xn = spec.shape
    return LazyImage(
        levels=arrays,
        sources=sources,
        axes="tzyx",
        scale=(spec.frame_interval, z, y, x),
        translate=(0.0, 0.0, 0.0, 0.0),
        units=("second", "micrometer", "micrometer", "micrometer"),
        name="light-sheet (synthetic)",
        contrast_limits=[(100.0, 100.0 + 0.7 * spec.brightness)],
        source={"path": None, "format": "synthetic", "spec": spec.__dict__.copy()},
    )

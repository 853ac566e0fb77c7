"""A synthetic light-sheet time series, generated lazily and deterministically per region.

Nuclei are Gaussian blobs inside an ellipsoidal embryo. They drift with a slow rotational
flow, condense and brighten just before they divide, and their two daughters move apart.
A dim background falls off with depth, as light-sheet illumination does, and camera noise
(shot noise plus read noise) is a function of each voxel's global index only (a hash of its
row picks where in a fixed table of normal deviates the row reads), and nuclei are added to a
voxel in an order that does not depend on the region, so any region computed on its own
equals the same region cut from a larger one, bit for bit.

Rendering is vectorized: nuclei are splatted in batches as separable Gaussians (float32,
one ``np.add.at`` per batch), and noise and conversion run slab by slab to stay in cache.
Renders are single-threaded; the engine runs many chunks in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._shared.regions import normalize_key
from .io import LazyImage, as_dask

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
    """Approximately standard-normal values from a splitmix64 hash of each index."""
    z = _splitmix64(index)
    # sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit variance
    mask = np.uint64(0xFFFF)
    s = (z & mask).astype(np.float32)
    for shift in (16, 32, 48):
        s += ((z >> np.uint64(shift)) & mask).astype(np.float32)
    return (s * np.float32(1 / 65535) - np.float32(2.0)) * np.float32(math.sqrt(3.0))


def _splitmix64(index: np.ndarray) -> np.ndarray:
    z = index + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


# Camera noise: a fixed table of normal deviates (from the hash above, so it is the same on
# every machine and numpy version), read along each image row from an offset that is a hash
# of the row's global index. Far cheaper than hashing every voxel, and still a function of the
# voxel's global index only. Rows longer than _NOISE_SEGMENT use one offset per segment.
_NOISE_TABLE_SIZE = 1 << 21
_NOISE_SEGMENT = 4096


@lru_cache(maxsize=1)
def _noise_table() -> np.ndarray:
    table = _hash_normal(np.arange(_NOISE_TABLE_SIZE, dtype=np.uint64) ^ np.uint64(0x5EED << 44))
    table.flags.writeable = False
    return table


# Splatting works on batches of nuclei whose windows hold about this many voxels in all.
_SPLAT_BATCH = 1 << 20
# Noise and the final conversion work on slabs of about this many voxels (cache-sized).
_SLAB = 1 << 17


@lru_cache(maxsize=16)
def _splat_table(spec: LightSheetSpec, t: int, f: int):
    """The nuclei at time ``t`` as Gaussians on the grid of level ``f``.

    Returns (centre (n, 3) µm, sigma (n,), amplitude (n,), first grid index (n, 3), end grid
    index (n, 3), z lookup), the window being the grid points within 3 sigma. Sorted (stably)
    by the window's size, which depends on nothing but the nucleus, so the order in which
    nuclei are added to a voxel is the same whatever region is rendered, and so is every
    voxel's value. The z lookup (the order by first z, those first z, the tallest window)
    finds the nuclei near a few planes without testing them all.
    """
    pos, rad, bright = _nuclei_at(spec, t)
    step, origin = _grid(spec, f)
    sigma = rad / 1.6
    reach = 3.0 * sigma
    attenuation = 0.8 * spec.shape[1] * spec.voxel_size[0]
    amp = spec.brightness * bright * np.exp(-pos[:, 0] / attenuation)
    first = np.ceil((pos - reach[:, None] - origin) / step).astype(np.int64)
    end = np.ceil((pos + reach[:, None] - origin) / step).astype(np.int64)
    order = np.argsort(np.prod(end - first, axis=1), kind="stable")
    first, end = first[order], end[order]
    by_z = np.argsort(first[:, 0], kind="stable")
    lookup = (by_z, first[by_z, 0], int((end[:, 0] - first[:, 0]).max(initial=0)))
    pos, sigma, amp = pos[order], sigma[order], amp[order]
    for a in (pos, sigma, amp, first, end, *lookup[:2]):
        a.flags.writeable = False  # shared by every render of this time point
    return pos, sigma, amp, first, end, lookup


def _grid(spec: LightSheetSpec, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxel k of level ``f`` along each axis is centred at ``k * step + origin`` (µm)."""
    vz, vy, vx = spec.voxel_size
    step = np.array([vz, vy * f, vx * f])
    origin = np.array([0.0, 0.5 * vy * f - vy / 2, 0.5 * vx * f - vx / 2])
    return step, origin


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
        """Render the region ``key`` selects (ints and step-1 slices)."""
        key = normalize_key(key, self.shape)
        ranges = [range(k.start, k.stop) if isinstance(k, slice) else range(k, k + 1) for k in key]
        out = np.stack([self._render(t, *ranges[1:]) for t in ranges[0]]) if len(ranges[0]) \
            else np.empty((0, len(ranges[1]), len(ranges[2]), len(ranges[3])), self.dtype)
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]

    def _render(self, t: int, zr: range, yr: range, xr: range) -> np.ndarray:
        spec, f = self.spec, self.factor
        shape = (len(zr), len(yr), len(xr))
        if 0 in shape:
            return np.zeros(shape, np.uint16)
        step, origin = _grid(spec, f)
        zs, ys, xs = (np.arange(r.start, r.stop) * step[i] + origin[i]
                      for i, r in enumerate((zr, yr, xr)))
        lineage = _lineage(spec)
        attenuation = 0.8 * spec.shape[1] * spec.voxel_size[0]
        depth = np.exp(-zs / attenuation)
        # background: dim haze inside the embryo, brighter at the illuminated side
        by = 0.6 + 0.4 * np.cos((ys - lineage.center[1]) / lineage.semi[1] * 1.2) ** 2
        bx = 0.7 + 0.3 * np.exp(-xs / (spec.shape[3] * spec.voxel_size[2]))
        bzy = ((spec.background * depth)[:, None] * by[None, :]).astype(np.float32)
        signal = np.empty(shape, np.float32)
        np.multiply(bzy[:, :, None], bx.astype(np.float32)[None, None, :], out=signal)
        self._splat(signal, t, (zr, yr, xr))
        out = np.empty(shape, np.uint16)
        self._finish(signal, out, t, zr, yr, xr)
        return out

    def _splat(self, signal: np.ndarray, t: int, region: tuple[range, range, range]) -> None:
        """Add every nucleus within reach of ``region`` to ``signal``, batch by batch.

        Each nucleus is a separable Gaussian on its window of grid points; a batch's windows
        are padded to the batch's largest (with zero weights), so the whole batch is a few
        array operations and one ``np.add.at`` on flat indices, which adds in order.
        """
        step, origin = _grid(self.spec, self.factor)
        pos, sigma, amp, first, end, (by_z, first_z, tallest) = _splat_table(
            self.spec, t, self.factor)
        lo = np.array([r.start for r in region])
        hi = np.array([r.stop for r in region])
        near = by_z[np.searchsorted(first_z, lo[0] - tallest + 1):np.searchsorted(first_z, hi[0])]
        if len(near) < len(by_z):
            near = np.sort(near)  # back to the table's order
            pos, sigma, amp, first, end = pos[near], sigma[near], amp[near], first[near], end[near]
        start = np.maximum(first, lo)
        length = np.minimum(end, hi) - start
        hit = np.flatnonzero((length > 0).all(axis=1))
        if not len(hit):
            return
        pos, sigma, amp, start, length = pos[hit], sigma[hit], amp[hit], start[hit], length[hit]
        Z, Y, X = signal.shape
        strides = (Y * X, X, 1)
        flat = signal.reshape(-1)
        total = np.cumsum(np.prod(length, axis=1))
        cuts = np.searchsorted(total, np.arange(_SPLAT_BATCH, total[-1], _SPLAT_BATCH))
        bounds = [0, *(cuts + 1).tolist(), len(hit)]
        for i, j in zip(bounds[:-1], bounds[1:], strict=True):
            if i >= j:
                continue
            width = length[i:j].max(axis=0)
            profiles, offsets = [], []
            for a in range(3):
                w = np.arange(width[a])
                k = start[i:j, a, None] + w  # global grid index
                inside = w < length[i:j, a, None]
                d = (k * step[a] + origin[a] - pos[i:j, a, None]) / sigma[i:j, None]
                profiles.append(np.where(inside, np.exp(-0.5 * d * d), 0.0).astype(np.float32))
                offsets.append((np.minimum(k, hi[a] - 1) - lo[a]) * strides[a])
            gz, gy, gx = profiles
            gz *= amp[i:j, None].astype(np.float32)
            weight = (gz[:, :, None] * gy[:, None, :])[..., None] * gx[:, None, None, :]
            index = (offsets[0][:, :, None] + offsets[1][:, None, :])[..., None] \
                + offsets[2][:, None, None, :]
            np.add.at(flat, index.reshape(-1), weight.reshape(-1))

    def _finish(self, signal, out, t, zr, yr, xr) -> None:
        """Camera noise (shot and read noise, level-salted), offset, clip and convert, by slab."""
        spec, f = self.spec, self.factor
        _, Z, Y, X = self.shape
        table = _noise_table()
        seg_len = _NOISE_SEGMENT
        nseg = -(-X // seg_len)
        xi = np.arange(xr.start, xr.stop)
        seg, within = xi // seg_len, xi % seg_len
        one_seg = seg[0] == seg[-1]
        salt = np.uint64((spec.seed * 1_000_003 + f) << 40)
        zi = np.arange(zr.start, zr.stop, dtype=np.uint64)
        yi = np.arange(yr.start, yr.stop, dtype=np.uint64)
        rows = (np.uint64(t) * np.uint64(Z) + zi)[:, None] * np.uint64(Y) + yi[None, :]
        segs = np.arange(seg[0], seg[-1] + 1, dtype=np.uint64)
        key = (rows[:, :, None] * np.uint64(nseg) + segs) ^ salt
        offset = (_splitmix64(key) % np.uint64(len(table) - seg_len + 1)).astype(np.intp)
        a, b = np.float32(1 / f), np.float32(spec.read_noise / f)
        n_rows, row_len = len(zr) * len(yr), len(xr)
        flat_sig = signal.reshape(n_rows, row_len)
        flat_out = out.reshape(n_rows, row_len)
        flat_off = offset.reshape(n_rows, -1)
        rows_per_slab = max(1, _SLAB // row_len)
        for r0 in range(0, n_rows, rows_per_slab):
            r1 = min(r0 + rows_per_slab, n_rows)
            s = flat_sig[r0:r1]
            if one_seg:
                idx = flat_off[r0:r1, :1] + within
            else:
                idx = flat_off[r0:r1][:, seg - seg[0]] + within
            noise = table.take(idx)
            scale = np.sqrt(s)
            scale *= a
            scale += b
            noise *= scale
            s += noise
            s += np.float32(100.0)  # camera offset
            np.clip(s, 0, 65535, out=s)
            flat_out[r0:r1] = s

    def __reduce__(self):
        """Pickle as the spec and the factor: nothing rendered travels with it."""
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

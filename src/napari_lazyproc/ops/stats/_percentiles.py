"""Percentiles of a chunked array exactly as ``numpy.percentile`` of the whole array.

The order statistics are found by a radix selection over order-preserving integer keys:
each pass counts, per chunk, the next 16 bits of the keys under the prefix found so far
(or, once few voxels are left under it, collects them), so 8- and 16-bit images need one
pass and 32-bit ones two. numpy's linear interpolation between them is then repeated
with numpy's own arithmetic.
"""

from __future__ import annotations

import threading

import numpy as np

#: a prefix with at most this many voxels under it: their keys are collected and sorted
COLLECT = 2**22
DIGIT = 16


def key_bits(dtype) -> int:
    return np.dtype(dtype).itemsize * 8


def to_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned keys in the values' order (floats: -inf first, NaN with a set sign bit
    last-but-never-used: callers stop on NaN first)."""
    values = np.asarray(values).ravel()
    dt = values.dtype
    bits = key_bits(dt)
    udt = np.dtype(f"u{dt.itemsize}")
    if dt.kind == "f":
        u = values.view(udt)
        sign = udt.type(1 << (bits - 1))
        return np.where(u & sign, ~u, u | sign)
    if dt.kind == "i":
        return (values.astype(np.int64) - np.iinfo(dt).min).astype(np.uint64).astype(udt)
    return values.astype(udt, copy=False)


def from_keys(keys: np.ndarray, dtype) -> np.ndarray:
    dt = np.dtype(dtype)
    bits = key_bits(dt)
    udt = np.dtype(f"u{dt.itemsize}")
    keys = np.asarray(keys, dtype=udt)
    if dt.kind == "f":
        sign = udt.type(1 << (bits - 1))
        return np.where(keys & sign, keys & ~sign, ~keys).astype(udt).view(dt)
    if dt.kind == "i":
        return (keys.astype(np.int64) + np.iinfo(dt).min).astype(dt)
    return keys.astype(dt)


def ranks_for(n: int, q) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's linear method: the ranks either side of each quantile, and gamma."""
    quantiles = np.true_divide(np.asarray(q, dtype=np.float64), 100)
    virtual = (n - 1) * quantiles
    previous = np.floor(virtual)
    nxt = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    nxt[above] = -1
    previous, nxt = previous.astype(np.intp), nxt.astype(np.intp)
    gamma = np.asanyarray(virtual - previous, dtype=virtual.dtype)
    return np.where(previous < 0, n - 1, previous), np.where(nxt < 0, n - 1, nxt), gamma


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp`` (the linear method), with arrays of the image's dtype."""
    diff_b_a = b - a
    out = np.asanyarray(np.add(a, diff_b_a * t))
    np.subtract(b, diff_b_a * (1 - t), out=out, where=t >= 0.5, casting="unsafe",
                dtype=type(out.dtype))
    return out


class Selection:
    """The keys of given ranks among all voxels, found pass by pass.

    ``pass_fn(block_keys_fn)`` is the caller's pass over every chunk: it calls
    ``add(keys)`` for each chunk's keys (from any thread).
    """

    def __init__(self, ranks, bits: int, n: int) -> None:
        self.bits = bits
        # per rank: [prefix, known bits, rank under the prefix, count under the prefix]
        self.state = {int(r): [0, 0, int(r), int(n)] for r in ranks}
        self.found: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return len(self.found) == len(self.state)

    def start_pass(self) -> None:
        self._groups = {}
        for r, (prefix, known, _, count) in self.state.items():
            if r in self.found:
                continue
            key = (prefix, known)
            if key not in self._groups:
                width = min(DIGIT, self.bits - known)
                collect = count <= COLLECT
                self._groups[key] = {"collect": collect, "width": width,
                                     "parts": [] if collect else None,
                                     "counts": None if collect else np.zeros(2**width, np.int64)}

    def add(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys).ravel()
        found = []
        for (prefix, known), g in self._groups.items():
            sel = keys if known == 0 else keys[(keys >> (self.bits - known)) == prefix]
            if g["collect"]:
                found.append((g, sel.copy()))
            else:
                shift = self.bits - known - g["width"]
                digits = (sel >> shift) & ((1 << g["width"]) - 1)
                found.append((g, np.bincount(digits.astype(np.int64), minlength=2**g["width"])))
        with self._lock:
            for g, part in found:
                if g["collect"]:
                    g["parts"].append(part)
                else:
                    g["counts"] += part

    def end_pass(self) -> None:
        for r, st in self.state.items():
            if r in self.found:
                continue
            prefix, known, rank, _ = st
            g = self._groups[prefix, known]
            if g["collect"]:
                keys = np.sort(np.concatenate(g["parts"]))
                self.found[r] = int(keys[rank])
                continue
            cum = np.cumsum(g["counts"])
            digit = int(np.searchsorted(cum, rank, side="right"))
            below = int(cum[digit - 1]) if digit else 0
            width = g["width"]
            st[:] = [(prefix << width) | digit, known + width, rank - below,
                     int(g["counts"][digit])]
            if st[1] == self.bits:
                self.found[r] = st[0]

"""Rendering the synthetic light-sheet sample: coarse whole volumes and full-resolution planes.

- coarse: ``LightSheetVolume(LARGE, 8)[t]`` (256 x 256 x 256 voxels), Mvox/s;
- plane: ``LightSheetVolume(LARGE, 1)[t, z]`` (2048 x 2048), ms per plane.

The per-time-point nuclei table is built before timing (it is cached in the viewer after
the first chunk). The peer is the renderer before the rewrite (``BEFORE``, from git),
measured in the same process.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
REPEATS = 5


def load(path: str | None):
    if path is None:
        from napari_lazyproc import synthetic
        return synthetic
    spec = importlib.util.spec_from_file_location("napari_lazyproc._bench_synthetic", path,
                                                  submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


#: the renderer before it drew nuclei in batches and noise from a table (the peer)
BEFORE = "ad5764e"


def measure(mod) -> tuple[float, float]:
    """(coarse volume Mvox/s, full-resolution plane ms), medians of ``REPEATS``."""
    LARGE = mod.LARGE
    mod._nuclei_at(LARGE, 7)  # build the lineage once (not part of a render)
    coarse = mod.LightSheetVolume(LARGE, 8)
    full = mod.LightSheetVolume(LARGE, 1)
    for t in range(3):
        mod._nuclei_at(LARGE, t)
    ct, pt = [], []
    for i in range(REPEATS):
        t0 = time.perf_counter()
        v = coarse[i % 3]
        ct.append(time.perf_counter() - t0)
    for i in range(REPEATS):
        t0 = time.perf_counter()
        full[i % 3, 60 + 40 * i]
        pt.append(time.perf_counter() - t0)
    return v.size / float(np.median(ct)) / 1e6, float(np.median(pt)) * 1e3


def _previous(tmp: str) -> str | None:
    import subprocess

    out = subprocess.run(["git", "show", f"{BEFORE}:src/napari_lazyproc/synthetic.py"],
                         capture_output=True, text=True, cwd=str(HERE))
    if out.returncode:
        return None
    path = f"{tmp}/synthetic_before.py"
    with open(path, "w") as f:
        f.write(out.stdout)
    return path


def main() -> str:
    import tempfile

    from _common import table

    rows = []
    mvox, ms = measure(load(None))
    rows.append(["napari-lazyproc (now)", f"{mvox:.0f}", f"{ms:.0f}", "1.00"])
    with tempfile.TemporaryDirectory() as tmp:
        before = _previous(tmp)
        if before is not None:
            old_mvox, old_ms = measure(load(before))
            rows.append([f"renderer of {BEFORE}", f"{old_mvox:.0f}", f"{old_ms:.0f}",
                         f"{mvox / old_mvox:.1f}x slower"])
    met = "met" if mvox >= 20 else "MISSED"
    return ("## Sample rendering: the 200 GB synthetic series (`bench_sample.py`)\n\n"
            "Coarsest level's whole volume at one time point (256 x 256 x 256, what 3D "
            "shows) and one full-resolution plane (2048 x 2048), medians of "
            f"{REPEATS}, both renderers in one process.\n\n"
            + table(["renderer", "coarse Mvox/s", "plane ms", "peer vs now"], rows)
            + f"\n\nTarget: coarse levels >= 20 Mvox/s ({met}: {mvox:.0f}).")


if __name__ == "__main__":
    print(main())

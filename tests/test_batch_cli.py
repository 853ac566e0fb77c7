"""``process`` over many datasets, run as users run it (a subprocess): templates, one
failure that does not stop the others, idempotent re-runs, and exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
from conftest import write_zarr

import napari_lazyproc as lp

RNG = np.random.default_rng(28)
#: five small datasets: three zarr arrays, two TIFFs (one of them broken at first)
VOLUMES = [RNG.random((6, 30, 40)).astype(np.float32) * 1000 for _ in range(5)]
SIGMA = 1.5


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", "process",
                           *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def _datasets(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for i, vol in enumerate(VOLUMES):
        if i < 3:
            paths.append(write_zarr(folder / f"emb{i}.zarr", vol, chunks=(3, 15, 20)))
        else:
            path = folder / f"emb{i}.tif"
            tifffile.imwrite(path, vol)
            paths.append(path)
    return paths


def _break(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])  # a truncated TIFF: its header, no pixels


def _mtimes(root: Path) -> dict[str, int]:
    """The modification time of every file and folder under ``root``, ``root`` too."""
    out = {str(root): root.stat().st_mtime_ns}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            out[p] = os.stat(p).st_mtime_ns
    return out


def _rows(stdout: str) -> dict[str, str]:
    """input -> status, from the summary table."""
    out = {}
    for line in stdout.splitlines():
        for status in ("already complete", "done", "failed", "cancelled"):
            if f"  {status}  " in line:
                out[line.split()[0]] = status
    return out


def _fast_equal(got: np.ndarray, ref: np.ndarray) -> None:
    """The precision contract of "fast" for floats: within 1e-6 of scipy relative to
    its largest magnitude."""
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert np.abs(got.astype(np.float64) - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.slow
def test_a_batch_with_a_broken_file_then_rerun_then_fixed(tmp_path):
    paths = _datasets(tmp_path / "data")
    _break(paths[4])
    (tmp_path / "results").mkdir()
    template = str(tmp_path / "results" / "{stem}.ome.zarr")
    pattern = [str(tmp_path / "data" / "*.zarr"), str(tmp_path / "data" / "*.tif")]
    step = ("--step", f"gaussian:sigma={SIGMA}")

    first = run(*pattern, "-o", template, *step)
    assert first.returncode == 3, first.stderr
    rows = _rows(first.stdout)
    assert rows == {**{str(p): "done" for p in paths[:4]}, str(paths[4]): "failed"}
    assert f"failed: {paths[4]}: cannot read" in first.stdout  # named, with its reason
    assert "4 done, 1 failed" in first.stdout
    assert "datasets" in first.stderr and "[5/5]" in first.stderr  # the two bars
    outs = [tmp_path / "results" / f"emb{i}.ome.zarr" for i in range(5)]
    for vol, out in zip(VOLUMES[:4], outs[:4], strict=True):
        _fast_equal(np.asarray(lp.open_image(out).levels[0]),
                    ndi.gaussian_filter(vol, SIGMA))
    assert not outs[4].exists() and not Path(str(outs[4]) + ".partial").exists()

    before = _mtimes(tmp_path / "results")
    again = run(*pattern, "-o", template, *step, "--quiet")
    assert again.returncode == 3, again.stderr
    assert _rows(again.stdout) == {**{str(p): "already complete" for p in paths[:4]},
                                   str(paths[4]): "failed"}
    assert "4 already complete, 1 failed" in again.stdout
    assert _mtimes(tmp_path / "results") == before  # nothing rewritten

    tifffile.imwrite(paths[4], VOLUMES[4])  # fixed
    fixed = run(*pattern, "-o", template, *step, "--quiet")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert _rows(fixed.stdout)[str(paths[4])] == "done"
    assert "4 already complete" in fixed.stdout
    _fast_equal(np.asarray(lp.open_image(outs[4]).levels[0]),
                ndi.gaussian_filter(VOLUMES[4], SIGMA))
    assert {k: v for k, v in _mtimes(tmp_path / "results").items() if k in before
            and "emb4" not in k and k != str(tmp_path / "results")} == {
        k: v for k, v in before.items() if k != str(tmp_path / "results")}


@pytest.mark.slow
def test_resume_on_a_complete_output_exits_0_and_rewrites_nothing(tmp_path):
    (data,) = _datasets(tmp_path / "data")[:1]
    pipeline = tmp_path / "pipe.json"
    pipeline.write_text(json.dumps([{"op": "gaussian", "sigma": SIGMA}]))
    out = tmp_path / "out.ome.zarr"
    made = run(data, "-o", out, "--pipeline", pipeline, "--quiet")
    assert made.returncode == 0, made.stderr
    before = _mtimes(out)
    # the same input spelled another way (relative, from another folder): the same one
    again = run(os.path.relpath(data, tmp_path), "-o", out.name, "--pipeline", pipeline,
                "--resume", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already complete" in again.stdout
    assert _mtimes(out) == before
    # without --resume, one input stays refused as before, and says why
    plain = run(data, "-o", out, "--pipeline", pipeline, "--quiet")
    assert plain.returncode == 2 and "already complete" in plain.stderr
    assert _mtimes(out) == before

    # another pipeline: refused, naming the step and the parameter that differ
    other = run(data, "-o", out, "--step", "gaussian:sigma=3", "--resume", "--quiet")
    assert other.returncode == 2
    assert "made by a different export" in other.stderr and "pipeline" in other.stderr
    assert "step 1 gaussian: sigma [1.5, 1.5, 1.5] there, [3.0, 3.0, 3.0] now" in other.stderr
    assert _mtimes(out) == before
    # another input: refused, naming both
    second = write_zarr(tmp_path / "data" / "other.zarr", VOLUMES[1], chunks=(3, 15, 20))
    another = run(second, "-o", out, "--pipeline", pipeline, "--resume", "--quiet")
    assert another.returncode == 2
    assert f"made from another input ({data} there, {second} now)" in another.stderr
    # the same input, its data rewritten since: refused, saying so
    write_zarr(data, VOLUMES[0] + 1, chunks=(3, 15, 20), overwrite=True)
    changed = run(data, "-o", out, "--pipeline", pipeline, "--resume", "--quiet")
    assert changed.returncode == 2
    assert "made from the same input before its data changed" in changed.stderr
    assert _mtimes(out) == before
    # and --overwrite replaces it
    over = run(data, "-o", out, "--step", "gaussian:sigma=3", "--overwrite", "--quiet")
    assert over.returncode == 0, over.stderr
    _fast_equal(np.asarray(lp.open_image(out).levels[0]),
                ndi.gaussian_filter(VOLUMES[0] + 1, 3))

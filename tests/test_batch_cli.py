"""``process`` over many datasets, run as users run it (a subprocess): templates, one
failure that does not stop the others, idempotent re-runs, and exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
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


def test_batch_measure_template_and_bad_arguments(tmp_path, capsys):
    from napari_lazyproc.cli import main

    masks = [ndi.gaussian_filter(RNG.random((4, 40, 50)), 2) > 0.52 for _ in range(2)]
    for i, m in enumerate(masks):
        write_zarr(tmp_path / f"m{i}.zarr", (m * 200).astype(np.uint8), chunks=(2, 20, 25))
    args = ["process", str(tmp_path / "m*.zarr"), "--step", "threshold:value=100",
            "--step", "label:scope=global", "-o", str(tmp_path / "{stem}_labels.zarr"),
            "--format", "zarr", "--measure", str(tmp_path / "{stem}.csv"), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 done" in out and f"{tmp_path / 'm0_labels.zarr'} + {tmp_path / 'm0.csv'}" in out
    for i, m in enumerate(masks):
        table = pd.read_csv(tmp_path / f"m{i}.csv")
        assert len(table) == ndi.label(m)[1]
        np.testing.assert_array_equal(
            np.asarray(lp.open_image(tmp_path / f"m{i}_labels.zarr").levels[0]) > 0, m)
    assert main(args) == 0 and "2 already complete" in capsys.readouterr().out

    # told before anything runs: exit 2, one line
    for bad, message in (
        ([str(tmp_path / "*.nd2"), "-o", "{stem}.zarr"], "no dataset matches"),
        ([str(tmp_path / "m*.zarr"), "-o", str(tmp_path / "{base}.zarr")],
         "unknown field {base}"),
        ([str(tmp_path / "m*.zarr"), "-o", str(tmp_path / "one.zarr")],
         "would both be written to"),
        ([str(tmp_path / "m*.zarr"), "--measure", str(tmp_path / "{stem}.xlsx")],
         "a table is saved as .csv or .parquet"),
    ):
        assert main(["process", *bad, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "one.zarr").exists()


@pytest.mark.slow
def test_batch_on_a_cluster_of_workers(tmp_path):
    """``--workers 2``: one local cluster, started once for the batch (the CLI's main
    thread), every dataset's chunks computed on it."""
    paths = _datasets(tmp_path / "data")[:3]
    done = run(*paths, "-o", str(tmp_path / "{stem}.zarr"), "--format", "zarr",
               "--step", f"gaussian:sigma={SIGMA}", "--workers", "2", "--quiet", "--exact")
    assert done.returncode == 0, done.stderr
    assert "3 done" in done.stdout
    for vol, path in zip(VOLUMES[:3], paths, strict=True):
        got = np.asarray(lp.open_image(tmp_path / f"{Path(path).stem}.zarr").levels[0])
        np.testing.assert_array_equal(got, ndi.gaussian_filter(vol, SIGMA))


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_with_its_summary_and_resume_finishes_it(tmp_path):
    import signal
    import time

    small = write_zarr(tmp_path / "a.zarr", VOLUMES[0], chunks=(3, 15, 20))
    big = np.random.default_rng(5).integers(0, 4000, (32, 256, 256), dtype=np.uint16)
    slow = write_zarr(tmp_path / "b.zarr", big, chunks=(4, 32, 32))
    last = write_zarr(tmp_path / "c.zarr", VOLUMES[1], chunks=(3, 15, 20))
    template = str(tmp_path / "out" / "{stem}.zarr")
    (tmp_path / "out").mkdir()
    args = [sys.executable, "-m", "napari_lazyproc.cli", "process", small, slow, last,
            "-o", template, "--format", "zarr", "--step", "median:size=5", "--quiet"]
    proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    markers = tmp_path / "out" / "b.zarr.partial" / ".lazyproc" / "done-0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (markers.exists() and any(markers.iterdir())):
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert _rows(out) == {str(small): "done", str(slow): "cancelled", str(last): "cancelled"}
    assert "cancelled" in err
    assert (tmp_path / "out" / "b.zarr.partial").is_dir()
    assert not (tmp_path / "out" / "c.zarr").exists()

    done = subprocess.run(list(map(str, args + ["--resume"])), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _rows(done.stdout) == {str(small): "already complete", str(slow): "done",
                                  str(last): "done"}
    np.testing.assert_array_equal(
        np.asarray(lp.open_image(tmp_path / "out" / "b.zarr").levels[0]),
        ndi.median_filter(big, size=5))

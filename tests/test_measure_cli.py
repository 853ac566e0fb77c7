"""``process --measure``: a regionprops table of the labels a pipeline produces."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from conftest import write_zarr
from skimage.measure import regionprops_table

MASK = ndi.gaussian_filter(np.random.default_rng(5).random((20, 60, 70)), 3) > 0.52
RAW = (MASK * 1000 + np.random.default_rng(6).integers(0, 500, MASK.shape)).astype(np.uint16)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", "process", *args],
                          capture_output=True, text=True, timeout=300)


def _same_objects(table: pd.DataFrame, props) -> None:
    """Labels are equal to scipy's up to a permutation: compare rows sorted by position."""
    labels = ndi.label(MASK)[0]
    ref = pd.DataFrame(regionprops_table(labels, RAW, properties=props))
    key = ["bbox-0", "bbox-1", "bbox-2", "area"]
    ours = table.sort_values(key).reset_index(drop=True).drop(columns="label")
    ref = ref.sort_values(key).reset_index(drop=True).drop(columns="label")
    pd.testing.assert_frame_equal(ours, ref, check_dtype=False, rtol=1e-9)


@pytest.mark.slow
def test_process_measure_writes_the_table_of_the_global_labels(tmp_path):
    raw = write_zarr(tmp_path / "raw.zarr", RAW, (5, 20, 20))
    out, table = tmp_path / "labels.ome.zarr", tmp_path / "cells.csv"
    done = run(str(raw), "-o", str(out), "--step", "threshold:value=800",
               "--step", "label:scope=global", "--measure", str(table), "--quiet",
               "--properties", "label,area,bbox,centroid,intensity_mean,intensity_max")
    assert done.returncode == 0, done.stderr
    assert f"wrote {table}" in done.stdout and out.exists()
    _same_objects(pd.read_csv(table), ("label", "area", "bbox", "centroid", "intensity_mean",
                                       "intensity_max"))


@pytest.mark.slow
def test_process_measure_without_output_and_bad_input(tmp_path):
    raw = write_zarr(tmp_path / "raw.zarr", RAW, (5, 20, 20))
    table = tmp_path / "cells.csv"
    done = run(str(raw), "--step", "threshold:value=800", "--step", "label:scope=global",
               "--measure", str(table), "--quiet")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(table)
    assert list(got.columns[:3]) == ["label", "area", "centroid-0"]
    assert "intensity_mean" in got and len(got) == ndi.label(MASK)[1]
    # no labels at the end of the pipeline: one line, exit 2, nothing computed
    done = run(str(raw), "--step", "gaussian:sigma=1", "--measure", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "--measure needs labels" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run(str(raw), "--step", "label", "--measure", str(tmp_path / "x.csv"),
               "--properties", "area,perimeter")
    assert done.returncode == 2 and "unsupported perimeter" in done.stderr
    done = run(str(raw), "--step", "label", "--measure", str(table))
    assert done.returncode == 2 and "exists" in done.stderr


def test_process_measure_of_a_plain_label_image_and_table_paths_checked_first(tmp_path):
    labels, n = ndi.label(MASK)
    lab = write_zarr(tmp_path / "lab.zarr", labels.astype(np.uint32), (5, 20, 20))
    table = tmp_path / "plain.csv"
    done = run(str(lab), "--measure", str(table), "--quiet")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(table)
    assert got["label"].tolist() == list(range(1, n + 1))
    assert got["area"].tolist() == np.bincount(labels.ravel())[1:].tolist()
    # a table in a folder that does not exist: one line before anything is computed
    done = run(str(lab), "--measure", str(tmp_path / "nowhere" / "t.csv"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

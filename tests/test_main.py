"""``python -m napari_lazyproc`` is the command line, as users expect of a Python tool."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_lazyproc", *args],
                          capture_output=True, text=True, timeout=120)


def test_python_m_runs_the_cli(ome_zarr_v04):
    done = _run("info", str(ome_zarr_v04))
    assert done.returncode == 0, done.stderr
    assert "format:    ome-zarr" in done.stdout
    assert "shape:     (12, 64, 80)" in done.stdout


def test_python_m_help_and_bad_input(tmp_path):
    done = _run("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: napari-lazyproc")
    missing = tmp_path / "nope.tif"
    done = _run("info", str(missing))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"napari-lazyproc: error: cannot read {str(missing)!r}: no such file or directory"
    ]

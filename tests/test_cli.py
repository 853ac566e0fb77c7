"""The command line: ``info`` prints what the reader sees; bad input exits 2 in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import background
import numpy as np
import pytest
from conftest import VOLUME

from napari_lazyproc.cli import main

#: the demo renders headless under Xvfb, on Linux
HEADLESS = pytest.mark.skipif(sys.platform != "linux" or shutil.which("Xvfb") is None,
                              reason="renders headless under Xvfb (Linux)")


def test_info_prints_what_the_reader_sees(ome_zarr_v04, capsys):
    assert main(["info", str(ome_zarr_v04)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "format:    ome-zarr", "shape:     (12, 64, 80)", "dtype:     uint16", "axes:      zyx",
        "chunks:    (4, 32, 32)", "levels:    (12, 64, 80), (12, 32, 40), (12, 16, 20)",
        "z=2 micrometer, y=0.5 micrometer, x=0.5 micrometer", "labels:    cells",
        "in memory", "on disk",
    ):
        assert expected in out


def test_info_hdf5_dataset_option(hdf5_file, capsys):
    assert main(["info", str(hdf5_file), "--dataset", "/volumes/small"]) == 0
    assert "shape:     (2, 10, 10)" in capsys.readouterr().out


def test_info_series_option(tmp_path, capsys):
    import tifffile

    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(VOLUME[:2], metadata={"axes": "ZYX"})
        tif.write(VOLUME[0, :10, :12], metadata={"axes": "YX"})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "shape:     (2, 64, 80)" in out and "series:    0 of 0..1" in out
    assert main(["info", str(path), "--series", "1"]) == 0
    out = capsys.readouterr().out
    assert "shape:     (10, 12)" in out and "[series=1]" in out
    assert main(["info", str(path), "--series", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("series=2 is out of range; the file has 2") and "\n" not in err


def test_info_series_on_a_format_without_series(hdf5_file, capsys):
    assert main(["info", str(hdf5_file), "--series", "1"]) == 2
    assert "HDF5 does not take that option" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "broken_zarr", "text"])
def test_bad_input_exits_2_with_one_line(tmp_path, make, capsys):
    path = tmp_path / {"missing": "nope.tif", "broken_zarr": "b.zarr", "text": "a.txt"}[make]
    if make == "broken_zarr":
        path.mkdir()
        (path / "zarr.json").write_text("{")
    elif make == "text":
        path.write_text("hello")
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("napari-lazyproc: error: cannot read") and str(path) in err


def test_ops_lists_the_registry(capsys):
    import napari_lazyproc as lp

    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for op in lp.list_ops():
        assert f"\n{op['name']} " in "\n" + out
    assert "sigma: float = 1.0" in out


@pytest.mark.slow
def test_console_script_runs(tiff_plain):
    exe = os.path.join(os.path.dirname(sys.executable), "napari-lazyproc")
    result = subprocess.run([exe, "info", str(tiff_plain)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "format:    tiff" in result.stdout


def _demo_screenshot(tmp: Path):
    """``demo --screenshot`` with no screen: its process and the picture's path."""
    out = tmp / "demo.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = background.run(
        [sys.executable, "-m", "napari_lazyproc.cli", "demo", "--screenshot", str(out)],
        env=env, timeout=300,
    )
    return result, out


def _demo_no_screen(tmp: Path):
    """``demo --small`` with no screen and no --screenshot, in ``tmp``: its process."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = background.run([sys.executable, "-m", "napari_lazyproc.cli", "demo", "--small"],
                            env=env, timeout=300, cwd=tmp)
    return result, tmp


@pytest.mark.slow
@HEADLESS
@pytest.mark.background.with_args(_demo_screenshot)  # run beside the other tests
def test_demo_screenshot_headless():
    """``demo --screenshot`` renders the large sample with no screen and exits."""
    result, out = background.result(_demo_screenshot)
    assert result.returncode == 0, result.stderr[-2000:]
    import imageio.v3 as iio

    shot = iio.imread(out)
    assert shot.shape[0] > 400 and shot[..., :3].std() > 5
    assert (shot[..., :3].max(axis=-1) > 100).mean() > 0.001
    assert np.unique(shot[..., 0]).size > 20


@pytest.mark.slow
@HEADLESS
@pytest.mark.background.with_args(_demo_no_screen)
def test_demo_with_no_screen_renders_headless_instead_of_failing():
    """The README's first command on a server: no DISPLAY, no --screenshot; Qt would
    abort, so the demo renders under Xvfb to a picture in the current folder and says so."""
    result, cwd = background.result(_demo_no_screen)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no screen found" in result.stderr and "napari-lazyproc-demo.png" in result.stderr
    import imageio.v3 as iio

    shot = iio.imread(cwd / "napari-lazyproc-demo.png")
    assert shot.shape[0] > 400 and np.unique(shot[..., 0]).size > 20


@pytest.mark.skipif(sys.platform != "linux", reason="DISPLAY is how Linux finds a screen")
def test_demo_with_no_screen_and_no_xvfb_says_so(tmp_path):
    """No screen and no Xvfb on PATH: a one-line reason and exit 2, not a Qt abort."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PATH"] = str(tmp_path)  # nothing there: no Xvfb
    for extra in ([], ["--screenshot", str(tmp_path / "x.png")]):
        result = subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", "demo", *extra],
                                capture_output=True, text=True, env=env, timeout=120,
                                cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "no Xvfb" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "x.png").exists()


def test_process_exact_records_the_precision(zarr_v3_array, tmp_path):
    import zarr
    from scipy import ndimage as ndi

    from napari_lazyproc.cli import main

    out = tmp_path / "g.ome.zarr"
    assert main(["process", str(zarr_v3_array), "-o", str(out), "--step", "gaussian:sigma=1.5",
                 "--exact", "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out / "0")),
                                  ndi.gaussian_filter(VOLUME, 1.5))
    attrs = dict(zarr.open_group(out, mode="r").attrs)
    assert attrs["napari-lazyproc"]["pipeline"][-1]["precision"] == "exact"

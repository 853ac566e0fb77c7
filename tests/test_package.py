"""Packaging: the manifest ships in the wheel, the core stays headless, CI runs the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_install_demo_and_test_commands():
    install, test = _readme_commands()[:2]
    assert install.endswith("&& napari-lazyproc demo")
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test = _readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


@pytest.mark.slow
def test_headless_core_imports_no_gui():
    code = (
        "import sys, napari_lazyproc as lp, napari_lazyproc.io, napari_lazyproc.synthetic\n"
        "import napari_lazyproc.ops, napari_lazyproc.backend, napari_lazyproc.export\n"
        "import napari_lazyproc.measure\n"
        "import napari_lazyproc.cli, napari_lazyproc._live, napari_lazyproc.export._export\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifest_is_valid_in_the_source_tree():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "napari.yaml")
    assert manifest.name == "napari-lazyproc"
    assert {r.command for r in manifest.contributions.readers} == {"napari-lazyproc.get_reader"}
    assert [w.display_name for w in manifest.contributions.widgets] == ["Process", "Measure",
                                                                      "Drift correction",
                                                                      "Segment"]
    assert {tuple(w.layer_types) for w in manifest.contributions.writers} == {
        ("image",), ("labels",)
    }
    assert set(manifest.contributions.menus) == {"napari/layers/filter", "napari/layers/segment",
                                                 "napari/layers/measure",
                                                 "napari/layers/register"}


@pytest.mark.slow
def test_wheel_ships_the_manifest_and_npe2_validates_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("napari_lazyproc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_lazyproc/napari.yaml" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    # run npe2 from the installed wheel, not from the source tree
    code = (
        "import sys, napari_lazyproc; "
        "assert 'site' in napari_lazyproc.__file__, napari_lazyproc.__file__;"
        "from npe2.cli import main; sys.argv=['npe2', 'validate', 'napari-lazyproc']; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in (result.stdout + result.stderr).lower()

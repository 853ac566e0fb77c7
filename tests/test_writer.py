"""The npe2 writer's module stays napari-free: napari loads writers to offer them, and a
script may save layers with no GUI."""

from __future__ import annotations

import subprocess
import sys

import pytest

GUI = ("napari", "qtpy", "magicgui", "superqt", "vispy", "PyQt5", "PyQt6", "PySide2", "PySide6")


@pytest.mark.slow
def test_writer_and_layer_adapters_import_no_gui():
    code = (
        "import sys, napari_lazyproc._writer, napari_lazyproc._layer_data\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {GUI!r})\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

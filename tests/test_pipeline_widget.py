"""The Process widget's Pipeline view in a real napari viewer under Xvfb: the steps shown,
saved (the JSON `process --pipeline` reads), loaded onto another layer, copied as Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import VOLUME, write_zarr
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

from napari.utils.notifications import notification_manager  # noqa: E402

import napari_lazyproc as lp  # noqa: E402
from napari_lazyproc._layer_data import layer_source  # noqa: E402
from napari_lazyproc._qt.widget import LazyProcessingWidget  # noqa: E402

pytestmark = pytest.mark.usefixtures("exact_precision")

#: a second embryo: other values, the same shape
OTHER = np.random.default_rng(11).integers(0, 4000, size=VOLUME.shape, dtype=np.uint16)
SRC = str(Path(lp.__file__).parents[1])


@pytest.fixture
def notes():
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


@pytest.fixture
def chain(make_napari_viewer, tmp_path):
    """Two files open; on the first, gaussian σ=2 (per plane) → threshold 2000 → label."""
    viewer = make_napari_viewer()
    first = write_zarr(tmp_path / "first.zarr", VOLUME, (4, 32, 32),
                       dimension_names=["z", "y", "x"])
    second = write_zarr(tmp_path / "second.zarr", OTHER, (4, 32, 32),
                        dimension_names=["z", "y", "x"])
    (raw,) = viewer.open(str(first), plugin="napari-lazyproc")
    (raw2,) = viewer.open(str(second), plugin="napari-lazyproc")
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Process")
    widget.input.value = raw
    widget.axes.value = "yx"
    widget.set_params(sigma=2.0)
    smooth = widget.add_layer()
    widget.input.value = smooth
    widget.operation.value = "threshold"
    widget.set_params(value=2000.0)
    mask = widget.add_layer()
    widget.input.value = mask
    widget.operation.value = "label"
    labels = widget.add_layer()
    return viewer, widget, raw2, labels


def _expected(data: np.ndarray) -> np.ndarray:
    """gaussian σ=2 per plane → > 2000 → labels per plane, by scipy on the whole array."""
    mask = ndi.gaussian_filter(data, (0, 2, 2)) > 2000
    return np.stack([ndi.label(plane)[0] for plane in mask])


def test_the_view_shows_the_selected_layers_steps_from_its_file(chain):
    viewer, widget, _, labels = chain
    panel = widget.pipeline
    assert viewer.layers.selection.active is labels
    rows = panel.view.data.to_list()
    assert [r[0] for r in rows] == ["gaussian", "threshold", "label"]
    assert rows[0][1] == "sigma=2 · axes yx · exact"
    assert rows[1][1].startswith("value=2000")
    assert "first.zarr" in panel.origin.value
    assert panel.save_button.enabled and panel.copy_button.enabled
    viewer.layers.selection.active = viewer.layers["first"]  # a file: no pipeline
    assert panel.view.data.to_list() == [] and not panel.save_button.enabled
    viewer.layers.selection.active = labels
    widget.params["connectivity"].value = 2  # a live update of the label layer
    assert panel.view.data.to_list()[-1][1].startswith("connectivity=2")


def test_saved_pipeline_loaded_onto_another_layer_equals_scipy(chain, tmp_path):
    viewer, widget, raw2, labels = chain
    path = tmp_path / "embryo pipeline.json"
    assert widget.pipeline.save(str(path))
    steps = json.loads(path.read_text())
    assert [s["op"] for s in steps] == ["gaussian", "threshold", "label"]
    assert lp.Pipeline.from_json(path.read_text()).steps == steps  # what the CLI reads
    np.testing.assert_array_equal(np.asarray(layer_source(labels)), _expected(VOLUME))

    n = len(viewer.layers)
    widget.input.value = raw2
    loaded = widget.pipeline.load(str(path))
    assert len(viewer.layers) == n + 1 and viewer.layers[-1] is loaded
    assert isinstance(loaded, napari.layers.Labels)
    assert loaded.name == "second · gaussian → threshold → label"
    assert loaded.metadata["source"]["path"].endswith("second.zarr")
    assert [s["op"] for s in loaded.metadata["pipeline"]] == ["gaussian", "threshold", "label"]
    got = np.asarray(layer_source(loaded))
    expected = _expected(OTHER)
    assert expected.max() > 3
    np.testing.assert_array_equal(got, expected)
    assert tuple(loaded.scale) == tuple(raw2.scale)


def test_copied_python_runs_and_gives_the_layers_array(chain, tmp_path, qtbot):
    from qtpy.QtWidgets import QApplication

    viewer, widget, _, labels = chain
    script = widget.pipeline.copy_python()
    assert script is not None and QApplication.clipboard().text() == script
    assert "lp.open_image(" in script and "first.zarr" in script
    out = tmp_path / "values.npy"
    run = tmp_path / "reproduce.py"
    run.write_text(script + f"\nimport numpy as np\nnp.save({str(out)!r}, result.compute())\n")
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([sys.executable, str(run)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(out), np.asarray(layer_source(labels)))


def test_refusals_are_notifications(chain, tmp_path, notes):
    viewer, widget, raw2, _ = chain
    bad = tmp_path / "bad.json"
    bad.write_text('[{"op": "gaussian", "sigma": 2}, {"op": "no_such_op"}]')
    widget.input.value = raw2
    n = len(viewer.layers)
    assert widget.pipeline.load(str(bad)) is None
    assert "no_such_op" in notes[-1].message and len(viewer.layers) == n
    assert widget.pipeline.load(str(tmp_path / "missing.json")) is None
    assert "cannot read" in notes[-1].message
    # a chain that starts from an array in memory has no file a script could open
    memory = viewer.add_image(VOLUME, name="memory")
    widget.input.value = memory
    widget.operation.value = "gaussian"
    viewer.layers.selection.active = widget.add_layer()
    assert widget.pipeline.copy_python() is None
    assert "starts from data in memory" in notes[-1].message


def test_copied_python_of_one_channel_opens_that_channel(make_napari_viewer, tmp_path,
                                                         ome_zarr_v05_channels):
    viewer = make_napari_viewer()
    layers = viewer.open(str(ome_zarr_v05_channels), plugin="napari-lazyproc")
    assert layers[1].name == "channels · GFP" and layers[1].metadata["channel"] == 1
    widget = LazyProcessingWidget(viewer)
    widget.input.value = layers[1]
    widget.axes.value = "yx"
    widget.lengths.value = "pixel"
    widget.operation.value = "median"
    layer = widget.add_layer()
    script = widget.pipeline.copy_python()
    assert "channel=1" in script
    out = tmp_path / "values.npy"
    (tmp_path / "run.py").write_text(
        script + f"\nimport numpy as np\nnp.save({str(out)!r}, result.compute())\n")
    done = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=SRC))
    assert done.returncode == 0, done.stderr
    got = np.load(out)
    np.testing.assert_array_equal(got, np.asarray(layer_source(layer)))
    np.testing.assert_array_equal(got, ndi.median_filter(VOLUME // 2, size=(1, 3, 3)))

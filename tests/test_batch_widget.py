"""*Process a folder…* in a real napari viewer under Xvfb: the selected layer's pipeline
(or a saved one) over real zarr datasets, in the background, and the summary table."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import VOLUME, write_zarr
from scipy import ndimage as ndi

napari = pytest.importorskip("napari")

import napari_lazyproc as lp  # noqa: E402
from napari_lazyproc._qt.widget import LazyProcessingWidget  # noqa: E402

pytestmark = pytest.mark.usefixtures("exact_precision")

RNG = np.random.default_rng(5)
DATA = {"emb1": VOLUME,
        "emb2": RNG.integers(0, 4000, size=(6, 40, 48), dtype=np.uint16),
        "emb3": RNG.integers(0, 4000, size=(8, 32, 32), dtype=np.uint16)}


@pytest.fixture
def folder(tmp_path):
    """Three small zarr datasets and one broken one (its metadata is not JSON)."""
    data = tmp_path / "data"
    for name, values in DATA.items():
        write_zarr(data / f"{name}.zarr", values, (4, 16, 16), dimension_names=["z", "y", "x"])
    broken = data / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{ not json")
    return data


@pytest.fixture
def batch(make_napari_viewer, folder):
    """The Process a folder window, set to the selected layer's pipeline: gaussian σ=2
    per plane → threshold 2000."""
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(folder / "emb1.zarr"), plugin="napari-lazyproc")
    widget = LazyProcessingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Process")
    widget.axes.value = "yx"
    widget.set_params(sigma=2.0)
    smooth = widget.add_layer()
    widget.input.value = smooth
    widget.operation.value = "threshold"
    widget.set_params(value=2000.0)
    widget.add_layer()
    panel = widget.pipeline.open_batch()
    yield panel
    panel.native.close()


def _expected(values: np.ndarray) -> np.ndarray:
    return ndi.gaussian_filter(values, (0, 2, 2)) > 2000


def _run(panel, qtbot):
    job = panel.run()
    assert job is not None and panel.cancel_button.enabled
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    return job


def test_a_folder_gives_outputs_equal_to_scipy_and_a_summary(batch, folder, tmp_path, qtbot):
    out = tmp_path / "results"
    assert batch.source.value == "layer" and "threshold" in batch.source.current_choice
    batch.inputs.value = str(folder / "*.zarr")
    assert batch.found.value == "4 datasets found"
    batch.output.value = out
    job = _run(batch, qtbot)
    assert job.outcome == "done"
    assert batch.status.value.endswith("(4 datasets, 1 failed)")
    rows = batch.summary.data.to_list()
    assert [r[0] for r in rows] == ["broken.zarr", "emb1.zarr", "emb2.zarr", "emb3.zarr"]
    assert [r[2] for r in rows] == ["failed", "done", "done", "done"]
    assert "not valid JSON" in rows[0][5] and not any(r[5] for r in rows[1:])  # says why
    assert rows[1][4] == f"{VOLUME.size:,}"
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.ome.zarr" for n in DATA]
    for name, values in DATA.items():
        with lp.open_image(out / f"{name}.ome.zarr") as back:
            got = np.asarray(back.levels[0])
        np.testing.assert_array_equal(got.astype(bool), _expected(values))
        assert got.shape == values.shape

    job = _run(batch, qtbot)  # again: what is complete is skipped, the broken one fails
    assert [r[2] for r in batch.summary.data.to_list()] == [
        "failed", "already complete", "already complete", "already complete"]


def test_a_saved_pipeline_file_runs_over_the_inputs(batch, folder, tmp_path, qtbot):
    steps = tmp_path / "median.json"
    steps.write_text(lp.Pipeline([{"op": "median", "size": 3, "axes": "zyx"}]).to_json())
    batch.source.value = "file"
    assert batch.pipeline_file.visible
    batch.pipeline_file.value = steps
    batch.inputs.value = f"{folder / 'emb2.zarr'}; {folder / 'emb3.zarr'}"
    batch.output.value = tmp_path / "out"
    batch.template.value = "{stem}_median.ome.zarr"
    assert _run(batch, qtbot).outcome == "done"
    assert [r[2] for r in batch.summary.data.to_list()] == ["done", "done"]
    for name in ("emb2", "emb3"):
        with lp.open_image(tmp_path / "out" / f"{name}_median.ome.zarr") as back:
            np.testing.assert_array_equal(np.asarray(back.levels[0]),
                                          ndi.median_filter(DATA[name], size=3))


def test_bad_choices_are_notifications(batch, tmp_path):
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    try:
        batch.inputs.value = str(tmp_path / "nothing" / "*.zarr")
        assert batch.found.value.startswith("no dataset matches")
        batch.output.value = tmp_path / "out"
        assert batch.run() is None and "no dataset matches" in seen[-1].message
        batch.source.value = "file"
        batch.pipeline_file.value = tmp_path / "missing.json"
        assert batch.run() is None and "no pipeline file" in seen[-1].message
    finally:
        notification_manager.notification_ready.disconnect(seen.append)
    assert not (tmp_path / "out").exists()


def test_cancel_stops_the_batch_and_the_summary_says_so(batch, tmp_path, qtbot):
    big = RNG.integers(0, 4000, size=(48, 256, 256), dtype=np.uint16)
    for k in range(2):  # 768 chunks each: far longer to write than to cancel
        write_zarr(tmp_path / "big" / f"big{k}.zarr", big, (1, 64, 64),
                   dimension_names=["z", "y", "x"])
    batch.inputs.value = str(tmp_path / "big" / "*.zarr")
    batch.output.value = tmp_path / "out"
    job = batch.run()
    qtbot.waitUntil(lambda: batch.status.value.startswith("1/2"), timeout=20000)
    batch.cancel_button.changed.emit(True)  # what clicking Cancel does
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.outcome == "cancelled" and batch.run_button.enabled
    assert [r[2] for r in batch.summary.data.to_list()] == ["cancelled", "cancelled"]
    assert "cancelled" in batch.status.value

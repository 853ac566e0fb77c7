"""The Pipeline view's text, headless: a step's parameters in one line, the saved JSON,
and the script that reproduces a result (run here as it is copied)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import VOLUME
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc._pipeline_script import (
    open_options,
    pipeline_rows,
    python_script,
    saved_pipeline,
)


@pytest.fixture
def two_datasets(tmp_path):
    """An HDF5 file with two volumes: the script must name the one the layer showed."""
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("first", data=VOLUME, chunks=(4, 32, 32))
        f.create_dataset("second", data=VOLUME[::-1].copy(), chunks=(4, 32, 32))
    return path


def test_rows_show_what_differs_from_the_defaults():
    result = lp.apply("median", lp.apply("gaussian", VOLUME, sigma=2.0, axes="yx",
                                         precision="exact"), size=5, mode="nearest")
    assert pipeline_rows(result.steps) == [
        ("gaussian", "sigma=2 · axes yx · exact"),
        ("median", "size=5 · mode=nearest · axes zyx · fast"),
    ]


def test_saved_pipeline_is_what_from_json_reads_and_refuses_a_function():
    result = lp.apply("gaussian", VOLUME, sigma=(1.0, 2.0, 3.0))
    text = saved_pipeline(result.steps)
    assert lp.Pipeline.from_json(text).steps == json.loads(text)
    assert json.loads(text)[0]["sigma"] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="Python function"):
        saved_pipeline(lp.apply("generic_filter", VOLUME, function=np.ptp, size=3).steps)


def test_script_opens_the_dataset_the_chain_started_from(two_datasets):
    with lp.open_image(two_datasets, dataset="second") as image:
        options = open_options(image.source)
        assert options == {"dataset": "/second"}
        result = lp.apply("uniform", image, size=3, precision="exact")
        expected = np.asarray(result)
    script = python_script(result.steps, str(two_datasets), name="two · uniform",
                           options=options)
    scope: dict = {}
    exec(compile(script, "reproduce.py", "exec"), scope)  # as the user runs it
    np.testing.assert_array_equal(scope["result"].compute(), expected)
    np.testing.assert_array_equal(expected, ndi.uniform_filter(VOLUME[::-1], 3))


def test_script_of_whole_volume_labels_runs_the_job(tmp_path):
    from conftest import write_zarr

    mask = (ndi.gaussian_filter(VOLUME.astype(float), 2) > 2000).astype(np.uint8)
    path = write_zarr(tmp_path / "mask.zarr", mask, (4, 32, 32), dimension_names=list("zyx"))
    with lp.open_image(path) as image:
        labels = lp.label_global(image).run()
        expected = np.asarray(labels)
    script = python_script(labels.steps, str(path))
    assert "result.run()" in script
    scope: dict = {}
    exec(compile(script, "reproduce.py", "exec"), scope)
    np.testing.assert_array_equal(np.asarray(scope["result"]), expected)
    assert expected.max() == ndi.label(mask)[1] > 1

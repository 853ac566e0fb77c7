"""``napari_lazyproc.batch``: templates, inputs, and ``run_batch`` (napari-free) on real
zarr and TIFF files: values against scipy, failures recorded, idempotent re-runs,
progress, cancel, and ``measure`` per dataset."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
import tifffile
from conftest import write_zarr

import napari_lazyproc as lp
from napari_lazyproc.batch import (
    BatchRow,
    expand_inputs,
    load_pipeline,
    output_for,
    run_batch,
    stem_of,
    summary_table,
)

RNG = np.random.default_rng(280)
VOLUMES = [RNG.random((4, 24, 32)).astype(np.float32) * 100 for _ in range(3)]
STEPS = [{"op": "gaussian", "sigma": 1.0}]


def _inputs(tmp_path) -> list[str]:
    (tmp_path / "in").mkdir()
    return [str(write_zarr(tmp_path / "in" / f"e{i}.zarr", v, chunks=(2, 12, 16)))
            for i, v in enumerate(VOLUMES)]


def _close(got, ref) -> None:
    assert np.abs(np.asarray(got, np.float64) - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("path, stem, name, parent", [
    ("/d/run1/emb1.ome.zarr", "emb1", "emb1.ome.zarr", "run1"),
    ("/d/run1/emb1.ome.zarr/", "emb1", "emb1.ome.zarr", "run1"),
    ("data/t.v2.tif", "t.v2", "t.v2.tif", "data"),
    ("x/a.ome.tiff", "a", "a.ome.tiff", "x"),
    ("x/stack.h5", "stack", "stack.h5", "x"),
    ("x/noext", "noext", "noext", "x"),
])
def test_output_template_fields(path, stem, name, parent):
    assert stem_of(path) == stem
    assert output_for("out/{parent}_{stem}.ome.zarr", path) == f"out/{parent}_{stem}.ome.zarr"
    assert output_for("{name}.csv", path) == f"{name}.csv"
    assert output_for("fixed.zarr", path) == "fixed.zarr"


def test_output_template_refuses_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown field \{base\}; use \{stem\}, \{name\}"):
        output_for("r/{base}.zarr", "a.zarr")
    with pytest.raises(ValueError, match="output template"):
        output_for("r/{stem.zarr", "a.zarr")


def test_expand_inputs_sorts_globs_and_keeps_paths(tmp_path):
    for name in ("b.zarr", "a.zarr", "c.tif"):
        (tmp_path / name).mkdir()
    got = expand_inputs([str(tmp_path / "*.zarr"), str(tmp_path / "a.zarr"), "missing.tif"])
    assert got == [str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"), "missing.tif"]
    with pytest.raises(ValueError, match=r"no dataset matches '.*\*\.nd2'"):
        expand_inputs([str(tmp_path / "*.nd2")])


def test_load_pipeline_from_each_form(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(lp.Pipeline(STEPS).to_json())
    for form in (lp.Pipeline(STEPS), STEPS, STEPS[0], {"steps": STEPS}, path, str(path)):
        assert load_pipeline(form).steps == STEPS
    assert load_pipeline(None).steps == []
    path.write_text("[{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_pipeline(path)
    with pytest.raises(ValueError, match="unknown operation 'blur'"):
        load_pipeline([{"op": "blur"}])


def test_run_batch_values_failures_and_rerun(tmp_path):
    inputs = _inputs(tmp_path)
    broken = tmp_path / "in" / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{")
    inputs.insert(1, str(broken))
    (tmp_path / "out").mkdir()
    template = str(tmp_path / "out" / "{stem}.zarr")
    calls = []
    rows = run_batch(STEPS, inputs, template, format="zarr",
                     progress=lambda *a: calls.append(a))
    assert [r.status for r in rows] == ["done", "failed", "done", "done"]
    assert all(isinstance(r, BatchRow) for r in rows)
    assert rows[1].input == str(broken) and "cannot read" in rows[1].error
    assert rows[0].voxels == VOLUMES[0].size and rows[0].seconds > 0
    for vol, row in zip(VOLUMES, [rows[0], rows[2], rows[3]], strict=True):
        assert row.output == str(tmp_path / "out" / f"{stem_of(row.input)}.zarr")
        _close(lp.open_image(row.output).levels[0], ndi.gaussian_filter(vol, 1.0))
    # progress: every dataset, fractions in [0, 1], the overall one never going back
    assert {c[0] for c in calls} == {0, 1, 2, 3}
    overall = [c[2] for c in calls]
    assert overall == sorted(overall) and overall[-1] == 1.0
    assert all(0.0 <= c[1] <= 1.0 for c in calls)
    assert any("writing" in c[3] for c in calls)
    table = summary_table(rows)
    assert "3 done, 1 failed" in table and f"failed: {broken}: cannot read" in table

    again = run_batch(lp.Pipeline(STEPS), inputs, template, format="zarr")
    assert [r.status for r in again] == ["already complete", "failed", "already complete",
                                         "already complete"]
    other = run_batch([{"op": "gaussian", "sigma": 2.0}], inputs[:1], template,
                      format="zarr")
    assert other[0].status == "failed"
    assert "made by a different export" in other[0].error and "sigma" in other[0].error
    over = run_batch([{"op": "gaussian", "sigma": 2.0}], inputs[:1], template,
                     format="zarr", overwrite=True)
    assert over[0].status == "done"
    _close(lp.open_image(over[0].output).levels[0], ndi.gaussian_filter(VOLUMES[0], 2.0))


def test_run_batch_refuses_two_datasets_to_one_output(tmp_path):
    inputs = _inputs(tmp_path)
    with pytest.raises(ValueError, match=r"would both be written to .*same\.zarr: put \{stem\}"):
        run_batch(STEPS, inputs, str(tmp_path / "same.zarr"))
    with pytest.raises(ValueError, match="give an output template, a measure template"):
        run_batch(STEPS, inputs, None)
    with pytest.raises(ValueError, match=r"the folder .*nowhere does not exist: create it"):
        run_batch(STEPS, inputs, str(tmp_path / "nowhere" / "{stem}.zarr"))
    assert not (tmp_path / "same.zarr").exists()


@pytest.mark.parametrize("fmt", ["tiff", "ome-tiff", "ome-zarr"])
def test_tiff_and_ome_zarr_outputs_are_recognised_as_complete(tmp_path, fmt):
    inputs = _inputs(tmp_path)[:2]
    tif = tmp_path / "in" / "plain.tif"
    tifffile.imwrite(tif, VOLUMES[2], photometric="minisblack")
    inputs.append(str(tif))
    suffix = ".ome.zarr" if fmt == "ome-zarr" else ".tif"
    template = str(tmp_path / ("{stem}" + suffix))
    rows = run_batch(STEPS, inputs, template, format=fmt)
    assert [r.status for r in rows] == ["done"] * 3
    for vol, row in zip(VOLUMES, rows, strict=True):
        _close(lp.open_image(row.output).levels[0], ndi.gaussian_filter(vol, 1.0))
    assert [r.status for r in run_batch(STEPS, inputs, template, format=fmt)] == [
        "already complete"] * 3


def test_cancel_stops_the_running_dataset_and_resume_finishes_it(tmp_path):
    inputs = _inputs(tmp_path)
    cancel = threading.Event()

    def progress(index, fraction, overall, message):
        if index == 1 and "writing" in message and fraction > 0:
            cancel.set()

    template = str(tmp_path / "{stem}.zarr")
    rows = run_batch(STEPS, inputs, template, format="zarr", progress=progress,
                     cancel=cancel)
    assert [r.status for r in rows] == ["done", "cancelled", "cancelled"]
    assert (tmp_path / "e1.zarr.partial").is_dir() and not (tmp_path / "e1.zarr").exists()
    assert not (tmp_path / "e2.zarr").exists() and not (tmp_path / "e2.zarr.partial").exists()
    rows = run_batch(STEPS, inputs, template, format="zarr", resume=True)
    assert [r.status for r in rows] == ["already complete", "done", "done"]
    for vol, row in zip(VOLUMES, rows, strict=True):
        _close(lp.open_image(row.output).levels[0], ndi.gaussian_filter(vol, 1.0))


def test_measure_per_dataset_with_the_same_template(tmp_path):
    masks = [ndi.gaussian_filter(RNG.random((4, 40, 50)), 2) > 0.52 for _ in range(2)]
    inputs = [str(write_zarr(tmp_path / f"m{i}.zarr", (m * 200).astype(np.uint8),
                             chunks=(2, 20, 25))) for i, m in enumerate(masks)]
    steps = [{"op": "threshold", "value": 100}, {"op": "label", "scope": "global"}]
    rows = run_batch(steps, inputs, str(tmp_path / "{stem}_labels.zarr"),
                     measure=str(tmp_path / "{stem}.csv"), format="zarr",
                     properties="label,area")
    assert [r.status for r in rows] == ["done", "done"]
    for mask, row in zip(masks, rows, strict=True):
        assert row.table == str(tmp_path / f"{stem_of(row.input)}.csv")
        table = pd.read_csv(row.table)
        labels, n = ndi.label(mask)
        assert len(table) == n
        assert sorted(table["area"]) == sorted(np.bincount(labels.ravel())[1:])
    again = run_batch(steps, inputs, str(tmp_path / "{stem}_labels.zarr"),
                      measure=str(tmp_path / "{stem}.csv"), format="zarr",
                      properties="label,area")
    assert [r.status for r in again] == ["already complete"] * 2
    # a table there already, its output not: refused before anything is computed
    fresh = run_batch(steps, inputs, str(tmp_path / "{stem}_new.zarr"),
                      measure=str(tmp_path / "{stem}.csv"), format="zarr")
    assert [r.status for r in fresh] == ["failed"] * 2
    assert "exists; pass --overwrite" in fresh[0].error
    assert not list(tmp_path.glob("*_new.zarr*"))
    # a measure-only batch of a pipeline that does not end in labels: each one fails
    bad = run_batch([{"op": "gaussian", "sigma": 1.0}], inputs, None,
                    measure=str(tmp_path / "{stem}_g.csv"))
    assert [r.status for r in bad] == ["failed"] * 2
    assert "--measure needs labels" in bad[0].error


def test_pipeline_json_as_process_reads_it(tmp_path):
    inputs = _inputs(tmp_path)[:1]
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps([{"op": "gaussian", "sigma": 1.0},
                                {"op": "threshold", "value": 50}]))
    (row,) = run_batch(path, inputs, str(tmp_path / "{stem}.ome.zarr"))
    assert row.status == "done"
    got = np.asarray(lp.open_image(row.output).levels[0])
    np.testing.assert_array_equal(got > 0, ndi.gaussian_filter(VOLUMES[0], 1.0) > 50)


def test_a_batch_to_urls_is_idempotent_too(tmp_path):
    """A URL's store cannot rename: its manifest marks it complete, its attributes keep
    the job, as on disk."""
    inputs = _inputs(tmp_path)[:2]
    template = f"memory://batch-{tmp_path.name}/{{stem}}.ome.zarr"
    assert [r.status for r in run_batch(STEPS, inputs, template)] == ["done"] * 2
    assert [r.status for r in run_batch(STEPS, inputs, template)] == ["already complete"] * 2
    other = run_batch([{"op": "gaussian", "sigma": 2.0}], inputs, template)
    assert [r.status for r in other] == ["failed"] * 2 and "sigma" in other[0].error
    for vol, row in zip(VOLUMES[:2], other, strict=True):
        _close(lp.open_image(row.output).levels[0], ndi.gaussian_filter(vol, 1.0))

"""An output already complete is judged by the job it records (the resume record: the
input's identity, the pipeline, the options): the same job writes nothing, another is
refused naming what differs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import VOLUME, write_zarr

import napari_lazyproc as lp
from napari_lazyproc.export import ExportError, completed


def _mtimes(root) -> dict[str, int]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            out[os.path.join(dirpath, name)] = os.stat(os.path.join(dirpath, name)).st_mtime_ns
    return out


@pytest.mark.parametrize("fmt, suffix", [("ome-zarr", ".ome.zarr"), ("zarr", ".zarr"),
                                          ("tiff", ".tif"), ("ome-tiff", ".ome.tif")])
def test_the_same_export_again_writes_nothing(tmp_path, fmt, suffix):
    src = write_zarr(tmp_path / "in.zarr", VOLUME, chunks=(4, 32, 40))
    out = tmp_path / f"out{suffix}"

    def result(sigma=1.0, path=src):
        return lp.apply("gaussian", lp.open_image(path), sigma=sigma)

    assert not completed(result(), out, format=fmt)
    lp.export(result(), out, format=fmt)
    before = _mtimes(tmp_path) | {str(out): out.stat().st_mtime_ns}
    assert completed(result(), out, format=fmt)
    assert lp.export(result(), out, format=fmt, resume=True) == out
    assert _mtimes(tmp_path) | {str(out): out.stat().st_mtime_ns} == before
    with pytest.raises(ExportError, match="already exists: already complete, made by this "
                                          "pipeline from this input; pass resume=True"):
        lp.export(result(), out, format=fmt)
    with pytest.raises(ExportError, match=r"already exists; pass overwrite=True \(--overwrite\)"
                                          r" to replace it: it was made by a different export"
                                          r" \(input, pipeline differ: step 1 gaussian: sigma"):
        completed(result(2.0), out, format=fmt)
    other = write_zarr(tmp_path / "other.zarr", VOLUME, chunks=(4, 32, 40))
    with pytest.raises(ExportError, match=f"made from another input \\({src} there, "
                                          f"{other} now\\)"):
        lp.export(result(path=other), out, format=fmt, resume=True)
    assert _mtimes(tmp_path / "in.zarr") == {k: v for k, v in before.items()
                                             if k.startswith(str(src) + os.sep)}
    lp.export(result(2.0), out, format=fmt, overwrite=True)
    got = np.asarray(lp.open_image(out).levels[0])
    np.testing.assert_allclose(got, ndi.gaussian_filter(VOLUME, 2.0), atol=1)


def test_an_output_without_a_record_is_only_said_to_exist(tmp_path):
    src = write_zarr(tmp_path / "in.zarr", VOLUME, chunks=(4, 32, 40))
    out = write_zarr(tmp_path / "theirs.zarr", VOLUME, chunks=(4, 32, 40))
    res = lp.apply("gaussian", lp.open_image(src), sigma=1.0)
    assert not completed(res, out, format="zarr")
    with pytest.raises(ExportError, match=r"theirs\.zarr already exists; pass overwrite"):
        lp.export(res, out, format="zarr", resume=True)

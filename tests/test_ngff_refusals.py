"""Invalid OME-NGFF (the ome/ngff spec's own invalid examples, written as stores by
zarr), text arrays and a pre-spec zarr v3 draft store are refused in one line naming the
file and the spec's reason; an option a format does not take is the only TypeError
reported as the user's."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

import napari_lazyproc as lp
from napari_lazyproc.io import ImageReadError

DATA = Path(__file__).parent / "data"
SPACE = {"type": "space", "unit": "micrometer"}
VALID = {"multiscales": [{"version": "0.4", "axes": [{"name": "y", **SPACE},
                                                      {"name": "x", **SPACE}],
                          "datasets": [{"path": "0", "coordinateTransformations": [
                              {"type": "scale", "scale": [0.13, 0.13]}]}]}]}


def _store(tmp_path, attrs, shape=(4, 4)) -> Path:
    path = tmp_path / "bad.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", shape=shape, dtype="uint8")[:] = 1
    group.attrs.update(attrs)
    return path


def _error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    message = str(info.value)
    assert message.startswith(f"cannot read {os.fspath(path)!r}: ")
    assert "\n" not in message
    return message


def _with(**changes):
    attrs = copy.deepcopy(VALID)
    attrs["multiscales"][0].update(changes)
    return attrs


def test_the_valid_example_opens(tmp_path):
    image = lp.open_image(_store(tmp_path, VALID))
    assert image.axes == "yx" and image.scale == (0.13, 0.13)


def test_duplicate_axes_are_refused(tmp_path):  # ngff 0.4/examples/invalid/duplicate_axes_name
    attrs = _with(axes=[{"name": "x", "type": "space", "units": "micron"},
                        {"name": "x", "type": "space", "units": "meter"}])
    assert _error(_store(tmp_path, attrs)).endswith(
        "axis name 'x' repeats (OME-NGFF: axis names MUST be unique)")


def test_unnamed_axes_are_refused(tmp_path):  # .../invalid/missing_axes_name
    attrs = _with(axes=[{"type": "space", "units": "micron"}] * 2)
    assert _error(_store(tmp_path, attrs)).endswith(
        "axis 0 has no name (OME-NGFF: each axis MUST have a 'name')")


def test_four_space_axes_are_refused(tmp_path):  # .../invalid/too_many_space_axes
    attrs = _with(axes=[{"name": n, "type": "space"} for n in "Xzyx"],
                  datasets=[{"path": "0", "coordinateTransformations": [
                      {"type": "scale", "scale": [1, 1, 1, 1]}]}])
    assert _error(_store(tmp_path, attrs, (2, 2, 4, 4))).endswith(
        "4 axes of type 'space' (X, z, y, x) (OME-NGFF: there MUST be 2 or 3 space axes)")


def test_untyped_axes_one_letter_apart_are_refused(tmp_path):
    attrs = _with(axes=[{"name": n} for n in "Xzyx"],
                  datasets=[{"path": "0"}])
    assert _error(_store(tmp_path, attrs, (2, 2, 4, 4))).endswith(
        "axes 'X', 'x' are one axis letter here (names must differ in their first letter, "
        "case aside)")


def test_space_before_time_is_refused(tmp_path):
    attrs = _with(axes=[{"name": "y", **SPACE}, {"name": "t", "type": "time"},
                        {"name": "x", **SPACE}],
                  datasets=[{"path": "0"}])
    assert _error(_store(tmp_path, attrs, (4, 2, 4))).endswith(
        "axes in the order y, t, x (OME-NGFF: time first, then channel or custom axes, "
        "then space)")


def test_dataset_without_path_is_refused(tmp_path):  # .../invalid/missing_path
    attrs = _with(datasets=[{"coordinateTransformations": [
        {"type": "scale", "scale": [0.13, 0.13]}]}])
    assert _error(_store(tmp_path, attrs)).endswith(
        "dataset 0 has no 'path' (OME-NGFF: each dataset MUST have a path)")


def test_scale_shorter_than_the_axes_is_refused(tmp_path):
    attrs = _with(datasets=[{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [0.13]}]}])
    assert _error(_store(tmp_path, attrs)).endswith(
        "dataset '0' scale has 1 values for 2 axes (OME-NGFF: one value per axis)")


def test_a_text_array_is_refused_alone_and_in_a_multiscale(tmp_path):
    lone = tmp_path / "names.zarr"
    zarr.create_array(lone, data=np.array([["nucleus", "cell"]] * 2), zarr_format=2)
    assert zarr.open_array(lone).dtype.kind == "U"
    assert _error(lone).endswith(
        "the zarr array '/' holds <U7 values, not numbers: only numeric arrays are images")
    path = tmp_path / "text.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", data=np.array([["a", "b"]] * 2))
    group.attrs.update(VALID)
    assert "the zarr array '0' holds <U1 values, not numbers" in _error(path)


def test_a_zarr_v3_draft_store_is_named_not_blamed_on_an_option():
    # written by zarr-python 2.18.3's experimental v3 API (tests/data/SOURCES.md)
    path = DATA / "zarr" / "v3_draft.zarr"
    message = _error(path)
    assert "a zarr v3 draft store (zarr.json says zarr_format " in message
    assert "does not take that option" not in message


def test_only_the_users_own_option_is_reported_as_one(tmp_path):
    path = _store(tmp_path, VALID)
    assert _error(path, serie=1).endswith(
        "OME-Zarr does not take that option: got an unexpected keyword argument 'serie'")


def test_a_readers_own_type_error_is_the_files_not_an_option(tmp_path):
    path = tmp_path / "odd.zarr"
    path.mkdir()
    # final v3, with a key zarr-python's group metadata does not take
    (path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", '
                                    '"extensions": []}')
    message = _error(path)
    assert message.endswith("not a readable zarr (GroupMetadata.__init__() got an "
                            "unexpected keyword argument 'extensions')")

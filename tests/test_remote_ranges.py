"""A sharded zarr v3 array over HTTP: its chunks are byte ranges of shard files, so a
server that ignores Range requests (Python's ``http.server``, ``python -m http.server``)
is named as the cause, and one that answers them reads as the local file does."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from servers import FileServer

import napari_lazyproc as lp
from napari_lazyproc.io import ImageReadError

DATA = np.random.default_rng(9).integers(0, 4000, size=(4, 64, 64), dtype=np.uint16)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    arr = zarr.create_array(root / "sharded.zarr", shape=DATA.shape, chunks=(1, 16, 16),
                            shards=(2, 32, 32), dtype=DATA.dtype,
                            dimension_names=["z", "y", "x"])
    arr[:] = DATA
    with FileServer(root) as srv:
        yield srv


def test_a_server_ignoring_range_requests_is_named_as_the_cause(server):
    server.ranges = False  # as ``python -m http.server``
    image = lp.open_image(server.url("sharded.zarr"))
    with pytest.raises(ImageReadError) as info:
        np.asarray(image.data[0, :16, :16])
    message = str(info.value)
    assert f"cannot read {server.url('sharded.zarr/c/0/')!r}"[:-1] in message  # a shard
    assert "the server ignores HTTP Range requests (it sent" in message
    assert "\n" not in message


def test_a_server_answering_range_requests_reads_the_sharded_array(server):
    server.ranges = True
    try:
        image = lp.open_image(server.url("sharded.zarr"))
        np.testing.assert_array_equal(np.asarray(image.data[1:3, 8:40, 20:60]),
                                      DATA[1:3, 8:40, 20:60])
        np.testing.assert_array_equal(np.asarray(image.data),
                                      zarr.open_array(server.root / "sharded.zarr")[:])
    finally:
        server.ranges = False

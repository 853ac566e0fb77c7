"""The cellpose adapter, per block and stitched, with a model file made here (never a
downloaded one): cellpose's network with random weights, its cell-probability output
set high so that its flows make masks. Skipped without cellpose (an optional extra)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc.ops import list_methods
from napari_lazyproc.synthetic_nuclei import touching_nuclei

cellpose = pytest.importorskip("cellpose")
torch = pytest.importorskip("torch")

IMAGE = touching_nuclei((128, 128), seed=1)[0]
OPTIONS = {"flow_threshold": 0.0, "normalize": True}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A cellpose network of random weights saved to a file: no download anywhere."""
    from cellpose import models

    torch.manual_seed(0)
    model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None,
                                 diam_mean=12.0)
    with torch.no_grad():  # cell probability high everywhere: masks from the flows
        out = model.net.output[2]
        out.weight[2] = 0
        out.bias[2] = 5.0
        out.weight[:2] *= 20
    path = tmp_path_factory.mktemp("cellpose") / "random_model"
    model.net.save_model(str(path))
    return str(path)


def direct(model_file, image, low, high) -> np.ndarray:
    """cellpose itself on ``image``, normalized by the given percentiles."""
    from cellpose import models

    model = models.CellposeModel(gpu=False, pretrained_model=model_file)
    scaled = (image.astype(np.float32) - low) / (high - low)
    return model.eval(scaled, diameter=12.0, flow_threshold=0.0, normalize=False,
                      channel_axis=None)[0]


def one_to_one(x: np.ndarray, y: np.ndarray) -> bool:
    pairs = np.unique(np.stack([x.ravel(), y.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(x)) == len(np.unique(y))


@pytest.mark.slow  # cellpose on CPU: about 20 s
def test_cellpose_per_block_and_stitched_with_a_local_model(model_file):
    assert "cellpose" in list_methods()
    job = lp.segment(IMAGE, "cellpose", diameter=12, block=64, pretrained_model=model_file,
                     **OPTIONS)
    low, high = job.prepare()["percentiles"]
    np.testing.assert_allclose([low, high], np.percentile(IMAGE, [1, 99]))
    # each block is the model on the block grown by its halo (one percentile scaling)
    preview = np.asarray(job.preview[:, :])
    core = (slice(64, 128), slice(0, 64))
    ext = job.extended(core)
    own = direct(model_file, IMAGE[ext], low, high)
    assert own.max() > 3
    inner = tuple(slice(c.start - e.start, c.stop - e.start)
                  for c, e in zip(core, ext, strict=True))
    assert one_to_one(own[inner], preview[core])
    # stitched: one label per object across the faces, ids unique over the image
    labels = np.asarray(job.run())
    assert labels.max() == job.result.n_labels == len(np.unique(labels)) - 1 > 10
    whole = direct(model_file, IMAGE, low, high)
    # an object of the whole image's result has one stitched partner where both agree
    # on its voxels (cellpose is not local: its flows see past the halo, so some differ)
    ids, area = np.unique(whole[whole > 0], return_counts=True)
    matched = 0
    for i, n in zip(ids, area, strict=True):
        values, counts = np.unique(labels[whole == i], return_counts=True)
        matched += counts.max() >= 0.5 * n and values[counts.argmax()] > 0
    print(f"cellpose stitched: {matched} of {len(ids)} whole-image objects matched")
    assert matched >= 0.5 * len(ids)

"""The cellpose and StarDist adapters, per block and stitched, with models made here
(never a downloaded one): cellpose's network with random weights, its cell-probability
output set high so that its flows make masks; an untrained StarDist2D (a small U-Net,
nearly local). Each is skipped without its package (optional extras)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_lazyproc as lp
from napari_lazyproc.ops import list_methods
from napari_lazyproc.synthetic_nuclei import touching_nuclei

IMAGE = touching_nuclei((128, 128), seed=1)[0]
OPTIONS = {"flow_threshold": 0.0, "normalize": True}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A cellpose network of random weights saved to a file: no download anywhere."""
    pytest.importorskip("cellpose")
    torch = pytest.importorskip("torch")
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


def matched(whole: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(objects of ``whole`` that one stitched label covers at least half of, objects)."""
    ids, area = np.unique(whole[whole > 0], return_counts=True)
    found = 0
    for i, n in zip(ids, area, strict=True):
        values, counts = np.unique(labels[whole == i], return_counts=True)
        found += counts.max() >= 0.5 * n and values[counts.argmax()] > 0
    return found, len(ids)


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
    # cellpose is not local (its flows see past the halo): most objects, not all
    found, total = matched(whole, labels)
    assert found >= 0.5 * total


@pytest.fixture(scope="module")
def stardist_dir(tmp_path_factory):
    """An untrained StarDist2D saved to a folder (config and weights), as one's own."""
    pytest.importorskip("stardist")
    tf = pytest.importorskip("tensorflow")
    from stardist.models import Config2D, StarDist2D

    tf.random.set_seed(0)
    base = tmp_path_factory.mktemp("stardist")
    config = Config2D(n_rays=16, grid=(1, 1), n_channel_in=1, unet_n_depth=2,
                      unet_n_filter_base=8)
    model = StarDist2D(config, name="untrained", basedir=str(base))
    model.keras_model.save_weights(str(base / "untrained" / "weights_best.h5"))
    return base / "untrained"


@pytest.mark.slow  # tensorflow's import and StarDist's predictions: about 30 s
def test_stardist_per_block_and_stitched_with_a_local_model(stardist_dir):
    from stardist.models import StarDist2D

    assert "stardist" in list_methods()
    model = StarDist2D(None, name=stardist_dir.name, basedir=str(stardist_dir.parent))
    low, high = np.percentile(IMAGE, [1, 99.8])
    scaled = (IMAGE.astype(np.float32) - low) / (high - low)
    thresh = float(np.quantile(model.predict(scaled)[0], 0.95))  # its top 5 %: objects
    job = lp.segment(IMAGE, "stardist", diameter=12, block=64, model_dir=str(stardist_dir),
                     prob_thresh=thresh, nms_thresh=0.4)
    np.testing.assert_allclose(job.prepare()["percentiles"], [low, high])
    preview = np.asarray(job.preview[:, :])
    core = (slice(64, 128), slice(0, 64))
    ext = job.extended(core)
    own = model.predict_instances(scaled[ext], prob_thresh=thresh, nms_thresh=0.4)[0]
    inner = tuple(slice(c.start - e.start, c.stop - e.start)
                  for c, e in zip(core, ext, strict=True))
    assert own.max() > 3 and one_to_one(own[inner], preview[core])
    labels = np.asarray(job.run())
    assert labels.max() == job.result.n_labels == len(np.unique(labels)) - 1 > 10
    whole = model.predict_instances(scaled, prob_thresh=thresh, nms_thresh=0.4)[0]
    found, total = matched(whole, labels)  # a local model: (nearly) every object
    assert found >= 0.99 * total

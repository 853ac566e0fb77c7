"""Segmentation methods: the built-in seeded watershed, user callables, plugins' methods.

A method segments one block (a numpy array of the spatial axes, with its halo) into
integer labels, 0 the background. It declares the halo it needs from the expected
object diameter, and may compute whole-input values once (the watershed's Otsu
threshold) before any block. Packages offer methods through the entry point group
``napari_lazyproc.segmenters``: each entry point names a ``SegmentMethod`` (or a
function returning one). cellpose and stardist appear when they are installed; their
models load on first use only, never at listing.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the entry point group packages use to offer segmentation methods
ENTRY_POINT_GROUP = "napari_lazyproc.segmenters"


@dataclass(frozen=True)
class SegmentMethod:
    """One way to segment a block.

    Parameters
    ----------
    name : str
        What ``lp.segment(method=...)``, the CLI and the panel call it.
    segment : callable
        ``segment(block, *, diameter, **params) -> labels``: ``block`` is a numpy array
        of the spatial axes, ``diameter`` the expected object diameter in pixels per
        axis; labels are integers of the block's shape, 0 the background.
    halo : callable
        ``halo(diameter, params) -> tuple[int, ...]``: voxels of context per axis each
        block needs so that objects crossing its faces are segmented as on the whole.
    params : dict
        Parameter names and defaults (shown in the panel, ``key=value`` on the CLI).
    prepare : callable, optional
        ``prepare(source, params, progress, cancel, whole) -> dict``: values computed
        once over the whole input (a threshold) and passed to every block; ``whole``
        False for a preview, which may use a bounded sample instead.
    description : str
    """

    name: str
    segment: Callable[..., np.ndarray]
    halo: Callable[[tuple[float, ...], dict], tuple[int, ...]]
    params: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[..., dict] | None = None
    description: str = ""


# ---------------------------------------------------------------------------- watershed
def watershed_block(block: np.ndarray, *, diameter, sigma: float = 1.0,
                    threshold: float | None = None, min_distance: float | None = None,
                    kernels: str = "fast") -> np.ndarray:
    """Seeded watershed of bright nuclei: Gaussian smoothing, a threshold, the distance
    transform of the mask, its local maxima at least ``min_distance`` apart (a radius by
    default) as seeds, and a watershed of the inverted distance inside the mask.

    All steps are scikit-image / scipy on the block; run on the whole array it is the
    reference the stitched result is tested against. ``kernels="fast"`` (default) finds
    the same labels faster where it can (unit voxels, numba installed): the maxima and
    the watershed on the integer squared distance (the same order and ties as the
    distance), the watershed in linear time (``kernels._watershed``); ``"skimage"``
    runs scikit-image's own throughout.
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    from ..kernels._watershed import watershed_ranks

    if threshold is None:
        from skimage.filters import threshold_otsu

        threshold = float(threshold_otsu(block))
    diameter = _per_axis(diameter, block.ndim)
    smooth = block.astype(np.float32, copy=False)
    if sigma > 0:
        from scipy import ndimage as ndi

        smooth = ndi.gaussian_filter(smooth, sigma, mode="nearest")
    mask = smooth > threshold
    if not mask.any():
        return np.zeros(block.shape, np.uint32)
    # distances in x pixels, other axes scaled so that an anisotropic nucleus is round
    ref = float(diameter[-1])
    sampling = [ref / d for d in diameter]
    d2 = None
    if kernels == "fast" and watershed_ranks is not None:
        d2 = squared_distance(mask, sampling)
    if d2 is not None:  # integers: maxima and flooding order as the distance's
        top = int(d2.max())
        distance = d2.astype(np.int32)
    else:
        distance = distance_transform(mask, sampling)
    radius = ref / 2 if min_distance is None else float(min_distance)
    reach = [max(1, int(round(radius * d / ref))) for d in diameter]
    if len(set(reach)) == 1:
        peaks = peak_local_max(distance, min_distance=reach[0], threshold_abs=0,
                               exclude_border=False)
    else:
        peaks = peak_local_max(distance, footprint=np.ones([2 * r + 1 for r in reach], bool),
                               min_distance=min(reach), threshold_abs=0,
                               exclude_border=False)
    n = len(peaks)
    at = tuple(peaks.T)
    markers = np.zeros(block.shape, np.int32)
    markers[at] = np.arange(1, n + 1, dtype=np.int32)
    # flooded from the inverted distance, the seeds first, one after another in label
    # order (each below every other value): no two keys of the queue tie, so any exact
    # queue floods alike, scikit-image's heap and the linear one
    if d2 is not None:
        ranks = (n + top) - distance
        ranks[at] = np.arange(n, dtype=ranks.dtype)
        labels = watershed_ranks(ranks, markers, mask, n + top + 1)
    else:
        image = -distance
        image[at] = (image.min() - n) + np.arange(n)
        labels = watershed(image, markers, mask=mask)
    return labels.astype(np.uint32, copy=False)


def squared_distance(mask: np.ndarray, sampling) -> np.ndarray | None:
    """The squared Euclidean distance to the background, integers in float64, for a
    2D or 3D mask with unit sampling (see ``distance_transform``); None where that
    way does not apply."""
    from ..kernels._distance_z import squared_z_pass

    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv is a dependency of the fast kernels
        return None
    if (mask.ndim not in (2, 3) or any(float(s) != 1.0 for s in sampling)
            or max(mask.shape) >= 2**15 or mask.all()):
        return None
    planes = np.ascontiguousarray(mask, dtype=bool).reshape((-1, *mask.shape[-2:]))
    planes = planes.view(np.uint8)
    if not (planes == 0).any(axis=(1, 2)).all():  # a plane with no background
        return None
    g2 = np.empty(planes.shape, np.float64)
    for k, plane in enumerate(planes):
        g2[k] = cv2.distanceTransform(plane, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.square(g2, out=g2)
    np.rint(g2, out=g2)
    if mask.ndim == 3 and squared_z_pass is not None:
        g2 = squared_z_pass(g2)
    elif mask.ndim == 3:
        d2 = g2.copy()
        reach = int(np.ceil(np.sqrt(g2.max())))
        for k in range(1, min(reach, mask.shape[0] - 1) + 1):
            step = float(k * k)
            np.minimum(d2[k:], g2[:-k] + step, out=d2[k:])
            np.minimum(d2[:-k], g2[k:] + step, out=d2[:-k])
        g2 = d2
    return g2.reshape(mask.shape)


def distance_transform(mask: np.ndarray, sampling) -> np.ndarray:
    """scipy's ``distance_transform_edt``, bitwise, 3-5x faster for 2D and 3D masks
    with unit sampling (isotropic nuclei; else scipy's own, whose sums of squared
    sampled offsets round in an order this cannot repeat): OpenCV's exact 2D transform
    of each plane (Felzenszwalb's, ``DIST_MASK_PRECISE``), then along z the least of each
    plane's squared distance plus the squared z offset, over offsets up to the largest in-plane
    distance (a farther plane cannot be nearer). Squared distances of unit voxels are
    integers, rounded back after OpenCV's float32: the same values as scipy's."""
    d2 = squared_distance(mask, sampling)
    if d2 is None:
        from scipy import ndimage as ndi

        return ndi.distance_transform_edt(mask, sampling=[float(s) for s in sampling])
    return np.sqrt(d2)


def watershed_halo(diameter, params) -> tuple[int, ...]:
    """A diameter (a nucleus's distance transform and the seeds a radius around it) plus
    the smoothing's reach (4 sigma, scipy's truncate)."""
    sigma = float(params.get("sigma", 1.0))
    return tuple(int(math.ceil(d)) + int(math.ceil(4 * sigma)) for d in diameter)


def _otsu_prepare(source, params, progress=None, cancel=None, whole=True) -> dict:
    """Otsu's threshold of the whole input (exact: every voxel), or of a bounded sample
    for a preview of a large input; a given ``threshold`` is kept."""
    if params.get("threshold") is not None:
        return {}
    from ..stats._global_stats import preview_mode_for, statistic

    value = statistic(source, "otsu", preview_mode_for(source, whole), progress=progress,
                      cancel=cancel)
    return {"threshold": float(value)}


WATERSHED = SegmentMethod(
    "watershed", watershed_block, watershed_halo,
    params={"sigma": 1.0, "threshold": None, "min_distance": None},
    prepare=_otsu_prepare,
    description="seeded watershed of bright nuclei (scikit-image): smoothing, Otsu's "
                "threshold of the whole volume, distance transform, local maxima a radius "
                "apart as seeds, watershed in the mask",
)


# ---------------------------------------------------------------------------- optional models
def _cellpose_block(block, *, diameter, model_type: str = "cyto3",
                    pretrained_model: str | None = None, gpu: bool = False,
                    flow_threshold: float = 0.4, cellprob_threshold: float = 0.0,
                    normalize: bool = True, percentiles=None):
    from cellpose import models  # optional extra; its model loads here, on first use

    key = ("cellpose", model_type, pretrained_model, gpu)
    model = _MODELS.get(key)
    if model is None:  # a model file of one's own, else a built-in (cellpose fetches it)
        model = _MODELS[key] = (
            models.CellposeModel(gpu=gpu, pretrained_model=str(pretrained_model))
            if pretrained_model else models.CellposeModel(gpu=gpu, model_type=model_type))
    if percentiles is not None:  # the whole input's 1st-99th percentiles: every block alike
        low, high = percentiles
        block = (block.astype(np.float32) - low) / max(high - low, 1e-12)
    with _MODEL_LOCK:  # one block at a time per process: a model is not thread-safe
        masks = model.eval(block, diameter=float(np.mean(diameter)), do_3D=block.ndim == 3,
                           flow_threshold=flow_threshold,
                           cellprob_threshold=cellprob_threshold,
                           normalize=bool(normalize) and percentiles is None,
                           channel_axis=None, z_axis=0 if block.ndim == 3 else None)[0]
    return np.asarray(masks, np.uint32)


def _percentiles_prepare(q):
    """The input's percentiles ``q`` (the model's normalization), once for all blocks,
    so that a block is scaled as the whole would be (a sample for a preview)."""

    def prepare(source, params, progress=None, cancel=None, whole=True) -> dict:
        if not params.get("normalize", True):
            return {}
        from ..stats._global_stats import preview_mode_for, statistic

        low, high = statistic(source, "percentiles", preview_mode_for(source, whole), q=q,
                              progress=progress, cancel=cancel)
        return {"percentiles": [float(low), float(high)]}

    return prepare


def _stardist_block(block, *, diameter, model_name: str = "2D_versatile_fluo",
                    model_dir: str | None = None, prob_thresh: float | None = None,
                    nms_thresh: float | None = None, normalize: bool = True,
                    percentiles=None):
    if block.ndim == 3:
        from stardist.models import StarDist3D as Model
    else:
        from stardist.models import StarDist2D as Model
    key = ("stardist", model_name, model_dir, block.ndim)
    model = _MODELS.get(key)
    if model is None:  # a model folder of one's own, else a registered pretrained one
        if model_dir:
            from pathlib import Path

            folder = Path(model_dir)
            model = Model(None, name=folder.name, basedir=str(folder.parent))
        else:
            model = Model.from_pretrained(model_name)
        _MODELS[key] = model
    if percentiles is not None:  # the whole input's percentiles: every block alike
        low, high = percentiles
        block = (block.astype(np.float32) - low) / max(high - low, 1e-12)
    elif normalize:
        from csbdeep.utils import normalize as by_percentiles  # stardist's own dependency

        block = by_percentiles(block)
    with _MODEL_LOCK:
        labels, _ = model.predict_instances(block, prob_thresh=prob_thresh,
                                            nms_thresh=nms_thresh)
    return np.asarray(labels, np.uint32)


def _diameter_halo(diameter, params) -> tuple[int, ...]:
    return tuple(int(math.ceil(d)) for d in diameter)


_MODELS: dict = {}
#: models run one block at a time (cellpose's CPU path converts its network per call,
#: which two threads cannot do at once); they use several cores on their own
_MODEL_LOCK = threading.RLock()
_OPTIONAL = {
    "cellpose": SegmentMethod(
        "cellpose", _cellpose_block, _diameter_halo,
        params={"model_type": "cyto3", "pretrained_model": None, "gpu": False,
                "flow_threshold": 0.4, "cellprob_threshold": 0.0, "normalize": True},
        prepare=_percentiles_prepare((1.0, 99.0)),
        description="cellpose (installed), per block, stitched; a built-in model "
                    "(model_type) or a model file of one's own (pretrained_model); "
                    "normalized by the whole input's 1st-99th percentiles"),
    "stardist": SegmentMethod(
        "stardist", _stardist_block, _diameter_halo,
        params={"model_name": "2D_versatile_fluo", "model_dir": None, "prob_thresh": None,
                "nms_thresh": None, "normalize": True},
        prepare=_percentiles_prepare((1.0, 99.8)),
        description="StarDist (installed), per block, stitched; a registered pretrained "
                    "model (model_name) or a model folder of one's own (model_dir); "
                    "normalized by the whole input's 1st-99.8th percentiles"),
}

_REGISTERED: dict[str, SegmentMethod] = {"watershed": WATERSHED}


def register_method(method: SegmentMethod) -> None:
    """Offer ``method`` by its name (a package's own, without an entry point)."""
    _REGISTERED[method.name] = method


def _entry_point_methods() -> dict[str, SegmentMethod]:
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = ep.load()
            method = value if isinstance(value, SegmentMethod) else value()
        except Exception:  # noqa: BLE001, S112 - a broken plugin hides only its method
            continue
        if isinstance(method, SegmentMethod):
            out[method.name] = method
    return out


def list_methods() -> dict[str, SegmentMethod]:
    """Every method available here: built-in, registered, from entry points, and
    cellpose / stardist when installed."""
    out = dict(_REGISTERED)
    for name, method in _OPTIONAL.items():
        if importlib.util.find_spec(name) is not None:
            out.setdefault(name, method)
    for name, method in _entry_point_methods().items():
        out.setdefault(name, method)
    return out


def resolve_method(method, halo=None) -> SegmentMethod:
    """A method by name, a ``SegmentMethod``, or a callable ``f(block) -> labels`` with
    its ``halo`` (voxels per spatial axis, or one number)."""
    if isinstance(method, SegmentMethod):
        return method
    if callable(method):
        if halo is None:
            raise ValueError("segment: a callable method needs halo= (the voxels of context "
                             "each block needs: about one object diameter)")

        def segment(block, *, diameter=None, _f=method):
            return np.asarray(_f(block))

        fixed = halo

        def callable_halo(diameter, params, _h=fixed):
            return tuple(_per_axis(_h, len(diameter)))

        name = getattr(method, "__qualname__", getattr(method, "__name__", "callable"))
        return SegmentMethod(name, segment, callable_halo,
                             description=f"user callable {name}")
    methods = list_methods()
    if method not in methods:
        raise ValueError(f"segment: unknown method {method!r}; available: "
                         f"{', '.join(sorted(methods))} (or a callable with halo=)")
    return methods[method]


def _per_axis(value, n: int) -> list:
    if np.ndim(value) == 0:
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"segment: {value} gives {len(value)} values for {n} spatial axes")
    return value

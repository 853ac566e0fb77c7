"""The properties ``measure`` supports: scikit-image's ``regionprops`` names, each derived
from statistics that merge exactly across chunks (counts, sums, moments up to the second
order, minima, maxima, bounding boxes).

Each property says what statistics it needs, the unit of its columns, and how its columns
(named as ``skimage.measure.regionprops_table`` names them) follow from the merged rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._stats import Partial


@dataclass(frozen=True)
class Prop:
    """One supported property."""

    name: str
    needs: frozenset[str]
    #: the unit of its columns: "length", "area", "length2" (inertia), "pixel" (bbox),
    #: "radian", or "" (a count, a ratio, an intensity)
    unit: str
    intensity: bool = False
    #: the spatial dimensions it is defined for (None: any)
    ndims: tuple[int, ...] | None = None
    help: str = ""


class Rows:
    """The merged statistics, and what derives from them, for the column functions."""

    def __init__(self, part: Partial, spacing: np.ndarray) -> None:
        self.d = part.data
        self.spacing = spacing
        self.ndim = len(spacing)
        self.n = self.d["count"].astype(np.float64)
        self._cov: np.ndarray | None = None
        self._tensor: np.ndarray | None = None
        self._eig: np.ndarray | None = None

    @property
    def voxel(self) -> float:
        return float(np.prod(self.spacing))

    def mean_index(self) -> np.ndarray:
        """Mean voxel coordinate per label (global, in voxels)."""
        return self.d["origin"] + self.d["s1"] / self.n[:, None]

    def cov(self) -> np.ndarray:
        """Physical covariance of the coordinates (central moments over the count)."""
        if self._cov is None:
            # the integer sums moved (exactly) to the voxel nearest the mean first, so
            # the subtraction below cancels nothing but the fraction of a voxel
            s1, s2, count = self.d["s1"], self.d["s2"], self.d["count"]
            d = np.rint(s1 / self.n[:, None]).astype(np.int64)
            s2 = (s2 - d[:, :, None] * s1[:, None, :] - s1[:, :, None] * d[:, None, :]
                  + count[:, None, None] * d[:, :, None] * d[:, None, :]).astype(np.float64)
            s1 = (s1 - count[:, None] * d).astype(np.float64)
            central = s2 - s1[:, :, None] * s1[:, None, :] / self.n[:, None, None]
            sp = self.spacing
            self._cov = central * (sp[:, None] * sp[None, :]) / self.n[:, None, None]
        return self._cov

    def tensor(self) -> np.ndarray:
        """scikit-image's inertia tensor: T_ii the other axes' variances, T_ij -cov_ij."""
        if self._tensor is None:
            cov = self.cov()
            diag = np.diagonal(cov, axis1=1, axis2=2)
            t = -cov.copy()
            idx = np.arange(self.ndim)
            t[:, idx, idx] = diag.sum(axis=1)[:, None] - diag
            self._tensor = t
        return self._tensor

    def eigvals(self) -> np.ndarray:
        """Eigenvalues of the inertia tensor, descending, negatives from rounding clipped."""
        if self._eig is None:
            ev = np.clip(np.linalg.eigvalsh(self.tensor()), 0, None)
            self._eig = ev[:, ::-1]
        return self._eig

    def area(self) -> np.ndarray:
        return self.n * self.voxel

    def area_bbox(self) -> np.ndarray:
        return np.prod(self.d["hi"] - self.d["lo"], axis=1).astype(np.float64) * self.voxel


Columns = dict[str, np.ndarray]


def _per_axis(name: str, values: np.ndarray) -> Columns:
    return {f"{name}-{i}": values[:, i] for i in range(values.shape[1])}


def _bbox(r: Rows) -> Columns:
    lo, hi = r.d["lo"], r.d["hi"]
    return _per_axis("bbox", np.concatenate([lo, hi], axis=1))


def _tensor(r: Rows) -> Columns:
    t = r.tensor()
    return {f"inertia_tensor-{i}-{j}": t[:, i, j] for i in range(r.ndim) for j in range(r.ndim)}


def _axis_major(r: Rows) -> np.ndarray:
    ev = r.eigvals()
    if r.ndim == 2:
        return 4 * np.sqrt(ev[:, 0])
    return np.sqrt(np.maximum(0, 10 * (ev[:, 0] + ev[:, 1] - ev[:, 2])))


def _axis_minor(r: Rows) -> np.ndarray:
    ev = r.eigvals()
    if r.ndim == 2:
        return 4 * np.sqrt(ev[:, -1])
    return np.sqrt(np.maximum(0, 10 * (-ev[:, 0] + ev[:, 1] + ev[:, 2])))


def _eccentricity(r: Rows) -> np.ndarray:
    ev = r.eigvals()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ev[:, 0] == 0, 0.0, np.sqrt(1 - ev[:, 1] / ev[:, 0]))


def _orientation(r: Rows) -> np.ndarray:
    t = r.tensor()
    a, b, c = t[:, 0, 0], t[:, 0, 1], t[:, 1, 1]
    with np.errstate(invalid="ignore"):
        angle = 0.5 * np.arctan2(-2 * b, c - a)
    tie = np.where(b < 0, math.pi / 4, -math.pi / 4)
    return np.where(a - c == 0, tie, angle)


def _weighted(r: Rows) -> np.ndarray:
    """Intensity-weighted mean coordinate (global, in voxels)."""
    return r.d["origin"] + r.d["ws1"] / r.d["isum"][:, None]


_S1, _S2, _BOX = frozenset({"s1"}), frozenset({"s1", "s2"}), frozenset({"bbox"})

#: name -> (property, its columns)
CATALOGUE: dict[str, tuple[Prop, Callable[[Rows], Columns]]] = {}


def _add(prop: Prop, fn: Callable[[Rows], Columns | np.ndarray]) -> None:
    def columns(r: Rows) -> Columns:
        out = fn(r)
        return out if isinstance(out, dict) else {prop.name: out}

    CATALOGUE[prop.name] = (prop, columns)


_add(Prop("label", frozenset(), ""), lambda r: r.d["label"])
_add(Prop("num_pixels", frozenset(), "", help="voxel count"), lambda r: r.d["count"])
_add(Prop("area", frozenset(), "area", help="voxel count times the voxel size"),
     lambda r: r.area())
_add(Prop("bbox", _BOX, "pixel", help="first and past-the-end voxel per axis"), _bbox)
_add(Prop("area_bbox", _BOX, "area"), lambda r: r.area_bbox())
_add(Prop("extent", _BOX, ""), lambda r: r.area() / r.area_bbox())
_add(Prop("equivalent_diameter_area", frozenset(), "length"),
     lambda r: (2 * r.ndim * r.area() / math.pi) ** (1 / r.ndim))
_add(Prop("centroid", _S1, "length"),
     lambda r: _per_axis("centroid", r.mean_index() * r.spacing))
_add(Prop("centroid_local", _S1 | _BOX, "length"),
     lambda r: _per_axis("centroid_local", (r.mean_index() - r.d["lo"]) * r.spacing))
_add(Prop("inertia_tensor", _S2, "length2"), _tensor)
_add(Prop("inertia_tensor_eigvals", _S2, "length2"),
     lambda r: _per_axis("inertia_tensor_eigvals", r.eigvals()))
_add(Prop("axis_major_length", _S2, "length", ndims=(2, 3)), _axis_major)
_add(Prop("axis_minor_length", _S2, "length", ndims=(2, 3)), _axis_minor)
_add(Prop("eccentricity", _S2, "", ndims=(2,)), _eccentricity)
_add(Prop("orientation", _S2, "radian", ndims=(2,)), _orientation)
_add(Prop("intensity_mean", frozenset({"isum"}), "", intensity=True),
     lambda r: r.d["isum"] / r.n)
_add(Prop("intensity_std", frozenset({"isum", "im2"}), "", intensity=True),
     lambda r: np.sqrt(r.d["im2"] / r.n))
_add(Prop("intensity_min", frozenset({"iminmax"}), "", intensity=True),
     lambda r: r.d["imin"])
_add(Prop("intensity_max", frozenset({"iminmax"}), "", intensity=True),
     lambda r: r.d["imax"])
_add(Prop("centroid_weighted", frozenset({"isum", "weighted"}), "length", intensity=True),
     lambda r: _per_axis("centroid_weighted", _weighted(r) * r.spacing))
_add(Prop("centroid_weighted_local", frozenset({"isum", "weighted"}) | _BOX, "length",
          intensity=True),
     lambda r: _per_axis("centroid_weighted_local", (_weighted(r) - r.d["lo"]) * r.spacing))

#: every supported name, in the catalogue's order
PROPERTIES: tuple[str, ...] = tuple(CATALOGUE)


def resolve(properties, ndim: int, has_intensity: bool) -> list[Prop]:
    """The properties asked for, checked: ``label`` first, each name once.

    Raises
    ------
    ValueError
        For a name that is not supported (naming it and listing the supported ones), an
        intensity property without an intensity image, or a property not defined for
        ``ndim`` spatial axes.
    """
    if isinstance(properties, str):
        properties = (properties,)
    names = list(dict.fromkeys(["label", *properties]))
    bad = [n for n in names if n not in CATALOGUE]
    if bad:
        raise ValueError(
            f"measure: unsupported propert{'y' if len(bad) == 1 else 'ies'} "
            f"{', '.join(map(repr, bad))}; supported (they merge exactly across chunks): "
            f"{', '.join(PROPERTIES)}")
    props = [CATALOGUE[n][0] for n in names]
    need_image = [p.name for p in props if p.intensity]
    if need_image and not has_intensity:
        raise ValueError(f"measure: {', '.join(need_image)} need an intensity image "
                         f"(pass intensity=)")
    for p in props:
        if p.ndims is not None and ndim not in p.ndims:
            raise ValueError(f"measure: {p.name} is defined for "
                             f"{' or '.join(f'{k}D' for k in p.ndims)} labels only "
                             f"(these have {ndim} spatial axes)")
    return props


def needs_of(props: list[Prop]) -> frozenset[str]:
    """The statistics the properties need."""
    return frozenset().union(*(p.needs for p in props))


def columns(props: list[Prop], part: Partial, spacing) -> Columns:
    """The columns of every property, in order, named as scikit-image names them."""
    rows = Rows(part, np.asarray(spacing, np.float64))
    out: Columns = {}
    for p in props:
        out.update(CATALOGUE[p.name][1](rows))
    return out


def unit_of(prop: Prop, length: str | None, ndim: int) -> str | None:
    """The unit of a property's columns given the length unit (None: unknown)."""
    if length is None and prop.unit in ("length", "area", "length2"):
        return None
    return {"length": length, "area": f"{length}**{ndim}", "length2": f"{length}**2",
            "pixel": "pixel", "radian": "radian"}.get(prop.unit)

"""Typed functions (``lp.ops.gaussian(img, sigma=2.0)``) and their checked-in stub."""

from __future__ import annotations

import ast
import inspect
import os
import pydoc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike, DTypeLike
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.io import LazyImage
from napari_lazyproc.ops import REGISTRY, GlobalLabels, LazyResult, Param, _stub, _typed

COMMON = ["axes", "units", "data_axes", "precision"]


def _stub_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(_stub.STUB.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_the_checked_in_stub_is_what_the_registry_gives():
    """Fails when a declaration changes and the stub is not regenerated
    (``python -m napari_lazyproc.ops._stub``)."""
    assert _stub.STUB.read_text() == _stub.render()


def test_every_operation_has_a_typed_function_and_a_stub_entry():
    stubs = _stub_functions()
    assert set(stubs) == set(REGISTRY)
    for name, op in REGISTRY.items():
        fn = getattr(lp.ops, name)
        assert name in lp.ops.__all__
        params = list(inspect.signature(fn).parameters.values())
        assert params[0].name == "data" and params[0].kind is inspect.Parameter.POSITIONAL_ONLY
        assert [p.name for p in params[1:]] == [p.name for p in op.params] + list(op.images) \
            + COMMON
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
        assert [p.default for p in params[1 : len(op.params) + 1]] == \
            [p.default for p in op.params]
        # the stub declares the same parameters, in the same order, with the same defaults
        stub = stubs[name].args
        assert [a.arg for a in stub.posonlyargs] == ["data"]
        assert [a.arg for a in stub.kwonlyargs] == [p.name for p in params[1:]]
        assert [ast.literal_eval(d) for d in stub.kw_defaults] == \
            [p.default for p in params[1:]]


def test_stub_annotations_are_valid_types():
    """Each annotation in the stub evaluates to a type (so editors and type checkers can
    read it): a typo in ``ANNOTATIONS`` fails here."""
    names = {"Any": Any, "Literal": Literal, "Sequence": Sequence, "Mapping": Mapping,
             "Callable": Callable, "ArrayLike": ArrayLike, "DTypeLike": DTypeLike,
             "pd": pd, "os": os, "LazyImage": LazyImage, "LazyResult": LazyResult,
             "GlobalLabels": GlobalLabels}
    for fn in _stub_functions().values():
        args = fn.args.posonlyargs + fn.args.kwonlyargs
        for node in [a.annotation for a in args] + [fn.returns]:
            eval(ast.unparse(node), names)  # noqa: S307 - our own generated stub


def test_a_typed_call_is_apply_and_equals_scipy():
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 50)).astype(np.float32)
    typed = lp.ops.gaussian(a, sigma=2.0, axes="yx", precision="exact")
    named = lp.apply("gaussian", a, sigma=2.0, axes="yx", precision="exact")
    assert isinstance(typed, LazyResult) and typed.token == named.token
    expected = ndi.gaussian_filter(a, (0, 2.0, 2.0))
    np.testing.assert_array_equal(np.asarray(typed), expected)
    med = lp.ops.median(a[0], size=3)
    np.testing.assert_array_equal(np.asarray(med), ndi.median_filter(a[0], size=3))
    labels = lp.ops.label(a > 0.5, scope="global")
    assert isinstance(labels, GlobalLabels)


def test_help_shows_parameters_units_and_ranges():
    text = " ".join(pydoc.render_doc(lp.ops.gaussian, renderer=pydoc.plaintext).split())
    assert "gaussian(data" in text and "sigma: 'float | Sequence[float]' = 1.0" in text
    assert "sigma : float or sequence of float" in text
    assert 'In pixels, or in the image\'s units with ``units="physical"``' in text
    assert "Range: a number >= 0." in text
    assert "mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}" in text
    doc = lp.ops.zoom.__doc__
    assert "Returns\n-------\nLazyResult" in doc and "Parameters\n----------" in doc
    assert "Range: an integer >= 0 and <= 5." in " ".join(doc.split())  # order


def test_typed_calls_refuse_what_apply_refuses():
    a = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match="gaussian: unknown parameter.*sigmaa"):
        lp.ops.gaussian(a, sigmaa=2.0)
    with pytest.raises(TypeError, match="positional"):
        lp.ops.gaussian(a, 2.0)
    with pytest.raises(ValueError, match="sigma"):
        lp.ops.gaussian(a, sigma=-1.0)


def test_an_unknown_parameter_type_is_named():
    """A new parameter type must be given an annotation, or the stub would say nothing."""
    p = Param("weights2", lambda v: v, None, optional=True)
    with pytest.raises(KeyError, match="weights2.*ANNOTATIONS"):
        _typed.annotation(p)

"""dask-image's own tests (ndfilters, ndmorph, ndmeasure's label) with our operations'
results in place of dask-image's, on chunks of 3 to 7 voxels (``dask_image_shim``).

dask-image's test files are not in its wheel: they are taken from its sdist on the
package index (the installed version's; ``tests/peer_files.py``, cached), or from the
checkout of https://github.com/dask/dask-image that ``DASK_IMAGE_TESTS`` names; without
either these tests skip, saying why. Nothing of dask-image's is committed here. The
calls not routed (dask-image's own limitations and ours) are listed in
docs/dask_image_parity.md (``pytest -s`` prints the table).
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import background
import pytest

HERE = Path(__file__).parent
SUITES = ("test_ndfilters", "test_ndmorph", "test_ndmeasure/test_core.py")
#: calls routed and compared in each precision: 392 measured (dask-image 2026.5.0)
MIN_ROUTED = 380


def _suite(tmp: Path) -> dict:
    """dask-image's tests under the shim, in a pytest subprocess: its tally."""
    root = os.environ.get("DASK_IMAGE_TESTS")
    if not root:  # its tests are in its sdist, not its wheel: taken from the index
        from importlib.metadata import version

        from peer_files import sdist_folder

        root = str(sdist_folder("dask-image", version("dask-image"), "tests").parent)
    assert (Path(root) / "tests" / "test_dask_image").is_dir(), root
    pytest.importorskip("dask_image")
    (tmp / "pytest.ini").write_text("[pytest]\nmarkers = cupy\n")
    report = tmp / "report.json"
    env = {**os.environ, "DASK_IMAGE_SHIM_REPORT": str(report),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    tests = [str(Path(root) / "tests" / "test_dask_image" / s) for s in SUITES]
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
            "dask_image_shim", "-W", "ignore", "--rootdir", str(tmp), "-c",
            str(tmp / "pytest.ini"), *tests, "-k",
            "not cupy and (not test_core or label)"]
    run = background.run(args, cwd=tmp, env=env, timeout=1200)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(report.read_text())
    out["log"] = run.stdout[-3000:]
    return out


#: started with the session, beside the other tests (tests/background.py)
pytestmark = pytest.mark.background.with_args(_suite)


@pytest.fixture(scope="module")
def tally() -> dict:
    return background.result(_suite)


@pytest.mark.slow
def test_dask_image_tests_pass_on_our_results(tally):
    failed = [k for k in tally["outcomes"] if k.startswith("failed: ")]
    assert not failed, tally["log"]
    assert tally["outcomes"].get("passed", 0) > 700


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_routed_calls_equal_dask_image(tally, precision):
    routed = sum(r["calls"] for r in tally["tally"] if r["status"] == f"{precision} equal")
    assert routed >= MIN_ROUTED
    differs = [d for d in tally["differences"] if d["precision"] == precision]
    assert not differs, "\n".join(json.dumps(d) for d in differs[:20])
    assert not [r for r in tally["tally"] if r["status"] == "error"]


@pytest.mark.slow
def test_not_routed_table(tally):
    table = defaultdict(int)
    for r in tally["tally"]:
        if r["status"] in ("unsupported", "rejected"):
            table[r["function"], r["status"], r["detail"]] += r["calls"]
    print(f"\n{'function':28} calls  why not routed")
    for (f, status, detail), n in sorted(table.items()):
        print(f"{f:28} {n:5d}  {status}: {detail}")
    assert ("threshold_local", "unsupported", "function: dask-image returns the threshold "
            "image; ours is the mask (image > threshold)") in table

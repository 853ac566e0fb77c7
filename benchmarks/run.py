"""Run every benchmark and write benchmarks/RESULTS.md.

    python benchmarks/run.py            # all
    python benchmarks/run.py open ops   # some (bench_<name>.py)

Each benchmark prints its peers side by side, measured in the same run. A screen is needed
for the napari peers; with none, Xvfb is started as ``napari-lazyproc demo`` does.
"""

from __future__ import annotations

import datetime
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402


def _blocks(text: str) -> dict[str, str]:
    """Per-benchmark blocks of RESULTS.md, between <!-- bench:NAME --> markers."""
    out = {}
    for part in text.split("<!-- bench:")[1:]:
        name, _, rest = part.partition(" -->")
        out[name] = rest.split("<!-- end -->")[0].strip("\n")
    return out


def main(names: list[str]) -> None:
    from napari_lazyproc.cli.display import ensure_display as _ensure_display

    _ensure_display()
    available = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    names = names or available
    results = HERE / "RESULTS.md"
    blocks = _blocks(results.read_text()) if results.exists() else {}
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        text = module.main()
        blocks[name] = (f"{text}\n\nRun of {datetime.date.today().isoformat()} on: {machine()}")
    body = "\n\n".join(f"<!-- bench:{n} -->\n{blocks[n]}\n<!-- end -->" for n in sorted(blocks))
    results.write_text(
        "# Benchmark results\n\n"
        "Written by `python benchmarks/run.py` (each benchmark's latest run replaces its "
        "section). Each section names its peers, measured side by side in the same run, "
        "and its targets.\n\n" + body + "\n"
    )
    print(f"wrote {results}")


if __name__ == "__main__":
    main(sys.argv[1:])

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


def main(names: list[str]) -> None:
    from napari_lazyproc.cli import _ensure_display

    _ensure_display()
    available = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    names = names or available
    sections = []
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        sections.append(module.main())
    results = HERE / "RESULTS.md"
    previous = results.read_text() if results.exists() else ""
    header = (
        "# Benchmark results\n\n"
        "Written by `python benchmarks/run.py`; each section names its peers and targets.\n"
    )
    run = (
        f"\n## Run of {datetime.date.today().isoformat()}\n\n"
        f"Machine: {machine()}\n\n" + "\n\n".join(s.replace("\n## ", "\n### ").replace("## ", "### ", 1) for s in sections)
    )
    body = previous[len(header):] if previous.startswith(header) else ""
    # the newest run first; earlier runs of other benchmarks stay below it
    results.write_text(header + run + "\n" + body)
    print(f"wrote {results}")


if __name__ == "__main__":
    main(sys.argv[1:])

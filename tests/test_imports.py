"""The import structure: no cycles, and no package reaching into another's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_lazyproc"
#: packages whose private modules anyone may import (helpers shared by the whole core)
SHARED = ("_shared",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Every module of ours that ``path`` imports, at module level or in a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "napari_lazyproc":
                continue
            for alias in node.names:  # ``from . import _filters`` imports a module
                sub = f"{target}.{alias.name}"
                out.append(sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py")
                           .exists() or (PACKAGE.parent / sub.replace(".", "/")).is_dir()
                           else target)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "napari_lazyproc"]
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): set(_imports(p)) for p in PACKAGE.rglob("*.py")}


def _home(module: str) -> str:
    """The package a module belongs to: ``napari_lazyproc.ops`` for ``...ops._apply``, for
    ``...ops.engine._lazy`` (a room of ops) and for ``...ops`` itself; the top-level
    adapters (``_reader``, the ``_live`` package, the Qt room ``_qt``, the command line
    ``cli``, a module per command) are one package, ``napari_lazyproc``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("_qt", "cli", "_live"):
        return parts[0]
    if len(parts) > 2 and (PACKAGE / parts[1]).is_dir():
        return ".".join(parts[:2])  # the rooms of a package (ops.engine, ops.filters) are one home
    if (PACKAGE.parent / module.replace(".", "/")).is_dir():
        return module
    return module.rsplit(".", 1)[0]


def test_no_private_imports_across_packages():
    bad = []
    for module, targets in _graph().items():
        for target in targets:
            parts = target.split(".")
            private = [p for p in parts[1:] if p.startswith("_") and not p.startswith("__")]
            if not private or _home(target) == _home(module):
                continue
            if parts[1] in SHARED:
                continue
            bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycle_through(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """A shortest import path from ``start`` back to itself, within ``members``."""
    paths, todo = {start: [start]}, [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    return [start]


def test_no_import_cycles():
    """No module reaches itself through imports: at module level, in a function, or
    under TYPE_CHECKING, within a package or across packages (a function-level import
    hides a knot, it does not untie it)."""
    graph = _graph()
    reach = {m: _reach(graph, m) for m in graph}
    cycles, done = [], set()
    for module in sorted(graph):
        if module in done or module not in reach[module]:
            continue
        knot = {m for m in reach[module] if module in reach.get(m, ())}
        done |= knot
        cycles.append(" -> ".join(_cycle_through(graph, module, knot))
                      + (f"  ({len(knot)} modules in this knot)" if len(knot) > 2 else ""))
    assert not cycles, "\n".join(cycles)


#: the most lines a module may have: past it, a module holds more than one job
MAX_LINES = 400


def test_no_module_over_400_lines():
    """Each module one job, named after it: none over ``MAX_LINES`` lines (split by job,
    as ``ops/engine/_lazy.py`` was into geometry, whole-input values, tiling and
    evaluation)."""
    long = sorted(
        f"{p.relative_to(PACKAGE.parent)}: {n} lines"
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    )
    assert not long, "\n".join(long)

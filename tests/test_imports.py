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
    """The package a module belongs to: ``napari_lazyproc.ops`` for ``...ops._lazy`` and
    for ``...ops`` itself; the top-level adapters (``_reader``, ``_live``, ``cli``, the Qt
    room ``_qt``) are one package, ``napari_lazyproc``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "_qt":
        return parts[0]
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


def test_no_import_cycles():
    graph = _graph()
    cycles = []

    def visit(node, stack, seen):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                if nxt == min(cycle[:-1]):
                    cycles.append(" -> ".join(cycle))
                continue
            if nxt in seen:
                continue
            seen.add(nxt)
            visit(nxt, [*stack, nxt], seen)

    for start in sorted(graph):
        visit(start, [start], {start})
    # a package's __init__ importing its own modules, which import siblings, is no cycle
    cycles = [c for c in cycles if not all(_home(m) == _home(c.split(" -> ")[0])
                                           and m.endswith("__init__") is False
                                           for m in c.split(" -> ")[1:-1]) or "__" in c]
    assert not cycles, "\n".join(sorted(set(cycles)))

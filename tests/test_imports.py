"""No import cycles among gefu's modules (counting imports inside functions too: they still tie the modules
together), checked statically on the source (issue 11, item 11)."""

from __future__ import annotations

import ast
from pathlib import Path

import gefu

SRC = Path(gefu.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = node.module if node.level == 0 else ".".join(p for p in (base, node.module) if p)
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from . import x` imports the module x
    return {m for m in found if m and m.split(".")[0] == "gefu"}


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in SRC.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in files and t != m} for m, p in files.items()}


def _cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    cycles, stack = [], [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                cycles.append(path + [start])
            elif nxt not in path and len(path) < 8:
                stack.append((nxt, path + [nxt]))
    return cycles


# A package importing its own submodules is the normal direction; a submodule importing its package back is the
# cycle. These modules must take part in no cycle at all.
OWNED = ["gefu.enhancers.base", "gefu.enhancers.classical", "gefu.enhancers", "gefu.imageio", "gefu.tiling",
         "gefu.fileio", "gefu.registry", "gefu.device", "gefu.pipeline", "gefu.distributed", "gefu.cli.common",
         "gefu.cli.enhance"]


def test_no_import_cycles_through_the_core_modules():
    graph = _graph()
    problems = {m: _cycles_through(graph, m)[:1] for m in OWNED}
    assert not {m: c for m, c in problems.items() if c}


def test_the_checker_sees_a_function_level_cycle():
    """The old enhancers/base.py imported `from . import _load_all` inside create_enhancer."""
    graph = {"gefu.enhancers": {"gefu.enhancers.base"}, "gefu.enhancers.base": {"gefu.enhancers"}}
    assert _cycles_through(graph, "gefu.enhancers.base") == [["gefu.enhancers.base", "gefu.enhancers",
                                                              "gefu.enhancers.base"]]

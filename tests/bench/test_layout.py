"""Code-health rules of the benchmark package (DESIGN §5–6): files split along their seams, short functions,
sibling imports at module top, one `Metric` class."""

from __future__ import annotations

import ast
from pathlib import Path

import gefu

SRC = Path(gefu.__file__).parent
BENCH_FILES = sorted((SRC / "bench").rglob("*.py"))


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_bench_files_are_split_along_their_seams():
    # suites.py had grown to 907 lines; every module of the package stays well under ~500.
    too_long = {p.relative_to(SRC).as_posix(): n for p in BENCH_FILES if (n := len(p.read_text().splitlines())) > 520}
    assert not too_long
    assert (SRC / "bench" / "suites").is_dir() and not (SRC / "bench" / "suites.py").exists()


def test_bench_functions_are_short():
    long_fns = {}
    for p in BENCH_FILES + [SRC / "cli" / "bench.py"]:
        for fn in _functions(ast.parse(p.read_text())):
            if fn.end_lineno - fn.lineno + 1 > 60:
                long_fns[f"{p.relative_to(SRC).as_posix()}:{fn.name}"] = fn.end_lineno - fn.lineno + 1
    assert not long_fns  # run_suite (96 lines) and MiniSuite.prepare (83) were


def test_bench_sibling_imports_are_at_module_top():
    local = []
    for p in BENCH_FILES:
        for fn in _functions(ast.parse(p.read_text())):
            local += [f"{p.name}:{fn.name} imports {'.' * m.level}{m.module or ''}" for m in ast.walk(fn)
                      if isinstance(m, ast.ImportFrom) and m.level > 0]
    assert not local


def test_one_metric_class():
    # gefu.metrics.Metric / METRICS were never used; the table column `gefu.bench.suites.Metric` is the one.
    defs = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
            for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ClassDef) and n.name == "Metric"]
    assert defs == ["bench/suites/base.py"]

"""The table model shared by the Markdown, LaTeX and HTML reports: columns, rows (methods, reference rows, the
paper's numbers), 95 % intervals, which cell to bold, and the tables a result gives (overall, per level, per
class)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from . import stats
from .suites import TIME_METRIC, Metric

if TYPE_CHECKING:
    from .runner import BenchResult


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None




@dataclass
class Column:
    metric: "Metric"
    paper: bool = False  # the paper's published value, not ours
    title: str | None = None  # header instead of the metric's label (e.g. a darkness level)

    @property
    def header(self) -> str:
        if self.title is not None:
            return self.title
        arrow = "↑" if self.metric.higher_is_better else "↓"
        return f"{self.metric.label} {arrow}" + (" (paper)" if self.paper else "")


@dataclass
class Row:
    method: str
    values: list[float | None]
    ours: bool = True  # False: a method only the paper reports (not run here)
    reference: bool = False  # a reference row of the suite (e.g. clean, oracle): never bold
    intervals: list[tuple[float, float] | None] | None = None  # 95 % interval per value


@dataclass
class Table:
    suite: str
    title: str
    columns: list[Column]
    rows: list[Row]
    highlight: bool = True  # bold the best of our values per column

    def _competitors(self, j: int) -> dict[int, float]:
        return {i: r.values[j] for i, r in enumerate(self.rows)
                if r.ours and not r.reference and r.values[j] is not None}

    def best(self) -> list[set[int]]:
        """Per column, the row indices to bold: our best method (reference rows never count). With intervals,
        only a best value whose interval does not overlap the runner-up's; without, every tie of the best
        (nothing for paper columns, columns with fewer than two values, or columns where every value ties)."""
        out: list[set[int]] = []
        for j, col in enumerate(self.columns):
            vals = self._competitors(j)
            if not self.highlight or col.paper or len(vals) < 2 or len(set(vals.values())) == 1:
                out.append(set())
                continue
            if any(self.rows[i].intervals for i in vals):
                ivs = [self.rows[i].intervals[j] if self.rows[i].intervals else None for i in vals]
                k = stats.significantly_best(list(vals.values()), ivs, col.metric.higher_is_better)
                out.append(set() if k is None else {list(vals)[k]})
                continue
            top = max(vals.values()) if col.metric.higher_is_better else min(vals.values())
            out.append({i for i, v in vals.items() if v == top})
        return out

    def flat(self) -> list[str]:
        """Headers of our columns where every method (two or more; reference rows aside) shows the same value."""
        out = []
        for j, col in enumerate(self.columns):
            vals = self._competitors(j)
            if not col.paper and len(vals) >= 2 and len({self.cell(i, j, interval=False) for i in vals}) == 1:
                out.append(col.header)
        return out

    def cell(self, i: int, j: int, interval: bool = True) -> str:
        row = self.rows[i]
        v = row.values[j]
        if v is None:
            return "–"
        fmt = self.columns[j].metric.fmt
        text = format(v, fmt)
        iv = row.intervals[j] if interval and row.intervals else None
        if iv is not None and all(math.isfinite(x) for x in iv):
            text += f" [{format(iv[0], fmt)}, {format(iv[1], fmt)}]"
        return text


def _suite_metrics(result: "BenchResult") -> list["Metric"]:
    present = {k for r in result.records for k, v in r["metrics"].items() if _finite(v) is not None}
    present |= {k for pub in result.suite.published.values() for k in pub}
    metrics = [m for m in result.suite.metrics if m.key in present]
    if "time_s" in present:
        metrics.append(TIME_METRIC)
    return metrics


def build_table(result: "BenchResult") -> Table:
    """Methods × metrics; with the paper's number after each of our columns when the suite has any."""
    suite = result.suite
    metrics = _suite_metrics(result)
    has_paper = bool(suite.published)
    columns: list[Column] = []
    for m in metrics:
        columns.append(Column(m))
        if has_paper and any(m.key in pub for pub in suite.published.values()):
            columns.append(Column(m, paper=True))
    rows = []
    for rec in result.records:
        pub = suite.published.get(rec["method"], {})
        vals = [_finite(pub.get(c.metric.key)) if c.paper else _finite(rec["metrics"].get(c.metric.key))
                for c in columns]
        rows.append(Row(rec["method"], vals, reference=bool(rec.get("reference")),
                        intervals=_intervals(rec, "", columns)))
    run = {r["method"] for r in result.records}
    for method, pub in suite.published.items():
        if method not in run:
            rows.append(Row(method, [_finite(pub.get(c.metric.key)) if c.paper else None for c in columns],
                            ours=False))
    return Table(suite.name, suite.title, columns, rows)


def _intervals(rec: dict[str, Any], group: str, columns: list[Column]) -> list[tuple[float, float] | None] | None:
    ivs = rec.get("intervals", {}).get(group)
    if not ivs:
        return None
    return [None if c.paper or c.metric.key not in ivs else tuple(ivs[c.metric.key]) for c in columns]


def build_level_tables(result: "BenchResult") -> list[Table]:
    """One table per metric: methods × groups (e.g. GEFU-mini's darkness levels), with intervals when the suite
    gives them; bold compares methods within a group."""
    groups = list(dict.fromkeys(g for r in result.records for g in r.get("breakdown", {})))
    if not groups:
        return []
    tables = []
    for m in [m for m in _suite_metrics(result) if m.key != "time_s"]:
        columns = [Column(m, title=g) for g in groups]
        rows = []
        for rec in result.records:
            bd = rec.get("breakdown", {})
            vals = [_finite(bd.get(g, {}).get(m.key)) for g in groups]
            ivs = [tuple(rec.get("intervals", {}).get(g, {}).get(m.key, ())) or None for g in groups]
            rows.append(Row(rec["method"], vals, reference=bool(rec.get("reference")),
                            intervals=ivs if any(ivs) else None))
        if any(v is not None for r in rows for v in r.values):
            arrow = "↑" if m.higher_is_better else "↓"
            tables.append(Table(result.suite.name, f"{m.label} {arrow} by level", columns, rows))
    return tables


def build_per_class(result: "BenchResult") -> list[Table]:
    """Per-class tables (e.g. IoU per Cityscapes class, AP per class): methods × classes, one per table title."""
    titles = list(dict.fromkeys(t for r in result.records for t in r.get("per_class", {})))
    tables = []
    for title in titles:
        classes = list(dict.fromkeys(c for r in result.records for c in r.get("per_class", {}).get(title, {})))
        columns = [Column(Metric(c, c, True, ".1f"), title=c) for c in classes]
        rows = [Row(r["method"], [_finite(r.get("per_class", {}).get(title, {}).get(c)) for c in classes],
                    reference=bool(r.get("reference"))) for r in result.records]
        tables.append(Table(result.suite.name, title, columns, rows))
    return tables


def build_breakdown(result: "BenchResult") -> Table | None:
    """Rows (method, group) × our metrics, when the suite reports groups (e.g. GEFU-mini's darkness levels)."""
    groups = [g for r in result.records for g in r.get("breakdown", {})]
    if not groups:
        return None
    order = list(dict.fromkeys(groups))
    metrics = [m for m in _suite_metrics(result) if m.key != "time_s"]
    rows = []
    for g in order:
        for rec in result.records:
            vals = rec.get("breakdown", {}).get(g)
            if vals is not None:
                rows.append(Row(f"{rec['method']} · {g}", [_finite(vals.get(m.key)) for m in metrics]))
    # No bold: rows of different groups are not competitors.
    return Table(result.suite.name, f"{result.suite.title} — by group", [Column(m) for m in metrics], rows,
                 highlight=False)


def _method_label(row: Row) -> str:
    if row.reference:
        return f"{row.method} (reference)"
    return row.method if row.ours else f"{row.method} (paper only, not run here)"


def flat_notes(tables: Sequence[Table]) -> list[str]:
    """A note per table column that is the same for every method (it does not tell the methods apart here)."""
    return [f"{t.title}: the column '{h}' is the same for every method here — it does not tell them apart"
            for t in tables for h in t.flat()]


def published_note(result: "BenchResult") -> str:
    """The protocol behind the published numbers of a suite ('' when it has none)."""
    note = getattr(result.suite, "published_note", None)
    if callable(note):
        return note()
    return result.suite.paper_source or ""

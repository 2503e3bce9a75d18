"""Benchmark reports: JSON, CSV, Markdown, LaTeX, one bar chart per metric, and a self-contained HTML page.

`write_report(results, out)` writes into `out` (every file atomically: a temporary file in the same folder,
then `os.replace`):

- `results.json` — one record per method × suite: every metric, the per-group breakdown, the timing and where
  it came from, the conventions, the notes, versions, device, the enhancer's configuration;
- `results.csv` — one row per record (group empty) plus one row per record and group;
- `results.md` — per suite a table shaped like the paper's Table 2 / Table 4 (methods × metrics); for the
  paper's suites each metric column is followed by the paper's published number for that method;
- `results.tex` — the same tables in LaTeX (booktabs);
- `charts/<suite>-<metric>.png` — one bar chart per metric (the paper's number as a marker when known);
- `report.html` — tables, notes, conventions, charts and a side-by-side grid of inputs, each method's outputs
  and the reference, as small JPEG thumbnails under `thumbs/` linked by relative paths. The page has no
  external assets (no scripts, fonts or style sheets from elsewhere): the folder can be zipped and mailed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..fileio import write_atomic
from .runner import BenchResult
from .suites import TIME_METRIC, Metric


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become null (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


# ------------------------------------------------------------------------------------------------------------
# The table model shared by Markdown, LaTeX and HTML
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Column:
    metric: "Metric"
    paper: bool = False  # the paper's published value, not ours

    @property
    def header(self) -> str:
        arrow = "↑" if self.metric.higher_is_better else "↓"
        return f"{self.metric.label} {arrow}" + (" (paper)" if self.paper else "")


@dataclass
class Row:
    method: str
    values: list[float | None]
    ours: bool = True  # False: a method only the paper reports (not run here)


@dataclass
class Table:
    suite: str
    title: str
    columns: list[Column]
    rows: list[Row]
    highlight: bool = True  # bold the best of our values per column

    def best(self) -> list[set[int]]:
        """Per column, the row indices holding our best value (ties all count; empty for paper columns, a
        column with fewer than two values, or a column where every value ties)."""
        out: list[set[int]] = []
        for j, col in enumerate(self.columns):
            vals = {i: r.values[j] for i, r in enumerate(self.rows) if r.ours and r.values[j] is not None}
            if not self.highlight or col.paper or len(vals) < 2 or len(set(vals.values())) == 1:
                out.append(set())
                continue
            top = max(vals.values()) if col.metric.higher_is_better else min(vals.values())
            out.append({i for i, v in vals.items() if v == top})
        return out

    def cell(self, i: int, j: int) -> str:
        v = self.rows[i].values[j]
        return "–" if v is None else format(v, self.columns[j].metric.fmt)


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
        rows.append(Row(rec["method"], vals))
    run = {r["method"] for r in result.records}
    for method, pub in suite.published.items():
        if method not in run:
            rows.append(Row(method, [_finite(pub.get(c.metric.key)) if c.paper else None for c in columns],
                            ours=False))
    return Table(suite.name, suite.title, columns, rows)


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
    return row.method if row.ours else f"{row.method} (paper only, not run here)"


# ------------------------------------------------------------------------------------------------------------
# Markdown / LaTeX / CSV / JSON
# ------------------------------------------------------------------------------------------------------------


def table_markdown(table: Table) -> str:
    best = table.best()
    lines = ["| Method | " + " | ".join(c.header for c in table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for i, row in enumerate(table.rows):
        cells = [f"**{table.cell(i, j)}**" if i in best[j] else table.cell(i, j) for j in range(len(table.columns))]
        lines.append(f"| {_method_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _notes(result: "BenchResult") -> list[str]:
    return list(dict.fromkeys(n for r in result.records for n in r.get("notes", [])))


def _conventions(result: "BenchResult") -> dict[str, str]:
    return result.records[0].get("conventions", {}) if result.records else {}


def render_markdown(results: Sequence["BenchResult"]) -> str:
    parts = ["# GEFU benchmark results", ""]
    for res in results:
        rec0 = res.records[0]
        parts += [f"## {res.suite.title} (`{res.suite.name}`)", ""]
        parts += [f"{len(res.samples)} images · device {rec0['device']} · gefu {rec0['versions'].get('gefu', '?')}"
                  f" · torch {rec0['versions'].get('torch', '?')}", ""]
        for note in _notes(res):
            parts += [f"> {note}", ""]
        if res.suite.paper_source:
            parts += [f"Paper columns: {res.suite.paper_source}.", ""]
        parts += [table_markdown(build_table(res)), ""]
        bd = build_breakdown(res)
        if bd is not None:
            parts += ["### By group", "", table_markdown(bd), ""]
        parts += ["### Conventions", ""]
        parts += [f"- **{k}**: {v}" for k, v in _conventions(res).items()]
        parts += ["", "### Timing", ""]
        parts += [f"- **{r['method']}**: {r['time']['source']}" for r in res.records]
        parts.append("")
    return "\n".join(parts)


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(s: str) -> str:
    s = "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)
    return (s.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("·", r"$\cdot$")
            .replace("–", "--").replace("—", "---"))


def table_latex(table: Table, caption: str) -> str:
    best = table.best()
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
             "Method & " + " & ".join(tex_escape(c.header) for c in table.columns) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        cells = []
        for j in range(len(table.columns)):
            c = tex_escape(table.cell(i, j))
            cells.append(rf"\textbf{{{c}}}" if i in best[j] else c)
        lines.append(tex_escape(_method_label(row)) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{tex_escape(caption)}}}",
              rf"\label{{tab:gefu-{table.suite}}}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(results: Sequence["BenchResult"]) -> str:
    parts = ["% GEFU benchmark results, generated by `gefu bench`. Needs \\usepackage{booktabs}.", ""]
    for res in results:
        caption = f"{res.suite.title}: {len(res.samples)} images."
        if res.suite.paper_source:
            caption += f" Paper columns: {res.suite.paper_source}."
        notes = _notes(res)
        if notes:
            caption += " " + " ".join(notes)
        parts += [table_latex(build_table(res), caption), ""]
    return "\n".join(parts)


def render_csv(results: Sequence["BenchResult"]) -> str:
    keys: list[str] = []
    for res in results:
        for m in _suite_metrics(res):
            if m.key not in keys:
                keys.append(m.key)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["suite", "method", "group", "n_images", *keys, "time_source", "device", "enhancer"])
    for res in results:
        for rec in res.records:
            def row(group: str, n: int, values: dict[str, Any]) -> list[Any]:
                cells = ["" if _finite(values.get(k)) is None else repr(float(values[k])) for k in keys]
                return [rec["suite"], rec["method"], group, n, *cells, rec["time"]["source"],
                        rec["device"], json.dumps(rec["enhancer"], sort_keys=True)]

            w.writerow(row("", rec["n_images"], rec["metrics"]))
            for group, values in rec.get("breakdown", {}).items():
                w.writerow(row(group, sum(1 for s in res.samples if s.group == group), values))
    return buf.getvalue()


def render_json(results: Sequence["BenchResult"]) -> str:
    records = [rec for res in results for rec in res.records]
    return json.dumps(_clean({"format": "gefu-bench-results/1", "records": records}), indent=2,
                      ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------------------------------------------------------
# Charts and thumbnails
# ------------------------------------------------------------------------------------------------------------


def write_charts(result: "BenchResult", out: Path) -> list[Path]:
    """One bar chart PNG per metric: our methods as bars, the paper's value (when known) as a black tick."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    paths = []
    table = build_table(result)
    ours = [r for r in table.rows if r.ours]
    for j, col in enumerate(table.columns):
        if col.paper:
            continue
        values = [r.values[j] for r in ours]
        if all(v is None for v in values):
            continue
        paper_j = j + 1 if j + 1 < len(table.columns) and table.columns[j + 1].paper else None
        fig = Figure(figsize=(max(3.5, 0.9 * len(ours) + 1.5), 3.2), dpi=110)
        ax = fig.add_subplot()
        xs = range(len(ours))
        bars = ax.bar(xs, [0 if v is None else v for v in values], color="#4c78a8")
        for b, v in zip(bars, values):
            if v is not None:
                ax.annotate(format(v, col.metric.fmt), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=8)
        if paper_j is not None:
            for x, r in zip(xs, ours):
                if r.values[paper_j] is not None:
                    ax.plot([x - 0.4, x + 0.4], [r.values[paper_j]] * 2, color="black", lw=2,
                            label="paper" if x == 0 or "paper" not in ax.get_legend_handles_labels()[1] else None)
            if ax.get_legend_handles_labels()[1]:
                ax.legend(fontsize=8)
        ax.set_xticks(list(xs), [r.method for r in ours], rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{col.header} — {result.suite.name}", fontsize=10)
        ax.margins(y=0.15)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        paths.append(write_atomic(out / "charts" / f"{result.suite.name}-{col.metric.key}.png", buf.getvalue()))
    return paths


def _thumbnail(src: Path, dst: Path, side: int) -> Path:
    from PIL import Image

    if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((side, side), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
    return write_atomic(dst, buf.getvalue())


def gallery_samples(samples: Sequence[Any], n: int) -> list[Any]:
    """Up to n samples spread evenly over the list (so GEFU-mini shows several photos and levels)."""
    if len(samples) <= n:
        return list(samples)
    step = len(samples) / n
    return [samples[int(i * step)] for i in range(n)]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


# ------------------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1600px}
h1{font-size:1.5em} h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table.res{border-collapse:collapse;margin:8px 0 16px} table.res th,table.res td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right}
table.res th:first-child,table.res td:first-child{text-align:left} table.res th{background:#f4f6f8}
td.paper,th.paper{color:#666;background:#fafafa} td.best{font-weight:bold} tr.paperonly td{color:#888;font-style:italic}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0}
.meta{color:#666;font-size:.9em} dl.conv dt{font-weight:bold;margin-top:6px} dl.conv dd{margin-left:16px;color:#444}
.charts img{height:220px;margin:4px;border:1px solid #eee}
table.grid{border-collapse:collapse} table.grid th{font-size:.9em;padding:4px} table.grid td{padding:3px;vertical-align:top;text-align:center}
table.grid img{max-width:200px;max-height:200px;display:block;margin:auto} .cap{font-size:.75em;color:#555}
"""


def _html_table(table: Table) -> str:
    best = table.best()
    head = "".join(f'<th class="{"paper" if c.paper else ""}">{html.escape(c.header)}</th>' for c in table.columns)
    rows = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, col in enumerate(table.columns):
            cls = "paper" if col.paper else ("best" if i in best[j] else "")
            cells.append(f'<td class="{cls}">{html.escape(table.cell(i, j))}</td>')
        rows.append(f'<tr class="{"" if row.ours else "paperonly"}"><td>{html.escape(_method_label(row))}</td>'
                    + "".join(cells) + "</tr>")
    return f'<table class="res"><tr><th>Method</th>{head}</tr>' + "".join(rows) + "</table>"


def _gallery_html(result: "BenchResult", out: Path, n: int, side: int) -> str:
    chosen = gallery_samples(result.samples, n)
    if not chosen:
        return ""
    methods = [r["method"] for r in result.records]
    has_ref = any(s.reference is not None for s in chosen)
    head = "<th>input</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    head += "<th>reference</th>" if has_ref else ""
    thumbs = out / "thumbs" / _safe(result.suite.name)
    rows = []
    for s in chosen:
        sid = _safe(s.id)
        cells = []
        src = _thumbnail(Path(s.input), thumbs / "input" / f"{sid}.jpg", side)
        cells.append(f'<td><img src="{html.escape(src.relative_to(out).as_posix())}" alt="input {html.escape(s.id)}">'
                     f'<div class="cap">{html.escape(s.id)}</div></td>')
        for m in methods:
            run = result.runs.get(m)
            png = run.cache_dir / f"{s.id}.png" if run else None
            if png is None or not png.is_file():
                cells.append("<td>–</td>")
                continue
            t = _thumbnail(png, thumbs / _safe(m) / f"{sid}.jpg", side)
            score = run.scores.get(s.id, {})
            cap = " · ".join(f"{k.upper()} {score[k]:.2f}" for k in ("psnr", "ssim") if _finite(score.get(k)) is not None)
            cells.append(f'<td><img src="{html.escape(t.relative_to(out).as_posix())}" alt="{html.escape(m)} '
                         f'{html.escape(s.id)}"><div class="cap">{html.escape(cap)}</div></td>')
        if has_ref:
            if s.reference is not None and Path(s.reference).is_file():
                t = _thumbnail(Path(s.reference), thumbs / "reference" / f"{sid}.jpg", side)
                cells.append(f'<td><img src="{html.escape(t.relative_to(out).as_posix())}" alt="reference"></td>')
            else:
                cells.append("<td>–</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h3>Inputs and outputs ({len(chosen)} of {len(result.samples)} images)</h3>"
            f'<table class="grid"><tr>{head}</tr>' + "".join(rows) + "</table>")


def render_html(results: Sequence["BenchResult"], out: Path, charts: dict[str, list[Path]],
                gallery: int = 6, thumb_side: int = 256) -> str:
    body = ["<h1>GEFU benchmark results</h1>"]
    for res in results:
        rec0 = res.records[0]
        body.append(f"<h2>{html.escape(res.suite.title)} (<code>{html.escape(res.suite.name)}</code>)</h2>")
        body.append(f'<p class="meta">{len(res.samples)} images · device {html.escape(rec0["device"])} · '
                    f'gefu {html.escape(rec0["versions"].get("gefu", "?"))} · torch '
                    f'{html.escape(rec0["versions"].get("torch", "?"))} · {html.escape(rec0["created"])}</p>')
        for note in _notes(res):
            body.append(f'<div class="note">{html.escape(note)}</div>')
        if res.suite.paper_source:
            body.append(f'<p class="meta">Grey columns: {html.escape(res.suite.paper_source)}.</p>')
        body.append(_html_table(build_table(res)))
        bd = build_breakdown(res)
        if bd is not None:
            body.append("<h3>By group</h3>" + _html_table(bd))
        imgs = "".join(f'<img src="{html.escape(p.relative_to(out).as_posix())}" alt="{html.escape(p.stem)}">'
                       for p in charts.get(res.suite.name, []))
        if imgs:
            body.append(f'<div class="charts">{imgs}</div>')
        body.append(_gallery_html(res, out, gallery, thumb_side))
        conv = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _conventions(res).items())
        timing = "".join(f"<dt>{html.escape(r['method'])}</dt><dd>{html.escape(r['time']['source'])}</dd>"
                         for r in res.records)
        body.append(f'<h3>Conventions</h3><dl class="conv">{conv}</dl><h3>Timing</h3><dl class="conv">{timing}</dl>')
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>GEFU benchmark</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(results: "BenchResult | Sequence[BenchResult]", out: str | os.PathLike,
                 gallery: int = 6, thumb_side: int = 256) -> dict[str, Path]:
    """Write every report file into `out`; returns name → path."""
    results = [results] if isinstance(results, BenchResult) else list(results)
    results = [r for r in results if r.records]
    if not results:
        raise ValueError("nothing to report: no records")
    out = Path(out)
    files = {
        "json": write_atomic(out / "results.json", render_json(results)),
        "csv": write_atomic(out / "results.csv", render_csv(results)),
        "md": write_atomic(out / "results.md", render_markdown(results)),
        "tex": write_atomic(out / "results.tex", render_latex(results)),
    }
    charts = {res.suite.name: write_charts(res, out) for res in results}
    files["html"] = write_atomic(out / "report.html", render_html(results, out, charts, gallery, thumb_side))
    for name, paths in charts.items():
        for p in paths:
            files[f"chart:{p.stem}"] = p
    return files

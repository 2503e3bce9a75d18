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
- `results_per_class.csv` — per-class scores (IoU per class, AP per class) when a suite gives them;
- `report.html` — tables (overall, per level with 95 % intervals, per class), notes (including columns that are the
  same for every method), conventions, charts and a gallery that wraps to the window: per image the input, each
  row's output with its outcome (predicted class, face boxes drawn, PSNR) and the reference, as small JPEG
  thumbnails under `thumbs/` linked by relative paths. The page has no external assets (no scripts, fonts or style sheets from elsewhere): the folder can be zipped and mailed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..fileio import write_atomic
from .runner import BenchResult
from .suites import stable_hash
from .tables import (Column, Row, Table, _finite, _method_label, _suite_metrics, build_breakdown,  # noqa: F401
                     build_level_tables, build_per_class, build_table, flat_notes, published_note)


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
# Markdown / LaTeX / CSV / JSON
# ------------------------------------------------------------------------------------------------------------


def _display(table: Table, i: int, j: int) -> str:
    """A cell as shown: a published number carries † (its protocol note follows the table)."""
    text = table.cell(i, j)
    return text + "†" if table.columns[j].paper and table.rows[i].values[j] is not None else text


def table_markdown(table: Table) -> str:
    best = table.best()
    lines = ["| Method | " + " | ".join(c.header for c in table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for i, row in enumerate(table.rows):
        cells = [f"**{_display(table, i, j)}**" if i in best[j] else _display(table, i, j)
                 for j in range(len(table.columns))]
        label = f"*{_method_label(row)}*" if row.reference else _method_label(row)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
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
        table, levels, per_class = build_table(res), build_level_tables(res), build_per_class(res)
        for note in _notes(res) + flat_notes([table, *levels]):
            parts += [f"> {note}", ""]
        parts += [table_markdown(table), ""]
        if any(c.paper for c in table.columns):
            parts += [f"† {published_note(res)}.", ""]
        if levels:
            parts += ["### By level (95 % bootstrap intervals)", ""]
            for t in levels:
                parts += [f"**{t.title}**", "", table_markdown(t), ""]
        else:
            bd = build_breakdown(res)
            if bd is not None:
                parts += ["### By group", "", table_markdown(bd), ""]
        for t in per_class:
            parts += [f"### Per class: {t.title}", "", table_markdown(t), ""]
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
    iv_keys = [f"{k}_{end}" for k in keys for end in ("lo", "hi")]
    w.writerow(["suite", "method", "group", "n_images", *keys, *iv_keys, "reference", "time_source", "device",
                "enhancer"])
    for res in results:
        for rec in res.records:
            def row(group: str, n: int, values: dict[str, Any]) -> list[Any]:
                cells = ["" if _finite(values.get(k)) is None else repr(float(values[k])) for k in keys]
                ivs = rec.get("intervals", {}).get(group, {})
                iv_cells = ["" if k not in ivs or _finite(ivs[k][e]) is None else repr(float(ivs[k][e]))
                            for k in keys for e in (0, 1)]
                return [rec["suite"], rec["method"], group, n, *cells, *iv_cells, int(bool(rec.get("reference"))),
                        rec["time"]["source"], rec["device"], json.dumps(rec["enhancer"], sort_keys=True)]

            w.writerow(row("", rec["n_images"], rec["metrics"]))
            for group, values in rec.get("breakdown", {}).items():
                w.writerow(row(group, sum(1 for s in res.samples if s.group == group), values))
    return buf.getvalue()


def render_per_class_csv(results: Sequence["BenchResult"]) -> str | None:
    """Long format: suite, method, table, class, value (None when no record has per-class scores)."""
    rows = [[rec["suite"], rec["method"], title, cls, repr(float(v))]
            for res in results for rec in res.records for title, per in rec.get("per_class", {}).items()
            for cls, v in per.items() if _finite(v) is not None]
    if not rows:
        return None
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["suite", "method", "table", "class", "value"])
    w.writerows(rows)
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


def _thumbnail(src: Path, dst: Path, side: int, boxes: Sequence[Sequence[float]] = (),
               gt_boxes: Sequence[Sequence[float]] = ()) -> Path:
    """A JPEG thumbnail (longest side `side`) with ground-truth boxes (green) and detections (red) drawn."""
    from PIL import Image, ImageDraw

    if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    with Image.open(src) as im:
        im = im.convert("RGB")
        if boxes or gt_boxes:
            draw = ImageDraw.Draw(im)
            width = max(1, round(max(im.size) / side))
            for color, bs in (((40, 220, 40), gt_boxes), ((255, 40, 40), boxes)):
                for b in bs:
                    draw.rectangle([float(v) for v in b[:4]], outline=color, width=width)
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
.scroll{overflow-x:auto;max-width:100%}
table.res{border-collapse:collapse;margin:8px 0 16px} table.res th,table.res td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
table.res th:first-child,table.res td:first-child{text-align:left} table.res th{background:#f4f6f8}
td.paper,th.paper{color:#666;background:#fafafa} td.best{font-weight:bold} tr.paperonly td{color:#888;font-style:italic}
tr.reference td{color:#555;font-style:italic;background:#f7f9fb}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0} .foot{color:#555;font-size:.85em}
.meta{color:#666;font-size:.9em} dl.conv dt{font-weight:bold;margin-top:6px} dl.conv dd{margin-left:16px;color:#444}
.levels{display:flex;flex-wrap:wrap;gap:0 24px} .levels h4{margin:6px 0 0}
.charts img{height:220px;margin:4px;border:1px solid #eee;max-width:100%}
.sample{border-top:1px solid #e4e4e4;padding:6px 0} .sid{font-weight:bold;font-size:.9em;margin:2px 0 4px}
.tiles{display:flex;flex-wrap:wrap;gap:6px} figure.tile{margin:0;width:180px}
figure.tile img{max-width:180px;max-height:180px;display:block} figcaption{font-size:.72em;color:#444;overflow-wrap:anywhere}
figcaption b{color:#222}
"""


def _html_table(table: Table) -> str:
    best = table.best()
    head = "".join(f'<th class="{"paper" if c.paper else ""}">{html.escape(c.header)}</th>' for c in table.columns)
    rows = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, col in enumerate(table.columns):
            cls = "paper" if col.paper else ("best" if i in best[j] else "")
            cells.append(f'<td class="{cls}">{html.escape(_display(table, i, j))}</td>')
        cls = "paperonly" if not row.ours else ("reference" if row.reference else "")
        rows.append(f'<tr class="{cls}"><td>{html.escape(_method_label(row))}</td>' + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="res"><tr><th>Method</th>{head}</tr>' + "".join(rows)
            + "</table></div>")


def _figure(src: Path, out: Path, caption: str, alt: str) -> str:
    return (f'<figure class="tile"><img src="{html.escape(src.relative_to(out).as_posix())}" alt="{html.escape(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _gallery_html(result: "BenchResult", out: Path, n: int, side: int) -> str:
    """Per chosen sample, a wrapping row of figures: the input, each row's output with the suite's per-image
    outcome (class, face boxes, PSNR), and the reference — it fits any window width."""
    chosen = gallery_samples(result.samples, n)
    if not chosen:
        return ""
    thumbs = out / "thumbs" / _safe(result.suite.name)
    blocks = []
    for s in chosen:
        sid = _safe(s.id)
        figs = [_figure(_thumbnail(Path(s.input), thumbs / "input" / f"{sid}.jpg", side), out, "<b>input</b>",
                        f"input {s.id}")]
        for rec in result.records:
            m = rec["method"]
            run = result.runs.get(m)
            png = run.cache_dir / f"{s.id}.png" if run else None
            if png is None or not png.is_file():
                continue
            score = run.scores.get(s.id, {})
            got = result.suite.outcome(s, score)
            if not got:
                got = {"caption": " · ".join(f"{k.upper()} {score[k]:.2f}" for k in ("psnr", "ssim")
                                             if _finite(score.get(k)) is not None)}
            tag = stable_hash([got.get("boxes"), got.get("gt_boxes")], 6)
            t = _thumbnail(png, thumbs / _safe(m) / f"{sid}-{tag}.jpg", side, got.get("boxes") or (),
                           got.get("gt_boxes") or ())
            label = f"{m} (reference)" if rec.get("reference") else m
            figs.append(_figure(t, out, f"<b>{html.escape(label)}</b><br>{html.escape(got.get('caption', ''))}",
                                f"{m} {s.id}"))
        if s.reference is not None and Path(s.reference).is_file():
            t = _thumbnail(Path(s.reference), thumbs / "reference" / f"{sid}.jpg", side)
            figs.append(_figure(t, out, "<b>reference</b>", "reference"))
        blocks.append(f'<div class="sample"><div class="sid">{html.escape(s.id)}</div>'
                      f'<div class="tiles">{"".join(figs)}</div></div>')
    legend = ("<p class=\"meta\">Boxes: green = ground truth, red = detections with score ≥ 0.5.</p>"
              if any("boxes" in result.suite.outcome(s, {}) for s in chosen[:1]) else "")
    return (f"<h3>Inputs and outputs ({len(chosen)} of {len(result.samples)} images)</h3>{legend}"
            + "".join(blocks))


def render_html(results: Sequence["BenchResult"], out: Path, charts: dict[str, list[Path]],
                gallery: int = 6, thumb_side: int = 256) -> str:
    body = ["<h1>GEFU benchmark results</h1>"]
    for res in results:
        rec0 = res.records[0]
        body.append(f"<h2>{html.escape(res.suite.title)} (<code>{html.escape(res.suite.name)}</code>)</h2>")
        body.append(f'<p class="meta">{len(res.samples)} images · device {html.escape(rec0["device"])} · '
                    f'gefu {html.escape(rec0["versions"].get("gefu", "?"))} · torch '
                    f'{html.escape(rec0["versions"].get("torch", "?"))} · {html.escape(rec0["created"])}</p>')
        table, levels, per_class = build_table(res), build_level_tables(res), build_per_class(res)
        for note in _notes(res) + flat_notes([table, *levels]):
            body.append(f'<div class="note">{html.escape(note)}</div>')
        body.append(_html_table(table))
        if any(c.paper for c in table.columns):
            body.append(f'<p class="foot">† grey columns: {html.escape(published_note(res))}.</p>')
        if levels:
            body.append("<h3>By level (95 % bootstrap intervals; bold only when the interval does not overlap the "
                        "runner-up's)</h3><div class=\"levels\">"
                        + "".join(f"<div><h4>{html.escape(t.title)}</h4>{_html_table(t)}</div>" for t in levels)
                        + "</div>")
        else:
            bd = build_breakdown(res)
            if bd is not None:
                body.append("<h3>By group</h3>" + _html_table(bd))
        for t in per_class:
            body.append(f"<h3>Per class: {html.escape(t.title)}</h3>" + _html_table(t))
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
    per_class = render_per_class_csv(results)
    if per_class is not None:
        files["per_class_csv"] = write_atomic(out / "results_per_class.csv", per_class)
    charts = {res.suite.name: write_charts(res, out) for res in results}
    files["html"] = write_atomic(out / "report.html", render_html(results, out, charts, gallery, thumb_side))
    for name, paths in charts.items():
        for p in paths:
            files[f"chart:{p.stem}"] = p
    return files

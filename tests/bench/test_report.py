"""Report files: exist, parse, hold the right rows, and the HTML page only references files that exist."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gefu.bench.degrade import darken
from gefu.bench.report import render_markdown, render_per_class_csv, write_atomic, write_report
from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.enhancers.base import Enhancer
from gefu.imageio import save_image


class ReportGain(Enhancer):
    name = "test-report-gain"

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        return x * 4


class ReportIdentity(Enhancer):
    name = "test-report-identity"

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module", autouse=True)
def _registered_test_enhancers(register_enhancers):
    register_enhancers(ReportGain, ReportIdentity)


METHODS = ["test-report-identity", "test-report-gain"]


@pytest.fixture(scope="module")
def mini_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini-report")
    suite = create_suite("mini", max_side=64, photos="coffee,astronaut", classifier=None, detector=None,
                         lpips=False, mosaics=0, n_resamples=200)
    result = run_suite(suite, METHODS, out, warmup=0)
    return out, result, write_report(result, out)


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.refs.append(value)


def test_all_files_exist_and_parse(mini_report):
    out, result, files = mini_report
    for name in ("results.json", "results.csv", "results.md", "results.tex", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    data = json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert [r["method"] for r in data["records"]] == ["clean", "oracle", *METHODS]
    assert [bool(r.get("reference")) for r in data["records"]] == [True, True, False, False]
    for rec in data["records"]:
        assert rec["suite"] == "mini" and rec["n_images"] == 6
        assert {"psnr", "ssim"} | (set() if rec.get("reference") else {"time_s"}) <= set(rec["metrics"])
        assert set(rec["breakdown"]) == {"dim", "dark", "night"}
        assert "psnr" in rec["conventions"] and "time_s" in rec["conventions"]
        assert rec["versions"]["torch"] == importlib.metadata.version("torch")
        assert rec["device"].startswith("cpu")
        assert rec["enhancer"]["name"] == rec["method"]
        assert any("not the paper's benchmark" in n for n in rec["notes"])
        assert set(rec["intervals"]) == {"", "dim", "dark", "night"}
        lo, hi = rec["intervals"][""]["psnr"]
        assert lo <= rec["metrics"]["psnr"] <= hi

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 4 * (1 + 3)  # one overall row and one per darkness level, per row (2 references)
    assert {(r["group"], r["n_images"]) for r in rows} == {("", "6"), ("dim", "2"), ("dark", "2"), ("night", "2")}
    overall = {r["method"]: r for r in rows if r["group"] == ""}
    assert set(overall) == {"clean", "oracle", *METHODS}
    assert float(overall[METHODS[0]]["psnr_lo"]) <= float(overall[METHODS[0]]["psnr"]) <= float(
        overall[METHODS[0]]["psnr_hi"])
    for rec in data["records"]:
        assert float(overall[rec["method"]]["psnr"]) == pytest.approx(rec["metrics"]["psnr"])


def test_markdown_table_has_one_row_per_method(mini_report):
    out, result, _ = mini_report
    md = (out / "results.md").read_text()
    table = md.split("| Method |", 1)[1].split("\n\n", 1)[0]
    body = [ln for ln in table.splitlines()[2:] if ln.startswith("|")]
    assert [ln.split("|")[1].strip() for ln in body] == ["*clean (reference)*", "*oracle (reference)*", *METHODS]
    assert not any("**" in ln for ln in body[:2])  # reference rows are never bold
    header = table.splitlines()[0]
    assert "PSNR ↑" in header and "SSIM ↑" in header and "Time (s) ↓" in header
    assert "(paper)" not in header  # GEFU-mini is not one of the paper's suites
    recs = {r["method"]: r for r in result.records if not r.get("reference")}
    best = max(recs, key=lambda m: recs[m]["metrics"]["psnr"])
    other = next(m for m in recs if m != best)
    (lo_b, _), (_, hi_o) = recs[best]["intervals"][""]["psnr"], recs[other]["intervals"][""]["psnr"]
    line = next(ln for ln in body if ln.split("|")[1].strip() == best)
    # bold only when the best method's interval does not overlap the runner-up's
    assert (f"**{recs[best]['metrics']['psnr']:.2f} [" in line) == (lo_b > hi_o)
    assert "not the paper's benchmark" in md
    by_level = md.split("### By level", 1)[1]
    assert "**PSNR ↑ by level**" in by_level and "| dim | dark | night |" in by_level
    assert by_level.count("| test-report-") == 2 * 2  # two methods in each of the PSNR and SSIM tables


def test_latex_is_a_booktabs_table(mini_report):
    out, _, _ = mini_report
    tex = (out / "results.tex").read_text()
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert r"\toprule" in tex and r"$\uparrow$" in tex
    assert "test-report-gain &" in tex
    assert "_" not in tex.replace(r"\_", "").split(r"\begin{tabular}")[1].split(r"\end{tabular}")[0]


def test_charts_are_pngs(mini_report):
    out, _, files = mini_report
    charts = sorted((out / "charts").glob("*.png"))
    assert {p.stem for p in charts} == {"mini-psnr", "mini-ssim", "mini-time_s"}
    for p in charts:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 100


def test_html_references_only_existing_local_files(mini_report):
    out, result, _ = mini_report
    page = (out / "report.html").read_text()
    parser = _Refs()
    parser.feed(page)
    assert parser.refs, "the page shows no images"
    for ref in parser.refs:
        assert not re.match(r"^[a-z]+://|^//", ref), f"external asset {ref}"
        assert (out / ref).is_file(), f"missing {ref}"
    imgs = [r for r in parser.refs if r.startswith("thumbs/")]
    # The gallery: for each shown sample, the input, each row's output (2 references + methods), the reference.
    shown = min(6, len(result.samples))
    assert len(imgs) == shown * (1 + 2 + len(METHODS) + 1)
    assert "<script" not in page and "<link" not in page
    assert "not the paper&#x27;s benchmark" in page or "not the paper's benchmark" in page
    assert "flex-wrap:wrap" in page  # the gallery wraps instead of running off a narrow window


def _lol(root: Path, photo: torch.Tensor) -> None:
    for i in range(2):
        ref = photo[:, i * 8: i * 8 + 64, :96]
        save_image(ref, root / "Real_captured" / "Test" / "Normal" / f"normal{i:05d}.png")
        save_image(darken(ref, 0.1, seed=i), root / "Real_captured" / "Test" / "Low" / f"low{i:05d}.png")


def test_paper_suite_shows_published_numbers_beside_ours(tmp_path, photo):
    _lol(tmp_path / "LOL", photo[0])
    suite = create_suite("lol", data=str(tmp_path / "LOL"), lpips=False)
    result = run_suite(suite, METHODS, tmp_path / "out", warmup=0)
    write_report(result, tmp_path / "out")
    md = (tmp_path / "out" / "results.md").read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[:5] == ["Method", "PSNR ↑", "PSNR ↑ (paper)", "SSIM ↑", "SSIM ↑ (paper)"]
    assert "LPIPS ↓ (paper)" in cols  # shown although our LPIPS was skipped
    rows = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "Method" not in ln}
    scuf = rows["scuf (paper only, not run here)"]
    assert "21.32" in scuf and "0.8073" in scuf and "0.1928" in scuf
    assert set(METHODS) <= set(rows)
    tex = (tmp_path / "out" / "results.tex").read_text()
    assert "21.32" in tex and "(paper)" in tex
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(r["published"] is None for r in data["records"])  # none of ours is a published method
    assert data["records"][0]["paper_source"]


def test_write_atomic_replaces_whole_files(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    write_atomic(p, "first version, longer")
    write_atomic(p, "second")
    assert p.read_text() == "second"
    write_atomic(p, b"\x00bytes")
    assert p.read_bytes() == b"\x00bytes"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]


def test_per_class_tables_in_every_format(tmp_path):
    """A segmentation suite's per-class IoU reaches the Markdown, HTML and CSV reports, not only the JSON."""
    from gefu.bench.runner import BenchResult
    from gefu.bench.suites import Aggregate, Sample, create_suite

    suite = create_suite("bdd-night", data=str(tmp_path))
    cm = np.zeros((19, 20), dtype=np.int64)
    cm[0, 0], cm[0, 1], cm[1, 1] = 3, 1, 2  # road IoU 3/4, sidewalk IoU 2/3
    samples = [Sample("images/a.jpg", tmp_path / "a.png")]
    agg = suite.aggregate(samples, {"images/a.jpg": {"cm": cm.tolist()}})
    assert isinstance(agg, Aggregate)
    assert agg.per_class["IoU (%)"] == pytest.approx({"road": 75.0, "sidewalk": 200 / 3})
    rec = {"suite": suite.name, "suite_title": suite.title, "method": "none", "enhancer": {"name": "none"},
           "n_images": 1, "metrics": agg.metrics, "breakdown": {}, "per_class": agg.per_class,
           "time": {"source": "x"}, "conventions": {}, "notes": [], "device": "cpu", "versions": {},
           "created": "now"}
    result = BenchResult(suite, samples, [rec, {**rec, "method": "gamma"}])
    md = render_markdown([result])
    assert "### Per class: IoU (%)" in md and "| road | sidewalk |" in md and "| none | 75.0 | 66.7 |" in md
    per = list(csv.DictReader(io.StringIO(render_per_class_csv([result]))))
    assert {(r["method"], r["class"]) for r in per} == {(m, c) for m in ("none", "gamma") for c in ("road", "sidewalk")}
    # Both methods have the same per-class scores: the report says the columns do not tell them apart.
    assert "the same for every method" in md

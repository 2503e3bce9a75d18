"""`gefu bench` over several processes (issue 12, item 3): `accelerate launch --multi_gpu --num_processes 2` with
CUDA hidden runs two CPU processes (gloo); each enhances and scores its share and writes its own record parts;
the main process merges them into the same per-image records and quality table as one process."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from _accelerate import run_gefu_in_two_processes

from gefu.bench.cache import append_record, merge_parts, part_path, read_records
from gefu.bench.runner import enhance_samples, run_suite
from gefu.bench.suites import create_suite
from gefu.cli import main
from gefu.enhancers import create_enhancer


# Small and cheap: one photo's three darkness levels at 64 px, two classic methods, the face detector on, no
# classifier (picking stable classification crops runs MobileNetV2 over the photos: not what this test is about).
BENCH = ["bench", "--suite", "mini", "--methods", "none,gamma", "--limit", "3", "--device", "cpu", "--quiet",
         "--option", "suite.max_side=64", "--option", "suite.lpips=false", "--option", "suite.photos=astronaut",
         "--option", "suite.mosaics=1", "--option", "suite.classifier=null"]


def _records(out: Path) -> dict[str, dict]:
    """Every per-image record of the run, by partial file and sample; `target` left out (it is a content key of
    the run's own input files, whose modification times differ between output folders)."""
    found = {}
    for path in sorted((out / "partial").rglob("*.jsonl")):
        for sid, rec in read_records(path).items():
            found[f"{path.name}/{sid}"] = {k: v for k, v in rec.items() if k != "target"}
    return found


def _table(out: Path) -> list[tuple]:
    """The quality table: per method, every metric but time, the per-level breakdown, the notes."""
    rows = json.loads((out / "results.json").read_text())["records"]
    return [(r["method"], r["n_images"], {k: v for k, v in r["metrics"].items() if k != "time_s"}, r["breakdown"],
             r["notes"]) for r in rows]


def test_two_processes_give_the_records_and_table_of_one(tmp_path, capsys):
    multi = tmp_path / "multi"
    proc, writes = run_gefu_in_two_processes(tmp_path, [*BENCH, "-o", str(multi)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    headers = [line for line in proc.stdout.splitlines() if line.startswith("GEFU-mini")]
    assert len(headers) == 1 and "3 images, 2 methods" in headers[0] and "2 processes" in headers[0]

    # The enhanced images were shared out: each written exactly once, by two processes in all.
    pngs = [(pid, dst) for pid, dst in writes
            if dst.suffix == ".png" and dst.is_relative_to(multi / "cache") and "mini-inputs" not in str(dst)]
    assert len(pngs) == 6 and Counter(p for _, p in pngs).most_common(1)[0][1] == 1
    assert len({pid for pid, _ in pngs}) == 2
    assert not [p for p in multi.rglob("*.rank*")]  # every part merged

    assert main([*BENCH, "-o", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    single = tmp_path / "single"
    assert _records(multi) == _records(single) and len(_records(single)) == 3 * 4  # none, gamma, clean, oracle
    assert _table(multi) == _table(single)
    for png in single.glob("cache/*/mini-*/*.png"):
        assert (multi / png.relative_to(single)).read_bytes() == png.read_bytes()
    times = [r["time"] for r in json.loads((multi / "results.json").read_text())["records"] if not r.get("reference")]
    assert len(times) == 2
    assert all(t["processes"] == 2 and t["n_timed"] == 3 and t["computed_this_run"] == 3 for t in times)


def test_parts_merge_in_sample_order_with_valid_checksums(tmp_path):
    path = tmp_path / "part" / "m-1.jsonl"
    order = ["a", "b", "c", "d"]
    append_record(path, {"id": "a", "v": 1})
    for rank, ids in ((1, ["d", "b"]), (2, ["c"])):  # rank 1 wrote d before b; rank 2 was killed mid-line
        for sid in ids:
            append_record(part_path(path, f"rank{rank}"), {"id": sid, "v": 1}, context="part/m-1.jsonl")
    with open(part_path(path, "rank2"), "a") as f:
        f.write('{"id": "e", "v"')
    assert merge_parts(path, order) == 3
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c", "d"]
    assert sorted(read_records(path)) == order  # every checksum holds in the merged file
    assert not list(path.parent.glob("*.rank*"))


def test_parts_left_by_a_killed_run_are_merged_and_not_recomputed(tmp_path):
    suite = create_suite("mini", max_side=64, photos=["coffee"], classifier=None, detector=None, lpips=False)
    first = run_suite(suite, ["gamma"], tmp_path / "out", warmup=0)
    cache = first.runs["gamma"].cache_dir
    for p in [*cache.glob("*.png"), cache / "manifest.jsonl", cache / "timings.json"]:
        p.unlink()
    # a process of a killed two-process run had computed the first two images, in its own part files
    enhance_samples(create_enhancer("gamma"), first.samples[:2], cache, first.suite.device, warmup=0, part="rank1")
    assert (cache / "manifest.rank1.jsonl").is_file() and (cache / "timings.rank1.json").is_file()
    again = _gamma(run_suite(suite, ["gamma"], tmp_path / "out", warmup=0))
    assert again["time"]["computed_this_run"] == len(first.samples) - 2
    assert again["time"]["n_timed"] == len(first.samples)
    assert not list(cache.glob("*.rank*"))
    assert again["metrics"]["psnr"] == pytest.approx(_gamma(first)["metrics"]["psnr"], abs=1e-12)


def _gamma(result) -> dict:
    return next(r for r in result.records if r["method"] == "gamma")

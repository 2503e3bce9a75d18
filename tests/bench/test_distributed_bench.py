"""`gefu bench` over several processes (issue 12, item 3): `accelerate launch --multi_gpu --num_processes 2` with
CUDA hidden runs two CPU processes (gloo); each enhances and scores its share and writes its own record parts;
the main process merges them into the same per-image records and quality table as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gefu.bench.cache import append_record, merge_parts, part_path, read_records
from gefu.bench.runner import enhance_samples, run_suite
from gefu.bench.suites import create_suite
from gefu.cli import main
from gefu.enhancers import create_enhancer

# Logs every rename onto a final file (how gefu.fileio publishes an image) with the writing process's pid.
_SITECUSTOMIZE = """
import os
_log = os.environ.get("GEFU_TEST_WRITE_LOG")
if _log:
    _replace = os.replace
    def replace(src, dst, *args, **kwargs):
        result = _replace(src, dst, *args, **kwargs)
        with open(_log, "a") as f:
            f.write(f"{os.getpid()}\\t{os.fspath(dst)}\\n")
        return result
    os.replace = replace
"""

# Picks a free port (the test process itself may not open sockets), then hands over to accelerate's launcher.
_LAUNCH = """
import socket, sys
from accelerate.commands.accelerate_cli import main
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
sys.argv = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)] + sys.argv[1:]
main()
"""

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
    if shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("accelerate's launcher is not installed next to this python")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "writes.log"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", GEFU_TEST_WRITE_LOG=str(log), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), *sys.path]))
    multi = tmp_path / "multi"
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, "-m", "gefu", *BENCH, "-o", str(multi)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    headers = [line for line in proc.stdout.splitlines() if line.startswith("GEFU-mini")]
    assert len(headers) == 1 and "3 images, 2 methods" in headers[0] and "2 processes" in headers[0]

    # The enhanced images were shared out: each written exactly once, by two processes in all.
    writes = [line.split("\t") for line in log.read_text().splitlines()]
    pngs = [(pid, Path(dst)) for pid, dst in writes
            if Path(dst).suffix == ".png" and Path(dst).is_relative_to(multi / "cache") and "mini-inputs" not in dst]
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

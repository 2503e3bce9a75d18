"""gefu.distributed and `accelerate launch ... -m gefu enhance`: each file written by exactly one process, the same
files as one process (issue 12, item 3)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from _accelerate import run_gefu_in_two_processes
from PIL import Image

from gefu.cli import main
from gefu.distributed import Shard, current_shard


@pytest.mark.parametrize("n, count", [(0, 2), (1, 2), (7, 2), (7, 3), (64, 5)])
def test_split_gives_each_item_to_exactly_one_process(n, count):
    items = list(range(n))
    parts = [Shard(i, count).split(items) for i in range(count)]
    assert sorted(x for p in parts for x in p) == items
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_single_process_needs_no_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    shard = current_shard()
    assert (shard.index, shard.count, shard.state, shard.is_main) == (0, 1, None, True)
    assert shard.gather("x") == ["x"] and shard.split([1, 2]) == [1, 2]
    shard.wait()
    shard.close()


def test_two_cpu_processes_under_accelerate(tmp_path, dark_photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    base = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for i in range(7):
        Image.fromarray(np.roll(base, 9 * i, axis=1)).save(src / ("sub" if i % 2 else ".") / f"{i}.png")
    proc, writes = run_gefu_in_two_processes(tmp_path, ["enhance", str(src), "-o", str(tmp_path / "multi"),
                                                         "-m", "he"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("enhanced")]
    assert len(summaries) == 1  # from the main process only
    assert "enhanced 7 of 7 images with he" in summaries[0] and "2 processes" in summaries[0]

    outputs = [dst for _, dst in writes if dst.is_relative_to(tmp_path / "multi")]
    assert Counter(outputs).most_common(1)[0][1] == 1 and len(outputs) == 7  # each file written exactly once
    assert len({pid for pid, dst in writes if dst.is_relative_to(tmp_path / "multi")}) == 2  # by two processes

    assert main(["enhance", str(src), "-o", str(tmp_path / "single"), "-m", "he"]) == 0
    single = {p.relative_to(tmp_path / "single"): p.read_bytes() for p in (tmp_path / "single").rglob("*.png")}
    multi = {p.relative_to(tmp_path / "multi"): p.read_bytes() for p in (tmp_path / "multi").rglob("*.png")}
    assert multi == single and len(single) == 7

"""Benchmark timings: the device description, the per-image timing sidecar of a cache folder, and its summary.

Each cached image's enhancement time is kept in `<cache_dir>/timings.json` (seconds, device, date), written after
every image, so a report built from cached images still shows the timings of the run that computed them. In a
run of several processes each process writes its own part (`timings.rank1.json`, `gefu.bench.cache.part_path`)
and the main process merges them (`merge_timings`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import statistics
from pathlib import Path
from typing import Any, Sequence

import torch

from ..fileio import write_atomic
from .cache import part_files, part_path

log = logging.getLogger(__name__)

TIMINGS = "timings.json"
_NOTE = "seconds per enhancement call (see gefu.bench.runner)"


def describe_device(device: torch.device) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu (x86_64, 2 threads)'."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"{device.type} ({platform.machine()}, {torch.get_num_threads()} threads)"


def load_timings(path: Path) -> dict[str, dict[str, Any]]:
    """sample id → {"s", "device", "date"} from a timing sidecar ({} when absent or unreadable)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("ignoring unreadable timing sidecar %s", path)
        return {}
    return data.get("times", {}) if isinstance(data, dict) else {}


def _write(path: Path, times: dict[str, dict[str, Any]]) -> None:
    write_atomic(path, json.dumps({"note": _NOTE, "times": times}, indent=1))


class TimingLog:
    """The timings of one cache folder as they are measured: `add` records one image and rewrites the file
    (this process's part when `part` is given)."""

    def __init__(self, cache_dir: Path, part: str | None = None) -> None:
        self.path = part_path(Path(cache_dir) / TIMINGS, part)
        self.times = load_timings(self.path)

    def add(self, sample_id: str, seconds: float, device: str) -> None:
        self.times[sample_id] = {"s": seconds, "device": device,
                                 "date": _dt.datetime.now().isoformat(timespec="seconds")}
        _write(self.path, self.times)


def merge_timings(cache_dir: Path) -> None:
    """Fold every process's part into `<cache_dir>/timings.json` and delete the parts."""
    path = Path(cache_dir) / TIMINGS
    parts = part_files(path)
    if not parts:
        return
    times = load_timings(path)
    for part in parts:
        times.update(load_timings(part))
    _write(path, times)
    for part in parts:
        part.unlink(missing_ok=True)


def timing_summary(cache_dir: Path, samples: Sequence[Any], computed_now: int, warmup: int) -> dict[str, Any]:
    """Median seconds per image over the samples, from the sidecar, and where the numbers come from."""
    times = load_timings(Path(cache_dir) / TIMINGS)
    found = [times[s.id] for s in samples if s.id in times]
    summary: dict[str, Any] = {
        "median_s": statistics.median(t["s"] for t in found) if found else None,
        "n_timed": len(found),
        "warmup_calls": warmup,
        "devices": sorted({t.get("device", "?") for t in found}),
        "computed_this_run": computed_now,
    }
    if not found:
        summary["source"] = "no timings recorded (outputs were cached without a timing sidecar)"
    elif computed_now == len(samples):
        summary["source"] = "measured in this run"
    elif computed_now == 0:
        dates = sorted({t.get("date", "?") for t in found})
        summary["source"] = ("all outputs cached; timings from the run(s) that computed them "
                             f"({dates[0]} … {dates[-1]})")
    else:
        summary["source"] = f"{computed_now} measured in this run, the rest from the run(s) that computed them"
    return summary

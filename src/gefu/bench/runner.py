"""The benchmark runner: enhance every image once, cache it, score it, resume after a crash, time it honestly.

For each method × suite (the whole run holds `<out>/.gefu-bench.lock`: one run per output folder):

1. **Enhance** every sample whose output is not cached yet. Outputs live in
   `<out>/cache/<method>-<key>/<suite>-<suite.input_key()>/<sample id>.png` (8-bit PNG, written atomically),
   so a killed run loses at most the image in flight and a rerun computes nothing. The method key covers the
   enhancer's `config()` and the options it was created with, by content (`gefu.bench.cache.with_content`:
   a checkpoint replaced in place gets a fresh folder), not the device: CPU and GPU outputs of one
   configuration share it. `manifest.jsonl` records each image's sha256 and its input's content key, so a
   corrupt or edited image, or one whose input file changed, is computed again.
2. **Score** every cached output with the suite (always from the PNG, so a fresh run and a cached run score
   exactly the same pixels — the 8-bit quantisation every published protocol applies when it saves results).
   Each sample's score is appended to `<out>/partial/<suite>-<input key>-<scoring key>/<method>-<key>.jsonl`
   as soon as it is known, with the image's digest, its reference / target's content key and a checksum; a
   rerun trusts only the lines that still match and scores the rest.
3. **Aggregate** into one record per method × suite (see `gefu.bench.report` for the files).

Timing: only the real enhancement calls are timed, one image per call: the input is moved to the device
first, then `warmup` untimed calls on the first image to compute (cuDNN autotuning, lazy init, caches), then
each image's call is bracketed by `torch.cuda.synchronize` when the device is CUDA (never otherwise), and the
reported time is the **median** seconds per image. Each measured time is kept in a sidecar
`timings.json` next to the cached images (seconds, device, date), so when everything is cached the report
still shows the timings of the run that computed the images (and says so: `time.source`).
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata as md
import json
import logging
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..enhancers import ENHANCERS, _load_all, create_enhancer
from ..fileio import write_atomic
from ..imageio import load_image, save_image
from .cache import (Manifest, append_record, bench_lock, file_key, read_records, target_key,
                    with_content)
from .suites import ProgressFactory, Sample, Suite, open_bar, stable_hash

log = logging.getLogger(__name__)

_VERSION_PACKAGES = ("gefu", "torch", "torchvision", "numpy", "lpips", "opencv-contrib-python-headless", "yuface")


@dataclass
class MethodRun:
    """Where one method's outputs for one suite live, and how many were computed in this run."""

    method: str
    cache_dir: Path
    computed: int = 0
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # sample id → the suite's per-image record
    config: dict[str, Any] = field(default_factory=dict)  # the enhancer's config()


@dataclass
class BenchResult:
    """What `run_suite` returns: one record per method, the samples, and each method's output folder."""

    suite: Suite
    samples: list[Sample]
    records: list[dict[str, Any]]
    runs: dict[str, MethodRun] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe_device(device: torch.device) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu (x86_64, 2 threads)'."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"{device.type} ({platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def method_cache_name(config: dict[str, Any], options: dict[str, Any] | None = None) -> str:
    """`<name>-<hash>`: the cache folder of one enhancer configuration. The hash covers the enhancer's
    `config()` and the options it was created with, with the content of every file or folder they name (a
    checkpoint replaced in place gets a fresh folder; see `gefu.bench.cache.with_content`)."""
    key = with_content({"config": config, "options": _json_safe(options or {})})
    return f"{config.get('name', 'method')}-{stable_hash(key)}"


def read_partial(path: Path) -> dict[str, dict[str, Any]]:
    """Per-sample scores saved so far that pass their checksum (see `gefu.bench.cache.read_records`)."""
    return read_records(path)


def _load_timings(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("ignoring unreadable timing sidecar %s", path)
        return {}
    return data.get("times", {}) if isinstance(data, dict) else {}


def enhance_samples(
    enhancer: torch.nn.Module,
    samples: Sequence[Sample],
    cache_dir: Path,
    device: torch.device,
    warmup: int = 1,
    progress: ProgressFactory | None = None,
    desc: str = "enhance",
) -> int:
    """Enhance every sample whose `<cache_dir>/<id>.png` is missing or no longer the image written (its sha256 is
    in `<cache_dir>/manifest.json`); returns how many were computed.

    Each computed image's time goes into `<cache_dir>/timings.json` right after it is saved (see module doc).
    """
    manifest = Manifest(cache_dir)
    inputs = {s.id: file_key(s.input) for s in samples}
    todo = [s for s in samples if manifest.verified(s.id, cache_dir / f"{s.id}.png", inputs[s.id]) is None]
    bar = open_bar(progress, desc, len(todo))
    if not todo:
        bar.close()
        return 0
    timing_file = cache_dir / "timings.json"
    times = _load_timings(timing_file)
    dev_name = describe_device(device)
    with torch.inference_mode():
        for i, sample in enumerate(todo):
            x = load_image(sample.input)[None].to(device)  # (1, 3, H, W)
            if i == 0:
                for _ in range(max(0, int(warmup))):
                    enhancer(x)
            _sync(device)
            t0 = time.perf_counter()
            y = enhancer(x)  # (1, 3, H, W) in [0, 1]
            _sync(device)
            seconds = time.perf_counter() - t0
            if y.shape != x.shape:
                raise RuntimeError(f"enhancer returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
            save_image(y[0], cache_dir / f"{sample.id}.png")
            manifest.record(sample.id, cache_dir / f"{sample.id}.png", inputs[sample.id])
            times[sample.id] = {"s": seconds, "device": dev_name,
                                "date": _dt.datetime.now().isoformat(timespec="seconds")}
            write_atomic(timing_file, json.dumps({"note": "seconds per enhancement call (see gefu.bench.runner)",
                                                  "times": times}, indent=1))
            bar.update()
    bar.close()
    return len(todo)


def timing_summary(cache_dir: Path, samples: Sequence[Sample], computed_now: int, warmup: int) -> dict[str, Any]:
    """Median seconds per image over the samples, from the sidecar, and where the numbers come from."""
    times = _load_timings(cache_dir / "timings.json")
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


def run_suite(
    suite: Suite,
    methods: Sequence[str],
    out: str | Path,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
    warmup: int = 1,
    progress: ProgressFactory | None = None,
) -> BenchResult:
    """Benchmark `methods` (registered enhancer names) on `suite`, caching and resuming under `out`.

    method_options: per method name, keyword options for `create_enhancer`. progress: a factory
    `progress(description, total)` returning a bar with `update(n)` and `close()` (tqdm fits); one bar per
    stage. Returns a `BenchResult`; write the files with `gefu.bench.report.write_report(result, out)`.
    """
    out = Path(out)
    device = torch.device(device)
    method_options = dict(method_options or {})
    _check_methods(methods, method_options)
    with bench_lock(out):
        samples = _prepare_samples(suite, out, device, limit, progress)
        result = BenchResult(suite, samples, [])
        for name, folder in suite.reference_rows().items():
            result.runs[name] = run = _reference_run(suite, samples, name, Path(folder), out, progress)
            result.records.append({**_method_record(suite, samples, run, device, 0, out), "reference": True})
        for method in methods:
            result.runs[method] = run = _run_method(suite, samples, method, method_options.get(method, {}), out,
                                                    device, warmup, progress)
            result.records.append(_method_record(suite, samples, run, device, warmup, out))
            log.info("%s × %s: %s", method, suite.name, result.records[-1]["metrics"])
    return result


def _reference_run(suite: Suite, samples: list[Sample], name: str, folder: Path, out: Path,
                   progress: ProgressFactory | None) -> MethodRun:
    """Score a reference row of the suite (images the suite made, e.g. GEFU-mini's clean and oracle) like a
    method's outputs; it has no enhancer and no timing."""
    if name in ENHANCERS.names():
        raise ValueError(f"suite {suite.name!r}: reference row {name!r} has the name of an enhancer")
    run = MethodRun(name, folder, config={"name": name, "reference": True})
    partial = f"{suite.name}-{suite.input_key()}-{stable_hash(suite.score_key())}/reference-{name}.jsonl"
    run.scores = score_samples(suite, samples, folder, out / "partial" / partial, progress,
                               desc=f"{suite.name}: score {name}")
    return run


def _run_method(suite: Suite, samples: list[Sample], method: str, options: dict[str, Any], out: Path,
                device: torch.device, warmup: int, progress: ProgressFactory | None) -> MethodRun:
    """Enhance (what is not cached) and score (what is not scored) one method's outputs."""
    enhancer = create_enhancer(method, **options).to(device).eval()
    config = _json_safe(enhancer.config())
    cache_name = method_cache_name(config, options)
    cache_dir = out / "cache" / cache_name / f"{suite.name}-{suite.input_key()}"
    computed = enhance_samples(enhancer, samples, cache_dir, device, warmup, progress,
                               desc=f"{suite.name}: enhance {method}")
    del enhancer
    gc.collect()
    run = MethodRun(method, cache_dir, computed, config=config)
    scoring = stable_hash({"score_key": suite.score_key(), "config": with_content(
        {k: v for k, v in suite.config().items() if k != "data"})})  # task weights, lists: by content
    partial = f"{suite.name}-{suite.input_key()}-{scoring}/{cache_name}.jsonl"
    run.scores = score_samples(suite, samples, cache_dir, out / "partial" / partial, progress,
                               desc=f"{suite.name}: score {method}")
    return run


def _check_methods(methods: Sequence[str], method_options: dict[str, dict[str, Any]]) -> None:
    """Fail on an empty / repeated / unknown method or options for a method not run, before any work."""
    unknown = sorted(set(method_options) - set(methods))
    if unknown:
        raise ValueError(f"options given for {unknown}, which are not among the methods {list(methods)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"a method is listed twice: {list(methods)}")
    if not methods:
        raise ValueError("no methods given")
    _load_all()
    for method in methods:
        ENHANCERS.get(method)


def _prepare_samples(suite: Suite, out: Path, device: torch.device, limit: int | None,
                     progress: ProgressFactory | None) -> list[Sample]:
    """The suite's samples, checked: at least one, unique ids that stay inside the cache folder."""
    samples = suite.prepare(out / "cache", device=device, limit=limit, progress=progress)
    if not samples:
        raise ValueError(f"suite {suite.name!r} has no samples")
    ids = [s.id for s in samples]
    for sid in ids:
        suite_check_id(sid)
    if len(set(ids)) != len(ids):
        raise ValueError(f"suite {suite.name!r} yields duplicate sample ids")
    return samples


def score_samples(suite: Suite, samples: Sequence[Sample], cache_dir: Path, partial_file: Path,
                  progress: ProgressFactory | None = None, desc: str = "score") -> dict[str, dict[str, Any]]:
    """Score every cached output without a valid record in `partial_file` (its checksum holds, and it scored the
    image now cached against the reference / target there now), appending each record as soon as it is known;
    returns sample id → record for all samples."""
    digests = Manifest(cache_dir).digests
    targets = {s.id: target_key(s) for s in samples}
    scores = read_records(partial_file, digests=digests, targets=targets)
    todo = [s for s in samples if s.id not in scores]
    bar = open_bar(progress, desc, len(todo))
    for sample in todo:
        rec = {"id": sample.id, "png": digests.get(sample.id), "target": targets[sample.id],
               **suite.score(sample, load_image(cache_dir / f"{sample.id}.png"))}
        append_record(partial_file, rec)
        scores[sample.id] = rec
        bar.update()
    bar.close()
    return scores


def _method_record(suite: Suite, samples: list[Sample], run: MethodRun, device: torch.device, warmup: int,
                   out: Path) -> dict[str, Any]:
    """The results record of one method on the suite (one row of results.json)."""
    agg = suite.aggregate(samples, run.scores)
    timing = timing_summary(run.cache_dir, samples, run.computed, warmup)
    metrics = dict(agg.metrics)
    if timing["median_s"] is not None:
        metrics["time_s"] = timing["median_s"]
    return {
        "suite": suite.name,
        "suite_title": suite.title,
        "method": run.method,
        "enhancer": run.config,
        "n_images": len(samples),
        "metrics": metrics,
        "breakdown": agg.breakdown,
        "intervals": {g: {k: list(v) for k, v in iv.items()} for g, iv in agg.intervals.items()},
        "per_class": agg.per_class,
        "time": timing,
        "conventions": {**suite.conventions(), "time_s": "median seconds per image of the enhancement call "
                        f"alone ({warmup} warm-up call(s), device synchronised when CUDA)"},
        "notes": agg.notes + ([suite.note()] if suite.note() else []),
        "published": suite.published.get(run.method),
        "paper_source": suite.paper_source,
        "suite_config": _json_safe(suite.config()),
        "device": describe_device(device),
        "versions": versions(),
        "cache": str(run.cache_dir.relative_to(out)) if run.cache_dir.is_relative_to(out) else str(run.cache_dir),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }


def suite_check_id(sample_id: str) -> None:
    """Refuse ids that would escape the cache folder."""
    parts = Path(sample_id).parts
    if not sample_id or Path(sample_id).is_absolute() or ".." in parts:
        raise ValueError(f"sample id {sample_id!r} is not a safe relative file name")

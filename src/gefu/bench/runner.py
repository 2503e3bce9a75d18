"""The benchmark runner: enhance every image once, cache it, score it, resume after a crash, time it honestly.

For each method × suite (the whole run holds `<out>/.gefu-bench.lock`: one run per output folder):

1. **Enhance** every sample whose output is not cached yet. Outputs live in
   `<out>/cache/<method>-<key>/<suite>-<suite.input_key()>/<sample id>.png` (8-bit PNG, written atomically),
   so a killed run loses at most the images in flight and a rerun computes nothing. The method key covers the
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

Both stages run on `gefu.pipeline`: the next images are decoded on a background thread while the current one is
computed, and outputs and records are written behind it on another (bounded queues; files and records are
written in sample order; Ctrl-C lets the writes already started finish, every file complete or absent).

Several processes (`accelerate launch --multi_gpu --num_processes N -m gefu bench ...`, `gefu.distributed`):
the main process prepares the samples first (and holds the lock), the others then prepare the same list;
each process enhances and scores every N-th sample, appending its records to its own part files
(`manifest.rank1.jsonl`, `timings.rank1.json`, `<method>-<key>.rank1.jsonl`), and the main process merges
the parts, in sample order, into the single-process files and builds the one report: the same per-image
records and tables as a single process, apart from timing.

Timing: only the real enhancement calls are timed, one image per call: the input is moved to the device
first, then `warmup` untimed calls on the first image to compute (cuDNN autotuning, lazy init, caches), then
each image's call is bracketed by `torch.cuda.synchronize` when the device is CUDA (never otherwise), and the
reported time is the **median** seconds per image (over every process's images). Decoding, saving and copying
the output back to the host are outside the timed span. Each measured time is kept in a sidecar
`timings.json` next to the cached images (`gefu.bench.timing`), so when everything is cached the report
still shows the timings of the run that computed the images (and says so: `time.source`).
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata as md
import json
import logging
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..distributed import Shard
from ..enhancers import ENHANCERS, _load_all, create_enhancer
from ..imageio import load_image, save_image
from ..pipeline import run_jobs
from .cache import (Manifest, append_record, bench_lock, file_key, merge_parts, part_path, read_records,
                    record_context, target_key, with_content)
from .suites import ProgressFactory, Sample, Suite, open_bar, stable_hash
from .timing import TimingLog, describe_device, merge_timings, timing_summary

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


def enhance_samples(
    enhancer: torch.nn.Module,
    samples: Sequence[Sample],
    cache_dir: Path,
    device: torch.device,
    warmup: int = 1,
    progress: ProgressFactory | None = None,
    desc: str = "enhance",
    part: str | None = None,
    overlap: bool = True,
) -> int:
    """Enhance every sample whose `<cache_dir>/<id>.png` is missing or no longer the image written (its sha256 is
    in `<cache_dir>/manifest.jsonl`); returns how many were computed.

    Inputs are decoded ahead and outputs written behind on background threads (`gefu.pipeline.run_jobs`;
    `overlap=False` runs the plain loop); each computed image's time goes into the timing sidecar right after it
    is saved. `part` names this process's own record files in a run of several processes (see module doc).
    """
    manifest = Manifest(cache_dir, part)
    inputs = {s.id: file_key(s.input) for s in samples}
    todo = [s for s in samples if manifest.verified(s.id, cache_dir / f"{s.id}.png", inputs[s.id]) is None]
    bar = open_bar(progress, desc, len(todo))
    timings, dev_name = TimingLog(cache_dir, part), describe_device(device)
    warm = {"left": max(0, int(warmup))}  # untimed calls, on the first image computed

    def compute(sample: Sample, img: torch.Tensor) -> tuple[torch.Tensor, float]:
        x = img[None].to(device)  # (1, 3, H, W)
        while warm["left"]:
            warm["left"] -= 1
            enhancer(x)
        _sync(device)
        t0 = time.perf_counter()
        y = enhancer(x)  # (1, 3, H, W) in [0, 1]
        _sync(device)
        seconds = time.perf_counter() - t0
        if y.shape != x.shape:
            raise RuntimeError(f"enhancer returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
        return y[0].cpu(), seconds

    def save(sample: Sample, result: tuple[torch.Tensor, float]) -> None:
        path = cache_dir / f"{sample.id}.png"
        save_image(result[0], path)
        manifest.record(sample.id, path, inputs[sample.id])
        timings.add(sample.id, result[1], dev_name)

    try:
        with torch.inference_mode():
            run_jobs(todo, lambda s: load_image(s.input), compute, save, overlap=overlap, expected=(),
                     on_outcome=lambda _: bar.update())
    finally:
        bar.close()
    return len(todo)


def run_suite(
    suite: Suite,
    methods: Sequence[str],
    out: str | Path,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
    warmup: int = 1,
    progress: ProgressFactory | None = None,
    shard: Shard | None = None,
) -> BenchResult:
    """Benchmark `methods` (registered enhancer names) on `suite`, caching and resuming under `out`.

    method_options: per method name, keyword options for `create_enhancer`. progress: a factory
    `progress(description, total)` returning a bar with `update(n)` and `close()` (tqdm fits); one bar per
    stage. shard: this process's place in a multi-process run (`gefu.distributed.current_shard()`; None: a
    single process); every process calls `run_suite` alike, and only the main one's result has `records`.
    Returns a `BenchResult`; write the files with `gefu.bench.report.write_report(result, out)`.
    """
    out = Path(out)
    device = torch.device(device)
    shard = shard or Shard()
    method_options = dict(method_options or {})
    _check_methods(methods, method_options)
    with bench_lock(out) if shard.is_main else nullcontext():
        samples = _prepare_samples(suite, out, device, limit, progress, shard)
        result = BenchResult(suite, samples, [])
        for name, folder in suite.reference_rows().items():
            result.runs[name] = run = _reference_run(suite, samples, name, Path(folder), out, progress, shard)
            if shard.is_main:
                result.records.append({**_method_record(suite, samples, run, device, 0, out, shard.count),
                                       "reference": True})
        for method in methods:
            result.runs[method] = run = _run_method(suite, samples, method, method_options.get(method, {}), out,
                                                    device, warmup, progress, shard)
            if shard.is_main:
                result.records.append(_method_record(suite, samples, run, device, warmup, out, shard.count))
                log.info("%s × %s: %s", method, suite.name, result.records[-1]["metrics"])
    return result


def _reference_run(suite: Suite, samples: list[Sample], name: str, folder: Path, out: Path,
                   progress: ProgressFactory | None, shard: Shard) -> MethodRun:
    """Score a reference row of the suite (images the suite made, e.g. GEFU-mini's clean and oracle) like a
    method's outputs; it has no enhancer and no timing."""
    if name in ENHANCERS.names():
        raise ValueError(f"suite {suite.name!r}: reference row {name!r} has the name of an enhancer")
    run = MethodRun(name, folder, config={"name": name, "reference": True})
    partial = f"{suite.name}-{suite.input_key()}-{stable_hash(suite.score_key())}/reference-{name}.jsonl"
    run.scores = _score_shared(suite, samples, folder, out / "partial" / partial, progress,
                               f"{suite.name}: score {name}", shard)
    return run


def _merged(shard: Shard, order: Sequence[str], files: Sequence[Path], cache_dir: Path | None = None) -> None:
    """Once every process got here, the main process folds every process's part of `files` (and of the timings
    of `cache_dir`) into them; every process returns once that is done. With one process: only parts a killed
    run left behind."""
    shard.wait()
    if shard.is_main:
        for path in files:
            merge_parts(path, order)
        if cache_dir is not None:
            merge_timings(cache_dir)
    shard.wait()


def _score_shared(suite: Suite, samples: list[Sample], cache_dir: Path, partial: Path,
                  progress: ProgressFactory | None, desc: str, shard: Shard) -> dict[str, dict[str, Any]]:
    """Score this process's share of the samples (all of them with one process) into its part of `partial`;
    with several processes the main one then merges the parts and returns every sample's record."""
    order = [s.id for s in samples]
    _merged(shard, order, [partial])  # parts a killed run left
    scores = score_samples(suite, shard.split(samples), cache_dir, partial, progress if shard.is_main else None,
                           desc, part=f"rank{shard.index}" if shard.count > 1 else None)
    if shard.count > 1:
        _merged(shard, order, [partial])
        if shard.is_main:
            scores = read_records(partial, digests=Manifest(cache_dir).digests,
                                  targets={s.id: target_key(s) for s in samples})
    return scores


def _run_method(suite: Suite, samples: list[Sample], method: str, options: dict[str, Any], out: Path,
                device: torch.device, warmup: int, progress: ProgressFactory | None, shard: Shard) -> MethodRun:
    """Enhance (what is not cached) and score (what is not scored) one method's outputs: this process's share
    of the samples (all of them with one process), merged by the main process."""
    enhancer = create_enhancer(method, **options).to(device).eval()
    config = _json_safe(enhancer.config())
    cache_name = method_cache_name(config, options)
    cache_dir = out / "cache" / cache_name / f"{suite.name}-{suite.input_key()}"
    scoring = stable_hash({"score_key": suite.score_key(), "config": with_content(
        {k: v for k, v in suite.config().items() if k != "data"})})  # task weights, lists: by content
    partial = out / "partial" / f"{suite.name}-{suite.input_key()}-{scoring}" / f"{cache_name}.jsonl"
    order = [s.id for s in samples]
    _merged(shard, order, [cache_dir / "manifest.jsonl"], cache_dir)  # parts a killed run left
    computed = enhance_samples(enhancer, shard.split(samples), cache_dir, device, warmup,
                               progress if shard.is_main else None, f"{suite.name}: enhance {method}",
                               part=f"rank{shard.index}" if shard.count > 1 else None)
    del enhancer
    gc.collect()
    computed = sum(shard.gather(computed))
    _merged(shard, order, [cache_dir / "manifest.jsonl"], cache_dir)
    run = MethodRun(method, cache_dir, computed, config=config)
    run.scores = _score_shared(suite, samples, cache_dir, partial, progress, f"{suite.name}: score {method}", shard)
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
                     progress: ProgressFactory | None, shard: Shard) -> list[Sample]:
    """The suite's samples, checked: at least one, unique ids that stay inside the cache folder. With several
    processes the main one prepares first (it writes what the suite caches), then the others, and all must
    see the same samples."""
    if shard.is_main:
        samples = suite.prepare(out / "cache", device=device, limit=limit, progress=progress)
    shard.wait()
    if not shard.is_main:
        samples = suite.prepare(out / "cache", device=device, limit=limit, progress=None)
    if not samples:
        raise ValueError(f"suite {suite.name!r} has no samples")
    ids = [s.id for s in samples]
    for sid in ids:
        suite_check_id(sid)
    if len(set(ids)) != len(ids):
        raise ValueError(f"suite {suite.name!r} yields duplicate sample ids")
    if len(set(shard.gather(stable_hash([[s.id, str(s.input)] for s in samples])))) > 1:
        raise RuntimeError(f"the {shard.count} processes of this run prepared different samples of suite "
                           f"{suite.name!r}; run them on one shared folder with the same options")
    return samples


def score_samples(suite: Suite, samples: Sequence[Sample], cache_dir: Path, partial_file: Path,
                  progress: ProgressFactory | None = None, desc: str = "score", part: str | None = None,
                  overlap: bool = True) -> dict[str, dict[str, Any]]:
    """Score every cached output without a valid record in `partial_file` (its checksum holds, and it scored the
    image now cached against the reference / target there now), appending each record as soon as it is known
    (to this process's part of the file with `part`); returns sample id → record for `samples`. The next PNGs
    are decoded on a background thread and records appended behind, in sample order (`gefu.pipeline`)."""
    digests = Manifest(cache_dir).digests
    targets = {s.id: target_key(s) for s in samples}
    scores = read_records(partial_file, digests=digests, targets=targets)
    scores = {s.id: scores[s.id] for s in samples if s.id in scores}
    todo = [s for s in samples if s.id not in scores]
    bar = open_bar(progress, desc, len(todo))
    write_to, context = part_path(partial_file, part), record_context(partial_file)

    def compute(sample: Sample, img: torch.Tensor) -> dict[str, Any]:
        scores[sample.id] = rec = {"id": sample.id, "png": digests.get(sample.id), "target": targets[sample.id],
                                   **suite.score(sample, img)}
        return rec

    try:
        run_jobs(todo, lambda s: load_image(cache_dir / f"{s.id}.png"), compute,
                 lambda _, rec: append_record(write_to, rec, context), overlap=overlap, expected=(),
                 on_outcome=lambda _: bar.update())
    finally:
        bar.close()
    return scores


def _method_record(suite: Suite, samples: list[Sample], run: MethodRun, device: torch.device, warmup: int,
                   out: Path, processes: int = 1) -> dict[str, Any]:
    """The results record of one method on the suite (one row of results.json)."""
    agg = suite.aggregate(samples, run.scores)
    timing = {**timing_summary(run.cache_dir, samples, run.computed, warmup), "processes": processes}
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

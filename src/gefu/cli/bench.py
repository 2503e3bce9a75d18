"""`gefu bench`: benchmark enhancers the GEFU way (enhance, then test with frozen normal-light models)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .common import HelpFormatter, default_device, parse_key_values

SUITE_NAMES = ("mini", "lol-v1", "unpaired", "lol", "lsrw", "codan", "darkface", "bdd-night")

EXAMPLES = """examples:
  gefu bench --suite mini
  gefu bench --suite mini --methods none,gamma,lime,zero-dce
  gefu bench --suite mini --methods all-classic,all-official
  gefu bench --suite mini --methods none,lime -o results/mini-lime --option lime.alpha=0.2 --option suite.detector=mtcnn
  gefu bench --suite lol-v1 --data ~/data/LOL-v1/eval15 --methods none,lime,zero-dce
  gefu bench --suite unpaired --data ~/data/DICM --methods none,lime
  gefu bench --suite lol --data ~/data/LOL-v2 --methods none,lime,scuf --option scuf.checkpoint=scuf-ckpt/
  gefu bench --suite darkface --data ~/data/DARK_FACE --methods none,scuf --option suite.protocol=official
  gefu bench --suite codan --data ~/data/CODaN --methods none,scuf --task-weights model_best.pt --device cuda
  accelerate launch --multi_gpu --num_processes 4 -m gefu bench --suite lol-v1 --data ~/data/LOL-v1/eval15 --methods all-official

GEFU-mini (the default suite) runs offline: real photographs shipped with scikit-image, matplotlib and
scikit-learn, darkened at three levels; its classification and face-detection labels are what the frozen
models say on the original photos (model agreement, not human labels). Run `gefu weights provision` once so
MobileNetV2 and LPIPS are available. The paper's suites (lol, lsrw, codan, darkface, bdd-night) need --data;
codan needs the paper's classifier (--task-weights); darkface and bdd-night use RetinaFace and ESPNetv2 as
stand-ins for the paper's YOLOv3 / RefineNet unless you give yours (the report says which scored the run);
--option suite.protocol=official evaluates exactly as the authors' code (the published numbers were measured
that way).

Outputs in -o DIR (default results/<suite>): results.json, results.csv, results.md, results.tex, charts/*.png,
report.html. Enhanced images are cached under DIR/cache and per-image scores under DIR/partial: rerunning the
same command reuses them (a killed run resumes; a changed checkpoint, option or dataset file is recomputed),
and timings come from the run that computed the images. One run at a time per DIR. Under accelerate launch each
process takes every N-th image and the main process writes the one report (DIR must be shared by all)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark enhancers (GEFU: IQA, classification, detection, segmentation, time)",
        description="Enhance a suite's images with each method, score them with frozen task models and IQA "
        "metrics, and write tables, charts and an HTML report.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--suite", default="mini", choices=SUITE_NAMES, help="benchmark suite")
    p.add_argument("--methods", default="default",
                   help="comma-separated enhancer names (see 'gefu info') or groups: all-classic (no weights), "
                   "all-official (every method whose official weights are present; the others are listed as "
                   "skipped), all (both), default (none,gamma,lime and zero-dce where its weights are present; "
                   "the default)")
    p.add_argument("--data", default=None, metavar="DIR", help="dataset root (the paper's suites)")
    p.add_argument("-o", "--output", default=None, metavar="DIR", help="output folder (default: results/<suite>)")
    p.add_argument("--out", dest="output", default=None, help=argparse.SUPPRESS)  # the former name
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N images")
    p.add_argument("--task-model", default=None, metavar="NAME",
                   help="frozen task model of the suite (classifier / detector / segmenter name)")
    p.add_argument("--task-weights", default=None, metavar="PATH", help="checkpoint of the frozen task model")
    p.add_argument("--warmup", type=int, default=1, metavar="N", help="untimed warm-up calls per method")
    p.add_argument("--option", action="append", metavar="METHOD.KEY=VALUE",
                   help="option of a method (e.g. lime.alpha=0.2) or of the suite (suite.max_side=384, "
                   "suite.protocol=official); repeatable; values are parsed as JSON when they can be")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def split_options(items: list[str] | None, methods: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """`["lime.alpha=0.2", "suite.max_side=384"]` → ({"lime": {"alpha": 0.2}}, {"max_side": 384}): the common
    KEY=VALUE parser with the methods and "suite" as scopes."""
    grouped = parse_key_values(items, "--option", scopes=[*methods, "suite"])
    return {k: v for k, v in grouped.items() if k != "suite"}, grouped.get("suite", {})


def _on_main() -> bool:
    """Whether this is the first (or only) process: under `accelerate launch` only that one prints."""
    return os.environ.get("RANK", "0") in ("0", "")


def _methods(spec: str) -> list[str]:
    """The method names of `--methods`, groups expanded (`gefu.enhancers.groups`); says on stderr which methods
    a group skipped, one line each."""
    from ..enhancers.groups import expand_methods

    tokens = [m.strip() for m in spec.split(",") if m.strip()]
    if not tokens:
        raise ValueError("--methods is empty; e.g. --methods none,gamma,lime,zero-dce")
    expanded = expand_methods(tokens)
    for skip in expanded.skipped if _on_main() else ():
        print(f"gefu bench: skipped {skip.name} ({skip.group}): {skip.reason}", file=sys.stderr)
    if not expanded.names:
        raise ValueError(f"--methods {spec}: no method left to run (see the skipped lines above); provision the "
                         "weights with `gefu weights provision --from DIR`, or name methods that run here")
    return expanded.names


def _suite_options(args: argparse.Namespace, methods: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-method options and the suite's options from the command line, checked."""
    method_options, suite_options = split_options(args.option, methods)
    if args.suite == "mini" and (args.task_model or args.task_weights):
        raise ValueError("the mini suite takes --option suite.classifier=NAME / suite.detector=NAME instead of "
                         "--task-model / --task-weights")
    if args.task_model is not None:
        suite_options["model"] = args.task_model
    if args.task_weights is not None:
        suite_options["weights"] = args.task_weights
    if args.data is not None:
        suite_options["data"] = args.data
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    return method_options, suite_options


def _device(requested: str | None, shard: Any) -> str:
    """--device, or cuda when visible; in a run of several processes a CUDA device is the process's own."""
    device = requested or default_device()
    if shard.count > 1 and device.startswith("cuda"):
        return str(shard.device)
    return device


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bench.cache import BenchBusyError, bench_lock
    from ..bench.report import write_report
    from ..bench.runner import run_suite
    from ..bench.suites import create_suite
    from ..distributed import current_shard

    methods = _methods(args.methods)
    method_options, suite_options = _suite_options(args, methods)
    out = Path(args.output) if args.output else Path("results") / args.suite
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} is a file, not a folder; give a folder for the results")

    def progress(desc: str, total: int):
        return tqdm(desc=desc, total=total, unit="img", file=sys.stderr, disable=args.quiet or total == 0,
                    leave=True, dynamic_ncols=True)

    suite = create_suite(args.suite, **suite_options)
    t0 = time.perf_counter()
    shard = current_shard()  # several processes under `accelerate launch`; one otherwise
    with ExitStack() as held:
        busy = None
        if shard.is_main:
            try:
                held.enter_context(bench_lock(out))  # the run and its report: one run per output folder
            except BenchBusyError as err:
                busy = str(err)
        if shard.gather(busy)[0]:  # every process learns whether the main one got the folder
            if shard.is_main:
                print(f"gefu bench: error: {busy}", file=sys.stderr)
            shard.close()
            return 1
        result = run_suite(suite, methods, out, device=_device(args.device, shard), limit=args.limit,
                           method_options=method_options, warmup=args.warmup,
                           progress=progress if shard.is_main else None, shard=shard)
        files = write_report(result, out) if shard.is_main else None
    shard.close()
    if files is not None:
        _print_summary(result, files, len(methods), time.perf_counter() - t0, shard.count)
    return 0


def _print_summary(result: Any, files: dict[str, Path], n_methods: int, seconds: float, processes: int) -> None:
    from ..bench.report import build_table, table_markdown

    procs = f", {processes} processes" if processes > 1 else ""
    print(f"\n{result.suite.title} — {len(result.samples)} images, {n_methods} methods, {seconds:.1f} s{procs}\n")
    for note in dict.fromkeys(n for r in result.records for n in r["notes"]):
        print(f"note: {note}")
    print()
    print(table_markdown(build_table(result)))
    print(f"\nreport: {files['html']}\ntables: {files['md']}, {files['csv']}, {files['tex']}\n"
          f"records: {files['json']}")

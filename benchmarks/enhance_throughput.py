"""Images per second of `gefu enhance` over a folder: the serial loop against the overlapped one.

Modes, each a real `gefu enhance` run (in this process, after a warm-up run):
- serial:      `--serial`: decode, enhance, encode and write one image after another (the old loop);
- overlapped:  decoding ahead and writing behind on background threads (`--workers 1`);
- default:     what `gefu enhance` does without flags: overlapped, and for the classic numpy methods (thread-safe,
               about one core each) as many images at once as there are cores, up to 4 (`--workers`). For
               models (zero-dce) this is the overlapped mode, which is then not repeated.
Every mode's outputs are checked byte for byte against the serial loop's. Seconds are the loop's own (from the
command's summary line, model loading excluded), best of --reps runs.

Usage:  .venv/bin/python benchmarks/enhance_throughput.py [--data ../shared/data/dicm] [--methods lime,zero-dce]
        [--limit 64] [--reps 2]
Run it on an otherwise idle machine: the overlap competes for the same cores as whatever else is running.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

import torch

from gefu.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODES = {"serial": ["--serial"], "overlapped": ["--workers", "1"], "default": []}


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(inputs: list[Path], out: Path, method: str, extra: list[str]) -> float:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["enhance", *map(str, inputs), "-o", str(out), "-m", method, *extra])
    summary = buf.getvalue()
    if code != 0:
        raise SystemExit(f"gefu enhance failed ({code}): {summary}")
    return float(re.search(r" in ([0-9.]+) s ", summary).group(1))


def main_(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dicm"), help="folder of photos")
    ap.add_argument("--methods", default="lime,zero-dce", help="comma-separated enhancers")
    ap.add_argument("--limit", type=int, default=64, help="use the first N photos")
    ap.add_argument("--reps", type=int, default=2, help="runs per mode (the best counts)")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"{data}: no such folder (the DICM photos live in ../shared/data/dicm in the dev setup)")
    inputs = sorted(p for p in data.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))[: args.limit]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(inputs)} photos from {data}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average at start {load:.1f}\n")
    print("| method | mode | s | images/s | speed-up | outputs |")
    print("|---|---|---:|---:|---:|---|")
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _run(inputs[:2], tmp / "warmup", method, [])
            modes = dict(MODES)
            from gefu import create_enhancer

            if not getattr(create_enhancer(method), "thread_safe", False):
                modes.pop("default")  # the same as "overlapped" for models
            best: dict[str, float] = {}
            digests: dict[str, dict[str, str]] = {}
            for rep in range(args.reps):
                for mode, extra in modes.items():
                    out = tmp / f"{mode}-{rep}"
                    best[mode] = min(best.get(mode, float("inf")), _run(inputs, out, method, extra))
                    digests[mode] = _digests(out)
            for mode in modes:
                same = "identical" if digests[mode] == digests["serial"] else "DIFFERENT"
                print(f"| {method} | {mode} | {best[mode]:.1f} | {len(inputs) / best[mode]:.2f} | "
                      f"{best['serial'] / best[mode]:.2f}× | {same} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main_()

"""Proxy validity of GEFU-mini: does its PSNR rank methods as real LOL-v1 pairs do?

Usage: .venv/bin/python benchmarks/proxy_validity.py [--lol ../shared/data/lol-v1/eval15] [--methods a,b,...]
                                                      [--out results/proxy] [--device cpu]

Runs every method that has real weights here (the classic ones and each official-weight enhancer whose weights
are present; `--methods` overrides) on GEFU-mini and on LOL-v1 eval15, both cached under --out (LPIPS and the face
detector off: only PSNR is compared), and prints both PSNRs per method and Kendall's τ between the two rankings
(scipy.stats.kendalltau, τ-b, with its two-sided p-value). A τ near 1 means GEFU-mini orders methods as real
low-light pairs do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scipy.stats import kendalltau

from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.enhancers.groups import expand_methods

ROOT = Path(__file__).resolve().parents[1]


def methods_with_weights() -> list[str]:
    """The `all` method group: every classic method and each official-weight enhancer whose files are present
    (`scuf` is not in it: no real weights offline)."""
    return expand_methods(["all"]).names


def psnr_by_method(suite, methods, out, device) -> dict[str, float]:
    res = run_suite(suite, methods, out, device=device)
    return {r["method"]: r["metrics"]["psnr"] for r in res.records if not r.get("reference")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lol", default=str(ROOT.parent / "shared" / "data" / "lol-v1" / "eval15"))
    ap.add_argument("--methods", default=None)
    ap.add_argument("--out", default="results/proxy")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    methods = args.methods.split(",") if args.methods else methods_with_weights()
    out = Path(args.out)
    # PSNR only: no LPIPS, no face detector. The classifier stays: it picks the crops, which are part of the
    # suite's inputs, so the enhanced images of an earlier `gefu bench --suite mini --methods all -o <out>/mini`
    # are reused from its cache.
    mini_suite = create_suite("mini", lpips=False, references=False, detector=None)
    mini = psnr_by_method(mini_suite, methods, out / "mini", args.device)
    lol = psnr_by_method(create_suite("lol-v1", data=args.lol, lpips=False), methods, out / "lol-v1", args.device)
    tau, p = kendalltau([mini[m] for m in methods], [lol[m] for m in methods])
    print("| method | GEFU-mini PSNR | LOL-v1 eval15 PSNR |\n|---|---:|---:|")
    for m in sorted(methods, key=lambda m: -lol[m]):
        print(f"| {m} | {mini[m]:.2f} | {lol[m]:.2f} |")
    print(f"\nKendall τ-b = {tau:.3f} (p = {p:.3g}) over {len(methods)} methods")


if __name__ == "__main__":
    main()

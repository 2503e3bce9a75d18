"""Proxy validity of GEFU-mini: does its PSNR rank methods as real LOL-v1 pairs do?

Usage: .venv/bin/python benchmarks/proxy_validity.py [--lol ../shared/data/lol-v1/eval15] [--methods a,b,...]
                                                      [--out results/proxy] [--device cpu]

Runs every method that has real weights here (the classic ones and each official-weight enhancer whose weights
are present; `--methods` overrides) on GEFU-mini and on LOL-v1 eval15 (LPIPS off: only PSNR is compared), both
cached under --out, and prints both PSNRs per method and Kendall's τ between the two rankings (scipy.stats.kendalltau,
τ-b, with its two-sided p-value). A τ near 1 means GEFU-mini orders methods as real low-light pairs do.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scipy.stats import kendalltau

from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.enhancers import ENHANCERS, _load_all, create_enhancer

ROOT = Path(__file__).resolve().parents[1]
NOT_COMPARED = {"scuf"}  # no real weights offline (SD-Turbo + the authors' checkpoint)


def methods_with_weights() -> list[str]:
    """Registered enhancers that can be built here with their real weights."""
    _load_all()
    ok = []
    for name in ENHANCERS.names():
        if name in NOT_COMPARED:
            continue
        try:
            create_enhancer(name)
        except (FileNotFoundError, OSError, RuntimeError, ValueError, ImportError) as err:
            logging.info("%s left out: %s", name, err)
            continue
        ok.append(name)
    return ok


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
    mini = psnr_by_method(create_suite("mini", lpips=False, references=False), methods, out / "mini", args.device)
    lol = psnr_by_method(create_suite("lol-v1", data=args.lol, lpips=False), methods, out / "lol-v1", args.device)
    tau, p = kendalltau([mini[m] for m in methods], [lol[m] for m in methods])
    print("| method | GEFU-mini PSNR | LOL-v1 eval15 PSNR |\n|---|---:|---:|")
    for m in sorted(methods, key=lambda m: -lol[m]):
        print(f"| {m} | {mini[m]:.2f} | {lol[m]:.2f} |")
    print(f"\nKendall τ-b = {tau:.3f} (p = {p:.3g}) over {len(methods)} methods")


if __name__ == "__main__":
    main()

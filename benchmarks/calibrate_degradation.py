"""Fit GEFU-mini's low-light capture (`gefu.bench.camera`) to real LOL-v1 pairs and write the fit.

Usage: .venv/bin/python benchmarks/calibrate_degradation.py [--data ../shared/data/lol-v1/eval15]
                                                             [--out benchmarks/degradation_fit.json]

Measures exposure, colour cast and the Poisson-Gaussian noise curve of every (low, high) pair in linear camera
space (`gefu.bench.calibrate`), then adjusts the noise parameters until simulated low shots of the same high shots
give the real noise curve (`calibrate`). Writes the fitted values, the real statistics and the simulated ones, plus
the input PSNR / SSIM of real and simulated pairs, to the JSON file, and prints a table. The fitted values are
copied by hand into `gefu.bench.camera.LOL_V1_FIT` (the code never reads this file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gefu import metrics
from gefu.bench.calibrate import calibrate, simulate_like, pair_statistics
from gefu.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]


def input_scores(pairs, fit_shot, fit_read):
    """Mean PSNR / SSIM of low vs high, for the real low shots and for simulated ones (each pair's exposure)."""
    real, sim = [], []
    for i, (lo, hi) in enumerate(pairs):
        st = pair_statistics(lo, hi)
        s = simulate_like(hi, st.exposure, fit_shot, fit_read, seed=7_000 + i)
        for out, x in ((real, lo), (sim, s)):
            out.append((float(metrics.psnr(x[None], hi[None])[0]), float(metrics.ssim(x[None], hi[None])[0])))
    return {name: {"psnr": float(np.mean([v[0] for v in vals])), "ssim": float(np.mean([v[1] for v in vals]))}
            for name, vals in (("real", real), ("simulated", sim))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "lol-v1" / "eval15"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "degradation_fit.json"))
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    data = Path(args.data)
    lows = sorted((data / "low").iterdir())
    pairs = [(load_image(p), load_image(data / "high" / p.name)) for p in lows]
    res = calibrate(pairs, rounds=args.rounds)
    res["input_scores"] = input_scores(pairs, res["fit"]["shot"], res["fit"]["read"])
    res["data"] = f"LOL-v1 {data.name}: {len(pairs)} pairs ({', '.join(p.name for p in lows)})"
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"| statistic | real LOL-v1 ({len(pairs)} pairs) | simulated with the fit | fitted value |")
    print("|---|---:|---:|---:|")
    for k in ("exposure_p10", "exposure_p50", "exposure_p90", "shot", "read"):
        print(f"| {k} | {res['real'][k]:.4g} | {res['simulated'][k]:.4g} | {res['fit'][k]:.4g} |")
    print(f"| cast R/G, B/G | {res['real']['cast'][0]:.3f}, {res['real']['cast'][2]:.3f} | "
          f"{res['simulated']['cast'][0]:.3f}, {res['simulated']['cast'][2]:.3f} | "
          f"{res['fit']['cast'][0]:.3f}, {res['fit']['cast'][2]:.3f} |")
    for k in ("psnr", "ssim"):
        print(f"| input {k.upper()} | {res['input_scores']['real'][k]:.4g} | {res['input_scores']['simulated'][k]:.4g} | |")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()

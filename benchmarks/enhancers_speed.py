"""Seconds per image of every registered enhancer (except SCUF) on a darkened 600×400 photo, CPU.

Usage: .venv/bin/python benchmarks/enhancers_speed.py [--runs 5] [--width 600 --height 400]
Prints three markdown tables: all enhancers (default options), LIME's illumination solvers per weight
strategy, and the accuracy of the fast multi-resolution solve (the default from 256×256 up) against the exact
one, as PSNR between the final LIME / DUAL outputs, on every sample photo at the same size.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import gefu
from gefu.bench.degrade import darken
from gefu.enhancers import ENHANCERS
from gefu.enhancers import classical as C
from gefu.samples import load_sample, sample_photos


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up (imports, allocations, OpenCV/BLAS thread pools)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make(name: str) -> gefu.Enhancer:
    try:
        return gefu.create_enhancer(name)
    except ValueError:  # learned enhancers without installed weights: timing does not depend on weights
        if "allow_random" not in inspect.signature(ENHANCERS.get(name)).parameters:
            raise
        return gefu.create_enhancer(name, allow_random=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--width", type=int, default=600)
    p.add_argument("--height", type=int, default=400)
    p.add_argument("--photo", default="astronaut")
    args = p.parse_args()

    img = F.interpolate(load_sample(args.photo)[None], size=(args.height, args.width), mode="area").clamp(0, 1)
    x = darken(img, exposure=0.12, seed=0)  # (1, 3, H, W)
    print(f"{args.photo} darkened, {args.width}×{args.height}, torch threads {torch.get_num_threads()}, "
          f"median of {args.runs} runs after one warm-up\n")  # fmt: skip

    print("| enhancer | seconds / image |\n|---|---|")
    for name in gefu.list_enhancers():
        if name == "scuf":
            continue
        enh = make(name)
        with torch.no_grad():
            sec = median_seconds(lambda: enh(x), args.runs)
        print(f"| {name} | {sec:.3f} |", flush=True)

    arr = x[0].permute(1, 2, 0).numpy().astype(np.float32)
    print("\nLIME illumination T only (the linear solve dominates):\n")
    print("| weight strategy | solver | seconds | max abs(T − T_direct) |\n|---|---|---|---|")
    for strategy in (1, 2, 3):
        exact = C.lime_illumination(arr, weight_strategy=strategy, solver="direct")
        for solver in ("direct", "multires", "cg"):
            def run() -> np.ndarray:
                return C.lime_illumination(arr, weight_strategy=strategy, solver=solver)

            if solver == "cg" and strategy != 1:  # Jacobi-CG is very slow here: one timed run, no warm-up
                t0 = time.perf_counter()
                t = run()
                sec = time.perf_counter() - t0
            else:
                sec = median_seconds(run, args.runs)
                t = run()
            err = np.abs(t - exact).max()
            print(f"| {('I', 'II', 'III')[strategy - 1]} | {solver} | {sec:.3f} | {err:.1e} |", flush=True)

    print(f"\nMulti-resolution (downscale 2) vs exact solve, PSNR of the outputs (dB), {args.width}×{args.height}, "
          "darkened (exposure 0.12), default options:\n")  # fmt: skip
    print("| photo | LIME | DUAL |\n|---|---|---|")
    for name in sample_photos():
        im = F.interpolate(load_sample(name)[None], size=(args.height, args.width), mode="area").clamp(0, 1)
        a = darken(im, exposure=0.12, seed=0)[0].permute(1, 2, 0).numpy().astype(np.float32)
        row = [psnr(fn(a, solver="multires"), fn(a, solver="direct")) for fn in (C.lime, C.dual)]
        print(f"| {name} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


if __name__ == "__main__":
    main()

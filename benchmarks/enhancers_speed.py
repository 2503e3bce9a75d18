"""CNN enhancers against this machine's convolution rate, on a 600×400 image, CPU (issue 12).

Usage: python benchmarks/enhancers_speed.py [--runs 3] [--repeats 3] [--threads N] [--only zero-dce,iat-lol-v1]
                                            [--all] [--lime]

Prints the machine (CPU model, cores, torch threads, load average before and after: the machine may be shared),
then, all measured in the same run:

1. reference rates: a 3×3 conv 32→32 on a 600×400 map, channels_last (FLOPs = 2·C_in·C_out·9·H·W; NCHW too, for
   comparison), and the memory bandwidth of a 256 MB copy. Their ratio, the machine balance (FLOP per byte),
   separates compute-bound networks from memory-bound ones.
2. one row per CNN enhancer (official weights where installed, else seeded random ones: speed does not depend on
   them): GFLOP per image (`torch.utils.flop_counter.FlopCounterMode` on one forward of the plain eager network),
   bytes the plain eager network moves (every aten op's tensor inputs and outputs, views excluded) and their ratio,
   the arithmetic intensity (above the machine balance: "dense", compute-bound; below: memory-bound); seconds per
   image (best of `--runs` after a warm-up; median over `--repeats`), effective GFLOP/s, the percentage of the
   conv rate (the conv is timed again just before each enhancer in each repeat, so each ratio is side by side:
   median [min–max] over repeats); the seconds of the plain NCHW eager path (channels_last off and
   `gefu.enhancers.layers.reference_ops()`: padded copies, concatenations, separate BatchNorm, whole-image
   per-pixel chains) and the largest |output − NCHW eager output| (≤ 1e-5 is the target).
3. the targets of issue 12, checked on these figures.

--all adds the older table of every registered enhancer's seconds per image (classic ones included); --lime the
LIME illumination-solver tables. A shared machine makes absolute seconds noisy; run it a few times and compare
the ratios. `THP_MEM_ALLOC_ENABLE=1` in the environment lets PyTorch back large tensors with transparent huge pages
(fewer page faults for each fresh 30–60 MB activation map); the header says whether it was set.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import gefu
from gefu.bench.degrade import darken
from gefu.enhancers import ENHANCERS
from gefu.enhancers import classical as C
from gefu.enhancers.cnn import CNNEnhancer
from gefu.enhancers.layers import reference_ops
from gefu.samples import load_sample, sample_photos

MAX_DIFF = 1e-5  # outputs within this of the NCHW eager path
TARGET_PERCENT = 60.0  # dense-conv enhancers reach this share of the conv rate


# ----------------------------------------------------------------------------------------------------------------
# Timing and counting
# ----------------------------------------------------------------------------------------------------------------


def best_seconds(fn: Callable[[], object], runs: int) -> float:
    """Best wall time of `runs` calls after one warm-up (the least disturbed by other processes)."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def conv_rate(height: int, width: int, runs: int, channels_last: bool = True) -> float:
    """FLOP/s of a 3×3 conv 32→32 on a (1, 32, height, width) map: 2·C_in·C_out·9·H·W per call."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = nn.Conv2d(32, 32, 3, padding=1).eval().to(memory_format=fmt)
    x = torch.rand(1, 32, height, width).contiguous(memory_format=fmt)
    with torch.inference_mode():
        return 2 * 32 * 32 * 9 * height * width / best_seconds(lambda: conv(x), runs)


def copy_bandwidth(runs: int, mbytes: int = 256) -> float:
    """Bytes/s of copying a `mbytes` MB tensor (read + write)."""
    a = torch.rand(mbytes << 18)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / best_seconds(lambda: b.copy_(a), runs)


class BytesMoved(TorchDispatchMode):
    """Sums the bytes of the tensors each aten op reads and writes; views and other aliasing ops move none."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        is_view = any(r.alias_info is not None and not r.alias_info.is_write for r in returns)
        if not is_view:
            flat = torch.utils._pytree.tree_leaves((args, kwargs or {}, out))
            self.total += sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))
        return out


def make(name: str) -> tuple[gefu.Enhancer, bool]:
    """The enhancer with its installed weights, or seeded random ones (timing does not depend on them)."""
    try:
        return gefu.create_enhancer(name), True
    except (ValueError, FileNotFoundError):
        if "allow_random" not in inspect.signature(ENHANCERS.get(name)).parameters:
            raise
        return gefu.create_enhancer(name, allow_random=True), False


def cnn_names() -> list[str]:
    out = []
    for name in gefu.list_enhancers():
        factory = ENHANCERS.get(name)
        if isinstance(factory, type) and issubclass(factory, CNNEnhancer):
            out.append(name)
    return out


# ----------------------------------------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    isa = torch.backends.cpu.get_cpu_capability()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
    return (f"{cpu_model()}, {cores} cores usable, torch {torch.__version__} ({isa}), torch threads "
            f"{torch.get_num_threads()}, THP_MEM_ALLOC_ENABLE={thp}; load average {load:.1f} at start")


# ----------------------------------------------------------------------------------------------------------------
# The CNN table
# ----------------------------------------------------------------------------------------------------------------


def measure_static(enh: CNNEnhancer, x: torch.Tensor) -> dict[str, Any]:
    """FLOPs, bytes moved and the NCHW eager output of the plain network; the default path's output."""
    layout = enh.channels_last
    with torch.inference_mode():
        y = enh(x)
        enh.use_channels_last(False)
        try:
            with reference_ops():
                with FlopCounterMode(display=False) as flops:
                    enh(x)
                with BytesMoved() as moved:
                    y_ref = enh(x)
        finally:
            enh.use_channels_last(layout)
    return {"flops": flops.get_total_flops(), "bytes": moved.total, "diff": float((y - y_ref).abs().max())}


def eager_seconds(enh: CNNEnhancer, x: torch.Tensor, runs: int) -> float:
    layout = enh.channels_last
    enh.use_channels_last(False)
    try:
        with torch.inference_mode(), reference_ops():
            return best_seconds(lambda: enh(x), runs)
    finally:
        enh.use_channels_last(layout)


def fmt_range(values: list[float], digits: int = 0) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def cnn_table(x: torch.Tensor, names: list[str], runs: int, repeats: int) -> None:
    h, w = x.shape[-2:]
    rate_cl, rate_nchw, bandwidth = [], [], []
    enhancers, info = {}, {}
    for name in names:
        enh, real = make(name)
        enhancers[name] = enh.eval()
        info[name] = {"real": real, **measure_static(enh, x)}  # type: ignore[arg-type]
    seconds: dict[str, list[float]] = {n: [] for n in names}
    percent: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        rate_nchw.append(conv_rate(h, w, runs, channels_last=False))
        bandwidth.append(copy_bandwidth(runs))
        for name in names:
            rate = conv_rate(h, w, runs)  # side by side with this enhancer
            rate_cl.append(rate)
            with torch.inference_mode():
                sec = best_seconds(lambda: enhancers[name](x), runs)
            seconds[name].append(sec)
            percent[name].append(100 * info[name]["flops"] / sec / rate)
    eager = {n: eager_seconds(enhancers[n], x, max(1, runs - 1)) for n in names}

    balance = statistics.median(rate_cl) / statistics.median(bandwidth)
    print(f"Reference rates over the run, median [min–max]: 3×3 conv 32→32 on {w}×{h} "
          f"{fmt_range([r / 1e9 for r in rate_cl])} GFLOP/s channels_last ({len(rate_cl)} samples), "
          f"{fmt_range([r / 1e9 for r in rate_nchw])} GFLOP/s NCHW; copy bandwidth "
          f"{fmt_range([b / 1e9 for b in bandwidth], 1)} GB/s; machine balance {balance:.0f} FLOP/byte.\n")
    print("| enhancer | weights | layout | GFLOP | FLOP/byte | bound | s / image | GFLOP/s | % of conv rate "
          "| NCHW eager s | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        i, enh = info[name], enhancers[name]
        sec = statistics.median(seconds[name])
        intensity = i["flops"] / max(1, i["bytes"])
        bound = "dense" if intensity > balance else "memory"
        i.update(sec=sec, bound=bound, percent=statistics.median(percent[name]))
        print(f"| {name} | {'official' if i['real'] else 'random'} | "
              f"{'channels_last' if enh.channels_last else 'NCHW'} | {i['flops'] / 1e9:.2f} | {intensity:.1f} | "
              f"{bound} | {fmt_range(seconds[name], 3)} | {i['flops'] / sec / 1e9:.0f} | {fmt_range(percent[name])} | "
              f"{eager[name]:.3f} | {eager[name] / sec:.2f}× | {i['diff']:.1e} |", flush=True)
    targets(info)


def targets(info: dict[str, dict[str, Any]]) -> None:
    print("\nTargets (issue 12):")
    dense = [n for n, i in info.items() if i["bound"] == "dense"]
    low = [f"{n} {info[n]['percent']:.0f} %" for n in dense if info[n]["percent"] < TARGET_PERCENT]
    print(f"- dense-conv enhancers at ≥ {TARGET_PERCENT:.0f} % of the conv rate: "
          + ("all met" if not low else "NOT met by " + ", ".join(low)) + f" ({', '.join(dense)})")
    if "zero-dce" in info:
        ref = info["zero-dce"]["sec"]
        memory = [n for n, i in info.items() if i["bound"] == "memory"]
        slow = [f"{n} {info[n]['sec']:.3f} s" for n in memory if info[n]["sec"] > ref]
        print(f"- memory-bound enhancers no slower per image than zero-dce ({ref:.3f} s): "
              + ("all met" if not slow else "NOT met by " + ", ".join(slow)) + f" ({', '.join(memory)})")
    far = [f"{n} {i['diff']:.1e}" for n, i in info.items() if not i["diff"] <= MAX_DIFF]
    print(f"- outputs within {MAX_DIFF:.0e} of the NCHW eager path: "
          + ("all met" if not far else "NOT met by " + ", ".join(far)))


# ----------------------------------------------------------------------------------------------------------------
# The older tables (--all, --lime)
# ----------------------------------------------------------------------------------------------------------------


def all_table(x: torch.Tensor, runs: int) -> None:
    print("\nEvery enhancer (default options, SCUF left out):\n\n| enhancer | seconds / image |\n|---|---|")
    for name in gefu.list_enhancers():
        if name == "scuf":
            continue
        enh, _ = make(name)
        with torch.inference_mode():
            sec = best_seconds(lambda: enh(x), runs)
        print(f"| {name} | {sec:.3f} |", flush=True)


def lime_tables(x: torch.Tensor, runs: int, photo_size: tuple[int, int]) -> None:
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
                sec = best_seconds(run, runs)
                t = run()
            err = np.abs(t - exact).max()
            print(f"| {('I', 'II', 'III')[strategy - 1]} | {solver} | {sec:.3f} | {err:.1e} |", flush=True)

    height, width = photo_size
    print(f"\nMulti-resolution (downscale 2) vs exact solve, PSNR of the outputs (dB), {width}×{height}, "
          "darkened (exposure 0.12), default options:\n")  # fmt: skip
    print("| photo | LIME | DUAL |\n|---|---|---|")
    for name in sample_photos():
        im = F.interpolate(load_sample(name)[None], size=(height, width), mode="area").clamp(0, 1)
        a = darken(im, exposure=0.12, seed=0)[0].permute(1, 2, 0).numpy().astype(np.float32)
        row = [psnr(fn(a, solver="multires"), fn(a, solver="direct")) for fn in (C.lime, C.dual)]
        print(f"| {name} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="timed calls per measurement (best is kept)")
    p.add_argument("--repeats", type=int, default=3, help="passes over all enhancers (spread of the ratios)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--only", default=None, help="comma-separated CNN enhancers (default: all)")
    p.add_argument("--width", type=int, default=600)
    p.add_argument("--height", type=int, default=400)
    p.add_argument("--photo", default="astronaut")
    p.add_argument("--all", action="store_true", help="also time every registered enhancer (the older table)")
    p.add_argument("--lime", action="store_true", help="also print LIME's illumination-solver tables")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(machine_line() + "\n")
    img = F.interpolate(load_sample(args.photo)[None], size=(args.height, args.width), mode="area").clamp(0, 1)
    x = darken(img, exposure=0.12, seed=0)  # (1, 3, H, W)
    print(f"Input: {args.photo} darkened, {args.width}×{args.height}; best of {args.runs} runs after a warm-up, "
          f"{args.repeats} repeats.\n")
    names = args.only.split(",") if args.only else cnn_names()
    cnn_table(x, names, args.runs, args.repeats)
    if args.all:
        all_table(x, args.runs)
    if args.lime:
        lime_tables(x, args.runs, (args.height, args.width))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nLoad average {load:.1f} at the end.")


if __name__ == "__main__":
    main()

"""Every CNN enhancer on a CUDA GPU: fp32 against fp16 and bf16 autocast, and against the CPU (issue 12).

Usage (on a machine with a CUDA GPU):  python benchmarks/gpu_check.py [--images 5] [--runs 20] [--device cuda:0]

Input: the first `--images` LOL-v1 eval15 low-light images (600×400) from ../shared/data/lol-v1 when present, else
the darkened astronaut sample photo at 600×400. For each CNN enhancer (official weights where installed, else
seeded random ones, marked "random": their PSNR says little), one table row:

- ms per image (batch 1, CUDA events, median of `--runs` after warm-up): fp32 channels_last (the default layout),
  fp32 NCHW, and fp16 / bf16 autocast (`dtype="fp16"` / `"bf16"`, channels_last);
- PSNR (dB) of the fp16 and bf16 outputs against fp32 on the GPU: the worst image (a non-finite output counts as
  0 dB);
- fp32 CUDA against fp32 CPU: the largest absolute difference and the worst PSNR.

Then, per class, the suggested `autocast_dtype` (the class attribute in gefu/enhancers/*.py): the faster of
fp16/bf16 among those within 35 dB of fp32 on every image and at least 10 % faster than fp32, else None (fp32);
and the suggested layout where NCHW beats channels_last by 10 %. Nothing here changes gefu: the lead sets the
class defaults from this table. Run it on an otherwise idle GPU.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import gefu
from gefu.bench.degrade import darken
from gefu.device import parse_dtype
from gefu.enhancers import ENHANCERS
from gefu.enhancers.cnn import CNNEnhancer
from gefu.samples import load_sample

LOL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lol-v1" / "eval15" / "low"
MIN_PSNR = 35.0  # autocast is allowed where outputs stay within this of fp32
MIN_GAIN = 1.10  # ... and where it is at least this much faster


def images(count: int) -> tuple[list[torch.Tensor], str]:
    """(1, 3, 400, 600) float32 images in [0, 1] and where they came from."""
    if LOL.is_dir() and any(LOL.glob("*.png")):
        paths = sorted(LOL.glob("*.png"))[:count]
        out = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), np.float32) / 255).permute(2, 0, 1)[None]
               for p in paths]
        return [t.contiguous() for t in out], f"LOL-v1 eval15 low: {', '.join(p.name for p in paths)}"
    img = F.interpolate(load_sample("astronaut")[None], size=(400, 600), mode="area").clamp(0, 1)
    return [darken(img, exposure=0.12, seed=0)], "astronaut, darkened (LOL-v1 not found at ../shared/data)"


def cnn_names() -> list[str]:
    return [n for n in gefu.list_enhancers()
            if isinstance(ENHANCERS.get(n), type) and issubclass(ENHANCERS.get(n), CNNEnhancer)]


def make(name: str) -> tuple[CNNEnhancer, bool]:
    try:
        return gefu.create_enhancer(name), True  # type: ignore[return-value]
    except (ValueError, FileNotFoundError):
        assert "allow_random" in inspect.signature(ENHANCERS.get(name)).parameters
        return gefu.create_enhancer(name, allow_random=True), False  # type: ignore[return-value]


def cuda_ms(fn: Callable[[], object], runs: int) -> float:
    """Median milliseconds of `fn` on the current CUDA stream, after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in [0, 1]; 0 when either is not finite."""
    a, b = a.double().cpu(), b.double().cpu()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return 0.0
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def check(name: str, xs: list[torch.Tensor], device: torch.device, runs: int) -> dict:
    enh, real = make(name)
    enh.eval()
    with torch.inference_mode():
        cpu = [enh(x) for x in xs]  # fp32 CPU reference
        enh.to(device)
        gpu_x = [x.to(device) for x in xs]
        row: dict = {"name": name, "real": real}
        outs = {}
        for label in ("fp32", "fp16", "bf16"):
            enh.gpu_dtype = parse_dtype(label)
            outs[label] = [enh(x) for x in gpu_x]
            row[f"ms_{label}"] = cuda_ms(lambda: enh(gpu_x[0]), runs)
        enh.gpu_dtype = torch.float32
        enh.use_channels_last(not enh.channels_last)
        row["ms_other_layout"] = cuda_ms(lambda: enh(gpu_x[0]), runs)
        enh.use_channels_last(not enh.channels_last)
        row["layout"] = "channels_last" if enh.channels_last else "NCHW"
    for label in ("fp16", "bf16"):
        row[f"psnr_{label}"] = min(psnr(a, b) for a, b in zip(outs[label], outs["fp32"]))
    row["cpu_maxdiff"] = max(float((a.cpu() - b).abs().max()) for a, b in zip(outs["fp32"], cpu))
    row["cpu_psnr"] = min(psnr(a, b) for a, b in zip(outs["fp32"], cpu))
    return row


def suggestion(row: dict) -> str:
    ok = [d for d in ("fp16", "bf16") if row[f"psnr_{d}"] >= MIN_PSNR and row["ms_fp32"] / row[f"ms_{d}"] >= MIN_GAIN]
    best = min(ok, key=lambda d: row[f"ms_{d}"]) if ok else None
    dtype = {"fp16": "torch.float16", "bf16": "torch.bfloat16", None: "None"}[best]
    layout = ""
    if row["ms_other_layout"] * MIN_GAIN <= row["ms_fp32"]:
        layout = f"; channels_last = {row['layout'] != 'channels_last'} (the other layout is faster)"
    return f"autocast_dtype = {dtype}{layout}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--only", default=None, help="comma-separated CNN enhancers (default: all)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check.py needs a CUDA device (none is visible)")
    device = torch.device(args.device)
    xs, source = images(args.images)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version()}, cudnn.benchmark={torch.backends.cudnn.benchmark}; CPU reference with "
          f"{torch.get_num_threads()} threads")
    print(f"Input: {source} (600×400, batch 1)\n")
    print("| enhancer | weights | fp32 ms | fp32 other-layout ms | fp16 ms | bf16 ms | fp16 PSNR vs fp32 | "
          "bf16 PSNR vs fp32 | CUDA vs CPU max abs | CUDA vs CPU PSNR |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.only.split(",") if args.only else cnn_names():
        row = check(name, xs, device, args.runs)
        rows.append(row)
        other = "NCHW" if row["layout"] == "channels_last" else "channels_last"
        print(f"| {name} | {'official' if row['real'] else 'random'} | {row['ms_fp32']:.2f} ({row['layout']}) | "
              f"{row['ms_other_layout']:.2f} ({other}) | {row['ms_fp16']:.2f} | {row['ms_bf16']:.2f} | "
              f"{row['psnr_fp16']:.1f} | {row['psnr_bf16']:.1f} | {row['cpu_maxdiff']:.1e} | {row['cpu_psnr']:.1f} |",
              flush=True)
    print(f"\nSuggested class defaults (autocast within {MIN_PSNR:.0f} dB of fp32 and ≥ {MIN_GAIN:.2f}× faster):\n")
    for row in rows:
        print(f"- {row['name']}: {suggestion(row)}")


if __name__ == "__main__":
    main()

"""SCUF speed and memory on this machine, with the REAL SD-Turbo-sized architecture and random weights.

No download: the SD-Turbo (SD 2.1) UNet / VAE / OpenCLIP-H text encoder / DDPM scheduler and the CLIP ViT-B/32
image tower are built from the configs written out below (DESIGN §2.1), with random weights. Speed does not depend
on the weights' values, so the numbers hold for the real model.

Prints markdown tables:
0. the former CPU path against the current default, side by side in the same run on the same model: SCUF's fp32
   forward at 256² with PyTorch's NCHW layout and the VAE LoRA run as separate convolutions
   (`SCUFEnhancer(channels_last=False, merge_lora=False)`), and with the LoRA merged into the base weights and
   channels_last convolutions (the default): CPU seconds per image, the ratio, and the largest difference between
   the two outputs (issue 12: ≥ 1.3×, ≤ 1e-4);
1. seconds per image (batch 1, best of a few runs, CPU time and wall time, one torch thread by default so that
   other processes on a shared machine disturb it least) at 256² and 512², fp32 and bf16 autocast, for the plain
   CycleGAN-Turbo generator (adapter "none": text prompt only, no image prompt) and for SCUF (CLIP image prompt + cycle-attention
   adapter), with SCUF's overhead as a ratio;
2. trainable / total parameters;
3. peak memory (RSS) to enhance one 2048×2048 image with and without tiling, each run in its own subprocess (peak
   RSS is reset after the model is built, so it measures inference). Untiled 2048² is only run when the estimate
   from the 512² run fits comfortably in the free memory; otherwise the estimate is reported and marked.

bf16 is measured only where the CPU runs it natively (a one-conv probe decides): on AVX2-only CPUs it is emulated
and SD's convolutions become tens of times slower than fp32.

Usage:  .venv/bin/python benchmarks/scuf_speed.py [--reps 2] [--threads 1] [--skip-memory] [--memory-only]
        .venv/bin/python benchmarks/scuf_speed.py --layout-only      # table 0 only (a few minutes)
(about 6 GB of RAM; 15-30 minutes on a 2-core AVX2 machine, a few minutes where fp32 is fast.)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from gefu.enhancers.scuf import SCUFEnhancer
from gefu.scuf.config import SCUFConfig
from gefu.scuf.generator import SCUFGenerator
from gefu.scuf.pretrained import BaseComponents, ByteTokenizer

# --- stabilityai/sd-turbo (SD 2.1 architecture) -----------------------------------------------------------------
UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    use_linear_projection=True, norm_num_groups=32, act_fn="silu", flip_sin_to_cos=True, freq_shift=0,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    act_fn="silu", sample_size=768, scaling_factor=0.18215,
)
TEXT = dict(  # OpenCLIP ViT-H/14 text tower as SD 2.x ships it (23 layers)
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512, bos_token_id=0, pad_token_id=1,
    eos_token_id=2,
)
SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="epsilon", clip_sample=False, steps_offset=1, timestep_spacing="trailing",
)
# --- openai/clip-vit-base-patch32 image tower --------------------------------------------------------------------
VISION = dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224,
    patch_size=32, projection_dim=512, hidden_act="quick_gelu",
)


def random_components(seed: int = 0) -> BaseComponents:
    torch.manual_seed(seed)
    return BaseComponents(
        unet=UNet2DConditionModel(**UNET).eval(),
        vae=AutoencoderKL(**VAE).eval(),
        text_encoder=CLIPTextModel(CLIPTextConfig(**TEXT)).eval(),
        tokenizer=ByteTokenizer(TEXT["vocab_size"], TEXT["max_position_embeddings"]),
        scheduler=DDPMScheduler(**SCHEDULER),
        vision=CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION)).eval(),
    )


def build(adapter: str, comps: BaseComponents, fast: bool = True) -> SCUFGenerator:
    """A generator as SCUFEnhancer builds it: LoRA merged and channels_last when `fast` (the default path)."""
    cfg = SCUFConfig(base="sd-turbo-architecture (random weights)", adapter=adapter,
                     reflectance="none" if adapter == "none" else "decoder")
    gen = SCUFGenerator(cfg, comps, inference_only=True)
    if fast:
        gen.merge_lora()
        gen.to(memory_format=torch.channels_last)
    return gen


def seconds_per_image(gen: SCUFGenerator, size: int, bf16: bool, reps: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per image: the minimum over `reps` runs after one warm-up.

    The minimum is the estimator least disturbed by other processes; CPU time (of this process) is insensitive to
    waiting for a shared core when torch runs one thread.
    """
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    cpu, wall = [], []
    with torch.no_grad(), ctx:
        gen(x)  # warm-up: oneDNN primitives, allocator
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            gen(x)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
    return min(cpu), min(wall)


def bf16_slowdown() -> float:
    """Time ratio bf16-autocast / fp32 of one 3×3 conv (128 ch, 64²). CPUs without native bf16 (no AVX512-BF16 /
    AMX, e.g. AVX2-only) emulate it, and SD's convs then run tens of times slower than in fp32."""
    conv, x = torch.nn.Conv2d(128, 128, 3, padding=1), torch.randn(1, 128, 64, 64)
    result = []
    for ctx in (nullcontext(), torch.autocast("cpu", dtype=torch.bfloat16)):
        with torch.no_grad(), ctx:
            conv(x)
            t0 = time.perf_counter()
            conv(x)
            result.append(time.perf_counter() - t0)
    return result[1] / result[0]


def count(params) -> int:
    return sum(p.numel() for p in params)


def perturb_lora(gen: SCUFGenerator, std: float = 0.02) -> None:
    """LoRA B matrices start at zero; give them values, as a trained model has (so that merging them matters)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn(p.shape, generator=g) * std)


def layout_table(comps: BaseComponents, reps: int, size: int = 256) -> str:
    """Table 0: the same SCUF model at `size`², fp32, through the enhancer: the former path (NCHW, LoRA run apart)
    and the current default (LoRA merged into the base weights, channels_last)."""
    gen = build("ca", comps, fast=False)
    perturb_lora(gen)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    outputs, seconds = {}, {}
    for new in (False, True):
        if new:  # what SCUFEnhancer(channels_last=True, merge_lora=True) does to the generators it builds
            gen.merge_lora()
            gen.to(memory_format=torch.channels_last)
        enh = SCUFEnhancer(generator=gen, channels_last=new)
        print(f"  timing the {'new' if new else 'former'} path ...", file=sys.stderr, flush=True)
        with torch.no_grad():
            outputs[new] = enh(x)  # warm-up (oneDNN primitives, allocator)
            cpu = []
            for _ in range(reps):
                c0 = time.process_time()
                enh(x)
                cpu.append(time.process_time() - c0)
        seconds[new] = min(cpu)
    diff = (outputs[False] - outputs[True]).abs().max().item()
    del gen
    gc.collect()
    return ("| image | former path: NCHW, LoRA apart | default: LoRA merged, channels_last | speed-up | max abs output "
            "difference |\n|---|---|---|---|---|\n"
            f"| {size}² fp32 | {seconds[False]:.2f} s | {seconds[True]:.2f} s | "
            f"**{seconds[False] / seconds[True]:.2f}×** | {diff:.1e} |")


# --- memory (child processes) ------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(size: int, dtype: str, tile: int | None, real_tiles: int) -> None:
    """Build SCUF, reset the peak-RSS counter, enhance one size×size image, print JSON.

    With tiling, only the first `real_tiles` tiles are computed; the others return zeros of the same shape. Every tile
    has the same size and the output accumulators are allocated at the first tile, so the peak RSS is that of the
    full run; the full time is extrapolated from the seconds per real tile.
    """
    comps = random_components()
    gen = build("ca", comps)
    del comps
    calls, tile_seconds = [0], []
    if tile:
        full_forward = gen.forward

        def forward(x: torch.Tensor, *a, **k) -> torch.Tensor:  # measurement harness only
            calls[0] += 1
            if calls[0] > real_tiles:
                return torch.zeros_like(x)
            t0 = time.perf_counter()
            y = full_forward(x, *a, **k)
            tile_seconds.append(time.perf_counter() - t0)
            return y

        gen.forward = forward
    enh = SCUFEnhancer(generator=gen, dtype=dtype, tile=tile, overlap=64)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM (peak RSS) to the current RSS
        f.write("5")
    model_kb = _status_kb("VmRSS")
    x = torch.rand(1, 3, size, size)
    t0 = time.perf_counter()
    y = enh(x)
    seconds = time.perf_counter() - t0
    assert y.shape == x.shape
    if tile:  # tiles after the first are warm: extrapolate with them
        per_tile = statistics.median(tile_seconds[1:] or tile_seconds)
        seconds = sum(tile_seconds) + per_tile * (calls[0] - len(tile_seconds))
    result = {"model_gb": model_kb / 2**20, "peak_gb": _status_kb("VmHWM") / 2**20, "seconds": seconds,
              "tiles": calls[0], "real_tiles": len(tile_seconds)}
    print(json.dumps(result))


def run_child(size: int, dtype: str, tile: int | None, real_tiles: int = 2) -> dict:
    cmd = [sys.executable, __file__, "--child", "--size", str(size), "--dtype", dtype, "--real-tiles", str(real_tiles)]
    if tile:
        cmd += ["--tile", str(tile)]
    print(f"  measuring {size}² {dtype} {'tile ' + str(tile) if tile else 'untiled'} ...", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def memory_table(dtype: str, tile: int, margin_gb: float, real_tiles: int) -> str:
    small = run_child(256, dtype, None)
    mid = run_child(512, dtype, None)
    act_small, act_mid = small["peak_gb"] - small["model_gb"], mid["peak_gb"] - mid["model_gb"]
    # activations = fixed part + part proportional to the pixels (SDPA keeps attention memory linear): fit both
    # on 256² and 512², evaluate at 2048² (64 × the pixels of 256²)
    per_256 = (act_mid - act_small) / 3
    estimate = mid["model_gb"] + (act_small - per_256) + 64 * per_256
    rows = [
        f"| untiled 256² | {small['peak_gb']:.1f} | {small['model_gb']:.1f} | {small['seconds']:.0f} | measured "
        f"(activations {act_small:.2f} GB) |",
        f"| untiled 512² | {mid['peak_gb']:.1f} | {mid['model_gb']:.1f} | {mid['seconds']:.0f} | measured "
        f"(activations {act_mid:.2f} GB: {act_small - per_256:.2f} GB fixed + {per_256:.2f} GB per 256² of pixels) |",
    ]
    tiled = run_child(2048, dtype, tile, real_tiles)
    rows.append(f"| **2048², tiles {tile} (overlap 64)** | {tiled['peak_gb']:.1f} | {tiled['model_gb']:.1f} "
                f"| ≈ {tiled['seconds']:.0f} | peak measured on the real 2048² run ({tiled['tiles']} tiles; the first "
                f"{tiled['real_tiles']} computed, the rest skipped: same shapes, so same peak); time = tiles × s/tile |")
    if estimate < available_gb() - margin_gb:
        full = run_child(2048, dtype, None)
        rows.append(f"| **2048², untiled** | {full['peak_gb']:.1f} | {full['model_gb']:.1f} | {full['seconds']:.0f} "
                    f"| measured (estimate was {estimate:.1f}) |")
    else:
        rows.append(f"| **2048², untiled** | ≈ {estimate:.1f} | {mid['model_gb']:.1f} | – | estimate: model + fixed + 64 × the "
                    f"per-256² activations; not run, it would not leave {margin_gb:.0f} GB free on this shared machine |")
    head = (f"| {dtype} weights | peak RSS (GB) | RSS after build (GB) | seconds | how |\n"
            "|---|---|---|---|---|\n")
    return head + "\n".join(rows)


# --- main --------------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=2, help="timed runs at 256² after one warm-up (one fewer at 512²)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the timing table")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--layout-only", action="store_true", help="only the former-path vs default table")
    ap.add_argument("--tile", type=int, default=None, help="tile size of the tiled 2048² run (default 512)")
    ap.add_argument("--margin-gb", type=float, default=6.0, help="free memory to leave to others when running 2048²")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=2048, help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="bf16", help=argparse.SUPPRESS)
    ap.add_argument("--real-tiles", type=int, default=2, help="tiles actually computed in the tiled 2048² run")
    args = ap.parse_args()
    if args.child:
        return child(args.size, args.dtype, args.tile, args.real_tiles)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}\n")
    slow = bf16_slowdown()
    native_bf16 = slow < 3.0
    dtypes = ("fp32", "bf16") if native_bf16 else ("fp32",)
    if not native_bf16:
        print(f"bf16 is not native on this CPU: one 3×3 conv runs {slow:.0f}× slower under bf16 autocast than in "
              "fp32, so bf16 rows are skipped (on CPUs with AVX512-BF16/AMX, or on GPUs, bf16 is the fast path).\n")
    if not args.memory_only:
        comps = random_components()
        threads = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        print(f"### SCUF forward on the CPU: former path vs default ({args.threads} torch thread(s), best of "
              f"{args.reps} after a warm-up, CPU time)\n")
        print(layout_table(comps, args.reps))
        print()
        torch.set_num_threads(threads)
        if args.layout_only:
            return
        text_params = count(comps.text_encoder.parameters())
        unet_params = count(comps.unet.parameters())
        times: dict[tuple[str, int, str], tuple[float, float]] = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        params: dict[str, tuple[int, int]] = {}
        for adapter in ("none", "ca"):
            gen = build(adapter, comps)
            params[adapter] = (count(gen.trainable_parameters()), count(gen.parameters()))
            for size in (256, 512):
                for dtype in dtypes:
                    print(f"  timing {adapter} {size}² {dtype} ...", file=sys.stderr, flush=True)
                    reps = args.reps if size == 256 else max(1, args.reps - 1)
                    times[adapter, size, dtype] = seconds_per_image(gen, size, dtype == "bf16", reps)
            del gen
            gc.collect()
        torch.set_num_threads(threads)

        print(f"### Seconds per image (batch 1, {args.threads} torch thread(s); best of {args.reps} at 256², "
              f"{max(1, args.reps - 1)} at 512², after a warm-up)\n")
        print("CPU = CPU time of the process (robust on a shared machine); wall = elapsed time.\n")
        print("| size | dtype | CycleGAN-Turbo (no image prompt): CPU / wall | SCUF (image prompt + CA adapter): "
              "CPU / wall | SCUF / plain (CPU) |")
        print("|---|---|---|---|---|")
        for size in (256, 512):
            for dtype in dtypes:
                (a, aw), (b, bw) = times["none", size, dtype], times["ca", size, dtype]
                label = "bf16 autocast" if dtype == "bf16" else dtype
                print(f"| {size}² | {label} | {a:.1f} s / {aw:.1f} s | {b:.1f} s / {bw:.1f} s | {b / a:.2f}× |")

        print("\n### Parameters\n")
        print("| model | trainable | total (inference) | total (training: + frozen unet_init copy + text encoder) |")
        print("|---|---|---|---|")
        labels = {"none": "CycleGAN-Turbo (VAE LoRA + skip convs)",
                  "ca": "SCUF (+ reflectance decoder, CLIP prompt, projection, CA adapter)"}
        for adapter, label in labels.items():
            tr, tot = params[adapter]
            print(f"| {label} | {tr / 1e6:.2f} M | {tot / 1e6:.1f} M | {(tot + unet_params + text_params) / 1e6:.1f} M |")
        del comps
        gc.collect()

    if not args.skip_memory:
        dtype = "bf16" if native_bf16 else "fp32"
        print(f"\n### Peak memory, SCUF enhancer, one image (each row its own process, {dtype})\n")
        print(memory_table(dtype, args.tile or 512, args.margin_gb, args.real_tiles))

if __name__ == "__main__":
    main()

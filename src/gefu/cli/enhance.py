"""`gefu enhance`: enhance image files and folders with any registered method."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..device import DTYPE_CHOICES, parse_device, parse_dtype, precision_warning
from .common import HelpFormatter, parse_key_values

EXAMPLES = """examples:
  gefu enhance night.jpg -o out/ --method lime
  gefu enhance photos/ more/dark.png -o enhanced/ --method zero-dce --device cuda
  gefu enhance photos/ -o enhanced/ --method scuf --checkpoint scuf-ckpt/ --dtype fp16 --tile 512
  gefu enhance photos/ -o enhanced/ --method lime --option alpha=0.2 --option gamma=0.7

Outputs mirror the inputs: a folder's sub-folders and file names are kept under OUTDIR. Inputs are never
modified; an OUTDIR that would overwrite an input is refused. Unreadable files are reported and skipped;
the exit code is 1 when any file failed."""

_WRITABLE = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enhance dark images",
        description="Enhance image files and folders (recursively) with a registered method.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("-m", "--method", default="lime", help="enhancer name (see 'gefu info')")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--tile", type=int, default=None, metavar="N", help="process in overlapping N×N tiles")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (with --tile)")
    p.add_argument("--ext", default=None, help="output format, e.g. png (default: keep each input's format)")
    p.add_argument("--checkpoint", default=None, help="SCUF: save_pretrained folder or official .pkl")
    p.add_argument("--base", default=None, help="SCUF: base model id, local folder or 'tiny-random'")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help="model precision (GPU: fp16/bf16)")
    p.add_argument("--seed", type=int, default=None, help="seed (SCUF latent sampling, tiny-random models)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra enhancer option (repeatable)")
    p.set_defaults(func=run)


def _output_path(outdir: Path, rel: Path, ext: str | None) -> Path:
    suffix = f".{ext.lstrip('.')}" if ext else rel.suffix.lower()
    if suffix not in _WRITABLE:
        suffix = ".png"
    return outdir / rel.with_suffix(suffix)


def _check_no_overwrite(jobs: list[tuple[Path, Path]], inputs: list[Path], outdir: Path) -> None:
    resolved_inputs = {src.resolve() for src, _ in jobs}
    for src, dst in jobs:
        if dst.resolve() in resolved_inputs:
            raise ValueError(f"output {dst} would overwrite input {src}; choose another --output folder")
    out = outdir.resolve()
    for inp in inputs:
        if inp.is_dir() and (out == inp.resolve() or inp.resolve() in out.parents):
            raise ValueError(
                f"--output {outdir} is inside input folder {inp}; outputs would be mixed with the inputs"
            )


def run(args: argparse.Namespace) -> int:
    from .. import create_enhancer, list_enhancers
    from ..enhancers import ENHANCERS
    from ..imageio import find_images, load_image, save_image, tile_apply

    device = parse_device(args.device)
    outdir = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    found = find_images(inputs)
    if not found:
        raise ValueError("no images found in " + ", ".join(map(str, inputs)))
    jobs = [(src, _output_path(outdir, rel, args.ext)) for src, rel in found]
    dsts = [dst for _, dst in jobs]
    if len(set(dsts)) != len(dsts):
        dup = next(d for d in dsts if dsts.count(d) > 1)
        raise ValueError(f"two inputs would both be written to {dup}; enhance them into separate folders")
    _check_no_overwrite(jobs, inputs, outdir)

    options = parse_key_values(args.option, "--option")
    for key in ("checkpoint", "base", "seed"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.dtype:
        options["dtype"] = parse_dtype(args.dtype)
        warning = precision_warning(device, args.dtype)
        if warning:
            print(f"gefu enhance: warning: {warning}", file=sys.stderr)
    # Enhancers that tile themselves (SCUF: one image prompt per image, shared by its tiles) get the tile size as
    # an option; the others are wrapped in generic overlapping tiles below.
    list_enhancers()  # registers the built-in enhancers
    self_tiling = args.tile and "tile" in inspect.signature(ENHANCERS.get(args.method)).parameters
    if self_tiling:
        options.update(tile=args.tile, overlap=args.overlap)
    enhancer = create_enhancer(args.method, **options).to(device).eval()

    failures: list[tuple[Path, str]] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for src, dst in tqdm(jobs, desc=f"enhance ({args.method})", unit="img", file=sys.stderr):
            try:
                x = load_image(src)[None].to(device)  # (1, 3, H, W)
            except (OSError, ValueError) as err:  # ImageReadError is a ValueError
                failures.append((src, str(err)))
                continue
            y = tile_apply(enhancer, x, args.tile, args.overlap) if args.tile and not self_tiling else enhancer(x)
            save_image(y[0], dst)
    seconds = time.perf_counter() - t0

    done = len(jobs) - len(failures)
    print(f"enhanced {done} of {len(jobs)} images with {args.method} in {seconds:.1f} s → {outdir}")
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for _, reason in failures:  # each reason starts with the file's path
            print(f"  {reason}", file=sys.stderr)
        return 1
    return 0

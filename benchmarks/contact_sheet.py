"""A contact sheet of every registered enhancer on real low-light photos: rows = photos, columns = methods.

Usage: .venv/bin/python benchmarks/contact_sheet.py [--out outputs/contact_sheet.png] [--data ../shared/data]
           [--photos dicm/18.jpg dicm/08.jpg lime/10.bmp lime/8.bmp] [--methods a,b,...] [--max-side 400]
           [--cell 220] [--overwrite]

Every registered enhancer except SCUF runs with its default options and weights; learned enhancers whose weights
are not in the weight store (`gefu weights status`) are skipped and listed (never run with random weights). Each
photo is downscaled so that its longer side is at most `--max-side` pixels before enhancing (the sheet only shows
thumbnails; full-size results can differ slightly for methods with image-level statistics). The photos are DICM
and LIME images (no references): the sheet is for looking, not measuring. The PNG is written atomically; an
existing file is kept unless `--overwrite` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

import gefu
from gefu.fileio import atomic_path
from gefu.imageio import load_image, tensor_to_pil
from gefu.weights import MissingWeightsError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ("dicm/18.jpg", "dicm/08.jpg", "lime/10.bmp", "lime/8.bmp")
LABEL_H, LEFT_W, PAD = 22, 90, 4
BACKGROUND, INK = (24, 24, 24), (235, 235, 235)


def load_photo(path: Path, max_side: int) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1], downscaled (antialiased) so that max(h, w) <= max_side."""
    x = load_image(path)[None]
    scale = max_side / max(x.shape[-2:])
    if scale < 1:
        size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x


def make_enhancers(names: list[str]) -> tuple[dict[str, gefu.Enhancer], dict[str, str]]:
    """Build each enhancer with its defaults; those that cannot be built (weights absent) go to `skipped`."""
    built, skipped = {}, {}
    for name in names:
        try:
            built[name] = gefu.create_enhancer(name)
        except (MissingWeightsError, ValueError, FileNotFoundError) as err:
            skipped[name] = str(err).splitlines()[0]
    return built, skipped


def thumbnail(img: torch.Tensor, cell: int) -> Image.Image:
    """(3, h, w) → an RGB cell × (3/4 cell) tile, the image fitted inside and centred."""
    tile = Image.new("RGB", (cell, cell * 3 // 4), BACKGROUND)
    pic = tensor_to_pil(img)
    pic.thumbnail(tile.size, Image.Resampling.LANCZOS)
    tile.paste(pic, ((tile.width - pic.width) // 2, (tile.height - pic.height) // 2))
    return tile


def render(rows: list[tuple[str, list[Image.Image]]], columns: list[str], cell: int) -> Image.Image:
    """Rows of tiles under a header of column labels, each row labelled at the left."""
    tile_w, tile_h = cell, cell * 3 // 4
    sheet = Image.new("RGB", (LEFT_W + len(columns) * (tile_w + PAD), LABEL_H + len(rows) * (tile_h + PAD)),
                      BACKGROUND)
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for j, label in enumerate(columns):
        draw.text((LEFT_W + j * (tile_w + PAD) + 4, 5), label, fill=INK, font=font)
    for i, (label, tiles) in enumerate(rows):
        top = LABEL_H + i * (tile_h + PAD)
        draw.text((4, top + tile_h // 2 - 6), label, fill=INK, font=font)
        for j, tile in enumerate(tiles):
            sheet.paste(tile, (LEFT_W + j * (tile_w + PAD), top))
    return sheet


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "contact_sheet.png")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS), help="paths relative to --data")
    p.add_argument("--methods", default="", help="comma-separated names (default: every registered but scuf)")
    p.add_argument("--max-side", type=int, default=400)
    p.add_argument("--cell", type=int, default=220, help="tile width in pixels")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()

    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    photos = [args.data / rel for rel in args.photos]
    missing = [str(ph) for ph in photos if not ph.is_file()]
    if missing:
        print(f"error: photos not found: {', '.join(missing)} (set --data to the folder holding dicm/ and lime/)",
              file=sys.stderr)
        return 2
    names = [m for m in args.methods.split(",") if m] or [n for n in gefu.list_enhancers() if n != "scuf"]
    enhancers, skipped = make_enhancers(names)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")

    columns = ["input", *enhancers]
    rows = []
    for rel, path in zip(args.photos, photos):
        x = load_photo(path, args.max_side)
        tiles = [thumbnail(x[0], args.cell)]
        for name, enh in enhancers.items():
            t0 = time.perf_counter()
            with torch.no_grad():
                y = enh(x)
            print(f"{rel:14s} {name:22s} {time.perf_counter() - t0:6.2f} s  mean {float(y.mean()):.3f}")
            tiles.append(thumbnail(y[0], args.cell))
        rows.append((rel, tiles))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        render(rows, columns, args.cell).save(tmp, format="PNG")
    print(f"wrote {args.out} ({len(rows)} photos × {len(columns)} columns)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

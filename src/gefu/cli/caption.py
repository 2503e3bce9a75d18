"""`gefu caption`: BLIP captions for a folder of training images (resumable)."""

from __future__ import annotations

import argparse
import sys

from ..device import DTYPE_CHOICES, parse_dtype
from .common import HelpFormatter, default_device

EXAMPLES = """examples:
  gefu caption data/trainA -o data/trainA/captions.tsv --night-to-day
  gefu caption data/trainB -o data/trainB/captions.tsv --batch-size 16 --device cuda
  gefu caption photos/ -o photos.jsonl --model /models/blip-large

The BLIP model is read from a local folder or the Hugging Face cache (download it once with
`huggingface-cli download Salesforce/blip-image-captioning-large`, or pass --allow-download). Images already in
the output file are skipped, so an interrupted run continues where it stopped. --night-to-day applies the
official rewrite (night→day, dark→bright, dim→clear, low light→normal light) on whole words."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "caption",
        help="caption training images with BLIP",
        description="Caption every image of a folder with BLIP into a TSV/CSV/JSONL file (filepath, caption), "
        "as SCUF's caption consistency needs.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("folder", metavar="DIR", help="folder of images (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="captions file (.tsv, .csv or .jsonl)")
    p.add_argument("--model", default="Salesforce/blip-image-captioning-large", help="BLIP id or local folder")
    p.add_argument("--allow-download", action="store_true", help="download the model if it is not cached")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch")
    p.add_argument("--night-to-day", action="store_true", help="rewrite night words into day words")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda when available)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="fp32", help="model precision")
    p.add_argument("--max-new-tokens", type=int, default=30, help="longest caption, in tokens")
    p.add_argument("--num-beams", type=int, default=3, help="beam-search width")
    p.add_argument("--prompt", default=None, help="conditional captioning prefix, e.g. 'a photography of'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..scuf.captions import BlipCaptioner, caption_folder

    captioner = BlipCaptioner(
        name_or_path=args.model, local_files_only=not args.allow_download, device=args.device or default_device(),
        dtype=parse_dtype(args.dtype), max_new_tokens=args.max_new_tokens, num_beams=args.num_beams,
        prompt=args.prompt,
    )
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="img", desc="caption", disable=None, file=sys.stderr)
        bar.n = done
        bar.refresh()

    stats = caption_folder(args.folder, args.output, captioner, batch_size=args.batch_size,
                           rewrite_night=args.night_to_day, progress=progress)
    if bar is not None:
        bar.close()
    print(f"{stats['captioned']} images captioned, {stats['skipped']} already in {args.output}")
    return 0

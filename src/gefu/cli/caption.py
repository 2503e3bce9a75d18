"""`gefu caption`: BLIP captions for a folder of training images (resumable)."""

from __future__ import annotations

import argparse
import sys

from ..device import DTYPE_CHOICES, parse_device, parse_dtype, precision_warning
from .common import HelpFormatter

EXAMPLES = """examples:
  gefu caption data/trainA -o data/trainA/captions.tsv --night-to-day
  gefu caption data/trainB -o data/trainB/captions.tsv --batch-size 16 --device cuda
  gefu caption data/trainA -o data/trainA/captions.tsv --official   # as the released code: 32 tokens, greedy
  gefu caption photos/ -o photos.jsonl --model /models/blip-large

The BLIP model is read from a local folder or the Hugging Face cache (download it once with
`hf download Salesforce/blip-image-captioning-large`, or pass --allow-download); without --allow-download
nothing is fetched from the network. Images already in the output file are skipped, so an interrupted run
continues where it stopped. --night-to-day rewrites whole words (night→day, dark→bright, dim→clear, low
light→normal light, case kept); --official generates and rewrites like the released generate_captions.py
(BLIP-large, 32 new tokens, greedy, its nine substring pairs incl. evening, moonlit, shadows). `gefu train
--preset official` applies that rewrite itself when it reads the captions, so raw captions work too."""


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
    style = p.add_mutually_exclusive_group()
    style.add_argument("--night-to-day", action="store_true", help="rewrite night words into day words")
    style.add_argument("--official", action="store_true",
                       help="the released code's settings: 32 tokens, greedy, its substring night→day table")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="fp32", help="model precision")
    p.add_argument("--max-new-tokens", type=int, default=None, help="longest caption, in tokens (default 30)")
    p.add_argument("--num-beams", type=int, default=None, help="beam-search width (default 3)")
    p.add_argument("--prompt", default=None, help="conditional captioning prefix, e.g. 'a photography of'")
    p.set_defaults(func=run)


def _generation(args: argparse.Namespace) -> dict[str, int]:
    from ..scuf.captions import OFFICIAL_GENERATION

    settings = dict(OFFICIAL_GENERATION) if args.official else {"max_new_tokens": 30, "num_beams": 3}
    for key in ("max_new_tokens", "num_beams"):
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be at least 1; got {value}")
            settings[key] = value
    return settings


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..scuf.captions import BlipCaptioner, caption_folder
    from ..scuf.pretrained import hub_offline

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {args.batch_size}")
    device, dtype = parse_device(args.device), parse_dtype(args.dtype)
    warning = precision_warning(device, dtype)
    if warning:
        print(f"gefu caption: warning: {warning}", file=sys.stderr)
    rewrite = "official" if args.official else "words" if args.night_to_day else "none"
    with hub_offline(not args.allow_download):  # the hub client must not even look the model up
        captioner = BlipCaptioner(name_or_path=args.model, local_files_only=not args.allow_download, device=device,
                                  dtype=dtype, prompt=args.prompt, **_generation(args))
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="img", desc="caption", disable=None, file=sys.stderr)
        bar.n = done
        bar.refresh()

    try:
        stats = caption_folder(args.folder, args.output, captioner, batch_size=args.batch_size, rewrite=rewrite,
                               progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"{stats['captioned']} images captioned, {stats['skipped']} already in {args.output}")
    return 0

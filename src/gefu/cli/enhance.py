"""`gefu enhance`: enhance image files and folders with any registered method.

Everything the user got wrong is refused before the first image (exit 2, one line); a file that cannot be read
or written is reported on one line naming it and the run goes on (exit 1); a full disk ends the run. Images are
decoded ahead and written behind on background threads (`gefu.pipeline`); under `accelerate launch` every
process takes its share of the files (`gefu.distributed`).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..device import DTYPE_CHOICES, available_memory, parse_device, parse_dtype, precision_warning
from ..imageio import WRITABLE_EXTENSIONS
from ..tiling import DEFAULT_OVERLAP
from .common import HelpFormatter, parse_key_values

EXAMPLES = f"""examples:
  gefu enhance night.jpg -o out/ --method lime
  gefu enhance photos/ more/dark.png -o enhanced/ --method zero-dce --device cuda
  gefu enhance photos/ -o enhanced/ --method scuf --checkpoint scuf-ckpt/ --dtype fp16 --tile 512
  gefu enhance photos/ -o enhanced/ --method lime --option alpha=0.2 --option gamma=0.7
  gefu enhance huge.png -o out/ --method lime --tile 1024        # memory follows the tile, not the image
  gefu enhance photos/ -o enhanced/ --skip-existing              # continue an interrupted run
  accelerate launch --multi_gpu --num_processes 4 -m gefu enhance photos/ -o enhanced/ --method zero-dce

Outputs mirror the inputs: a folder's sub-folders and file names are kept under OUTDIR. Inputs are never
modified, an OUTDIR that would overwrite an input is refused, and so are outputs that already exist unless
--overwrite or --skip-existing is given. Inside folders, hidden files are passed over; anything else that is
not enhanced (unreadable files and folders, broken links, link loops, HEIC, FIFOs) is reported. The exit code
is 2 for a usage error, 1 when any file failed or was skipped, 0 otherwise. Output formats (--ext, any case):
{", ".join(sorted(e[1:] for e in WRITABLE_EXTENSIONS))}; inputs of other formats are written as png."""

#: Flags that become enhancer options, and how the user spelled them (for "does not apply" messages).
_FLAG_OPTIONS = {"checkpoint": "--checkpoint", "base": "--base", "seed": "--seed", "dtype": "--dtype"}
_MIN_TILE = 32


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enhance dark images",
        description="Enhance image files and folders (recursively) with a registered method.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created when missing)")
    p.add_argument("-m", "--method", default="lime", help="enhancer name (see 'gefu info')")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help=f"process in overlapping N×N tiles (N >= {_MIN_TILE}); memory then follows the tile")
    p.add_argument("--overlap", type=int, default=None, metavar="PX",
                   help=f"tile overlap in pixels, at most half a tile (default: {DEFAULT_OVERLAP}, or half of a "
                   "smaller --tile)")
    p.add_argument("--ext", default=None, help="output format, e.g. png or jpg (default: keep each input's format)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    existing.add_argument("--skip-existing", action="store_true",
                          help="keep outputs that already exist and enhance the rest (resumes an interrupted run)")
    p.add_argument("--checkpoint", default=None, help="SCUF: save_pretrained folder or official .pkl")
    p.add_argument("--base", default=None, help="SCUF: base model id, local folder or 'tiny-random'")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help="model precision (GPU: fp16/bf16)")
    p.add_argument("--seed", type=int, default=None, help="seed (SCUF latent sampling, tiny-random models)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="enhancer option, e.g. alpha=0.2 (repeatable; values are JSON when they parse)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="images enhanced at the same time (default: the CPU cores, up to 4, for the classic numpy "
                   "methods; 1 for models, which use every core already)")
    p.add_argument("--serial", action="store_true",
                   help="decode, enhance and write one image after another (no background threads)")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------------------------------------------
# Checking the command line
# ----------------------------------------------------------------------------------------------------------------


def _check_flags(args: argparse.Namespace) -> str | None:
    """Refuse bad --tile/--overlap/--ext/-o values; returns the output suffix (".jpg") or None."""
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.tile is not None and args.tile < _MIN_TILE:
        raise ValueError(f"--tile must be at least {_MIN_TILE} pixels, got {args.tile}")
    if args.overlap is None:
        args.overlap = DEFAULT_OVERLAP if args.tile is None else min(DEFAULT_OVERLAP, args.tile // 2)
    if args.overlap < 0:
        raise ValueError(f"--overlap must be >= 0 pixels, got {args.overlap}")
    if args.tile is not None and args.overlap > args.tile // 2:
        raise ValueError(f"--overlap must be at most half of --tile ({args.tile // 2}), got {args.overlap}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is an existing file; give a folder (it is created when missing)")
    if args.ext is None:
        return None
    suffix = "." + args.ext.strip().lstrip(".").lower()
    if suffix not in WRITABLE_EXTENSIONS:
        choices = ", ".join(sorted(e[1:] for e in WRITABLE_EXTENSIONS))
        raise ValueError(f"--ext {args.ext} is not an image format gefu writes; use one of {choices}")
    return suffix


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """--option KEY=VALUE and the enhancer flags, checked against the method's signature (did you mean)."""
    from ..enhancers import ENHANCERS, list_enhancers

    list_enhancers()  # registers the built-in enhancers
    ENHANCERS.get(args.method)  # unknown method: did you mean
    options = parse_key_values(args.option, "--option")
    for key in _FLAG_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            if key in options:
                raise ValueError(f"{_FLAG_OPTIONS[key]} and --option {key}=... both given; give one")
            options[key] = value
    for key in ("tile", "overlap"):
        if key in options:
            raise ValueError(f"give the tile size with --{key}, not --option {key}=...")
    ENHANCERS.check_options(args.method, options, _FLAG_OPTIONS)
    return options


@dataclass
class Job:
    src: Path
    dst: Path
    notes: list[str] = field(default_factory=list)


def _output_path(outdir: Path, rel: Path, suffix: str | None) -> Path:
    if suffix is None:
        suffix = rel.suffix.lower() if rel.suffix.lower() in WRITABLE_EXTENSIONS else ".png"
    return outdir / rel.with_suffix(suffix)


def _plan(args: argparse.Namespace, suffix: str | None) -> tuple[list[Job], list[Any], int]:
    """Jobs to run, what the scan skipped, and how many existing outputs --skip-existing keeps."""
    from ..imageio import scan_images

    outdir = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    scan = scan_images(inputs)
    if not scan.found:
        reasons = "; ".join(str(s) for s in scan.skipped[:3])
        raise ValueError("no images found in " + ", ".join(map(str, inputs)) + (f" ({reasons})" if reasons else ""))
    jobs = [Job(src, _output_path(outdir, rel, suffix)) for src, rel in scan.found]
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.dst in seen:
            raise ValueError(f"{seen[job.dst]} and {job.src} would both be written to {job.dst}; "
                             "enhance them into separate folders")
        seen[job.dst] = job.src
    resolved_inputs = {job.src.resolve() for job in jobs}
    out = outdir.resolve()
    for job in jobs:
        if job.dst.resolve() in resolved_inputs:
            raise ValueError(f"output {job.dst} would overwrite input {job.src}; choose another --output folder")
    for inp in inputs:
        if inp.is_dir() and (out == inp.resolve() or inp.resolve() in out.parents):
            raise ValueError(f"--output {outdir} is inside input folder {inp}; outputs would be mixed with the inputs")
    existing = [job for job in jobs if job.dst.exists() or job.dst.is_symlink()]
    if existing and not (args.overwrite or args.skip_existing):
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise ValueError(f"{existing[0].dst} already exists{more}; pass --overwrite to replace, or --skip-existing "
                         "to keep them and enhance the rest")
    if args.skip_existing:
        kept = {id(j) for j in existing}
        jobs = [j for j in jobs if id(j) not in kept]
    return jobs, scan.skipped, len(existing) if args.skip_existing else 0


# ----------------------------------------------------------------------------------------------------------------
# One image: load, compute, save
# ----------------------------------------------------------------------------------------------------------------


class _Worker:
    """Loads (background thread), enhances (caller's thread) and saves (background thread) one job."""

    def __init__(self, enhancer: torch.nn.Module, device: torch.device, tile: int | None, overlap: int,
                 self_tiling: bool, workers: int) -> None:
        self.enhancer, self.device, self.overlap, self.workers = enhancer, device, overlap, workers
        self.tile = None if self_tiling else tile
        self.bytes_per_pixel = None if (tile or self_tiling) else getattr(enhancer, "bytes_per_pixel", None)
        self.frames: list[Path] = []

    def load(self, job: Job):
        from ..imageio import read_image

        return read_image(job.src)

    def nbytes(self, job: Job) -> int:
        from ..imageio import image_size

        h, w = image_size(job.src)
        return 3 * h * w

    def _tile_for(self, job: Job, h: int, w: int) -> int | None:
        """--tile, or a tile size when the method's untiled memory estimate does not fit in available memory."""
        if self.tile or not self.bytes_per_pixel:
            return self.tile
        from ..tiling import auto_tile

        free = available_memory() // self.workers  # several images may be enhanced at once
        need = self.bytes_per_pixel * h * w
        tile = auto_tile(self.bytes_per_pixel, (h, w), free)
        gib = 1 << 30
        if tile is None:
            raise MemoryError(f"{job.src}: {w}×{h} needs about {need / gib:.1f} GiB untiled "
                              f"(~{self.bytes_per_pixel:.0f} B/pixel), {free / gib:.1f} GiB are available and not "
                              "even a 256×256 tile fits; free some memory")
        if tile:
            job.notes.append(f"{job.src}: {w}×{h} would need about {need / gib:.1f} GiB untiled "
                             f"(~{self.bytes_per_pixel:.0f} B/pixel) and {free / gib:.1f} GiB are available: "
                             f"enhanced in {tile}×{tile} tiles (choose the size with --tile)")
        return tile or None

    def compute(self, job: Job, raw) -> np.ndarray:
        with torch.inference_mode():  # (thread-local: compute may run on a worker thread)
            return self._compute(job, raw)

    def _compute(self, job: Job, raw) -> np.ndarray:
        from ..imageio import to_uint8
        from ..tiling import tile_apply_uint8

        if raw.frames > 1:
            self.frames.append(job.src)
        tile = self._tile_for(job, raw.height, raw.width)
        if tile:
            def read(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
                return raw.tensor(y0, y1, x0, x1)[None].to(self.device)  # (1, 3, h, w)

            return tile_apply_uint8(self.enhancer, read, (raw.height, raw.width), tile, self.overlap)
        x = raw.tensor()[None].to(self.device)  # (1, 3, H, W)
        del raw
        return to_uint8(self.enhancer(x)[0])

    def save(self, job: Job, arr: np.ndarray) -> None:
        from ..imageio import save_array
        from ..pipeline import StopRun

        try:
            save_array(arr, job.dst)
        except OSError as err:
            message, fatal = _write_problem(job.dst, err)
            if fatal:
                raise StopRun(message) from None
            raise OSError(message) from None


def _write_problem(dst: Path, err: OSError) -> tuple[str, bool]:
    """One line for a failed write, and whether the run must stop (the next writes would fail the same way)."""
    code = err.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"{dst}: cannot write: no space left on the device; free some space, then rerun with "
                "--skip-existing to continue"), True
    if code == errno.EROFS:
        return f"{dst}: cannot write: read-only file system; choose another --output folder", True
    if code == errno.ENAMETOOLONG:
        size = len(dst.name.encode("utf-8", "surrogateescape"))
        return (f"{dst.parent}/{dst.name[:40]}…: the output file name is too long for the file system ({size} "
                "bytes; most allow 255); rename the input"), False
    if code in (errno.EACCES, errno.EPERM):
        return f"{dst}: cannot write (permission denied); choose another --output folder", False
    if code == errno.EISDIR or dst.is_dir():
        return f"{dst}: a folder has this name; rename it or choose another --output folder", False
    return f"{dst}: cannot write ({err.strerror or err})", False


# ----------------------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------------------


def _say(message: str) -> None:
    tqdm.write(f"gefu enhance: {message}", file=sys.stderr)


def _build(args: argparse.Namespace, options: dict[str, Any], device: torch.device) -> tuple[Any, bool]:
    from ..enhancers import ENHANCERS, create_enhancer

    if "dtype" in options:
        options["dtype"] = parse_dtype(options["dtype"])
        warning = precision_warning(device, options["dtype"])
        if warning:
            _say(f"warning: {warning}")
    # Enhancers that tile themselves (SCUF: one image prompt per image, shared by its tiles) get the tile size as
    # an option; the others are tiled here, reading and writing uint8 so memory follows the tile.
    self_tiling = bool(args.tile) and "tile" in ENHANCERS.options(args.method)[0]
    if self_tiling:
        options.update(tile=args.tile, overlap=args.overlap)
    return create_enhancer(args.method, **options).to(device).eval(), self_tiling


def run(args: argparse.Namespace) -> int:
    from ..distributed import current_shard

    suffix = _check_flags(args)
    device = parse_device(args.device)
    options = _options(args)
    jobs, skipped, kept = _plan(args, suffix)

    shard = current_shard()
    try:
        return _run(args, shard, device, options, jobs, skipped, kept)
    finally:
        shard.close()


def _run(args, shard, device, options, jobs, skipped, kept) -> int:
    from ..fileio import remove_stale_temps
    from ..pipeline import Outcome, StopRun, run_jobs

    if shard.device is not None and shard.device.type == device.type == "cuda" and device.index is None:
        device = shard.device  # one GPU per process
    if shard.is_main:
        removed = remove_stale_temps({job.dst.parent for job in jobs})
        if removed:
            _say(f"note: removed {len(removed)} temporary file(s) left by an interrupted run")
        for skip in skipped:
            _say(f"skipped {skip}")
    shard.wait()  # nothing is written before every process has checked the outputs
    mine = shard.split(jobs)

    enhancer, self_tiling = _build(args, options, device)
    workers = 1 if args.serial else min(args.workers or _default_workers(enhancer), max(1, len(mine)))
    worker = _Worker(enhancer, device, args.tile, args.overlap, self_tiling, workers)
    bar = tqdm(total=len(mine), desc=f"enhance ({args.method})", unit="img", file=sys.stderr, disable=None
               if shard.is_main else True, dynamic_ncols=True)

    tally = {"done": 0, "failed": 0}

    def report(outcome: Outcome) -> None:
        for note in outcome.job.notes:
            _say(f"note: {note}")
        if outcome.error is not None:
            _say(_describe(outcome.job, outcome.error))
        tally["done" if outcome.ok else "failed"] += 1
        bar.update(1)

    t0 = time.perf_counter()
    stopped = None
    try:
        run_jobs(mine, worker.load, worker.compute, worker.save, overlap=not args.serial, workers=workers,
                 nbytes=worker.nbytes, expected=(OSError, ValueError, MemoryError), on_outcome=report)
    except StopRun as err:
        stopped = str(err)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    counts = shard.gather((tally["done"], tally["failed"], [str(f) for f in worker.frames], stopped))
    if not shard.is_main:
        return 1 if any(c[1] or c[3] for c in counts) or skipped else 0
    return _summary(args, counts, len(jobs), skipped, kept, seconds, shard.count)


def _default_workers(enhancer: Any) -> int:
    """Thread-safe CPU methods (numpy/scipy, mostly one core each): one image per core, up to 4."""
    if not getattr(enhancer, "thread_safe", False):
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _describe(job: Job, err: BaseException) -> str:
    """One line for a failed job, naming its file (and the fix, where there is one)."""
    text = str(err)
    if isinstance(err, MemoryError) and not text.startswith(str(job.src)):
        return f"{job.src}: out of memory{f' ({text})' if text else ''}; pass --tile 1024 (or smaller)"
    if text.startswith((str(job.src), str(job.dst))):
        return text
    return f"{job.src}: {text}"


def _summary(args, counts, total: int, skipped: list, kept: int, seconds: float, processes: int) -> int:
    done = sum(c[0] for c in counts)
    failed = sum(c[1] for c in counts)
    frames = sorted(f for c in counts for f in c[2])  # (workers finish in any order)
    stops = [c[3] for c in counts if c[3]]
    if frames:
        names = ", ".join(frames[:3]) + (f" and {len(frames) - 3} more" if len(frames) > 3 else "")
        _say(f"note: only the first frame was enhanced of {len(frames)} multi-frame file(s): {names}")
    for message in dict.fromkeys(stops):
        _say(f"stopped: {message}")
    parts = [f"enhanced {done} of {total + kept} images with {args.method} in {seconds:.1f} s → {args.output}"]
    if kept:
        parts.append(f"{kept} already there (--skip-existing)")
    if failed:
        parts.append(f"{failed} failed")
    if skipped:
        parts.append(f"{len(skipped)} skipped")
    if stops:
        parts.append(f"{total - done - failed} not written")
    if processes > 1:
        parts.append(f"{processes} processes")
    print("; ".join(parts))
    return 1 if (failed or skipped or stops) else 0

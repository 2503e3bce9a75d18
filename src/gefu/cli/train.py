"""`gefu train`: fine-tune SCUF on unpaired low/normal-light folders (resumable, one or many GPUs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import HelpFormatter, parse_key_values

EXAMPLES = """examples:
  gefu caption data/trainA -o data/trainA/captions.tsv --night-to-day
  gefu caption data/trainB -o data/trainB/captions.tsv
  gefu train --preset official --data data/ -o runs/scuf --retinex-weights retinexnet_decom.pth
  gefu train --preset paper --data data/ --val data/val -o runs/scuf --mixed-precision bf16
  gefu train -o runs/scuf --resume latest          # continue where the run stopped
  gefu train --preset paper --data data/ -o runs/scuf --overwrite    # start runs/scuf again from scratch
  accelerate launch --multi_gpu --num_processes 4 -m gefu train --preset official --data data/ -o runs/scuf
  torchrun --nproc_per_node 4 -m gefu train --preset official --data data/ -o runs/scuf   # same, torchrun
  gefu train --preset ablation-6 --data data/ -o runs/ip --set loss.gan=0.5 --dump-config ip.json
  gefu train --preset paper --base tiny-random --data data/ -o /tmp/smoke --max-steps 2 --cpu   # CPU smoke run

The data folder holds trainA/ (low light) and trainB (normal light) — or train_A/ train_B/ — each with a
captions file (captions.tsv) when caption consistency is on. Outputs: losses.csv, metrics.csv (validation
PSNR/SSIM), samples/ and val/ grids, checkpoints/step_XXXXXX/ (+ checkpoints/latest) and, at the end, model/:
use it with `gefu enhance --method scuf --checkpoint OUTPUT/model`. An output folder that already holds a run is
refused unless --resume or --overwrite is given. --preset official trains like the released code, quirks
included (see README: "paper, official and the defaults"); it needs the RetinexNet DecomNet weights
(--retinex-weights PATH, GEFU_RETINEXNET=PATH, or `gefu weights download retinexnet-decom`)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune SCUF on unpaired data",
        description="Train SCUF (one-step SD-Turbo low-light enhancer) on unpaired low/normal-light images. "
        "Start from a preset or a JSON config; command-line options override it.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE", help="training config JSON (see --dump-config)")
    src.add_argument("--preset", metavar="NAME", help="paper, official, ablation-1 … ablation-8, table6")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--data", metavar="DIR", help="folder with trainA/ and trainB/ (or train_A/, train_B/)")
    p.add_argument("--low", metavar="DIR", help="low-light training folder (instead of DATA/trainA)")
    p.add_argument("--normal", metavar="DIR", help="normal-light training folder (instead of DATA/trainB)")
    p.add_argument("--captions-low", metavar="FILE", help="captions of the low-light images (TSV/CSV/JSONL)")
    p.add_argument("--captions-normal", metavar="FILE", help="captions of the normal-light images")
    p.add_argument("--val", metavar="DIR", help="paired validation folder (low/ + high/, paired by file name)")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder of the run (required to train)")
    p.add_argument("--resume", metavar="PATH|latest", help="continue from a checkpoint folder, or the newest one")
    p.add_argument("--overwrite", action="store_true", help="delete the run already in --output and start over")
    p.add_argument("--max-steps", type=int, metavar="N", help="train until step N")
    p.add_argument("--checkpoint-every", type=int, metavar="K", help="write a checkpoint every K steps")
    p.add_argument("--validate-every", type=int, metavar="K", help="validate and save grids every K steps")
    p.add_argument("--base", metavar="ID|PATH", help="SD-Turbo id or folder, or 'tiny-random' (CPU smoke runs)")
    p.add_argument("--clip", metavar="ID|PATH", help="CLIP ViT-B/32 id or folder (image prompt, discriminators)")
    p.add_argument("--retinex-weights", metavar="PATH", help="RetinexNet DecomNet .pth (else GEFU_RETINEXNET)")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="autocast precision")
    p.add_argument("--grad-accum", type=int, metavar="N", help="micro-batches per update")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per micro-batch and process")
    p.add_argument("--crop", type=int, metavar="PX", help="training crop size (default 256)")
    p.add_argument("--num-workers", type=int, metavar="N", help="data-loading worker processes")
    p.add_argument("--seed", type=int, help="seed of the run (data, latent samples, DiffAugment, heads)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set any config field, e.g. loss.gan=0.5 or model.adapter=ip (repeatable)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is visible")
    p.add_argument("--dump-config", metavar="FILE", help="write the resolved config to FILE and exit")
    p.set_defaults(func=run)


_FLAGS = {
    "data": "data.root", "low": "data.low", "normal": "data.normal", "captions_low": "data.captions_low",
    "captions_normal": "data.captions_normal", "val": "data.val", "max_steps": "max_steps",
    "checkpoint_every": "checkpoint_every", "validate_every": "validate_every", "base": "model.base",
    "clip": "model.clip", "retinex_weights": "retinex_weights", "mixed_precision": "mixed_precision",
    "grad_accum": "grad_accum", "batch_size": "batch_size", "crop": "data.crop", "num_workers": "data.num_workers",
}


def _config_from_args(args: argparse.Namespace):
    from ..scuf.train import TrainConfig, make_preset, set_by_path

    settings = parse_key_values(args.set, flag="--set")  # checked even when there is no config to apply them to
    if args.config:
        cfg = TrainConfig.load(args.config)
    elif args.preset:
        cfg = make_preset(args.preset)
    else:
        return None
    changes: list[tuple[str, object]] = [(key, getattr(args, attr)) for attr, key in _FLAGS.items()
                                         if getattr(args, attr) is not None]
    if args.seed is not None:
        changes += [("seed", args.seed), ("data.seed", args.seed)]
    if args.crop is not None:
        changes.append(("data.resize", max(args.crop, round(args.crop * 1.5))))
    changes += list(settings.items())
    for key, value in changes:
        cfg = set_by_path(cfg, key, value)
    return cfg


def _resumed_config(args: argparse.Namespace):
    """Resuming without a config: the checkpoint's, with the runtime flags given on the command line."""
    from ..scuf.train import TrainConfig, find_checkpoint

    ckpt = find_checkpoint(args.output, args.resume)
    if ckpt is None:
        return None
    cfg = TrainConfig.load(Path(ckpt) / "config.json")
    for attr in ("max_steps", "checkpoint_every", "validate_every"):
        if getattr(args, attr) is not None:
            setattr(cfg, attr, getattr(args, attr))
    return cfg


def _precision_warning(args: argparse.Namespace, cfg) -> None:
    """Half-precision autocast where it runs on the CPU: warn (it is emulated there and very slow)."""
    import torch

    precision = cfg.mixed_precision if cfg is not None else "no"
    on_cpu = args.cpu or not torch.cuda.is_available()
    if precision != "no" and on_cpu:
        where = "--cpu was given" if args.cpu else "this machine has no CUDA device"
        print(f"gefu train: warning: --mixed-precision {precision}: {where}, so training runs on the CPU, where "
              f"{precision} autocast is slow (fp16 is emulated); use --mixed-precision no", file=sys.stderr)


def _check_args(args: argparse.Namespace, cfg) -> None:
    if not args.output:
        raise ValueError("-o/--output DIR is required (the folder of the run)")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run in --output and --overwrite deletes it: give one of them")
    if cfg is None and not args.resume:
        raise ValueError("give --preset NAME or --config FILE (or --resume to continue a run)")
    if cfg is not None and cfg.data.root is None and cfg.data.low is None and not args.resume:
        raise ValueError("no training data: pass --data DIR (with trainA/ and trainB/) or --low and --normal")


def run(args: argparse.Namespace) -> int:
    from ..scuf.train import PRESETS, TrainingDiverged

    if args.list_presets:
        width = max(map(len, PRESETS))
        for name, desc in PRESETS.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    cfg = _config_from_args(args)
    if args.dump_config:
        if cfg is None:
            raise ValueError("--dump-config needs --preset or --config")
        cfg.save(args.dump_config)
        print(f"wrote {args.dump_config}")
        return 0
    _check_args(args, cfg)
    if cfg is None and args.resume and (args.max_steps or args.checkpoint_every or args.validate_every):
        cfg = _resumed_config(args)
    _precision_warning(args, cfg)
    try:
        return _train(args, cfg)
    except TrainingDiverged as err:
        print(f"gefu train: error: {err}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace, cfg) -> int:
    from tqdm import tqdm

    from ..scuf.train import Trainer

    bar: tqdm | None = None

    def progress(step: int, total: int, logs: dict[str, float]) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss_g=f"{logs.get('loss_g', 0):.3f}", loss_d=f"{logs.get('loss_d', 0):.3f}")

    trainer = Trainer(cfg, args.output, resume=args.resume, overwrite=args.overwrite, cpu=args.cpu, progress=progress)
    bar = tqdm(total=trainer.config.max_steps, initial=trainer.step, unit="step", desc="train", dynamic_ncols=True,
               disable=True if not trainer.is_main else None, file=sys.stderr)
    try:
        final = trainer.run()
    finally:
        bar.close()
    if trainer.is_main:
        print(f"done: {trainer.step} steps; model in {final} "
              f"(use: gefu enhance --method scuf --checkpoint {final} …)")
    return 0

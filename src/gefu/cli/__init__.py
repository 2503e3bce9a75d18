"""The `gefu` command line: one module per subcommand, each with `register(subparsers)`.

The CLI owns all printing and progress bars; library code only logs. User errors (bad input, missing weights)
end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__

# Subcommand modules in the order `gefu --help` lists them.
_COMMANDS = ("enhance", "bench", "train", "caption", "weights", "info")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gefu",
        description="Low-light vision: enhance dark images (SCUF and classic methods) and benchmark enhancers "
        "the GEFU way (enhance, then test with frozen normal-light models).",
        epilog="Run 'gefu COMMAND --help' for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"gefu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"gefu {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gefu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `gefu` command line: one module per subcommand, each with `register(subparsers)`.

The CLI owns all printing and progress bars; library code only logs. User errors (bad input, missing weights)
end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

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


def _error(command: str, message: str) -> None:
    """Print one line on stderr, on the first process only when several were launched (accelerate, torchrun)."""
    if os.environ.get("RANK", "0") in ("0", ""):
        print(f"gefu {command}: {message}", file=sys.stderr)


def _reader_gone() -> int:
    """The reader of our output went away (`gefu weights status | head`): stop quietly with SIGPIPE's exit status,
    as other command-line tools do. stdout now points at /dev/null, so the interpreter's last flush cannot fail
    again with a traceback."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured): nothing will flush it at exit
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # gefu refuses images above its own pixel limit with one line; Pillow's warning about the same files would
    # only repeat it. The CLI owns the process, so it sets this filter once (library code never does).
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except (ValueError, OSError) as err:  # usage errors, missing files, unwritable folders: one line, no traceback
        _error(args.command, f"error: {err}")
        return 2
    except MemoryError as err:
        _error(args.command, f"error: out of memory{f' ({err})' if str(err) else ''}")
        return 1
    except KeyboardInterrupt:
        _error(args.command, "interrupted (files already written are complete)")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

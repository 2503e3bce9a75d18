"""Helpers shared by the subcommands: one KEY=VALUE parser, the device default, the help formatter."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
from typing import Any, Iterable

from ..device import parse_device

__all__ = ["HelpFormatter", "default_device", "parse_key_values", "parse_options", "parse_value"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_+-]*(\.[A-Za-z_][A-Za-z0-9_+-]*)*")  # "+": zero-dce++.scale_factor


def default_device() -> str:
    """"cuda" when a CUDA device is visible, else "cpu"."""
    return str(parse_device(None))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(text)


def parse_value(raw: str) -> Any:
    """One option value: JSON when it parses (numbers, true/false/null, lists, objects, "strings"), else the raw
    string. Non-finite numbers (nan, inf, NaN, Infinity, 1e999, also inside lists) raise ValueError: no option
    of gefu takes them, and letting them through gives silently wrong results."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except ValueError as err:  # JSONDecodeError is a ValueError; so are the hooks' refusals
        if not isinstance(err, json.JSONDecodeError):
            raise ValueError("not a finite number") from None
    try:
        number = float(raw)  # "nan", "inf", "-Infinity": not JSON, but clearly meant as numbers
    except ValueError:
        return raw
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return raw


def parse_key_values(
    items: Iterable[str] | None, flag: str = "--option", scopes: Iterable[str] | None = None
) -> dict[str, Any]:
    """The one KEY=VALUE parser of the command line (`--option`, bench's `method.key=value`, train's `--set`).

    Values are parsed by `parse_value`. Keys are names, possibly dotted (`loss.gan`, `lime.alpha`); a key given
    twice is an error. Without `scopes`, returns `{key: value}` with dotted keys kept as they are
    (`["alpha=0.2", "loss.gan=0.5"]` → `{"alpha": 0.2, "loss.gan": 0.5}`). With `scopes` (e.g. the method names
    plus "suite"), every key must start with one of them and a dot, and the result is grouped:
    `["lime.alpha=0.2", "suite.max_side=384"]` → `{"lime": {"alpha": 0.2}, "suite": {"max_side": 384}}`.
    Errors are ValueErrors with one sentence that quotes the item and says what is expected.
    """
    allowed = list(scopes) if scopes is not None else None
    form = "SCOPE.KEY=VALUE" if allowed is not None else "KEY=VALUE"
    flat: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise ValueError(f"{flag} expects {form} (e.g. {_example(flag, allowed)}), got {item!r}")
        if key in flat:
            raise ValueError(f"{flag} {key} is given twice; give each key once")
        try:
            flat[key] = parse_value(raw.strip())
        except ValueError as err:
            raise ValueError(f"{flag} {item!r}: {err}; give a finite number") from None
    if allowed is None:
        return flat
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        scope, dot, rest = key.partition(".")
        if not dot:
            raise ValueError(f"{flag} expects {form} (e.g. {_example(flag, allowed)}), got {key!r}")
        if scope not in allowed:
            close = difflib.get_close_matches(scope, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{flag} {key}: {scope!r} is not one of {', '.join(allowed)}{hint}")
        grouped.setdefault(scope, {})[rest] = value
    return grouped


def _example(flag: str, scopes: list[str] | None) -> str:
    if scopes:
        return f"{flag} {scopes[0]}.key=0.5"
    return f"{flag} alpha=0.2"


def parse_options(items: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """`["alpha=0.2", "solver=cg"]` → `{"alpha": 0.2, "solver": "cg"}`: `parse_key_values` without scopes."""
    return parse_key_values(items, flag)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in the epilog as written and shows defaults (except empty ones and those the help
    text already states)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action)

"""One command-line grammar across subcommands (issue 11, item 13): an example in every --help, -o/--output for
every subcommand that writes, the same tile overlap default everywhere, one KEY=VALUE parser."""

from __future__ import annotations

import argparse
import inspect

import pytest

from gefu.cli import build_parser
from gefu.tiling import DEFAULT_OVERLAP, tile_apply, tile_apply_uint8


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_help_has_an_example(name):
    epilog = _subcommands()[name].epilog or ""
    assert "example" in epilog and f"gefu {name}" in epilog


def test_enhance_caption_train_write_with_o_output():
    for name in ("enhance", "caption", "train"):
        if name in _subcommands():
            strings = {s for a in _subcommands()[name]._actions for s in a.option_strings}
            assert {"-o", "--output"} <= strings, name


def test_one_overlap_default():
    from gefu.cli import enhance

    assert DEFAULT_OVERLAP == 32
    assert inspect.signature(tile_apply).parameters["overlap"].default == DEFAULT_OVERLAP
    assert inspect.signature(tile_apply_uint8).parameters["overlap"].default == DEFAULT_OVERLAP
    assert enhance.DEFAULT_OVERLAP is DEFAULT_OVERLAP


def test_enhance_option_goes_through_the_common_parser(monkeypatch, tmp_path):
    """--option values are parsed by cli.common.parse_key_values (so bench --option and train --set agree)."""
    from gefu.cli import common, enhance
    from gefu.cli import main

    calls = []
    real = common.parse_key_values
    monkeypatch.setattr(enhance, "parse_key_values", lambda *a, **k: calls.append(a) or real(*a, **k))
    main(["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "-m", "gamma", "--option", "gamma=0.5"])
    assert calls and calls[0][0] == ["gamma=0.5"]
